"""check_loss catches the ways a hand-written loss goes wrong, and passes the good ones."""

from __future__ import annotations

import copy
from collections.abc import Callable

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from torchkata.losses import (
    CheckResult,
    CompositeLoss,
    DiceLoss,
    FocalLoss,
    LabelSmoothingCrossEntropy,
    LossCheckReport,
    NTXentLoss,
    SquaredErrorLoss,
    check_loss,
)


def naive_focal(logits: Tensor, target: Tensor, gamma: float = 2.0) -> Tensor:
    """The textbook focal loss, as it is often first written: log of a softmax."""
    p = torch.softmax(logits, dim=1).gather(1, target[:, None]).squeeze(1)
    return (-((1 - p) ** gamma) * torch.log(p)).mean()


def naive_bce(p: Tensor, t: Tensor) -> Tensor:
    return -(t * torch.log(p) + (1 - t) * torch.log(1 - p)).mean()


class BadMean(nn.Module):
    """Squared error whose 'mean' divides by one element too many."""

    def __init__(self, reduction: str = "mean") -> None:
        super().__init__()
        self.reduction = reduction

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        loss = (input - target).square()
        if self.reduction == "none":
            return loss
        if self.reduction == "sum":
            return loss.sum()
        return loss.sum() / (loss.numel() + 1)


class _WrongBackward(torch.autograd.Function):
    """x ** 2 with the gradient of x ** 2 / 2 (a typical hand-written backward slip)."""

    @staticmethod
    def forward(ctx, x: Tensor) -> Tensor:  # type: ignore[override]
        ctx.save_for_backward(x)
        return x.square()

    @staticmethod
    def backward(ctx, grad: Tensor) -> Tensor:  # type: ignore[override]
        (x,) = ctx.saved_tensors
        return grad * x


def wrong_backward_mse(input: Tensor, target: Tensor) -> Tensor:
    return _WrongBackward.apply(input - target).mean()


@pytest.fixture
def problem() -> tuple[Tensor, Tensor]:
    gen = torch.Generator().manual_seed(0)
    return torch.randn(8, 4, generator=gen), torch.randint(0, 4, (8,), generator=gen)


def failed(report: LossCheckReport, name: str) -> list[CheckResult]:
    return [r for r in report.failures if r.name == name]


# ---------------------------------------------------------------------------------------
# What it catches
# ---------------------------------------------------------------------------------------


def test_catches_the_naive_focal_loss_at_extreme_logits(problem: tuple[Tensor, Tensor]) -> None:
    x, t = problem
    report = check_loss(naive_focal, x, t)
    assert not report.ok
    assert {r.name for r in report.failures} == {"finite"}  # fine at ordinary logits
    bad = failed(report, "finite")
    assert bad and all("inf" in r.detail or "nan" in r.detail.lower() for r in bad)
    assert any("max|x|=1e4" in r.case for r in bad)
    offending_input, offending_target = bad[0].inputs  # type: ignore[misc]
    assert offending_input.abs().max() == 1e4
    value = naive_focal(offending_input, offending_target)
    assert not torch.isfinite(value)  # the report's example reproduces the failure


def test_passes_the_stable_focal_loss_against_a_float64_reference(
    problem: tuple[Tensor, Tensor],
) -> None:
    x, t = problem

    def reference(x: Tensor, t: Tensor) -> Tensor:
        return naive_focal(x.double(), t).to(x.dtype)

    report = check_loss(FocalLoss(), x, t, reference=reference)
    assert report.ok, report
    names = [r.name for r in report.results]
    for expected in ("runs", "inputs unchanged", "reduction 'sum'", "reduction 'mean'"):
        assert expected in names
    assert names.count("finite") >= 5 and names.count("reference") == 4
    assert not any(r.skipped for r in report.results)


def test_catches_a_mean_that_disagrees_with_none_mean() -> None:
    gen = torch.Generator().manual_seed(1)
    x, y = torch.randn(6, 3, generator=gen), torch.randn(6, 3, generator=gen)
    report = check_loss(BadMean(), x, y)
    assert [r.name for r in report.failures] == ["reduction 'mean'"]
    assert "none.sum() / 18 (elements)" in report.failures[0].detail
    assert check_loss(SquaredErrorLoss(), x, y).ok


