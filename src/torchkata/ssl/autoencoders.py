r"""Autoencoders for self-supervised learning (tip 8).

An autoencoder learns from its inputs alone: the encoder compresses an input to a few
numbers (the code), the decoder rebuilds the input from them, and the training target
is the input itself, so no label is needed. :class:`AutoEncoder` defaults to the
document's network: Linear layers 784-128-64-12-3 and back 3-12-64-128-784, ReLU
between them and Tanh at the output.

The Tanh output lies in :math:`(-1, 1)`, so the data must be scaled to :math:`[-1, 1]`
before training (pixels in :math:`[0, 1]` would leave the negative half of the output
range unused and targets at 1 unreachable); :func:`to_tanh_range` does it, and
``output_activation=None`` drops the Tanh for data that cannot be bounded.

:class:`DenoisingAutoEncoder` corrupts its input during training and learns to rebuild
the clean one (Vincent et al., 2008), and :func:`anomaly_scores` turns a trained
autoencoder into an anomaly detector: inputs unlike the training data are rebuilt
worse, so their reconstruction error is larger.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence

import torch
from torch import Tensor, nn

__all__ = ["AutoEncoder", "DenoisingAutoEncoder", "anomaly_scores", "to_tanh_range"]


def _positive_int(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name}: expected a positive int, got {value!r}")
    return value


def _mlp(
    widths: Sequence[int],
    activation: Callable[[], nn.Module],
    output_activation: Callable[[], nn.Module] | None,
    factory_kwargs: dict,
) -> nn.Sequential:
    """Linear layers through ``widths`` with ``activation`` between them."""
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(itertools.pairwise(widths)):
        if i > 0:
            layers.append(activation())
        layers.append(nn.Linear(a, b, **factory_kwargs))
    if output_activation is not None:
        layers.append(output_activation())
    return nn.Sequential(*layers)


class AutoEncoder(nn.Module):
    r"""A fully connected autoencoder: an encoder to a small code and a decoder back.

    With the defaults this is the document's network for 28x28 images,

    .. code-block:: text

        encoder: Linear(784, 128), ReLU, Linear(128, 64), ReLU, Linear(64, 12), ReLU,
                 Linear(12, 3)
        decoder: Linear(3, 12), ReLU, Linear(12, 64), ReLU, Linear(64, 128), ReLU,
                 Linear(128, 784), Tanh

    that is :math:`\hat x = \mathrm{decoder}(\mathrm{encoder}(x))`, trained to make
    :math:`\hat x` close to :math:`x` (for example with ``nn.MSELoss()(model(x), x)``).
    The code (the encoder's output) has no activation; the decoder mirrors the encoder.

    The default ``output_activation`` (Tanh) bounds the output to :math:`(-1, 1)`: scale
    the data to :math:`[-1, 1]` first, e.g. with :func:`to_tanh_range`.

    Args:
        in_features: size of each input sample (784 = 28·28 pixels). Default: ``784``
        hidden: widths of the encoder's hidden layers, input side first; the decoder uses
            them in reverse. Default: ``(128, 64, 12)``
        bottleneck: size of the code. Default: ``3``
        activation: callable returning the module placed between Linear layers.
            Default: ``nn.ReLU``
        output_activation: callable returning the decoder's last module, or ``None`` for
            a linear output. Default: ``nn.Tanh``
        device: device of the parameters. Default: ``None``
        dtype: dtype of the parameters. Default: ``None``

    Attributes:
        encoder: ``nn.Sequential`` mapping :math:`(*, H_{in})` to :math:`(*, B)`.
        decoder: ``nn.Sequential`` mapping :math:`(*, B)` to :math:`(*, H_{in})`.

    Shape:
        - Input: :math:`(*, H_{in})` where :math:`H_{in}` = ``in_features``.
        - Output: :math:`(*, H_{in})`, the reconstruction.
        - :meth:`encode`: :math:`(*, H_{in})` to :math:`(*, B)` where :math:`B` =
          ``bottleneck``.

    Examples:
        >>> _ = torch.manual_seed(0)
        >>> model = AutoEncoder()  # the document's 784-128-64-12-3 network
        >>> [m.out_features for m in model.encoder if isinstance(m, nn.Linear)]
        [128, 64, 12, 3]
        >>> x = to_tanh_range(torch.rand(5, 784))  # pixels in [0, 1] -> [-1, 1]
        >>> model(x).shape, model.encode(x).shape
        (torch.Size([5, 784]), torch.Size([5, 3]))
        >>> nn.functional.mse_loss(model(x), x)  # the target is the input itself
        tensor(0.3...)
    """

    def __init__(
        self,
        in_features: int = 784,
        hidden: Sequence[int] = (128, 64, 12),
        bottleneck: int = 3,
        activation: Callable[[], nn.Module] = nn.ReLU,
        output_activation: Callable[[], nn.Module] | None = nn.Tanh,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        _positive_int("in_features", in_features)
        _positive_int("bottleneck", bottleneck)
        if (
            isinstance(hidden, (str, bytes))
            or not isinstance(hidden, Sequence)
            or not all(isinstance(w, int) and not isinstance(w, bool) and w > 0 for w in hidden)
        ):
            raise ValueError(f"hidden: expected a sequence of positive ints, got {hidden!r}")
        if not callable(activation):
            raise ValueError(
                f"activation: expected a callable returning a module, got {activation!r}"
            )
        if output_activation is not None and not callable(output_activation):
            raise ValueError(
                "output_activation: expected None or a callable returning a module, "
                f"got {output_activation!r}"
            )
        self.in_features = in_features
        self.hidden = tuple(hidden)
        self.bottleneck = bottleneck
        widths = (in_features, *self.hidden, bottleneck)
        factory_kwargs = {"device": device, "dtype": dtype}
        self.encoder = _mlp(widths, activation, None, factory_kwargs)
        self.decoder = _mlp(widths[::-1], activation, output_activation, factory_kwargs)

    def encode(self, x: Tensor) -> Tensor:
        """The code of ``x``: :math:`(*, H_{in})` to :math:`(*, B)`."""
        return self.encoder(x)

    def forward(self, x: Tensor) -> Tensor:
        return self.decoder(self.encoder(x))

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, hidden={self.hidden}, bottleneck={self.bottleneck}"


class DenoisingAutoEncoder(AutoEncoder):
    r"""An :class:`AutoEncoder` that corrupts its input in training mode.

    Vincent et al., "Extracting and Composing Robust Features with Denoising
    Autoencoders", ICML 2008. In training mode :meth:`forward` reconstructs from a
    corrupted copy :math:`\tilde x` of the input,

    .. math::
        \tilde x = m \odot (x + \sigma \varepsilon) + (1 - m) \cdot v, \quad
        \varepsilon \sim \mathcal{N}(0, I), \quad m_i \sim \mathrm{Bernoulli}(1 - p),

    with :math:`\sigma` = ``noise_std``, :math:`p` = ``mask_prob`` and :math:`v` =
    ``mask_value``, so the loss against the clean :math:`x` (``mse_loss(model(x), x)``)
    teaches it to remove the corruption. In eval mode nothing is corrupted: the model maps
    a (possibly noisy) input to its reconstruction. Like ``nn.Dropout``, the corruption
    draws from torch's global random number generator; seed it with
    ``torch.manual_seed``.

    Args:
        in_features, hidden, bottleneck, activation, output_activation, device, dtype:
            as in :class:`AutoEncoder`.
        noise_std: standard deviation :math:`\sigma` of the additive Gaussian noise.
            Default: ``0.3``
        mask_prob: probability :math:`p` that an input element is replaced by
            ``mask_value`` (masking noise). Default: ``0.0``
        mask_value: value of a masked element. Vincent et al. set masked pixels to 0,
            the "off" value of their :math:`[0, 1]` data; for data in :math:`[-1, 1]`
            (Tanh output) "off" is -1. Default: ``-1.0``

    With ``noise_std=0`` and ``mask_prob=0`` it behaves as a plain :class:`AutoEncoder`.

    Shape:
        - Input: :math:`(*, H_{in})` where :math:`H_{in}` = ``in_features``.
        - Output: :math:`(*, H_{in})`, the reconstruction of the clean input.

    Examples:
        >>> _ = torch.manual_seed(0)
        >>> model = DenoisingAutoEncoder(64, hidden=(32,), bottleneck=3, noise_std=0.5)
        >>> x = to_tanh_range(torch.rand(4, 64))
        >>> model.corrupt(x).sub(x).std()  # the noise that training mode adds
        tensor(0.5...)
        >>> torch.equal(model(x), model(x))  # training mode: a fresh corruption each call
        False
        >>> _ = model.eval()
        >>> torch.equal(model(x), model(x))  # eval mode: no corruption
        True
    """

    def __init__(
        self,
        in_features: int = 784,
        hidden: Sequence[int] = (128, 64, 12),
        bottleneck: int = 3,
        activation: Callable[[], nn.Module] = nn.ReLU,
        output_activation: Callable[[], nn.Module] | None = nn.Tanh,
        noise_std: float = 0.3,
        mask_prob: float = 0.0,
        mask_value: float = -1.0,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__(
            in_features, hidden, bottleneck, activation, output_activation, device, dtype
        )
        if (
            isinstance(noise_std, bool)
            or not isinstance(noise_std, (int, float))
            or not (0 <= noise_std < math.inf)
        ):
            raise ValueError(f"noise_std: expected a finite number >= 0, got {noise_std!r}")
        if (
            isinstance(mask_prob, bool)
            or not isinstance(mask_prob, (int, float))
            or not (0 <= mask_prob < 1)
        ):
            raise ValueError(f"mask_prob: expected a number in [0, 1), got {mask_prob!r}")
        self.noise_std = float(noise_std)
        self.mask_prob = float(mask_prob)
        self.mask_value = float(mask_value)

    def corrupt(self, x: Tensor) -> Tensor:
        """A corrupted copy of ``x`` (whatever the mode); ``x`` itself is left unchanged."""
        if self.noise_std > 0:
            x = x + self.noise_std * torch.randn_like(x)
        if self.mask_prob > 0:
            keep = torch.rand_like(x) >= self.mask_prob
            x = torch.where(keep, x, torch.full_like(x, self.mask_value))
        return x

    def forward(self, x: Tensor) -> Tensor:
        if self.training:
            x = self.corrupt(x)
        return self.decoder(self.encoder(x))

    def extra_repr(self) -> str:
        return (
            f"{super().extra_repr()}, noise_std={self.noise_std}, "
            f"mask_prob={self.mask_prob}, mask_value={self.mask_value}"
        )


def anomaly_scores(autoencoder: nn.Module, x: Tensor) -> Tensor:
    r"""Per-sample mean squared reconstruction error, a score that is high for anomalies.

    .. math::
        s_n = \frac{1}{D} \sum_{i=1}^{D} \left(\mathrm{autoencoder}(x)_{n,i} - x_{n,i}\right)^2

    where :math:`D` is the number of elements of one sample. An autoencoder trained on
    normal data rebuilds inputs like them well and others badly, so a threshold on
    :math:`s_n` flags anomalies. The module runs in eval mode (no corruption, no
    dropout, running statistics) without building a graph; the train/eval mode of each
    of its submodules is restored afterwards.

    Args:
        autoencoder: a module whose output has the shape of its input.
        x: a batch of samples, :math:`(N, *)`, scaled as in training.

    Returns:
        :math:`(N,)` scores, without gradient.

    Examples:
        >>> _ = torch.manual_seed(0)
        >>> model = AutoEncoder(64, hidden=(32,), bottleneck=3)
        >>> x = to_tanh_range(torch.rand(6, 64))
        >>> scores = anomaly_scores(model, x)
        >>> scores.shape, scores.requires_grad, model.training
        (torch.Size([6]), False, True)
    """
    if not isinstance(x, Tensor) or x.dim() < 1 or x.shape[0] == 0:
        shape = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
        raise ValueError(f"x: expected a non-empty batch (N, *) tensor, got {shape}")
    modes = [(m, m.training) for m in autoencoder.modules()]
    autoencoder.eval()
    try:
        with torch.no_grad():
            reconstruction = autoencoder(x)
    finally:
        for module, training in modes:
            module.training = training
    if reconstruction.shape != x.shape:
        raise ValueError(
            "autoencoder: expected an output of the input's shape "
            f"{tuple(x.shape)}, got {tuple(reconstruction.shape)}"
        )
    N = x.shape[0]
    return (reconstruction - x).pow(2).reshape(N, -1).mean(1)  # (N, D) -> (N,)


def to_tanh_range(x: Tensor, low: float = 0.0, high: float = 1.0) -> Tensor:
    r"""Map values in ``[low, high]`` linearly onto :math:`[-1, 1]`, the range of Tanh.

    .. math::
        y = 2 \frac{x - \mathrm{low}}{\mathrm{high} - \mathrm{low}} - 1

    Its inverse is :math:`x = \mathrm{low} + (y + 1)(\mathrm{high} - \mathrm{low}) / 2`.

    Args:
        x: values, any shape.
        low: the value mapped to -1. Default: ``0.0``
        high: the value mapped to 1. Default: ``1.0``

    Returns:
        a tensor of the shape of ``x``.

    Examples:
        >>> to_tanh_range(torch.tensor([0.0, 0.25, 1.0]))
        tensor([-1.0000, -0.5000,  1.0000])
        >>> to_tanh_range(torch.tensor([0.0, 16.0]), high=16.0)  # scikit-learn digits
        tensor([-1.,  1.])
    """
    if not high > low:
        raise ValueError(f"high: expected a number greater than low={low!r}, got {high!r}")
    return (x - low) * (2.0 / (high - low)) - 1.0
