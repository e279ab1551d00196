r"""The learning-rate range test (Smith 2015; the "LR finder" of fastai and torch-lr-finder).

Train for ``num_iter`` steps while the learning rate grows exponentially from
``start_lr`` to ``end_lr``:

.. math::
    \text{lr}_k = \text{start} \cdot (\text{end} / \text{start})^{k / (\text{num\_iter} - 1)}

smooth the loss with an exponential moving average,
:math:`s_k = \alpha \ell_k + (1 - \alpha) s_{k-1}` (:math:`\alpha` = ``smooth``,
:math:`s_0 = \ell_0`), and stop once :math:`s_k` exceeds ``diverge_threshold`` times the
best :math:`s` so far. The suggested rate is where the smoothed loss falls fastest (the
most negative ``numpy.gradient`` of :math:`s` over steps, i.e. over log lr), after
dropping the first 10 and last 5 points, as torch-lr-finder suggests.

Reference: L. N. Smith, "Cyclical Learning Rates for Training Neural Networks", 2015
(arXiv:1506.01186), section 3.3.
"""

from __future__ import annotations

import copy
import dataclasses
import math
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

__all__ = ["LRRangeResult", "lr_range_test"]

_SKIP_START = 10  # points dropped before the steepest-descent search (torch-lr-finder)
_SKIP_END = 5


def default_optimizer(params: Iterable[nn.Parameter]) -> torch.optim.Optimizer:
    """The doctor's default optimizer: ``torch.optim.Adam(params, lr=1e-3)``."""
    return torch.optim.Adam(params, lr=1e-3)


@dataclasses.dataclass
class LRRangeResult:
    """The curve of an LR range test.

    Attributes:
        lrs: the learning rate of each step taken, increasing.
        losses: the smoothed loss after each step (same length as ``lrs``).
        raw_losses: the unsmoothed loss of each step.
        suggested_lr: the rate where the smoothed loss falls fastest, or ``None`` when the
            curve is too short (fewer than ``10 + 5 + 2`` points) or never falls.
        diverged: whether the test stopped early because the loss diverged.
    """

    lrs: list[float]
    losses: list[float]
    raw_losses: list[float]
    suggested_lr: float | None
    diverged: bool

    def plot(self) -> Any:
        """The smoothed loss against the learning rate (log scale), as a matplotlib Figure.

        Uses the Agg canvas, so it needs no display. The suggested rate is marked.

        Returns:
            a ``matplotlib.figure.Figure``.
        """
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure

        fig = Figure(figsize=(5, 3.5))
        FigureCanvasAgg(fig)
        ax = fig.add_subplot()
        ax.plot(self.lrs, self.losses, label="smoothed loss")
        if self.suggested_lr is not None:
            ax.axvline(self.suggested_lr, color="red", linestyle="--")
            ax.plot([], [], color="red", linestyle="--", label=f"suggested {self.suggested_lr:.2g}")
        ax.set_xscale("log")
        ax.set_xlabel("learning rate")
        ax.set_ylabel("loss")
        ax.set_title("LR range test")
        ax.legend()
        fig.tight_layout()
        return fig


def _is_batch(obj: Any) -> bool:
    return (
        isinstance(obj, (tuple, list)) and len(obj) == 2 and all(isinstance(t, Tensor) for t in obj)
    )


def _batches(batch_or_loader: Any) -> Iterator[tuple[Tensor, Tensor]]:
    """The same batch forever, or the loader's batches, restarting it when exhausted."""
    if _is_batch(batch_or_loader):
        while True:
            yield batch_or_loader[0], batch_or_loader[1]
    while True:
        empty = True
        for item in batch_or_loader:
            if not _is_batch(item):
                raise TypeError(
                    "batch_or_loader: expected a loader of (input, target) tensor pairs, "
                    f"got an item of type {type(item).__name__}"
                )
            empty = False
            yield item[0], item[1]
        if empty:
            raise ValueError("batch_or_loader: expected a non-empty loader, got no batches")


def suggest_lr(lrs: list[float], losses: list[float]) -> float | None:
    """The rate of steepest descent of ``losses``, as torch-lr-finder's ``suggestion``.

    Args:
        lrs: learning rates, increasing.
        losses: smoothed losses, one per rate.

    Returns:
        ``lrs[k]`` at the most negative ``numpy.gradient(losses)`` over
        ``k in [10, len - 5)``, or ``None`` when that range has fewer than two points or
        the loss never falls there.

    Examples:
        >>> lrs = [10 ** (k / 10 - 5) for k in range(40)]
        >>> losses = [1.0] * 20 + [0.5] * 20  # one drop, between steps 19 and 20
        >>> round(suggest_lr(lrs, losses), 6)
        0.000794
    """
    lo, hi = _SKIP_START, len(losses) - _SKIP_END
    if hi - lo < 2:
        return None
    window = np.asarray(losses[lo:hi], dtype=np.float64)
    if not np.isfinite(window).all():
        return None
    slope = np.gradient(window)
    k = int(slope.argmin())
    if slope[k] >= 0:
        return None
    return float(lrs[lo + k])


