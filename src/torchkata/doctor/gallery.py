"""A gallery of small digits models, each with one planted bug, for :func:`diagnose`.

Each :class:`GalleryCase` builds the keyword arguments of :func:`diagnose` (a freshly
initialised model, a 64-image batch of the scikit-learn digits, the loss, and where the
bug needs them ``train_step``, ``eval_data`` and ``train_data``), and names the check
that must fail (``None`` for the healthy models).
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from torchkata.data import Split, load_digits

__all__ = ["GALLERY", "GalleryCase"]

BATCH_SIZE = 64
HIDDEN = 256
N_CLASSES = 10
N_LEAKED = 20  # training images planted in the leaked test set


@dataclasses.dataclass(frozen=True)
class GalleryCase:
    """One model to diagnose, and the check that must catch its bug.

    Attributes:
        name: a short name, e.g. ``'unused layer'``.
        description: the planted bug, in a sentence.
        expected: the check that must fail, or ``None`` for a healthy model.
        build: returns the keyword arguments of :func:`diagnose`.
    """

    name: str
    description: str
    expected: str | None
    build: Callable[[], dict[str, Any]]


@functools.lru_cache(maxsize=1)
def _digits() -> Split:
    return load_digits()


def _batch() -> tuple[Tensor, Tensor]:
    split = _digits()
    return split.x_train[:BATCH_SIZE], split.y_train[:BATCH_SIZE]


# ---------------------------------------------------------------------------------------
# Models
# ---------------------------------------------------------------------------------------


class MLP(nn.Module):
    """(N, 1, 8, 8) images -> (N, 10) logits through one hidden ReLU layer."""

    def __init__(self, hidden: int = HIDDEN) -> None:
        super().__init__()
        self.fc1 = nn.Linear(64, hidden)
        self.relu = nn.ReLU()
        self.fc2 = nn.Linear(hidden, N_CLASSES)

    def hidden(self, x: Tensor) -> Tensor:
        return self.relu(self.fc1(x.flatten(1)))  # (N, H)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc2(self.hidden(x))


class CNN(nn.Module):
    """(N, 1, 8, 8) images -> (N, 10) logits: two 3x3 convolutions, a pool, a linear head."""

    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 16, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),  # (N, 16, 4, 4)
            nn.Conv2d(16, 32, 3, padding=1),
            nn.ReLU(),
        )
        self.head = nn.Linear(32 * 4 * 4, N_CLASSES)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.features(x).flatten(1))


class Log(nn.Module):
    """Elementwise natural log: ``-inf`` at 0, NaN below."""

    def forward(self, x: Tensor) -> Tensor:
        return torch.log(x)


class LogOfReLUMLP(MLP):
    """Bug: a log after the ReLU, so every inactive unit gives ``-inf``."""

    def __init__(self) -> None:
        super().__init__()
        self.log = Log()

    def forward(self, x: Tensor) -> Tensor:
        return self.fc2(self.log(self.hidden(x)))


class UnusedLayerMLP(MLP):
    """Bug: ``self.extra`` is defined but ``forward`` never calls it."""

    def __init__(self) -> None:
        super().__init__()
        self.extra = nn.Linear(HIDDEN, HIDDEN)


class DeepMLP(nn.Module):
    """Two hidden ReLU layers."""

    def __init__(self) -> None:
        super().__init__()
        self.fc1 = nn.Linear(64, HIDDEN)
        self.relu1 = nn.ReLU()
        self.fc2 = nn.Linear(HIDDEN, HIDDEN)
        self.relu2 = nn.ReLU()
        self.fc3 = nn.Linear(HIDDEN, N_CLASSES)

    def forward(self, x: Tensor) -> Tensor:
        h = self.relu1(self.fc1(x.flatten(1)))  # (N, H)
        return self.fc3(self.relu2(self.fc2(h)))


class BatchMixingMLP(MLP):
    """Bug: ``h.reshape(H, N).t()`` where ``h`` was meant; the shape is right, rows mix."""

    def forward(self, x: Tensor) -> Tensor:
        h = self.hidden(x)
        N, H = h.shape
        h = h.reshape(H, N).t()  # (N, H) again, but each row now holds several samples
        return self.fc2(h)


class ScaledLogitsMLP(MLP):
    """Bug: logits multiplied by 100, so the initial predictions are confidently wrong."""

    def forward(self, x: Tensor) -> Tensor:
        return 100.0 * super().forward(x)


class NumpyNoise(nn.Module):
    """Adds Gaussian noise from numpy's global RNG, which ``torch.manual_seed`` ignores."""

    def __init__(self, std: float = 1e-2) -> None:
        super().__init__()
        self.std = std

    def forward(self, x: Tensor) -> Tensor:
        noise = np.random.normal(0.0, self.std, size=tuple(x.shape))
        return x + torch.as_tensor(noise, dtype=x.dtype, device=x.device)


