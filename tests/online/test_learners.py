"""OnlineClassifier / OnlineRegressor: exactness of both engines, safety, state, River's API."""

from __future__ import annotations

import copy
import json

import numpy as np
import pytest
import torch
from torch import nn

from torchkata.online import ADWIN, OnlineClassifier, OnlineRegressor
from torchkata.online.engines import NumpyMLPEngine
from torchkata.runs import load_state, save_state


def mlp(n_in: int = 3, n_out: int = 2, dtype=torch.float64, act=nn.ReLU) -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(n_in, 8), act(), nn.Linear(8, 8), act(), nn.Linear(8, n_out)).to(
        dtype
    )


def stream(n: int, seed: int = 0, n_in: int = 3):
    rng = np.random.default_rng(seed)
    for _ in range(n):
        x = rng.normal(size=n_in) * np.array([1.0, 10.0, 0.1])[:n_in] + 5.0
        yield {f"f{i}": float(v) for i, v in enumerate(x)}, int(x[0] + 0.1 * x[1] > 5.5)


def params(module: nn.Module) -> list[torch.Tensor]:
    return [p.detach().clone() for p in module.parameters()]


@pytest.mark.parametrize("optimizer", ["adam", "sgd"])
@pytest.mark.parametrize("act", [nn.ReLU, nn.Tanh, nn.Sigmoid])
def test_numpy_engine_equals_autograd_and_torch_optim(optimizer, act):
    # The fast engine's gradients and updates equal autograd + torch.optim, float64.
    options = {"momentum": 0.9, "weight_decay": 1e-3} if optimizer == "sgd" else {
        "betas": (0.8, 0.99), "weight_decay": 1e-3}  # fmt: skip
    fast = OnlineClassifier(mlp(act=act), optimizer, lr=1e-2, optimizer_options=options)
    slow = OnlineClassifier(mlp(act=act), optimizer, lr=1e-2, optimizer_options=options, fast=False)
    assert fast.engine.kind == "numpy" and slow.engine.kind == "autograd"
    for x, y in stream(300):
        assert fast.predict_one(x) == slow.predict_one(x)
        fast.learn_one(x, y)
        slow.learn_one(x, y)
    for a, b in zip(params(fast.module), params(slow.module), strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-10)


def test_numpy_engine_learn_many_equals_autograd():
    fast, slow = OnlineClassifier(mlp(), lr=1e-2), OnlineClassifier(mlp(), lr=1e-2, fast=False)
    data = list(stream(64))
    for start in range(0, 64, 16):
        xs, ys = zip(*data[start : start + 16], strict=True)
        fast.learn_many(xs, ys)
        slow.learn_many(xs, ys)
    for a, b in zip(params(fast.module), params(slow.module), strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-10)


def test_one_step_equals_a_hand_written_torch_loop():
    # learn_one == cross-entropy, backward, Adam step (scaling off), as a hand-written loop.
    learner = OnlineClassifier(mlp(), lr=1e-2, scale=False)
    reference = mlp()
    optimizer = torch.optim.Adam(reference.parameters(), lr=1e-2)
    labels: list[int] = []
    for x, y in stream(50):
        learner.learn_one(x, y)
        if y not in labels:
            labels.append(y)
        optimizer.zero_grad()
        loss = nn.functional.cross_entropy(
            reference(torch.tensor([list(x.values())], dtype=torch.float64)),
            torch.tensor([labels.index(y)]),
        )
        loss.backward()
        optimizer.step()
    for a, b in zip(params(learner.module), params(reference), strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-10)


def test_test_then_train_costs_one_forward():
    module = mlp(dtype=torch.float32)
    calls = []
    module.register_forward_hook(lambda *_: calls.append(1))  # hooks: the autograd engine
    learner = OnlineClassifier(module)
    for x, y in stream(20):
        learner.predict_one(x)
        learner.predict_proba_one(x)
        learner.learn_one(x, y)
    assert len(calls) == 20


