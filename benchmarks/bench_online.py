"""Test-then-train throughput of torchkata's online learner against deep-river and plain torch.

Same stream, same MLP (n -> 32 -> 32 -> 2, ReLU), same initial weights, Adam lr 1e-3,
inputs standardised with running statistics, one torch thread; each sample is predicted,
then learned. Contenders:

- ``torchkata`` (NumPy engine: one forward, NumPy backward and Adam on the module's own
  parameter memory);
- ``torchkata, autograd engine`` (``fast=False``: autograd + torch.optim, one forward);
- ``deep-river`` 0.3.4 (``river.preprocessing.StandardScaler() | Classifier(...)``; the
  ``bench`` extra plus ``pip install --no-deps deep-river==0.3.4``);
- ``plain torch loop``: what one writes by hand (a no-grad forward to predict, then
  zero_grad, forward, loss, backward, step).

Streams: River's Phishing (1,250 samples) and the generated Agrawal drift stream
(20,000 samples, :func:`torchkata.data.streams.drift_stream`). Contenders alternate, and
medians over ``--repeats`` runs are printed with the ratio to deep-river.
Targets: >= 5x deep-river's samples/s with at least its accuracy (stretch 10x).

Then claim 2.4: samples/s of one optimizer step per sample (batch 1) against batches of
64, same model, plain torch.

Run: ``python benchmarks/bench_online.py [--repeats N]``.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import numpy as np
import torch
from torch import nn

from torchkata.data.streams import drift_stream
from torchkata.online import OnlineClassifier, RunningStandardizer


def mlp(n_features: int) -> nn.Sequential:
    torch.manual_seed(0)  # the same initial weights for every contender
    return nn.Sequential(
        nn.Linear(n_features, 32), nn.ReLU(), nn.Linear(32, 32), nn.ReLU(), nn.Linear(32, 2)
    )


class PlainLoop:
    """The hand-written loop: predict with a no-grad forward, learn with a second one."""

    def __init__(self, module: nn.Module, n_features: int) -> None:
        self.module = module
        self.optimizer = torch.optim.Adam(module.parameters(), lr=1e-3)
        self.scaler = RunningStandardizer(n_features)
        self.classes: list = []
        self.keys: list[str] | None = None

    def _x(self, x: dict) -> torch.Tensor:
        self.keys = self.keys or list(x)
        v = np.array([x[k] for k in self.keys])
        return torch.tensor(self.scaler.transform_with(v), dtype=torch.float32).unsqueeze(0), v

    def predict_one(self, x: dict):
        if not self.classes:
            return None
        with torch.no_grad():
            logits = self.module(self._x(x)[0])[0, : len(self.classes)]
        return self.classes[int(logits.argmax())]

    def learn_one(self, x: dict, y) -> None:
        if y not in self.classes:
            self.classes.append(y)
        xt, v = self._x(x)
        self.optimizer.zero_grad()
        loss = nn.functional.cross_entropy(self.module(xt), torch.tensor([self.classes.index(y)]))
        loss.backward()
        self.optimizer.step()
        self.scaler.update(v)


def contenders(n_features: int) -> dict[str, Callable[[], object]]:
    made: dict[str, Callable[[], object]] = {
        "torchkata": lambda: OnlineClassifier(mlp(n_features), "adam", lr=1e-3),
        "torchkata, autograd engine": lambda: OnlineClassifier(
            mlp(n_features), "adam", lr=1e-3, fast=False
        ),
        "plain torch loop": lambda: PlainLoop(mlp(n_features), n_features),
    }
    try:
        from deep_river.classification import Classifier
        from river import preprocessing
    except ImportError:
        print("deep-river is not installed: make bench installs it (see the module docstring)")
    else:
        made["deep-river"] = lambda: (
            preprocessing.StandardScaler()
            | Classifier(
                module=mlp(n_features), loss_fn="cross_entropy", optimizer_fn="adam", lr=1e-3
            )
        )
    return made


def prequential(model, data: list[tuple[dict, object]]) -> tuple[float, float]:
    """(accuracy, samples/s) of test-then-train over ``data``."""
    hits = 0
    start = time.perf_counter()
    for x, y in data:
        hits += model.predict_one(x) == y
        model.learn_one(x, y)
    elapsed = time.perf_counter() - start
    return hits / len(data), len(data) / elapsed


def compare(name: str, data: list[tuple[dict, object]], repeats: int) -> None:
    makers = contenders(len(data[0][0]))
    speeds: dict[str, list[float]] = {k: [] for k in makers}
    accuracy: dict[str, float] = {}
    for _ in range(repeats):
        for key, make in makers.items():  # alternate, so machine noise hits all alike
            accuracy[key], speed = prequential(make(), data)
            speeds[key].append(speed)
    peer = statistics.median(speeds["deep-river"]) if "deep-river" in speeds else None
    print(f"\n{name}: {len(data):,} samples, test-then-train, median of {repeats}")
    print(f"{'contender':28s} {'accuracy':>9s} {'samples/s':>10s} {'vs deep-river':>14s}")
    for key in makers:
        median = statistics.median(speeds[key])
        ratio = f"{median / peer:.1f}x" if peer else "—"
        print(f"{key:28s} {accuracy[key]:9.4f} {median:10,.0f} {ratio:>14s}")


def batch_size_claim(data: list[tuple[dict, object]], repeats: int) -> None:
    keys = list(data[0][0])
    x = torch.tensor([[d[0][k] for k in keys] for d in data], dtype=torch.float32)
    x = (x - x.mean(0)) / x.std(0)
    y = torch.tensor([int(d[1]) for d in data])
    print("\nclaim 2.4: one optimizer step per batch, plain torch, same MLP")
    print(f"{'batch size':>10s} {'samples/s':>10s}")
    results = {}
    for batch in (1, 64):
        speeds = []
        for _ in range(repeats):
            model = mlp(len(keys))
            optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
            n = 4096 if batch == 1 else len(x) - len(x) % batch
            start = time.perf_counter()
            for i in range(0, n, batch):
                optimizer.zero_grad()
                nn.functional.cross_entropy(model(x[i : i + batch]), y[i : i + batch]).backward()
                optimizer.step()
            speeds.append(n / (time.perf_counter() - start))
        results[batch] = statistics.median(speeds)
        print(f"{batch:>10d} {results[batch]:10,.0f}")
    print(f"batch 64 processes {results[64] / results[1]:.0f}x more samples/s than batch 1")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(1)
    try:
        from river import datasets
    except ImportError:
        print("River is not installed: pip install 'torchkata[river]' for the Phishing stream")
    else:
        compare("Phishing (River)", list(datasets.Phishing()), args.repeats)
    drift = list(drift_stream(20_000, seed=0))
    compare("Agrawal drift stream (generated)", drift, args.repeats)
    batch_size_claim(drift, args.repeats)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
