"""Training script shared by the 2-process jobs (torchrun) and the 1-process references.

``python -m torch.distributed.run --nproc_per_node 2 _worker.py OUT`` trains every scenario
and rank 0 writes the final full state dicts to ``OUT/results.*``; the DDP and FSDP runs
also save a checkpoint at step ``STOP`` under ``OUT/ckpt-<strategy>``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch
from torch import nn
from torch.distributed.checkpoint.state_dict import (
    StateDictOptions,
    get_optimizer_state_dict,
    set_optimizer_state_dict,
)
from torch.nn import functional as F
from torch.utils.data import DataLoader, TensorDataset

from torchkata import distributed
from torchkata.runs import save_state

STEPS = 20  # optimizer steps per run
GLOBAL_BATCH = 16  # samples per optimizer step, over all processes and micro-batches
STOP = 10  # the step at which the checkpointed runs stop
# Optimizer state keyed by parameter name, unsharded, on CPU (rank 0 only under FSDP).
FULL = StateDictOptions(full_state_dict=True, cpu_offload=True)


def make_model() -> nn.Module:
    torch.manual_seed(0)  # the same initial weights on every rank
    blocks = [nn.Sequential(nn.Linear(8, 16), nn.Tanh()), nn.Sequential(nn.Linear(16, 16))]
    return nn.Sequential(*blocks, nn.Tanh(), nn.Linear(16, 1)).double()


def make_dataset() -> TensorDataset:
    g = torch.Generator().manual_seed(1)
    x = torch.randn(STEPS * GLOBAL_BATCH, 8, generator=g, dtype=torch.float64)
    y = x[:, :1].sin() + 0.1 * torch.randn(len(x), 1, generator=g, dtype=torch.float64)
    return TensorDataset(x, y)


def train(
    strategy: str,
    accum: int = 1,
    *,
    stop_at: int | None = None,
    checkpoint: Path | None = None,
    resume: bool = False,
) -> dict[str, torch.Tensor]:
    """Train STEPS steps of GLOBAL_BATCH samples, as ``accum`` micro-batches per process."""
    info = distributed.init()
    batch_size = GLOBAL_BATCH // (info.world_size * accum)
    loader = DataLoader(make_dataset(), batch_size=batch_size, shuffle=False)
    model, loader = distributed.prepare(make_model(), loader, strategy)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    start = 0
    if resume:
        state = distributed.load_checkpoint(checkpoint)
        distributed.load_full_state_dict(model, state["model"])
        set_optimizer_state_dict(model, optimizer, state["optimizer"], options=FULL)
        start = int(state["step"])
    distributed.set_epoch(loader, 0)
    batches = iter(loader)
    for step in range(STEPS):
        micro = [next(batches) for _ in range(accum)]
        if step < start:  # the resumed run skips the data it already saw
            continue
        optimizer.zero_grad()
        for i, (x, y) in enumerate(micro):
            with distributed.accumulation_step(model, is_last=i == accum - 1):
                loss = F.mse_loss(model(x), y) / accum
                loss.backward()
        optimizer.step()
        if stop_at is not None and step + 1 == stop_at:
            state = {
                "model": distributed.full_state_dict(model),
                "optimizer": get_optimizer_state_dict(model, optimizer, options=FULL),
                "step": step + 1,
            }
            distributed.save_checkpoint(checkpoint, state)
            break
    return distributed.full_state_dict(model)


def main(out: Path) -> None:
    torch.set_num_threads(1)
    distributed.init()
    results = {}
    for strategy in ("ddp", "fsdp"):
        for accum in (1, 2):
            results[f"{strategy}-{accum}"] = train(strategy, accum)
    for strategy in ("ddp", "fsdp"):
        train(strategy, stop_at=STOP, checkpoint=out / f"ckpt-{strategy}")
    results["ddp-loss"] = torch.tensor(distributed.all_reduce_mean(float(distributed.rank())))
    if distributed.is_main():
        save_state(results, out, "results")
    distributed.barrier()
    distributed.shutdown()


if __name__ == "__main__":
    main(Path(sys.argv[1]))