class NoisyMLP(MLP):
    """Bug: noise from an unseeded generator (numpy's) on the hidden layer."""

    def __init__(self) -> None:
        super().__init__()
        self.noise = NumpyNoise()

    def forward(self, x: Tensor) -> Tensor:
        return self.fc2(self.noise(self.hidden(x)))


# ---------------------------------------------------------------------------------------
# Training steps
# ---------------------------------------------------------------------------------------

_cross_entropy = nn.CrossEntropyLoss()


def train_step(model: nn.Module, optimizer: torch.optim.Optimizer, batch: tuple) -> Tensor:
    """A correct step: zero_grad, forward, loss, backward, step."""
    x, y = batch
    optimizer.zero_grad()
    loss = _cross_entropy(model(x), y)
    loss.backward()
    optimizer.step()
    return loss.detach()


def train_step_without_zero_grad(
    model: nn.Module, optimizer: torch.optim.Optimizer, batch: tuple
) -> Tensor:
    """Bug: no ``optimizer.zero_grad()``, so gradients add up across steps."""
    x, y = batch
    loss = _cross_entropy(model(x), y)
    loss.backward()
    optimizer.step()
    return loss.detach()


# ---------------------------------------------------------------------------------------
# Cases
# ---------------------------------------------------------------------------------------


def _build(model_class: type[nn.Module], **extra: Any) -> Callable[[], dict[str, Any]]:
    def build() -> dict[str, Any]:
        torch.manual_seed(0)
        model = model_class()
        return {"model": model, "batch": _batch(), "loss_fn": nn.CrossEntropyLoss(), **extra}

    return build


def _healthy_mlp() -> dict[str, Any]:
    split = _digits()
    kwargs = _build(MLP)()
    kwargs.update(
        train_step=train_step,
        eval_data=(split.x_test, split.y_test),
        train_data=(split.x_train, split.y_train),
    )
    return kwargs


def _dead_relu() -> dict[str, Any]:
    kwargs = _build(DeepMLP)()
    with torch.no_grad():
        kwargs["model"].fc2.bias.fill_(-100.0)  # every pre-activation < 0: all units dead
    return kwargs


def _leaked() -> dict[str, Any]:
    split = _digits()
    kwargs = _build(MLP)()
    # Overwrite every 18th test image with a training image: 20 leaked samples.
    x_test, y_test = split.x_test.clone(), split.y_test.clone()
    where = torch.arange(N_LEAKED) * (x_test.shape[0] // N_LEAKED)
    source = torch.arange(N_LEAKED) * 7
    x_test[where], y_test[where] = split.x_train[source], split.y_train[source]
    kwargs.update(eval_data=(x_test, y_test), train_data=(split.x_train, split.y_train))
    return kwargs


GALLERY: list[GalleryCase] = [
    GalleryCase(
        "healthy MLP",
        "64-64-10 ReLU MLP with a correct train_step and the held-out test set.",
        None,
        _healthy_mlp,
    ),
    GalleryCase(
        "healthy CNN", "Two 3x3 convolutions, a max pool and a linear head.", None, _build(CNN)
    ),
    GalleryCase(
        "NaN op",
        "torch.log of a ReLU output: -inf wherever a unit is inactive, NaN after fc2.",
        "finite",
        _build(LogOfReLUMLP),
    ),
    GalleryCase(
        "unused layer",
        "A Linear layer defined in __init__ that forward never calls.",
        "gradient_flow",
        _build(UnusedLayerMLP),
    ),
    GalleryCase(
        "dead ReLU layer",
        "The second hidden layer's bias set to -100: every unit of relu2 is dead.",
        "gradient_flow",
        _dead_relu,
    ),
    GalleryCase(
        "batch-mixing reshape",
        "h.reshape(H, N).t() instead of h: right shape, but each row mixes samples.",
        "batch_independence",
        _build(BatchMixingMLP),
    ),
    GalleryCase(
        "too-large initial loss",
        "Logits multiplied by 100: confidently wrong at init, loss far above ln 10.",
        "initial_loss",
        _build(ScaledLogitsMLP),
    ),
    GalleryCase(
        "missing zero_grad",
        "A train_step without optimizer.zero_grad(): gradients accumulate across steps.",
        "zero_grad",
        _build(MLP, train_step=train_step_without_zero_grad),
    ),
    GalleryCase(
        "leaked test set",
        f"{N_LEAKED} training images copied into the test set.",
        "leakage",
        _leaked,
    ),
    GalleryCase(
        "non-reproducible",
        "Noise from numpy's global RNG, which torch.manual_seed does not seed.",
        "reproducibility",
        _build(NoisyMLP),
    ),
]
