"""Data sets that need no network: generated here, or bundled with a dependency."""

from torchkata.data.digits import Split, load_digits, subsample_classes

__all__ = ["Split", "load_digits", "subsample_classes"]
