"""Tip 3: multi-device training with torchrun, DDP and FSDP2 (and DataParallel to compare).

One script runs in a plain process, under ``torchrun`` on one CPU machine (gloo) and on GPU
clusters (NCCL) with no code change::

    info = distributed.init()
    model, loader = distributed.prepare(model, loader, "ddp")  # or "fsdp"
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    for epoch in range(epochs):
        distributed.set_epoch(loader, epoch)
        for x, y in loader:
            ...  # zero_grad, forward, loss, backward, step
    distributed.save_checkpoint(folder, {"model": distributed.full_state_dict(model)})
    distributed.shutdown()
"""

from torchkata.distributed.core import (
    DistInfo,
    accumulation_step,
    all_reduce_mean,
    barrier,
    data_parallel,
    exit_process,
    full_optimizer_state_dict,
    full_state_dict,
    init,
    is_main,
    load_checkpoint,
    load_full_optimizer_state_dict,
    load_full_state_dict,
    prepare,
    rank,
    save_checkpoint,
    saved_activation_bytes,
    set_epoch,
    shutdown,
    world_size,
)

__all__ = [
    "DistInfo",
    "accumulation_step",
    "all_reduce_mean",
    "barrier",
    "data_parallel",
    "exit_process",
    "full_optimizer_state_dict",
    "full_state_dict",
    "init",
    "is_main",
    "load_checkpoint",
    "load_full_optimizer_state_dict",
    "load_full_state_dict",
    "prepare",
    "rank",
    "save_checkpoint",
    "saved_activation_bytes",
    "set_epoch",
    "shutdown",
    "world_size",
]
