"""Training speed of torchkata's GPT on nanoGPT's CPU configuration, and KV-cache generation.

nanoGPT's Shakespeare-char CPU run (its README: ``--device=cpu --compile=False
--block_size=64 --batch_size=12 --n_layer=4 --n_head=4 --n_embd=128 --dropout=0.0``;
vocabulary 65, no biases, AdamW lr 1e-3 betas (0.9, 0.99) weight decay 0.1 on matrices,
gradient clipping at 1.0) is the configuration users compare against. nanoGPT is not a
package and its code is not copied here; this script prints our ms/iteration and
tokens/s for exactly that configuration, to set beside nanoGPT's on the same machine
(~65 ms/iteration, ~11.8k tokens/s on 1 thread on this machine type), and measures in
the same invocation, alternating:

- ``plain``: the same GPT trained the way nanoGPT trains on a CPU (float32,
  ``F.scaled_dot_product_attention``, torch's default AdamW and clipping): the in-process
  stand-in for nanoGPT;
- ``torchkata``: the same model and loop with bfloat16 autocast (AMX/AVX512-BF16 matmuls
  where the CPU has them), attention written as baddbmm + softmax + bmm (SDPA's bfloat16
  backward on CPU is slow), fused AdamW and foreach clipping;
- ``torchkata + compile``: the same under ``torch.compile`` (``--compile``; ~30 s to compile);
- ``x-transformers``: the PyPI package's ``TransformerWrapper`` + ``Decoder`` at the same
  width, depth, heads and context, float32 (the ``bench`` extra).

It prints medians over ``--repeats`` rounds and paired ratios (same round), achieved
GFLOP/s (nanoGPT's estimate: 6N + 12·L·C·T FLOPs per token) against the machine's matmul
peak measured here, the loss curves of ``plain`` and ``torchkata`` over 300 iterations of
the same batches of ``pydoc_data.topics`` text (same loss curve: the speed is not bought
with accuracy), and KV-cache generation tokens/s against generation without the cache.

Run: ``python benchmarks/bench_transformer.py [--repeats 10] [--compile] [--threads 1]``.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import random
import statistics
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F

from torchkata.data.text import pydoc_text
from torchkata.transformer import GPT

CONFIG = {"vocab_size": 65, "block_size": 64, "n_layer": 4, "n_head": 4, "n_embd": 128}
BATCH = 12
NANOGPT_MS = 65.0  # nanoGPT train.py, this configuration, 1 thread, this machine type


def text_tokens() -> torch.Tensor:
    """pydoc_data.topics as 65 ids: its 64 most frequent characters, and one for the rest."""
    text = pydoc_text()
    common = [c for c, _ in collections.Counter(text).most_common(64)]
    ids = {c: i for i, c in enumerate(common)}
    return torch.tensor([ids.get(c, 64) for c in text], dtype=torch.long)


def batches(tokens: torch.Tensor, n: int, seed: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    gen = torch.Generator().manual_seed(seed)
    T = CONFIG["block_size"]
    out = []
    for _ in range(n):
        starts = torch.randint(len(tokens) - T - 1, (BATCH,), generator=gen).tolist()
        out.append(
            (
                torch.stack([tokens[i : i + T] for i in starts]),
                torch.stack([tokens[i + 1 : i + 1 + T] for i in starts]),
            )
        )
    return out


def adamw(model: torch.nn.Module, fused: bool) -> torch.optim.AdamW:
    decay = [p for p in model.parameters() if p.dim() >= 2]
    rest = [p for p in model.parameters() if p.dim() < 2]
    groups = [{"params": decay, "weight_decay": 0.1}, {"params": rest, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=1e-3, betas=(0.9, 0.99), fused=fused or None)


def gpt_step(variant: str) -> tuple[torch.nn.Module, Callable]:
    """(model, step(x, y) -> loss) for one contender."""
    torch.manual_seed(0)  # the same initial weights for plain and torchkata
    model = GPT(**CONFIG, dropout=0.0, bias=False)
    fast = variant != "plain"
    for block in model.blocks:
        block.attn.fused = not fast  # plain: F.scaled_dot_product_attention, as nanoGPT
    optimizer = adamw(model, fused=fast)
    params = list(model.parameters())
    forward = torch.compile(model) if variant == "torchkata + compile" else model
    autocast = (
        (lambda: torch.autocast("cpu", dtype=torch.bfloat16)) if fast else contextlib.nullcontext
    )

    def step(x: torch.Tensor, y: torch.Tensor) -> float:
        with autocast():
            logits, _ = forward(x)
        loss = F.cross_entropy(logits.float().view(-1, logits.size(-1)), y.view(-1))
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0, foreach=fast or None)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        return loss.item()

    return model, step


def xtransformers_step() -> tuple[torch.nn.Module, Callable] | None:
    try:
        from x_transformers import Decoder, TransformerWrapper
    except ImportError:
        return None
    torch.manual_seed(0)
    model = TransformerWrapper(
        num_tokens=CONFIG["vocab_size"],
        max_seq_len=CONFIG["block_size"],
        attn_layers=Decoder(dim=CONFIG["n_embd"], depth=CONFIG["n_layer"], heads=CONFIG["n_head"]),
    )
    optimizer = adamw(model, fused=False)

    def step(x: torch.Tensor, y: torch.Tensor) -> float:
        logits = model(x)
        loss = F.cross_entropy(logits.view(-1, logits.size(-1)), y.view(-1))
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        return loss.item()

    return model, step


def matmul_peak(dtype: torch.dtype, sizes=(256, 512, 1024), tries: int = 5) -> float:
    """Best GFLOP/s of a square torch.mm on this thread count."""
    best = 0.0
    for n in sizes:
        a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
        torch.mm(a, b)
        reps = max(1, int(2e9 / (2 * n**3)))
        for _ in range(tries):
            start = time.perf_counter()
            for _ in range(reps):
                torch.mm(a, b)
            best = max(best, 2 * n**3 * reps / (time.perf_counter() - start) / 1e9)
    return best


def flops_per_iteration(model: GPT) -> float:
    """nanoGPT's estimate for forward + backward: (6N + 12·L·C·T) per token."""
    n_params = model.num_parameters()  # without position embeddings
    per_token = 6 * n_params + 12 * model.n_layer * model.n_embd * model.block_size
    return per_token * BATCH * model.block_size


