"""diagnose: each planted bug is caught by its check (and only by it), healthy models pass."""

from __future__ import annotations

import copy
import functools
import random

import numpy as np
import pytest
import torch
from torch import Tensor, nn

from torchkata.doctor import CHECKS, GALLERY, CheckResult, Diagnosis, diagnose
from torchkata.doctor.gallery import MLP, _batch, train_step

# Checks that may also fail (or warn) for a case, and why. Anything else is a false alarm.
ALSO_FAILS = {
    # NaN in the forward pass makes every gradient NaN and the loss curve NaN.
    "NaN op": {"gradient_flow", "overfit_batch"},
    # With relu2 dead the output is fc3's bias alone: a constant cannot memorise a batch.
    "dead ReLU layer": {"overfit_batch"},
    "cannot overfit": set(),
}
ALSO_WARNS = {
    "NaN op": {"lr_range"},  # the first loss is NaN
    "dead ReLU layer": {"lr_range"},  # a constant output barely lowers the loss
    "cannot overfit": {"lr_range"},
}


class Constant(nn.Module):
    """Ignores its input: the logits are one learned vector, so it cannot memorise."""

    def __init__(self) -> None:
        super().__init__()
        self.logits = nn.Parameter(torch.zeros(10))

    def forward(self, x: Tensor) -> Tensor:
        return self.logits.expand(x.shape[0], -1)


def _cannot_overfit() -> dict:
    return {"model": Constant(), "batch": _batch(), "loss_fn": nn.CrossEntropyLoss()}


CASES = {case.name: (case.expected, case.build) for case in GALLERY}
CASES["cannot overfit"] = ("overfit_batch", _cannot_overfit)


@functools.cache
def _diagnosis(name: str) -> Diagnosis:
    return diagnose(**CASES[name][1]())


def test_gallery_lists_every_bug_once() -> None:
    names = [case.name for case in GALLERY]
    assert len(names) == len(set(names))
    expected = {case.expected for case in GALLERY}
    assert expected == (set(CHECKS) - {"overfit_batch", "lr_range"}) | {None}
    assert len(GALLERY) == 10


@pytest.mark.parametrize("name", list(CASES))
def test_planted_bug_is_caught_by_its_check_only(name: str) -> None:
    expected, _ = CASES[name]
    diagnosis = _diagnosis(name)
    assert list(diagnosis.checks) == list(CHECKS)
    if expected is None:
        assert diagnosis.failed == [], str(diagnosis)
        assert diagnosis.warned == [], str(diagnosis)
        assert diagnosis.ok
        return
    assert expected in diagnosis.failed, str(diagnosis)
    assert set(diagnosis.failed) - {expected} <= ALSO_FAILS.get(name, set()), str(diagnosis)
    assert set(diagnosis.warned) <= ALSO_WARNS.get(name, set()), str(diagnosis)
    assert not diagnosis.ok


def test_healthy_mlp_runs_every_check() -> None:
    statuses = {name: r.status for name, r in _diagnosis("healthy MLP").checks.items()}
    assert statuses == dict.fromkeys(CHECKS, "pass")


def test_evidence_names_the_culprit() -> None:
    assert _diagnosis("NaN op").checks["finite"].evidence["module"] == "log"
    flow = _diagnosis("unused layer").checks["gradient_flow"].evidence
    assert flow["unused"] == ["extra.weight", "extra.bias"]
    dead = _diagnosis("dead ReLU layer").checks["gradient_flow"].evidence
    assert dead["dead_relu_fraction"]["relu2"] == 1.0
    overfit = _diagnosis("cannot overfit").checks["overfit_batch"].evidence
    assert len(overfit["curve"]) == 101 and overfit["ratio"] > 0.5
    initial = _diagnosis("too-large initial loss").checks["initial_loss"].evidence
    assert initial["expected"] == pytest.approx(np.log(10)) and initial["ratio"] > 4
    leak = _diagnosis("leaked test set").checks["leakage"].evidence
    assert leak["count"] == 20
    repro = _diagnosis("non-reproducible").checks["reproducibility"].evidence
    assert repro["losses_run1"] != repro["losses_run2"]


