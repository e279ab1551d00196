"""Run folders, state files and checkpoints: atomic, safe and faithful."""

from __future__ import annotations

import dataclasses
import json
import os
import pickle
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import torch
from safetensors import SafetensorError

from torchkata.runs import (
    Run,
    atomic_write_bytes,
    load_state,
    resolve_device,
    save_state,
    seed_everything,
)


@dataclasses.dataclass
class TinyConfig:
    epochs: int = 2
    lr: float = 0.1


def _adam_state() -> dict:
    model = torch.nn.Linear(3, 2)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, betas=(0.8, 0.99))
    model(torch.randn(4, 3)).sum().backward()
    opt.step()
    return {"model": model.state_dict(), "optimizer": opt.state_dict()}


def test_state_round_trip_keeps_tensors_numbers_int_keys_and_tuples(tmp_path):
    gen = torch.Generator().manual_seed(3)
    state = {
        **_adam_state(),
        "rng": gen.get_state(),
        "results": [{"acc": 0.5, "name": "x", "flag": True, "none": None}],
        "pair": (1, 2.5),
    }
    save_state(state, tmp_path, "s")
    back = load_state(tmp_path, "s")
    assert back["pair"] == (1, 2.5)
    assert back["results"] == state["results"]
    assert torch.equal(back["rng"], state["rng"])
    for k, v in state["model"].items():
        assert torch.equal(back["model"][k], v)
    # optimizer state is keyed by int parameter ids and holds tuples (betas)
    assert set(back["optimizer"]["state"]) == {0, 1}
    assert back["optimizer"]["param_groups"][0]["betas"] == (0.8, 0.99)
    model = torch.nn.Linear(3, 2)
    opt = torch.optim.Adam(model.parameters())
    opt.load_state_dict(back["optimizer"])  # torch accepts what we stored
    assert torch.equal(
        opt.state_dict()["state"][0]["exp_avg"], state["optimizer"]["state"][0]["exp_avg"]
    )


def test_state_refuses_objects_it_cannot_store_without_pickle(tmp_path):
    with pytest.raises(TypeError, match="cannot store a object"):
        save_state({"x": object()}, tmp_path, "s")


def test_loading_a_pickle_planted_as_checkpoint_is_refused_and_runs_nothing(tmp_path):
    marker = tmp_path / "pwned"

    class Payload:
        def __reduce__(self):
            return (Path.touch, (marker,))

    (tmp_path / "s.safetensors").write_bytes(pickle.dumps(Payload()))
    (tmp_path / "s.json").write_text(json.dumps({"x": {"__tensor__": "x"}}))
    with pytest.raises(SafetensorError):
        load_state(tmp_path, "s")
    assert not marker.exists()


def test_atomic_write_leaves_the_old_file_when_the_write_fails(tmp_path, monkeypatch):
    path = tmp_path / "f.json"
    atomic_write_bytes(path, b"old")

    def broken_replace(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError):
        atomic_write_bytes(path, b"new")
    assert path.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["f.json"]  # no temporary left behind


KILL_SCRIPT = textwrap.dedent(
    """
    import dataclasses, sys, torch
    from torchkata.runs import Run

    @dataclasses.dataclass
    class C:
        n: int = 0

    run = Run("kill", C(), device="cpu", out=sys.argv[1])
    print(run.dir, flush=True)
    i = 0
    while True:
        i += 1
        # a tensor big enough that writing it takes a while, filled with the counter
        run.save_checkpoint({"i": i, "w": torch.full((256, 1024), float(i))})
    """
)


def test_kill_9_at_any_moment_leaves_a_loadable_consistent_checkpoint(tmp_path):
    script = tmp_path / "loop.py"
    script.write_text(KILL_SCRIPT)
    for attempt in range(4):
        proc = subprocess.Popen(
            [sys.executable, str(script), str(tmp_path / "runs")], stdout=subprocess.PIPE, text=True
        )
        run_dir = Path(proc.stdout.readline().strip())
        deadline = time.monotonic() + 60
        while not (run_dir / "checkpoint" / "latest.json").exists():
            assert time.monotonic() < deadline, "the writer never produced a checkpoint"
            time.sleep(0.005)
        time.sleep(0.05 + 0.037 * attempt)  # land the kill at different points of a write
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        run = Run("kill", TinyConfig(), device="cpu", resume=run_dir)
        state = run.load_checkpoint()
        assert state is not None
        assert state["i"] >= 1
        assert torch.equal(state["w"], torch.full((256, 1024), float(state["i"])))


