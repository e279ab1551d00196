r"""``diagnose``: automated sanity checks for a model, a loss and a training step (tip 10).

The source document's last tip is a list of things to check before trusting a training
run: the same seed gives the same run, the initial loss is what chance predicts, nothing
is NaN, every parameter learns, the model can memorise one batch, samples do not leak
into each other, the training step zeroes its gradients, the test set is not in the
training set, and the learning rate is in a sensible range. :func:`diagnose` runs each
of them on deep copies of the caller's model and returns a :class:`Diagnosis`.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import hashlib
import math
import random
import warnings
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from torchkata.doctor.lr_finder import default_optimizer, lr_range_test

__all__ = ["CHECKS", "CheckResult", "Diagnosis", "diagnose", "find_leakage"]

CHECKS = (
    "reproducibility",
    "initial_loss",
    "finite",
    "gradient_flow",
    "overfit_batch",
    "batch_independence",
    "zero_grad",
    "leakage",
    "lr_range",
)
STATUSES = ("pass", "warn", "fail", "skip")
TASKS = ("classification", "regression")

_REPRO_STEPS = 3  # optimizer steps per reproducibility run
# initial_loss: measured / expected outside [1/WARN, WARN] warns, outside [1/FAIL, FAIL] fails.
_INIT_WARN = 1.5
_INIT_FAIL = 4.0
# gradient_flow: a ReLU layer with more than this fraction of dead units warns (all: fail).
_DEAD_WARN = 0.5
# gradient_flow: max / min per-parameter gradient norm above this warns (vanishing).
_VANISHING_RATIO = 1e5
# overfit_batch: final / initial loss at most PASS passes, at most WARN warns, else fails.
_OVERFIT_PASS = 0.1
_OVERFIT_WARN = 0.5
# lr_range: a descent is a smoothed loss below this fraction of the first.
_LR_DESCENT = 0.9
_BATCH_INDEPENDENCE_SAMPLES = 2  # rows i whose output is differentiated
_LEAKAGE_SHOWN = 10  # index pairs kept in the evidence


@dataclasses.dataclass
class CheckResult:
    """One row of a :class:`Diagnosis`.

    Attributes:
        name: the check, one of :data:`CHECKS`.
        status: ``'pass'``, ``'warn'``, ``'fail'`` or ``'skip'``.
        summary: one line for a person, with the key number(s).
        evidence: numbers, parameter/module names and curves (lists of floats).
    """

    name: str
    status: str
    summary: str
    evidence: dict[str, Any] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass
class Diagnosis:
    """The outcome of :func:`diagnose`: one :class:`CheckResult` per check, in order run.

    ``str(diagnosis)`` (and ``repr``) is a plain-text table: check | status | summary.
    """

    checks: dict[str, CheckResult]

    @property
    def ok(self) -> bool:
        """``True`` when no check failed (warnings and skips do not count)."""
        return not self.failed

    @property
    def failed(self) -> list[str]:
        """The names of the failed checks."""
        return [name for name, r in self.checks.items() if r.status == "fail"]

    @property
    def warned(self) -> list[str]:
        """The names of the checks that warned."""
        return [name for name, r in self.checks.items() if r.status == "warn"]

    def __str__(self) -> str:
        rows = [("check", "status", "summary")]
        rows += [(r.name, r.status, r.summary) for r in self.checks.values()]
        widths = [max(len(row[i]) for row in rows) for i in range(2)]
        lines = []
        for i, (name, status, summary) in enumerate(rows):
            lines.append(f"{name.ljust(widths[0])}  {status.ljust(widths[1])}  {summary}".rstrip())
            if i == 0:
                lines.append(f"{'-' * widths[0]}  {'-' * widths[1]}  {'-' * len('summary')}")
        return "\n".join(lines)

    __repr__ = __str__


# ---------------------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------------------


class _Setup:
    """What every check needs: the model, data on its device, loss, optimizer, seed."""

    def __init__(
        self,
        model: nn.Module,
        batch: tuple[Tensor, Tensor],
        loss_fn: Callable[..., Tensor],
        factory: Callable[[Iterable[nn.Parameter]], torch.optim.Optimizer],
        seed: int,
    ) -> None:
        self.model = model
        self.device = _device(model)
        self.x, self.y = batch[0].to(self.device), batch[1].to(self.device)
        self.loss_fn = loss_fn
        self.factory = factory
        self.seed = seed

    def fresh(self, train: bool = True) -> nn.Module:
        """Seed torch, then a deep copy of the model with no gradients."""
        torch.manual_seed(self.seed)
        net = copy.deepcopy(self.model)
        net.zero_grad(set_to_none=True)
        return net.train(train)

    def loss(self, net: nn.Module) -> Tensor:
        return self.loss_fn(net(self.x), self.y)


def _device(model: nn.Module) -> torch.device:
    for tensor in [*model.parameters(), *model.buffers()]:
        return tensor.device
    return torch.device("cpu")


def _tensors(obj: Any) -> Iterator[Tensor]:
    """The tensors in a module's input or output (nested tuples, lists, dicts)."""
    if isinstance(obj, Tensor):
        yield obj
    elif isinstance(obj, (tuple, list)):
        for item in obj:
            yield from _tensors(item)
    elif isinstance(obj, dict):
        for item in obj.values():
            yield from _tensors(item)


