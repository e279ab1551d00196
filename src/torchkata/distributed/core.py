"""Multi-device training on PyTorch's own engine: torchrun, DDP, FSDP2, DataParallel.

The same script runs in a plain process (world size 1, no process group), under
``torchrun --nproc_per_node N`` on one CPU machine (gloo) and on GPU clusters (NCCL):
:func:`init` reads torchrun's environment and picks the backend and device, :func:`prepare`
wraps the model and shards the data, and the training loop stays the usual
``zero_grad``, forward, loss, ``backward``, ``step``.

Checkpoints are full (unsharded) state dicts written by rank 0 with
:func:`torchkata.runs.save_state` (safetensors + JSON, atomic), so a run saved at N
processes resumes at any other number of processes.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import sys
import warnings
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, NoReturn

import torch
import torch.distributed as dist
from torch import nn
from torch.utils.checkpoint import checkpoint
from torch.utils.data import DataLoader, DistributedSampler, RandomSampler, SequentialSampler

from torchkata.runs import atomic_write_bytes, load_state, save_state

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
    "set_epoch",
    "shutdown",
    "world_size",
]

STRATEGIES = ("ddp", "fsdp", "none")


@dataclasses.dataclass(frozen=True)
class DistInfo:
    """Where this process sits in the job.

    Attributes:
        rank: global index of this process, ``0 <= rank < world_size``.
        world_size: number of processes in the job (1 in a plain process).
        local_rank: index of this process on its machine; picks its GPU.
        device: the device this process computes on (``cuda:<local_rank>`` or ``cpu``).
    """

    rank: int
    world_size: int
    local_rank: int
    device: torch.device


_INFO: DistInfo | None = None


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise ValueError(f"environment variable {name}: expected an integer, got {raw!r}") from None


def _is_distributed() -> bool:
    return dist.is_available() and dist.is_initialized()


def init(backend: str | None = None) -> DistInfo:
    """Join the job that torchrun started, or run alone in a plain process.

    Reads torchrun's environment (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``,
    ``MASTER_ADDR``, ``MASTER_PORT``). When it is there, the default process group is
    created with NCCL when the machine has a GPU for each of its local processes, and each
    process takes ``cuda:<LOCAL_RANK>``; otherwise with gloo, on the CPU. Without it the
    world size is 1 and no process group is created, so the same script runs unchanged
    with ``python script.py``. Calling it
    again returns the same answer.

    Args:
        backend: process-group backend (``'nccl'``, ``'gloo'``, ...). Default: ``None``
            (NCCL on CUDA, gloo otherwise).

    Returns:
        DistInfo: rank, world size, local rank and device of this process.

    Examples::

        >>> from torchkata import distributed
        >>> info = distributed.init()  # a plain process: no torchrun environment
        >>> info.rank, info.world_size
        (0, 1)
    """
    global _INFO
    if _INFO is not None and (_INFO.world_size == 1 or _is_distributed()):
        return _INFO
    if backend is not None and not isinstance(backend, str):
        raise TypeError(f"backend: expected a str or None, got {type(backend).__name__}")
    launched = "RANK" in os.environ and "WORLD_SIZE" in os.environ
    world = _env_int("WORLD_SIZE", 1) if launched else 1
    rank_ = _env_int("RANK", 0) if launched else 0
    local = _env_int("LOCAL_RANK", 0) if launched else 0
    local_world = _env_int("LOCAL_WORLD_SIZE", 1) if launched else 1
    # One GPU per local process, or none: 2 processes on a 1-GPU laptop use the CPU.
    cuda = torch.cuda.is_available() and torch.cuda.device_count() >= local_world
    if backend == "nccl" and not cuda:
        raise ValueError(
            f"backend: 'nccl' needs one CUDA device per local process ({local_world}), "
            f"found {torch.cuda.device_count() if torch.cuda.is_available() else 0}"
        )
    if cuda:
        device = torch.device("cuda", local)
        torch.cuda.set_device(device)
    else:
        device = torch.device("cpu")
    if launched and not _is_distributed():
        dist.init_process_group(backend or ("nccl" if cuda else "gloo"))
    if _is_distributed():
        rank_, world = dist.get_rank(), dist.get_world_size()
    _INFO = DistInfo(rank=rank_, world_size=world, local_rank=local, device=device)
    return _INFO


def shutdown() -> None:
    """Destroy the default process group if there is one; a no-op otherwise.

    All processes meet at a barrier first: a process that tore its group down while
    another still used it (rank 0 gathering a state dict, say) was seen to abort in gloo.
    """
    global _INFO
    if _is_distributed():
        dist.barrier()
        dist.destroy_process_group()
    _INFO = None


def exit_process(status: int = 0) -> NoReturn:
    """End this process now with ``status``, skipping the interpreter's teardown.

    For the entry point of a torchrun worker, after :func:`shutdown`. Two-process gloo jobs
    on a loaded CPU here aborted in about 1 of 20 runs *after* their last line of Python
    ("terminate called without an active exception", SIGABRT, no Python frame): a gloo
    thread is still joinable while C++ objects are destroyed at exit, and torchrun then
    reports the whole job failed although its work was done and written. Flushing the
    standard streams and ``os._exit`` skip that teardown (and ``atexit`` handlers).
    """
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)


def rank() -> int:
    """Global rank of this process: 0 in a plain process."""
    return dist.get_rank() if _is_distributed() else 0


def world_size() -> int:
    """Number of processes in the job: 1 in a plain process."""
    return dist.get_world_size() if _is_distributed() else 1


def is_main() -> bool:
    """True on rank 0, the process that logs and writes checkpoints."""
    return rank() == 0


def barrier() -> None:
    """Wait until every process gets here; a no-op when not distributed."""
    if _is_distributed():
        dist.barrier()


def _collective_device() -> torch.device:
    if dist.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def all_reduce_mean(value: float | torch.Tensor) -> float | torch.Tensor:
    """Mean of ``value`` over all processes (for logging a loss or a metric).

    Args:
        value: a Python number or a floating-point tensor, the same shape on every rank.

    Returns:
        The mean over ranks, of the same kind (float or tensor, same device) as ``value``;
        ``value`` itself at world size 1.

    Examples::

        >>> from torchkata import distributed
        >>> distributed.all_reduce_mean(2.5)
        2.5
    """
    if isinstance(value, torch.Tensor):
        if not value.is_floating_point():
            raise TypeError(f"value: expected a floating-point tensor, got dtype {value.dtype}")
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        value = float(value)
    else:
        raise TypeError(f"value: expected a float or a tensor, got {type(value).__name__}")
    if world_size() == 1:
        return value
    if isinstance(value, torch.Tensor):
        buf = value.detach().to(_collective_device(), copy=True)
    else:
        buf = torch.tensor(value, dtype=torch.float64, device=_collective_device())
    dist.all_reduce(buf, op=dist.ReduceOp.SUM)
    buf /= world_size()
    if isinstance(value, torch.Tensor):
        return buf.to(value.device)
    return float(buf.item())


# --------------------------------------------------------------------------- prepare


def _blocks(model: nn.Module) -> list[nn.Module]:
    """The units that FSDP shards and activation checkpointing recomputes one by one.

    The rule: the items of every top-level ``nn.Sequential`` or ``nn.ModuleList`` child
    (or of ``model`` itself when it is one) that hold parameters, plus every top-level
    ``nn.Linear`` child. Other parameters stay with the root.
    """
    if isinstance(model, (nn.Sequential, nn.ModuleList)):
        containers: list[nn.Module] = [model]
        singles: list[nn.Module] = []
    else:
        children = list(model.children())
        containers = [c for c in children if isinstance(c, (nn.Sequential, nn.ModuleList))]
        singles = [c for c in children if isinstance(c, nn.Linear)]
    blocks = [m for c in containers for m in c.children() if any(True for _ in m.parameters())]
    return blocks + singles


def _checkpoint_forward(block: nn.Module) -> None:
    inner = block.forward

    def forward(*args: Any, **kwargs: Any) -> Any:
        return checkpoint(inner, *args, use_reentrant=False, **kwargs)

    block.forward = forward  # type: ignore[method-assign]
    block._torchkata_checkpointed = True  # type: ignore[attr-defined]


def saved_activation_bytes(
    model: nn.Module, forward: Callable[[], torch.Tensor]
) -> tuple[torch.Tensor, int]:
    """Run ``forward()`` and count the bytes autograd keeps for the backward pass.

    Counts every tensor saved for backward (``torch.autograd.graph.saved_tensors_hooks``)
    and, for the blocks whose forward :func:`prepare` checkpointed, the block inputs that
    the checkpoint keeps outside those hooks. Parameters saved by reference are counted
    too, alike with and without checkpointing.

    Returns:
        ``(output of forward(), bytes)``.

    Examples:
        >>> model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 1))
        >>> _, n = saved_activation_bytes(model, lambda: model(torch.randn(16, 4)).sum())
        >>> n > 0
        True
    """
    total = 0

    def pack(t: torch.Tensor) -> torch.Tensor:
        nonlocal total
        total += t.numel() * t.element_size()
        return t

    def keep_input(module: nn.Module, args: tuple) -> None:
        nonlocal total
        total += sum(a.numel() * a.element_size() for a in args if isinstance(a, torch.Tensor))

    checkpointed = [m for m in model.modules() if getattr(m, "_torchkata_checkpointed", False)]
    handles = [m.register_forward_pre_hook(keep_input) for m in checkpointed]
    try:
        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            output = forward()
    finally:
        for handle in handles:
            handle.remove()
    return output, total


def _distributed_loader(loader: DataLoader) -> DataLoader:
    if not isinstance(loader.sampler, (RandomSampler, SequentialSampler)):
        raise ValueError(
            "loader: expected a DataLoader with batch_size and shuffle (a RandomSampler or "
            f"SequentialSampler), got sampler {type(loader.sampler).__name__}"
        )
    if loader.batch_size is None:
        raise ValueError("loader: expected a DataLoader with batch_size, got a batch_sampler")
    shuffle = isinstance(loader.sampler, RandomSampler)
    generator = getattr(loader.sampler, "generator", None) or loader.generator
    seed = int(generator.initial_seed()) if generator is not None else 0
    sampler = DistributedSampler(
        loader.dataset,
        num_replicas=world_size(),
        rank=rank(),
        shuffle=shuffle,
        seed=seed,
        drop_last=loader.drop_last,
    )
    extra: dict[str, Any] = {}
    if loader.num_workers > 0:
        extra = {
            "prefetch_factor": loader.prefetch_factor,
            "persistent_workers": loader.persistent_workers,
        }
    return DataLoader(
        loader.dataset,
        batch_size=loader.batch_size,
        sampler=sampler,
        num_workers=loader.num_workers,
        collate_fn=loader.collate_fn,
        pin_memory=loader.pin_memory,
        drop_last=loader.drop_last,
        timeout=loader.timeout,
        worker_init_fn=loader.worker_init_fn,
        generator=loader.generator,
        **extra,
    )


def prepare(
    model: nn.Module,
    loader: DataLoader,
    strategy: str = "ddp",
    *,
    checkpointing: bool = False,
) -> tuple[nn.Module, DataLoader]:
    """Move ``model`` to this process's device, wrap it for data parallelism, shard the data.

    * ``'ddp'``: :class:`~torch.nn.parallel.DistributedDataParallel`; every rank holds the
      whole model and gradients are averaged during ``backward``.
    * ``'fsdp'``: FSDP2, :func:`torch.distributed.fsdp.fully_shard` on each block, then on
      the root; parameters, gradients and optimizer state are sharded over the ranks.
      The blocks are the items of every top-level ``nn.Sequential`` / ``nn.ModuleList``
      child (or of ``model`` itself when it is one) that hold parameters, plus every
      top-level ``nn.Linear`` child. Build the optimizer *after* ``prepare``.
    * ``'none'``: the model is only moved to the device.

    With a world size above 1 (and a strategy other than ``'none'``), the returned loader
    reads through a :class:`~torch.utils.data.DistributedSampler` with the loader's
    per-process ``batch_size``, its shuffle setting (a ``RandomSampler`` means shuffle),
    ``drop_last`` and seed (the sampler's or loader's generator seed, else 0), so the
    global batch is ``world_size * batch_size``. Without ``drop_last`` the sampler pads
    the dataset by repeating samples to a multiple of the world size. Call
    :func:`set_epoch` at the start of each epoch. At world size 1 nothing is wrapped; a
    shuffling loader still gets a one-replica ``DistributedSampler``, so that the same
    seed gives the same global batches at every world size (a run checkpointed at N
    processes resumes exactly at 1), and any other loader is returned unchanged.

    Args:
        model: the model to train.
        loader: the single-process data loader.
        strategy: ``'ddp'``, ``'fsdp'`` or ``'none'``. Default: ``'ddp'``
        checkpointing: recompute each block's activations in ``backward`` instead of
            storing them (``torch.utils.checkpoint`` with ``use_reentrant=False``),
            applied before wrapping. Default: ``False``

    Returns:
        tuple: the wrapped model and the (possibly sharded) loader.

    Examples::

        >>> import torch
        >>> from torch import nn
        >>> from torch.utils.data import DataLoader, TensorDataset
        >>> from torchkata import distributed
        >>> loader = DataLoader(TensorDataset(torch.randn(8, 3)), batch_size=4)
        >>> model, same = distributed.prepare(nn.Linear(3, 1), loader, "none")
        >>> same is loader
        True
    """
    if strategy not in STRATEGIES:
        raise ValueError(f"strategy: expected one of {STRATEGIES}, got {strategy!r}")
    if not isinstance(model, nn.Module):
        raise TypeError(f"model: expected an nn.Module, got {type(model).__name__}")
    if not isinstance(loader, DataLoader):
        raise TypeError(f"loader: expected a DataLoader, got {type(loader).__name__}")
    device = init().device
    if checkpointing:
        for block in _blocks(model):
            _checkpoint_forward(block)
    model = model.to(device)
    if strategy == "none":
        return model, loader
    if world_size() == 1:
        if isinstance(loader.sampler, RandomSampler):
            # The same shuffled order as at any other world size: a run resumes exactly.
            return model, _distributed_loader(loader)
        return model, loader
    if strategy == "ddp":
        ids = [device.index] if device.type == "cuda" else None
        model = nn.parallel.DistributedDataParallel(model, device_ids=ids)
    else:
        from torch.distributed.fsdp import fully_shard

        for block in _blocks(model):
            fully_shard(block)
        fully_shard(model)
    return model, _distributed_loader(loader)


def set_epoch(loader: DataLoader, epoch: int) -> None:
    """Tell the loader's sampler the epoch, so each epoch shuffles differently on all ranks.

    Calls ``loader.sampler.set_epoch(epoch)`` when the sampler has it; a no-op otherwise.
    """
    sampler = getattr(loader, "sampler", None)
    if hasattr(sampler, "set_epoch"):
        sampler.set_epoch(epoch)


@contextlib.contextmanager
def accumulation_step(model: nn.Module, is_last: bool) -> Iterator[None]:
    """Skip the gradient all-reduce on micro-batches that are not the last of a step.

    Run ``backward`` inside the context. For DDP this is ``model.no_sync()`` when
    ``is_last`` is False; for FSDP2 ``set_requires_gradient_sync(False)`` (gradients are
    kept unsharded until the last micro-batch). A no-op for other models and on the last
    micro-batch, where the accumulated gradients are synchronised as usual.

    Args:
        model: the model returned by :func:`prepare`.
        is_last: whether this is the last micro-batch before ``optimizer.step()``.

    Examples::

        >>> import torch
        >>> from torch import nn
        >>> from torchkata import distributed
        >>> model = nn.Linear(3, 1)
        >>> for i, x in enumerate(torch.randn(2, 4, 3)):
        ...     with distributed.accumulation_step(model, is_last=i == 1):
        ...         (model(x).pow(2).mean() / 2).backward()
        >>> model.weight.grad.shape
        torch.Size([1, 3])
    """
    if is_last:
        yield
        return
    if isinstance(model, nn.parallel.DistributedDataParallel):
        with model.no_sync():
            yield
        return
    setter = getattr(model, "set_requires_gradient_sync", None)
    if setter is None:
        yield
        return
    setter(False)
    try:
        yield
    finally:
        setter(True)


# --------------------------------------------------------------------------- state


def _is_fsdp(model: nn.Module) -> bool:
    try:
        from torch.distributed.fsdp import FSDPModule
    except ImportError:  # pragma: no cover - torch without FSDP2
        return False
    return isinstance(model, FSDPModule)


def _unwrap(model: nn.Module) -> nn.Module:
    if isinstance(model, (nn.parallel.DistributedDataParallel, nn.DataParallel)):
        return model.module
    return model


def full_state_dict(model: nn.Module) -> dict[str, torch.Tensor]:
    """The model's full, unsharded state dict as CPU tensors, without a ``module.`` prefix.

    For FSDP2 the shards are gathered (a collective: every rank must call this) with
    ``cpu_offload=True``, which leaves the tensors on rank 0 only: the other ranks get an
    empty dict. For DDP, DataParallel and plain models every rank gets the full dict.

    Args:
        model: a plain model or one returned by :func:`prepare` / :func:`data_parallel`.

    Returns:
        dict: parameter and buffer name to a detached CPU tensor.

    Examples::

        >>> from torch import nn
        >>> from torchkata import distributed
        >>> sorted(distributed.full_state_dict(nn.Linear(3, 1)))
        ['bias', 'weight']
    """
    if _is_fsdp(model):
        from torch.distributed.checkpoint.state_dict import (
            StateDictOptions,
            get_model_state_dict,
        )

        options = StateDictOptions(full_state_dict=True, cpu_offload=True)
        return dict(get_model_state_dict(model, options=options))
    state = _unwrap(model).state_dict()
    return {k: v.detach().to("cpu", copy=True) for k, v in state.items()}


def load_full_state_dict(model: nn.Module, state: Mapping[str, torch.Tensor]) -> None:
    """Load a full state dict (from :func:`full_state_dict`) into a wrapped or plain model.

    Works at any world size, whatever world size saved it. For FSDP2 the tensors are
    broadcast from rank 0 and each rank keeps its shard, so the other ranks may pass an
    empty dict; for other models every rank loads the ``state`` it is given.

    Args:
        model: a plain model or one returned by :func:`prepare` / :func:`data_parallel`.
        state: parameter and buffer name to tensor, without a ``module.`` prefix.
    """
    if not isinstance(state, Mapping):
        raise TypeError(f"state: expected a mapping of name to tensor, got {type(state).__name__}")
    if _is_fsdp(model):
        from torch.distributed.checkpoint.state_dict import (
            StateDictOptions,
            set_model_state_dict,
        )

        options = StateDictOptions(full_state_dict=True, broadcast_from_rank0=world_size() > 1)
        set_model_state_dict(model, dict(state), options=options)
        return
    _unwrap(model).load_state_dict(dict(state))


def _optimizer_options():
    from torch.distributed.checkpoint.state_dict import StateDictOptions

    # Keyed by parameter name and unsharded on CPU: loadable at any world size.
    return StateDictOptions(full_state_dict=True, cpu_offload=True)


def full_optimizer_state_dict(model: nn.Module, optimizer: torch.optim.Optimizer) -> dict:
    """The optimizer's full state dict, keyed by parameter name, as CPU tensors.

    A plain ``optimizer.state_dict()`` keys its state by parameter index and, under FSDP2,
    holds only this rank's shards; this one (``torch.distributed.checkpoint``'s
    ``get_optimizer_state_dict`` with full state dicts and CPU offload) does neither, so it
    loads at any world size with :func:`load_full_optimizer_state_dict`. A collective under
    FSDP2 (every rank must call it); there the other ranks than 0 get an empty dict.

    Args:
        model: the model ``optimizer`` trains, plain or returned by :func:`prepare`.
        optimizer: its optimizer.

    Returns:
        dict: ``{"state": {name: {...}}, "param_groups": [...]}``.

    Examples::

        >>> import torch
        >>> from torch import nn
        >>> from torchkata import distributed
        >>> model = nn.Linear(3, 1)
        >>> optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
        >>> model(torch.ones(2, 3)).sum().backward(); optimizer.step()
        >>> sorted(distributed.full_optimizer_state_dict(model, optimizer)["state"])
        ['bias', 'weight']
    """
    from torch.distributed.checkpoint.state_dict import get_optimizer_state_dict

    if not isinstance(optimizer, torch.optim.Optimizer):
        raise TypeError(f"optimizer: expected a torch.optim.Optimizer, got {type(optimizer)}")
    return dict(get_optimizer_state_dict(model, optimizer, options=_optimizer_options()))


def load_full_optimizer_state_dict(
    model: nn.Module, optimizer: torch.optim.Optimizer, state: Mapping[str, Any]
) -> None:
    """Load what :func:`full_optimizer_state_dict` returned, at any world size.

    Every rank passes the full ``state`` (read from a checkpoint all ranks see); under
    FSDP2 each rank keeps its shard.
    """
    from torch.distributed.checkpoint.state_dict import set_optimizer_state_dict

    if not isinstance(state, Mapping) or "param_groups" not in state:
        raise TypeError(
            "state: expected the dict of full_optimizer_state_dict() with 'state' and "
            f"'param_groups', got {type(state).__name__}"
        )
    set_optimizer_state_dict(model, optimizer, dict(state), options=_optimizer_options())


def _latest(folder: Path) -> str | None:
    latest = folder / "latest.json"
    if not latest.is_file():
        return None
    return str(json.loads(latest.read_text())["name"])


def save_checkpoint(path: str | Path, state: Mapping[str, Any]) -> None:
    """Save ``state`` as the latest checkpoint in the folder ``path``; rank 0 writes.

    The layout is :class:`torchkata.runs.Run`'s: ``NNNNNN.safetensors`` + ``NNNNNN.json``
    written atomically, then ``latest.json`` naming them, then older pairs removed. All
    ranks must call this (they meet at a barrier afterwards, so no rank reads a checkpoint
    that is not complete yet). Put :func:`full_state_dict` in ``state`` to resume at any
    world size.

    Args:
        path: the checkpoint folder (created if missing).
        state: nested dicts of tensors, numbers and strings.

    Examples::

        >>> import tempfile, torch
        >>> from torchkata import distributed
        >>> folder = tempfile.mkdtemp()
        >>> distributed.save_checkpoint(folder, {"step": 3, "w": torch.ones(2)})
        >>> distributed.load_checkpoint(folder)["step"]
        3
    """
    folder = Path(path)
    if is_main():
        folder.mkdir(parents=True, exist_ok=True)
        previous = _latest(folder)
        name = f"{(int(previous) + 1) if previous else 1:06d}"
        save_state(dict(state), folder, name)
        atomic_write_bytes(folder / "latest.json", json.dumps({"name": name}).encode())
        for old in folder.iterdir():  # older pairs and leftovers of killed writes
            if old.name != "latest.json" and not old.name.startswith(name + "."):
                old.unlink(missing_ok=True)
    barrier()


def load_checkpoint(path: str | Path) -> dict[str, Any] | None:
    """Load the latest checkpoint that :func:`save_checkpoint` wrote, on every rank.

    Every rank reads the files, so they must be on a filesystem all ranks see. Never
    unpickles: safetensors and JSON only.

    Returns:
        dict or None: the saved state, or ``None`` when the folder holds no checkpoint.
    """
    folder = Path(path)
    name = _latest(folder)
    if name is None:
        return None
    return load_state(folder, name)


def data_parallel(model: nn.Module) -> nn.DataParallel:
    """Wrap ``model`` in :class:`torch.nn.DataParallel`, for comparison with DDP.

    DataParallel runs one process that scatters each batch over the visible GPUs and
    gathers the outputs on the first one, every step; PyTorch recommends
    DistributedDataParallel even on a single machine, and this function warns so.

    Args:
        model: the model to replicate.

    Returns:
        nn.DataParallel: the wrapped model (on CPU it simply calls ``model``).

    Examples::

        >>> import warnings
        >>> from torch import nn
        >>> from torchkata import distributed
        >>> with warnings.catch_warnings(record=True) as caught:
        ...     warnings.simplefilter("always")
        ...     wrapped = distributed.data_parallel(nn.Linear(3, 1))
        >>> "DistributedDataParallel" in str(caught[0].message)
        True
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model: expected an nn.Module, got {type(model).__name__}")
    warnings.warn(
        "nn.DataParallel is single-process and multi-threaded and is slower than "
        "DistributedDataParallel; PyTorch recommends DistributedDataParallel (torchrun + "
        "torchkata.distributed.prepare) even on a single machine.",
        UserWarning,
        stacklevel=2,
    )
    return nn.DataParallel(model)