def test_run_folder_logs_metrics_figures_and_report(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    run = Run(
        "demo", TinyConfig(), seed=3, device="cpu", out=tmp_path, command="torchkata run demo"
    )
    run.log({"loss": torch.tensor(0.25), "epoch": 1})
    run.log({"loss": 0.125, "epoch": 2})
    fig, ax = plt.subplots()
    ax.plot([0, 1])
    run.figure("curve", fig)
    run.headline("final loss", 0.125, reference=0.2, source="a paper", higher_is_better=False)
    run.note("The loss **fell**.")
    run.finish(final_loss=0.125)

    config = json.loads((run.dir / "config.json").read_text())
    assert config["seed"] == 3 and config["config"] == {"epochs": 2, "lr": 0.1}
    assert config["versions"]["torch"] == torch.__version__
    assert [r["loss"] for r in run.metrics()] == [0.25, 0.125]
    summary = json.loads((run.dir / "metrics.json").read_text())
    assert summary["summary"] == {"final_loss": 0.125}
    report = (run.dir / "report.md").read_text()
    assert "| final loss (lower is better) | 0.125 | 0.2 | a paper |" in report
    assert "![curve](curve.png)" in report and (run.dir / "curve.png").stat().st_size > 1000
    assert "The loss **fell**." in report and "torchkata run demo" in report


def test_resume_restores_bookkeeping_and_drops_metrics_logged_after_the_checkpoint(tmp_path):
    run = Run("demo", TinyConfig(), device="cpu", out=tmp_path)
    run.log({"x": 1})
    run.headline("h", 1.0)
    run.save_checkpoint({"k": 1})
    run.log({"x": 2})  # lost work: logged after the last checkpoint
    resumed = Run("demo", TinyConfig(), device="cpu", resume=run.dir)
    assert resumed.load_checkpoint() == {"k": 1}
    assert [r["x"] for r in resumed.metrics()] == [1]
    assert resumed.step == 1 and [h.name for h in resumed.headlines] == ["h"]
    resumed.log({"x": 3})
    assert [(r["step"], r["x"]) for r in resumed.metrics()] == [(1, 1), (2, 3)]


def test_only_the_latest_checkpoint_is_kept(tmp_path):
    run = Run("demo", TinyConfig(), device="cpu", out=tmp_path)
    for i in range(3):
        run.save_checkpoint({"i": i})
    names = sorted(p.name for p in run.checkpoint_dir.iterdir())
    assert names == ["000003.json", "000003.safetensors", "latest.json"]


def test_errors_name_the_argument(tmp_path):
    with pytest.raises(ValueError, match="device: expected one of"):
        resolve_device("tpu")
    with pytest.raises(ValueError, match="seed: expected a non-negative int, got -1"):
        seed_everything(-1)
    with pytest.raises(TypeError, match="config: expected a dataclass instance, got dict"):
        Run("demo", {"epochs": 1}, device="cpu", out=tmp_path)
    with pytest.raises(ValueError, match=r"resume: .* is not a run folder"):
        Run("demo", TinyConfig(), device="cpu", resume=tmp_path)
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="device: 'cuda' was asked for"):
            resolve_device("cuda")


def test_ranks_other_than_0_write_nothing_but_read_checkpoints(tmp_path, monkeypatch):
    import matplotlib.pyplot as plt

    main = Run("demo", TinyConfig(), device="cpu", out=tmp_path)
    main.log({"x": 1})
    main.save_checkpoint({"k": 1})
    before = {p: p.read_bytes() for p in main.dir.rglob("*") if p.is_file()}

    monkeypatch.setenv("RANK", "1")
    other = Run("demo", TinyConfig(), device="cpu", resume=main.dir)
    assert not other.is_main
    assert other.load_checkpoint() == {"k": 1} and other.step == 1
    other.log({"x": 2})
    other.figure("curve", plt.figure())
    other.save_checkpoint({"k": 2})
    other.info("not shown")
    other.finish()
    after = {p: p.read_bytes() for p in main.dir.rglob("*") if p.is_file()}
    assert after == before
    assert other.step == 2  # it still counts, as rank 0 does

    fresh = Run("demo", TinyConfig(), device="cpu", out=tmp_path / "elsewhere")
    assert not fresh.dir.exists()  # a new run's folder is rank 0's to make
