r"""``check_loss``: the source document's advice for a misbehaving loss, as a tool (FAQ 1.5).

The FAQ says: check a custom loss against a reference implementation on random inputs,
then check its numerical stability at extreme values. :func:`check_loss` does both, and
the other things that go wrong in hand-written losses, from one example ``(input,
target)``, and returns a :class:`LossCheckReport` listing every check.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import inspect
import math
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor, nn

__all__ = ["CheckResult", "LossCheckReport", "check_loss"]

_REDUCTIONS = ("mean", "sum", "none")
_EXTREME = 1e4  # the magnitude of the extreme logits
# Samples kept for gradcheck; above this many input elements gradcheck runs in fast mode
# (random projections of the Jacobian instead of all of it).
_GRADCHECK_SAMPLES = 4
_GRADCHECK_FULL_NUMEL = 256


@dataclasses.dataclass(frozen=True)
class CheckResult:
    """One row of a :class:`LossCheckReport`.

    Attributes:
        name: the check: ``'runs'``, ``'inputs unchanged'``, ``"reduction 'sum'"``,
            ``"reduction 'mean'"`` (or ``'reduction'`` when skipped or a variant
            raised), ``'gradcheck'``, ``'finite'`` or ``'reference'``.
        passed: whether it passed (``True`` for a skipped check).
        detail: what was compared or found, e.g. the offending value.
        case: a description of the input the check used.
        inputs: for a failed check on a derived input, that ``(input, target)`` pair
            (detached copies), else ``None``.
        skipped: the check did not apply (e.g. no ``reduction`` to vary).
    """

    name: str
    passed: bool
    detail: str
    case: str = ""
    inputs: tuple[Tensor, Tensor] | None = dataclasses.field(default=None, repr=False)
    skipped: bool = False

    @property
    def status(self) -> str:
        """``'pass'``, ``'FAIL'`` or ``'skip'``."""
        return "skip" if self.skipped else ("pass" if self.passed else "FAIL")


@dataclasses.dataclass(frozen=True)
class LossCheckReport:
    """The outcome of :func:`check_loss`: one :class:`CheckResult` per check.

    ``str(report)`` and ``repr(report)`` are a table, one row per check.

    Attributes:
        loss: the checked loss's name.
        results: every check, in the order run.
    """

    loss: str
    results: tuple[CheckResult, ...]

    @property
    def ok(self) -> bool:
        """``True`` when no check failed (skipped checks do not count)."""
        return all(r.passed for r in self.results)

    @property
    def failures(self) -> list[CheckResult]:
        """The checks that failed."""
        return [r for r in self.results if not r.passed]

    def __str__(self) -> str:
        n_fail = len(self.failures)
        n_skip = sum(r.skipped for r in self.results)
        n_pass = len(self.results) - n_fail - n_skip
        verdict = "OK" if self.ok else "FAILED"
        head = f"check_loss({self.loss}): {verdict}, {n_pass} passed, {n_fail} failed"
        head += f", {n_skip} skipped" if n_skip else ""
        rows = [("check", "result", "case", "detail")]
        rows += [(r.name, r.status, r.case, r.detail) for r in self.results]
        widths = [max(len(row[i]) for row in rows) for i in range(3)]
        lines = [head]
        for i, row in enumerate(rows):
            cells = [cell.ljust(width) for cell, width in zip(row[:3], widths, strict=True)]
            lines.append("  ".join([*cells, row[3]]).rstrip())
            if i == 0:
                lines.append("  ".join("-" * w for w in [*widths, len("detail")]))
        return "\n".join(lines)

    __repr__ = __str__


# ---------------------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------------------


@dataclasses.dataclass
class _Outcome:
    """The value of ``fn(input, target)`` and its gradient with respect to ``input``."""

    value: Tensor | None = None
    grad: Tensor | None = None
    error: str | None = None
    args: tuple[Tensor, Tensor] | None = None  # the copies the loss was called with


def _private(fn: Callable[..., Any]) -> Callable[..., Any]:
    """A copy of a module, so that nothing check_loss does can change the caller's."""
    return copy.deepcopy(fn) if isinstance(fn, nn.Module) else fn


def _name(fn: Callable[..., Any]) -> str:
    if isinstance(fn, nn.Module):
        return type(fn).__name__
    return getattr(fn, "__qualname__", type(fn).__name__)


