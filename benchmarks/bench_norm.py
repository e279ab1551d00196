"""Forward + backward time of torchkata.norm layers against torch.nn's native layers.

Usage::

    python benchmarks/bench_norm.py [--repeats N] [--quick]

Runs on one CPU thread (``torch.set_num_threads(1)``). For each case both layers start
from the same state, see the same input and upstream gradient, and run alternately (ours
first on even repeats, the twin first on odd ones), so that drift of the machine's speed
hits both alike. One timed run is ``y = layer(x)`` followed by ``torch.autograd.grad`` with
respect to the input and all parameters. The table gives medians and the ratio
ours / torch (below 1: ours is faster).

Target (tip 7): LayerNorm and RMSNorm at input shape (64, 512, 768), float32, within 2x
of the native layers. The script prints PASS or FAIL for each and exits with status 1 on
a FAIL.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

import torchkata.norm as tk

TARGET_SHAPE = (64, 512, 768)
TARGET_RATIO = 2.0


@dataclass(frozen=True)
class Case:
    layer: str
    ours: Callable[[], nn.Module]
    native: Callable[[], nn.Module]
    shape: tuple[int, ...]
    quick: bool = False  # also run with --quick


CASES: list[Case] = [
    Case("BatchNorm1d", lambda: tk.BatchNorm1d(512), lambda: nn.BatchNorm1d(512), (256, 512)),
    Case("BatchNorm1d", lambda: tk.BatchNorm1d(64), lambda: nn.BatchNorm1d(64), (64, 64, 1024)),
    Case(
        "BatchNorm2d",
        lambda: tk.BatchNorm2d(64),
        lambda: nn.BatchNorm2d(64),
        (32, 64, 32, 32),
        quick=True,
    ),
    Case(
        "InstanceNorm2d",
        lambda: tk.InstanceNorm2d(64, affine=True),
        lambda: nn.InstanceNorm2d(64, affine=True),
        (32, 64, 32, 32),
        quick=True,
    ),
    Case(
        "GroupNorm",
        lambda: tk.GroupNorm(8, 64),
        lambda: nn.GroupNorm(8, 64),
        (32, 64, 32, 32),
        quick=True,
    ),
    Case("LayerNorm", lambda: tk.LayerNorm(768), lambda: nn.LayerNorm(768), (8, 128, 768)),
    Case(
        "LayerNorm", lambda: tk.LayerNorm(768), lambda: nn.LayerNorm(768), TARGET_SHAPE, quick=True
    ),
    Case("RMSNorm", lambda: tk.RMSNorm(768), lambda: nn.RMSNorm(768), (8, 128, 768)),
    Case("RMSNorm", lambda: tk.RMSNorm(768), lambda: nn.RMSNorm(768), TARGET_SHAPE, quick=True),
]


def time_forward_backward(module: nn.Module, x: torch.Tensor, dy: torch.Tensor) -> float:
    """Seconds for one forward pass and the backward pass to input and parameters."""
    inputs = [x, *module.parameters()]
    start = time.perf_counter()
    y = module(x)
    grads = torch.autograd.grad(y, inputs, dy)
    elapsed = time.perf_counter() - start
    del y, grads  # freed outside the timed region, for both layers alike
    return elapsed


def run_case(case: Case, repeats: int) -> tuple[float, float]:
    """Median seconds (ours, native) over ``repeats`` alternating runs."""
    gen = torch.Generator().manual_seed(0)
    ours, native = case.ours(), case.native()
    native.load_state_dict(ours.state_dict())
    x = torch.randn(case.shape, generator=gen).requires_grad_()
    dy = torch.randn(case.shape, generator=gen)
    for module in (ours, native):  # warm-up
        time_forward_backward(module, x, dy)
    times: dict[str, list[float]] = {"ours": [], "native": []}
    for i in range(repeats):
        order = [("ours", ours), ("native", native)]
        for name, module in order if i % 2 == 0 else reversed(order):
            times[name].append(time_forward_backward(module, x, dy))
    return statistics.median(times["ours"]), statistics.median(times["native"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=None, help="timed runs per layer")
    parser.add_argument("--quick", action="store_true", help="fewer cases and repeats")
    args = parser.parse_args(argv)
    repeats = args.repeats or (5 if args.quick else 15)
    cases = [c for c in CASES if c.quick] if args.quick else CASES

    torch.set_num_threads(1)
    print(
        f"torch {torch.__version__}, {platform.processor() or platform.machine()}, "
        f"threads={torch.get_num_threads()}, float32, forward+backward, "
        f"median of {repeats} alternating runs"
    )
    header = f"{'layer':<15} {'input shape':<18} {'ours ms':>9} {'torch ms':>9} {'ratio':>7}"
    print(header)
    print("-" * len(header))
    verdicts = []
    for case in cases:
        ours_s, native_s = run_case(case, repeats)
        ratio = ours_s / native_s
        shape = str(case.shape).replace(" ", "")
        print(
            f"{case.layer:<15} {shape:<18} {ours_s * 1e3:9.1f} {native_s * 1e3:9.1f} {ratio:7.2f}"
        )
        if case.shape == TARGET_SHAPE and case.layer in ("LayerNorm", "RMSNorm"):
            verdicts.append((case.layer, ratio))
    print()
    failed = False
    for layer, ratio in verdicts:
        ok = ratio <= TARGET_RATIO
        failed |= not ok
        print(
            f"{'PASS' if ok else 'FAIL'}: {layer} {TARGET_SHAPE} ratio {ratio:.2f} "
            f"(target <= {TARGET_RATIO:.1f}x native)"
        )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
