"""torchkata.distributed in a plain process (world size 1), and activation checkpointing."""

from __future__ import annotations

import copy
import subprocess
import sys
import warnings

import pytest
import torch
import torch.distributed as dist
from torch import nn
from torch.utils.data import DataLoader, DistributedSampler, TensorDataset

from torchkata import distributed


def test_init_without_torchrun_env(monkeypatch):
    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK"):
        monkeypatch.delenv(name, raising=False)
    info = distributed.init()
    assert (info.rank, info.world_size, info.local_rank) == (0, 1, 0)
    assert distributed.init() is info  # idempotent
    assert not dist.is_initialized()
    assert distributed.world_size() == 1 and distributed.rank() == 0 and distributed.is_main()
    distributed.barrier()  # a no-op
    distributed.shutdown()


def test_all_reduce_mean_is_identity():
    t = torch.randn(3)
    assert distributed.all_reduce_mean(t) is t
    assert distributed.all_reduce_mean(1.5) == 1.5
    with pytest.raises(TypeError, match="value"):
        distributed.all_reduce_mean("1.5")
    with pytest.raises(TypeError, match="floating-point"):
        distributed.all_reduce_mean(torch.arange(3))


@pytest.mark.parametrize("strategy", ["none", "ddp", "fsdp"])
def test_prepare_at_world_size_one_wraps_nothing(strategy):
    loader = DataLoader(TensorDataset(torch.randn(8, 3)), batch_size=4, shuffle=False)
    model = nn.Linear(3, 1)
    wrapped, same = distributed.prepare(model, loader, strategy)
    assert same is loader
    assert isinstance(wrapped, nn.Linear)
    distributed.set_epoch(same, 1)  # a SequentialSampler has no set_epoch: a no-op


def test_prepare_at_world_size_one_shuffles_as_at_any_world_size():
    # One replica of a DistributedSampler gives the global order that N replicas split.
    dataset = TensorDataset(torch.arange(12))
    generator = torch.Generator().manual_seed(5)
    loader = DataLoader(dataset, batch_size=4, shuffle=True, generator=generator)
    _, one = distributed.prepare(nn.Linear(3, 1), loader, "ddp")
    assert isinstance(one.sampler, DistributedSampler)
    for epoch in (0, 1):
        distributed.set_epoch(one, epoch)
        order = torch.cat([x for (x,) in one]).tolist()
        split = []
        for rank in (0, 1):
            sampler = DistributedSampler(dataset, num_replicas=2, rank=rank, seed=5)
            sampler.set_epoch(epoch)
            split.append(list(sampler))
        # Rank r takes every other index of the global order; batch b of 2 ranks x 2
        # samples holds the same samples as batch b of 1 rank x 4.
        assert order[0::2] == split[0] and order[1::2] == split[1]
    distributed.set_epoch(one, 0)
    first = torch.cat([x for (x,) in one]).tolist()
    distributed.set_epoch(one, 1)
    assert torch.cat([x for (x,) in one]).tolist() != first  # set_epoch reshuffles
    _, untouched = distributed.prepare(nn.Linear(3, 1), loader, "none")
    assert untouched is loader


def test_prepare_rejects_bad_arguments():
    loader = DataLoader(TensorDataset(torch.randn(8, 3)), batch_size=4)
    with pytest.raises(ValueError, match=r"strategy.*'ddp'.*'zero'"):
        distributed.prepare(nn.Linear(3, 1), loader, "zero")
    with pytest.raises(TypeError, match="model"):
        distributed.prepare("model", loader)
    with pytest.raises(TypeError, match="loader"):
        distributed.prepare(nn.Linear(3, 1), [1, 2])


def test_data_parallel_warns_and_runs():
    model = nn.Linear(3, 1)
    with pytest.warns(UserWarning, match="DistributedDataParallel"):
        wrapped = distributed.data_parallel(model)
    x = torch.randn(4, 3)
    torch.testing.assert_close(wrapped(x), model(x))
    assert sorted(distributed.full_state_dict(wrapped)) == ["bias", "weight"]