def _evaluate(fn: Callable[..., Any], input: Tensor, target: Tensor) -> _Outcome:
    """Call ``fn`` on copies; differentiate ``value.sum()`` with respect to the input."""
    x = input.detach().clone().requires_grad_()
    t = target.detach().clone()
    args = (x, t)
    try:
        value = fn(x, t)
        if not isinstance(value, Tensor):
            error = f"returned {type(value).__name__}, not a tensor"
            return _Outcome(error=error, args=args)
        if not value.requires_grad:
            error = "the value has no gradient with respect to input"
            return _Outcome(value.detach(), error=error, args=args)
        (grad,) = torch.autograd.grad(value.sum(), x, allow_unused=True)
    except Exception as error:  # any failure of the user's loss is a finding, not a crash
        detail = f"raised {type(error).__name__}: {_first_line(str(error))}"
        return _Outcome(error=detail, args=args)
    return _Outcome(value.detach(), grad, args=args)


def _first_line(text: str, limit: int = 160) -> str:
    line = text.strip().splitlines()[0] if text.strip() else ""
    return line if len(line) <= limit else line[: limit - 3] + "..."


def _describe(value: Tensor) -> str:
    if value.dim() == 0:
        return f"{value.item():.6g}"
    return f"shape {tuple(value.shape)}"


def _non_finite(name: str, t: Tensor) -> str | None:
    """``None`` if all finite, else a count of the NaN and inf entries."""
    n_nan = int(t.isnan().sum())
    n_inf = int(t.isinf().sum())
    if n_nan == n_inf == 0:
        return None
    if t.dim() == 0:
        return f"{name} is {t.item()}"
    return f"{name} has {n_nan} NaN and {n_inf} inf of {t.numel()}"


def _tolerances(dtype: torch.dtype, rtol: float | None, atol: float | None) -> tuple[float, float]:
    defaults = {torch.float64: (1e-7, 1e-9), torch.float32: (1e-4, 1e-5)}
    r, a = defaults.get(dtype, (1e-2, 1e-3))
    return (r if rtol is None else rtol), (a if atol is None else atol)


def _close(a: Tensor, b: Tensor, rtol: float, atol: float) -> tuple[bool, str]:
    """Whether ``a`` and ``b`` agree; else the largest difference, in words."""
    if a.shape != b.shape:
        return False, f"shapes differ: {tuple(a.shape)} vs {tuple(b.shape)}"
    try:
        torch.testing.assert_close(a, b, rtol=rtol, atol=atol, equal_nan=True, check_dtype=False)
    except AssertionError:
        diff = (a.double() - b.double()).abs().nan_to_num(nan=math.inf)
        return False, f"max abs diff {diff.max().item():.3g}"
    return True, ""


def _same(a: Tensor, b: Tensor) -> bool:
    return _close(a, b, rtol=0.0, atol=0.0)[0]


def _shapes(input: Tensor, target: Tensor) -> str:
    return f"{tuple(input.shape)} / {tuple(target.shape)}"


def _looks_like_probabilities(x: Tensor) -> bool:
    return x.numel() > 0 and bool(((x >= 0) & (x <= 1)).all())


def _ignore_index(fn: Callable[..., Any]) -> int | None:
    value = getattr(fn, "ignore_index", None)
    return value if isinstance(value, int) and not isinstance(value, bool) else None


# ---------------------------------------------------------------------------------------
# The checks
# ---------------------------------------------------------------------------------------


def _problems(outcome: _Outcome) -> list[str]:
    """What is wrong with an outcome: an error, or non-finite value or gradient."""
    if outcome.error is not None:
        return [outcome.error]
    found = [_non_finite("value", outcome.value)]  # type: ignore[arg-type]
    if outcome.grad is None:
        found.append("no gradient reaches input")
    else:
        found.append(_non_finite("gradient", outcome.grad))
    return [p for p in found if p is not None]


