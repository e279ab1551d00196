"""Running standardisation for streams: Welford's mean and variance, one sample at a time."""

from __future__ import annotations

import numpy as np

__all__ = ["RunningStandardizer"]


class RunningStandardizer:
    r"""Standardise vectors with the mean and standard deviation of the vectors seen so far.

    Welford's algorithm (1962) updates the mean and the sum of squared deviations
    :math:`M_2` in one pass, without the cancellation of :math:`E[x^2] - E[x]^2`:

    .. math::
        \mu_n = \mu_{n-1} + \frac{x_n - \mu_{n-1}}{n}, \qquad
        M_{2,n} = M_{2,n-1} + (x_n - \mu_{n-1})(x_n - \mu_n), \qquad
        \sigma_n^2 = M_{2,n} / n

    A feature whose standard deviation is still 0 (or that has been seen fewer than
    twice) is only centred.

    Args:
        size: number of features.

    Examples:
        >>> scaler = RunningStandardizer(2)
        >>> for row in ([1.0, 10.0], [3.0, 10.0]):
        ...     scaler.update(np.array(row))
        >>> scaler.transform(np.array([3.0, 12.0]))
        array([1., 2.])
        >>> scaler.transform_with(np.array([3.0, 10.0]))  # as if it were the third sample
        array([0.70710678, 0.        ])
    """

    def __init__(self, size: int) -> None:
        if not isinstance(size, int) or size < 1:
            raise ValueError(f"size: expected a positive int, got {size!r}")
        self.size = size
        self.n = 0
        self.mean = np.zeros(size)
        self.m2 = np.zeros(size)

    def update(self, x: np.ndarray) -> None:
        """Add one vector ``x`` of shape ``(size,)`` to the statistics."""
        self.n += 1
        delta = x - self.mean
        self.mean += delta / self.n
        self.m2 += delta * (x - self.mean)

    def std(self) -> np.ndarray:
        """Standard deviation per feature (population), 1 where it is not defined yet."""
        if self.n < 2:
            return np.ones(self.size)
        std = np.sqrt(self.m2 / self.n)
        std[std == 0.0] = 1.0
        return std

    def transform(self, x: np.ndarray) -> np.ndarray:
        """``(x - mean) / std`` with the statistics so far; shape ``(size,)`` or ``(N, size)``."""
        return (x - self.mean) / self.std()

    def transform_with(self, x: np.ndarray) -> np.ndarray:
        """Standardise one vector ``x`` (size,) with the statistics as if it had been added
        (the first vector maps to 0), without adding it."""
        n = self.n + 1
        delta = x - self.mean
        mean = self.mean + delta / n
        if n < 2:
            return x - mean
        std = np.sqrt((self.m2 + delta * (x - mean)) / n)
        std[std == 0.0] = 1.0
        return (x - mean) / std

    def inverse(self, z: np.ndarray) -> np.ndarray:
        """``z * std + mean``: back to the original units."""
        return z * self.std() + self.mean

    def state_dict(self) -> dict:
        return {"n": self.n, "mean": self.mean.tolist(), "m2": self.m2.tolist()}

    def load_state_dict(self, state: dict) -> None:
        if len(state["mean"]) != self.size:
            raise ValueError(f"state: expected {self.size} features, got {len(state['mean'])}")
        self.n = int(state["n"])
        self.mean = np.array(state["mean"], dtype=np.float64)
        self.m2 = np.array(state["m2"], dtype=np.float64)

    def __repr__(self) -> str:
        return f"RunningStandardizer(size={self.size}, n={self.n})"
