"""Recipe ``transformer`` (tip 9): encoder-decoder on generated tasks, and a character GPT.

Part 1, sequence to sequence: reverse a digit string, sort it, add two numbers. Sources
and answers have variable lengths and are padded; the padding is masked (claim 9.3).
Each task is learned by :class:`Seq2SeqTransformer` built on torchkata's
:class:`~torchkata.transformer.Transformer` and on ``nn.Transformer`` (the same model,
two implementations), then scored by exact-sequence accuracy of greedy decoding on
held-out sources (never in any training set) of the training lengths, and on longer
ones (length generalisation, reported as it is).

Part 2, a character-level :class:`GPT` on Python's bundled documentation
(``pydoc_data.topics``, ~460 KB): train/validation loss curve, samples, attention maps.
"""

from __future__ import annotations

import dataclasses
import math
import time

import torch
import torch.nn.functional as F

from torchkata.data.sequences import BOS, EOS, PAD, TASKS, VOCAB, Seq2SeqData, decode, make_task
from torchkata.data.text import pydoc_text
from torchkata.report import subplots
from torchkata.runs import Run, bf16_autocast
from torchkata.transformer.gpt import GPT
from torchkata.transformer.seq2seq import Seq2SeqTransformer
from torchkata.transformer.tokenizer import CharTokenizer

CORES = ("torchkata", "torch")
CORE_NAMES = {"torchkata": "torchkata Transformer", "torch": "nn.Transformer"}


@dataclasses.dataclass
class Config:
    tasks: tuple[str, ...] = TASKS  # reverse | sort | add
    cores: tuple[str, ...] = CORES  # Transformer implementations compared
    max_len: int = 10  # reverse, sort: training sequences of 1..max_len digits
    add_digits: int = 3  # add: operands of 1..add_digits digits each
    longer: int = 2  # also test lengths max+1 .. max+longer, never trained on
    train_size: int = 50_000  # generated training examples per task
    test_size: int = 2_000  # held-out examples per length band
    steps: int = 5000  # optimizer steps per (task, core)
    batch_size: int = 128
    lr: float = 1e-3  # AdamW peak, after `warmup` steps, then cosine to lr/10
    warmup: int = 200
    d_model: int = 64
    nhead: int = 4
    layers: int = 3  # encoder layers and decoder layers
    dim_feedforward: int = 256
    dropout: float = 0.1
    # Part 2: character GPT (nanoGPT's Shakespeare-char recipe, scaled to a CPU)
    lm_steps: int = 4000  # 0 skips part 2
    lm_batch_size: int = 16
    block_size: int = 128  # characters of context
    n_layer: int = 4
    n_head: int = 4
    n_embd: int = 128
    lm_dropout: float = 0.1
    lm_lr: float = 2e-3  # AdamW peak; warmup 100 steps, cosine to lr/10
    bf16: bool = True  # bfloat16 autocast for GPT training, on CUDA or CPUs with AVX512-BF16
    eval_interval: int = 250  # steps between validation estimates
    eval_batches: int = 20  # batches per loss estimate
    sample_chars: int = 400

    def check(self) -> None:
        for name, allowed in (("tasks", TASKS), ("cores", CORES)):
            chosen = getattr(self, name)
            if any(c not in allowed for c in chosen) or (name == "cores" and not chosen):
                raise ValueError(f"{name}: expected a subset of {allowed}, got {chosen!r}")
        for name in ("max_len", "add_digits", "train_size", "test_size", "steps", "batch_size",
                     "d_model", "nhead", "layers", "dim_feedforward", "eval_interval",
                     "eval_batches", "block_size", "n_layer", "n_head", "n_embd",
                     "lm_batch_size"):  # fmt: skip
            if getattr(self, name) < 1:
                raise ValueError(f"{name}: expected >= 1, got {getattr(self, name)!r}")
        if self.longer < 0 or self.lm_steps < 0 or self.warmup < 0:
            raise ValueError("longer, lm_steps, warmup: expected >= 0")