def _finite(obj: Any) -> bool:
    return all(bool(torch.isfinite(t).all()) for t in _tensors(obj) if t.is_floating_point())


def _is_int(t: Tensor) -> bool:
    return not t.is_floating_point() and not t.is_complex() and t.dtype != torch.bool


def _same_floats(a: list[float], b: list[float]) -> bool:
    """Bit-identical float sequences (NaN equals NaN)."""
    return len(a) == len(b) and all(
        u == v or (math.isnan(u) and math.isnan(v)) for u, v in zip(a, b, strict=True)
    )


def _short(text: str, limit: int = 120) -> str:
    line = text.strip().splitlines()[0] if text.strip() else ""
    return line if len(line) <= limit else line[: limit - 3] + "..."


def _names(names: list[str], limit: int = 3) -> str:
    shown = ", ".join(names[:limit])
    return shown + (f" (+{len(names) - limit} more)" if len(names) > limit else "")


@contextlib.contextmanager
def _preserve_rng(device: torch.device) -> Iterator[None]:
    """Restore the torch, numpy and Python global RNGs on exit."""
    np_state = np.random.get_state()
    py_state = random.getstate()
    devices = [device] if device.type == "cuda" else []
    try:
        with torch.random.fork_rng(devices=devices):
            yield
    finally:
        np.random.set_state(np_state)
        random.setstate(py_state)


# ---------------------------------------------------------------------------------------
# The checks
# ---------------------------------------------------------------------------------------


def _train_steps(s: _Setup, steps: int) -> tuple[nn.Module, list[float]]:
    """Train a fresh copy for ``steps`` optimizer steps on the batch: (copy, loss per step)."""
    net = s.fresh()
    optimizer = s.factory(net.parameters())
    losses = []
    for _ in range(steps):
        optimizer.zero_grad(set_to_none=True)
        loss = s.loss(net)
        loss.backward()
        optimizer.step()
        losses.append(float(loss.detach()))
    return net, losses


def _check_reproducibility(s: _Setup) -> CheckResult:
    runs = [_train_steps(s, _REPRO_STEPS)[1] for _ in range(2)]
    evidence = {"losses_run1": runs[0], "losses_run2": runs[1], "steps": _REPRO_STEPS}
    if _same_floats(*runs):
        return CheckResult(
            "reproducibility",
            "pass",
            f"two seeded runs of {_REPRO_STEPS} steps give bit-identical losses",
            evidence,
        )
    k = next(i for i, (u, v) in enumerate(zip(*runs, strict=True)) if not _same_floats([u], [v]))
    return CheckResult(
        "reproducibility",
        "fail",
        f"two runs from seed {s.seed} differ at step {k + 1}: {runs[0][k]:.6g} vs "
        f"{runs[1][k]:.6g} (randomness that torch.manual_seed does not control)",
        evidence,
    )


def _infer_task(task: str | None, output: Tensor, y: Tensor) -> str | None:
    if task is not None:
        return task
    if _is_int(y) and output.dim() >= 2:
        return "classification"
    if y.is_floating_point():
        return "regression"
    return None


