"""MNIST-1D (Greydanus, 2020), generated locally by the ``mnist1d`` package, as tensors."""

from __future__ import annotations

import functools
import random

import numpy as np
import torch

from torchkata.data.digits import Split

__all__ = ["load_mnist1d"]

_EXTRA_HINT = "pip install 'torchkata[ssl]'"


@functools.lru_cache(maxsize=4)
def _generate(seed: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Build the data set with the package's default arguments; cached per seed."""
    try:
        from mnist1d.data import get_dataset_args, make_dataset
    except ImportError as exc:
        raise ImportError(
            f"load_mnist1d needs the package mnist1d, the `ssl` extra: {_EXTRA_HINT}"
        ) from exc
    args = get_dataset_args()
    args.seed = seed
    # make_dataset reseeds the global `random` and NumPy generators (mnist1d.utils.set_seed)
    # and draws from them; restore both so that loading data leaves the caller's streams be.
    py_state, np_state = random.getstate(), np.random.get_state()
    try:
        # make_dataset only computes: the network and the disk are touched by
        # mnist1d.data.get_dataset, which downloads or pickles, and is never called here.
        data = make_dataset(args)
    finally:
        random.setstate(py_state)
        np.random.set_state(np_state)
    return (
        torch.tensor(data["x"], dtype=torch.float32),
        torch.tensor(data["y"], dtype=torch.int64),
        torch.tensor(data["x_test"], dtype=torch.float32),
        torch.tensor(data["y_test"], dtype=torch.int64),
    )


def load_mnist1d(seed: int = 42) -> Split:
    """Load MNIST-1D: 5,000 one-dimensional "digits" of length 40, in 10 classes.

    From "Scaling Down Deep Learning" (Greydanus, 2020, arXiv:2011.14439). Each
    signal is one of ten hand-made 12-point templates, padded, stretched, scaled,
    translated, sheared, given correlated and i.i.d. noise and resampled to 40 points; the
    whole set is then centred and scaled to unit standard deviation. The ``mnist1d``
    package's ``make_dataset`` builds it with its default arguments (500 signals per
    class, shuffled, the first 80% for training); nothing is downloaded or written to
    disk. With ``seed=42``, the package default, this is the data set of the paper, on
    which it reports test accuracies of 32% (logistic regression), 68% (MLP), 94% (CNN)
    and 91% (GRU).

    Generating takes about 1.5 s; the result is cached in memory per seed (the four most
    recent seeds), and each call returns fresh copies, so callers may modify them.
    The global ``random`` and NumPy generators, which the package reseeds, are restored.

    Args:
        seed: seed of the generator; ``42`` gives the paper's data set. Default: ``42``.

    Returns:
        Split: ``x_train`` (4000, 40) and ``x_test`` (1000, 40) float32 signals;
        ``y_train`` (4000,) and ``y_test`` (1000,) int64 labels in 0..9. The classes are
        balanced over all 5,000 signals (500 each), nearly so within each part.

    Raises:
        ImportError: the package ``mnist1d`` is not installed; the message names the
            ``ssl`` extra.

    Examples:
        >>> split = load_mnist1d()
        >>> tuple(split.x_train.shape), tuple(split.x_test.shape)
        ((4000, 40), (1000, 40))
        >>> split.y_train[:10].tolist()
        [2, 6, 4, 5, 6, 6, 6, 0, 3, 1]
    """
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**32:
        raise ValueError(f"seed: expected an int in [0, 2**32), got {seed!r}")
    return Split(*(t.clone() for t in _generate(seed)))
