"""Executable FAQ, tip 1 (custom losses): claims 1.1–1.5 of FAQ_CLAIMS.md on real computation."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from torchkata.data import load_digits
from torchkata.losses import CompositeLoss, DiceLoss, FocalLoss, SquaredErrorLoss, check_loss
from torchkata.losses.recipe import NaiveFocalLoss


class DocumentSquaredErrorLoss(nn.Module):
    """The source document's own example, verbatim."""

    def __init__(self):
        super().__init__()

    def forward(self, input, target):
        return ((input - target) ** 2).mean()


# --------------------------------------------------------------------------- 1.1


def test_1_1_a_module_loss_trains_a_model_in_the_documents_loop():
    digits = load_digits()
    x = digits.x_train.flatten(1)
    y = F.one_hot(digits.y_train, 10).float()  # regress the one-hot label
    for loss_fn in (DocumentSquaredErrorLoss(), SquaredErrorLoss()):
        torch.manual_seed(0)
        model = nn.Linear(64, 10)
        optimizer = torch.optim.SGD(model.parameters(), lr=0.01)  # the document's settings
        dataset = list(zip(x.split(32), y.split(32), strict=True))
        first = loss_fn(model(x), y).item()
        for _ in range(20):
            for input, target in dataset:  # the document's loop, line for line
                optimizer.zero_grad()
                output = model(input)
                loss = loss_fn(output, target)
                loss.backward()
                optimizer.step()
        last = loss_fn(model(x), y).item()
        assert last < first / 2.5  # measured: 0.205 -> 0.064
        accuracy = (model(digits.x_test.flatten(1)).argmax(1) == digits.y_test).float().mean()
        assert accuracy > 0.5  # measured 0.67 (chance: 0.1); plain SGD at lr 0.01 is slow


# --------------------------------------------------------------------------- 1.2


def test_1_2_autograd_gradients_match_finite_differences_in_float64():
    gen = torch.Generator().manual_seed(0)
    logits = torch.randn(6, 5, dtype=torch.float64, generator=gen, requires_grad=True)
    classes = torch.randint(0, 5, (6,), generator=gen)
    values = torch.randn(6, 5, dtype=torch.float64, generator=gen)
    masks = (torch.rand(6, 5, generator=gen) > 0.5).double()
    cases = [
        (SquaredErrorLoss(), values),
        (FocalLoss(gamma=2.0), classes),
        (FocalLoss(gamma=0.5, alpha=0.25), masks),  # binary; gamma < 1 is the delicate case
        (DiceLoss(), masks),
        (DocumentSquaredErrorLoss(), values),
    ]
    for loss_fn, target in cases:
        assert torch.autograd.gradcheck(lambda x, f=loss_fn, t=target: f(x, t), (logits,))


# --------------------------------------------------------------------------- 1.3


def test_1_3_the_naive_focal_formula_overflows_where_the_stable_one_does_not():
    target = torch.tensor([0, 1, 2, 3])
    logits = torch.zeros(4, 5)
    logits[torch.arange(4), (target + 1) % 5] = 1e4  # confidently wrong: softmax(p_true) = 0
    for loss_fn, finite in ((NaiveFocalLoss(2.0), False), (FocalLoss(gamma=2.0), True)):
        x = logits.clone().requires_grad_()
        value = loss_fn(x, target)
        value.backward()
        assert bool(torch.isfinite(value)) is finite
        assert bool(torch.isfinite(x.grad).all()) is finite
    # the stable value is the right one: cross-entropy of a 1e4 margin, times (1 - 0)^2
    torch.testing.assert_close(FocalLoss(gamma=2.0)(logits, target), torch.tensor(1e4))