def _check_runs(fn: Callable[..., Any], input: Tensor, target: Tensor) -> list[CheckResult]:
    """The given input: finite value and gradient; the loss leaves its arguments alone."""
    case = f"given {_shapes(input, target)}"
    outcome = _evaluate(fn, input, target)
    x, t = outcome.args  # type: ignore[misc]  # as the loss left them
    problems = _problems(outcome)
    if problems:
        detail = "; ".join(problems)
    else:
        detail = f"value {_describe(outcome.value)}; gradient finite"  # type: ignore[arg-type]
    unchanged = _same(x.detach(), input) and _same(t, target)
    return [
        CheckResult("runs", not problems, detail, case),
        CheckResult(
            "inputs unchanged",
            unchanged,
            "input and target as given" if unchanged else "the loss modified input or target",
            case,
        ),
    ]


def _reduction_variants(
    fn: Callable[..., Any],
) -> dict[str, Callable[..., Any]] | None:
    """The loss with each reduction: copies with ``.reduction`` set, or keyword calls."""
    current = getattr(fn, "reduction", None)
    if isinstance(current, str) and current in _REDUCTIONS:
        variants = {}
        for reduction in _REDUCTIONS:
            variant = copy.deepcopy(fn)
            variant.reduction = reduction  # type: ignore[attr-defined]
            variants[reduction] = variant
        return variants
    try:
        parameters = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return None
    if "reduction" in parameters:
        return {r: functools.partial(fn, reduction=r) for r in _REDUCTIONS}
    return None


def _mean_normaliser(fn: Callable[..., Any], target: Tensor, none: Tensor) -> tuple[Tensor, str]:
    """What ``'mean'`` should divide ``none.sum()`` by, following torch's conventions.

    Class-index targets of the per-element losses' shape: the number of targets that are
    not ``fn.ignore_index``, or their total ``fn.weight`` (class weights, as
    ``nn.CrossEntropyLoss`` and ``nn.NLLLoss``). Otherwise the number of elements.
    """
    integer = not target.is_floating_point() and target.dtype != torch.bool
    if not integer or none.shape != target.shape:
        return torch.tensor(float(none.numel()), dtype=torch.float64), "elements"
    ignore_index = _ignore_index(fn)
    keep = torch.ones_like(target, dtype=torch.bool)
    if ignore_index is not None:
        keep = target != ignore_index
    weight = getattr(fn, "weight", None)
    if isinstance(weight, Tensor) and weight.dim() == 1:
        safe = target.masked_fill(~keep, 0).long().clamp(0, weight.numel() - 1)
        return (weight.double()[safe] * keep).sum(), "total class weight of the targets"
    kind = "non-ignored targets" if ignore_index is not None else "elements"
    return keep.sum().double(), kind


def _check_reductions(
    fn: Callable[..., Any], input: Tensor, target: Tensor, rtol: float, atol: float
) -> list[CheckResult]:
    case = f"given {_shapes(input, target)}"
    variants = _reduction_variants(fn)
    if variants is None:
        detail = "the loss has no `reduction` attribute or keyword to vary"
        return [CheckResult("reduction", True, detail, case, skipped=True)]
    outcomes = {r: _evaluate(v, input, target) for r, v in variants.items()}
    errors = [f"{r!r} {o.error}" for r, o in outcomes.items() if o.error is not None]
    if errors:
        return [CheckResult("reduction", False, "; ".join(errors), case)]
    none = outcomes["none"].value.double()  # type: ignore[union-attr]
    normaliser, kind = _mean_normaliser(fn, target, none)
    expected = {"sum": none.sum(), "mean": none.sum() / normaliser.to(none.device)}
    formula = {"sum": "none.sum()", "mean": f"none.sum() / {normaliser.item():g} ({kind})"}
    results = []
    for reduction in ("sum", "mean"):
        got = outcomes[reduction].value.double()  # type: ignore[union-attr]
        if got.dim() != 0:
            detail = f"expected a scalar, got shape {tuple(got.shape)}"
            results.append(CheckResult(f"reduction {reduction!r}", False, detail, case))
            continue
        want = expected[reduction]
        ok, diff = _close(got, want, rtol, atol)
        detail = f"{got.item():.6g} vs {formula[reduction]} = {want.item():.6g}"
        results.append(
            CheckResult(
                f"reduction {reduction!r}",
                ok,
                detail if ok else f"{detail}: {diff}",
                case,
                None if ok else (input.clone(), target.clone()),
            )
        )
    return results


def _to_double(x: Tensor) -> Tensor:
    return x.double() if x.is_floating_point() else x


