"""lr_range_test: the LR finder on a digits MLP."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from torchkata.data import load_digits
from torchkata.doctor import lr_range_test
from torchkata.doctor.gallery import MLP


def _loader(batch_size: int = 64):
    split = load_digits()
    data = torch.utils.data.TensorDataset(split.x_train, split.y_train)
    generator = torch.Generator().manual_seed(0)
    return torch.utils.data.DataLoader(data, batch_size, shuffle=True, generator=generator)


def test_adam_on_digits_mlp_suggests_a_sensible_rate() -> None:
    torch.manual_seed(0)
    result = lr_range_test(MLP(), _loader(), nn.CrossEntropyLoss())
    assert 1e-4 <= result.suggested_lr <= 1e-1
    assert len(result.lrs) == len(result.losses) == len(result.raw_losses)
    assert result.lrs == sorted(result.lrs) and result.lrs[0] == pytest.approx(1e-7)
    # Adam blows up well before lr = 10: the test stops at divergence.
    assert result.diverged and result.lrs[-1] < 10


def test_schedule_smoothing_and_model_untouched() -> None:
    torch.manual_seed(0)
    model = MLP()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    split = load_digits()
    batch = (split.x_train[:32], split.y_train[:32])
    result = lr_range_test(
        model,
        batch,
        nn.CrossEntropyLoss(),
        lambda p: torch.optim.SGD(p, lr=0.1),
        start_lr=1e-5,
        end_lr=1e-3,
        num_iter=21,
        smooth=0.5,
    )
    assert not result.diverged and len(result.lrs) == 21
    expected = [1e-5 * 100 ** (k / 20) for k in range(21)]
    assert result.lrs == pytest.approx(expected)
    smoothed = result.raw_losses[0]
    for raw, got in zip(result.raw_losses[1:], result.losses[1:], strict=True):
        smoothed = 0.5 * raw + 0.5 * smoothed
        assert math.isclose(got, smoothed, rel_tol=1e-12)
    for key, value in model.state_dict().items():
        assert torch.equal(before[key], value)


def test_plot_is_a_figure() -> None:
    from matplotlib.figure import Figure

    torch.manual_seed(0)
    x, y = torch.randn(16, 4), torch.randint(0, 3, (16,))
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3))
    result = lr_range_test(model, (x, y), nn.CrossEntropyLoss(), num_iter=30)
    fig = result.plot()
    assert isinstance(fig, Figure) and fig.axes[0].get_xscale() == "log"


@pytest.mark.parametrize(
    ("kwargs", "error", "argument"),
    [
        ({"start_lr": 0}, ValueError, "start_lr"),
        ({"end_lr": 1e-8}, ValueError, "end_lr"),
        ({"num_iter": 1}, ValueError, "num_iter"),
        ({"smooth": 0}, ValueError, "smooth"),
        ({"diverge_threshold": 1}, ValueError, "diverge_threshold"),
        ({"batch_or_loader": 3}, TypeError, "batch_or_loader"),
        ({"batch_or_loader": []}, ValueError, "batch_or_loader"),
    ],
)
def test_bad_arguments(kwargs, error, argument) -> None:
    args = {
        "model": nn.Linear(4, 3),
        "batch_or_loader": (torch.randn(8, 4), torch.randint(0, 3, (8,))),
        "loss_fn": nn.CrossEntropyLoss(),
        **kwargs,
    }
    with pytest.raises(error, match=rf"^{argument}: expected"):
        lr_range_test(**args)