def test_catches_disagreement_with_a_reference(problem: tuple[Tensor, Tensor]) -> None:
    x, t = problem
    report = check_loss(FocalLoss(gamma=2.0), x, t, reference=FocalLoss(gamma=1.0))
    bad = failed(report, "reference")
    assert len(bad) == 4 and not report.ok  # the given input and three random ones
    assert "vs reference" in bad[0].detail
    assert [r.name for r in report.failures] == ["reference"] * 4


def test_catches_a_wrong_hand_written_backward() -> None:
    gen = torch.Generator().manual_seed(2)
    x, y = torch.randn(5, 2, generator=gen), torch.randn(5, 2, generator=gen)
    report = check_loss(wrong_backward_mse, x, y, reference=nn.MSELoss())
    assert failed(report, "gradcheck")
    bad = failed(report, "reference")
    assert bad and all(r.detail.startswith("gradient") for r in bad)  # values agree


def test_catches_a_loss_that_modifies_its_arguments() -> None:
    def zeroing_loss(input: Tensor, target: Tensor) -> Tensor:
        value = F.mse_loss(input, target.clone())
        target.zero_()
        return value

    gen = torch.Generator().manual_seed(3)
    x, y = torch.randn(4, generator=gen), torch.randn(4, generator=gen)
    report = check_loss(zeroing_loss, x, y)
    assert failed(report, "inputs unchanged")
    assert y.abs().sum() > 0  # the caller's target was not touched


def test_catches_a_loss_without_gradient(problem: tuple[Tensor, Tensor]) -> None:
    def accuracy_loss(logits: Tensor, target: Tensor) -> Tensor:
        return 1 - (logits.argmax(1) == target).float().mean()

    x, t = problem
    report = check_loss(accuracy_loss, x, t)
    runs = report.results[0]
    assert runs.name == "runs" and not runs.passed
    assert "no gradient" in runs.detail


def test_catches_log_of_zero_probability() -> None:
    gen = torch.Generator().manual_seed(4)
    p, t = torch.rand(6, generator=gen), (torch.rand(6, generator=gen) < 0.5).float()
    report = check_loss(naive_bce, p, t)
    bad = failed(report, "finite")
    assert bad and any("0/1" in r.case for r in bad)
    assert check_loss(nn.BCELoss(), p, t).ok  # torch clamps log at -100


def test_records_an_exception_instead_of_raising(problem: tuple[Tensor, Tensor]) -> None:
    def broken(input: Tensor, target: Tensor) -> Tensor:
        raise RuntimeError("boom")

    x, t = problem
    report = check_loss(broken, x, t)
    assert not report.ok
    assert report.results[0].detail == "raised RuntimeError: boom"


# ---------------------------------------------------------------------------------------
# It passes every torchkata loss and the torch losses it is modelled on
# ---------------------------------------------------------------------------------------


def _cases() -> list[tuple[str, Callable[..., Tensor], Tensor, Tensor, Callable | None]]:
    gen = torch.Generator().manual_seed(5)
    logits, classes = torch.randn(8, 4, generator=gen), torch.randint(0, 4, (8,), generator=gen)
    ignored = classes.clone()
    ignored[:3] = -100
    w = torch.rand(4, generator=gen) + 0.5
    seg = torch.randn(2, 3, 6, 6, generator=gen)
    seg_t = torch.randint(0, 3, (2, 6, 6), generator=gen)
    binary = torch.randn(4, 5, generator=gen)
    binary_t = (torch.rand(4, 5, generator=gen) < 0.5).float()
    z_a, z_b = torch.randn(6, 8, generator=gen), torch.randn(6, 8, generator=gen)
    composite = CompositeLoss({"ce": (nn.CrossEntropyLoss(), 1.0), "focal": (FocalLoss(), 0.5)})
    return [
        ("focal", FocalLoss(alpha=w), logits, ignored, None),
        ("focal-binary", FocalLoss(alpha=0.25), binary, binary_t, None),
        (
            "label-smoothing-ce",
            LabelSmoothingCrossEntropy(0.1, weight=w),
            logits,
            ignored,
            nn.CrossEntropyLoss(weight=w, label_smoothing=0.1),
        ),
        ("dice", DiceLoss(), seg, seg_t, None),
        ("dice-binary", DiceLoss(), binary, binary_t, None),
        ("nt-xent", NTXentLoss(0.1), z_a, z_b, None),
        ("squared-error", SquaredErrorLoss(), z_a, z_b, nn.MSELoss()),
        ("composite", composite, logits, classes, None),
        ("torch-cross-entropy", nn.CrossEntropyLoss(weight=w), logits, ignored, None),
        ("F.cross_entropy", F.cross_entropy, logits, classes, None),
        ("bce-with-logits", nn.BCEWithLogitsLoss(), binary, binary_t, None),
    ]


