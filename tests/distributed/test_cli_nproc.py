"""``torchkata run NAME --nproc N``: the recipe under torchrun, killed and resumed elsewhere."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from torchkata.cli import main

# A small, float64 training: long enough to be killed after its first checkpoint.
SMALL = ["--set", "width=32", "--set", "depth=2", "--set", "checkpoint_every=10"]
STEPS = 300


def torchkata(*args: str, **kwargs) -> subprocess.Popen | subprocess.CompletedProcess:
    env = {**os.environ}
    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(name, None)
    command = [sys.executable, "-m", "torchkata", *args]
    return subprocess.run(command, capture_output=True, text=True, env=env, timeout=300, **kwargs)


def losses(run_dir: Path) -> list[float]:
    records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == list(range(1, len(records) + 1))
    return [r["loss"] for r in records]


def only_run(parent: Path) -> Path:
    (run_dir,) = parent.iterdir()
    return run_dir


def test_two_processes_killed_after_a_checkpoint_resume_at_one(tmp_path):
    args = ["run", "distributed", "--nproc", "2", "--set", f"steps={STEPS}", *SMALL]
    full = torchkata(*args, "--out", str(tmp_path / "full"))
    assert full.returncode == 0, full.stderr
    full_dir = only_run(tmp_path / "full")
    assert full.stdout.strip() == str(full_dir)  # rank 0 alone prints the folder
    assert len(losses(full_dir)) == STEPS
    config = json.loads((full_dir / "config.json").read_text())
    assert "--nproc 2" in config["command"]
    assert "on 2 process(es)" in (full_dir / "report.md").read_text()

    # The same run, killed (the whole process group: torchrun and both workers) as soon as
    # its first checkpoint is complete, then resumed on 1 process.
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE")}
    command = [sys.executable, "-m", "torchkata", *args, "--out", str(tmp_path / "killed")]
    proc = subprocess.Popen(
        command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env,
        start_new_session=True,
    )  # fmt: skip
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not list(
        (tmp_path / "killed").glob("*/checkpoint/latest.json")
    ):
        time.sleep(0.02)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    killed_dir = only_run(tmp_path / "killed")
    assert not (killed_dir / "metrics.json").exists(), "the run finished before the kill"

    resumed = torchkata("run", "--resume", str(killed_dir), "--nproc", "1")
    assert resumed.returncode == 0, resumed.stderr
    assert "resumed at step" in resumed.stderr
    got, want = losses(killed_dir), losses(full_dir)
    assert len(got) == STEPS
    gap = max(abs(a - b) for a, b in zip(got, want, strict=True))
    assert gap <= 1e-9, f"resumed at 1 process: largest loss gap {gap:.3g}"
    assert want[-1] < 0.5 * want[0]  # it did learn


def test_nproc_refuses_a_recipe_that_trains_in_one_process(capsys):
    assert main(["run", "norm", "--nproc", "2"]) == 2
    err = capsys.readouterr().err
    assert "recipe 'norm' trains in one process" in err and "support --nproc: distributed" in err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--nproc", "0"], "--nproc: expected >= 1, got 0"),
        (["--nnodes", "2"], "need --nproc"),
        (["--nproc", "2", "--nnodes", "2"], "--rdzv-endpoint: expected HOST:PORT of machine 0"),
        (["--nproc", "2", "--nnodes", "2", "--node-rank", "2", "--rdzv-endpoint", "h:1"],
         "--node-rank: expected 0 <= node rank < --nnodes=2, got 2"),
        (["--nproc", "2", "--rdzv-endpoint", "host"], "--rdzv-endpoint: expected HOST:PORT"),
    ],
)  # fmt: skip
def test_bad_launch_arguments_name_the_argument(capsys, args, message):
    assert main(["run", "distributed", *args]) == 2
    assert message in capsys.readouterr().err


def test_two_machines_rendezvous_and_only_machine_0_keeps_a_folder(tmp_path):
    # Two "machines" on this one: two commands with --nnodes 2 and their own --node-rank.
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE")}
    procs = []
    for node in (0, 1):
        command = [
            sys.executable, "-m", "torchkata", "run", "distributed", "--set", "steps=5",
            *SMALL, "--nproc", "1", "--nnodes", "2", "--node-rank", str(node),
            "--rdzv-endpoint", f"127.0.0.1:{port}", "--out", str(tmp_path / f"node{node}"),
        ]  # fmt: skip
        procs.append(subprocess.Popen(command, stdout=subprocess.PIPE, text=True, env=env))
    outputs = [p.communicate(timeout=180)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0]
    run_dir = only_run(tmp_path / "node0")
    assert outputs == [f"{run_dir}\n", ""]
    assert "on 2 process(es)" in (run_dir / "report.md").read_text()
    assert not (tmp_path / "node1").exists()
