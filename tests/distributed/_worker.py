"""Training script shared by the 2-process jobs (torchrun) and the 1-process references.

``python -m torch.distributed.run --nproc_per_node 2 _worker.py OUT`` trains every scenario
and rank 0 writes the final full state dicts to ``OUT/results.*``; the DDP and FSDP runs
also save a checkpoint at step ``STOP`` under ``OUT/ckpt-<strategy>``.
"""

from __future__ import annotations

import itertools
import sys
from collections.abc import Iterator
from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F
from torch.utils.data import DataLoader, TensorDataset

from torchkata import distributed
from torchkata.runs import save_state

STEPS = 20  # optimizer steps per run
GLOBAL_BATCH = 16  # samples per optimizer step, over all processes and micro-batches
STOP = 10  # the step at which the checkpointed runs stop


def make_model() -> nn.Module:
    torch.manual_seed(0)  # the same initial weights on every rank
    blocks = [nn.Sequential(nn.Linear(8, 16), nn.Tanh()), nn.Sequential(nn.Linear(16, 16))]
    return nn.Sequential(*blocks, nn.Tanh(), nn.Linear(16, 1)).double()


def make_dataset() -> TensorDataset:
    g = torch.Generator().manual_seed(1)
    x = torch.randn(STEPS * GLOBAL_BATCH, 8, generator=g, dtype=torch.float64)
    y = x[:, :1].sin() + 0.1 * torch.randn(len(x), 1, generator=g, dtype=torch.float64)
    return TensorDataset(x, y)


def _epochs(loader: DataLoader) -> Iterator:
    for epoch in itertools.count():
        distributed.set_epoch(loader, epoch)
        yield from loader


def train(
    strategy: str,
    accum: int = 1,
    *,
    stop_at: int | None = None,
    checkpoint: Path | None = None,
    resume: bool = False,
    shuffle: bool = False,
) -> dict[str, torch.Tensor]:
    """Train STEPS steps of GLOBAL_BATCH samples, as ``accum`` micro-batches per process.

    With ``shuffle`` the steps run over 2 epochs of half the data, reshuffled by set_epoch.
    """
    info = distributed.init()
    batch_size = GLOBAL_BATCH // (info.world_size * accum)
    dataset = make_dataset()
    if shuffle:
        dataset = TensorDataset(*(t[: len(t) // 2] for t in dataset.tensors))
    generator = torch.Generator().manual_seed(3)
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=shuffle, generator=generator)
    model, loader = distributed.prepare(make_model(), loader, strategy)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    start = 0
    if resume:
        state = distributed.load_checkpoint(checkpoint)
        distributed.load_full_state_dict(model, state["model"])
        distributed.load_full_optimizer_state_dict(model, optimizer, state["optimizer"])
        start = int(state["step"])
    batches = _epochs(loader)
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
                "optimizer": distributed.full_optimizer_state_dict(model, optimizer),
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
        results[f"{strategy}-shuffle"] = train(strategy, shuffle=True)
    for strategy in ("ddp", "fsdp"):
        train(strategy, stop_at=STOP, checkpoint=out / f"ckpt-{strategy}")
    results["ddp-loss"] = torch.tensor(distributed.all_reduce_mean(float(distributed.rank())))
    if distributed.is_main():
        save_state(results, out, "results")
    distributed.barrier()
    distributed.shutdown()


if __name__ == "__main__":
    main(Path(sys.argv[1]))
    distributed.exit_process(0)