def _check_initial_loss(s: _Setup, task: str | None) -> CheckResult:
    net = s.fresh()
    with torch.no_grad():
        output = net(s.x)
        if not isinstance(output, Tensor):
            return CheckResult(
                "initial_loss", "skip", f"the model returns {type(output).__name__}", {}
            )
        measured = float(s.loss_fn(output, s.y))
        task = _infer_task(task, output, s.y)
        evidence: dict[str, Any] = {"task": task, "measured": measured}
        if task is None:
            return CheckResult(
                "initial_loss", "skip", "task unknown: pass task= to check the loss", evidence
            )
        if not math.isfinite(measured):
            return CheckResult(
                "initial_loss", "skip", f"initial loss is {measured} (see finite)", evidence
            )
        if task == "classification":
            if output.dim() < 2 or output.shape[1] < 2:
                return CheckResult(
                    "initial_loss",
                    "skip",
                    f"classification needs (N, C, ...) logits, C >= 2; got {tuple(output.shape)}",
                    evidence,
                )
            n_classes = output.shape[1]
            expected = math.log(n_classes)
            # Cross-entropy-like: uniform logits (or uniform log-probabilities) give ln C.
            uniform = [
                float(s.loss_fn(torch.zeros_like(output), s.y)),
                float(s.loss_fn(torch.full_like(output, -expected), s.y)),
            ]
            if not any(math.isclose(u, expected, rel_tol=1e-3) for u in uniform):
                return CheckResult(
                    "initial_loss",
                    "skip",
                    f"the loss is not cross-entropy-like (uniform output gives {uniform[0]:.4g}, "
                    f"not ln {n_classes} = {expected:.4g})",
                    evidence,
                )
            evidence.update(expected=expected, n_classes=n_classes, rule="ln C")
            what = f"ln {n_classes}"
        else:
            if output.shape != s.y.shape:
                return CheckResult(
                    "initial_loss",
                    "skip",
                    f"output shape {tuple(output.shape)} != target shape {tuple(s.y.shape)}",
                    evidence,
                )
            y = s.y.double()
            mse_of_zeros = float((y**2).mean())
            if not math.isclose(
                float(s.loss_fn(torch.zeros_like(output), s.y)), mse_of_zeros, rel_tol=1e-3
            ):
                return CheckResult(
                    "initial_loss", "skip", "the loss is not mean squared error", evidence
                )
            variance = float(y.var(unbiased=False))
            spread = float(((output.double() - y.mean()) ** 2).mean())
            expected = variance + spread
            evidence.update(
                expected=expected,
                target_variance=variance,
                output_mean_square=spread,
                rule="Var(y) + mean((f(x) - mean(y))^2)",
            )
            what = "Var(y) + output spread"
    ratio = measured / expected if expected > 0 else math.inf
    evidence["ratio"] = ratio
    text = f"initial loss {measured:.4g}, expected {expected:.4g} ({what}), ratio {ratio:.3g}"
    if not 1 / _INIT_FAIL <= ratio <= _INIT_FAIL:
        return CheckResult("initial_loss", "fail", text, evidence)
    if not 1 / _INIT_WARN <= ratio <= _INIT_WARN:
        return CheckResult("initial_loss", "warn", text, evidence)
    return CheckResult("initial_loss", "pass", text, evidence)


def _check_finite(s: _Setup) -> CheckResult:
    evidence: dict[str, Any] = {}
    if not _finite(s.x):
        return CheckResult("finite", "fail", "the input batch contains NaN or inf", evidence)
    net = s.fresh()
    names = {module: name or "(model)" for name, module in net.named_modules()}
    first_output: list[str] = []  # the first module whose output is non-finite
    first_input: list[str] = []  # the first module given a non-finite input

    def pre_hook(module: nn.Module, args: Any) -> None:
        if not first_input and not first_output and not _finite(args):
            first_input.append(names[module])

    def hook(module: nn.Module, args: Any, output: Any) -> None:
        if not first_output and not _finite(output):
            first_output.append(names[module])

    handles = [m.register_forward_pre_hook(pre_hook) for m in names]
    handles += [m.register_forward_hook(hook) for m in names]
    try:
        loss = s.loss(net)
    finally:
        for handle in handles:
            handle.remove()
    if first_input:
        module = first_input[0]
        parent = module.rpartition(".")[0] or "(model)"
        evidence.update(module=parent, first_nonfinite_input=module)
        return CheckResult(
            "finite",
            "fail",
            f"non-finite values created in the forward code of `{parent}`: "
            f"first seen in the input of `{module}`",
            evidence,
        )
    if first_output:
        evidence["module"] = first_output[0]
        return CheckResult(
            "finite",
            "fail",
            f"forward: first non-finite output from module `{first_output[0]}`",
            evidence,
        )
    evidence["loss"] = float(loss.detach())
    if not _finite(loss):
        return CheckResult("finite", "fail", f"the loss is {float(loss.detach())}", evidence)
    loss.backward()
    bad = [
        name
        for name, p in net.named_parameters()
        if p.grad is not None and not bool(torch.isfinite(p.grad).all())
    ]
    if not bad:
        return CheckResult(
            "finite",
            "pass",
            f"forward, loss ({evidence['loss']:.4g}) and gradients finite",
            evidence,
        )
    evidence["nonfinite_grads"] = bad
    # Anomaly mode names the backward function that first produced NaN.
    op = "unknown op"
    net = s.fresh()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            with torch.autograd.detect_anomaly(check_nan=True):
                s.loss(net).backward()
        except RuntimeError as error:
            op = _short(str(error))
    evidence["backward_op"] = op
    return CheckResult(
        "finite",
        "fail",
        f"backward: non-finite gradients in {_names(bad)}; anomaly mode: {op}",
        evidence,
    )


def _relu_units(output: Tensor) -> Tensor:
    """Whether each unit is ever active: features of (N, F); channels of (N, C, ...)."""
    active = output.detach() > 0
    if active.dim() == 2:
        return active.any(dim=0)
    if active.dim() > 2:
        return active.transpose(0, 1).reshape(active.shape[1], -1).any(dim=1)
    return active.reshape(1, -1).any(dim=1)  # (N,) or scalar: one unit


