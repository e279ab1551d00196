"""Tip 7: normalisation layers written from tensor operations.

BatchNorm, LayerNorm, GroupNorm, InstanceNorm and RMSNorm with the arguments, parameter
and buffer names and behaviour of their ``torch.nn`` twins.
"""

from torchkata.norm.layers import (
    BatchNorm1d,
    BatchNorm2d,
    GroupNorm,
    InstanceNorm2d,
    LayerNorm,
    RMSNorm,
)

__all__ = [
    "BatchNorm1d",
    "BatchNorm2d",
    "GroupNorm",
    "InstanceNorm2d",
    "LayerNorm",
    "RMSNorm",
]
