"""Recipe ``distributed`` (tip 3): one model, one global batch, one seed, four ways to run it.

The recipe is a driver: for each setting it starts a job with PyTorch's own launcher,
``python -m torch.distributed.run --nproc_per_node P -m torchkata.distributed.recipe
--worker ...``, and collects what rank 0 writes. Settings: 1 process; 2 processes with
DDP; 2 processes with FSDP2; 1 process with activation checkpointing. All see the same
global batches in the same order (each of P processes takes its B/P share), so their loss
curves must coincide; the report overlays them and gives samples/s, the scaling
efficiency and the bytes of activations saved for backward with and without activation
checkpointing.

``torchkata run distributed --nproc N`` instead trains the model once, on the N processes
that torchrun starts (``strategy``, shuffled data, ``set_epoch`` each epoch), with rank 0
logging and writing checkpoints that resume at any number of processes.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Literal

import torch
from torch import nn

from torchkata.report import subplots
from torchkata.runs import Run

SETTINGS = ("single", "ddp", "fsdp", "checkpointing")
NAMES = {
    "single": "1 process",
    "ddp": "2 processes, DDP",
    "fsdp": "2 processes, FSDP2",
    "checkpointing": "1 process, activation checkpointing",
}


@dataclasses.dataclass
class Config:
    settings: tuple[str, ...] = SETTINGS  # single | ddp | fsdp | checkpointing
    nproc: int = 2  # processes of the ddp and fsdp settings
    steps: int = 200  # optimizer steps
    batch_size: int = 64  # global batch; each of nproc processes takes batch_size / nproc
    width: int = 256  # hidden units of the MLP
    depth: int = 4  # hidden blocks (Linear -> ReLU) of the MLP
    lr: float = 0.1  # SGD with momentum 0.9
    # float64 keeps the settings' curves equal for hundreds of steps; in float32 rounding
    # differences of 1e-7 between 1 and 2 processes grow through training.
    dtype: Literal["float32", "float64"] = "float64"
    timeout_s: int = 300  # per job; a hung collective must not hang the recipe
    threads: int = 1  # torch CPU threads per process
    # Under `torchkata run distributed --nproc N` (one training, no comparison):
    strategy: Literal["ddp", "fsdp"] = "ddp"  # how the N processes share the model
    checkpoint_every: int = 20  # optimizer steps between checkpoints

    def check(self) -> None:
        if not self.settings or any(s not in SETTINGS for s in self.settings):
            raise ValueError(
                f"settings: expected a non-empty subset of {SETTINGS}, got {self.settings!r}"
            )
        if self.nproc < 1:
            raise ValueError(f"nproc: expected >= 1, got {self.nproc!r}")
        if self.batch_size % self.nproc:
            raise ValueError(
                f"batch_size: expected a multiple of nproc={self.nproc}, got {self.batch_size}"
            )
        for name in ("steps", "width", "depth", "timeout_s", "threads", "checkpoint_every"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name}: expected >= 1, got {getattr(self, name)!r}")


SUPPORTS_DISTRIBUTED = True  # `torchkata run distributed --nproc N` trains under torchrun

PRESETS: dict[str, dict] = {"quick": {"steps": 60}, "full": {"steps": 400, "width": 512}}


def build_model(width: int, depth: int) -> nn.Sequential:
    """The MLP every setting trains: 64 -> (Linear(width) -> ReLU) x depth -> 10."""
    layers: list[nn.Module] = []
    for i in range(depth):
        layers.append(nn.Sequential(nn.Linear(64 if i == 0 else width, width), nn.ReLU()))
    layers.append(nn.Linear(width, 10))
    return nn.Sequential(*layers)


def _launch(setting: str, cfg: Config, seed: int, out: Path) -> dict:
    nproc = cfg.nproc if setting in ("ddp", "fsdp") else 1
    command = [
        sys.executable, "-m", "torch.distributed.run",
        "--standalone", "--nproc_per_node", str(nproc),  # standalone: a free port of its own
        "-m", "torchkata.distributed.recipe", "--worker",
        "--setting", setting, "--seed", str(seed), "--out", str(out),
        "--config", json.dumps(dataclasses.asdict(cfg)),
    ]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": str(cfg.threads)}
    result = subprocess.run(command, capture_output=True, text=True, timeout=cfg.timeout_s, env=env)
    if result.returncode != 0:
        raise RuntimeError(f"the {setting} job failed:\n{result.stderr[-3000:]}")
    return json.loads(out.read_text())


def run(cfg: Config, run: Run) -> None:
    if "RANK" in os.environ and "WORLD_SIZE" in os.environ:  # started by torchrun (--nproc)
        _train_in_job(cfg, run)
        return
    results: dict[str, dict] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for setting in run.progress(cfg.settings, desc="settings"):
            results[setting] = _launch(setting, cfg, run.seed, Path(tmp) / f"{setting}.json")
            run.log(
                {"setting": setting, **{k: v for k, v in results[setting].items() if k != "losses"}}
            )

    fig, ax = subplots(figsize=(6.4, 4))
    for setting, r in results.items():
        ax.plot(range(1, len(r["losses"]) + 1), r["losses"], label=NAMES[setting], lw=1)
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("training loss (global batch)")
    ax.set_yscale("log")
    ax.set_title("The same training, run four ways")
    ax.legend()
    ax.grid(alpha=0.3)
    run.figure("loss_curves", fig)

    reference = results.get("single")
    lines = [
        f"**Claims 3.2–3.5.** An MLP (64 → {cfg.width} x {cfg.depth} → 10, {cfg.dtype}) on "
        "the digits, "
        f"{cfg.steps} SGD steps with a global batch of {cfg.batch_size}; each of the "
        f"{cfg.nproc} processes of DDP and FSDP2 takes {cfg.batch_size // cfg.nproc} samples "
        "of each batch (gloo on CPU here; NCCL on GPUs, same code).",
        "",
        "| setting | processes | final loss | max loss gap to 1 process | samples/s | "
        "saved activations (bytes) |",
        "|---|---|---|---|---|---|",
    ]
    for setting, r in results.items():
        gap = (
            max(abs(a - b) for a, b in zip(r["losses"], reference["losses"], strict=True))
            if reference
            else float("nan")
        )
        r["max_gap"] = gap
        lines.append(
            f"| {NAMES[setting]} | {r['world_size']} | {r['losses'][-1]:.4g} | {gap:.2g} | "
            f"{r['samples_per_s']:.0f} | {r['saved_bytes']:,} |"
        )
    run.note("\n".join(lines))
    if reference:
        for setting in ("ddp", "fsdp"):
            if setting in results:
                run.headline(
                    f"{NAMES[setting]}: max loss gap to 1 process",
                    results[setting]["max_gap"],
                    higher_is_better=False,
                )
                efficiency = results[setting]["samples_per_s"] / (
                    cfg.nproc * reference["samples_per_s"]
                )
                run.headline(f"{NAMES[setting]}: scaling efficiency", 100 * efficiency, unit="%")
        if "checkpointing" in results:
            ratio = results["checkpointing"]["saved_bytes"] / reference["saved_bytes"]
            run.headline(
                "activation checkpointing: saved-activation bytes vs without",
                100 * ratio,
                unit="%",
                higher_is_better=False,
            )
    run.note(
        "On one CPU machine both processes share its cores, so samples/s measures the "
        "overhead of the collectives, not a speed-up; on GPUs each process has its own "
        "device. DDP and FSDP average the gradients of the processes' shares, which equals "
        "the gradient of the whole batch: the loss curves coincide up to float rounding, "
        "which training can amplify over many steps (see the largest gap above)."
    )
    run.finish(
        results={s: {k: v for k, v in r.items() if k != "losses"} for s, r in results.items()}
    )


# --------------------------------------------------------------------------- --nproc N


def _train_in_job(cfg: Config, run: Run) -> None:
    """Train the MLP once on this torchrun job's processes; rank 0 logs and checkpoints."""
    import time

    from torch.utils.data import DataLoader, TensorDataset

    from torchkata import distributed as dist
    from torchkata.data import load_digits

    info = dist.init()
    if cfg.batch_size % info.world_size:
        raise ValueError(
            f"batch_size: expected a multiple of the {info.world_size} processes, "
            f"got {cfg.batch_size}"
        )
    dtype = getattr(torch, cfg.dtype)
    model = build_model(cfg.width, cfg.depth).to(dtype)  # Run seeded every rank alike
    data = load_digits()
    dataset = TensorDataset(data.x_train.flatten(1).to(dtype), data.y_train)
    # The sampler shuffles by (seed, epoch): the same global batches at any world size.
    generator = torch.Generator().manual_seed(run.seed)
    per_process = cfg.batch_size // info.world_size
    loader = DataLoader(
        dataset, batch_size=per_process, shuffle=True, drop_last=True, generator=generator
    )
    model, loader = dist.prepare(model, loader, cfg.strategy)
    optimizer = torch.optim.SGD(model.parameters(), lr=cfg.lr, momentum=0.9)
    loss_fn = nn.CrossEntropyLoss()

    first = 0
    saved = run.load_checkpoint() if run.resumed else None
    if saved is not None:
        dist.load_full_state_dict(model, saved["model"])
        dist.load_full_optimizer_state_dict(model, optimizer, saved["optimizer"])
        first = int(saved["step"])
        run.info(f"resumed at step {first} on {info.world_size} process(es)")
    batches_per_epoch = len(loader)
    batches = iter(())
    start = time.perf_counter()
    for step in run.progress(range(first, cfg.steps), desc=f"{info.world_size} processes"):
        if step == first or step % batches_per_epoch == 0:
            dist.set_epoch(loader, step // batches_per_epoch)
            batches = iter(loader)
            for _ in range(step % batches_per_epoch):  # what a resumed epoch already gave
                next(batches)
        x, y = next(batches)
        x, y = x.to(info.device), y.to(info.device)
        optimizer.zero_grad()
        loss = loss_fn(model(x), y)
        loss.backward()
        optimizer.step()
        run.log({"loss": float(dist.all_reduce_mean(loss.detach()))})
        if (step + 1) % cfg.checkpoint_every == 0 or step + 1 == cfg.steps:
            state = {
                "model": dist.full_state_dict(model),
                "optimizer": dist.full_optimizer_state_dict(model, optimizer),
                "step": step + 1,
            }
            run.save_checkpoint(state)
    elapsed = time.perf_counter() - start
    done = cfg.steps - first

    losses = [r["loss"] for r in run.metrics() if "loss" in r]
    if losses:
        fig, ax = subplots(figsize=(6.4, 4))
        ax.plot(range(1, len(losses) + 1), losses, lw=1)
        ax.set_xlabel("optimizer step")
        ax.set_ylabel("training loss (global batch)")
        ax.set_yscale("log")
        ax.set_title(f"{cfg.strategy.upper()} on {info.world_size} process(es)")
        ax.grid(alpha=0.3)
        run.figure("loss_curve", fig)
        run.headline("final training loss", losses[-1], higher_is_better=False)
    samples_per_s = done * cfg.batch_size / elapsed if done else float("nan")
    run.headline(f"samples/s on {info.world_size} process(es)", samples_per_s)
    run.note(
        f"An MLP (64 → {cfg.width} x {cfg.depth} → 10, {cfg.dtype}) on the digits, "
        f"{cfg.steps} SGD steps with a global batch of {cfg.batch_size}, trained with "
        f"{cfg.strategy.upper()} on {info.world_size} process(es) ({per_process} samples "
        f"each per step, backend {'gloo' if info.device.type == 'cpu' else 'nccl'}). "
        f"Checkpoints every {cfg.checkpoint_every} steps hold full state dicts: "
        "`torchkata run --resume RUN_DIR --nproc M` continues at any M."
    )
    run.finish(world_size=info.world_size, strategy=cfg.strategy)
    dist.shutdown()


# --------------------------------------------------------------------------- the worker


def _worker(setting: str, cfg: Config, seed: int, out: Path) -> None:
    import time

    from torch.utils.data import DataLoader, TensorDataset

    from torchkata import distributed as dist
    from torchkata.data import load_digits

    torch.set_num_threads(cfg.threads)
    info = dist.init()
    dtype = getattr(torch, cfg.dtype)
    torch.manual_seed(seed)
    model = build_model(cfg.width, cfg.depth).to(dtype)
    data = load_digits()
    dataset = TensorDataset(data.x_train.flatten(1).to(dtype), data.y_train)
    per_process = cfg.batch_size // info.world_size
    # No shuffling: every setting sees the same global batches in the same order.
    loader = DataLoader(dataset, batch_size=per_process, shuffle=False, drop_last=True)
    strategy = {"ddp": "ddp", "fsdp": "fsdp"}.get(setting, "none")
    model, loader = dist.prepare(model, loader, strategy, checkpointing=setting == "checkpointing")
    optimizer = torch.optim.SGD(model.parameters(), lr=cfg.lr, momentum=0.9)
    loss_fn = nn.CrossEntropyLoss()

    saved_bytes = 0
    losses: list[float] = []
    step_times: list[float] = []
    step, epoch = 0, 0
    start = time.perf_counter()
    while step < cfg.steps:
        dist.set_epoch(loader, epoch)
        for x, y in loader:
            step_start = time.perf_counter()
            x, y = x.to(info.device), y.to(info.device)
            if step == 0:  # measure what the forward keeps for backward, once
                loss, saved_bytes = dist.saved_activation_bytes(
                    model,
                    lambda: loss_fn(model(x), y),  # noqa: B023 (called right here)
                )
            else:
                loss = loss_fn(model(x), y)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            step_times.append(time.perf_counter() - step_start)
            losses.append(float(dist.all_reduce_mean(loss.detach())))
            step += 1
            if step == cfg.steps:
                break
        epoch += 1
    elapsed = time.perf_counter() - start
    if dist.is_main():
        record = {
            "world_size": info.world_size,
            "losses": losses,
            "samples_per_s": cfg.steps * cfg.batch_size / elapsed,
            "median_step_ms": 1e3 * sorted(step_times)[len(step_times) // 2],
            "saved_bytes": saved_bytes,  # per process, first step
        }
        out.write_text(json.dumps(record))
    dist.shutdown()


def main(argv: list[str] | None = None) -> int:
    """Entry point of the worker processes (``--worker``)."""
    parser = argparse.ArgumentParser(prog="python -m torchkata.distributed.recipe")
    parser.add_argument("--worker", action="store_true", required=True)
    parser.add_argument("--setting", choices=SETTINGS, required=True)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--config", required=True, help="the Config as JSON")
    args = parser.parse_args(argv)
    from torchkata.config import from_dict

    _worker(args.setting, from_dict(Config, json.loads(args.config)), args.seed, args.out)
    return 0


if __name__ == "__main__":
    from torchkata.distributed import exit_process

    exit_process(main())  # a worker of torchrun: see exit_process