def _check_gradient_flow(s: _Setup) -> CheckResult:
    net = s.fresh()
    names = {module: name or "(model)" for name, module in net.named_modules()}
    alive: dict[str, Tensor] = {}

    def hook(module: nn.Module, args: Any, output: Tensor) -> None:
        units = _relu_units(output)
        name = names[module]
        alive[name] = alive[name] | units if name in alive else units

    handles = [m.register_forward_hook(hook) for m in names if isinstance(m, nn.ReLU)]
    try:
        loss = s.loss(net)
    finally:
        for handle in handles:
            handle.remove()
    loss.backward()
    norms: dict[str, float] = {}
    unused, zero, nonfinite = [], [], []
    for name, p in net.named_parameters():
        if not p.requires_grad:
            continue
        if p.grad is None:
            unused.append(name)
            continue
        norm = float(p.grad.detach().double().norm())
        norms[name] = norm
        if not math.isfinite(norm):
            nonfinite.append(name)
        elif norm == 0:
            zero.append(name)
    dead = {name: float(1 - units.double().mean()) for name, units in alive.items()}
    all_dead = [name for name, f in dead.items() if f == 1]
    mostly_dead = [name for name, f in dead.items() if _DEAD_WARN < f < 1]
    positive = [n for n in norms.values() if math.isfinite(n) and n > 0]
    ratio = max(positive) / min(positive) if positive else math.nan
    evidence: dict[str, Any] = {
        "grad_norms": norms,
        "dead_relu_fraction": dead,
        "unused": unused,
        "zero_grad_params": zero,
        "nonfinite": nonfinite,
        "max_min_ratio": ratio,
    }
    problems = []
    if unused:
        problems.append(f"no gradient (unused in the forward pass): {_names(unused)}")
    if nonfinite:
        problems.append(f"non-finite gradient: {_names(nonfinite)}")
    if zero:
        problems.append(f"zero gradient: {_names(zero)}")
    if all_dead:
        problems.append(f"every ReLU unit dead on the batch: {_names(all_dead)}")
    if problems:
        return CheckResult("gradient_flow", "fail", "; ".join(problems), evidence)
    warnings_ = []
    if mostly_dead:
        worst = max(mostly_dead, key=dead.__getitem__)
        warnings_.append(
            f"{len(mostly_dead)} ReLU layer(s) over {_DEAD_WARN:.0%} dead "
            f"(`{worst}`: {dead[worst]:.0%})"
        )
    if ratio > _VANISHING_RATIO:
        warnings_.append(f"max/min gradient norm ratio {ratio:.3g} (vanishing gradients)")
    if warnings_:
        return CheckResult("gradient_flow", "warn", "; ".join(warnings_), evidence)
    worst_dead = max(dead.values(), default=0.0)
    return CheckResult(
        "gradient_flow",
        "pass",
        f"{len(norms)} parameters get finite non-zero gradients; max/min norm ratio "
        f"{ratio:.3g}; worst ReLU layer {worst_dead:.0%} dead",
        evidence,
    )


def _check_overfit(s: _Setup, steps: int) -> CheckResult:
    net, curve = _train_steps(s, steps)
    with torch.no_grad():
        curve.append(float(s.loss(net)))
    initial, final = curve[0], curve[-1]
    ratio = final / initial if initial > 0 else math.nan
    evidence = {"curve": curve, "initial": initial, "final": final, "ratio": ratio}
    text = f"loss {initial:.4g} -> {final:.4g} after {steps} steps on one batch"
    if not (math.isfinite(initial) and math.isfinite(final)):
        return CheckResult("overfit_batch", "fail", f"{text}: not finite", evidence)
    if final == 0 or final <= _OVERFIT_PASS * initial:
        return CheckResult("overfit_batch", "pass", f"{text} ({ratio:.1%})", evidence)
    status = "warn" if final <= _OVERFIT_WARN * initial else "fail"
    return CheckResult(
        "overfit_batch",
        status,
        f"{text} ({ratio:.1%} of initial; memorising needs <= {_OVERFIT_PASS:.0%})",
        evidence,
    )