def test_rejected_samples_leave_everything_bit_identical():
    learner = OnlineClassifier(mlp(), drift="adwin")
    for x, y in stream(50):
        learner.learn_one(x, y)
    before = copy.deepcopy(learner.state_dict())
    bad = [
        ({"f0": float("nan"), "f1": 1.0, "f2": 2.0}, 1),
        ({"f0": float("inf"), "f1": 1.0, "f2": 2.0}, 0),
        ({"f0": 1.0, "f1": 1.0, "f2": "abc"}, 0),
        ({"f0": 1.0, "f1": 1.0, "f2": 2.0}, None),
        ({"f0": 1.0, "f1": 1.0, "f2": 2.0}, float("nan")),
    ]
    for x, y in bad:
        learner.learn_one(x, y)
    learner.learn_many([x for x, _ in bad], [y for _, y in bad])
    assert learner.rejected == 2 * len(bad)
    after = learner.state_dict()
    for name, tensor in before["module"].items():
        assert torch.equal(tensor, after["module"][name])
    assert json.dumps(_plain(before)) == json.dumps(_plain({**after, "rejected": 0}))
    assert learner.predict_one({"f0": float("nan"), "f1": 1.0, "f2": 2.0}) is None

    regressor = OnlineRegressor(mlp(n_out=1))
    regressor.learn_one([1.0, 2.0, 3.0], 1.0)
    snapshot = params(regressor.module)
    for x, y in [([1.0, 2.0], 1.0), ([1.0, 2.0, 3.0, 4.0], 1.0), ([1.0, 2.0, 3.0], np.inf)]:
        regressor.learn_one(x, y)  # wrong lengths, bad target
    assert regressor.rejected == 3
    assert all(torch.equal(a, b) for a, b in zip(snapshot, params(regressor.module), strict=True))


def _plain(state: dict) -> dict:
    """The state without tensors (compared separately), for a JSON comparison."""
    out = {}
    for key, value in state.items():
        if key in ("module",):
            continue
        if key == "engine":
            value = {k: v.tolist() if isinstance(v, torch.Tensor) else v for k, v in value.items()}
        out[key] = value
    return out


def test_state_dict_restores_a_learner_that_continues_bit_identically(tmp_path):
    data = list(stream(400, seed=3))
    kwargs = {"drift": "adwin", "on_drift": "boost", "boost_steps": 20}
    for fast in (True, False):
        original = OnlineClassifier(mlp(), fast=fast, **kwargs)
        for x, y in data[:200]:
            original.learn_one(x, y)
        save_state(original.state_dict(), tmp_path, f"learner-{fast}")  # safetensors + JSON
        restored = OnlineClassifier(mlp(), fast=fast, **kwargs)
        restored.load_state_dict(load_state(tmp_path, f"learner-{fast}"))
        for x, y in data[200:]:
            assert original.predict_proba_one(x) == restored.predict_proba_one(x)
            original.learn_one(x, y)
            restored.learn_one(x, y)
        assert all(
            torch.equal(a, b)
            for a, b in zip(params(original.module), params(restored.module), strict=True)
        )
        assert original.drifts == restored.drifts


def test_labels_keep_their_units_and_the_output_grows():
    learner = OnlineClassifier(mlp(n_out=2))
    x = {"f0": 1.0, "f1": 2.0, "f2": 3.0}
    for label in ["b", "a", "b", "c", "a"]:
        learner.learn_one(x, label)
    assert learner.classes == ["b", "a", "c"]  # order of first sight, never re-sorted
    assert learner.module[-1].out_features == 3
    assert set(learner.predict_proba_one(x)) == {"a", "b", "c"}
    assert sum(learner.predict_proba_one(x).values()) == pytest.approx(1.0)
    strict = OnlineClassifier(mlp(n_out=2), new_classes="error")
    strict.learn_one(x, 0)
    strict.learn_one(x, 1)
    with pytest.raises(ValueError, match="a new label 2, but all 2 output units are taken"):
        strict.learn_one(x, 2)


def test_features_fixed_at_first_sight():
    learner = OnlineClassifier(mlp())
    learner.learn_one({"a": 1.0, "b": 2.0, "c": 3.0}, 0)
    assert learner.features == ["a", "b", "c"]
    with pytest.raises(ValueError, match=r"unknown \['d'\], missing \['c'\]"):
        learner.learn_one({"a": 1.0, "b": 2.0, "d": 3.0}, 0)
    lenient = OnlineClassifier(mlp(), missing="zero")
    lenient.learn_one({"a": 1.0, "b": 2.0, "c": 3.0}, 0)
    lenient.learn_one({"b": 2.0, "a": 1.0, "d": 9.0}, 1)  # c filled with 0, d ignored
    assert lenient.n_learned == 2
    with pytest.raises(ValueError, match="first Linear takes 3 features, the first sample has 2"):
        OnlineClassifier(mlp()).learn_one({"a": 1.0, "b": 2.0}, 0)


