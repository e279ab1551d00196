r"""Concept-drift detectors for a stream of errors or losses of an online learner.

An online learner that keeps learning from a stream (see :mod:`torchkata.online`) has no
held-out set to tell it that the world changed. A drift detector watches one number per
sample, typically the learner's 0/1 mistake or its loss on the sample *before* learning
from it, and says when the distribution of that number changed, so that the caller can
reset, retrain or enlarge the learner:

- :class:`ADWIN`: adaptive windowing (Bifet & Gavaldà, 2007). Keeps a window of recent
  values, compressed in an exponential histogram, and drops its oldest part when two
  sub-windows have means that differ by more than a Hoeffding/Bernstein-style bound.
  Detects increases and decreases of the mean; no tuning beyond a confidence ``delta``.
- :class:`PageHinkley`: the Page-Hinkley (CUSUM) test (Page, 1954). Accumulates deviations
  from the running mean with a forgetting factor and detects when the sum moves more than
  ``threshold`` from its extreme; ``mode`` picks increases, decreases or both.

Both have the constructor arguments, defaults and detections of their twins in River
(``river.drift.ADWIN`` and ``river.drift.PageHinkley``, checked against River 0.25 value
for value in ``tests/online/test_drift.py``) and, like them, start from scratch on the
update after a detection, so each detection marks the start of a new concept. Neither
uses torch: the state is a few Python floats, saved by ``state_dict()`` as JSON-able
values, so that a detector restored with ``load_state_dict`` continues bit-identically.

Examples:
    >>> import random
    >>> from torchkata.online.drift import ADWIN
    >>> rng = random.Random(0)
    >>> errors = [float(rng.random() < (0.1 if t < 1000 else 0.5)) for t in range(2000)]
    >>> detector = ADWIN()
    >>> [t for t, e in enumerate(errors) if detector.update(e)]
    [1087]
"""

from __future__ import annotations

import math
import numbers
from typing import Any

__all__ = ["ADWIN", "PageHinkley"]

_MODES = ("up", "down", "both")


# ---------------------------------------------------------------------------------------
# Validation helpers
# ---------------------------------------------------------------------------------------