def _check_batch_independence(s: _Setup) -> CheckResult:
    n = s.x.shape[0] if s.x.dim() else 0
    if n < 2:
        return CheckResult("batch_independence", "skip", f"batch of {n} sample(s)", {})
    net = s.fresh(train=False)
    has_bn = any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in net.modules())
    evidence: dict[str, Any] = {"has_batchnorm": has_bn, "mode": "eval"}
    captured: list[Tensor] = []
    if s.x.is_floating_point():
        source = s.x.detach().clone().requires_grad_()
        output = net(source)
        evidence["wrt"] = "input"
    else:
        embeddings = [m for m in net.modules() if isinstance(m, nn.Embedding)]
        if not embeddings:
            return CheckResult(
                "batch_independence",
                "skip",
                "integer inputs and no nn.Embedding to differentiate through",
                evidence,
            )

        def hook(module: nn.Module, args: Any, out: Tensor) -> None:
            if not captured:
                captured.append(out)

        handle = embeddings[0].register_forward_hook(hook)
        try:
            output = net(s.x)
        finally:
            handle.remove()
        if not captured or captured[0].shape[:1] != s.x.shape[:1]:
            return CheckResult(
                "batch_independence", "skip", "the embedding output is not (N, ...)", evidence
            )
        source = captured[0]
        evidence["wrt"] = "embedding output"
    if not isinstance(output, Tensor) or output.dim() == 0 or output.shape[0] != n:
        shape = tuple(output.shape) if isinstance(output, Tensor) else type(output).__name__
        return CheckResult(
            "batch_independence",
            "fail",
            f"output {shape} does not have the batch size {n} first",
            evidence,
        )
    rows = [0, n - 1][:_BATCH_INDEPENDENCE_SAMPLES]
    worst, where = 0.0, (0, 0)
    for i in rows:
        if not output.requires_grad:
            break
        (grad,) = torch.autograd.grad(output[i].sum(), source, retain_graph=True, allow_unused=True)
        if grad is None:
            continue
        cross = grad.detach().clone()
        cross[i] = 0
        if not bool(torch.isfinite(cross).all()):
            return CheckResult(
                "batch_independence",
                "skip",
                "non-finite gradients (see finite)",
                evidence,
            )
        per_sample = cross.abs().reshape(n, -1).amax(dim=1)
        j = int(per_sample.argmax())
        if float(per_sample[j]) > worst:
            worst, where = float(per_sample[j]), (i, j)
    evidence.update(rows=rows, max_cross_grad=worst)
    if worst > 0:
        i, j = where
        evidence["pair"] = [i, j]
        return CheckResult(
            "batch_independence",
            "fail",
            f"output[{i}] depends on sample {j}: max |d output[{i}] / d {evidence['wrt']}[{j}]| "
            f"= {worst:.3g} (samples mix, e.g. a reshape across the batch dimension)",
            evidence,
        )
    note = " (BatchNorm mixes samples in train mode only)" if has_bn else ""
    return CheckResult(
        "batch_independence",
        "pass",
        f"output rows {rows} have zero gradient with respect to other samples{note}",
        evidence,
    )


class _RecordingOptimizer(torch.optim.Optimizer):
    """An optimizer whose ``step`` records the gradients and leaves the parameters alone."""

    def __init__(self, params: Iterable[nn.Parameter]) -> None:
        super().__init__(params, {"lr": 0.0})
        self.recorded: list[list[Tensor | None]] = []

    @torch.no_grad()
    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        params = [p for group in self.param_groups for p in group["params"]]
        self.recorded.append([None if p.grad is None else p.grad.clone() for p in params])
        return loss


def _check_zero_grad(s: _Setup, train_step: Callable[..., Any] | None) -> CheckResult:
    if train_step is None:
        return CheckResult("zero_grad", "skip", "no train_step given", {})
    net = s.fresh()
    optimizer = _RecordingOptimizer(net.parameters())
    for _ in range(2):
        torch.manual_seed(s.seed)  # the same dropout masks in both calls
        train_step(net, optimizer, (s.x, s.y))
    evidence: dict[str, Any] = {"step_calls": len(optimizer.recorded)}
    if len(optimizer.recorded) < 2:
        return CheckResult(
            "zero_grad",
            "fail",
            f"train_step called optimizer.step() {len(optimizer.recorded)} time(s) in 2 calls",
            evidence,
        )
    first, second = optimizer.recorded[0], optimizer.recorded[-1]
    pairs = [(a, b) for a, b in zip(first, second, strict=True) if a is not None and b is not None]
    g1 = torch.cat([a.double().flatten() for a, _ in pairs]) if pairs else torch.zeros(0)
    g2 = torch.cat([b.double().flatten() for _, b in pairs]) if pairs else torch.zeros(0)
    norm1 = float(g1.norm())
    evidence.update(grad_norm_step1=norm1, grad_norm_step2=float(g2.norm()))
    if not pairs or norm1 == 0 or not math.isfinite(norm1):
        return CheckResult(
            "zero_grad", "skip", f"no usable gradient at the first step (norm {norm1})", evidence
        )
    ratio = float(g2.norm()) / norm1
    evidence["ratio"] = ratio
    # The parameters do not move, so a train_step that zeroes gets the same gradient twice.
    if torch.allclose(g2, g1, rtol=1e-4, atol=1e-7 * norm1):
        return CheckResult(
            "zero_grad",
            "pass",
            "the 2nd call's gradient equals the 1st (parameters held still): gradients zeroed",
            evidence,
        )
    if torch.allclose(g2, 2 * g1, rtol=1e-4, atol=1e-7 * norm1):
        return CheckResult(
            "zero_grad",
            "fail",
            "gradients accumulate across steps: train_step does not call zero_grad "
            f"(2nd gradient = {ratio:.3g} x the 1st)",
            evidence,
        )
    return CheckResult(
        "zero_grad",
        "warn",
        f"the 2nd call's gradient is {ratio:.3g} x the 1st, neither equal nor double "
        "(randomness not under the seed, or a stateful train_step)",
        evidence,
    )


