"""Small models for the normalisation recipe: a CNN for 8x8 digits and an MLP.

Both take the normaliser by name (``"none" | "batch" | "group" | "layer"``) and build it
from this package's from-scratch layers, so the recipe exercises our own code.
"""

from __future__ import annotations

import torch
from torch import nn

from torchkata.norm.layers import BatchNorm1d, BatchNorm2d, GroupNorm, LayerNorm

__all__ = ["MLP", "NORMS", "SmallCNN", "make_norm2d"]

NORMS = ("none", "batch", "group", "layer")


def _check_norm(norm: str) -> None:
    if norm not in NORMS:
        raise ValueError(f"norm: expected one of {NORMS}, got {norm!r}")


def make_norm2d(
    norm: str, num_channels: int, spatial: tuple[int, int], groups: int = 4
) -> nn.Module:
    """A normaliser for (N, C, H, W) feature maps.

    Args:
        norm: ``"none"`` (identity), ``"batch"`` (over N, H, W per channel), ``"group"``
            (over ``num_channels // groups`` channels and H, W per sample) or ``"layer"``
            (over C, H, W per sample).
        num_channels: C.
        spatial: (H, W), needed by ``"layer"``, whose affine is per element.
        groups: number of groups for ``"group"``. Default: ``4``.

    Examples:
        >>> make_norm2d("group", 16, (8, 8))
        GroupNorm(4, 16, eps=1e-05, affine=True, bias=True)
    """
    _check_norm(norm)
    if norm == "none":
        return nn.Identity()
    if norm == "batch":
        return BatchNorm2d(num_channels)
    if norm == "group":
        return GroupNorm(groups, num_channels)
    return LayerNorm((num_channels, *spatial))


class SmallCNN(nn.Module):
    """Three 3x3 convolutions with a normaliser after each, for (N, 1, 8, 8) images.

    conv(1→w) → norm → ReLU → conv(w→2w) → norm → ReLU → max-pool 2 → conv(2w→2w) → norm
    → ReLU → global average pool → linear(2w→classes). Convolutions drop their bias when
    a normaliser follows, since its shift makes the bias redundant.

    Args:
        norm: ``"none" | "batch" | "group" | "layer"``. Default: ``"batch"``.
        width: w, channels of the first convolution. Default: ``16``.
        groups: groups of GroupNorm. Default: ``4``.
        num_classes: outputs. Default: ``10``.

    Shape:
        - Input: (N, 1, 8, 8).
        - Output: (N, num_classes) logits.

    Examples:
        >>> SmallCNN("layer")(torch.zeros(2, 1, 8, 8)).shape
        torch.Size([2, 10])
    """

    def __init__(
        self, norm: str = "batch", width: int = 16, groups: int = 4, num_classes: int = 10
    ):
        super().__init__()
        _check_norm(norm)
        bias = norm == "none"
        w = width
        self.features = nn.Sequential(
            nn.Conv2d(1, w, 3, padding=1, bias=bias),
            make_norm2d(norm, w, (8, 8), groups),
            nn.ReLU(),
            nn.Conv2d(w, 2 * w, 3, padding=1, bias=bias),
            make_norm2d(norm, 2 * w, (8, 8), groups),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(2 * w, 2 * w, 3, padding=1, bias=bias),
            make_norm2d(norm, 2 * w, (4, 4), groups),
            nn.ReLU(),
        )
        self.head = nn.Linear(2 * w, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.features(x)  # (N, 2w, 4, 4)
        return self.head(x.mean(dim=(2, 3)))  # (N, classes)


class MLP(nn.Module):
    """An MLP with a normaliser before each activation: (Linear → norm → act) x depth → Linear.

    With ``activation="tanh"`` and a large ``init_gain`` it shows saturation and vanishing
    gradients (claim 7.5): weights are then drawn from N(0, (init_gain / sqrt(fan_in))²),
    so without normalisation the pre-activations have a standard deviation of about
    ``init_gain`` and tanh saturates.

    Args:
        in_features: inputs per sample. Default: ``64``.
        hidden: units per hidden layer. Default: ``64``.
        depth: hidden layers. Default: ``2``.
        norm: ``"none" | "batch" | "group" | "layer"``; BatchNorm here normalises each unit
            over the N samples of the batch only. Default: ``"batch"``.
        activation: ``"relu" | "tanh"``. Default: ``"relu"``.
        init_gain: scale of the initial weights, or ``None`` for PyTorch's default
            initialisation. Default: ``None``.
        groups: groups of GroupNorm. Default: ``4``.
        num_classes: outputs. Default: ``10``.

    Attributes:
        activations: after a forward pass, the (N, hidden) output of each activation, in order.

    Shape:
        - Input: (N, in_features).
        - Output: (N, num_classes).

    Examples:
        >>> model = MLP(depth=3, norm="layer", activation="tanh", init_gain=3.0)
        >>> model(torch.randn(5, 64)).shape, len(model.activations)
        (torch.Size([5, 10]), 3)
    """

    def __init__(
        self,
        in_features: int = 64,
        hidden: int = 64,
        depth: int = 2,
        norm: str = "batch",
        activation: str = "relu",
        init_gain: float | None = None,
        groups: int = 4,
        num_classes: int = 10,
    ):
        super().__init__()
        _check_norm(norm)
        if activation not in ("relu", "tanh"):
            raise ValueError(f"activation: expected 'relu' or 'tanh', got {activation!r}")
        self.activation = torch.relu if activation == "relu" else torch.tanh
        self.linears = nn.ModuleList()
        self.norms = nn.ModuleList()
        for i in range(depth):
            self.linears.append(nn.Linear(in_features if i == 0 else hidden, hidden))
            self.norms.append(
                {
                    "none": nn.Identity,
                    "batch": lambda: BatchNorm1d(hidden),
                    "group": lambda: GroupNorm(groups, hidden),
                    "layer": lambda: LayerNorm(hidden),
                }[norm]()
            )
        self.head = nn.Linear(hidden, num_classes)
        if init_gain is not None:
            with torch.no_grad():
                for linear in self.linears:
                    linear.weight.normal_(0.0, init_gain / linear.in_features**0.5)
                    linear.bias.zero_()
        self.activations: list[torch.Tensor] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.activations = []
        for linear, norm in zip(self.linears, self.norms, strict=True):
            x = self.activation(norm(linear(x)))  # (N, hidden)
            self.activations.append(x)
        return self.head(x)