PRESETS: dict[str, dict] = {
    "quick": {
        "tasks": ("reverse",),
        "cores": ("torchkata",),
        "max_len": 6,
        "train_size": 10_000,
        "test_size": 500,
        "steps": 400,
        "d_model": 64,
        "layers": 2,
        "dim_feedforward": 128,
        "lm_steps": 300,
        "block_size": 64,
        "n_embd": 64,
        "n_layer": 2,
        "eval_interval": 100,
        "eval_batches": 5,
        "sample_chars": 200,
    },
    "full": {},
}


def lr_at(step: int, peak: float, warmup: int, total: int) -> float:
    """Linear warmup to ``peak``, then cosine decay to ``peak / 10`` at ``total``."""
    if step < warmup:
        return peak * (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return peak / 10 + (peak - peak / 10) * 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))


def run(cfg: Config, run: Run) -> None:
    results: dict[str, dict] = {}
    curves: dict[str, list[float]] = {}
    for task in cfg.tasks:
        data = _task_data(cfg, task, run.seed)
        for core in cfg.cores:
            key = f"{task}/{core}"
            results[key], curves[key] = _seq2seq(cfg, run, task, core, data)
    if cfg.tasks:
        _report_seq2seq(cfg, run, results, curves)
    lm = _char_gpt(cfg, run) if cfg.lm_steps else None
    run.finish(seq2seq=results, lm=lm)


# ---------------------------------------------------------------- part 1: seq2seq


def _task_data(cfg: Config, task: str, seed: int) -> dict[str, Seq2SeqData]:
    hi = _max_len(cfg, task)
    data = {
        "train": make_task(task, cfg.train_size, 1, hi, split="train", seed=seed),
        "test": make_task(task, cfg.test_size, 1, hi, split="test", seed=seed + 1),
    }
    if cfg.longer:
        data["longer"] = make_task(
            task, cfg.test_size, hi + 1, hi + cfg.longer, split="test", seed=seed + 2
        )
    return data


def _max_len(cfg: Config, task: str) -> int:
    return cfg.add_digits if task == "add" else cfg.max_len


def _seq2seq(cfg: Config, run: Run, task: str, core: str, data) -> tuple[dict, list[float]]:
    torch.manual_seed(run.seed)
    longest = 2 * (max(cfg.max_len, cfg.add_digits) + cfg.longer) + 4  # "a+b" with BOS/EOS
    model = Seq2SeqTransformer(
        len(VOCAB), cfg.d_model, cfg.nhead, cfg.layers, cfg.layers, cfg.dim_feedforward,
        cfg.dropout, pad_id=PAD, max_len=longest, core=core,
    ).to(run.device)  # fmt: skip
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=0.01)
    train = data["train"]
    gen = torch.Generator().manual_seed(run.seed)
    losses = []
    start = time.perf_counter()
    for step in run.progress(range(cfg.steps), desc=f"{task} ({core})"):
        for group in optimizer.param_groups:
            group["lr"] = lr_at(step, cfg.lr, cfg.warmup, cfg.steps)
        batch = train[torch.randint(len(train), (cfg.batch_size,), generator=gen)]
        src, tgt = batch.src.to(run.device), batch.tgt.to(run.device)
        model.train()
        logits = model(src, tgt[:, :-1])  # teacher forcing: predict tgt[1:] from tgt[:-1]
        loss = F.cross_entropy(logits.flatten(0, 1), tgt[:, 1:].flatten(), ignore_index=PAD)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        losses.append(loss.item())
        if (step + 1) % 100 == 0 or step + 1 == cfg.steps:
            run.log({"part": "seq2seq", "task": task, "core": core, "step": step + 1,
                     "loss": sum(losses[-100:]) / len(losses[-100:])})  # fmt: skip
    seconds = time.perf_counter() - start
    scores = {
        split: model.exact_match(data[split].src, data[split].tgt, BOS, EOS)
        for split in data
        if split != "train"
    }
    example = data["test"][:3]
    decoded = model.greedy_decode(example.src.to(run.device), BOS, EOS, example.tgt.size(1))
    run.log({"part": "seq2seq_result", "task": task, "core": core, **scores,
             "train_seconds": seconds})  # fmt: skip
    result = {**scores, "train_seconds": seconds, "final_loss": losses[-1]}
    result["examples"] = [
        {"source": decode(s), "answer": decode(t), "model": decode(o)}
        for s, t, o in zip(example.src, example.tgt, decoded.cpu(), strict=True)
    ]
    return result, losses