def test_batchnorm_is_refused_with_a_suggestion():
    module = nn.Sequential(nn.Linear(3, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 2))
    with pytest.raises(ValueError, match=r"BatchNorm1d.*Use nn\.LayerNorm"):
        OnlineClassifier(module)


def test_argument_errors_name_the_argument():
    with pytest.raises(ValueError, match="optimizer: expected 'adam', 'sgd' or a callable"):
        OnlineClassifier(mlp(), optimizer="rmsprop")
    with pytest.raises(ValueError, match="lr: expected a positive finite float, got -1"):
        OnlineClassifier(mlp(), lr=-1)
    with pytest.raises(ValueError, match="on_drift: 'reset' needs a drift detector"):
        OnlineClassifier(mlp(), on_drift="reset")
    with pytest.raises(ValueError, match="at least 2 output units"):
        OnlineClassifier(mlp(n_out=1))
    with pytest.raises(ValueError, match="1 output unit, got 2"):
        OnlineRegressor(mlp(n_out=2))
    with pytest.raises(TypeError, match=r"module: expected an nn\.Module instance"):
        OnlineClassifier("mlp")


def test_any_module_and_any_optimizer_use_autograd():
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.body = nn.Sequential(nn.Linear(3, 8), nn.LayerNorm(8), nn.GELU())
            self.head = nn.Linear(8, 2)

        def forward(self, x):
            return self.head(self.body(x))

    torch.manual_seed(0)
    learner = OnlineClassifier(Net(), lambda p: torch.optim.RMSprop(p, lr=1e-2))
    assert learner.engine.kind == "autograd"
    hits = []
    for i, (x, y) in enumerate(stream(1500)):
        hits.append(learner.predict_one(x) == y)
        learner.learn_one(x, y)
        assert i or learner.n_learned == 1
    assert np.mean(hits[-500:]) > 0.85


def test_clone_starts_fresh_and_same_seed_same_predictions():
    learner = OnlineClassifier(mlp(), drift="adwin")
    for x, y in stream(100):
        learner.learn_one(x, y)
    fresh, again = learner.clone(), learner.clone()
    assert fresh.n_learned == 0 and fresh.classes == []
    for x, y in stream(100, seed=1):
        assert fresh.predict_proba_one(x) == again.predict_proba_one(x)
        fresh.learn_one(x, y)
        again.learn_one(x, y)


def test_inputs_are_not_mutated():
    learner = OnlineClassifier(mlp())
    x, array = {"f0": 1.0, "f1": 2.0, "f2": 3.0}, np.array([1.0, 2.0, 3.0])
    for _ in range(3):
        learner.learn_one(dict(x), 1)
        learner.learn_one(array, 0)
    assert x == {"f0": 1.0, "f1": 2.0, "f2": 3.0}
    assert array.tolist() == [1.0, 2.0, 3.0]


def test_drift_reaction_resets_or_boosts():
    # A label flip halfway: the detector fires, and the learner reacts.
    data = [(x, 1 - y if i >= 1500 else y) for i, (x, y) in enumerate(stream(3000))]
    for reaction in ("reset", "boost"):
        learner = OnlineClassifier(mlp(), lr=1e-2, drift=ADWIN(), on_drift=reaction)
        for x, y in data:
            learner.learn_one(x, y)
        assert any(1500 <= d <= 1800 for d in learner.drifts), learner.drifts


def test_regressor_learns_in_the_target_units():
    learner = OnlineRegressor(mlp(n_out=1), lr=1e-2)
    rng = np.random.default_rng(0)
    errors = []
    for _ in range(3000):
        x = rng.normal(size=3)
        y = 1000.0 + 200.0 * x[0] - 50.0 * x[1]
        errors.append(abs(learner.predict_one(x) - y))
        learner.learn_one(x, y)
    assert np.mean(errors[-500:]) < 10.0  # the targets' std is ~206


def test_fast_engine_parameters_stay_those_of_the_module():
    module = mlp(dtype=torch.float32)
    learner = OnlineClassifier(module)
    assert isinstance(learner.engine, NumpyMLPEngine)
    before = params(module)
    for x, y in stream(10):
        learner.learn_one(x, y)
    assert not torch.equal(before[0], module[0].weight)  # trained in place
    x = torch.tensor([[5.0, 5.0, 5.0]])
    assert module(x).shape == (1, 2)  # still an ordinary module