def test_full_state_dict_round_trip_and_checkpoint_folder(tmp_path):
    model, other = nn.Linear(3, 2), nn.Linear(3, 2)
    distributed.load_full_state_dict(other, distributed.full_state_dict(model))
    torch.testing.assert_close(other.weight, model.weight)
    assert distributed.load_checkpoint(tmp_path / "none") is None
    for step in (1, 2):
        distributed.save_checkpoint(tmp_path, {"step": step, "model": model.state_dict()})
    assert distributed.load_checkpoint(tmp_path)["step"] == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "000002.json",
        "000002.safetensors",
        "latest.json",
    ]


def _deep_mlp(depth: int = 12, width: int = 64) -> nn.Module:
    torch.manual_seed(0)
    # Each block widens 4x and back, like a transformer's MLP: its hidden activation is
    # what checkpointing drops. (With Linear + Tanh blocks a block's only saved activation
    # is its input, which checkpointing keeps anyway: no saving.)
    blocks = [
        nn.Sequential(
            nn.Linear(width, 4 * width), nn.Tanh(), nn.Linear(4 * width, width), nn.Tanh()
        )
        for _ in range(depth)
    ]
    return nn.Sequential(*blocks, nn.Linear(width, 1)).double()


def _saved_bytes(
    model: nn.Module, x: torch.Tensor, checkpointed: bool
) -> tuple[int, list[torch.Tensor]]:
    """Bytes of activations saved for backward (parameters excluded), and the gradients.

    With checkpointing, each block's input is kept by the checkpoint itself rather than
    through the saved-tensor hooks, so those bytes are added from forward pre-hooks.
    """
    params = {p.untyped_storage().data_ptr() for p in model.parameters()}
    storages: dict[int, int] = {}

    def pack(t: torch.Tensor) -> torch.Tensor:
        s = t.untyped_storage()
        if s.data_ptr() not in params:
            storages[s.data_ptr()] = s.nbytes()
        return t

    def keep_input(_module: nn.Module, args: tuple[torch.Tensor, ...]) -> None:
        s = args[0].untyped_storage()
        storages[s.data_ptr()] = s.nbytes()

    handles = [b.register_forward_pre_hook(keep_input) for b in model[:-1]] if checkpointed else []
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        loss = model(x).pow(2).mean()
    for h in handles:
        h.remove()
    loss.backward()
    return sum(storages.values()), [p.grad.clone() for p in model.parameters()]


def test_activation_checkpointing_same_gradients_less_memory():
    x = torch.randn(256, 64, dtype=torch.float64)
    plain = _deep_mlp()
    ckpt = copy.deepcopy(plain)
    ckpt, _ = distributed.prepare(ckpt, DataLoader([0]), "none", checkpointing=True)
    bytes_plain, grads_plain = _saved_bytes(plain, x, checkpointed=False)
    bytes_ckpt, grads_ckpt = _saved_bytes(ckpt, x, checkpointed=True)
    for a, b in zip(grads_plain, grads_ckpt, strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-12)
    # Without: each block saves its input and its 4x hidden activation; with: its input.
    assert bytes_ckpt < 0.3 * bytes_plain, (bytes_plain, bytes_ckpt)
    print(f"saved activations: {bytes_plain} bytes plain, {bytes_ckpt} bytes checkpointed")


def test_accumulation_step_is_a_no_op_on_plain_models():
    model = nn.Linear(3, 1)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with distributed.accumulation_step(model, is_last=False):
            model(torch.randn(2, 3)).sum().backward()
    assert model.weight.grad is not None


def test_exit_process_flushes_and_exits_with_the_status():
    # Piped stdout is block-buffered: without the flush, os._exit would lose "done".
    code = "from torchkata import distributed\nprint('done', end='')\ndistributed.exit_process(3)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert (result.returncode, result.stdout) == (3, "done")
