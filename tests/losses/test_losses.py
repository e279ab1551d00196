"""Losses of torchkata.losses against their torch twins or float64 formulas (STYLE rule 9).

Twins (``nn.MSELoss``, ``nn.CrossEntropyLoss``, ``F.binary_cross_entropy_with_logits``,
``nn.TripletMarginLoss``) run side by side with ours on the same inputs and the same
random upstream gradient; values and the gradients of every floating-point argument are
compared. Losses without a twin (focal, Dice, NT-Xent) are compared with hand-written
float64 references below, which loop over elements and use the textbook formulas
(``log(softmax)`` included: at the moderate logits used here that is accurate in float64).

Tolerances (``torch.testing.assert_close``): float64 ``rtol=1e-9, atol=1e-11`` against
twins and references; float32 ``rtol=1e-4, atol=1e-5`` (sums in other orders; observed
differences are a few float32 ulps). Inputs are O(1)-O(10).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import Tensor, nn

from torchkata.losses import (
    CompositeLoss,
    DiceLoss,
    FocalLoss,
    LabelSmoothingCrossEntropy,
    NTXentLoss,
    SquaredErrorLoss,
    TripletMarginLoss,
    dice_loss,
    focal_loss,
    label_smoothing_cross_entropy,
    nt_xent_loss,
    squared_error_loss,
    triplet_margin_loss,
)

TOL: dict[torch.dtype, dict[str, float]] = {
    torch.float64: {"rtol": 1e-9, "atol": 1e-11},
    torch.float32: {"rtol": 1e-4, "atol": 1e-5},
}
DTYPES = [torch.float64, torch.float32]
REDUCTIONS = ["mean", "sum", "none"]
HYPOTHESIS = settings(max_examples=20, deadline=None)


# ---------------------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------------------


def value_and_grads(fn: Callable[..., Tensor], *args: Tensor) -> tuple[Tensor, list[Tensor]]:
    """``fn(*args)`` and the gradients of its floating-point arguments.

    Backpropagates a fixed random upstream gradient, so that 'none' is checked
    element by element and not only through its sum.
    """
    leaves = [a.detach().clone().requires_grad_(a.is_floating_point()) for a in args]
    out = fn(*leaves)
    upstream = torch.randn(out.shape, generator=torch.Generator().manual_seed(99), dtype=out.dtype)
    wrt = [a for a in leaves if a.requires_grad]
    grads = torch.autograd.grad(out, wrt, grad_outputs=upstream, allow_unused=True)
    return out.detach(), [
        torch.zeros_like(a) if g is None else g for a, g in zip(wrt, grads, strict=True)
    ]


def assert_twins(
    ours: Callable[..., Tensor], theirs: Callable[..., Tensor], *args: Tensor, equal_nan=False
) -> None:
    """Same value and same gradients for every floating-point argument."""
    dtype = next(a.dtype for a in args if a.is_floating_point())
    tol = TOL[dtype]
    value, grads = value_and_grads(ours, *args)
    ref_value, ref_grads = value_and_grads(theirs, *args)
    torch.testing.assert_close(value, ref_value, **tol, equal_nan=equal_nan)
    for i, (g, ref_g) in enumerate(zip(grads, ref_grads, strict=True)):
        torch.testing.assert_close(g, ref_g, **tol, equal_nan=equal_nan, msg=f"gradient {i}")


def assert_finite_with_grad(fn: Callable[..., Tensor], x: Tensor, *rest: Tensor) -> Tensor:
    x = x.detach().clone().requires_grad_()
    value = fn(x, *rest)
    (grad,) = torch.autograd.grad(value.sum(), x)
    assert torch.isfinite(value).all(), value
    assert torch.isfinite(grad).all(), grad
    return value


def randn(gen: torch.Generator, *shape: int, dtype: torch.dtype = torch.float64) -> Tensor:
    return torch.randn(shape, generator=gen, dtype=dtype)


def reduce(loss: Tensor, reduction: str) -> Tensor:
    return {"mean": loss.mean, "sum": loss.sum, "none": lambda: loss}[reduction]()


ALL_MODULES: list[Callable[..., nn.Module]] = [
    SquaredErrorLoss,
    FocalLoss,
    LabelSmoothingCrossEntropy,
    DiceLoss,
    NTXentLoss,
    TripletMarginLoss,
]


@pytest.mark.parametrize("cls", ALL_MODULES, ids=lambda c: c.__name__)
def test_bad_reduction_is_refused_naming_the_argument(cls: Callable[..., nn.Module]) -> None:
    with pytest.raises(ValueError, match=r"reduction: expected one of 'mean', 'sum', 'none'.*avg"):
        cls(reduction="avg")


@pytest.mark.parametrize(
    "fn, args",
    [
        (squared_error_loss, (torch.zeros(2), torch.zeros(2))),
        (focal_loss, (torch.zeros(2, 3), torch.zeros(2, dtype=torch.long))),
        (label_smoothing_cross_entropy, (torch.zeros(2, 3), torch.zeros(2, dtype=torch.long))),
        (dice_loss, (torch.zeros(2, 3), torch.zeros(2, 3))),
        (nt_xent_loss, (torch.zeros(2, 3), torch.zeros(2, 3))),
        (triplet_margin_loss, (torch.zeros(2, 3), torch.zeros(2, 3), torch.zeros(2, 3))),
    ],
    ids=lambda v: getattr(v, "__name__", ""),
)
def test_functional_forms_refuse_a_bad_reduction(fn: Callable[..., Tensor], args: tuple) -> None:
    with pytest.raises(ValueError, match="reduction"):
        fn(*args, reduction="average")


def test_a_reduction_set_after_construction_is_validated_at_call_time() -> None:
    loss = FocalLoss()
    loss.reduction = "avg"
    with pytest.raises(ValueError, match="reduction"):
        loss(torch.zeros(2, 3), torch.zeros(2, dtype=torch.long))


# ---------------------------------------------------------------------------------------
# SquaredErrorLoss == nn.MSELoss
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_squared_error_matches_mse_loss(reduction: str, dtype: torch.dtype) -> None:
    gen = torch.Generator().manual_seed(0)
    x, y = randn(gen, 4, 3, 2, dtype=dtype), randn(gen, 4, 3, 2, dtype=dtype)
    assert_twins(SquaredErrorLoss(reduction), nn.MSELoss(reduction=reduction), x, y)


@HYPOTHESIS
@given(
    shape=st.lists(st.integers(1, 4), min_size=0, max_size=3),
    reduction=st.sampled_from(REDUCTIONS),
    seed=st.integers(0, 2**16),
)
def test_squared_error_matches_mse_loss_on_random_shapes(
    shape: list[int], reduction: str, seed: int
) -> None:
    gen = torch.Generator().manual_seed(seed)
    x, y = randn(gen, *shape), randn(gen, *shape)
    assert_twins(SquaredErrorLoss(reduction), nn.MSELoss(reduction=reduction), x, y)


def test_squared_error_gradcheck() -> None:
    gen = torch.Generator().manual_seed(1)
    x, y = randn(gen, 3, 2).requires_grad_(), randn(gen, 3, 2).requires_grad_()
    assert torch.autograd.gradcheck(SquaredErrorLoss(), (x, y))


def test_squared_error_refuses_bad_input() -> None:
    loss = SquaredErrorLoss()
    with pytest.raises(
        ValueError, match=r"target: expected the shape of input \(3,\), got \(3, 1\)"
    ):
        loss(torch.zeros(3), torch.zeros(3, 1))
    with pytest.raises(TypeError, match=r"input: expected a floating-point tensor.*int64"):
        loss(torch.zeros(3, dtype=torch.long), torch.zeros(3))
    with pytest.raises(TypeError, match=r"target: expected a torch.Tensor"):
        loss(torch.zeros(3), [0.0, 0.0, 0.0])


# ---------------------------------------------------------------------------------------
# LabelSmoothingCrossEntropy == nn.CrossEntropyLoss
# ---------------------------------------------------------------------------------------


def class_problem(
    gen: torch.Generator,
    shape: Sequence[int],
    dtype: torch.dtype = torch.float64,
    ignore_index: int | None = None,
    scale: float = 2.0,
) -> tuple[Tensor, Tensor]:
    """(N, C, d...) logits and (N, d...) targets; about a quarter ``ignore_index``."""
    N, C, *rest = shape
    x = scale * torch.randn(shape, generator=gen, dtype=dtype)
    t = torch.randint(0, C, (N, *rest), generator=gen)
    if ignore_index is not None:
        drop = torch.rand(t.shape, generator=gen) < 0.25
        drop.view(-1)[0] = True  # at least one, but never all (N * d >= 2 below)
        drop.view(-1)[-1] = False
        t = t.masked_fill(drop, ignore_index)
    return x, t


def class_weight(gen: torch.Generator, C: int, dtype: torch.dtype) -> Tensor:
    return torch.rand(C, generator=gen, dtype=dtype) * 2 + 0.1


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
@pytest.mark.parametrize("smoothing", [0.0, 0.15, 1.0])
@pytest.mark.parametrize("shape", [(6, 4), (3, 5, 2, 3)], ids=["NC", "NCHW"])
def test_label_smoothing_ce_matches_cross_entropy(
    shape: tuple[int, ...], smoothing: float, weighted: bool, reduction: str, dtype: torch.dtype
) -> None:
    gen = torch.Generator().manual_seed(6)
    x, t = class_problem(gen, shape, dtype, ignore_index=-100)
    w = class_weight(gen, shape[1], dtype) if weighted else None
    ours = LabelSmoothingCrossEntropy(smoothing, weight=w, reduction=reduction)
    twin = nn.CrossEntropyLoss(weight=w, reduction=reduction, label_smoothing=smoothing)
    assert_twins(ours, twin, x, t)


@HYPOTHESIS
@given(
    N=st.integers(1, 5),
    C=st.integers(1, 5),
    rest=st.lists(st.integers(1, 3), max_size=2),
    smoothing=st.floats(0.0, 1.0),
    weighted=st.booleans(),
    ignore_index=st.sampled_from([-100, -1, 0, 2]),
    reduction=st.sampled_from(REDUCTIONS),
    seed=st.integers(0, 2**16),
)
def test_label_smoothing_ce_matches_cross_entropy_on_random_problems(
    N: int,
    C: int,
    rest: list[int],
    smoothing: float,
    weighted: bool,
    ignore_index: int,
    reduction: str,
    seed: int,
) -> None:
    gen = torch.Generator().manual_seed(seed)
    x = 3 * randn(gen, N, C, *rest)
    t = torch.randint(0, C, (N, *rest), generator=gen)
    t = t.masked_fill(torch.rand(t.shape, generator=gen) < 0.3, ignore_index)
    w = class_weight(gen, C, torch.float64) if weighted else None
    ours = LabelSmoothingCrossEntropy(smoothing, w, ignore_index, reduction)
    twin = nn.CrossEntropyLoss(
        weight=w, ignore_index=ignore_index, reduction=reduction, label_smoothing=smoothing
    )
    # All targets ignored: 'mean' is 0/0 = NaN for both.
    assert_twins(ours, twin, x, t, equal_nan=True)


def test_label_smoothing_ce_unbatched_input_matches() -> None:
    gen = torch.Generator().manual_seed(3)
    x, w = randn(gen, 5), class_weight(gen, 5, torch.float64)
    for reduction in REDUCTIONS:
        ours = LabelSmoothingCrossEntropy(0.2, weight=w, reduction=reduction)
        twin = nn.CrossEntropyLoss(weight=w, label_smoothing=0.2, reduction=reduction)
        assert_twins(ours, twin, x, torch.tensor(3))


def test_label_smoothing_ce_weighted_mean_divides_both_terms_by_the_target_weight() -> None:
    # The subtle part of torch's formula, spelled out on numbers: the smoothing term's
    # sum over classes uses every class weight, yet the mean divides by sum_i w[y_i].
    x = torch.tensor([[1.0, 0.0, -1.0], [0.0, 2.0, 0.0]], dtype=torch.float64)
    t = torch.tensor([0, 2])
    w = torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64)
    eps = 0.3
    logp = x.log_softmax(1)
    per_sample = (1 - eps) * w[t] * -logp[[0, 1], t] + eps / 3 * -(w * logp).sum(1)
    expected = per_sample.sum() / (w[0] + w[2])
    value = LabelSmoothingCrossEntropy(eps, weight=w)(x, t)
    torch.testing.assert_close(value, expected, rtol=1e-12, atol=0)
    torch.testing.assert_close(value, F.cross_entropy(x, t, weight=w, label_smoothing=eps))


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_label_smoothing_ce_is_finite_and_exact_at_extreme_logits(dtype: torch.dtype) -> None:
    gen = torch.Generator().manual_seed(4)
    x = torch.randint(0, 2, (6, 4), generator=gen).to(dtype) * 2e4 - 1e4  # entries +-1e4
    t = torch.randint(0, 4, (6,), generator=gen)
    w = class_weight(gen, 4, dtype)
    loss = LabelSmoothingCrossEntropy(0.1, weight=w)
    assert_finite_with_grad(loss, x, t)
    assert_twins(loss, nn.CrossEntropyLoss(weight=w, label_smoothing=0.1), x, t)


def test_label_smoothing_ce_gradcheck() -> None:
    gen = torch.Generator().manual_seed(5)
    x, t = class_problem(gen, (4, 3, 2), ignore_index=-100)
    x.requires_grad_()
    w = class_weight(gen, 3, torch.float64)
    for reduction in REDUCTIONS:
        loss = LabelSmoothingCrossEntropy(0.2, weight=w, reduction=reduction)
        assert torch.autograd.gradcheck(lambda x, loss=loss: loss(x, t), (x,))


def test_label_smoothing_ce_keeps_weight_as_a_buffer() -> None:
    loss = LabelSmoothingCrossEntropy(weight=[1.0, 2.0])
    assert set(loss.state_dict()) == {"weight"}
    assert loss.to(torch.float64).weight.dtype == torch.float64
    assert "weight" not in LabelSmoothingCrossEntropy().state_dict()


def test_label_smoothing_ce_refuses_bad_input() -> None:
    loss = LabelSmoothingCrossEntropy(0.1)
    x = torch.zeros(4, 3)
    with pytest.raises(TypeError, match=r"target: expected integer class indices.*float32"):
        loss(x, torch.zeros(4))
    with pytest.raises(ValueError, match=r"target: expected class indices in \[0, 2\].*got 3"):
        loss(x, torch.tensor([0, 1, 2, 3]))
    with pytest.raises(ValueError, match=r"target: expected class indices.*got -1"):
        loss(x, torch.tensor([0, 1, 2, -1]))
    with pytest.raises(ValueError, match=r"target: expected shape \(4,\).*got \(4, 1\)"):
        loss(x, torch.zeros(4, 1, dtype=torch.long))
    with pytest.raises(ValueError, match=r"input: expected logits of shape \(N, C\)"):
        loss(torch.zeros(4), torch.zeros(4, dtype=torch.long))
    with pytest.raises(TypeError, match="input: expected a floating-point tensor"):
        loss(torch.zeros(4, 3, dtype=torch.long), torch.zeros(4, dtype=torch.long))
    with pytest.raises(ValueError, match=r"weight: expected one weight per class, shape \(3,\)"):
        LabelSmoothingCrossEntropy(weight=[1.0, 2.0])(x, torch.zeros(4, dtype=torch.long))
    with pytest.raises(ValueError, match=r"label_smoothing: expected a float in \[0, 1\]"):
        LabelSmoothingCrossEntropy(1.5)
    with pytest.raises(ValueError, match="label_smoothing: expected a finite real number >= 0"):
        LabelSmoothingCrossEntropy(-0.1)
    with pytest.raises(ValueError, match="weight: expected finite non-negative weights"):
        LabelSmoothingCrossEntropy(weight=[1.0, -2.0])
    with pytest.raises(TypeError, match="weight: expected None, a 1-D tensor"):
        LabelSmoothingCrossEntropy(weight="balanced")  # type: ignore[arg-type]


# ---------------------------------------------------------------------------------------
# FocalLoss: float64 reference; cross-entropy at gamma = 0
# ---------------------------------------------------------------------------------------


def focal_reference(
    x: Tensor,
    t: Tensor,
    gamma: float,
    alpha: Tensor | None = None,
    ignore_index: int = -100,
    reduction: str = "mean",
) -> Tensor:
    """Multi-class focal loss in float64, one element at a time, from softmax."""
    C = x.shape[1]
    rows = x.double().movedim(1, -1).reshape(-1, C)  # (M, C)
    losses = []
    for row, y in zip(rows, t.reshape(-1).tolist(), strict=True):
        if y == ignore_index:
            losses.append(row.sum() * 0)
            continue
        p = torch.exp(row) / torch.exp(row).sum()
        a = 1.0 if alpha is None else alpha[y]
        losses.append(-a * (1 - p[y]) ** gamma * torch.log(p[y]))
    loss = torch.stack(losses).reshape(t.shape)
    kept = int((t != ignore_index).sum())
    return loss.sum() / kept if reduction == "mean" else reduce(loss, reduction)


def binary_focal_reference(
    x: Tensor, t: Tensor, gamma: float, alpha: float | None = None, reduction: str = "mean"
) -> Tensor:
    """Binary focal loss in float64 from sigmoid probabilities, as in the paper."""
    x, t = x.double(), t.double()
    p = 1 / (1 + torch.exp(-x))
    p_t = p * t + (1 - p) * (1 - t)
    ce = -(t * torch.log(p) + (1 - t) * torch.log(1 - p))
    a_t = 1.0 if alpha is None else alpha * t + (1 - alpha) * (1 - t)
    return reduce(a_t * (1 - p_t) ** gamma * ce, reduction)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("gamma", [0.0, 0.5, 1.0, 2.0, 3.5])
@pytest.mark.parametrize("shape", [(6, 4), (2, 3, 2, 3)], ids=["NC", "NCHW"])
def test_focal_matches_float64_reference(
    shape: tuple[int, ...], gamma: float, reduction: str
) -> None:
    gen = torch.Generator().manual_seed(10)
    x, t = class_problem(gen, shape, ignore_index=-100)
    alpha = torch.rand(shape[1], generator=gen, dtype=torch.float64)  # float64: kept as given
    for a in (None, alpha):
        ours = FocalLoss(gamma, alpha=a, reduction=reduction)

        def reference(x: Tensor, t: Tensor, a: Tensor | None = a) -> Tensor:
            return focal_reference(x, t, gamma, a, reduction=reduction)

        assert_twins(ours, reference, x, t)


@HYPOTHESIS
@given(
    N=st.integers(1, 4),
    C=st.integers(2, 5),
    rest=st.lists(st.integers(1, 3), max_size=2),
    gamma=st.floats(0.0, 4.0),
    use_alpha=st.booleans(),
    reduction=st.sampled_from(REDUCTIONS),
    seed=st.integers(0, 2**16),
)
def test_focal_matches_reference_on_random_problems(
    N: int,
    C: int,
    rest: list[int],
    gamma: float,
    use_alpha: bool,
    reduction: str,
    seed: int,
) -> None:
    gen = torch.Generator().manual_seed(seed)
    x = 3 * randn(gen, N, C, *rest)
    t = torch.randint(0, C, (N, *rest), generator=gen)
    alpha = torch.rand(C, generator=gen, dtype=torch.float64) + 0.1 if use_alpha else None
    ours = FocalLoss(gamma, alpha, reduction)
    assert_twins(ours, lambda x, t: focal_reference(x, t, gamma, alpha, reduction=reduction), x, t)


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_focal_with_gamma_zero_is_cross_entropy(reduction: str, dtype: torch.dtype) -> None:
    gen = torch.Generator().manual_seed(11)
    x, t = class_problem(gen, (5, 4, 3), dtype, ignore_index=-1)
    ours = FocalLoss(gamma=0.0, reduction=reduction, ignore_index=-1)
    assert_twins(ours, nn.CrossEntropyLoss(reduction=reduction, ignore_index=-1), x, t)


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_binary_focal_with_gamma_zero_is_bce_with_logits(
    reduction: str, dtype: torch.dtype
) -> None:
    gen = torch.Generator().manual_seed(12)
    x = 3 * randn(gen, 4, 2, 3, dtype=dtype)
    t = torch.rand(x.shape, generator=gen, dtype=dtype)  # soft targets, gradient for them too
    ours = FocalLoss(gamma=0.0, reduction=reduction)
    assert_twins(ours, nn.BCEWithLogitsLoss(reduction=reduction), x, t)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("gamma", [0.0, 0.5, 2.0])
@pytest.mark.parametrize("alpha", [None, 0.25])
def test_binary_focal_matches_float64_reference(
    alpha: float | None, gamma: float, reduction: str
) -> None:
    gen = torch.Generator().manual_seed(13)
    x = 3 * randn(gen, 3, 5)
    t = (torch.rand(x.shape, generator=gen) < 0.4).double()
    t[0, :2] = torch.tensor([0.3, 0.8], dtype=torch.float64)  # soft labels interpolate
    ours = FocalLoss(gamma, alpha, reduction)
    assert_twins(ours, lambda x, t: binary_focal_reference(x, t, gamma, alpha, reduction), x, t)


def test_focal_unbatched_input_is_a_batch_of_one() -> None:
    gen = torch.Generator().manual_seed(17)
    x, t = randn(gen, 4), torch.tensor(2)
    for reduction in REDUCTIONS:
        loss = FocalLoss(1.5, alpha=[0.1, 0.2, 0.3, 0.4], reduction=reduction)
        value = loss(x, t)
        assert value.shape == ()
        torch.testing.assert_close(value, loss(x[None], t[None]).squeeze())


def test_focal_ignore_index_is_left_out_of_the_mean() -> None:
    gen = torch.Generator().manual_seed(14)
    x, t = class_problem(gen, (8, 3), ignore_index=-100)
    kept = t != -100
    none = FocalLoss(reduction="none")(x, t)
    assert none.shape == t.shape and bool((none[~kept] == 0).all())
    torch.testing.assert_close(FocalLoss()(x, t), FocalLoss()(x[kept], t[kept]))


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("gamma", [0.0, 0.25, 1.0, 2.0])
def test_focal_is_finite_with_finite_gradient_at_logits_1e4(
    gamma: float, dtype: torch.dtype
) -> None:
    gen = torch.Generator().manual_seed(15)
    x = torch.randint(0, 2, (6, 4), generator=gen).to(dtype) * 2e4 - 1e4  # entries +-1e4
    x[0] = torch.tensor([1e4, -1e4, -1e4, -1e4])  # certain and right: p_t = 1 exactly
    x[1] = torch.tensor([-1e4, 1e4, -1e4, -1e4])  # certain and wrong: p_t = 0 exactly
    t = torch.randint(0, 4, (6,), generator=gen)
    t[:2] = 0
    none = assert_finite_with_grad(FocalLoss(gamma, reduction="none"), x, t)
    assert none[0] == 0
    torch.testing.assert_close(none[1], torch.tensor(2e4, dtype=dtype))  # -log p_t = 2e4
    for a in (None, [0.2, 0.3, 0.4, 0.1]):
        assert_finite_with_grad(FocalLoss(gamma, alpha=a), x, t)
    binary_t = (torch.rand(x.shape, generator=gen) < 0.5).to(dtype)
    assert_finite_with_grad(FocalLoss(gamma, alpha=0.25), x, binary_t)


def test_focal_gradcheck() -> None:
    gen = torch.Generator().manual_seed(16)
    x, t = class_problem(gen, (4, 3, 2), ignore_index=-100)
    x.requires_grad_()
    for gamma in (0.5, 2.0):
        loss = FocalLoss(gamma, alpha=[0.2, 0.5, 0.3])
        assert torch.autograd.gradcheck(lambda x, loss=loss: loss(x, t), (x,))
    xb = randn(gen, 3, 4).requires_grad_()
    tb = torch.rand(3, 4, generator=gen, dtype=torch.float64).requires_grad_()
    assert torch.autograd.gradcheck(FocalLoss(1.5, alpha=0.3, reduction="sum"), (xb, tb))


def test_focal_keeps_per_class_alpha_as_a_buffer_and_a_float_as_an_attribute() -> None:
    assert set(FocalLoss(alpha=[0.2, 0.8]).state_dict()) == {"alpha"}
    assert FocalLoss(alpha=0.25).alpha == 0.25 and not FocalLoss(alpha=0.25).state_dict()


def test_focal_refuses_bad_input() -> None:
    x, t = torch.zeros(4, 3), torch.tensor([0, 1, 2, 0])
    with pytest.raises(ValueError, match="target: floating-point targets select the binary"):
        FocalLoss()(x, torch.zeros(4))
    with pytest.raises(ValueError, match=r"target: expected values in \[0, 1\], got 2"):
        FocalLoss()(x, torch.full((4, 3), 2.0))
    with pytest.raises(ValueError, match=r"target: expected class indices in \[0, 2\].*got 3"):
        FocalLoss()(x, torch.tensor([0, 1, 2, 3]))
    with pytest.raises(TypeError, match=r"target: expected integer class indices.*torch.bool"):
        FocalLoss()(x, torch.zeros(4, 3, dtype=torch.bool))
    with pytest.raises(ValueError, match="alpha: a single alpha weights the positive class"):
        FocalLoss(alpha=0.25)(x, t)
    with pytest.raises(ValueError, match="alpha: binary targets take a single float"):
        FocalLoss(alpha=[0.1, 0.2, 0.7])(x, torch.zeros(4, 3))
    with pytest.raises(ValueError, match=r"alpha: expected one weight per class, shape \(3,\)"):
        FocalLoss(alpha=[0.5, 0.5])(x, t)
    with pytest.raises(ValueError, match=r"alpha: expected a float in \[0, 1\]"):
        FocalLoss(alpha=1.5)
    with pytest.raises(ValueError, match="gamma: expected a finite real number >= 0"):
        FocalLoss(gamma=-1.0)
    with pytest.raises(ValueError, match="gamma"):
        FocalLoss(gamma=math.nan)
    with pytest.raises(TypeError, match=r"ignore_index: expected an int, got 1.5"):
        FocalLoss(ignore_index=1.5)  # type: ignore[arg-type]


# ---------------------------------------------------------------------------------------
# DiceLoss: float64 reference
# ---------------------------------------------------------------------------------------


def dice_reference(x: Tensor, t: Tensor, smooth: float, reduction: str) -> Tensor:
    """Soft Dice in float64 with explicit loops over samples and classes.

    Multi-class when ``t`` has one dimension fewer than ``x`` and ``x.shape[1] > 1``;
    otherwise binary (sigmoid), one Dice per sample.
    """
    x = x.double()
    N = x.shape[0]
    multi = t.dim() == x.dim() - 1 and x.shape[1] > 1
    rows = []
    for n in range(N):
        if multi:
            probs = torch.exp(x[n]) / torch.exp(x[n]).sum(0)  # (C, *)
            classes = [(probs[c], (t[n] == c).double()) for c in range(x.shape[1])]
        else:
            classes = [(1 / (1 + torch.exp(-x[n].flatten())), t[n].double().flatten())]
        row = []
        for p, target in classes:
            numerator = 2 * (p * target).sum() + smooth
            denominator = p.sum() + target.sum() + smooth
            row.append(1 - numerator / denominator)
        rows.append(torch.stack(row))
    loss = torch.stack(rows)  # (N, C) or (N, 1)
    return reduce(loss if multi else loss.squeeze(1), reduction)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("smooth", [0.0, 1.0])
@pytest.mark.parametrize(
    "x_shape, t_shape, kind",
    [
        ((2, 3, 4, 5), (2, 4, 5), "classes"),
        ((3, 4, 3, 2, 2), (3, 3, 2, 2), "classes"),  # 3-D volumes
        ((2, 4, 5), (2, 4, 5), "binary"),
        ((2, 1, 4, 5), (2, 4, 5), "binary"),
        ((2, 1, 4, 5), (2, 1, 4, 5), "binary"),
        ((2, 1, 4, 5), (2, 4, 5), "binary-int"),
        ((3, 6), (3, 6), "soft"),
    ],
)
def test_dice_matches_float64_reference(
    x_shape: tuple[int, ...], t_shape: tuple[int, ...], kind: str, smooth: float, reduction: str
) -> None:
    gen = torch.Generator().manual_seed(20)
    x = 2 * torch.randn(x_shape, generator=gen, dtype=torch.float64)
    if kind == "classes":
        t = torch.randint(0, x_shape[1], t_shape, generator=gen)
    elif kind == "soft":
        t = torch.rand(t_shape, generator=gen, dtype=torch.float64)
    else:
        t = torch.randint(0, 2, t_shape, generator=gen)
        t = t if kind == "binary-int" else t.double()
    ours = DiceLoss(smooth, reduction)
    assert_twins(ours, lambda x, t: dice_reference(x, t, smooth, reduction), x, t)
    value = ours(x, t)
    expected_shape = {"none": (x_shape[0], x_shape[1]) if kind == "classes" else (x_shape[0],)}
    assert tuple(value.shape) == expected_shape.get(reduction, ())


@HYPOTHESIS
@given(
    N=st.integers(1, 3),
    C=st.integers(2, 4),
    spatial=st.lists(st.integers(1, 4), min_size=1, max_size=2),
    smooth=st.floats(0.01, 2.0),
    reduction=st.sampled_from(REDUCTIONS),
    seed=st.integers(0, 2**16),
)
def test_dice_matches_reference_on_random_problems(
    N: int, C: int, spatial: list[int], smooth: float, reduction: str, seed: int
) -> None:
    gen = torch.Generator().manual_seed(seed)
    x = 2 * randn(gen, N, C, *spatial)
    t = torch.randint(0, C, (N, *spatial), generator=gen)
    assert_twins(
        DiceLoss(smooth, reduction), lambda x, t: dice_reference(x, t, smooth, reduction), x, t
    )


def test_dice_float32_matches_float64() -> None:
    gen = torch.Generator().manual_seed(21)
    x = 2 * randn(gen, 2, 3, 8, 8)
    t = torch.randint(0, 3, (2, 8, 8), generator=gen)
    value, (grad,) = value_and_grads(DiceLoss(reduction="none"), x.float(), t)
    ref_value, (ref_grad,) = value_and_grads(DiceLoss(reduction="none"), x, t)
    torch.testing.assert_close(value, ref_value.float(), **TOL[torch.float32])
    torch.testing.assert_close(grad, ref_grad.float(), **TOL[torch.float32])


def test_dice_is_zero_for_a_perfect_prediction_and_near_one_for_the_opposite() -> None:
    t = torch.tensor([[[0, 1], [2, 2]]])
    onehot = F.one_hot(t, 3).permute(0, 3, 1, 2).double()
    assert DiceLoss(smooth=0.0)(1e4 * (2 * onehot - 1), t) == 0
    wrong = DiceLoss(smooth=0.0, reduction="none")(1e4 * (1 - 2 * onehot), t)
    torch.testing.assert_close(wrong, torch.ones(1, 3, dtype=torch.float64))


def test_dice_is_finite_at_logits_1e4() -> None:
    gen = torch.Generator().manual_seed(22)
    x = torch.randint(0, 2, (2, 3, 4, 4), generator=gen).float() * 2e4 - 1e4
    t = torch.zeros(2, 4, 4, dtype=torch.long)  # classes 1 and 2 absent
    assert_finite_with_grad(DiceLoss(), x, t)
    assert_finite_with_grad(DiceLoss(), x[:, 0], torch.zeros(2, 4, 4))


def test_dice_gradcheck() -> None:
    gen = torch.Generator().manual_seed(23)
    x = randn(gen, 2, 3, 3, 2).requires_grad_()
    t = torch.randint(0, 3, (2, 3, 2), generator=gen)
    assert torch.autograd.gradcheck(lambda x: DiceLoss(0.5, "none")(x, t), (x,))
    xb = randn(gen, 2, 3, 2).requires_grad_()
    tb = torch.rand(2, 3, 2, generator=gen, dtype=torch.float64).requires_grad_()
    assert torch.autograd.gradcheck(DiceLoss(), (xb, tb))


def test_dice_refuses_bad_input() -> None:
    x = torch.zeros(2, 3, 4, 4)
    with pytest.raises(ValueError, match=r"target: expected input's shape \(2, 3, 4, 4\)"):
        DiceLoss()(x, torch.zeros(2, 4, 5, dtype=torch.long))
    with pytest.raises(TypeError, match=r"target: expected integer class indices.*float32"):
        DiceLoss()(x, torch.zeros(2, 4, 4))
    with pytest.raises(ValueError, match=r"target: expected class indices in \[0, 2\].*got 3"):
        DiceLoss()(x, torch.full((2, 4, 4), 3))
    with pytest.raises(ValueError, match=r"target: expected values in \[0, 1\], got 2"):
        DiceLoss()(torch.zeros(2, 4), torch.full((2, 4), 2))
    with pytest.raises(TypeError, match=r"target: expected integer or floating-point.*bool"):
        DiceLoss()(torch.zeros(2, 4), torch.zeros(2, 4, dtype=torch.bool))
    with pytest.raises(ValueError, match="smooth: expected a finite real number >= 0"):
        DiceLoss(smooth=-1.0)


# ---------------------------------------------------------------------------------------
# NTXentLoss: naive double loop
# ---------------------------------------------------------------------------------------


def nt_xent_reference(z_a: Tensor, z_b: Tensor, temperature: float, reduction: str) -> Tensor:
    """SimCLR's equation (1), one anchor and one candidate at a time, in float64."""
    z = [v.double() for v in [*z_a, *z_b]]
    N2 = len(z)

    def cos(u: Tensor, v: Tensor) -> Tensor:
        return (u * v).sum() / (torch.sqrt((u * u).sum()) * torch.sqrt((v * v).sum()))

    losses = []
    for i in range(N2):
        j = (i + N2 // 2) % N2
        denominator = sum(torch.exp(cos(z[i], z[k]) / temperature) for k in range(N2) if k != i)
        losses.append(-torch.log(torch.exp(cos(z[i], z[j]) / temperature) / denominator))
    return reduce(torch.stack(losses), reduction)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("temperature", [0.1, 0.5, 2.0])
def test_nt_xent_matches_double_loop(temperature: float, reduction: str) -> None:
    gen = torch.Generator().manual_seed(30)
    z_a, z_b = randn(gen, 4, 3), randn(gen, 4, 3)
    ours = NTXentLoss(temperature, reduction)
    assert_twins(ours, lambda a, b: nt_xent_reference(a, b, temperature, reduction), z_a, z_b)


@HYPOTHESIS
@given(
    N=st.integers(1, 5),
    D=st.integers(1, 4),
    temperature=st.floats(0.05, 5.0),
    reduction=st.sampled_from(REDUCTIONS),
    seed=st.integers(0, 2**16),
)
def test_nt_xent_matches_double_loop_on_random_batches(
    N: int, D: int, temperature: float, reduction: str, seed: int
) -> None:
    gen = torch.Generator().manual_seed(seed)
    z_a, z_b = 2 * randn(gen, N, D), 2 * randn(gen, N, D)
    ours = NTXentLoss(temperature, reduction)
    assert_twins(ours, lambda a, b: nt_xent_reference(a, b, temperature, reduction), z_a, z_b)


def test_nt_xent_float32_matches_float64() -> None:
    gen = torch.Generator().manual_seed(31)
    z_a, z_b = randn(gen, 16, 8), randn(gen, 16, 8)
    value, grads = value_and_grads(NTXentLoss(0.1), z_a.float(), z_b.float())
    ref_value, ref_grads = value_and_grads(NTXentLoss(0.1), z_a, z_b)
    torch.testing.assert_close(value, ref_value.float(), **TOL[torch.float32])
    for g, ref_g in zip(grads, ref_grads, strict=True):
        torch.testing.assert_close(g, ref_g.float(), **TOL[torch.float32])


def test_nt_xent_is_symmetric_in_the_views_and_ignores_scale() -> None:
    gen = torch.Generator().manual_seed(32)
    z_a, z_b = randn(gen, 5, 4), randn(gen, 5, 4)
    loss = NTXentLoss(0.3)
    torch.testing.assert_close(loss(z_a, z_b), loss(z_b, z_a))
    torch.testing.assert_close(loss(z_a, z_b), loss(1e4 * z_a, 1e-3 * z_b))


def test_nt_xent_is_finite_at_extremes() -> None:
    gen = torch.Generator().manual_seed(33)
    z_a = randn(gen, 4, 3, dtype=torch.float32)
    z_a[0] = 0  # a zero embedding
    assert_finite_with_grad(NTXentLoss(0.01), 1e4 * z_a, randn(gen, 4, 3, dtype=torch.float32))
    assert_finite_with_grad(NTXentLoss(0.01), z_a, z_a.clone())


def test_nt_xent_gradcheck() -> None:
    gen = torch.Generator().manual_seed(34)
    z_a, z_b = randn(gen, 3, 4).requires_grad_(), randn(gen, 3, 4).requires_grad_()
    assert torch.autograd.gradcheck(NTXentLoss(0.2, "none"), (z_a, z_b))


def test_nt_xent_refuses_bad_input() -> None:
    z = torch.zeros(4, 3)
    with pytest.raises(ValueError, match=r"z_b: expected the shape of z_a \(4, 3\), got \(5, 3\)"):
        NTXentLoss()(z, torch.zeros(5, 3))
    with pytest.raises(ValueError, match=r"z_a: expected shape \(N, D\).*got \(4,\)"):
        NTXentLoss()(torch.zeros(4), torch.zeros(4))
    with pytest.raises(TypeError, match=r"z_b: expected the dtype of z_a \(torch.float32\)"):
        NTXentLoss()(z, z.double())
    with pytest.raises(TypeError, match="z_a: expected a floating-point tensor"):
        NTXentLoss()(z.long(), z)
    with pytest.raises(ValueError, match="temperature: expected a finite real number > 0"):
        NTXentLoss(temperature=0.0)


# ---------------------------------------------------------------------------------------
# TripletMarginLoss == nn.TripletMarginLoss
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("swap", [False, True])
@pytest.mark.parametrize("p", [1.0, 2.0, 3.0, 0.5, math.inf])
def test_triplet_matches_torch(p: float, swap: bool, reduction: str, dtype: torch.dtype) -> None:
    gen = torch.Generator().manual_seed(40)
    a, pos, neg = (randn(gen, 6, 5, dtype=dtype) for _ in range(3))
    kwargs: dict[str, Any] = {"margin": 1.5, "p": p, "swap": swap, "reduction": reduction}
    assert_twins(TripletMarginLoss(**kwargs), nn.TripletMarginLoss(**kwargs), a, pos, neg)


@HYPOTHESIS
@given(
    N=st.integers(1, 5),
    D=st.integers(1, 5),
    margin=st.floats(0.01, 3.0),
    eps=st.sampled_from([0.0, 1e-6, 1e-3]),
    swap=st.booleans(),
    reduction=st.sampled_from(REDUCTIONS),
    seed=st.integers(0, 2**16),
)
def test_triplet_matches_torch_on_random_batches(
    N: int, D: int, margin: float, eps: float, swap: bool, reduction: str, seed: int
) -> None:
    gen = torch.Generator().manual_seed(seed)
    a, pos, neg = (randn(gen, N, D) for _ in range(3))
    kwargs: dict[str, Any] = {"margin": margin, "eps": eps, "swap": swap, "reduction": reduction}
    assert_twins(TripletMarginLoss(**kwargs), nn.TripletMarginLoss(**kwargs), a, pos, neg)


def test_triplet_matches_torch_unbatched_and_at_ties() -> None:
    gen = torch.Generator().manual_seed(41)
    a, pos, neg = (randn(gen, 5) for _ in range(3))
    for reduction in REDUCTIONS:
        ours, twin = (
            TripletMarginLoss(reduction=reduction),
            nn.TripletMarginLoss(reduction=reduction),
        )
        assert_twins(ours, twin, a, pos, neg)
    # positive == anchor: the swap's two distances tie; negative == anchor: the hinge is 0
    a2 = randn(gen, 4, 3)
    for args in [(a2, a2.clone(), randn(gen, 4, 3)), (a2, randn(gen, 4, 3), a2.clone())]:
        for swap in (False, True):
            assert_twins(TripletMarginLoss(swap=swap), nn.TripletMarginLoss(swap=swap), *args)


def test_triplet_gradcheck() -> None:
    gen = torch.Generator().manual_seed(42)
    args = tuple(randn(gen, 4, 3).requires_grad_() for _ in range(3))
    assert torch.autograd.gradcheck(TripletMarginLoss(margin=2.0, p=3.0, swap=True), args)


def test_triplet_refuses_bad_input() -> None:
    a = torch.zeros(4, 3)
    with pytest.raises(ValueError, match=r"negative: expected the shape of anchor \(4, 3\)"):
        TripletMarginLoss()(a, a, torch.zeros(1, 3))
    with pytest.raises(ValueError, match=r"anchor: expected shape \(N, D\) or \(D,\)"):
        TripletMarginLoss()(torch.zeros(2, 4, 3), torch.zeros(2, 4, 3), torch.zeros(2, 4, 3))
    with pytest.raises(TypeError, match="positive: expected a floating-point tensor"):
        TripletMarginLoss()(a, a.long(), a)
    with pytest.raises(ValueError, match="margin: expected a finite real number > 0"):
        TripletMarginLoss(margin=0.0)
    with pytest.raises(ValueError, match="p: expected a finite real number > 0"):
        TripletMarginLoss(p=-1.0)


# ---------------------------------------------------------------------------------------
# CompositeLoss
# ---------------------------------------------------------------------------------------


def test_composite_is_the_weighted_sum_and_records_each_term() -> None:
    gen = torch.Generator().manual_seed(50)
    x, t = class_problem(gen, (6, 4))
    ce, focal = nn.CrossEntropyLoss(), FocalLoss()
    loss = CompositeLoss({"ce": (ce, 1.0), "focal": (focal, 0.5)})
    assert loss.last == {}
    expected = lambda x, t: ce(x, t) + 0.5 * focal(x, t)  # noqa: E731
    assert_twins(loss, expected, x, t)
    assert list(loss.last) == ["ce", "focal"]
    assert all(isinstance(v, float) for v in loss.last.values())
    assert loss.last["ce"] == pytest.approx(ce(x, t).item(), rel=1e-12)
    assert loss.last["focal"] == pytest.approx(focal(x, t).item(), rel=1e-12)


def test_composite_registers_terms_as_submodules_and_wraps_functions() -> None:
    w = torch.tensor([1.0, 2.0, 3.0])
    loss = CompositeLoss(
        {"lsce": (LabelSmoothingCrossEntropy(0.1, weight=w), 1.0), "ce": (F.cross_entropy, 2)}
    )
    assert set(dict(loss.named_children())["terms"]._modules) == {"lsce", "ce"}
    assert set(loss.state_dict()) == {"terms.lsce.weight"}
    assert loss.to(torch.float64).terms["lsce"].weight.dtype == torch.float64
    assert loss.weights == {"lsce": 1.0, "ce": 2.0}
    assert "weights={'lsce': 1.0, 'ce': 2.0}" in repr(loss)
    x, t = torch.randn(3, 3, dtype=torch.float64), torch.tensor([0, 1, 2])
    torch.testing.assert_close(
        loss(x, t),
        F.cross_entropy(x, t, weight=w.double(), label_smoothing=0.1) + 2 * F.cross_entropy(x, t),
    )


def test_composite_loss_trains_a_model_and_reports_each_term() -> None:
    gen = torch.Generator().manual_seed(51)
    x = torch.randn(64, 5, generator=gen)
    y = (x[:, 0] + x[:, 1] > 0).long() + (x[:, 2] > 1).long()  # 3 classes
    torch.manual_seed(0)
    model = nn.Linear(5, 3)
    loss_fn = CompositeLoss({"ce": (nn.CrossEntropyLoss(), 1.0), "focal": (FocalLoss(), 0.5)})
    opt = torch.optim.SGD(model.parameters(), lr=0.5)
    history = []
    for _ in range(30):
        opt.zero_grad()
        loss = loss_fn(model(x), y)
        loss.backward()
        opt.step()
        history.append(loss_fn.last)
    assert history[-1]["ce"] < 0.6 * history[0]["ce"]
    assert history[-1]["focal"] < 0.6 * history[0]["focal"]


@pytest.mark.parametrize(
    "terms, error, match",
    [
        ([("ce", (nn.CrossEntropyLoss(), 1.0))], TypeError, "terms: expected a mapping"),
        ({}, ValueError, "terms: expected at least one"),
        ({"ce": nn.CrossEntropyLoss()}, TypeError, r"terms\['ce'\]: expected a pair"),
        ({"ce": ("loss", 1.0)}, TypeError, r"terms\['ce'\]: expected a callable loss"),
        ({"ce": (nn.CrossEntropyLoss(), "1")}, TypeError, r"terms\['ce'\]: expected a real"),
        ({"ce": (nn.CrossEntropyLoss(), True)}, TypeError, r"terms\['ce'\]: expected a real"),
        ({"ce": (nn.CrossEntropyLoss(), math.inf)}, ValueError, "expected a finite weight"),
        ({"a.b": (nn.CrossEntropyLoss(), 1.0)}, ValueError, "without '.'"),
        ({1: (nn.CrossEntropyLoss(), 1.0)}, TypeError, "terms: expected string names"),
    ],
)
def test_composite_validates_its_terms(terms: Any, error: type[Exception], match: str) -> None:
    with pytest.raises(error, match=match):
        CompositeLoss(terms)


def test_composite_refuses_a_term_that_does_not_return_a_scalar() -> None:
    loss = CompositeLoss({"ce": (nn.CrossEntropyLoss(reduction="none"), 1.0)})
    with pytest.raises(ValueError, match=r"terms\['ce'\]: expected the loss to return a scalar"):
        loss(torch.zeros(2, 3), torch.zeros(2, dtype=torch.long))
