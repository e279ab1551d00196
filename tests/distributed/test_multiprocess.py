"""2-process torchrun jobs on CPU (gloo) against 1-process references, float64."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import torch

from torchkata import distributed
from torchkata.runs import load_state

WORKER = Path(__file__).with_name("_worker.py")
TOL = 1e-6


def _load_worker():
    spec = importlib.util.spec_from_file_location("_torchkata_dist_worker", WORKER)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def torchrun(script: Path, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    # --standalone: torchrun picks a free port itself (no race with other jobs)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]
    cmd += [str(script), *args]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(name, None)
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)


def max_diff(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> float:
    assert sorted(a) == sorted(b)
    return max((a[k] - b[k]).abs().max().item() for k in a)


@pytest.fixture(scope="module")
def worker():
    return _load_worker()


@pytest.fixture(scope="module")
def job(tmp_path_factory):
    out = tmp_path_factory.mktemp("job")
    proc = torchrun(WORKER, str(out))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return out, load_state(out, "results")


@pytest.fixture(scope="module")
def reference(worker):
    return {accum: worker.train("none", accum) for accum in (1, 2)}


@pytest.fixture(scope="module")
def shuffled_reference(worker):
    # "ddp" at world size 1 wraps nothing but shuffles through a one-replica sampler.
    return worker.train("ddp", shuffle=True)


@pytest.mark.parametrize("strategy", ["ddp", "fsdp"])
@pytest.mark.parametrize("accum", [1, 2])
def test_two_processes_match_one(job, reference, strategy, accum):
    # 2 processes x B/2 samples (x accum micro-batches) == 1 process x B samples.
    _, results = job
    got = results[f"{strategy}-{accum}"]
    diff = max_diff(got, reference[1])
    assert diff <= TOL, f"{strategy} accum={accum}: max abs difference {diff:.3g}"
    assert got["0.0.weight"].dtype == torch.float64
    # The references with and without accumulation agree too.
    assert max_diff(reference[1], reference[accum]) <= TOL


@pytest.mark.parametrize("strategy", ["ddp", "fsdp"])
def test_two_processes_match_one_with_shuffling_over_epochs(job, shuffled_reference, strategy):
    # DistributedSampler + set_epoch: 2 processes see each epoch's shuffled global batches.
    _, results = job
    diff = max_diff(results[f"{strategy}-shuffle"], shuffled_reference)
    assert diff <= TOL, f"{strategy} shuffled: max abs difference {diff:.3g}"


def test_all_reduce_mean_over_two_ranks(job):
    _, results = job
    assert results["ddp-loss"].item() == pytest.approx(0.5)  # mean of ranks 0 and 1


@pytest.mark.parametrize("strategy", ["ddp", "fsdp"])
def test_checkpoint_at_two_resumes_at_one(job, worker, reference, strategy):
    out, _ = job
    saved = distributed.load_checkpoint(out / f"ckpt-{strategy}")
    assert saved["step"] == worker.STOP
    assert not any(k.startswith("module.") for k in saved["model"])
    assert saved["optimizer"]["state"]  # momentum buffers, keyed by parameter name
    resumed = worker.train("none", resume=True, checkpoint=out / f"ckpt-{strategy}")
    diff = max_diff(resumed, reference[1])
    assert diff <= TOL, f"{strategy} resumed at 1 process: max abs difference {diff:.3g}"


FAILING = """
import time
import torch
from torchkata import distributed
torch.set_num_threads(1)
distributed.init()
if distributed.rank() == 1:
    time.sleep(0.5)
    raise RuntimeError("rank one fails on purpose {tag}")
distributed.barrier()  # rank 0 waits here for a peer that never comes
time.sleep(600)
"""


def _processes_running(needle: str) -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().decode(errors="replace")
        except OSError:
            continue
        if needle in cmdline:
            pids.append(int(entry.name))
    return pids


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="scans /proc for orphan processes")
def test_failing_worker_ends_the_job(tmp_path):
    tag = uuid.uuid4().hex
    script = tmp_path / f"failing_{tag}.py"
    script.write_text(FAILING.format(tag=tag))
    start = time.monotonic()
    proc = torchrun(script, timeout=90)
    elapsed = time.monotonic() - start
    assert proc.returncode != 0
    assert elapsed < 60, f"the job took {elapsed:.1f} s to end"
    assert f"rank one fails on purpose {tag}" in proc.stdout + proc.stderr
    deadline = time.monotonic() + 5
    while _processes_running(script.name) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _processes_running(script.name) == []