def test_1_3_naive_binary_cross_entropy_takes_log_of_zero_and_the_logit_form_does_not():
    logits = torch.tensor([-200.0, -50.0, 50.0, 200.0], requires_grad=True)
    target = torch.tensor([1.0, 1.0, 0.0, 0.0])  # all confidently wrong
    p = torch.sigmoid(logits)
    naive = -(target * torch.log(p) + (1 - target) * torch.log(1 - p)).mean()
    assert torch.isinf(naive)  # sigmoid(-200) rounds to 0 in float32: log(0)
    stable = FocalLoss(gamma=0.0)(logits, target)  # binary focal at gamma 0 = BCE with logits
    torch.testing.assert_close(stable, F.binary_cross_entropy_with_logits(logits, target))
    torch.testing.assert_close(stable, torch.tensor(125.0))  # mean of the four margins


def test_1_3_dice_without_smoothing_divides_zero_by_zero_on_empty_masks():
    logits = torch.full((2, 1, 4, 4), -200.0)  # predicts nothing: sigmoid rounds to exactly 0
    empty = torch.zeros(2, 1, 4, 4)  # and there is nothing: a perfect answer
    assert torch.isnan(DiceLoss(smooth=0.0)(logits, empty))
    value = DiceLoss(smooth=1.0)(logits, empty)
    assert torch.isfinite(value) and value.item() < 1e-6  # perfect answer, zero loss


# --------------------------------------------------------------------------- 1.4


def test_1_4_a_weighted_sum_of_a_standard_and_a_custom_loss_trains_and_reports_each_term():
    digits = load_digits()
    x, y = digits.x_train.flatten(1), digits.y_train
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10))
    loss_fn = CompositeLoss(
        {"ce": (nn.CrossEntropyLoss(), 1.0), "focal": (FocalLoss(gamma=2.0), 0.5)}
    )
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    history = []
    for _ in range(3):
        for xb, yb in zip(x.split(64), y.split(64), strict=True):
            total = loss_fn(model(xb), yb)
            optimizer.zero_grad()
            total.backward()
            optimizer.step()
            terms = loss_fn.last
            assert set(terms) == {"ce", "focal"}
            assert total.item() == torch.tensor(terms["ce"] + 0.5 * terms["focal"]).item()
            history.append(terms)
    for name in ("ce", "focal"):
        assert history[-1][name] < history[0][name] / 5  # each term fell


# --------------------------------------------------------------------------- 1.5


def test_1_5_check_loss_finds_the_unstable_loss_and_passes_the_stable_one():
    gen = torch.Generator().manual_seed(0)
    logits = 3 * torch.randn(16, 10, generator=gen)
    target = torch.randint(0, 10, (16,), generator=gen)
    stable = FocalLoss(gamma=2.0)
    report = check_loss(NaiveFocalLoss(2.0), logits, target, reference=stable)
    assert not report.ok
    assert {r.name for r in report.failures} == {"finite"}  # right on ordinary inputs
    assert any("1e4" in r.case for r in report.failures)
    assert check_loss(stable, logits, target).ok


class _MeanOverClasses(nn.Module):
    """Cross-entropy whose 'mean' wrongly divides by N * C instead of N."""

    def __init__(self, reduction: str = "mean"):
        super().__init__()
        self.reduction = reduction

    def forward(self, input, target):
        losses = F.cross_entropy(input, target, reduction="none")
        if self.reduction == "none":
            return losses
        if self.reduction == "sum":
            return losses.sum()
        return losses.sum() / input.numel()


class _SignSlip(nn.Module):
    """Label-smoothing cross-entropy with the smoothing term's sign flipped."""

    def forward(self, input, target):
        log_p = F.log_softmax(input, dim=1)
        nll = -log_p.gather(1, target[:, None]).squeeze(1)
        return (0.9 * nll + 0.1 * log_p.mean(dim=1)).mean()


def test_1_5_check_loss_finds_a_wrong_reduction_and_a_disagreement_with_the_reference():
    gen = torch.Generator().manual_seed(1)
    logits = torch.randn(8, 4, generator=gen)
    target = torch.randint(0, 4, (8,), generator=gen)
    report = check_loss(_MeanOverClasses(), logits, target)
    assert [r.name for r in report.failures] == ["reduction 'mean'"]
    report = check_loss(
        _SignSlip(), logits, target, reference=nn.CrossEntropyLoss(label_smoothing=0.2)
    )
    assert not report.ok and {r.name for r in report.failures} == {"reference"}