def _check_gradcheck(fn: Callable[..., Any], input: Tensor, target: Tensor) -> CheckResult:
    """float64 gradcheck with respect to input, on at most a few samples."""
    x, t = input, target
    if x.dim() >= 1 and t.dim() >= 1 and x.shape[0] == t.shape[0]:
        x, t = x[:_GRADCHECK_SAMPLES], t[:_GRADCHECK_SAMPLES]
    fast = x.numel() > _GRADCHECK_FULL_NUMEL
    case = f"float64 slice {_shapes(x, t)}"
    x = _to_double(x).detach().clone().requires_grad_()
    t = _to_double(t).detach().clone()
    try:
        fn64 = copy.deepcopy(fn).double() if isinstance(fn, nn.Module) else fn

        def f(x: Tensor) -> Tensor:
            return fn64(x, t)

        torch.autograd.gradcheck(f, (x,), fast_mode=fast)
    except Exception as error:  # GradcheckError, or the loss failing in float64
        detail = f"{type(error).__name__}: {_first_line(str(error))}"
        return CheckResult("gradcheck", False, detail, case, (x.detach(), t))
    mode = "fast mode (random projections)" if fast else "full Jacobian"
    return CheckResult("gradcheck", True, f"analytic = numerical, {mode}", case)


def _extreme_cases(
    fn: Callable[..., Any], input: Tensor, target: Tensor
) -> list[tuple[str, Tensor, Tensor]]:
    """(description, input, target) for the stability checks, derived from the given."""
    inputs: list[tuple[str, Tensor]] = []
    if _looks_like_probabilities(input):
        inputs.append(("input rounded to 0/1", input.round()))
        inputs.append(("input 1 - rounded (wrong 0/1)", 1 - input.round()))
    else:
        peak = float(input.abs().max()) if input.numel() else 0.0
        if peak > 0 and math.isfinite(peak):
            scaled = input * (_EXTREME / peak)
            inputs.append(("input scaled to max|x|=1e4", scaled))
            inputs.append(("input negated, max|x|=1e4", -scaled))
    inputs.append(("input all 0", torch.zeros_like(input)))

    targets: list[tuple[str, Tensor]] = []
    if target.is_floating_point():
        targets.append(("target all 0", torch.zeros_like(target)))
        if _looks_like_probabilities(target):
            targets.append(("target all 1", torch.ones_like(target)))
    elif target.dtype != torch.bool and target.numel():
        ignore_index = _ignore_index(fn)
        valid = target[target >= 0]
        if ignore_index is not None:
            valid = valid[valid != ignore_index]
        classes = sorted({0, int(valid.max())} if valid.numel() else {0})
        for k in classes:  # one class only: the others absent from the batch
            targets.append((f"target all class {k}", torch.full_like(target, k)))

    cases = [(desc, x, target) for desc, x in inputs]
    cases += [(desc, input, t) for desc, t in targets]
    first_desc, first_x = inputs[0]
    cases += [(f"{first_desc}, {desc}", first_x, t) for desc, t in targets]
    return cases


def _check_finite(fn: Callable[..., Any], input: Tensor, target: Tensor) -> list[CheckResult]:
    results = []
    for desc, x, t in _extreme_cases(fn, input, target):
        problems = _problems(_evaluate(fn, x, t))
        ok = not problems
        detail = "value and gradient finite" if ok else "; ".join(problems)
        results.append(CheckResult("finite", ok, detail, desc, None if ok else (x, t)))
    return results


def _random_like_target(target: Tensor, gen: torch.Generator) -> Tensor:
    if not target.is_floating_point():
        if target.numel() == 0:
            return target.clone()
        # Values drawn from those present: class indices stay valid, ignore_index stays.
        flat = target.flatten().cpu()
        picks = torch.randint(0, flat.numel(), target.shape, generator=gen)
        return flat[picks].to(target.device)
    dtype = target.dtype
    if target.numel() and bool(((target == 0) | (target == 1)).all()):
        sample = (torch.rand(target.shape, generator=gen, dtype=dtype) < 0.5).to(dtype)
    elif _looks_like_probabilities(target):
        sample = torch.rand(target.shape, generator=gen, dtype=dtype)
    else:
        sample = 3 * torch.randn(target.shape, generator=gen, dtype=dtype)
    return sample.to(target.device)