def _check_leakage(
    train_data: tuple[Tensor, Tensor], eval_data: tuple[Tensor, Tensor] | None
) -> CheckResult:
    if eval_data is None:
        return CheckResult("leakage", "skip", "no eval_data given", {})
    pairs = find_leakage(train_data[0], eval_data[0])
    n_eval = eval_data[0].shape[0]
    leaked_eval = len({j for _, j in pairs})
    evidence = {
        "count": len(pairs),
        "eval_samples_leaked": leaked_eval,
        "pairs": pairs[:_LEAKAGE_SHOWN],
        "n_train": train_data[0].shape[0],
        "n_eval": n_eval,
    }
    if pairs:
        return CheckResult(
            "leakage",
            "fail",
            f"{leaked_eval} of {n_eval} eval samples are byte-identical to training samples "
            f"({len(pairs)} pairs; first {pairs[:3]})",
            evidence,
        )
    return CheckResult(
        "leakage",
        "pass",
        f"no eval sample of {n_eval} is byte-identical to a training one",
        evidence,
    )


def _check_lr_range(s: _Setup) -> CheckResult:
    result = lr_range_test(s.model, (s.x, s.y), s.loss_fn, s.factory, seed=s.seed, num_iter=100)
    evidence = {
        "suggested_lr": result.suggested_lr,
        "lrs": result.lrs,
        "losses": result.losses,
        "diverged": result.diverged,
    }
    finite = [v for v in result.losses if math.isfinite(v)]
    descent = bool(finite) and min(finite) < _LR_DESCENT * result.losses[0]
    if not math.isfinite(result.losses[0]):
        return CheckResult(
            "lr_range", "warn", f"the first loss is {result.losses[0]} (see finite)", evidence
        )
    if result.suggested_lr is None or not descent:
        return CheckResult(
            "lr_range",
            "warn",
            f"no descent: smoothed loss never fell below {_LR_DESCENT:.0%} of its start "
            f"over lr {result.lrs[0]:.1g}..{result.lrs[-1]:.2g}",
            evidence,
        )
    return CheckResult(
        "lr_range",
        "pass",
        f"suggested lr {result.suggested_lr:.2g} (steepest descent of the smoothed loss)",
        evidence,
    )


# ---------------------------------------------------------------------------------------
# Public API
# ---------------------------------------------------------------------------------------


def find_leakage(train_inputs: Tensor, eval_inputs: Tensor) -> list[tuple[int, int]]:
    """The pairs of byte-identical samples in two data sets, by hashing each sample.

    Sample ``i`` is ``train_inputs[i]``: its bytes (dtype, shape and values; ``-0.0`` and
    ``0.0`` differ) are hashed with BLAKE2b, and every hash match is confirmed with
    ``torch.equal``.

    Args:
        train_inputs: (N, *) training samples.
        eval_inputs: (M, *) evaluation samples, of the same dtype and sample shape.

    Returns:
        every ``(train index, eval index)`` pair of identical samples, sorted.

    Examples:
        >>> train = torch.arange(12.0).reshape(4, 3)
        >>> held_out = torch.stack([train[2], torch.zeros(3), train[2]])
        >>> find_leakage(train, held_out)
        [(2, 0), (2, 2)]
    """
    for name, t in (("train_inputs", train_inputs), ("eval_inputs", eval_inputs)):
        if not isinstance(t, Tensor):
            raise TypeError(f"{name}: expected a tensor, got {type(t).__name__}")
        if t.dim() < 1:
            raise ValueError(f"{name}: expected a tensor with a batch dimension, got a scalar")
    if train_inputs.shape[1:] != eval_inputs.shape[1:] or train_inputs.dtype != eval_inputs.dtype:
        raise ValueError(
            "eval_inputs: expected samples of the training samples' shape "
            f"{tuple(train_inputs.shape[1:])} and dtype {train_inputs.dtype}, got "
            f"{tuple(eval_inputs.shape[1:])} and {eval_inputs.dtype}"
        )
    train = train_inputs.detach().cpu().contiguous()
    held_out = eval_inputs.detach().cpu().contiguous()

    def digest(sample: Tensor) -> bytes:
        return hashlib.blake2b(sample.numpy().tobytes(), digest_size=16).digest()

    seen: dict[bytes, list[int]] = {}
    for i in range(train.shape[0]):
        seen.setdefault(digest(train[i]), []).append(i)
    pairs = []
    for j in range(held_out.shape[0]):
        for i in seen.get(digest(held_out[j]), []):
            if torch.equal(train[i], held_out[j]):
                pairs.append((i, j))
    return sorted(pairs)


