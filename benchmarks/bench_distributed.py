"""Samples/s of 1 process against 2 DDP processes on this machine's CPU cores, and the
communication time per step, printed as a table.

Each setting gets the same cores: 1 process with 2 threads, or 2 processes with 1 thread
each (gloo). The communication time per step is the median DDP step time minus the median
step time of 1 process, 1 thread, on one process's share of the batch (the same compute,
no all-reduce). Settings alternate over ``--repeats`` rounds; medians are printed.

Run: ``python benchmarks/bench_distributed.py [--repeats 3] [--steps 100]``.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from pathlib import Path

from torchkata.distributed.recipe import Config, _launch


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--batch-size", type=int, default=256)
    args = parser.parse_args()
    common = {"steps": args.steps, "width": 512, "depth": 4, "dtype": "float32"}
    settings = {
        "1 process x 2 threads": (
            "single",
            Config(**common, batch_size=args.batch_size, threads=2),
        ),
        "2 processes (DDP) x 1 thread": ("ddp", Config(**common, batch_size=args.batch_size)),
        "1 process x 1 thread, half batch": (
            "single",
            Config(**common, batch_size=args.batch_size // 2),
        ),
    }
    samples: dict[str, list[float]] = {name: [] for name in settings}
    step_ms: dict[str, list[float]] = {name: [] for name in settings}
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(args.repeats):
            for name, (setting, cfg) in settings.items():
                r = _launch(setting, cfg, 0, Path(tmp) / "out.json")
                samples[name].append(r["samples_per_s"])
                step_ms[name].append(r["median_step_ms"])
    print(
        f"MLP 64-512x4-10 float32, global batch {args.batch_size}, {args.steps} steps, "
        f"medians of {args.repeats} alternating rounds"
    )
    print(f"{'setting':34s} {'samples/s':>10s} {'step ms':>8s}")
    for name in settings:
        print(
            f"{name:34s} {statistics.median(samples[name]):10.0f} "
            f"{statistics.median(step_ms[name]):8.2f}"
        )
    one, two = (statistics.median(samples[n]) for n in list(settings)[:2])
    comm = statistics.median(step_ms["2 processes (DDP) x 1 thread"]) - statistics.median(
        step_ms["1 process x 1 thread, half batch"]
    )
    print(f"2 processes / 1 process samples/s: {two / one:.2f}")
    print(f"communication (all-reduce and its waits) per DDP step: {comm:.2f} ms")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
