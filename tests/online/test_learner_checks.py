"""Generic checks every online learner in ``torchkata.online.__all__`` passes (STYLE.md rule 8).

To register a learner, add a factory (a fresh instance, built with a seeded module) and a
stream to ``LEARNERS``. The checks: inputs are not mutated; predicting before any learning
works (and says it knows nothing yet); the same seed gives the same predictions; a clone
starts fresh with the same arguments; a River-style ``repr`` names the arguments; and
every public name of ``torchkata.online`` is registered here or exempt with its reason.
"""

from __future__ import annotations

import copy
from collections.abc import Callable

import numpy as np
import pytest
import torch
from torch import nn

import torchkata.online
from torchkata.online import OnlineClassifier, OnlineRegressor


def _mlp(n_out: int, seed: int = 0) -> nn.Sequential:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(3, 8), nn.Tanh(), nn.Linear(8, n_out))


def _stream(classify: bool, n: int = 60, seed: int = 0) -> list[tuple[dict, object]]:
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        x = rng.normal(size=3)
        y = ("yes" if x[0] > 0 else "no") if classify else float(3 * x[0] - x[1])
        out.append(({"a": float(x[0]), "b": float(x[1]), "c": float(x[2])}, y))
    return out


LEARNERS: dict[str, tuple[Callable[[int], object], bool]] = {
    "OnlineClassifier": (lambda seed: OnlineClassifier(_mlp(2, seed), drift="adwin"), True),
    "OnlineClassifier, autograd engine": (
        lambda seed: OnlineClassifier(_mlp(2, seed), "sgd", lr=0.05, fast=False),
        True,
    ),
    "OnlineRegressor": (lambda seed: OnlineRegressor(_mlp(1, seed), drift="page_hinkley"), False),
}
EXEMPT = {
    "ADWIN": "a drift detector: update(x) -> bool, no predict/learn; tests/online/test_drift.py",
    "PageHinkley": "a drift detector, as ADWIN",
    "RunningStandardizer": "a feature scaler the learners use; tests in its doctest",
}


def test_every_public_name_is_checked_or_exempt():
    learners = {name.split(",")[0] for name in LEARNERS}
    assert set(torchkata.online.__all__) == learners | set(EXEMPT)


@pytest.mark.parametrize("name", LEARNERS)
def test_inputs_are_not_mutated(name):
    make, classify = LEARNERS[name]
    learner = make(0)
    for x, y in _stream(classify):
        before = copy.deepcopy(x)
        learner.predict_one(x)
        learner.learn_one(x, y)
        assert x == before
    rows = [x for x, _ in _stream(classify, 8)]
    before = copy.deepcopy(rows)
    learner.learn_many(rows, [y for _, y in _stream(classify, 8)])
    assert rows == before


@pytest.mark.parametrize("name", LEARNERS)
def test_predicting_before_learning_works(name):
    make, classify = LEARNERS[name]
    learner = make(0)
    x = _stream(classify, 1)[0][0]
    if classify:
        assert learner.predict_one(x) is None  # no label seen: nothing to predict
        assert learner.predict_proba_one(x) == {}
    else:
        assert isinstance(learner.predict_one(x), float)
    assert learner.n_learned == 0


@pytest.mark.parametrize("name", LEARNERS)
def test_same_seed_same_predictions(name):
    make, classify = LEARNERS[name]
    a, b, other = make(0), make(0), make(1)
    differs = False
    for x, y in _stream(classify):
        pa, pb, po = a.predict_one(x), b.predict_one(x), other.predict_one(x)
        assert pa == pb
        differs |= pa != po
        for learner in (a, b, other):
            learner.learn_one(x, y)
    assert differs or classify  # regression outputs differ with other initial weights


@pytest.mark.parametrize("name", LEARNERS)
def test_clones_start_fresh(name):
    make, classify = LEARNERS[name]
    learner, twin = make(0), make(0)
    for x, y in _stream(classify):
        learner.learn_one(x, y)
    clone = learner.clone()
    assert type(clone) is type(learner) and clone.n_learned == 0 and clone.rejected == 0
    assert repr(clone) == repr(twin)
    for x, y in _stream(classify, seed=1):
        assert clone.predict_one(x) == twin.predict_one(x)
        clone.learn_one(x, y)
        twin.learn_one(x, y)


@pytest.mark.parametrize("name", LEARNERS)
def test_repr_names_the_arguments_and_docstring_has_examples(name):
    make, _ = LEARNERS[name]
    learner = make(0)
    assert "lr=" in repr(learner) and "optimizer=" in repr(learner)
    assert "Examples:" in type(learner).__doc__
