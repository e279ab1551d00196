"""Online learners: a PyTorch module trained one sample at a time, River's way.

``predict_one(x)`` then ``learn_one(x, y)`` is *test-then-train* (prequential) learning:
each sample is first used to evaluate the model, then to update it. Here that costs one
forward pass: ``learn_one`` reuses the forward of the ``predict_one`` that came just before
on the same ``x``.

Features ``x`` are a dict of floats (River's convention; the order of the keys of the first
sample fixes the input order) or a 1-D array/tensor. Inputs are standardised with running
statistics (Welford) of the samples up to the current one (``x`` is known when predicting;
only ``y`` is not), so the learner needs no pass over the data first. A sample with a
NaN/inf feature or target, or of the wrong length, is rejected and counted in
``rejected``: the model, the optimizer, the scaler and the drift detector are untouched.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from typing import Any, Literal

import numpy as np
import torch
from torch import nn

from torchkata.online.drift import ADWIN, PageHinkley
from torchkata.online.engines import AutogradEngine, NumpyMLPEngine
from torchkata.online.scaling import RunningStandardizer

__all__ = ["OnlineClassifier", "OnlineRegressor"]

Features = Mapping[str, float] | Sequence[float] | np.ndarray | torch.Tensor
Detector = ADWIN | PageHinkley


def _linears(module: nn.Module) -> list[nn.Linear]:
    return [m for m in module.modules() if isinstance(m, nn.Linear)]


def _refuse_batchnorm(module: nn.Module) -> None:
    from torch.nn.modules.batchnorm import _BatchNorm

    from torchkata.norm import BatchNorm1d, BatchNorm2d

    for name, m in module.named_modules():
        if isinstance(m, (_BatchNorm, BatchNorm1d, BatchNorm2d)):
            raise ValueError(
                f"module: {name or 'the module'} is a {type(m).__name__}, which cannot train "
                "on one sample at a time (the variance of a batch of 1 is 0, and PyTorch "
                "raises). Use nn.LayerNorm (per sample), or no normalisation layer: the "
                "learner already standardises its inputs with running statistics"
            )


class _OnlineLearner:
    """What classifier and regressor share: features, scaling, rejection, engine, drift."""

    _task = ""
    _supervised = True  # River's flags, read by its pipelines and evaluation
    _multiclass = True

    def __init__(
        self,
        module: nn.Module,
        optimizer: str | Callable[[list[nn.Parameter]], torch.optim.Optimizer] = "adam",
        lr: float = 1e-3,
        *,
        optimizer_options: Mapping[str, Any] | None = None,
        missing: Literal["error", "zero"] = "error",
        scale: bool = True,
        drift: Literal["adwin", "page_hinkley"] | Detector | None = None,
        on_drift: Literal["none", "reset", "boost"] = "none",
        boost: float = 10.0,
        boost_steps: int = 200,
        fast: bool = True,
    ) -> None:
        if not isinstance(module, nn.Module):
            raise TypeError(f"module: expected an nn.Module instance, got {type(module).__name__}")
        _refuse_batchnorm(module)
        if not (isinstance(optimizer, str) and optimizer in ("adam", "sgd")) and not callable(
            optimizer
        ):
            raise ValueError(
                f"optimizer: expected 'adam', 'sgd' or a callable (params) -> Optimizer, "
                f"got {optimizer!r}"
            )
        if not (isinstance(lr, (int, float)) and lr > 0 and math.isfinite(lr)):
            raise ValueError(f"lr: expected a positive finite float, got {lr!r}")
        if missing not in ("error", "zero"):
            raise ValueError(f"missing: expected 'error' or 'zero', got {missing!r}")
        if on_drift not in ("none", "reset", "boost"):
            raise ValueError(f"on_drift: expected 'none', 'reset' or 'boost', got {on_drift!r}")
        if on_drift != "none" and drift is None:
            raise ValueError(f"on_drift: {on_drift!r} needs a drift detector (drift=...)")
        if not (boost > 0 and boost_steps >= 1):
            raise ValueError(
                f"boost, boost_steps: expected > 0 and >= 1, got {boost}, {boost_steps}"
            )
        if drift not in (None, "adwin", "page_hinkley") and not isinstance(
            drift, (ADWIN, PageHinkley)
        ):
            raise ValueError(
                f"drift: expected None, 'adwin', 'page_hinkley' or a detector, got {drift!r}"
            )
        if not any(p.requires_grad for p in module.parameters()):
            raise ValueError("module: expected trainable parameters, found none")
        self.module = module
        self.optimizer = optimizer
        self.lr = float(lr)
        self.optimizer_options = dict(optimizer_options or {})
        self.missing = missing
        self.scale = scale
        self.drift = drift
        self.on_drift = on_drift
        self.boost = float(boost)
        self.boost_steps = int(boost_steps)
        self.fast = fast
        self._initial_state = copy.deepcopy(module.state_dict())
        linears = _linears(module)
        self.n_inputs = linears[0].in_features if linears else None
        self.n_outputs = linears[-1].out_features if linears else None
        if isinstance(drift, str):
            self.detector: Detector | None = ADWIN() if drift == "adwin" else PageHinkley()
        else:
            self.detector = copy.deepcopy(drift)
        self._build_engine()
        self.features: list[str] | None = None  # input order, fixed by the first dict seen
        self.scaler: RunningStandardizer | None = None
        self.n_learned = 0  # samples learned
        self.rejected = 0  # samples refused (NaN/inf, wrong length)
        self.drifts: list[int] = []  # n_learned at each detected drift
        self._boost_left = 0
        self._cache: tuple[np.ndarray, np.ndarray, Any] | None = None  # (x, outputs, graph)

    # ---------------------------------------------------------------- plumbing

    def _build_engine(self) -> None:
        if (
            self.fast
            and isinstance(self.optimizer, str)
            and NumpyMLPEngine.supports(self.module, self.optimizer, self.optimizer_options)
        ):
            self.engine: AutogradEngine | NumpyMLPEngine = NumpyMLPEngine(
                self.module, self.optimizer, self.lr, self.optimizer_options
            )
            return
        if isinstance(self.optimizer, str):
            cls = torch.optim.Adam if self.optimizer == "adam" else torch.optim.SGD
            options = dict(self.optimizer_options)
            devices = {p.device.type for p in self.module.parameters()}
            if not {"fused", "foreach"} & set(options) and devices <= {"cpu", "cuda"}:
                # One kernel for the whole update: at batch size 1 the default (foreach)
                # step's per-call overhead is as large as the forward and backward.
                options["fused"] = True

            def factory(params: list[nn.Parameter]) -> torch.optim.Optimizer:
                return cls(params, lr=self.lr, **options)
        else:
            factory = self.optimizer
        self.engine = AutogradEngine(self.module, factory)

    def _vector(self, x: Features) -> np.ndarray | None:
        """The raw feature vector (float64), or ``None`` for a malformed or non-finite x."""
        vector = self._parse(x)
        if vector is None or not np.isfinite(vector).all():
            return None
        return vector

    def _parse(self, x: Features) -> np.ndarray | None:
        """The raw feature vector (float64), or ``None`` when the sample is malformed."""
        if isinstance(x, Mapping):
            if self.features is None:
                self._fix_features(list(x))
            features = self.features
            if len(x) != len(features) or any(k not in x for k in features):
                unknown = [k for k in x if k not in set(features)]
                absent = [k for k in features if k not in x]
                if self.missing == "error" and (unknown or absent):
                    raise ValueError(
                        f"x: expected the features {features}; unknown {unknown}, missing "
                        f"{absent} (missing='zero' fills missing ones with 0 and ignores "
                        "unknown ones)"
                    )
                try:
                    return np.array([float(x.get(k, 0.0)) for k in features])
                except (TypeError, ValueError):
                    return None
            try:
                return np.fromiter((x[k] for k in features), np.float64, len(features))
            except (TypeError, ValueError):
                return None
        if isinstance(x, torch.Tensor):
            x = x.detach().to("cpu", torch.float64).numpy()
        try:
            vector = np.asarray(x, dtype=np.float64)
        except (TypeError, ValueError):
            return None
        if vector.ndim != 1:
            raise ValueError(f"x: expected a dict or a 1-D vector, got shape {vector.shape}")
        if self.features is None:
            self._fix_features([str(i) for i in range(len(vector))])
        if len(vector) != len(self.features):
            return None
        return vector

    def _fix_features(self, names: list[str]) -> None:
        if self.n_inputs is not None and len(names) != self.n_inputs:
            raise ValueError(
                f"x: the module's first Linear takes {self.n_inputs} features, the first "
                f"sample has {len(names)}: {names}"
            )
        self.features = names
        self.scaler = RunningStandardizer(len(names))

    def _inputs(self, vector: np.ndarray) -> np.ndarray:
        """(F,) raw → (1, F) model input, standardised by the samples up to this one."""
        x = self.scaler.transform_with(vector) if self.scale else vector
        return x.reshape(1, -1)

    def _batch_inputs(self, rows: list[np.ndarray]) -> np.ndarray:
        """Take a mini-batch's rows into the statistics, then standardise them: (N, F)."""
        raw = np.stack(rows)
        if not self.scale:
            return raw
        for vector in rows:
            self.scaler.update(vector)
        return self.scaler.transform(raw)

    def _forward(self, vector: np.ndarray) -> tuple[np.ndarray, Any]:
        """Outputs (C,) for ``vector``, reusing the last forward when it was on the same x."""
        cache = self._cache
        if cache is not None and np.array_equal(cache[0], vector):
            return cache[1], cache[2]
        outputs, graph = self.engine.forward(self._inputs(vector))
        self._cache = (vector, outputs[0], graph)
        return outputs[0], graph

    def _after_update(self, vector: np.ndarray, error: float, scaled: bool = False) -> None:
        if self.scale and not scaled:
            self.scaler.update(vector)
        self.n_learned += 1
        self._cache = None
        if self._boost_left:
            self._boost_left -= 1
            if not self._boost_left:
                self.engine.scale_lr(1.0)
        if self.detector is not None and self.detector.update(error):
            self.drifts.append(self.n_learned)
            if self.on_drift == "reset":
                self.engine.reset_state()
            elif self.on_drift == "boost":
                self.engine.scale_lr(self.boost)
                self._boost_left = self.boost_steps

    # ---------------------------------------------------------------- state

    def clone(self):
        """A new learner with the same arguments and the module's *initial* weights."""
        module = copy.deepcopy(self.module)
        module.load_state_dict(self._initial_state)
        return type(self)(module, **self._params())

    def _params(self) -> dict[str, Any]:
        return {
            "optimizer": self.optimizer,
            "lr": self.lr,
            "optimizer_options": self.optimizer_options,
            "missing": self.missing,
            "scale": self.scale,
            "drift": self.drift,
            "on_drift": self.on_drift,
            "boost": self.boost,
            "boost_steps": self.boost_steps,
            "fast": self.fast,
        }

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue bit-identically: model, optimizer, scalers, maps,
        detector and counters. Tensors, numbers, strings and lists only (safetensors + JSON
        with :func:`torchkata.runs.save_state`)."""
        return {
            "module": {k: v.detach().clone() for k, v in self.module.state_dict().items()},
            "engine": self.engine.state_dict(),
            "features": self.features,
            "scaler": self.scaler.state_dict() if self.scaler is not None else None,
            "detector": self.detector.state_dict() if self.detector is not None else None,
            "n_learned": self.n_learned,
            "rejected": self.rejected,
            "drifts": list(self.drifts),
            "boost_left": self._boost_left,
            **self._task_state(),
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore what :meth:`state_dict` returned into a learner built the same way."""
        self._load_task_state(state)
        with torch.no_grad():
            for name, tensor in self.module.state_dict().items():
                tensor.copy_(state["module"][name])  # in place: the engine's views stay valid
        self.engine.load_state_dict(state["engine"])
        self.features = list(state["features"]) if state["features"] is not None else None
        self.scaler = None
        if self.features is not None:
            self.scaler = RunningStandardizer(len(self.features))
            self.scaler.load_state_dict(state["scaler"])
        if self.detector is not None:
            self.detector.load_state_dict(state["detector"])
        self.n_learned = int(state["n_learned"])
        self.rejected = int(state["rejected"])
        self.drifts = [int(d) for d in state["drifts"]]
        self._boost_left = int(state["boost_left"])
        self._cache = None

    def _task_state(self) -> dict[str, Any]:
        return {}

    def _load_task_state(self, state: Mapping[str, Any]) -> None:
        pass

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self._params().items())
        module, engine = type(self.module).__name__, self.engine.kind
        return f"{type(self).__name__}({module}, {args}, engine={engine!r})"