@pytest.mark.parametrize("name, loss, x, t, reference", _cases(), ids=[c[0] for c in _cases()])
def test_passes_good_losses(
    name: str, loss: Callable[..., Tensor], x: Tensor, t: Tensor, reference: Callable | None
) -> None:
    report = check_loss(loss, x, t, reference=reference, n_random=2)
    assert report.ok, report
    if name == "composite":
        assert [r.name for r in report.results if r.skipped] == ["reduction"]
    else:  # modules through .reduction, F.cross_entropy through its keyword
        assert not any(r.skipped for r in report.results)


# ---------------------------------------------------------------------------------------
# It leaves the caller's objects alone, and reports readably
# ---------------------------------------------------------------------------------------


def test_does_not_mutate_the_callers_tensors_or_module(problem: tuple[Tensor, Tensor]) -> None:
    x, t = problem
    x.requires_grad_()
    x_before, t_before = x.detach().clone(), t.clone()
    loss = CompositeLoss({"focal": (FocalLoss(alpha=[0.1, 0.2, 0.3, 0.4]), 1.0)})
    state_before = copy.deepcopy(loss.state_dict())
    focal = loss.terms["focal"]
    check_loss(loss, x, t, reference=FocalLoss(alpha=[0.1, 0.2, 0.3, 0.4]))
    check_loss(focal, x, t)
    assert torch.equal(x.detach(), x_before) and torch.equal(t, t_before)
    assert x.grad is None
    assert loss.last == {}  # never called
    assert focal.reduction == "mean"
    assert focal.alpha.dtype == torch.float32  # no float64 copy leaked back
    for key, value in loss.state_dict().items():
        assert torch.equal(value, state_before[key])


def test_report_is_a_readable_table(problem: tuple[Tensor, Tensor]) -> None:
    x, t = problem
    report = check_loss(naive_focal, x, t)
    text = str(report)
    assert repr(report) == text
    lines = text.splitlines()
    assert lines[0].startswith("check_loss(naive_focal): FAILED, ")
    assert "1 skipped" in lines[0]
    assert lines[1].split() == ["check", "result", "case", "detail"]
    assert set(lines[2].replace(" ", "")) == {"-"}
    assert len(lines) == 3 + len(report.results)
    assert any(line.startswith("finite") and " FAIL " in line for line in lines)
    assert any(line.startswith("gradcheck") and " pass " in line for line in lines)
    assert {r.status for r in report.results} == {"pass", "FAIL", "skip"}
    ok = check_loss(FocalLoss(), x, t)
    assert str(ok).splitlines()[0].startswith("check_loss(FocalLoss): OK, ")


def test_gradcheck_uses_a_small_float64_slice_and_fast_mode_for_large_inputs() -> None:
    gen = torch.Generator().manual_seed(6)
    seg = torch.randn(5, 3, 16, 16, generator=gen)
    seg_t = torch.randint(0, 3, (5, 16, 16), generator=gen)
    report = check_loss(DiceLoss(), seg, seg_t)
    (grad_row,) = [r for r in report.results if r.name == "gradcheck"]
    assert grad_row.passed and grad_row.case == "float64 slice (4, 3, 16, 16) / (4, 16, 16)"
    assert "fast mode" in grad_row.detail


def test_refuses_bad_arguments(problem: tuple[Tensor, Tensor]) -> None:
    x, t = problem
    with pytest.raises(TypeError, match="loss_fn: expected a callable"):
        check_loss("focal", x, t)  # type: ignore[arg-type]
    with pytest.raises(
        TypeError, match=r"input: expected a floating-point tensor, got torch.int64"
    ):
        check_loss(FocalLoss(), t, t)
    with pytest.raises(TypeError, match="target: expected a tensor, got list"):
        check_loss(FocalLoss(), x, [0, 1])  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="reference: expected None or a callable"):
        check_loss(FocalLoss(), x, t, reference=1.0)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="n_random: expected an integer >= 0, got -1"):
        check_loss(FocalLoss(), x, t, n_random=-1)
