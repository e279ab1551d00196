"""The scikit-learn 8x8 digits (1,797 images, bundled with scikit-learn), as tensors."""

from __future__ import annotations

import dataclasses

import torch

__all__ = ["Split", "load_digits", "subsample_classes"]


@dataclasses.dataclass(frozen=True)
class Split:
    """A fixed train/test split of inputs and labels.

    Attributes:
        x_train: (N_train, *) float32 inputs: (N, 1, 8, 8) pixels in [0, 1] for
            :func:`load_digits`, (N, 40) signals for ``load_mnist1d``.
        y_train: (N_train,) int64 labels in 0..9.
        x_test: (N_test, *) float32 inputs, as ``x_train``.
        y_test: (N_test,) int64 labels in 0..9.
    """

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor


def load_digits(test_fraction: float = 0.2, split_seed: int = 0) -> Split:
    """Load scikit-learn's digits as a stratified train/test split.

    The split depends only on ``test_fraction`` and ``split_seed``, so every run and
    every recipe that uses the defaults sees the same test set.

    Args:
        test_fraction: fraction of the 1,797 images held out for testing. Default: ``0.2``.
        split_seed: seed of the split (not of training). Default: ``0``.

    Examples:
        >>> split = load_digits()
        >>> tuple(split.x_train.shape), tuple(split.x_test.shape)
        ((1437, 1, 8, 8), (360, 1, 8, 8))
    """
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"test_fraction: expected a number in (0, 1), got {test_fraction!r}")
    from sklearn.datasets import load_digits as sklearn_digits
    from sklearn.model_selection import train_test_split

    images, labels = sklearn_digits(return_X_y=True)
    x_train, x_test, y_train, y_test = train_test_split(
        images, labels, test_size=test_fraction, random_state=split_seed, stratify=labels
    )

    def to_images(x):  # (N, 64) in 0..16 -> (N, 1, 8, 8) in [0, 1]
        return torch.tensor(x, dtype=torch.float32).reshape(-1, 1, 8, 8) / 16.0

    return Split(
        to_images(x_train),
        torch.tensor(y_train, dtype=torch.int64),
        to_images(x_test),
        torch.tensor(y_test, dtype=torch.int64),
    )


def subsample_classes(
    y: torch.Tensor, classes: tuple[int, ...], keep_fraction: float, generator: torch.Generator
) -> torch.Tensor:
    """Indices that keep every sample except a random ``keep_fraction`` of ``classes``.

    Makes a balanced training set imbalanced: each listed class keeps
    ``max(1, round(keep_fraction * count))`` of its samples, chosen with ``generator``.

    Args:
        y: (N,) integer labels.
        classes: the classes to make rare.
        keep_fraction: fraction of each rare class's samples to keep, in (0, 1].
        generator: the source of randomness.

    Returns:
        (M,) int64 indices into ``y``, in increasing order.

    Examples:
        >>> y = torch.tensor([0, 0, 0, 0, 1, 1, 1, 1])
        >>> subsample_classes(y, (1,), 0.5, torch.Generator().manual_seed(0)).tolist()
        [0, 1, 2, 3, 4, 5]
    """
    if not 0.0 < keep_fraction <= 1.0:
        raise ValueError(f"keep_fraction: expected a number in (0, 1], got {keep_fraction!r}")
    keep = torch.ones(len(y), dtype=torch.bool)
    for c in classes:
        members = (y == c).nonzero().flatten()
        if len(members) == 0:
            raise ValueError(f"classes: class {c} has no samples in y")
        n_keep = max(1, round(keep_fraction * len(members)))
        dropped = members[torch.randperm(len(members), generator=generator)[n_keep:]]
        keep[dropped] = False
    return keep.nonzero().flatten()


def k_per_class(y: torch.Tensor, k: int, generator: torch.Generator) -> torch.Tensor:
    """Indices of ``k`` random samples of each class (few-label experiments).

    Args:
        y: (N,) integer labels.
        k: samples per class (all of a class when it has fewer); ``0`` means every sample.
        generator: the source of randomness.

    Returns:
        (M,) int64 indices into ``y``, class by class in increasing label order.

    Examples:
        >>> y = torch.tensor([0, 1, 0, 1, 0, 1])
        >>> idx = k_per_class(y, 2, torch.Generator().manual_seed(0))
        >>> y[idx].tolist()
        [0, 0, 1, 1]
    """
    if k < 0:
        raise ValueError(f"k: expected >= 0 (0 = all), got {k!r}")
    if k == 0:
        return torch.arange(len(y))
    picks = []
    for c in y.unique():
        members = (y == c).nonzero().flatten()
        picks.append(members[torch.randperm(len(members), generator=generator)[:k]])
    return torch.cat(picks)