def _state(model: nn.Module) -> dict:
    return {
        "state": {k: v.clone() for k, v in model.state_dict(keep_vars=False).items()},
        "grads": {
            n: None if p.grad is None else p.grad.clone() for n, p in model.named_parameters()
        },
        "training": [m.training for m in model.modules()],
    }


def test_callers_model_and_rng_unchanged() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Flatten(),
        nn.Linear(64, 32),
        nn.BatchNorm1d(32),
        nn.ReLU(),
        nn.Dropout(0.1),
        nn.Linear(32, 10),
    ).eval()
    x, y = _batch()
    nn.CrossEntropyLoss()(model(x), y).backward()  # the caller's gradients, to be kept
    before = _state(model)
    torch_rng, np_rng, py_rng = torch.get_rng_state(), np.random.get_state(), random.getstate()
    diagnosis = diagnose(
        model,
        (x, y),
        nn.CrossEntropyLoss(),
        steps=5,
        train_step=train_step,
        eval_data=(x[:8] + 1, y[:8]),
    )
    assert diagnosis.checks["batch_independence"].evidence["has_batchnorm"]
    after = _state(model)
    assert before["training"] == after["training"]
    for key in before["state"]:
        assert torch.equal(before["state"][key], after["state"][key]), key
    for key, grad in before["grads"].items():
        assert torch.equal(grad, after["grads"][key]), key
    assert torch.equal(torch_rng, torch.get_rng_state())
    assert np.array_equal(np_rng[1], np.random.get_state()[1])
    assert py_rng == random.getstate()


class TimeSeededNoise(nn.Module):
    def forward(self, x: Tensor) -> Tensor:
        generator = torch.Generator()
        generator.seed()  # a non-deterministic seed, not the global one
        return x + 1e-3 * torch.randn(x.shape, generator=generator)


def test_unseeded_torch_generator_fails_reproducibility() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 10), TimeSeededNoise())
    diagnosis = diagnose(model, _batch(), nn.CrossEntropyLoss(), steps=3)
    assert diagnosis.checks["reproducibility"].status == "fail"


class SqrtAbs(nn.Module):
    """sqrt(|x|) times a learned scale: finite forward, NaN gradient where x == 0."""

    def __init__(self) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.ones(64))

    def forward(self, x: Tensor) -> Tensor:
        return torch.sqrt((x * self.scale).abs())  # d/dx at 0: inf * sign(0) = NaN


def test_backward_only_nan_names_parameters_and_op() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), SqrtAbs(), nn.Linear(64, 10))
    result = diagnose(model, _batch(), nn.CrossEntropyLoss(), steps=2).checks["finite"]
    assert result.status == "fail", result.summary
    assert result.evidence["nonfinite_grads"] == ["1.scale"]
    assert "AbsBackward0" in result.evidence["backward_op"]


def test_regression_initial_loss_and_task_inference() -> None:
    torch.manual_seed(0)
    x = torch.randn(64, 8)
    y = x @ torch.randn(8, 1) + 0.1 * torch.randn(64, 1)
    model = nn.Sequential(nn.Linear(8, 32), nn.ReLU(), nn.Linear(32, 1))
    diagnosis = diagnose(model, (x, y), nn.MSELoss(), steps=100)
    initial = diagnosis.checks["initial_loss"]
    assert initial.status == "pass" and initial.evidence["task"] == "regression"
    assert diagnosis.ok, str(diagnosis)
    evidence = initial.evidence
    want = evidence["target_variance"] + evidence["output_mean_square"]
    assert evidence["expected"] == pytest.approx(want)
    assert evidence["target_variance"] == pytest.approx(float(y.var(unbiased=False)))


class Bag(nn.Module):
    """Token ids (N, L) -> (N, 10); optionally mixing samples through the batch dim."""

    def __init__(self, mix: bool) -> None:
        super().__init__()
        self.embed = nn.Embedding(20, 8)
        self.out = nn.Linear(8, 10)
        self.mix = mix

    def forward(self, tokens: Tensor) -> Tensor:
        h = self.embed(tokens).mean(1)  # (N, E)
        if self.mix:
            h = h - h.mean(0, keepdim=True)  # centres over the batch: samples mix
        return self.out(h)


