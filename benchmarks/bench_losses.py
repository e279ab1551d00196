"""Forward + backward time of torchkata's FocalLoss against its peers, as ratios.

Peers, all starting from the same logits (N, C):

- ``focal-loss-torch`` (PyPI; the ``bench`` extra), which takes probabilities, so its
  timed path includes the ``softmax`` it needs;
- ``F.cross_entropy``, the floor: focal loss is cross-entropy times a modulating factor.

Targets: no slower than the PyPI peer, and within 1.5x of cross-entropy, at
N=4096, C=1000. Run: ``python benchmarks/bench_losses.py [--repeats N]``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F

from torchkata.losses import FocalLoss


def time_fwd_bwd(fn: Callable[[torch.Tensor], torch.Tensor], logits: torch.Tensor) -> float:
    x = logits.detach().clone().requires_grad_()
    start = time.perf_counter()
    fn(x).backward()
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=21)
    parser.add_argument("--n", type=int, default=4096)
    parser.add_argument("--classes", type=int, default=1000)
    args = parser.parse_args()
    torch.set_num_threads(1)
    gen = torch.Generator().manual_seed(0)
    logits = torch.randn(args.n, args.classes, generator=gen)
    target = torch.randint(0, args.classes, (args.n,), generator=gen)

    ours = FocalLoss(gamma=2.0)
    contenders: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
        "torchkata FocalLoss": lambda x: ours(x, target),
        "F.cross_entropy": lambda x: F.cross_entropy(x, target),
    }
    try:
        from focal_loss.focal_loss import FocalLoss as PeerFocalLoss
    except ImportError:
        print(
            "focal-loss-torch is not installed: pip install 'torchkata[bench]' to compare with it"
        )
    else:
        peer = PeerFocalLoss(gamma=2.0)
        contenders["focal-loss-torch"] = lambda x: peer(torch.softmax(x, dim=-1), target)
        # same value, so the comparison is of the same computation
        torch.testing.assert_close(
            contenders["focal-loss-torch"](logits), ours(logits, target), rtol=1e-4, atol=1e-5
        )

    times: dict[str, list[float]] = {name: [] for name in contenders}
    for fn in contenders.values():  # warm-up
        time_fwd_bwd(fn, logits)
    for _ in range(args.repeats):  # alternate, so machine noise hits every contender alike
        for name, fn in contenders.items():
            times[name].append(time_fwd_bwd(fn, logits))

    ours_ms = 1e3 * statistics.median(times["torchkata FocalLoss"])
    print(
        f"torch {torch.__version__}, threads=1, float32, forward+backward on ({args.n}, "
        f"{args.classes}) logits, median of {args.repeats} alternating runs"
    )
    print(f"{'contender':22s} {'ms':>8s} {'torchkata / it':>15s}")
    for name, values in times.items():
        ms = 1e3 * statistics.median(values)
        print(f"{name:22s} {ms:8.2f} {ours_ms / ms:15.2f}")

    failed = False
    ce_ratio = ours_ms / (1e3 * statistics.median(times["F.cross_entropy"]))
    verdict = "PASS" if ce_ratio <= 1.5 else "FAIL"
    failed |= verdict == "FAIL"
    print(f"{verdict}: FocalLoss / cross-entropy = {ce_ratio:.2f} (target <= 1.5)")
    if "focal-loss-torch" in times:
        peer_ratio = ours_ms / (1e3 * statistics.median(times["focal-loss-torch"]))
        verdict = "PASS" if peer_ratio <= 1.0 else "FAIL"
        failed |= verdict == "FAIL"
        print(f"{verdict}: FocalLoss / focal-loss-torch = {peer_ratio:.2f} (target <= 1.0)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
