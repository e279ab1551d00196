"""Tip 10: automated sanity checks for any model and training step.

:func:`diagnose` runs nine checks (:data:`CHECKS`) on copies of a model and returns a
:class:`Diagnosis`; :func:`find_leakage` finds test samples in a training set;
:func:`lr_range_test` is the LR finder; :data:`GALLERY` holds small models with one
planted bug each, and the check that must catch it.
"""

from torchkata.doctor.checks import CHECKS, CheckResult, Diagnosis, diagnose, find_leakage
from torchkata.doctor.gallery import GALLERY, GalleryCase
from torchkata.doctor.lr_finder import LRRangeResult, lr_range_test

__all__ = [
    "CHECKS",
    "GALLERY",
    "CheckResult",
    "Diagnosis",
    "GalleryCase",
    "LRRangeResult",
    "diagnose",
    "find_leakage",
    "lr_range_test",
]
