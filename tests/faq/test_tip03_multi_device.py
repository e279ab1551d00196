"""Executable FAQ, tip 3 (multi-device training): claims 3.1–3.5 of FAQ_CLAIMS.md.

Multi-process claims run real 2-process jobs with PyTorch's launcher (torchrun, gloo on
CPU). This machine has no GPU, so claim 3.1 is shown as far as DataParallel goes on CPU.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import pytest
import torch
from torch import nn

from torchkata import distributed as dist
from torchkata.distributed.recipe import Config, _launch, build_model


def _torchrun(script: str, tmp_path: Path, nproc: int = 2) -> dict:
    path = tmp_path / "job.py"
    path.write_text(textwrap.dedent(script))
    result = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone",
         "--nproc_per_node", str(nproc), str(path), str(tmp_path / "out.json")],
        capture_output=True, text=True, timeout=180,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads((tmp_path / "out.json").read_text())


def test_3_1_data_parallel_wraps_one_process_and_warns_that_ddp_is_recommended():
    torch.manual_seed(0)
    model = nn.Linear(8, 3)
    with pytest.warns(UserWarning, match="DistributedDataParallel"):
        wrapped = dist.data_parallel(model)
    assert isinstance(wrapped, nn.DataParallel)
    x = torch.randn(6, 8)
    # Without GPUs DataParallel has no devices to split over: it runs the module as is.
    # (With k GPUs it scatters the 6 rows in k chunks and gathers the outputs on GPU 0.)
    torch.testing.assert_close(wrapped(x), model(x))
    if not torch.cuda.is_available():
        assert wrapped.device_ids == []


def test_3_2_ddp_runs_one_process_per_device_and_synchronises_gradients(tmp_path):
    script = """
    import json, sys, torch
    from torch import nn
    from torchkata import distributed as dist
    from torch.utils.data import DataLoader, TensorDataset

    torch.set_num_threads(1)
    info = dist.init()
    torch.manual_seed(0)
    model = nn.Linear(4, 2).double()
    loader = DataLoader(TensorDataset(torch.zeros(4, 4)), batch_size=2)
    model, _ = dist.prepare(model, loader, "ddp")
    torch.manual_seed(100 + info.rank)  # each process sees different data
    x = torch.randn(5, 4, dtype=torch.float64)
    local = torch.autograd.grad(model.module(x).pow(2).sum(), model.module.weight)[0]
    model(x).pow(2).sum().backward()  # through DDP: gradients are all-reduced
    mean_local = dist.all_reduce_mean(local.clone())
    if dist.is_main():
        json.dump({"world": info.world_size,
                   "max_diff": (model.module.weight.grad - mean_local).abs().max().item(),
                   "local_vs_synced": (model.module.weight.grad - local).abs().max().item()},
                  open(sys.argv[1], "w"))
    dist.shutdown()
    dist.exit_process(0)
    """
    out = _torchrun(script, tmp_path)
    assert out["world"] == 2
    assert out["max_diff"] < 1e-12  # every process holds the average of both gradients
    assert out["local_vs_synced"] > 1e-3  # which differs from its own


def test_3_3_two_processes_on_half_batches_follow_one_process_on_the_whole_batch(tmp_path):
    cfg = Config(steps=30, width=64, depth=2, timeout_s=180)
    single = _launch("single", cfg, 0, tmp_path / "single.json")
    ddp = _launch("ddp", cfg, 0, tmp_path / "ddp.json")
    assert ddp["world_size"] == 2 and single["world_size"] == 1
    gap = max(abs(a - b) for a, b in zip(single["losses"], ddp["losses"], strict=True))
    assert gap < 1e-5  # float32 rounding only (measured: see docs/tip03-multi-device.md)
    assert single["losses"][-1] < single["losses"][0] / 2  # and it really trained


def test_3_4_fsdp_shards_the_parameters_so_each_process_holds_a_part(tmp_path):
    script = """
    import json, sys, torch
    from torchkata import distributed as dist
    from torchkata.distributed.recipe import build_model
    from torch.utils.data import DataLoader, TensorDataset

    torch.set_num_threads(1)
    info = dist.init()
    torch.manual_seed(0)
    model = build_model(64, 3)
    total = sum(p.numel() for p in model.parameters())
    loader = DataLoader(TensorDataset(torch.zeros(4, 64)), batch_size=2)
    model, _ = dist.prepare(model, loader, "fsdp")
    local = sum(p.to_local().numel() if hasattr(p, "to_local") else p.numel()
                for p in model.parameters())
    full = dist.full_state_dict(model)
    if dist.is_main():
        json.dump({"total": total, "local": local,
                   "gathered": sum(t.numel() for t in full.values())}, open(sys.argv[1], "w"))
    dist.shutdown()
    dist.exit_process(0)
    """
    out = _torchrun(script, tmp_path)
    assert out["local"] <= 0.6 * out["total"]  # about half each (shards round up)
    assert out["gathered"] == out["total"]  # and the full model can be gathered back


def test_3_5_activation_checkpointing_gives_identical_gradients_and_saves_less():
    torch.manual_seed(0)
    plain = build_model(128, 8).double()
    checkpointed = build_model(128, 8).double()
    checkpointed.load_state_dict(plain.state_dict())
    loader = torch.utils.data.DataLoader(torch.zeros(4, 64), batch_size=2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        checkpointed, _ = dist.prepare(checkpointed, loader, "none", checkpointing=True)
    x = torch.randn(32, 64, dtype=torch.float64)

    def saved_bytes_and_grads(model):
        loss, saved = dist.saved_activation_bytes(model, lambda: model(x).pow(2).mean())
        loss.backward()
        return saved, [p.grad for p in model.parameters()]

    plain_bytes, plain_grads = saved_bytes_and_grads(plain)
    ckpt_bytes, ckpt_grads = saved_bytes_and_grads(checkpointed)
    for a, b in zip(plain_grads, ckpt_grads, strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-12)
    assert ckpt_bytes < 0.6 * plain_bytes
