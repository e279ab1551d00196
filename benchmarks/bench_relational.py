"""Relation Network training speed on Sort-of-CLEVR: torchkata against the public reference.

The architecture of the most used public PyTorch Relation Network (kimhc6028's
``relational-networks``) at its settings: 75x75 images, 4 conv layers of 24 channels
(stride 2, ReLU, BatchNorm), 25 objects with coordinates, g of 4 x 256 on all 625
ordered pairs with the 11-float question, sum, f 256-256-10 with dropout, Adam 1e-4,
batch 64. The ``reference`` contender is written here the way that code builds the pairs:
repeat each object 25 times along two axes, concatenate the question, concatenate the
two, and run g on a (64 * 625, 63) matrix. The torchkata contenders train
:class:`~torchkata.relational.RelationNetwork` with the same layer sizes:

- ``naive``: the same pair matrix built from broadcast views;
- ``factored``: g's first layer computed per object and broadcast-summed over the pairs;
- ``bf16``: factored, under bfloat16 autocast (AMX/AVX512-BF16 matmuls on CPUs that have
  them);
- ``bf16, 16 images x 4 q``: the same 64 questions per step, asked four at a time about 16
  images, so that the CNN runs once per image (the recipe's batches);
- ``g 4x128 ... (recipe)``: the recipe's full-preset model, g half as wide: not the
  reference's architecture, shown for scale.

Each thread count runs every contender in shuffled order per round; medians of
``--repeats`` rounds of ``--iters`` steps, samples/s, the paired ratio to the reference,
and GFLOP/s achieved (each contender's FLOPs of one training step, counted by
``torch.utils.flop_counter``). Target: >= 1.5x the reference's samples/s.

Run: ``python benchmarks/bench_relational.py [--repeats 5] [--iters 3] [--threads 1 2]``.
"""

from __future__ import annotations

import argparse
import contextlib
import random
import statistics
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from torchkata.relational import RelationNetwork

BATCH, OBJECTS, QUESTION = 64, 25, 11