def _report_seq2seq(cfg: Config, run: Run, results: dict, curves: dict) -> None:
    lines = [
        f"Exact-sequence accuracy (%) of greedy decoding on {cfg.test_size:,} held-out sources "
        f"per column (sources that no training set can contain). Trained on 1-{cfg.max_len} "
        f"digits (reverse, sort) or two numbers of 1-{cfg.add_digits} digits (add), "
        f"{cfg.steps:,} steps of {cfg.batch_size}; d_model {cfg.d_model}, "
        f"{cfg.layers}+{cfg.layers} layers, {cfg.nhead} heads, pre-norm, sinusoidal positions."
        + (f" *Longer*: {cfg.longer} more digits than trained on (per operand for add)."
           if cfg.longer else ""),
        "",
        "| task | Transformer | training lengths | " + ("longer | " if cfg.longer else "")
        + "train time (s) |",
        "|---|---|---|" + ("---|" if cfg.longer else "") + "---|",
    ]  # fmt: skip
    for key, r in results.items():
        task, core = key.split("/")
        hi = _max_len(cfg, task)
        longer = f" | {100 * r['longer']:.1f} ({hi + 1}-{hi + cfg.longer})" if cfg.longer else ""
        lines.append(
            f"| {task} | {CORE_NAMES[core]} | {100 * r['test']:.1f} (1-{hi}){longer} "
            f"| {r['train_seconds']:.0f} |"
        )
    run.note("\n".join(lines))
    fig, ax = subplots(figsize=(6.4, 4))
    for key, losses in curves.items():
        smooth = torch.tensor(losses).unfold(0, min(50, len(losses)), 1).mean(1)
        ax.plot(smooth.numpy(), label=key)
    ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.set_ylabel("training cross-entropy (50-step mean)")
    ax.set_title("Seq2seq training")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    run.figure("seq2seq_loss", fig)
    for key, r in results.items():
        run.headline(f"{key}: exact-sequence accuracy", 100 * r["test"], reference=99.0,
                     source="this tip's target", unit="%")  # fmt: skip


# ---------------------------------------------------------------- part 2: char GPT


def _char_gpt(cfg: Config, run: Run) -> dict:
    text = pydoc_text()
    tokenizer = CharTokenizer.from_text(text)
    ids = tokenizer.tensor(text)
    split = int(0.9 * len(ids))
    data = {"train": ids[:split], "val": ids[split:]}
    gen = torch.Generator().manual_seed(run.seed)

    def get_batch(name: str) -> tuple[torch.Tensor, torch.Tensor]:
        source = data[name]
        starts = torch.randint(
            len(source) - cfg.block_size - 1, (cfg.lm_batch_size,), generator=gen
        )
        x = torch.stack([source[i : i + cfg.block_size] for i in starts.tolist()])
        y = torch.stack([source[i + 1 : i + 1 + cfg.block_size] for i in starts.tolist()])
        return x.to(run.device), y.to(run.device)

    @torch.no_grad()
    def estimate_loss() -> dict[str, float]:
        model.eval()
        out = {}
        for name in data:
            out[name] = sum(model(*get_batch(name))[1].item() for _ in range(cfg.eval_batches))
            out[name] /= cfg.eval_batches
        model.train()
        return out

    torch.manual_seed(run.seed)
    model = GPT(
        tokenizer.vocab_size, cfg.block_size, cfg.n_layer, cfg.n_head, cfg.n_embd,
        dropout=cfg.lm_dropout,
    ).to(run.device)  # fmt: skip
    decay = [p for p in model.parameters() if p.dim() >= 2]  # matrices; not norms/biases
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    optimizer = torch.optim.AdamW(
        [{"params": decay, "weight_decay": 0.1}, {"params": no_decay, "weight_decay": 0.0}],
        lr=cfg.lm_lr,
        betas=(0.9, 0.99),
        fused=True,
    )
    autocast = bf16_autocast(run.device, cfg.bf16)
    curve = []
    start = time.perf_counter()
    for step in run.progress(range(cfg.lm_steps + 1), desc="char GPT"):
        for group in optimizer.param_groups:
            group["lr"] = lr_at(step, cfg.lm_lr, 100, cfg.lm_steps)
        if step % cfg.eval_interval == 0 or step == cfg.lm_steps:
            losses = estimate_loss()
            curve.append({"step": step, **losses})
            run.log({"part": "lm", "step": step, **losses})
        if step == cfg.lm_steps:
            break
        x, y = get_batch("train")
        with autocast():
            logits, _ = model(x)
        loss = F.cross_entropy(logits.float().flatten(0, 1), y.flatten())
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0, foreach=True)
        optimizer.step()
    seconds = time.perf_counter() - start
    tokens_per_s = cfg.lm_steps * cfg.lm_batch_size * cfg.block_size / seconds

    model.eval()
    prompt = tokenizer.tensor("def ")[None].to(run.device)
    gen = torch.Generator(run.device).manual_seed(run.seed)
    sample = model.generate(prompt, cfg.sample_chars, temperature=0.8, top_k=20, generator=gen)
    sample_text = tokenizer.decode(sample[0].cpu())
    _report_lm(cfg, run, model, tokenizer, curve, sample_text, seconds, tokens_per_s)
    return {
        "val_loss": curve[-1]["val"],
        "train_loss": curve[-1]["train"],
        "initial_val_loss": curve[0]["val"],
        "vocab_size": tokenizer.vocab_size,
        "parameters": model.num_parameters(),
        "train_seconds": seconds,
        "tokens_per_s": tokens_per_s,
        "sample": sample_text,
    }


