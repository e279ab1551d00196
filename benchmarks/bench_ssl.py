"""SimCLR training-step throughput: torchkata's SimCLR against a plain PyTorch loop.

The issue's peer is lightly's ``NTXentLoss`` and projection head; lightly imports
torchvision, and PyPI's torchvision does not import beside torch 2.13 on this machine, so
the script tries lightly and, when it cannot import it, says so and compares against the
plain loop that SimCLR tutorials write: the textbook NT-Xent (similarity matrix, the
diagonal masked with -inf, cross-entropy against the positives' indices) after the same
encoder and projection head, on the same views. Both losses are first checked equal in
float64 on random inputs.

Same encoder (``Conv1dEncoder`` on MNIST-1D, 128 features), projection 128 → 128 → 64,
batches of 256 signals (512 views), Adam, one thread; the contenders alternate and the
median step time of ``--repeats`` rounds is printed with samples/s.

Run: ``python benchmarks/bench_ssl.py [--repeats N] [--steps N]``.
"""

from __future__ import annotations

import argparse
import copy
import statistics
import time

import torch
import torch.nn.functional as F
from torch import nn

from torchkata.data.mnist1d import load_mnist1d
from torchkata.ssl import Conv1dEncoder, SimCLR, augment_signal


def textbook_nt_xent(z_a: torch.Tensor, z_b: torch.Tensor, temperature: float) -> torch.Tensor:
    """NT-Xent as SimCLR tutorials write it (the peer's formula)."""
    z = F.normalize(torch.cat([z_a, z_b]), dim=1)  # (2N, D)
    n = len(z_a)
    sim = z @ z.T / temperature  # (2N, 2N)
    sim.fill_diagonal_(float("-inf"))
    targets = torch.cat([torch.arange(n, 2 * n), torch.arange(n)])
    return F.cross_entropy(sim, targets)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--steps", type=int, default=20)
    args = parser.parse_args()
    torch.set_num_threads(1)
    try:
        from lightly.loss import NTXentLoss as LightlyNTXent  # noqa: F401
    except Exception as exc:  # ImportError, or torchvision failing inside lightly
        print(f"lightly cannot be imported here ({type(exc).__name__}: {exc}); comparing "
              "against the plain loop instead")  # fmt: skip

    gen = torch.Generator().manual_seed(0)
    za, zb = (
        torch.randn(256, 64, generator=gen).double(),
        torch.randn(256, 64, generator=gen).double(),
    )
    ours = SimCLR(nn.Identity(), feature_dim=64, projection_dim=64, temperature=0.2).loss_fn
    gap = (ours(za, zb) - textbook_nt_xent(za, zb, 0.2)).abs().item()
    print(f"NT-Xent, float64, 256 pairs: |torchkata - textbook| = {gap:.1e}")

    data = load_mnist1d()
    torch.manual_seed(0)
    model = SimCLR(Conv1dEncoder(40, 32, 128), 128, projection_dim=64, temperature=0.2)
    plain = copy.deepcopy(model)  # same weights
    opt_ours = torch.optim.Adam(model.parameters(), lr=2e-3)
    opt_plain = torch.optim.Adam(plain.parameters(), lr=2e-3)
    views = [
        (augment_signal(x, generator=gen), augment_signal(x, generator=gen))
        for x in data.x_train[: 256 * args.steps].split(256)
    ]

    def step_ours(a, b):
        loss = model(a, b)
        opt_ours.zero_grad()
        loss.backward()
        opt_ours.step()

    def step_plain(a, b):
        z_a = plain.projector(plain.encoder(a))
        z_b = plain.projector(plain.encoder(b))
        loss = textbook_nt_xent(z_a, z_b, 0.2)
        opt_plain.zero_grad()
        loss.backward()
        opt_plain.step()

    times: dict[str, list[float]] = {"torchkata SimCLR": [], "plain loop, textbook NT-Xent": []}
    for _ in range(args.repeats):
        for name, step in (
            ("torchkata SimCLR", step_ours),
            ("plain loop, textbook NT-Xent", step_plain),
        ):
            start = time.perf_counter()
            for a, b in views:
                step(a, b)
            times[name].append((time.perf_counter() - start) / len(views))
    base = statistics.median(times["plain loop, textbook NT-Xent"])
    print(f"\n{'contender':32s} {'ms/step':>8s} {'samples/s':>10s} {'vs plain':>9s}")
    for name, values in times.items():
        median = statistics.median(values)
        print(f"{name:32s} {1e3 * median:8.2f} {256 / median:10,.0f} {base / median:8.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