class OnlineClassifier(_OnlineLearner):
    """A classifier trained one sample at a time (cross-entropy), River's API.

    Labels take output units in the order they are first seen; a new label never moves
    an existing one. The module's last ``Linear`` gives the number of units (at least 2);
    when a further label arrives, ``new_classes='grow'`` adds a unit to that layer (its
    existing weights kept, the optimizer's state reset), and ``'error'`` raises.

    Args:
        module: the model, an ``nn.Module`` instance mapping ``(N, F)`` to ``(N, C)``
            logits. No BatchNorm (it cannot train at batch size 1): use ``nn.LayerNorm``.
        optimizer: ``'adam'``, ``'sgd'`` or ``(params) -> torch.optim.Optimizer``.
            Default: ``'adam'``
        lr: learning rate of ``'adam'`` / ``'sgd'`` (a callable sets its own). Default: ``1e-3``
        optimizer_options: further keyword arguments of ``torch.optim.Adam``/``SGD``
            (e.g. ``{"betas": (0.9, 0.99)}``). Default: ``None``
        new_classes: ``'grow'`` or ``'error'``, when labels outnumber the units.
            Default: ``'grow'``
        missing: ``'error'`` on an unknown or missing feature of a dict ``x``, or
            ``'zero'`` to fill missing ones with 0 and ignore unknown ones. Default: ``'error'``
        scale: standardise the inputs with running statistics. Default: ``True``
        drift: ``None``, ``'adwin'``, ``'page_hinkley'`` or a detector instance, fed with
            the 0/1 error of each prediction before learning. Default: ``None``
        on_drift: ``'none'``, ``'reset'`` (clear the optimizer's state) or ``'boost'``
            (multiply the learning rate by ``boost`` for ``boost_steps`` samples).
            Default: ``'none'``
        fast: use :class:`~torchkata.online.engines.NumpyMLPEngine` when the module is a
            supported ``nn.Sequential`` MLP and the optimizer ``'adam'``/``'sgd'``.
            Default: ``True``

    Attributes:
        classes: the labels, in the order of their output units.
        rejected: number of samples refused (NaN/inf feature, wrong length, bad label).
        drifts: ``n_learned`` at each detected drift.

    Examples:
        >>> import torch
        >>> from torch import nn
        >>> torch.manual_seed(0)  # doctest: +ELLIPSIS
        <torch._C.Generator object at ...>
        >>> net = nn.Sequential(nn.Linear(2, 16), nn.ReLU(), nn.Linear(16, 2))
        >>> model = OnlineClassifier(net, lr=1e-2)
        >>> gen = torch.Generator().manual_seed(0)
        >>> correct = 0
        >>> for i in range(2000):
        ...     a, b = torch.randn(2, generator=gen).tolist()
        ...     x, y = {"a": a, "b": b}, "up" if a + b > 0 else "down"
        ...     correct += (model.predict_one(x) == y) * (i >= 1000)
        ...     model.learn_one(x, y)
        >>> correct / 1000 > 0.95, model.classes
        (True, ['up', 'down'])
    """

    _task = "classification"

    def __init__(
        self,
        module: nn.Module,
        optimizer: str | Callable[[list[nn.Parameter]], torch.optim.Optimizer] = "adam",
        lr: float = 1e-3,
        *,
        new_classes: Literal["grow", "error"] = "grow",
        **kwargs: Any,
    ) -> None:
        if new_classes not in ("grow", "error"):
            raise ValueError(f"new_classes: expected 'grow' or 'error', got {new_classes!r}")
        super().__init__(module, optimizer, lr, **kwargs)
        if self.n_outputs is None or self.n_outputs < 2:
            raise ValueError(
                "module: expected a last nn.Linear with at least 2 output units (one per "
                f"class), got {self.n_outputs}"
            )
        self.new_classes = new_classes
        self.classes: list[Hashable] = []
        self._index: dict[Hashable, int] = {}

    def _params(self) -> dict[str, Any]:
        return {**super()._params(), "new_classes": self.new_classes}

    def _task_state(self) -> dict[str, Any]:
        return {"classes": list(self.classes), "n_outputs": self.n_outputs}

    def _load_task_state(self, state: Mapping[str, Any]) -> None:
        while self.n_outputs < int(state["n_outputs"]):
            self._grow()
        self.classes = list(state["classes"])
        self._index = {c: i for i, c in enumerate(self.classes)}

    def _grow(self) -> None:
        """One more unit in the last Linear; existing weights kept, optimizer state reset."""
        parent, name, old = None, None, _linears(self.module)[-1]
        for module in self.module.modules():
            for child_name, child in module.named_children():
                if child is old:
                    parent, name = module, child_name
        new = nn.Linear(old.in_features, old.out_features + 1, bias=old.bias is not None)
        new = new.to(old.weight.device, old.weight.dtype)
        with torch.no_grad():
            new.weight[:-1] = old.weight
            new.weight[-1].normal_(0, 0.01)
            if old.bias is not None:
                new.bias[:-1] = old.bias
                new.bias[-1] = 0.0
        setattr(parent, name, new)
        self.n_outputs += 1
        self._build_engine()
        self._cache = None

    def _label_index(self, y: Hashable) -> int:
        index = self._index.get(y)
        if index is None:
            if len(self.classes) == self.n_outputs:
                if self.new_classes == "error":
                    raise ValueError(
                        f"y: a new label {y!r}, but all {self.n_outputs} output units are "
                        f"taken by {self.classes} (new_classes='grow' adds units)"
                    )
                self._grow()
            index = self._index[y] = len(self.classes)
            self.classes.append(y)
        return index

    @staticmethod
    def _bad_label(y: Any) -> bool:
        if y is None:
            return True
        return isinstance(y, float) and not math.isfinite(y)

    def _probabilities(self, outputs: np.ndarray) -> np.ndarray:
        logits = outputs[: len(self.classes)]  # units not yet given a label do not count
        e = np.exp(logits - logits.max())
        return e / e.sum()

    def predict_proba_one(self, x: Features) -> dict[Hashable, float]:
        """Probabilities of the labels seen so far (``{}`` before the first label)."""
        vector = self._vector(x)
        if vector is None or not self.classes:
            return {}
        outputs, _ = self._forward(vector)
        return dict(zip(self.classes, self._probabilities(outputs).tolist(), strict=True))

    def predict_one(self, x: Features) -> Hashable | None:
        """The most probable label, or ``None`` before the first label or for a bad ``x``."""
        vector = self._vector(x)
        if vector is None or not self.classes:
            return None
        outputs, _ = self._forward(vector)
        return self.classes[int(np.argmax(outputs[: len(self.classes)]))]

    def learn_one(self, x: Features, y: Hashable) -> None:
        """Update the model on one sample (one optimizer step); reject a malformed one."""
        vector = self._vector(x)
        if vector is None or self._bad_label(y):
            self.rejected += 1
            return
        target = self._label_index(y)
        outputs, graph = self._forward(vector)
        error = float(int(np.argmax(outputs[: len(self.classes)])) != target)
        grad = np.exp(outputs - outputs.max())
        grad /= grad.sum()
        grad[target] -= 1.0  # d cross_entropy / d logits = softmax - one_hot
        self.engine.step(graph, grad.reshape(1, -1))
        self._after_update(vector, error)

    def learn_many(self, X: Iterable[Features], y: Iterable[Hashable]) -> None:
        """One optimizer step on the mean loss of a mini-batch; malformed rows rejected.

        The rows join the input statistics first, then are standardised with them.
        """
        rows, targets = [], []
        for x_i, y_i in zip(list(X), list(y), strict=True):
            vector = self._vector(x_i)
            if vector is None or self._bad_label(y_i):
                self.rejected += 1
                continue
            rows.append(vector)
            targets.append(self._label_index(y_i))
        if not rows:
            return
        outputs, graph = self.engine.forward(self._batch_inputs(rows))
        grad = np.exp(outputs - outputs.max(axis=1, keepdims=True))
        grad /= grad.sum(axis=1, keepdims=True)
        grad[np.arange(len(rows)), targets] -= 1.0
        self.engine.step(graph, grad / len(rows))
        predicted = np.argmax(outputs[:, : len(self.classes)], axis=1)
        for vector, p, t in zip(rows, predicted, targets, strict=True):
            self._after_update(vector, float(p != t), scaled=True)

    def predict_many(self, X: Iterable[Features]) -> list[Hashable | None]:
        """``predict_one`` for each row."""
        return [self.predict_one(x) for x in X]