def _check_pair(name: str, value: Any) -> tuple[Tensor, Tensor]:
    if not isinstance(value, (tuple, list)):
        raise TypeError(f"{name}: expected an (input, target) tuple, got {type(value).__name__}")
    if len(value) != 2:
        raise ValueError(f"{name}: expected an (input, target) pair, got {len(value)} items")
    x, y = value
    if not isinstance(x, Tensor) or not isinstance(y, Tensor):
        raise TypeError(
            f"{name}: expected two tensors, got ({type(x).__name__}, {type(y).__name__})"
        )
    if x.dim() == 0 or y.dim() == 0 or x.shape[0] != y.shape[0]:
        raise ValueError(
            f"{name}: expected input and target with the same batch size first, got shapes "
            f"{tuple(x.shape)} and {tuple(y.shape)}"
        )
    return x, y


def diagnose(
    model: nn.Module,
    batch: tuple[Tensor, Tensor],
    loss_fn: Callable[..., Tensor],
    optimizer_factory: Callable[[Iterable[nn.Parameter]], torch.optim.Optimizer] | None = None,
    *,
    task: str | None = None,
    steps: int = 100,
    train_step: Callable[..., Any] | None = None,
    eval_data: tuple[Tensor, Tensor] | None = None,
    train_data: tuple[Tensor, Tensor] | None = None,
    seed: int = 0,
) -> Diagnosis:
    r"""Run the doctor's sanity checks on a model, a batch and a loss.

    Every check works on a fresh deep copy of ``model`` (taken after
    ``torch.manual_seed(seed)``, gradients cleared) on the model's device, in train mode
    unless stated; the caller's model, its parameters, gradients and buffers, and the
    global torch, numpy and Python RNG states are unchanged afterwards. A check whose
    code raises is reported as ``fail`` with the error. In order:

    ==================  ===================================================================
    check               status rule
    ==================  ===================================================================
    reproducibility     two runs of 3 optimizer steps from ``seed`` give bit-identical
                        losses: pass; else fail (both loss sequences in evidence). Random
                        state deep-copied with the model (a ``torch.Generator`` attribute)
                        is copied too, so only randomness outside it is caught (numpy's or
                        Python's global RNG, a generator seeded at forward time).
    initial_loss        ratio = measured / expected loss at init. Classification with a
                        cross-entropy-like loss (uniform logits or log-probabilities give
                        ln C): expected = ln C, C = ``output.shape[1]``. Regression with
                        MSE: expected = Var(y) + mean((f(x) - mean(y))^2), the loss of an
                        output unrelated to the target. Fail if ratio < 1/4 or > 4; warn
                        if < 1/1.5 or > 1.5; else pass. Skip for other losses, an unknown
                        task or a non-finite loss.
    finite              forward hooks on every module: fail naming the first module whose
                        output is NaN/inf (or the parent whose own code made a child's
                        input non-finite); fail if the loss is not finite; fail naming the
                        parameters with non-finite gradients and, via
                        ``torch.autograd.detect_anomaly``, the backward op. Else pass.
    gradient_flow       one backward; fail if a trainable parameter has no gradient
                        (unused in the forward pass), a zero or a non-finite gradient, or
                        an ``nn.ReLU`` module has every unit dead (never > 0 on the batch;
                        a unit is a feature of (N, F) or a channel of (N, C, ...)). Warn
                        if a ReLU module has > 50% dead units or max/min per-parameter
                        gradient norm > 1e5 (vanishing). Evidence: per-parameter gradient
                        norms and dead fractions. ``F.relu`` calls are not seen.
    overfit_batch       ``steps`` optimizer steps on ``batch``: pass if the final loss is
                        <= 10% of the initial, warn if <= 50%, else fail (the loss curve,
                        ``steps + 1`` floats, in evidence).
    batch_independence  eval mode; d output[i].sum() / d input for i in {0, N-1}: fail if
                        any row j != i is non-zero (naming i, j and the largest value).
                        Integer inputs: differentiated with respect to the first
                        ``nn.Embedding`` output, skipped without one. Skipped if N < 2 or
                        the gradients are not finite. BatchNorm is noted in evidence.
    zero_grad           only with ``train_step``: calls ``train_step(model, optimizer,
                        (input, target))`` twice with an optimizer whose ``step`` records
                        the gradients and does not move the parameters. Second gradient
                        equal to the first: pass; twice the first: fail (gradients
                        accumulate); otherwise warn. Skip without ``train_step``.
    leakage             only with ``eval_data``: :func:`find_leakage` between the inputs of
                        ``train_data`` and ``eval_data``; fail if any pair, else pass.
    lr_range            :func:`lr_range_test` (1e-7 to 10, 100 steps) on ``batch``: pass
                        with the suggested rate; warn if the smoothed loss never fell below
                        90% of its start or no rate is suggested.
    ==================  ===================================================================

    Args:
        model: the model; ``model(input)`` gives the output ``loss_fn`` takes.
        batch: one ``(input, target)`` batch, batch dimension first.
        loss_fn: ``loss_fn(output, target)`` gives a scalar loss.
        optimizer_factory: builds an optimizer from parameters. Default: ``None``, meaning
            ``torch.optim.Adam(params, lr=1e-3)``.
        task: ``'classification'``, ``'regression'`` or ``None``: inferred from the first
            output (integer targets and (N, C, ...) output: classification; float targets:
            regression). Default: ``None``.
        steps: optimizer steps of the overfit check, >= 1. Default: ``100``.
        train_step: the user's ``train_step(model, optimizer, batch)``, for ``zero_grad``.
            Default: ``None``.
        eval_data: ``(input, target)`` held-out data, for ``leakage``. Default: ``None``.
        train_data: ``(input, target)`` training data for ``leakage``. Default: ``None``,
            meaning ``batch``.
        seed: the seed of every copy and run. Default: ``0``.

    Returns:
        a :class:`Diagnosis`: ``.checks`` maps each name in :data:`CHECKS` to its
        :class:`CheckResult`; ``.ok``, ``.failed``, ``.warned``; ``str()`` is a table.

    Examples:
        >>> _ = torch.manual_seed(0)
        >>> x, y = torch.randn(16, 5), torch.randint(0, 3, (16,))
        >>> model = nn.Sequential(nn.Linear(5, 32), nn.ReLU(), nn.Linear(32, 3))
        >>> adam = lambda params: torch.optim.Adam(params, lr=1e-2)
        >>> report = diagnose(model, (x, y), nn.CrossEntropyLoss(), adam, steps=60)
        >>> report.ok, report.failed
        (True, [])
        >>> round(report.checks["overfit_batch"].evidence["ratio"], 2)
        0.07
        >>> print(report)
        check               status  summary
        ------------------  ------  -------
        reproducibility     pass    two seeded runs of 3 steps give bit-identical losses
        initial_loss        pass    initial loss ..., expected 1.099 (ln 3), ratio ...
        finite              pass    forward, loss (...) and gradients finite
        gradient_flow       pass    4 parameters get finite non-zero gradients; ...
        overfit_batch       pass    loss ... -> ... after 60 steps on one batch (...%)
        batch_independence  pass    output rows [0, 15] have zero gradient with respect to ...
        zero_grad           skip    no train_step given
        leakage             skip    no eval_data given
        lr_range            pass    suggested lr ... (steepest descent of the smoothed loss)
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model: expected an nn.Module, got {type(model).__name__}")
    batch = _check_pair("batch", batch)
    if not callable(loss_fn):
        raise TypeError(f"loss_fn: expected a callable, got {type(loss_fn).__name__}")
    if optimizer_factory is not None and not callable(optimizer_factory):
        kind = type(optimizer_factory).__name__
        raise TypeError(f"optimizer_factory: expected a callable or None, got {kind}")
    if task is not None and task not in TASKS:
        raise ValueError(f"task: expected one of {TASKS} or None, got {task!r}")
    if isinstance(steps, bool) or not isinstance(steps, int):
        raise TypeError(f"steps: expected an integer, got {type(steps).__name__}")
    if steps < 1:
        raise ValueError(f"steps: expected an integer >= 1, got {steps}")
    if train_step is not None and not callable(train_step):
        raise TypeError(f"train_step: expected a callable or None, got {type(train_step).__name__}")
    if eval_data is not None:
        eval_data = _check_pair("eval_data", eval_data)
    train_data = batch if train_data is None else _check_pair("train_data", train_data)
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise TypeError(f"seed: expected an integer, got {type(seed).__name__}")

    factory = default_optimizer if optimizer_factory is None else optimizer_factory
    setup = _Setup(model, batch, loss_fn, factory, seed)
    runs: dict[str, Callable[[], CheckResult]] = {
        "reproducibility": lambda: _check_reproducibility(setup),
        "initial_loss": lambda: _check_initial_loss(setup, task),
        "finite": lambda: _check_finite(setup),
        "gradient_flow": lambda: _check_gradient_flow(setup),
        "overfit_batch": lambda: _check_overfit(setup, steps),
        "batch_independence": lambda: _check_batch_independence(setup),
        "zero_grad": lambda: _check_zero_grad(setup, train_step),
        "leakage": lambda: _check_leakage(train_data, eval_data),
        "lr_range": lambda: _check_lr_range(setup),
    }
    checks: dict[str, CheckResult] = {}
    with _preserve_rng(setup.device):
        for name in CHECKS:
            try:
                checks[name] = runs[name]()
            except Exception as error:  # the user's code failing is a finding, not a crash
                checks[name] = CheckResult(
                    name,
                    "fail",
                    f"raised {type(error).__name__}: {_short(str(error))}",
                    {"error": repr(error)},
                )
    return Diagnosis(checks)