def _check_int(name: str, value: object, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < low:
        raise ValueError(f"{name}: expected an int >= {low}, got {value!r}")
    return int(value)


def _check_real(name: str, value: object, expected: str, ok: Any) -> float:
    """``value`` as a float if it is a finite real number with ``ok(value)``, else raise."""
    if (
        isinstance(value, bool)
        or not isinstance(value, numbers.Real)
        or not math.isfinite(value)
        or not ok(float(value))
    ):
        raise ValueError(f"{name}: expected {expected}, got {value!r}")
    return float(value)


def _as_float(x: object) -> float:
    """The update's value as a Python float: a finite real number (bool, numpy scalar and
    one-element tensor included)."""
    if isinstance(x, (str, bytes, complex)):
        raise ValueError(f"x: expected a finite real number, got {x!r}")
    try:
        value = float(x)  # type: ignore[arg-type]
    except (TypeError, ValueError, RuntimeError) as error:
        raise ValueError(f"x: expected a finite real number, got {x!r}") from error
    if not math.isfinite(value):
        raise ValueError(f"x: expected a finite real number, got {value!r}")
    return value


def _check_state(name: str, state: object, keys: tuple[str, ...]) -> dict[str, Any]:
    if not isinstance(state, dict):
        raise ValueError(f"state: expected a dict from {name}.state_dict(), got {state!r}")
    missing = sorted(set(keys) - set(state))
    unexpected = sorted(set(state) - set(keys))
    if missing or unexpected:
        raise ValueError(
            f"state: expected the keys of {name}.state_dict(), got missing keys {missing} "
            f"and unexpected keys {unexpected}"
        )
    return state


def _check_same_args(state: dict[str, Any], args: dict[str, Any]) -> None:
    for key, value in args.items():
        if state[key] != value:
            raise ValueError(
                f"state: expected {key}={value!r} as in this detector, got {state[key]!r}"
            )


# ---------------------------------------------------------------------------------------
# ADWIN
# ---------------------------------------------------------------------------------------


class ADWIN:
    r"""Adaptive windowing drift detector (ADWIN2, with an exponential histogram).

    From Bifet & Gavaldà, "Learning from time-changing data with adaptive windowing",
    SIAM International Conference on Data Mining, 2007. ADWIN keeps a window :math:`W`
    of the most recent values and, every ``clock`` updates once the window holds more than
    ``grace_period`` values, looks at every split of :math:`W` into an older part
    :math:`W_0` (:math:`n_0` values) and a newer part :math:`W_1` (:math:`n_1` values)
    at a bucket boundary. A split with :math:`n_0, n_1 \ge L` (``min_window_length``) is a
    cut when

    .. math::
        |\hat\mu_{W_0} - \hat\mu_{W_1}| > \sqrt{\frac{2}{m}\,\sigma_W^2\,
        \ln\frac{2}{\delta'}} + \frac{2}{3m}\ln\frac{2}{\delta'}, \qquad
        \frac{1}{m} = \frac{1}{n_0 - L + 1} + \frac{1}{n_1 - L + 1}, \qquad
        \delta' = \frac{\delta}{\ln n}

    with :math:`\sigma_W^2` the variance of the whole window and :math:`n = n_0 + n_1`.
    On a cut the oldest bucket is dropped and the splits are tried again until none cuts;
    the update then reports a drift, and the next update starts from an empty window.

    The window is stored as in ADWIN2: rows of at most ``max_buckets`` buckets, row
    :math:`i` holding buckets of :math:`2^i` values (each a sum and a sum of squared
    deviations); when a row overflows its two oldest buckets merge into the next row.
    The window takes :math:`O(M \log(n / M))` buckets for :math:`M` = ``max_buckets``,
    and one pass over the splits as many steps.

    The bound is the paper's Bernstein-style :math:`\epsilon_{cut}` in the form of MOA and
    River, which differs from the paper's statement for ADWIN in two places:
    :math:`\delta' = \delta / \ln n` for :math:`\delta / n` (only the bucket boundaries
    are tried) and :math:`1/m` with the :math:`-L + 1` shift for
    :math:`1/n_0 + 1/n_1`. Detections equal those of ``river.drift.ADWIN`` (River 0.25) for the
    same arguments and stream, and so do ``width``, ``total`` and ``estimation``, bit for
    bit. Differences from River: ``variance`` here is the variance of the window, whereas
    River's ``variance`` is the sum of squared deviations (``width`` times larger);
    ``n_detections`` counts detections (River's stays 0); and ``max_buckets=1`` works here
    (River 0.25 panics).

    Args:
        delta: confidence :math:`\delta` in :math:`(0, 1)`; smaller values detect fewer,
            larger changes. Default: ``0.002``
        clock: check for a change every ``clock`` updates. Default: ``32``
        max_buckets: most buckets of each size kept before two are merged.
            Default: ``5``
        min_window_length: least number of values :math:`L` in each sub-window of a
            split. Default: ``5``
        grace_period: no check until the window holds more than this many values.
            Default: ``10``

    Attributes:
        drift_detected: whether the last update detected a drift (``False`` before any).
        n_detections: number of detections since construction or :meth:`reset`.
        width: number of values in the window.
        total: sum of the values in the window.
        estimation: mean of the window (``0.0`` when empty).
        variance: variance of the window (population, ``0.0`` when empty).

    Examples:
        >>> import random
        >>> from torchkata.online.drift import ADWIN
        >>> rng = random.Random(12345)
        >>> stream = rng.choices([0, 1], k=1000) + rng.choices(range(4, 8), k=1000)
        >>> adwin = ADWIN()
        >>> [t for t, x in enumerate(stream) if adwin.update(x)]
        [1023]
        >>> adwin.width, adwin.estimation
        (976, 5.5...)
        >>> adwin
        ADWIN(delta=0.002, clock=32, max_buckets=5, min_window_length=5, grace_period=10)
    """

    def __init__(
        self,
        delta: float = 0.002,
        clock: int = 32,
        max_buckets: int = 5,
        min_window_length: int = 5,
        grace_period: int = 10,
    ) -> None:
        self.delta = _check_real("delta", delta, "a float in (0, 1)", lambda v: 0.0 < v < 1.0)
        self.clock = _check_int("clock", clock, 1)
        self.max_buckets = _check_int("max_buckets", max_buckets, 1)
        self.min_window_length = _check_int("min_window_length", min_window_length, 1)
        self.grace_period = _check_int("grace_period", grace_period, 0)
        self.n_detections = 0
        self.reset()

    def _args(self) -> dict[str, Any]:
        return {
            "delta": self.delta,
            "clock": self.clock,
            "max_buckets": self.max_buckets,
            "min_window_length": self.min_window_length,
            "grace_period": self.grace_period,
        }

    def __repr__(self) -> str:
        args = ", ".join(f"{key}={value!r}" for key, value in self._args().items())
        return f"{type(self).__name__}({args})"

    def reset(self) -> None:
        """Forget the window, the detection flag and ``n_detections``."""
        self.n_detections = 0
        self._clear()
        self._drift_detected = False

    def _clear(self) -> None:
        # _rows[i] holds the buckets of 2**i values, oldest first, each [sum, m2] where m2
        # is the sum of squared deviations from the bucket's mean.
        self._rows: list[list[list[float]]] = []
        self._width = 0
        self._total = 0.0
        self._m2 = 0.0  # sum of squared deviations of the whole window
        self._tick = 0  # updates since the window was last cleared

    @property
    def drift_detected(self) -> bool:
        return self._drift_detected

    @property
    def width(self) -> int:
        return self._width

    @property
    def total(self) -> float:
        return self._total

    @property
    def estimation(self) -> float:
        return self._total / self._width if self._width else 0.0

    @property
    def variance(self) -> float:
        return self._m2 / self._width if self._width else 0.0

    def update(self, x: float) -> bool:
        """Add ``x`` to the window and check for a change.

        Args:
            x: the next value of the stream, a finite real number.

        Returns:
            Whether a drift was detected at this update (also in ``drift_detected``).
        """
        value = _as_float(x)
        if self._drift_detected:
            self._clear()  # a new concept starts after a detection, as in River
        self._insert(value)
        self._tick += 1
        detected = False
        if self._tick % self.clock == 0 and self._width > self.grace_period:
            while self._cut_once():
                detected = True
        self._drift_detected = detected
        self.n_detections += detected
        return detected

    def _insert(self, value: float) -> None:
        self._width += 1
        if self._width > 1:
            # Welford's update of the window's sum of squared deviations.
            d = value - self._total / (self._width - 1)
            self._m2 += (self._width - 1) * d * d / self._width
        self._total += value
        if not self._rows:
            self._rows.append([])
        self._rows[0].append([value, 0.0])
        i = 0
        while i < len(self._rows) and len(self._rows[i]) > self.max_buckets:
            if i + 1 == len(self._rows):
                self._rows.append([])
            n = 2**i
            (s1, m1), (s2, m2) = self._rows[i][0], self._rows[i][1]
            d = s1 / n - s2 / n
            self._rows[i + 1].append([s1 + s2, m1 + m2 + n * n * d * d / (n + n)])
            del self._rows[i][:2]
            i += 1

    def _delete_oldest(self) -> None:
        row = self._rows[-1]
        n = 2 ** (len(self._rows) - 1)
        s, m2 = row.pop(0)
        if not row:
            self._rows.pop()
        self._width -= n
        self._total -= s
        d = s / n - self._total / self._width
        self._m2 -= m2 + n * self._width * d * d / (n + self._width)

    def _cut_once(self) -> bool:
        """Try the splits from the oldest bucket on; drop the oldest bucket at a cut."""
        n0, n1 = 0, self._width
        s0, s1 = 0.0, self._total
        for i in range(len(self._rows) - 1, -1, -1):
            n = 2**i
            for s, _ in self._rows[i]:
                n0, n1 = n0 + n, n1 - n
                s0, s1 = s0 + s, s1 - s
                if n1 == 0:  # the split after the newest bucket leaves W_1 empty
                    return False
                if (
                    n0 >= self.min_window_length
                    and n1 >= self.min_window_length
                    and self._is_cut(n0, n1, s0 / n0 - s1 / n1)
                ):
                    self._delete_oldest()
                    return True
        return False

    def _is_cut(self, n0: int, n1: int, mean_diff: float) -> bool:
        log_term = math.log(2 * math.log(self._width) / self.delta)  # ln(2 / delta')
        m_recip = 1.0 / (n0 - self.min_window_length + 1) + 1.0 / (n1 - self.min_window_length + 1)
        radicand = 2 * m_recip * (self._m2 / self._width) * log_term
        if radicand < 0.0:  # m2 below zero by rounding: no cut (River's NaN bound)
            return False
        epsilon = math.sqrt(radicand) + 2 / 3 * log_term * m_recip
        return abs(mean_diff) > epsilon

    _STATE_KEYS = (
        "delta",
        "clock",
        "max_buckets",
        "min_window_length",
        "grace_period",
        "buckets",
        "width",
        "total",
        "m2",
        "tick",
        "drift_detected",
        "n_detections",
    )

    def state_dict(self) -> dict[str, Any]:
        """The arguments and the whole state, as JSON-able Python ints, floats, bools and
        lists: ``buckets[i]`` lists the ``[sum, m2]`` of the buckets of :math:`2^i` values,
        oldest first."""
        return {
            **self._args(),
            "buckets": [[[s, m2] for s, m2 in row] for row in self._rows],
            "width": self._width,
            "total": self._total,
            "m2": self._m2,
            "tick": self._tick,
            "drift_detected": self._drift_detected,
            "n_detections": self.n_detections,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a :meth:`state_dict` of an ADWIN with the same arguments.

        Raises:
            ValueError: missing or unexpected keys, other arguments, or buckets whose
                sizes do not add up to ``width``.
        """
        state = _check_state("ADWIN", state, self._STATE_KEYS)
        _check_same_args(state, self._args())
        rows = [[[float(s), float(m2)] for s, m2 in row] for row in state["buckets"]]
        width = int(state["width"])
        stored = sum(len(row) * 2**i for i, row in enumerate(rows))
        if stored != width or any(len(row) > self.max_buckets for row in rows):
            raise ValueError(
                f"state: expected buckets of {width} values (width) in rows of at most "
                f"{self.max_buckets}, got {stored} values in rows of "
                f"{[len(row) for row in rows]}"
            )
        self._rows = rows
        self._width = width
        self._total = float(state["total"])
        self._m2 = float(state["m2"])
        self._tick = int(state["tick"])
        self._drift_detected = bool(state["drift_detected"])
        self.n_detections = int(state["n_detections"])


# ---------------------------------------------------------------------------------------
# Page-Hinkley
# ---------------------------------------------------------------------------------------


class PageHinkley:
    r"""Page-Hinkley test for a change in the mean of a stream.

    From Page, "Continuous inspection schemes", Biometrika 41 (1954), with the forgetting
    factor and two-sided form of River's ``river.drift.PageHinkley`` (after Sebastião &
    Fernandes, 2017). With :math:`\bar x_t` the running mean of the values since the last
    detection, ``alpha`` :math:`= \alpha`, ``delta`` :math:`= \delta` and ``threshold``
    :math:`= \lambda`:

    .. math::
        U_t = \alpha U_{t-1} + (x_t - \bar x_t) - \delta, \qquad
        D_t = \alpha D_{t-1} + (x_t - \bar x_t) + \delta, \qquad U_0 = D_0 = 0

    An increase is detected when :math:`U_t - \min_{s \le t} U_s > \lambda`, a decrease
    when :math:`\max_{s \le t} D_s - D_t > \lambda` (``mode`` ``"up"``, ``"down"`` or
    ``"both"``), and only from the ``min_instances``-th value on. After a detection the
    next update starts afresh (mean, sums and extremes). Detections and the running
    statistics equal those of ``river.drift.PageHinkley`` (River 0.25) bit for bit;
    ``n_detections`` counts detections (River has none).

    Args:
        min_instances: no detection before this many values since the last detection
            (``0`` and ``1`` are the same). Default: ``30``
        delta: tolerated change :math:`\delta \ge 0` of the mean. Default: ``0.005``
        threshold: detection threshold :math:`\lambda > 0`. Default: ``50.0``
        alpha: forgetting factor :math:`\alpha` in :math:`(0, 1]` of the sums.
            Default: ``0.9999``
        mode: ``"up"`` (increases), ``"down"`` (decreases) or ``"both"``.
            Default: ``"both"``

    Attributes:
        drift_detected: whether the last update detected a drift (``False`` before any).
        n_detections: number of detections since construction or :meth:`reset`.

    Examples:
        >>> import random
        >>> from torchkata.online.drift import PageHinkley
        >>> rng = random.Random(12345)
        >>> stream = rng.choices([0, 1], k=1000) + rng.choices(range(4, 8), k=1000)
        >>> ph = PageHinkley()
        >>> [t for t, x in enumerate(stream) if ph.update(x)]
        [1006]
        >>> ph = PageHinkley(mode="down")  # blind to the increase
        >>> [t for t, x in enumerate(stream) if ph.update(x)]
        []
        >>> [t for t, x in enumerate(stream[::-1]) if ph.update(x)]  # sees the decrease
        [1014]
        >>> ph
        PageHinkley(min_instances=30, delta=0.005, threshold=50.0, alpha=0.9999, mode='down')
    """

    def __init__(
        self,
        min_instances: int = 30,
        delta: float = 0.005,
        threshold: float = 50.0,
        alpha: float = 0.9999,
        mode: str = "both",
    ) -> None:
        self.min_instances = _check_int("min_instances", min_instances, 0)
        self.delta = _check_real("delta", delta, "a finite float >= 0", lambda v: v >= 0.0)
        self.threshold = _check_real(
            "threshold", threshold, "a finite float > 0", lambda v: v > 0.0
        )
        self.alpha = _check_real("alpha", alpha, "a float in (0, 1]", lambda v: 0.0 < v <= 1.0)
        if not isinstance(mode, str) or mode not in _MODES:
            raise ValueError(f"mode: expected one of 'up', 'down', 'both', got {mode!r}")
        self.mode = mode
        self.reset()

    def _args(self) -> dict[str, Any]:
        return {
            "min_instances": self.min_instances,
            "delta": self.delta,
            "threshold": self.threshold,
            "alpha": self.alpha,
            "mode": self.mode,
        }

    def __repr__(self) -> str:
        args = ", ".join(f"{key}={value!r}" for key, value in self._args().items())
        return f"{type(self).__name__}({args})"

    def reset(self) -> None:
        """Forget the statistics, the detection flag and ``n_detections``."""
        self.n_detections = 0
        self._clear()
        self._drift_detected = False

    def _clear(self) -> None:
        self._n = 0
        self._mean = 0.0
        self._sum_increase = 0.0
        self._sum_decrease = 0.0
        # The extremes are set by the first update (n == 1), so they need no infinities.
        self._min_increase = 0.0
        self._max_decrease = 0.0

    @property
    def drift_detected(self) -> bool:
        return self._drift_detected

    def update(self, x: float) -> bool:
        """Add ``x`` and test for a change of the mean.

        Args:
            x: the next value of the stream, a finite real number.

        Returns:
            Whether a drift was detected at this update (also in ``drift_detected``).
        """
        value = _as_float(x)
        if self._drift_detected:
            self._clear()  # a new concept starts after a detection, as in River
        self._n += 1
        self._mean += (1.0 / self._n) * (value - self._mean)
        first = self._n == 1
        up = down = False
        if self.mode != "down":
            self._sum_increase = self.alpha * self._sum_increase + (value - self._mean)
            self._sum_increase -= self.delta
            if first or self._sum_increase < self._min_increase:
                self._min_increase = self._sum_increase
            up = self._sum_increase - self._min_increase > self.threshold
        if self.mode != "up":
            self._sum_decrease = self.alpha * self._sum_decrease + (value - self._mean)
            self._sum_decrease += self.delta
            if first or self._sum_decrease > self._max_decrease:
                self._max_decrease = self._sum_decrease
            down = self._max_decrease - self._sum_decrease > self.threshold
        detected = (up or down) and self._n >= self.min_instances
        self._drift_detected = detected
        self.n_detections += detected
        return detected

    _STATE_KEYS = (
        "min_instances",
        "delta",
        "threshold",
        "alpha",
        "mode",
        "n",
        "mean",
        "sum_increase",
        "sum_decrease",
        "min_increase",
        "max_decrease",
        "drift_detected",
        "n_detections",
    )

    def state_dict(self) -> dict[str, Any]:
        """The arguments and the whole state, as JSON-able Python ints, floats, bools and
        strings."""
        return {
            **self._args(),
            "n": self._n,
            "mean": self._mean,
            "sum_increase": self._sum_increase,
            "sum_decrease": self._sum_decrease,
            "min_increase": self._min_increase,
            "max_decrease": self._max_decrease,
            "drift_detected": self._drift_detected,
            "n_detections": self.n_detections,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a :meth:`state_dict` of a PageHinkley with the same arguments.

        Raises:
            ValueError: missing or unexpected keys, or other arguments.
        """
        state = _check_state("PageHinkley", state, self._STATE_KEYS)
        _check_same_args(state, self._args())
        self._n = int(state["n"])
        self._mean = float(state["mean"])
        self._sum_increase = float(state["sum_increase"])
        self._sum_decrease = float(state["sum_decrease"])
        self._min_increase = float(state["min_increase"])
        self._max_decrease = float(state["max_decrease"])
        self._drift_detected = bool(state["drift_detected"])
        self.n_detections = int(state["n_detections"])