def time_training(contenders: dict[str, Callable], data, repeats: int, iters: int = 10):
    """ms/iteration of each contender: rounds of ``iters`` iterations, order shuffled."""
    times: dict[str, list[float]] = {name: [] for name in contenders}
    for step in contenders.values():  # warm-up (and compilation)
        for x, y in data[:5]:
            step(x, y)
    order = list(contenders)
    for r in range(repeats):
        random.Random(r).shuffle(order)
        for name in order:
            start = time.perf_counter()
            for x, y in data[:iters]:
                contenders[name](x, y)
            times[name].append(1000 * (time.perf_counter() - start) / iters)
    return times


def loss_curves(data, variants=("plain", "torchkata"), eval_data=None) -> dict[str, list[float]]:
    curves = {}
    for variant in variants:
        model, step = gpt_step(variant)
        curve = []
        for i, (x, y) in enumerate(data, start=1):
            step(x, y)
            if i % 100 == 0:
                with torch.no_grad():
                    curve.append(statistics.mean(model(vx, vy)[1].item() for vx, vy in eval_data))
        curves[variant] = curve
    return curves


def generation_speed(block_size: int, new_tokens: int, repeats: int = 5) -> dict[str, float]:
    """Greedy tokens/s from a 1-token prompt, with and without the KV cache (alternated,
    best of ``repeats``)."""
    torch.manual_seed(0)
    model = GPT(**(CONFIG | {"block_size": block_size})).eval()
    prompt = torch.zeros(1, 1, dtype=torch.long)
    best = {"cache": float("inf"), "no cache": float("inf")}
    for _ in range(repeats):
        for name in best:
            start = time.perf_counter()
            model.generate(prompt, new_tokens, greedy=True, use_cache=name == "cache")
            best[name] = min(best[name], time.perf_counter() - start)
    return {name: new_tokens / seconds for name, seconds in best.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=10, help="timing rounds (default 10)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    parser.add_argument("--compile", action="store_true", help="also time torch.compile")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(
        f"torch {torch.__version__}, {args.threads} thread(s), "
        f"CPU {torch.backends.cpu.get_cpu_capability()}"
    )
    print(f"nanoGPT CPU configuration: {CONFIG}, batch {BATCH}, dropout 0, no biases\n")

    fp32_peak, bf16_peak = matmul_peak(torch.float32), matmul_peak(torch.bfloat16)
    print(f"matmul peak (square torch.mm): float32 {fp32_peak:.0f} GFLOP/s, "
          f"bfloat16 {bf16_peak:.0f} GFLOP/s\n")  # fmt: skip

    tokens = text_tokens()
    data = batches(tokens, 300, seed=1)
    variants = ["plain", "torchkata"] + (["torchkata + compile"] if args.compile else [])
    contenders, models = {}, {}
    for variant in variants:
        start = time.perf_counter()
        models[variant], contenders[variant] = gpt_step(variant)
        contenders[variant](*data[0])
        if variant.endswith("compile"):
            print(f"torch.compile: first iteration {time.perf_counter() - start:.0f} s")
    peer = xtransformers_step()
    if peer is None:
        print("x-transformers not installed (pip install -e '.[bench]'): skipped")
    else:
        contenders["x-transformers"] = peer[1]
    times = time_training(contenders, data, args.repeats)

    flops = flops_per_iteration(models["plain"])
    tokens_per_iteration = BATCH * CONFIG["block_size"]
    print(f"\ntraining, median of {args.repeats} rounds of 10 iterations "
          f"({flops / 1e9:.2f} GFLOP per iteration by nanoGPT's estimate):")  # fmt: skip
    print(f"{'contender':22} {'ms/iter':>8} {'tokens/s':>9} {'GFLOP/s':>8} "
          f"{'vs plain':>9} {'vs nanoGPT 65 ms':>17}")  # fmt: skip
    for name, ts in times.items():
        ms = statistics.median(ts)
        paired = statistics.median(p / t for p, t in zip(times["plain"], ts, strict=True))
        print(
            f"{name:22} {ms:8.1f} {tokens_per_iteration / ms * 1000:9,.0f} "
            f"{flops / ms / 1e6:8.0f} {paired:8.2f}x {NANOGPT_MS / ms:16.2f}x"
        )
    print("(vs plain: median over rounds of plain's time / this one's, same round)")

    eval_data = batches(tokens[-50_000:], 10, seed=2)
    curves = loss_curves(data, eval_data=eval_data)
    print("\nvalidation loss on the same batches after 100 / 200 / 300 iterations:")
    for variant, curve in curves.items():
        print(f"  {variant:10} " + " / ".join(f"{v:.4f}" for v in curve))

    print("\ngeneration, greedy, 1 prompt token, tokens/s (best of 5):")
    for block_size, new in ((64, 63), (256, 255)):
        speed = generation_speed(block_size, new)
        print(f"  context {block_size:3}: with KV cache {speed['cache']:7,.0f}, without "
              f"{speed['no cache']:7,.0f}: {speed['cache'] / speed['no cache']:.1f}x")  # fmt: skip


if __name__ == "__main__":
    main()
