"""Tip 1: custom losses, written from tensor operations, and ``check_loss``.

Every loss is an ``nn.Module`` with ``reduction='mean'|'sum'|'none'`` and a function of
the same name in snake case; each is tested against its PyTorch twin or an independent
float64 formula in values and gradients. :class:`CompositeLoss` adds weighted terms and
records each for logging; :func:`check_loss` runs the source document's debugging advice
(reference on random inputs, stability at extremes, gradcheck, reductions) on any loss.
"""

from torchkata.losses.check import CheckResult, LossCheckReport, check_loss
from torchkata.losses.composite import CompositeLoss
from torchkata.losses.losses import (
    DiceLoss,
    FocalLoss,
    LabelSmoothingCrossEntropy,
    NTXentLoss,
    SquaredErrorLoss,
    TripletMarginLoss,
    dice_loss,
    focal_loss,
    label_smoothing_cross_entropy,
    nt_xent_loss,
    squared_error_loss,
    triplet_margin_loss,
)

__all__ = [
    "CheckResult",
    "CompositeLoss",
    "DiceLoss",
    "FocalLoss",
    "LabelSmoothingCrossEntropy",
    "LossCheckReport",
    "NTXentLoss",
    "SquaredErrorLoss",
    "TripletMarginLoss",
    "check_loss",
    "dice_loss",
    "focal_loss",
    "label_smoothing_cross_entropy",
    "nt_xent_loss",
    "squared_error_loss",
    "triplet_margin_loss",
]
