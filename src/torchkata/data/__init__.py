"""Data sets that need no network: generated here, or bundled with a dependency."""

from torchkata.data.digits import Split, k_per_class, load_digits, subsample_classes
from torchkata.data.mnist1d import load_mnist1d
from torchkata.data.streams import FEATURES, agrawal, agrawal_label, drift_points, drift_stream

__all__ = [
    "FEATURES",
    "Split",
    "agrawal",
    "agrawal_label",
    "drift_points",
    "drift_stream",
    "k_per_class",
    "load_digits",
    "load_mnist1d",
    "subsample_classes",
]