class ReferenceRN(nn.Module):
    """The public reference's layers and forward pass (pairs built by repeat and cat)."""

    def __init__(self) -> None:
        super().__init__()
        self.convs = nn.ModuleList(
            [nn.Conv2d(3 if i == 0 else 24, 24, 3, stride=2, padding=1) for i in range(4)]
        )
        self.norms = nn.ModuleList([nn.BatchNorm2d(24) for _ in range(4)])
        self.g = nn.ModuleList([nn.Linear(63, 256)] + [nn.Linear(256, 256) for _ in range(3)])
        self.f = nn.ModuleList([nn.Linear(256, 256), nn.Linear(256, 256), nn.Linear(256, 10)])
        grid = torch.tensor([[(i % 5 - 2) / 2.0, (i // 5 - 2) / 2.0] for i in range(OBJECTS)])
        self.register_buffer("coords", grid)  # (25, 2) in [-1, 1]

    def forward(self, images: torch.Tensor, questions: torch.Tensor) -> torch.Tensor:
        x = images
        for conv, norm in zip(self.convs, self.norms, strict=True):
            x = norm(F.relu(conv(x)))
        mb = x.shape[0]
        x = x.view(mb, 24, OBJECTS).permute(0, 2, 1)  # (B, 25, 24)
        x = torch.cat([x, self.coords.expand(mb, -1, -1)], 2)  # (B, 25, 26)
        q = questions.unsqueeze(1).repeat(1, OBJECTS, 1).unsqueeze(2)  # (B, 25, 1, 11)
        x_i = x.unsqueeze(1).repeat(1, OBJECTS, 1, 1)  # (B, 25, 25, 26)
        x_j = torch.cat([x.unsqueeze(2), q], 3).repeat(1, 1, OBJECTS, 1)  # (B, 25, 25, 37)
        pairs = torch.cat([x_i, x_j], 3).view(mb * OBJECTS * OBJECTS, 63)
        for layer in self.g:
            pairs = F.relu(layer(pairs))
        x = pairs.view(mb, OBJECTS * OBJECTS, 256).sum(1)
        x = F.relu(self.f[0](x))
        x = F.dropout(F.relu(self.f[1](x)), training=self.training)
        return F.log_softmax(self.f[2](x), dim=1)


def contender(kind: str, images_per_batch: int = BATCH, g_hidden: int = 256) -> Callable[[], None]:
    """One training step of ``kind`` on a fixed random batch of 64 questions."""
    torch.manual_seed(0)
    k = BATCH // images_per_batch
    images = torch.rand(images_per_batch, 3, 75, 75)
    questions = torch.rand(images_per_batch, k, QUESTION)
    answers = torch.randint(0, 10, (images_per_batch, k))
    bf16 = kind.startswith("bf16")
    if kind == "reference":
        model: nn.Module = ReferenceRN()
    else:
        model = RelationNetwork(factored=kind != "naive", g_hidden=g_hidden)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)
    autocast = (
        (lambda: torch.autocast("cpu", dtype=torch.bfloat16)) if bf16 else contextlib.nullcontext
    )

    def step() -> None:
        with autocast():
            if kind == "reference":
                loss = F.nll_loss(model(images, questions[:, 0]), answers[:, 0])
            else:
                logits = model(images, questions)  # (B, K, 10)
                loss = F.cross_entropy(logits.float().flatten(0, 1), answers.flatten())
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    return step


def step_flops(step: Callable[[], None]) -> int:
    counter = FlopCounterMode(display=False)
    with counter:
        step()
    return counter.get_total_flops()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=5, help="timing rounds (default 5)")
    parser.add_argument("--iters", type=int, default=3, help="steps per round (default 3)")
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2],
                        help="torch thread counts to measure (default 1 2)")  # fmt: skip
    args = parser.parse_args()
    print(f"torch {torch.__version__}, CPU {torch.backends.cpu.get_cpu_capability()}")
    print("Relation Network, Sort-of-CLEVR reference architecture, batch 64 questions\n")
    specs = {
        "reference (public, fp32)": ("reference", BATCH),
        "torchkata naive fp32": ("naive", BATCH),
        "torchkata factored fp32": ("factored", BATCH),
        "torchkata factored bf16": ("bf16", BATCH),
        "torchkata bf16, 16 images x 4 q": ("bf16", 16),
        "g 4x128, bf16, 16 x 4 (recipe)": ("bf16", 16, 128),  # not the reference's size
    }
    contenders = {name: contender(*spec) for name, spec in specs.items()}
    flops = {name: step_flops(step) for name, step in contenders.items()}
    for name, f in flops.items():
        print(f"{name:34} {f / 1e9:5.1f} GFLOP per step, {f / BATCH / 1e6:4.0f} MFLOP per "
              "training sample (forward + backward)")  # fmt: skip
    print()
    for threads in args.threads:
        torch.set_num_threads(threads)
        for step in contenders.values():  # warm-up at this thread count
            step()
        times: dict[str, list[float]] = {name: [] for name in contenders}
        order = list(contenders)
        for r in range(args.repeats):
            random.Random(r).shuffle(order)
            for name in order:
                start = time.perf_counter()
                for _ in range(args.iters):
                    contenders[name]()
                times[name].append((time.perf_counter() - start) / args.iters)
        reference = times["reference (public, fp32)"]
        print(f"{threads} thread(s)")
        print(f"{'contender':34} {'ms/step':>8} {'samples/s':>9} {'GFLOP/s':>8} {'vs ref':>7}")
        for name, ts in times.items():
            paired = statistics.median(p / t for p, t in zip(reference, ts, strict=True))
            s = statistics.median(ts)
            print(f"{name:34} {1000 * s:8.1f} {BATCH / s:9.1f} {flops[name] / s / 1e9:8.1f} "
                  f"{paired:6.2f}x")  # fmt: skip
        print()
    print(f"(median of {args.repeats} rounds of {args.iters} steps; vs ref: paired, same round; "
          "GFLOP/s: each contender's own FLOPs per step over its time)")  # fmt: skip


if __name__ == "__main__":
    main()