def _random_like_input(input: Tensor, gen: torch.Generator) -> Tensor:
    if _looks_like_probabilities(input):
        sample = torch.rand(input.shape, generator=gen, dtype=input.dtype)
    else:
        sample = 3 * torch.randn(input.shape, generator=gen, dtype=input.dtype)
    return sample.to(input.device)


def _check_reference(
    fn: Callable[..., Any],
    reference: Callable[..., Any],
    input: Tensor,
    target: Tensor,
    n_random: int,
    seed: int,
    rtol: float,
    atol: float,
) -> list[CheckResult]:
    gen = torch.Generator().manual_seed(seed)
    cases = [(f"given {_shapes(input, target)}", input, target)]
    for i in range(n_random):
        x = _random_like_input(input, gen)
        t = _random_like_target(target, gen)
        cases.append((f"random {i + 1} (seed {seed})", x, t))
    results = []
    for desc, x, t in cases:
        ours, theirs = _evaluate(fn, x, t), _evaluate(reference, x, t)
        if ours.error is not None or theirs.error is not None:
            detail = "; ".join(
                f"{who} {o.error}"
                for who, o in (("loss", ours), ("reference", theirs))
                if o.error is not None
            )
            results.append(CheckResult("reference", False, detail, desc, (x, t)))
            continue
        value, ref_value = ours.value, theirs.value
        value_ok, diff = _close(value, ref_value, rtol, atol)  # type: ignore[arg-type]
        problems = []
        if not value_ok:
            problems.append(
                f"value {_describe(value)} vs reference {_describe(ref_value)}: {diff}"  # type: ignore[arg-type]
            )
        if (ours.grad is None) != (theirs.grad is None):
            problems.append("only one of them has a gradient with respect to input")
        elif ours.grad is not None and theirs.grad is not None:
            grad_ok, grad_diff = _close(ours.grad, theirs.grad, rtol, atol)
            if not grad_ok:
                problems.append(f"gradient: {grad_diff}")
        ok = not problems
        agree = f"value {_describe(value)} and gradient agree"  # type: ignore[arg-type]
        detail = agree if ok else "; ".join(problems)
        results.append(CheckResult("reference", ok, detail, desc, None if ok else (x, t)))
    return results


