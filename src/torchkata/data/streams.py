"""Data streams with concept drift for online learning: Agrawal's loan applicants.

Written from the definitions in Agrawal, Imielinski and Swami, "Database Mining: A
Performance Perspective", IEEE TKDE 5(6), 1993 (page 924), cross-checked against MOA's
``AgrawalGenerator``. Each sample is a dict of nine float features and an int label;
streams are lazy generators that draw one sample at a time, so an experiment can take as
many samples as it needs from an endless stream.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterator, Mapping

import numpy as np

__all__ = ["FEATURES", "agrawal", "agrawal_label", "drift_points", "drift_stream"]

FEATURES: tuple[str, ...] = (
    "salary",
    "commission",
    "age",
    "elevel",
    "car",
    "zipcode",
    "hvalue",
    "hyears",
    "loan",
)
"""The names of the nine features, in the order of the paper."""

N_FUNCTIONS = 10  # classification functions 0..9 are the paper's functions 1..10


def _check_function(name: str, value: object) -> int:
    if (
        not isinstance(value, numbers.Integral)
        or isinstance(value, bool)
        or not 0 <= value < N_FUNCTIONS
    ):
        raise ValueError(f"{name}: expected an int in 0..{N_FUNCTIONS - 1}, got {value!r}")
    return int(value)


def _in(lo: float, value: float, hi: float) -> bool:
    return lo <= value <= hi


def agrawal_label(features: Mapping[str, float], function: int) -> int:
    r"""The label that one of Agrawal's ten classification functions gives a sample.

    Functions ``0..9`` are the paper's functions 1..10 (and MOA's ``-f 1..10``). Label
    ``0`` is the paper's group A, ``1`` group B, as in MOA. With ages split into
    :math:`[20, 40)`, :math:`[40, 60)` and :math:`[60, 80]`, a sample is in group A when:

    0. age :math:`< 40` or :math:`\geq 60`;
    1. salary is in [50k, 100k], [75k, 125k], [25k, 75k] for the three age bands;
    2. elevel is in [0, 1], [1, 3], [2, 4] for the three age bands;
    3. salary is in, per age band: [25k, 75k] if elevel in [0, 1] else [50k, 100k];
       [50k, 100k] if elevel in [1, 3] else [75k, 125k]; [50k, 100k] if elevel in
       [2, 4] else [25k, 75k];
    4. loan is in, per age band: [100k, 300k] if salary in [50k, 100k] else [200k, 400k];
       [200k, 400k] if salary in [75k, 125k] else [300k, 500k]; [300k, 500k] if salary
       in [25k, 75k] else [100k, 300k];
    5. salary + commission is in the ranges of function 1;
    6. :math:`d = \frac{2}{3}(\text{salary} + \text{commission}) - \text{loan}/5 - 20\text{k}
       > 0`;
    7. :math:`d = \frac{2}{3}(\text{salary} + \text{commission}) - 5\text{k} \cdot
       \text{elevel} - 20\text{k} > 0`;
    8. :math:`d = \frac{2}{3}(\text{salary} + \text{commission}) - 5\text{k} \cdot
       \text{elevel} - \text{loan}/5 - 10\text{k} > 0`;
    9. :math:`d = \frac{2}{3}(\text{salary} + \text{commission}) - 5\text{k} \cdot
       \text{elevel} + \text{equity}/5 - 10\text{k} > 0`, with
       :math:`\text{equity} = \text{hvalue} \cdot \max(\text{hyears} - 20, 0) / 10`.

    The paper prints the factor :math:`\frac{2}{3}` as 0.67; MOA and River use 2/3.

    Args:
        features: a sample with (at least) the keys salary, commission, age, elevel,
            hvalue, hyears and loan.
        function: which classification function, in ``0..9``.

    Returns:
        ``0`` for group A, ``1`` for group B.

    Examples:
        >>> x = {"salary": 60_000.0, "commission": 20_000.0, "age": 45.0, "elevel": 2.0,
        ...      "car": 1.0, "zipcode": 0.0, "hvalue": 500_000.0, "hyears": 10.0,
        ...      "loan": 250_000.0}
        >>> [agrawal_label(x, k) for k in range(10)]
        [1, 1, 0, 0, 1, 0, 1, 0, 1, 0]
    """
    function = _check_function("function", function)
    salary = features["salary"]
    age = features["age"]
    elevel = features["elevel"]
    loan = features["loan"]
    band = 0 if age < 40 else (1 if age < 60 else 2)  # [20, 40), [40, 60), [60, 80]
    total = salary + features["commission"]
    salary_ranges = ((50_000, 100_000), (75_000, 125_000), (25_000, 75_000))  # functions 1, 5
    elevel_ranges = ((0, 1), (1, 3), (2, 4))  # functions 2, 3
    if function == 0:
        group_a = band != 1
    elif function == 1:
        group_a = _in(salary_ranges[band][0], salary, salary_ranges[band][1])
    elif function == 2:
        group_a = _in(elevel_ranges[band][0], elevel, elevel_ranges[band][1])
    elif function == 3:
        # (salary range when elevel is in the band's range, salary range otherwise)
        ranges = (
            ((25_000, 75_000), (50_000, 100_000)),
            ((50_000, 100_000), (75_000, 125_000)),
            ((50_000, 100_000), (25_000, 75_000)),
        )[band]
        lo, hi = ranges[0 if _in(elevel_ranges[band][0], elevel, elevel_ranges[band][1]) else 1]
        group_a = _in(lo, salary, hi)
    elif function == 4:
        # (loan range when salary is in the band's range, loan range otherwise)
        ranges = (
            ((100_000, 300_000), (200_000, 400_000)),
            ((200_000, 400_000), (300_000, 500_000)),
            ((300_000, 500_000), (100_000, 300_000)),
        )[band]
        lo, hi = ranges[0 if _in(salary_ranges[band][0], salary, salary_ranges[band][1]) else 1]
        group_a = _in(lo, loan, hi)
    elif function == 5:
        group_a = _in(salary_ranges[band][0], total, salary_ranges[band][1])
    else:
        disposable = 2.0 * total / 3.0
        if function == 6:
            disposable -= loan / 5.0 + 20_000.0
        elif function == 7:
            disposable -= 5_000.0 * elevel + 20_000.0
        elif function == 8:
            disposable -= 5_000.0 * elevel + loan / 5.0 + 10_000.0
        else:
            hyears = features["hyears"]
            equity = features["hvalue"] * (hyears - 20.0) / 10.0 if hyears >= 20 else 0.0
            disposable += equity / 5.0 - 5_000.0 * elevel - 10_000.0
        group_a = disposable > 0
    return 0 if group_a else 1


def _round_half_up(value: float) -> float:
    return float(math.floor(value + 0.5))  # Java's Math.round, as in MOA


def _perturb(value: float, lo: float, hi: float, v: float, perturbation: float) -> float:
    """``value`` plus ``(2 v - 1) * perturbation * (hi - lo)``, clipped to [lo, hi]."""
    value += (hi - lo) * (2.0 * v - 1.0) * perturbation
    return float(min(max(value, lo), hi))


def _agrawal_samples(
    rng: np.random.Generator, perturbation: float
) -> Iterator[tuple[dict[str, float], dict[str, float]]]:
    """Endless ``(clean, noisy)`` Agrawal features; each sample takes 15 uniforms of ``rng``.

    A fixed number of draws per sample keeps sample ``t``'s clean features the same
    whatever ``perturbation`` is (the 6 noise uniforms are drawn, and unused, when it is 0).
    """
    while True:
        u = rng.random(15)  # 9 for the features, 6 for the noise
        salary = 20_000.0 + 130_000.0 * u[0]
        # the paper: commission is 0 from a salary of 75k on, else uniform in [10k, 75k]
        commission = 0.0 if salary >= 75_000.0 else 10_000.0 + 65_000.0 * u[1]
        k = 9 - math.floor(9 * u[5])  # 9 - zipcode: house values fall with the zipcode
        clean = {
            "salary": float(salary),
            "commission": float(commission),
            "age": 20.0 + math.floor(61 * u[2]),  # integer 20..80
            "elevel": float(math.floor(5 * u[3])),  # integer 0..4
            "car": 1.0 + math.floor(20 * u[4]),  # integer 1..20
            "zipcode": float(9 - k),  # integer 0..8
            "hvalue": float(k * 100_000.0 * (0.5 + u[6])),  # k * [50k, 150k]
            "hyears": 1.0 + math.floor(30 * u[7]),  # integer 1..30
            "loan": float(500_000.0 * u[8]),
        }
        if perturbation == 0.0:
            yield clean, clean
            continue

        # MOA's noise: add U(-1, 1) * perturbation * (the feature's range), then clip
        p = perturbation
        noisy = dict(clean)
        noisy["salary"] = _perturb(clean["salary"], 20_000.0, 150_000.0, u[9], p)
        if commission > 0.0:
            noisy["commission"] = _perturb(commission, 10_000.0, 75_000.0, u[10], p)
        noisy["age"] = _round_half_up(_perturb(clean["age"], 20.0, 80.0, u[11], p))
        noisy["hvalue"] = _perturb(clean["hvalue"], k * 50_000.0, k * 150_000.0, u[12], p)
        noisy["hyears"] = _round_half_up(_perturb(clean["hyears"], 1.0, 30.0, u[13], p))
        noisy["loan"] = _perturb(clean["loan"], 0.0, 500_000.0, u[14], p)
        yield clean, noisy


def _check_perturbation(perturbation: float) -> float:
    if not 0.0 <= perturbation <= 1.0:  # also rejects NaN
        raise ValueError(f"perturbation: expected a number in [0, 1], got {perturbation!r}")
    return float(perturbation)


def agrawal(
    classification_function: int = 0, *, seed: int = 0, perturbation: float = 0.0
) -> Iterator[tuple[dict[str, float], int]]:
    r"""An endless stream of Agrawal et al.'s (1993) loan applicants and their group.

    Each sample has nine features drawn independently, as in the paper: salary uniform
    in [20k, 150k]; commission 0 if salary >= 75k, else uniform in [10k, 75k]; age an
    integer uniform in 20..80; elevel (education level) in 0..4; car (maker) in 1..20;
    zipcode in 0..8; hvalue (house value) uniform in :math:`k \cdot [50k, 150k]` with
    :math:`k = 9 - \text{zipcode}`; hyears (years owned) in 1..30; loan uniform in
    [0, 500k]. The label is :func:`agrawal_label` of the features before any noise.

    With ``perturbation`` :math:`p > 0`, as in MOA, each numeric feature :math:`v` with
    range :math:`[a, b]` becomes :math:`\text{clip}(v + p (b - a) e, a, b)` with
    :math:`e \sim U(-1, 1)`; age and hyears are then rounded, a zero commission stays 0,
    and hvalue's range is its zipcode's.

    Args:
        classification_function: which of the ten functions labels the samples, in
            ``0..9`` (the paper's functions 1..10). Default: ``0``.
        seed: seed of ``np.random.default_rng``. Sample ``t``'s features before noise
            depend only on ``seed``, not on the function or the perturbation. Default: ``0``.
        perturbation: fraction of each numeric feature's range used as noise, in [0, 1].
            Default: ``0.0``.

    Returns:
        An endless, lazy iterator of ``(features, label)``: a dict of the nine features
        (floats, keys in the order of :data:`FEATURES`) and ``0`` (group A) or ``1``
        (group B).

    Examples:
        >>> import itertools
        >>> x, y = next(agrawal(2, seed=0))
        >>> {name: round(value) for name, value in x.items()}, y
        ({'salary': 102805, 'commission': 0, 'age': 22, 'elevel': 0, 'car': 17, 'zipcode': 8,
          'hvalue': 110664, 'hyears': 22, 'loan': 271812}, 0)
        >>> [y for _, y in itertools.islice(agrawal(2, seed=0), 8)]
        [0, 0, 1, 1, 1, 0, 1, 1]
    """
    function = _check_function("classification_function", classification_function)
    perturbation = _check_perturbation(perturbation)

    def stream() -> Iterator[tuple[dict[str, float], int]]:
        for clean, noisy in _agrawal_samples(np.random.default_rng(seed), perturbation):
            yield noisy, agrawal_label(clean, function)

    return stream()


def _check_drifts(n_samples: int, drifts: tuple[tuple[float, int], ...]) -> None:
    if not isinstance(n_samples, numbers.Integral) or n_samples < 1:
        raise ValueError(f"n_samples: expected an int >= 1, got {n_samples!r}")
    previous = 0.0
    for i, drift in enumerate(drifts):
        if len(drift) != 2:
            raise ValueError(f"drifts: expected (position, width) pairs, got {drift!r} at {i}")
        position, width = drift
        if not previous < position < 1.0:
            raise ValueError(
                f"drifts: expected positions strictly increasing in (0, 1), got {position!r} "
                f"at {i} (after {previous!r})"
            )
        if not width >= 0:
            raise ValueError(f"drifts: expected widths >= 0, got {width!r} at {i}")
        previous = position


def drift_points(n_samples: int, drifts: tuple[tuple[float, int], ...]) -> list[int]:
    """The sample indices of the drift centres of a :func:`drift_stream`.

    Drift ``(position, width)`` is centred on sample ``round(position * n_samples)``: the
    first sample of the new concept for an abrupt drift, the sample that comes from either
    concept with probability 1/2 for a gradual one.

    Args:
        n_samples: length of the stream.
        drifts: ``(position, width)`` pairs as in :func:`drift_stream`.

    Returns:
        One index in ``0..n_samples`` per drift, in increasing order.

    Examples:
        >>> drift_points(20_000, ((0.3333, 0), (0.6667, 2000)))
        [6666, 13334]
    """
    _check_drifts(n_samples, drifts)
    return [round(position * n_samples) for position, _ in drifts]


def _sigmoid(x: float) -> float:
    if x >= 0:
        return 1.0 / (1.0 + math.exp(-x))
    e = math.exp(x)  # no overflow far before the centre
    return e / (1.0 + e)


def drift_stream(
    n_samples: int = 20_000,
    *,
    functions: tuple[int, ...] = (0, 2, 4),
    drifts: tuple[tuple[float, int], ...] = ((0.3333, 0), (0.6667, 2000)),
    seed: int = 0,
    perturbation: float = 0.0,
) -> Iterator[tuple[dict[str, float], int]]:
    r"""A finite Agrawal stream whose labelling function changes at given points.

    The stream starts with concept ``functions[0]``; drift ``i``, a pair
    ``(position, width)``, switches to ``functions[i + 1]`` around sample
    :math:`c_i = \text{round}(\text{position} \cdot \text{n\_samples})` (see
    :func:`drift_points`). Width 0 makes the drift abrupt: samples :math:`t \geq c_i` come
    from the new concept. Width :math:`w > 0` makes it gradual, as in MOA's and River's
    ``ConceptDriftStream``: sample :math:`t` comes from the new concept with probability

    .. math::
        P_i(t) = \frac{1}{1 + e^{-4 (t - c_i) / w}},

    so the change happens mostly within :math:`c_i \pm w / 2` (where :math:`P` goes
    from 0.12 to 0.88). Drifts nest like MOA's: sample :math:`t` goes past drift ``i`` to
    be offered to drift ``i + 1`` with probability :math:`P_i(t)`. Every concept draws
    features the same way (those of :func:`agrawal` with the same ``seed``); only the
    labels change, so the drift is a real one in :math:`P(y \mid x)`.

    Args:
        n_samples: length of the stream, >= 1. Default: ``20_000``.
        functions: the concepts in order, Agrawal classification functions in ``0..9``.
            Default: ``(0, 2, 4)``.
        drifts: one ``(position, width)`` per change of concept: position a fraction of
            ``n_samples``, strictly increasing in (0, 1); width in samples, >= 0.
            Default: ``((0.3333, 0), (0.6667, 2000))``.
        seed: seed of the features (as in :func:`agrawal`) and of the choice of concept
            in gradual drifts. Default: ``0``.
        perturbation: noise on the numeric features, as in :func:`agrawal`.
            Default: ``0.0``.

    Returns:
        A lazy iterator of ``n_samples`` pairs ``(features, label)`` as in :func:`agrawal`.

    Examples:
        >>> stream = drift_stream(1_000, functions=(0, 1), drifts=((0.5, 0),))
        >>> labels = [y for _, y in stream]
        >>> len(labels), drift_points(1_000, ((0.5, 0),))
        (1000, [500])
    """
    _check_drifts(n_samples, drifts)
    if len(functions) < 1:
        raise ValueError(f"functions: expected at least one function, got {functions!r}")
    concepts = [_check_function("functions", f) for f in functions]
    if len(drifts) != len(concepts) - 1:
        raise ValueError(
            f"drifts: expected len(functions) - 1 = {len(concepts) - 1} drifts, got {len(drifts)}"
        )
    perturbation = _check_perturbation(perturbation)
    centres = drift_points(n_samples, drifts)
    widths = [float(width) for _, width in drifts]

    def stream() -> Iterator[tuple[dict[str, float], int]]:
        samples = _agrawal_samples(np.random.default_rng(seed), perturbation)
        # the concept draws get their own generator, so the features match agrawal(seed=seed)
        chooser = np.random.default_rng(np.random.SeedSequence(seed).spawn(1)[0])
        for t in range(n_samples):
            clean, noisy = next(samples)
            u = chooser.random(len(centres))  # one draw per drift, used or not
            concept = 0
            for i, (c, w) in enumerate(zip(centres, widths, strict=True)):
                p = float(t >= c) if w == 0 else _sigmoid(4.0 * (t - c) / w)
                if u[i] >= p:
                    break
                concept = i + 1
            yield noisy, agrawal_label(clean, concepts[concept])

    return stream()
