"""Tests of torchkata.online.drift: ADWIN and PageHinkley.

The twin tests run River 0.25's ``river.drift.ADWIN`` and ``river.drift.PageHinkley`` on
the same streams and require the same detection indices; for ADWIN also the same
``width``, ``total`` and ``estimation`` after every update, bit for bit, and River's
``variance`` (a sum of squared deviations, not a variance) equal to ``width`` times ours
(our ``state_dict()["m2"]``); for PageHinkley also the same running mean, sums and
extremes. Two probes pin ADWIN's cut rule: a bisection on the size of a shift (River
detects exactly where we do, to adjacent floats) and outliers that make a sub-window
exactly ``min_window_length`` long. The remaining tests need no River.

Exact equality is reachable because both implementations do the same float operations in
the same order; the one difference in behaviour is ``max_buckets=1``, which works here and
panics in River 0.25, so it is tested without River.
"""

from __future__ import annotations

import json
import math
import random

import numpy as np
import pytest
import torch

from torchkata.online.drift import ADWIN, PageHinkley

SEEDS = (0, 1, 2)


def _streams(seed: int) -> dict[str, list[float]]:
    """Streams with known changes; each a list of floats, 3000 long."""
    rng = random.Random(seed)
    n = 3000
    return {
        # 0/1 errors of a learner whose error rate jumps from 0.1 to 0.5 at t = 1000.
        "bernoulli_jump": [float(rng.random() < (0.1 if t < 1000 else 0.5)) for t in range(n)],
        # Losses whose mean shifts up by 0.7 standard deviations at t = 1500.
        "gauss_shift_up": [rng.gauss(0.0 if t < 1500 else 0.7, 1.0) for t in range(n)],
        # ... and down by 1 at t = 1500, on an offset far from 0.
        "gauss_shift_down": [rng.gauss(5.0 if t < 1500 else 4.0, 1.0) for t in range(n)],
        "stationary": [rng.gauss(0.0, 1.0) for _ in range(n)],
        # A ramp of the mean from 0 to 2 over t in [1000, 2000).
        "gradual": [rng.gauss(2.0 * min(max((t - 1000) / 1000, 0.0), 1.0), 1.0) for t in range(n)],
        # A mean that alternates every 500 values, to exercise the restart after a drift.
        "alternating": [rng.gauss(0.0 if (t // 500) % 2 == 0 else 3.0, 1.0) for t in range(n)],
        # Skewed losses whose scale doubles at t = 1500.
        "lognormal_scale": [
            rng.lognormvariate(0.0, 1.0) * (1.0 if t < 1500 else 2.0) for t in range(n)
        ],
    }


DRIFTING = ("bernoulli_jump", "gauss_shift_up", "gauss_shift_down", "alternating")


def _detections(detector: object, stream: list[float]) -> list[int]:
    found = []
    for t, x in enumerate(stream):
        detector.update(x)  # type: ignore[attr-defined]
        if detector.drift_detected:  # type: ignore[attr-defined]
            found.append(t)
    return found


# ---------------------------------------------------------------------------------------
# Twin tests against River
# ---------------------------------------------------------------------------------------

ADWIN_CONFIGS = [
    {},
    {"delta": 0.05, "clock": 1, "max_buckets": 2, "min_window_length": 3, "grace_period": 0},
    {"delta": 0.3, "clock": 7, "max_buckets": 3, "min_window_length": 1, "grace_period": 40},
]


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("config", ADWIN_CONFIGS, ids=["default", "clock1", "loose"])
def test_adwin_matches_river(config: dict, seed: int) -> None:
    river_drift = pytest.importorskip("river.drift")
    streams = _streams(seed)
    if config.get("clock") == 1:  # the slowest configuration: two streams suffice
        streams = {k: streams[k] for k in ("bernoulli_jump", "alternating")}
    for name, stream in streams.items():
        ours, theirs = ADWIN(**config), river_drift.ADWIN(**config)
        found, expected = [], []
        for t, x in enumerate(stream):
            detected = ours.update(x)
            theirs.update(x)
            assert detected is ours.drift_detected
            if detected:
                found.append(t)
            if theirs.drift_detected:
                expected.append(t)
            assert ours.width == theirs.width, (name, t)
            assert ours.total == theirs.total, (name, t)
            assert ours.estimation == theirs.estimation, (name, t)
            # River's variance is the sum of squared deviations, ours that over width.
            assert ours.variance == theirs.variance / theirs.width, (name, t)
        assert ours.state_dict()["m2"] == theirs.variance, name
        assert found == expected, name
        if name in DRIFTING:
            assert found, f"no detection on {name}: the comparison would be vacuous"


PH_CONFIGS = [
    {},
    {"min_instances": 5, "delta": 0.05, "threshold": 10.0, "alpha": 0.99},
    {"min_instances": 0, "delta": 0.0, "threshold": 3.0, "alpha": 1.0},
]


@pytest.mark.parametrize("seed", SEEDS[:2])
@pytest.mark.parametrize("mode", ["up", "down", "both"])
@pytest.mark.parametrize("config", PH_CONFIGS, ids=["default", "tight", "no_forgetting"])
def test_page_hinkley_matches_river(config: dict, mode: str, seed: int) -> None:
    river_drift = pytest.importorskip("river.drift")
    n_found = 0
    for name, stream in _streams(seed).items():
        found = _detections(PageHinkley(mode=mode, **config), stream)
        expected = _detections(river_drift.PageHinkley(mode=mode, **config), stream)
        assert found == expected, name
        n_found += len(found)
    assert n_found > 0, "no detection on any stream: the comparison would be vacuous"


def _ends_of_a_transition(run, lo: float, hi: float) -> tuple[float, float]:
    """Bisect [lo, hi] to adjacent floats at which ``run`` gives different results."""
    low_result = run(lo)
    assert run(hi) != low_result
    while True:
        mid = (lo + hi) / 2
        if mid in (lo, hi):
            return lo, hi
        if run(mid) == low_result:
            lo = mid
        else:
            hi = mid


@pytest.mark.parametrize(
    "config",
    [
        {"clock": 1, "grace_period": 0},
        {"clock": 1, "grace_period": 0, "min_window_length": 1, "delta": 0.1},
        {"clock": 1, "grace_period": 0, "min_window_length": 3, "max_buckets": 2, "delta": 0.01},
    ],
    ids=["default_bound", "L1_delta0.1", "L3_M2_delta0.01"],
)
def test_adwin_bound_matches_river_to_the_last_bit(config: dict) -> None:
    """Shift the last 12 values of a noise stream by s: between the two adjacent floats s
    at which our first detection appears, River's appears too. Any other form of the bound
    (delta/n, no -L+1, 0.6667 for 2/3, a factor 1.001 in the log) moves the transition."""
    river_drift = pytest.importorskip("river.drift")
    rng = random.Random(len(config))
    noise = [rng.gauss(0.0, 1.0) for _ in range(100)]
    tail = [rng.gauss(0.0, 1.0) for _ in range(12)]

    def stream(s: float) -> list[float]:
        return noise + [s + e for e in tail]

    lo, hi = _ends_of_a_transition(lambda s: _detections(ADWIN(**config), stream(s)), 0.0, 50.0)
    for s in (lo, hi):
        assert _detections(ADWIN(**config), stream(s)) == _detections(
            river_drift.ADWIN(**config), stream(s)
        ), s


@pytest.mark.parametrize("min_window_length", [1, 3, 5])
def test_adwin_min_window_length_boundaries_match_river(min_window_length: int) -> None:
    """k = L - 1, L, L + 1 outliers at the start (W_0) or end (W_1) of the window, with
    buckets of one value each (max_buckets large), so that n_0 or n_1 can equal L."""
    river_drift = pytest.importorskip("river.drift")
    config = {"clock": 1, "grace_period": 0, "max_buckets": 1000}
    config["min_window_length"] = min_window_length
    for k in (min_window_length - 1, min_window_length, min_window_length + 1):
        for stream in ([100.0] * k + [0.0] * 200, [0.0] * 200 + [100.0] * k):
            found = _detections(ADWIN(**config), stream)
            assert found == _detections(river_drift.ADWIN(**config), stream), k
    for max_buckets in (2, 3, 5):
        config["max_buckets"] = max_buckets
        for stream in ([0.0, 1.0] * 20 + [1e3] * 12, [1e3] * 12 + [0.0, 1.0] * 20):
            found = _detections(ADWIN(**config), stream)
            assert found == _detections(river_drift.ADWIN(**config), stream), max_buckets


@pytest.mark.parametrize("mode", ["up", "down", "both"])
def test_page_hinkley_statistics_match_river_bit_for_bit(mode: str) -> None:
    """The running mean, sums and extremes equal River's private attributes (River 0.25
    names; skipped if River renames them)."""
    river_drift = pytest.importorskip("river.drift")
    theirs = river_drift.PageHinkley(mode=mode, threshold=20.0, min_instances=7)
    names = ("_x_mean", "_sum_increase", "_sum_decrease", "_min_increase", "_max_decrease")
    if not all(hasattr(theirs, name) for name in names):
        pytest.skip("River's PageHinkley has other private attributes than in 0.25")
    ours = PageHinkley(mode=mode, threshold=20.0, min_instances=7)
    keys = ["mean"]
    keys += ["sum_increase", "min_increase"] if mode != "down" else []
    keys += ["sum_decrease", "max_decrease"] if mode != "up" else []
    n_found = 0
    for t, x in enumerate(_streams(4)["lognormal_scale"]):
        n_found += ours.update(x)
        theirs.update(x)
        assert ours.drift_detected == theirs.drift_detected, t
        expected = {
            "mean": theirs._x_mean.get(),
            "sum_increase": theirs._sum_increase,
            "min_increase": theirs._min_increase,
            "sum_decrease": theirs._sum_decrease,
            "max_decrease": theirs._max_decrease,
        }
        state = ours.state_dict()
        assert {k: state[k] for k in keys} == {k: expected[k] for k in keys}, t
    assert n_found > 0


def test_river_docstring_examples() -> None:
    """River's own docstring examples give 1023 (ADWIN) and 1006 (PageHinkley)."""
    pytest.importorskip("river")
    rng = random.Random(12345)
    stream = rng.choices([0, 1], k=1000) + rng.choices(range(4, 8), k=1000)
    assert _detections(ADWIN(), stream) == [1023]
    assert _detections(PageHinkley(), stream) == [1006]


# ---------------------------------------------------------------------------------------
# Behaviour without River
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", SEEDS)
def test_adwin_detects_mean_shift_within_bounded_delay(seed: int) -> None:
    rng = random.Random(seed)
    stream = [rng.gauss(0.0 if t < 1000 else 1.0, 0.1) for t in range(1200)]
    adwin = ADWIN()
    found = _detections(adwin, stream)
    # Checked every clock = 32 updates: the first check after the shift with a few values
    # of the new mean in W_1 cuts.
    assert len(found) == 1 and 1000 <= found[0] < 1000 + 2 * adwin.clock, found
    assert adwin.estimation == pytest.approx(1.0, abs=0.05)


@pytest.mark.parametrize("mode", ["up", "both"])
def test_page_hinkley_detects_increase_within_bounded_delay(mode: str) -> None:
    rng = random.Random(0)
    stream = [rng.gauss(0.0 if t < 1000 else 1.0, 0.1) for t in range(1200)]
    found = _detections(PageHinkley(mode=mode), stream)
    # U grows by about 1 - delta per step after the shift: threshold 50 needs ~51 steps.
    assert len(found) == 1 and 1040 <= found[0] < 1070, found


@pytest.mark.parametrize("mode", ["down", "both"])
def test_page_hinkley_detects_decrease_within_bounded_delay(mode: str) -> None:
    rng = random.Random(0)
    stream = [rng.gauss(1.0 if t < 1000 else 0.0, 0.1) for t in range(1200)]
    found = _detections(PageHinkley(mode=mode), stream)
    assert len(found) == 1 and 1040 <= found[0] < 1070, found
    assert _detections(PageHinkley(mode="up"), stream) == []


@pytest.mark.parametrize(
    "detector",
    [ADWIN(), ADWIN(clock=1, max_buckets=1, min_window_length=1, grace_period=0), PageHinkley()]
    + [PageHinkley(mode=m, min_instances=0, delta=0.0, threshold=1e-6) for m in ("up", "down")],
    ids=repr,
)
def test_no_detection_on_long_constant_stream(detector: ADWIN | PageHinkley) -> None:
    assert _detections(detector, [0.3] * 20_000) == []
    assert detector.n_detections == 0


def test_adwin_window_statistics() -> None:
    adwin = ADWIN(grace_period=10_000)  # no check: the window keeps everything
    values = [float(v) for v in range(1, 101)]
    for v in values:
        adwin.update(v)
    assert adwin.width == 100
    assert adwin.total == sum(values)
    assert adwin.estimation == pytest.approx(50.5)
    assert adwin.variance == pytest.approx(np.var(values))
    # Exponential histogram: at most max_buckets buckets of each size, sizes add up.
    rows = adwin.state_dict()["buckets"]
    assert all(len(row) <= adwin.max_buckets for row in rows)
    assert sum(len(row) * 2**i for i, row in enumerate(rows)) == 100
    empty = ADWIN()
    assert (empty.width, empty.total, empty.estimation, empty.variance) == (0, 0.0, 0.0, 0.0)


def test_adwin_restarts_after_detection() -> None:
    stream = [0.0] * 500 + [1.0] * 100
    adwin = ADWIN()
    found = _detections(adwin, stream[:-1])
    assert len(found) == 1 and adwin.n_detections == 1
    last = found[0]
    adwin2 = ADWIN()
    for x in stream[: last + 2]:
        adwin2.update(x)
    assert adwin2.width == 1 and adwin2.total == stream[last + 1]


def test_max_buckets_one_works() -> None:
    rng = random.Random(0)
    stream = [rng.gauss(0.0 if t < 1000 else 1.0, 0.1) for t in range(1200)]
    found = _detections(ADWIN(max_buckets=1), stream)
    assert len(found) == 1 and 1000 <= found[0] < 1100


def _roundtrip_cases() -> list:
    stream = _streams(3)["alternating"]
    cases = {
        "adwin": ADWIN(),
        "adwin_clock3": ADWIN(clock=3, max_buckets=2, min_window_length=2),
        "ph_both": PageHinkley(),
        "ph_up": PageHinkley(mode="up", threshold=20.0),
        "ph_down": PageHinkley(mode="down", threshold=20.0, alpha=1.0),
    }
    return [pytest.param(name, det, stream, id=name) for name, det in cases.items()]


def _json_types_only(value: object) -> bool:
    if isinstance(value, dict):
        return all(isinstance(k, str) and _json_types_only(v) for k, v in value.items())
    if isinstance(value, list):
        return all(_json_types_only(v) for v in value)
    return type(value) in (int, float, bool, str)


@pytest.mark.parametrize("name, detector, stream", _roundtrip_cases())
def test_state_dict_round_trip_continues_identically(
    name: str, detector: ADWIN | PageHinkley, stream: list[float]
) -> None:
    found = _detections(type(detector)(**_args(detector)), stream)
    assert len(found) >= 2, name
    # Split right after a detection (the restart must carry over), just before one, early
    # and late.
    for split in (0, 1, found[0] + 1, found[1], 777, len(stream) - 1):
        original = type(detector)(**_args(detector))
        prefix = _detections(original, stream[:split])
        state = original.state_dict()
        assert _json_types_only(state), state
        text = json.dumps(state, allow_nan=False)
        restored = type(detector)(**_args(detector))
        restored.load_state_dict(json.loads(text))
        assert restored.state_dict() == state
        suffix_a = _detections(original, stream[split:])
        suffix_b = _detections(restored, stream[split:])
        assert suffix_a == suffix_b, (name, split)
        assert prefix + [t + split for t in suffix_a] == found
        assert restored.state_dict() == original.state_dict()


def _args(detector: ADWIN | PageHinkley) -> dict:
    keys = (
        ("delta", "clock", "max_buckets", "min_window_length", "grace_period")
        if isinstance(detector, ADWIN)
        else ("min_instances", "delta", "threshold", "alpha", "mode")
    )
    return {k: getattr(detector, k) for k in keys}


def test_load_state_dict_rejects_other_arguments_and_keys() -> None:
    state = ADWIN().state_dict()
    with pytest.raises(ValueError, match=r"state: expected delta=0.1 .*got 0.002"):
        ADWIN(delta=0.1).load_state_dict(state)
    with pytest.raises(ValueError, match=r"missing keys \['tick'\]"):
        ADWIN().load_state_dict({k: v for k, v in state.items() if k != "tick"})
    with pytest.raises(ValueError, match=r"state: expected buckets of 3 values"):
        ADWIN().load_state_dict({**state, "width": 3})
    ph_state = PageHinkley().state_dict()
    with pytest.raises(ValueError, match=r"state: expected mode='up' .*got 'both'"):
        PageHinkley(mode="up").load_state_dict(ph_state)
    with pytest.raises(ValueError, match=r"unexpected keys \['extra'\]"):
        PageHinkley().load_state_dict({**ph_state, "extra": 1})
    with pytest.raises(ValueError, match=r"state: expected a dict"):
        PageHinkley().load_state_dict([])  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "factory",
    [lambda: ADWIN(clock=4), lambda: PageHinkley(threshold=5.0)],
    ids=["adwin", "page_hinkley"],
)
def test_reset_returns_to_fresh_state(factory) -> None:
    stream = _streams(0)["alternating"][:1500]
    detector = factory()
    first = _detections(detector, stream)
    assert detector.n_detections == len(first) > 0
    detector.reset()
    assert detector.state_dict() == factory().state_dict()
    assert not detector.drift_detected
    assert _detections(detector, stream) == first


def test_update_accepts_real_numbers() -> None:
    values = [True, 0, np.float32(0.5), np.int64(1), torch.tensor(0.25), 2.0]
    a, b = ADWIN(), PageHinkley()
    for v in values:
        a.update(v)
        b.update(v)
    assert a.total == 1 + 0 + 0.5 + 1 + 0.25 + 2.0
    assert type(a.state_dict()["total"]) is float


@pytest.mark.parametrize("cls", [ADWIN, PageHinkley])
@pytest.mark.parametrize("x", [math.nan, math.inf, -math.inf, np.float64("nan"), "1.0", None])
def test_update_rejects_non_finite_or_non_numbers(cls, x: object) -> None:
    detector = cls()
    with pytest.raises(ValueError, match=r"x: expected a finite real number, got"):
        detector.update(x)
    assert detector.state_dict() == cls().state_dict()  # nothing was changed


@pytest.mark.parametrize(
    "cls, kwargs, message",
    [
        (ADWIN, {"delta": 0.0}, r"delta: expected a float in \(0, 1\), got 0.0"),
        (ADWIN, {"delta": 1.5}, r"delta: expected a float in \(0, 1\), got 1.5"),
        (ADWIN, {"delta": math.nan}, r"delta: expected a float in \(0, 1\), got nan"),
        (ADWIN, {"delta": "0.1"}, r"delta: expected a float in \(0, 1\), got '0.1'"),
        (ADWIN, {"clock": 0}, r"clock: expected an int >= 1, got 0"),
        (ADWIN, {"clock": 2.0}, r"clock: expected an int >= 1, got 2.0"),
        (ADWIN, {"clock": True}, r"clock: expected an int >= 1, got True"),
        (ADWIN, {"max_buckets": 0}, r"max_buckets: expected an int >= 1, got 0"),
        (ADWIN, {"min_window_length": 0}, r"min_window_length: expected an int >= 1, got 0"),
        (ADWIN, {"grace_period": -1}, r"grace_period: expected an int >= 0, got -1"),
        (PageHinkley, {"min_instances": -1}, r"min_instances: expected an int >= 0, got -1"),
        (PageHinkley, {"delta": -0.1}, r"delta: expected a finite float >= 0, got -0.1"),
        (PageHinkley, {"threshold": 0}, r"threshold: expected a finite float > 0, got 0"),
        (PageHinkley, {"threshold": math.inf}, r"threshold: expected a finite float > 0"),
        (PageHinkley, {"alpha": 0.0}, r"alpha: expected a float in \(0, 1\], got 0.0"),
        (PageHinkley, {"alpha": 1.01}, r"alpha: expected a float in \(0, 1\], got 1.01"),
        (PageHinkley, {"mode": "Up"}, r"mode: expected one of 'up', 'down', 'both', got 'Up'"),
    ],
)
def test_argument_errors(cls, kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        cls(**kwargs)


def test_repr_shows_arguments() -> None:
    assert repr(ADWIN(delta=0.01, clock=8)) == (
        "ADWIN(delta=0.01, clock=8, max_buckets=5, min_window_length=5, grace_period=10)"
    )
    assert repr(PageHinkley(mode="up", threshold=20)) == (
        "PageHinkley(min_instances=30, delta=0.005, threshold=20.0, alpha=0.9999, mode='up')"
    )