def check_loss(
    loss_fn: Callable[..., Tensor],
    input: Tensor,
    target: Tensor,
    reference: Callable[..., Tensor] | None = None,
    *,
    n_random: int = 3,
    seed: int = 0,
    rtol: float | None = None,
    atol: float | None = None,
) -> LossCheckReport:
    r"""Check a loss function on one example and on inputs derived from it.

    The source document's advice for a custom loss that misbehaves (FAQ 1.5) as a tool:
    compare it with a reference on random inputs, check it at extreme values, and check
    the things that hand-written losses get wrong. From the example ``(input, target)``
    it runs, in order:

    ================== ====================================================================
    check              passes when
    ================== ====================================================================
    runs               the loss returns a tensor at the given input; value and gradient
                       with respect to ``input`` are finite (a value with no gradient
                       fails)
    inputs unchanged   the loss did not modify its arguments in place
    reduction          ``'sum'`` equals ``none.sum()`` and ``'mean'`` equals ``none.sum()``
                       divided by the number of elements, or, for class-index targets,
                       by the number of targets that are not ``loss_fn.ignore_index`` or
                       their total ``loss_fn.weight`` (torch's weighted mean, as
                       ``nn.CrossEntropyLoss``). Skipped when the loss has no
                       ``reduction``.
    gradcheck          ``torch.autograd.gradcheck`` in float64 with respect to ``input``,
                       on its first 4 samples (fast mode above 256 elements)
    finite             value and gradient finite on extreme inputs derived from the given
                       ones: logits scaled to :math:`\max|x| = 10^4` and negated (or, when
                       the input lies in [0, 1] like probabilities, rounded to exact 0 and
                       1 and flipped); all-zero input; all-zero targets (and all-one
                       where they lie in [0, 1]); for class indices, every target class 0
                       and every target the largest given class (the other classes absent
                       from the batch); and the first extreme input with each extreme
                       target
    reference          (only with ``reference``) value and input gradient within ``rtol``,
                       ``atol`` of ``reference``'s, at the given input and at ``n_random``
                       random ones of the same shape, dtype and device: inputs
                       :math:`3\,\mathcal{N}(0, 1)` (uniform in [0, 1) for
                       probability-like inputs), targets drawn from the given target's
                       values (class indices), Bernoulli(1/2) (0/1 targets), uniform
                       ([0, 1] targets) or :math:`3\,\mathcal{N}(0, 1)`
    ================== ====================================================================

    **Reductions.** A loss with a string attribute ``reduction`` (as every ``torch.nn``
    loss and every :mod:`torchkata.losses` module) is copied with ``copy.deepcopy`` and
    the copy's ``reduction`` set to each of ``'none'``, ``'sum'`` and ``'mean'``; a function
    with a ``reduction`` parameter is called with each as a keyword.

    **Nothing is mutated.** The loss (and reference) is deep-copied when it is an
    ``nn.Module``, and every call gets fresh copies of the tensors, so the caller's
    module state (e.g. :attr:`CompositeLoss.last`) and tensors stay as they were. A plain
    function is called as is.

    Args:
        loss_fn: the loss, called as ``loss_fn(input, target)``: an ``nn.Module`` or a
            function.
        input: an example input (floating point): logits, probabilities or embeddings.
        target: an example target, as ``loss_fn`` expects it.
        reference: a trusted implementation called the same way, e.g. the PyTorch twin
            or a naive float64 formula. Default: ``None`` (no reference check)
        n_random: random inputs for the reference check. Default: 3
        seed: seed of those random inputs. Default: 0
        rtol: relative tolerance of the reduction and reference comparisons.
            Default: ``None`` (1e-7 for float64, 1e-4 for float32, 1e-2 otherwise)
        atol: absolute tolerance of the same. Default: ``None`` (1e-9, 1e-5, 1e-3)

    Returns:
        A :class:`LossCheckReport`; ``report.ok`` is ``False`` when any check failed,
        ``report.failures`` lists those, and each failed check on a derived input keeps
        the offending ``(input, target)`` in ``.inputs``.

    Raises:
        TypeError: ``loss_fn`` or ``reference`` not callable; ``input`` not a
            floating-point tensor; ``target`` not a tensor.
        ValueError: ``n_random < 0``.

    Examples:
        >>> import torch
        >>> from torchkata.losses import FocalLoss, check_loss
        >>> def naive_focal(logits, target, gamma=2.0):
        ...     p = torch.softmax(logits, dim=1).gather(1, target[:, None]).squeeze(1)
        ...     return (-(1 - p) ** gamma * torch.log(p)).mean()
        >>> _ = torch.manual_seed(0)
        >>> logits, target = torch.randn(8, 4), torch.randint(0, 4, (8,))
        >>> report = check_loss(naive_focal, logits, target)
        >>> report.ok
        False
        >>> print(report.failures[0].case, "->", report.failures[0].detail)
        input scaled to max|x|=1e4 -> value is inf; gradient has ... NaN ...
        >>> check_loss(FocalLoss(), logits, target, reference=naive_focal).ok
        True
    """
    if not callable(loss_fn):
        raise TypeError(f"loss_fn: expected a callable loss, got {type(loss_fn).__name__}")
    if reference is not None and not callable(reference):
        raise TypeError(f"reference: expected None or a callable, got {type(reference).__name__}")
    if not isinstance(input, Tensor) or not input.is_floating_point():
        got = input.dtype if isinstance(input, Tensor) else type(input).__name__
        raise TypeError(f"input: expected a floating-point tensor, got {got}")
    if not isinstance(target, Tensor):
        raise TypeError(f"target: expected a tensor, got {type(target).__name__}")
    if isinstance(n_random, bool) or not isinstance(n_random, int) or n_random < 0:
        raise ValueError(f"n_random: expected an integer >= 0, got {n_random!r}")

    fn = _private(loss_fn)
    x, t = input.detach().clone(), target.detach().clone()
    r, a = _tolerances(x.dtype, rtol, atol)
    results = _check_runs(fn, x, t)
    results += _check_reductions(fn, x, t, r, a)
    results.append(_check_gradcheck(fn, x, t))
    results += _check_finite(fn, x, t)
    if reference is not None:
        results += _check_reference(fn, _private(reference), x, t, n_random, seed, r, a)
    return LossCheckReport(_name(loss_fn), tuple(results))