def lr_range_test(
    model: nn.Module,
    batch_or_loader: tuple[Tensor, Tensor] | Iterable[tuple[Tensor, Tensor]],
    loss_fn: Callable[[Tensor, Tensor], Tensor],
    optimizer_factory: Callable[[Iterable[nn.Parameter]], torch.optim.Optimizer] | None = None,
    *,
    start_lr: float = 1e-7,
    end_lr: float = 10,
    num_iter: int = 100,
    smooth: float = 0.05,
    diverge_threshold: float = 5.0,
    seed: int = 0,
) -> LRRangeResult:
    r"""Run the LR range test on a copy of ``model``.

    See the module docstring for the schedule, smoothing and suggestion rule. The model is
    deep-copied (the caller's model, its gradients and the global torch RNG are left as
    they were) and trained in train mode on its own device. The optimizer's learning rate
    is overwritten in every parameter group at every step.

    Args:
        model: the model to test.
        batch_or_loader: one ``(input, target)`` batch, used at every step, or an iterable
            of such batches, cycled.
        loss_fn: ``loss_fn(model(input), target)`` gives a scalar loss.
        optimizer_factory: builds the optimizer from the parameters. Default: ``None``,
            meaning ``torch.optim.Adam(params, lr=1e-3)``.
        start_lr: the first rate. Default: ``1e-7``.
        end_lr: the last rate. Default: ``10``.
        num_iter: the number of steps at most. Default: ``100``.
        smooth: the weight of the new loss in the moving average, in (0, 1].
            Default: ``0.05``.
        diverge_threshold: stop when the smoothed loss exceeds this times the best.
            Default: ``5.0``.
        seed: ``torch.manual_seed`` before copying the model. Default: ``0``.

    Returns:
        an :class:`LRRangeResult` with ``lrs``, ``losses``, ``suggested_lr`` and ``plot()``.

    Examples:
        >>> _ = torch.manual_seed(0)
        >>> x, y = torch.randn(32, 4), torch.randint(0, 3, (32,))
        >>> model = nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Linear(16, 3))
        >>> result = lr_range_test(model, (x, y), nn.CrossEntropyLoss(), num_iter=50)
        >>> len(result.lrs) == len(result.losses), result.lrs[0]
        (True, 1e-07)
        >>> 1e-5 < result.suggested_lr < 10
        True
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model: expected an nn.Module, got {type(model).__name__}")
    if not callable(loss_fn):
        raise TypeError(f"loss_fn: expected a callable, got {type(loss_fn).__name__}")
    if optimizer_factory is not None and not callable(optimizer_factory):
        kind = type(optimizer_factory).__name__
        raise TypeError(f"optimizer_factory: expected a callable or None, got {kind}")
    if not (isinstance(start_lr, (int, float)) and start_lr > 0):
        raise ValueError(f"start_lr: expected a positive number, got {start_lr!r}")
    if not (isinstance(end_lr, (int, float)) and end_lr > start_lr):
        raise ValueError(f"end_lr: expected a number > start_lr={start_lr!r}, got {end_lr!r}")
    if isinstance(num_iter, bool) or not isinstance(num_iter, int) or num_iter < 2:
        raise ValueError(f"num_iter: expected an integer >= 2, got {num_iter!r}")
    if not 0 < smooth <= 1:
        raise ValueError(f"smooth: expected a number in (0, 1], got {smooth!r}")
    if not diverge_threshold > 1:
        raise ValueError(f"diverge_threshold: expected a number > 1, got {diverge_threshold!r}")
    if not _is_batch(batch_or_loader) and not isinstance(batch_or_loader, Iterable):
        raise TypeError(
            "batch_or_loader: expected an (input, target) pair of tensors or an iterable of "
            f"them, got {type(batch_or_loader).__name__}"
        )
    factory = default_optimizer if optimizer_factory is None else optimizer_factory
    device = _device(model)
    devices = [device] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        net = copy.deepcopy(model).train()
        net.zero_grad(set_to_none=True)
        optimizer = factory(net.parameters())
        ratio = end_lr / start_lr
        lrs: list[float] = []
        losses: list[float] = []
        raw: list[float] = []
        best = math.inf
        diverged = False
        batches = _batches(batch_or_loader)
        for k in range(num_iter):
            lr = start_lr * ratio ** (k / (num_iter - 1))
            for group in optimizer.param_groups:
                group["lr"] = lr
            x, y = next(batches)
            x, y = x.to(device), y.to(device)
            optimizer.zero_grad(set_to_none=True)
            loss = loss_fn(net(x), y)
            loss.backward()
            optimizer.step()
            value = float(loss.detach())
            smoothed = value if k == 0 else smooth * value + (1 - smooth) * losses[-1]
            lrs.append(lr)
            raw.append(value)
            losses.append(smoothed)
            if not math.isfinite(smoothed) or smoothed > diverge_threshold * best:
                diverged = True
                break
            best = min(best, smoothed)
    return LRRangeResult(lrs, losses, raw, suggest_lr(lrs, losses), diverged)


def _device(model: nn.Module) -> torch.device:
    for tensor in [*model.parameters(), *model.buffers()]:
        return tensor.device
    return torch.device("cpu")