class OnlineRegressor(_OnlineLearner):
    """A regressor trained one sample at a time (squared error on standardised targets).

    The target is standardised with the running mean and standard deviation of the targets
    up to and including it, and predictions are mapped back to the original units, so the
    learning rate does not depend on the target's scale. The drift detector gets the
    absolute error in standardised units. Arguments as :class:`OnlineClassifier` (without
    ``new_classes``); the module's last ``Linear`` has 1 output unit.

    Examples:
        >>> import torch
        >>> from torch import nn
        >>> _ = torch.manual_seed(0)
        >>> net = nn.Sequential(nn.Linear(1, 16), nn.Tanh(), nn.Linear(16, 1))
        >>> model = OnlineRegressor(net, lr=1e-2)
        >>> gen = torch.Generator().manual_seed(0)
        >>> errors = []
        >>> for i in range(3000):
        ...     a = torch.rand(1, generator=gen).item()
        ...     y = 100.0 + 50.0 * a
        ...     errors.append(abs(model.predict_one([a]) - y))
        ...     model.learn_one([a], y)
        >>> sum(errors[-500:]) / 500 < 2.0
        True
    """

    _task = "regression"

    def __init__(
        self,
        module: nn.Module,
        optimizer: str | Callable[[list[nn.Parameter]], torch.optim.Optimizer] = "adam",
        lr: float = 1e-3,
        **kwargs: Any,
    ) -> None:
        super().__init__(module, optimizer, lr, **kwargs)
        if self.n_outputs != 1:
            raise ValueError(
                f"module: expected a last nn.Linear with 1 output unit, got {self.n_outputs}"
            )
        self.target_scaler = RunningStandardizer(1)

    def _task_state(self) -> dict[str, Any]:
        return {"target_scaler": self.target_scaler.state_dict()}

    @staticmethod
    def _target(y: Any) -> float | None:
        """``y`` as a finite float, or ``None`` when it is not one."""
        try:
            y = float(y)
        except (TypeError, ValueError):
            return None
        return y if math.isfinite(y) else None

    def _load_task_state(self, state: Mapping[str, Any]) -> None:
        self.target_scaler.load_state_dict(state["target_scaler"])

    def predict_one(self, x: Features) -> float | None:
        """The prediction in the target's units; ``None`` for a malformed ``x``."""
        vector = self._vector(x)
        if vector is None:
            return None
        outputs, _ = self._forward(vector)
        return float(self.target_scaler.inverse(outputs)[0])

    def learn_one(self, x: Features, y: float) -> None:
        """Update the model on one sample (one optimizer step); reject a malformed one."""
        vector, y = self._vector(x), self._target(y)
        if vector is None or y is None:
            self.rejected += 1
            return
        outputs, graph = self._forward(vector)
        # y is known now: its own value joins the statistics (the first target maps to 0).
        self.target_scaler.update(np.array([y]))
        target = self.target_scaler.transform(np.array([y]))
        grad = 2.0 * (outputs - target)  # d (out - t)^2 / d out
        self.engine.step(graph, grad.reshape(1, -1))
        self._after_update(vector, float(abs(outputs[0] - target[0])))

    def learn_many(self, X: Iterable[Features], y: Iterable[float]) -> None:
        """One optimizer step on the mean squared error of a mini-batch."""
        rows, targets = [], []
        for x_i, y_i in zip(list(X), list(y), strict=True):
            vector, t = self._vector(x_i), self._target(y_i)
            if vector is None or t is None:
                self.rejected += 1
                continue
            rows.append(vector)
            targets.append(t)
        if not rows:
            return
        outputs, graph = self.engine.forward(self._batch_inputs(rows))
        for t in targets:
            self.target_scaler.update(np.array([t]))
        standard = self.target_scaler.transform(np.array(targets).reshape(-1, 1))
        self.engine.step(graph, 2.0 * (outputs - standard) / len(rows))
        for vector, out, s in zip(rows, outputs[:, 0], standard[:, 0], strict=True):
            self._after_update(vector, float(abs(out - s)), scaled=True)

    def predict_many(self, X: Iterable[Features]) -> list[float | None]:
        """``predict_one`` for each row."""
        return [self.predict_one(x) for x in X]


def _register_with_river() -> None:
    """Make River see these as its Classifier/Regressor (metrics, evaluate, pipelines)."""
    try:
        from river import base
    except ImportError:  # the `river` extra is optional
        return
    base.Classifier.register(OnlineClassifier)
    base.Regressor.register(OnlineRegressor)


_register_with_river()