def _report_lm(cfg, run, model, tokenizer, curve, sample_text, seconds, tokens_per_s) -> None:
    fig, ax = subplots(figsize=(6.4, 4))
    steps = [c["step"] for c in curve]
    ax.plot(steps, [c["train"] for c in curve], marker="o", label="train")
    ax.plot(steps, [c["val"] for c in curve], marker="o", label="validation (last 10%)")
    ax.axhline(math.log(tokenizer.vocab_size), color="gray", ls=":", label="uniform guess")
    ax.set_xlabel("step")
    ax.set_ylabel("cross-entropy (nats per character)")
    ax.set_title("Character GPT on pydoc_data.topics")
    ax.grid(alpha=0.3)
    ax.legend()
    run.figure("lm_loss", fig)

    text = "for x in range(10):"
    maps = model.attention_maps(tokenizer.tensor(text)[None].to(run.device))[:, 0].cpu()
    layers = [0, model.n_layer - 1]
    fig, axes = subplots(len(layers), model.n_head, figsize=(2.2 * model.n_head, 2.4 * len(layers)))
    axes = axes.reshape(len(layers), model.n_head)
    for row, layer in enumerate(layers):
        for head in range(model.n_head):
            ax = axes[row, head]
            ax.imshow(maps[layer, head].numpy(), cmap="viridis", vmin=0, vmax=1)
            ax.set_xticks(range(len(text)), list(text), fontsize=5)
            ax.set_yticks(range(len(text)), list(text), fontsize=5)
            ax.set_title(f"layer {layer + 1}, head {head + 1}", fontsize=7)
    fig.suptitle("Attention (rows: query character; lower triangle: causal)")
    run.figure("lm_attention", fig)

    final = curve[-1]
    run.note(
        f"**Character GPT** ({model.num_parameters():,} parameters: {cfg.n_layer} layers, "
        f"{cfg.n_head} heads, width {cfg.n_embd}, context {cfg.block_size}) on the "
        f"{tokenizer.vocab_size}-character text of `pydoc_data.topics`: validation loss "
        f"{curve[0]['val']:.2f} → {final['val']:.3f} nats/char (train {final['train']:.3f}) "
        f"after {cfg.lm_steps:,} steps of {cfg.lm_batch_size} x {cfg.block_size} characters, "
        f"{seconds:.0f} s ({tokens_per_s:,.0f} tokens/s). A sample (prompt `def `, "
        f"temperature 0.8, top-k 20):\n\n```text\n{sample_text}\n```"
    )
    run.headline("char GPT validation loss (nats/char)", final["val"],
                 reference=math.log(tokenizer.vocab_size), source="uniform guess",
                 higher_is_better=False)  # fmt: skip
