"""Encoders and baseline classifiers for MNIST-1D signals (see ``torchkata.data.load_mnist1d``).

The baselines follow the models of "Scaling Down Deep Learning" (Greydanus, 2020,
arXiv:2011.14439), whose test accuracies on MNIST-1D are 32% for logistic regression
(``nn.Linear(40, 10)``), 68% for the MLP, 94% for the CNN and 91% for the GRU.
:class:`Conv1dEncoder` is the paper's CNN without its classifier, ending in a linear
layer to ``out_dim`` features, so that self-supervised methods can train it alone and
:class:`Classifier` can put a linear head on it.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["MLP", "Classifier", "Conv1dEncoder", "GRUClassifier"]


def _check_positive(**values: int) -> None:
    for name, value in values.items():
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name}: expected a positive int, got {value!r}")


def _as_sequences(x: torch.Tensor, length: int) -> torch.Tensor:
    """(N, L) or (N, 1, L) → (N, L), checking L."""
    if x.dim() == 3 and x.shape[1] == 1:
        x = x.squeeze(1)  # (N, L)
    if x.dim() != 2 or x.shape[1] != length:
        raise ValueError(
            f"x: expected shape (N, {length}) or (N, 1, {length}), got {tuple(x.shape)}"
        )
    return x


class Conv1dEncoder(nn.Module):
    r"""A small 1-D CNN that maps a signal to ``out_dim`` features.

    Three convolutions with ReLU, each halving the length, then a linear layer on the
    flattened feature map. With the defaults, a 40-point signal gives feature maps of
    32 channels at lengths 20, 10 and 5, and 160 values go into the linear layer. This is
    the CNN of the MNIST-1D paper (three stride-2 convolutions and a linear layer on the
    flattened maps) with kernel size 5 throughout and a linear layer to ``out_dim``
    features instead of to the classes.

    .. math::
        L_{k} = \lceil L_{k-1} / 2 \rceil, \quad L_0 = \text{in\_length}, \qquad
        y = W \operatorname{flatten}(h_3) + b

    The output is linear (no ReLU after the last layer), the representation that a
    self-supervised loss or a linear probe (:class:`Classifier`) reads.

    Args:
        in_length: L, the length of the input signals. Default: ``40``.
        channels: C, channels of each convolution. Default: ``32``.
        out_dim: E, output features. Default: ``128``.

    Attributes:
        conv1, conv2, conv3: ``nn.Conv1d`` with kernel 5, stride 2 and padding 2
            (1 → C, C → C, C → C channels).
        fc: ``nn.Linear`` from :math:`C \cdot L_3` to E, where
            :math:`L_3 = \lceil L / 8 \rceil`.

    Shape:
        - Input: (N, L) or (N, 1, L).
        - Output: (N, E).

    Examples:
        >>> encoder = Conv1dEncoder()
        >>> encoder(torch.zeros(8, 40)).shape
        torch.Size([8, 128])
        >>> encoder(torch.zeros(8, 1, 40)).shape
        torch.Size([8, 128])
        >>> encoder
        Conv1dEncoder(
          in_length=40, channels=32, out_dim=128
          (conv1): Conv1d(1, 32, kernel_size=(5,), stride=(2,), padding=(2,))
          ...
          (fc): Linear(in_features=160, out_features=128, bias=True)
        )
    """

    def __init__(self, in_length: int = 40, channels: int = 32, out_dim: int = 128) -> None:
        super().__init__()
        _check_positive(in_length=in_length, channels=channels, out_dim=out_dim)
        self.in_length, self.channels, self.out_dim = in_length, channels, out_dim
        C = channels
        self.conv1 = nn.Conv1d(1, C, 5, stride=2, padding=2)
        self.conv2 = nn.Conv1d(C, C, 5, stride=2, padding=2)
        self.conv3 = nn.Conv1d(C, C, 5, stride=2, padding=2)
        length = in_length
        for _ in range(3):  # (L + 2·2 - 5) // 2 + 1 = ceil(L / 2)
            length = (length + 1) // 2
        self.fc = nn.Linear(C * length, out_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = _as_sequences(x, self.in_length).unsqueeze(1)  # (N, 1, L)
        h = self.conv1(x).relu()  # (N, C, L1)
        h = self.conv2(h).relu()  # (N, C, L2)
        h = self.conv3(h).relu()  # (N, C, L3)
        return self.fc(h.flatten(1))  # (N, C·L3) -> (N, E)

    def extra_repr(self) -> str:
        return f"in_length={self.in_length}, channels={self.channels}, out_dim={self.out_dim}"


class Classifier(nn.Module):
    """An encoder followed by a linear head: ``head(encoder(x))``.

    With a :class:`Conv1dEncoder`, this is the CNN baseline of the MNIST-1D paper (the
    encoder's last layer and the head compose to one linear map of the convolutional
    features). Freeze the encoder's parameters to train a linear probe.

    Args:
        encoder: a module mapping a batch to (N, E) features.
        num_classes: K, outputs of the head. Default: ``10``.
        in_features: E. Default: ``None``, which reads ``encoder.out_dim``.

    Attributes:
        encoder: the ``encoder`` argument.
        head: ``nn.Linear(E, K)``.

    Shape:
        - Input: whatever ``encoder`` takes, (N, \\*).
        - Output: (N, K) logits.

    Examples:
        >>> model = Classifier(Conv1dEncoder(out_dim=16), num_classes=10)
        >>> model(torch.zeros(4, 40)).shape
        torch.Size([4, 10])
        >>> model.head
        Linear(in_features=16, out_features=10, bias=True)
    """

    def __init__(
        self, encoder: nn.Module, num_classes: int = 10, in_features: int | None = None
    ) -> None:
        super().__init__()
        if not isinstance(encoder, nn.Module):
            raise ValueError(f"encoder: expected an nn.Module, got {type(encoder).__name__}")
        if in_features is None:
            in_features = getattr(encoder, "out_dim", None)
            if in_features is None:
                raise ValueError(
                    "in_features: expected an int, or an encoder with an int attribute "
                    f"out_dim, got None and a {type(encoder).__name__} without out_dim"
                )
        _check_positive(num_classes=num_classes, in_features=in_features)
        self.num_classes, self.in_features = num_classes, in_features
        self.encoder = encoder
        self.head = nn.Linear(in_features, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.encoder(x))  # (N, E) -> (N, K)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, num_classes={self.num_classes}"


class MLP(nn.Module):
    r"""The MNIST-1D paper's MLP: two hidden ReLU layers, the second with a skip connection.

    .. math::
        h_1 = \operatorname{ReLU}(W_1 x + b_1), \quad
        h_2 = h_1 + \operatorname{ReLU}(W_2 h_1 + b_2), \quad
        y = W_3 h_2 + b_3

    Args:
        in_features: D, input features (the signal length). Default: ``40``.
        hidden: H, units of each hidden layer. Default: ``100``.
        num_classes: K, outputs. Default: ``10``.

    Attributes:
        fc1, fc2, fc3: ``nn.Linear`` (D → H, H → H, H → K).

    Shape:
        - Input: (N, D) or (N, 1, D).
        - Output: (N, K) logits.

    Examples:
        >>> mlp = MLP()
        >>> mlp(torch.zeros(4, 40)).shape
        torch.Size([4, 10])
        >>> sum(p.numel() for p in mlp.parameters())
        15210
    """

    def __init__(self, in_features: int = 40, hidden: int = 100, num_classes: int = 10) -> None:
        super().__init__()
        _check_positive(in_features=in_features, hidden=hidden, num_classes=num_classes)
        self.in_features, self.hidden, self.num_classes = in_features, hidden, num_classes
        self.fc1 = nn.Linear(in_features, hidden)
        self.fc2 = nn.Linear(hidden, hidden)
        self.fc3 = nn.Linear(hidden, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = _as_sequences(x, self.in_features)  # (N, D)
        h = self.fc1(x).relu()  # (N, H)
        h = h + self.fc2(h).relu()  # (N, H)
        return self.fc3(h)  # (N, K)

    def extra_repr(self) -> str:
        return (
            f"in_features={self.in_features}, hidden={self.hidden}, num_classes={self.num_classes}"
        )


class GRUClassifier(nn.Module):
    r"""The MNIST-1D paper's GRU: a small bidirectional GRU read out at every step.

    The signal is a sequence of L scalars. A GRU with H hidden units runs over it in both
    directions from zero states; the outputs at all L steps, (L, 2H) values, are flattened
    and a linear layer maps them to the classes. The paper uses H = 6 (about 5,000
    parameters, mostly in the linear layer).

    Args:
        in_length: L, the length of the input signals. Default: ``40``.
        hidden: H, hidden units per direction. Default: ``6``.
        num_classes: K, outputs. Default: ``10``.
        bidirectional: run a second GRU backwards in time. Default: ``True``.

    Attributes:
        gru: ``nn.GRU(1, H, batch_first=True, bidirectional=bidirectional)``.
        fc: ``nn.Linear(L·D·H, K)``, where D is 2 if bidirectional, else 1.

    Shape:
        - Input: (N, L) or (N, 1, L).
        - Output: (N, K) logits.

    Examples:
        >>> gru = GRUClassifier()
        >>> gru(torch.zeros(4, 40)).shape
        torch.Size([4, 10])
        >>> sum(p.numel() for p in gru.parameters())
        5134
    """

    def __init__(
        self,
        in_length: int = 40,
        hidden: int = 6,
        num_classes: int = 10,
        bidirectional: bool = True,
    ) -> None:
        super().__init__()
        _check_positive(in_length=in_length, hidden=hidden, num_classes=num_classes)
        self.in_length, self.hidden, self.num_classes = in_length, hidden, num_classes
        self.bidirectional = bidirectional
        directions = 2 if bidirectional else 1
        self.gru = nn.GRU(1, hidden, batch_first=True, bidirectional=bidirectional)
        self.fc = nn.Linear(in_length * directions * hidden, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = _as_sequences(x, self.in_length).unsqueeze(-1)  # (N, L, 1)
        out, _ = self.gru(x)  # (N, L, D·H), from zero initial states
        return self.fc(out.flatten(1))  # (N, L·D·H) -> (N, K)

    def extra_repr(self) -> str:
        return (
            f"in_length={self.in_length}, hidden={self.hidden}, "
            f"num_classes={self.num_classes}, bidirectional={self.bidirectional}"
        )
