"""One DCGAN training iteration at 64x64: torchkata's loop against pytorch/examples' loop.

The architecture and hyper-parameters of pytorch/examples' ``dcgan/main.py`` (nz 100,
ngf = ndf = 64, 3 channels, batch 64, Adam lr 2e-4 betas (0.5, 0.999), BCE): the
``plain`` contender is that loop written as the example writes it (D on real, backward;
D on detached fake, backward; D step; D on fake, G backward, G step; Sigmoid + BCELoss).
The torchkata contenders train the same networks (:class:`DCGANGenerator`,
:class:`DCGANDiscriminator`, whose layers equal the example's; the Sigmoid moves into the
loss) with the same three discriminator passes, plus what is measured to help:

- ``channels_last``: NHWC memory format for the convolutions (oneDNN's preferred layout);
- ``fused``: fused Adam, ``zero_grad(set_to_none=True)``;
- ``bf16``: bfloat16 autocast (AMX/AVX512-BF16 convolutions where the CPU has them).

Contenders alternate; medians over ``--repeats`` rounds of ``--iters`` iterations are
printed with the paired ratio to ``plain``. Target: >= 1.3x plain's iterations/s.

Run: ``python benchmarks/bench_gan.py [--repeats 5] [--iters 3] [--threads 1]``.
"""

from __future__ import annotations

import argparse
import contextlib
import random
import statistics
import time
from collections.abc import Callable

import torch
from torch import nn

from torchkata.gan import DCGANDiscriminator, DCGANGenerator, discriminator_loss, generator_loss

NZ, BATCH, SIZE = 100, 64, 64


def plain_contender(real: torch.Tensor) -> Callable[[], None]:
    """pytorch/examples' loop; its networks are ours with the example's Sigmoid appended."""
    torch.manual_seed(0)
    net_g = DCGANGenerator(NZ, SIZE, 3, 64)
    net_d = nn.Sequential(DCGANDiscriminator(SIZE, 3, 64), nn.Sigmoid())
    criterion = nn.BCELoss()
    opt_d = torch.optim.Adam(net_d.parameters(), lr=2e-4, betas=(0.5, 0.999))
    opt_g = torch.optim.Adam(net_g.parameters(), lr=2e-4, betas=(0.5, 0.999))
    ones, zeros = torch.ones(BATCH), torch.zeros(BATCH)

    def iteration() -> None:
        net_d.zero_grad()
        err_d_real = criterion(net_d(real).view(-1), ones)
        err_d_real.backward()
        fake = net_g(torch.randn(BATCH, NZ, 1, 1))
        err_d_fake = criterion(net_d(fake.detach()).view(-1), zeros)
        err_d_fake.backward()
        opt_d.step()
        net_g.zero_grad()
        err_g = criterion(net_d(fake).view(-1), ones)
        err_g.backward()
        opt_g.step()

    return iteration


def torchkata_contender(
    real: torch.Tensor, channels_last: bool, fused: bool, bf16: bool
) -> Callable[[], None]:
    torch.manual_seed(0)
    net_g, net_d = DCGANGenerator(NZ, SIZE, 3, 64), DCGANDiscriminator(SIZE, 3, 64)
    if channels_last:
        net_g, net_d = (m.to(memory_format=torch.channels_last) for m in (net_g, net_d))
        real = real.contiguous(memory_format=torch.channels_last)
    opt_d = torch.optim.Adam(net_d.parameters(), lr=2e-4, betas=(0.5, 0.999), fused=fused or None)
    opt_g = torch.optim.Adam(net_g.parameters(), lr=2e-4, betas=(0.5, 0.999), fused=fused or None)
    autocast = (
        (lambda: torch.autocast("cpu", dtype=torch.bfloat16)) if bf16 else contextlib.nullcontext
    )

    def iteration() -> None:
        with autocast():
            fake = net_g(torch.randn(BATCH, NZ))
            loss_d = discriminator_loss(net_d(real).float(), net_d(fake.detach()).float(), "ns")
        opt_d.zero_grad(set_to_none=fused)
        loss_d.backward()
        opt_d.step()
        with autocast():
            loss_g = generator_loss(net_d(fake).float(), "ns")
        opt_g.zero_grad(set_to_none=fused)
        loss_g.backward()
        opt_g.step()

    return iteration


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=5, help="timing rounds (default 5)")
    parser.add_argument("--iters", type=int, default=3, help="iterations per round (default 3)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {args.threads} thread(s), "
          f"CPU {torch.backends.cpu.get_cpu_capability()}")  # fmt: skip
    print(f"DCGAN {SIZE}x{SIZE}, batch {BATCH}, nz {NZ}, ngf = ndf = 64, Adam 2e-4 (0.5, 0.999)\n")
    real = torch.rand(BATCH, 3, SIZE, SIZE) * 2 - 1
    contenders = {
        "plain (pytorch/examples)": plain_contender(real),
        "torchkata fp32": torchkata_contender(real, False, False, False),
        "torchkata channels_last+fused": torchkata_contender(real, True, True, False),
        "torchkata bf16": torchkata_contender(real, False, True, True),
        "torchkata bf16+channels_last": torchkata_contender(real, True, True, True),
    }
    for iteration in contenders.values():  # warm-up
        iteration()
    times: dict[str, list[float]] = {name: [] for name in contenders}
    order = list(contenders)
    for r in range(args.repeats):
        random.Random(r).shuffle(order)
        for name in order:
            start = time.perf_counter()
            for _ in range(args.iters):
                contenders[name]()
            times[name].append((time.perf_counter() - start) / args.iters)
    plain = times["plain (pytorch/examples)"]
    print(f"{'contender':32} {'s/iter':>7} {'iter/s':>7} {'vs plain':>9}")
    for name, ts in times.items():
        paired = statistics.median(p / t for p, t in zip(plain, ts, strict=True))
        s = statistics.median(ts)
        print(f"{name:32} {s:7.3f} {1 / s:7.2f} {paired:8.2f}x")
    print(f"(median of {args.repeats} rounds of {args.iters}; vs plain: paired, same round)")


if __name__ == "__main__":
    main()