@pytest.mark.parametrize("mix", [False, True])
def test_batch_independence_through_embedding(mix: bool) -> None:
    torch.manual_seed(0)
    tokens, labels = torch.randint(0, 20, (16, 5)), torch.randint(0, 10, (16,))
    result = diagnose(Bag(mix), (tokens, labels), nn.CrossEntropyLoss(), steps=2)
    check = result.checks["batch_independence"]
    assert check.status == ("fail" if mix else "pass"), check.summary
    assert check.evidence["wrt"] == "embedding output"


def test_a_raising_model_is_a_finding_not_a_crash() -> None:
    class Broken(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc = nn.Linear(64, 10)

        def forward(self, x: Tensor) -> Tensor:
            return self.fc(x)  # forgot to flatten (N, 1, 8, 8)

    diagnosis = diagnose(Broken(), _batch(), nn.CrossEntropyLoss(), steps=2)
    assert diagnosis.checks["finite"].status == "fail"
    assert "RuntimeError" in diagnosis.checks["finite"].summary


def test_diagnosis_table_and_properties() -> None:
    checks = {
        "finite": CheckResult("finite", "fail", "NaN in `log`", {}),
        "lr_range": CheckResult("lr_range", "warn", "no descent", {}),
        "leakage": CheckResult("leakage", "skip", "no eval_data given", {}),
    }
    diagnosis = Diagnosis(checks)
    assert not diagnosis.ok
    assert diagnosis.failed == ["finite"] and diagnosis.warned == ["lr_range"]
    lines = str(diagnosis).splitlines()
    assert lines[0].split() == ["check", "status", "summary"]
    assert lines[2].split(maxsplit=2) == ["finite", "fail", "NaN in `log`"]
    assert len(lines) == 5 and repr(diagnosis) == str(diagnosis)


def test_zero_grad_skipped_without_train_step() -> None:
    check = _diagnosis("healthy CNN").checks["zero_grad"]
    assert check.status == "skip"


@pytest.mark.parametrize(
    ("kwargs", "error", "argument"),
    [
        ({"batch": _batch()[0]}, TypeError, "batch"),
        ({"batch": (*_batch(), _batch()[1])}, ValueError, "batch"),
        ({"batch": (_batch()[0], _batch()[1][:10])}, ValueError, "batch"),
        ({"batch": (_batch()[0], [1, 2])}, TypeError, "batch"),
        ({"task": "segmentation"}, ValueError, "task"),
        ({"steps": 0}, ValueError, "steps"),
        ({"steps": 2.5}, TypeError, "steps"),
        ({"loss_fn": "cross_entropy"}, TypeError, "loss_fn"),
        ({"model": lambda x: x}, TypeError, "model"),
        ({"optimizer_factory": "adam"}, TypeError, "optimizer_factory"),
        ({"train_step": 3}, TypeError, "train_step"),
        ({"eval_data": (torch.zeros(3, 2),)}, ValueError, "eval_data"),
        ({"train_data": torch.zeros(3)}, TypeError, "train_data"),
    ],
)
def test_bad_arguments_name_the_argument(kwargs: dict, error: type, argument: str) -> None:
    args = {"model": MLP(), "batch": _batch(), "loss_fn": nn.CrossEntropyLoss(), **kwargs}
    with pytest.raises(error, match=rf"^{argument}: expected"):
        diagnose(**args)


def test_custom_optimizer_factory_is_used() -> None:
    calls = []

    def sgd(params):
        calls.append(1)
        return torch.optim.SGD(params, lr=0.5)

    model = copy.deepcopy(CASES["healthy MLP"][1]()["model"])
    diagnosis = diagnose(model, _batch(), nn.CrossEntropyLoss(), sgd, steps=20)
    assert calls and diagnosis.checks["reproducibility"].status == "pass"
