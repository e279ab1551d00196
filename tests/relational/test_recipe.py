"""Recipe ``relational`` through the CLI: a tiny run against pinned CPU metrics, and a
pixel training killed with SIGKILL mid-way then resumed to the uninterrupted result."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
import types
from pathlib import Path

import pytest
import torch

from torchkata.cli import main
from torchkata.data import load_sort_of_clevr
from torchkata.data.sort_of_clevr import question_type
from torchkata.relational import RelationNetwork, recipe
from torchkata.runs import bf16_autocast

TINY = [
    "--preset", "full",
    "--set", "n_train=48", "--set", "n_test=10",
    "--set", "state_models=rn-sum,mlp", "--set", "state_epochs=2", "--set", "state_hidden=32",
    "--set", "epochs=2", "--set", "images_per_batch=4", "--set", "conv_channels=8",
    "--set", "g_hidden=32", "--set", "f_hidden=32", "--set", "curriculum_steps=0",
]  # fmt: skip


def _summary(run_dir: Path) -> dict:
    return json.loads((run_dir / "metrics.json").read_text())["summary"]


def test_tiny_run_matches_pinned_cpu_metrics(tmp_path, capsys):
    assert main(["run", "relational", "--device", "cpu", "--out", str(tmp_path), *TINY]) == 0
    run_dir = Path(capsys.readouterr().out.strip())
    results = _summary(run_dir)["results"]
    assert set(results) == {"rn-sum", "mlp", "rn", "cnn-mlp", "question only"}
    for r in results.values():  # 200 test questions of each kind, 10 images x 20
        assert 0 <= r["relational"] <= 100 and 0 <= r["non-relational"] <= 100
    # Pinned on the development machine (x86_64 CPU with AVX512-BF16, torch 2.13.0, one
    # thread): overall test accuracy (%) after two tiny epochs.
    pinned = {"rn-sum": 26.0, "mlp": 27.0, "rn": 22.5, "cnn-mlp": 27.0}
    for name, value in pinned.items():
        assert results[name]["overall"] == pytest.approx(value, abs=1.0), name
    report = (run_dir / "report.md").read_text()
    assert "| rn (paper) |" in report and "| closest | furthest | count |" in report
    assert {"state_accuracy.png", "pixels_accuracy.png"} <= {p.name for p in run_dir.iterdir()}


def test_kill_9_mid_training_then_resume_gives_the_uninterrupted_result(tmp_path):
    args = [sys.executable, "-m", "torchkata", "run", "relational", "--device", "cpu", *TINY,
            "--set", "state_models=", "--set", "pixel_models=rn", "--set", "epochs=3",
            "--set", "curriculum_steps=3"]  # fmt: skip
    straight = subprocess.run([*args, "--out", str(tmp_path / "a")], capture_output=True,
                              text=True)  # fmt: skip
    assert straight.returncode == 0, straight.stderr
    expected = _summary(Path(straight.stdout.strip()))

    proc = subprocess.Popen([*args, "--out", str(tmp_path / "b")], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)  # fmt: skip
    deadline = time.monotonic() + 120
    while True:  # kill it once the first checkpoint (after the curriculum) is written
        assert proc.poll() is None, "the run ended before it could be killed"
        assert time.monotonic() < deadline, "no checkpoint appeared"
        found = list((tmp_path / "b").glob("relational-*/checkpoint/latest.json"))
        if found:
            break
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    run_dir = found[0].parent.parent
    assert not (run_dir / "metrics.json").exists()
    resumed = subprocess.run([sys.executable, "-m", "torchkata", "run", "--resume",
                              str(run_dir)], capture_output=True, text=True)  # fmt: skip
    assert resumed.returncode == 0, resumed.stderr
    got = _summary(run_dir)
    for key in ("overall", "relational", "non-relational", "train_loss"):
        assert got["results"]["rn"][key] == expected["results"]["rn"][key], key
    epochs = [json.loads(line)["epoch"] for line in (run_dir / "metrics.jsonl").read_text()
              .splitlines()]  # fmt: skip
    assert epochs == [0, 1, 2, 3]  # epoch 0: after the curriculum, which is not redone


def test_curriculum_trains_on_the_chosen_question_types_only(monkeypatch):
    train, _ = load_sort_of_clevr(30, 1, seed=0)
    seen = []
    monkeypatch.setattr(
        recipe, "_step", lambda model, opt, autocast, x, q, y: seen.append((x, q, y))
    )
    cfg = recipe.Config(curriculum_steps=4, curriculum_types=("top", "count"), curriculum_batch=8)
    model = RelationNetwork(conv_channels=4, g_hidden=8, f_hidden=8)
    optimizer = torch.optim.Adam(model.parameters(), lr=1.0)
    run = types.SimpleNamespace(device=torch.device("cpu"), progress=lambda it, **_: it)
    gen = torch.Generator().manual_seed(0)
    recipe._curriculum(
        cfg, run, "rn", model, optimizer, train, bf16_autocast(torch.device("cpu"), False), gen
    )
    assert len(seen) == 4 and optimizer.param_groups[0]["lr"] == cfg.lr
    kinds = torch.cat([question_type(q).flatten() for _, q, _ in seen])  # (4 * 8,)
    assert set(kinds.tolist()) == {2, 5}  # top and count, both drawn
    for x, q, y in seen:  # each question with its own image and answer
        assert x.shape == (8, 3, 75, 75) and q.shape == (8, 1, 11) and y.shape == (8, 1)
        match = (train.questions[:, None] == q[None, :, 0, None]).all(-1)  # (N, 8, 20)
        image = (train.images[:, None].float() / 255 == x[None]).flatten(2).all(-1)  # (N, 8)
        n, b, k = (match & image[..., None]).nonzero(as_tuple=True)
        assert set(b.tolist()) == set(range(8))
        assert (train.answers[n, k] == y[b, 0]).all()


@pytest.mark.parametrize(
    "setting, message",
    [("curriculum_types=middle", "curriculum_types"), ("curriculum_steps=-1", "curriculum_steps"),
     ("curriculum_batch=0", "curriculum_batch"), ("precise_bn_batches=-1", "precise_bn_batches"),
     ("aggregation=avg", "aggregation: expected one of")],
)  # fmt: skip
def test_bad_settings_are_rejected(setting, message, capsys):
    assert main(["run", "relational", "--set", setting]) != 0
    assert message in capsys.readouterr().err


def test_precise_batchnorm_sets_the_average_of_the_batch_statistics():
    train, _ = load_sort_of_clevr(40, 1, seed=0)
    cfg = recipe.Config(precise_bn_batches=3, images_per_batch=4, questions_per_image=5)
    torch.manual_seed(0)
    model = RelationNetwork(conv_channels=4, g_hidden=8, f_hidden=8, relation_norm=True)
    norm = model.relation_norm
    seen = []  # the batch mean of the relations entering relation_norm, per forward
    norm.register_forward_hook(lambda m, args, out: seen.append(args[0].double().mean(0)))
    run = types.SimpleNamespace(device=torch.device("cpu"), seed=0)
    rng = torch.get_rng_state()
    recipe._precise_batchnorm(cfg, run, model, train, bf16_autocast(torch.device("cpu"), False))
    assert len(seen) == 3
    torch.testing.assert_close(norm.running_mean.double(), torch.stack(seen).mean(0))
    assert norm.momentum == 0.1 and int(norm.num_batches_tracked) == 3
    assert torch.equal(torch.get_rng_state(), rng)  # training's random numbers untouched


def test_sum_max_and_pair_geometry_run_through_the_recipe(tmp_path, capsys):
    """The options reach the models: a state RN with sum+max (f twice as wide) and the
    pair geometry, and a pixel RN with every new option, train and are scored."""
    args = ["run", "relational", "--device", "cpu", "--out", str(tmp_path), "--preset", "full",
            "--set", "n_train=16", "--set", "n_test=4", "--set", "state_models=rn-sum+max",
            "--set", "state_pair_geometry=true", "--set", "state_epochs=1",
            "--set", "state_hidden=8", "--set", "pixel_models=rn", "--set", "epochs=1",
            "--set", "images_per_batch=4", "--set", "conv_channels=4", "--set", "g_hidden=8",
            "--set", "f_hidden=8", "--set", "curriculum_steps=2", "--set", "aggregation=sum+max",
            "--set", "pair_geometry=true", "--set", "refine_positions=true",
            "--set", "coord_conv=true"]  # fmt: skip
    assert main(args) == 0
    results = _summary(Path(capsys.readouterr().out.strip()))["results"]
    for name in ("rn-sum+max", "rn"):
        assert 0 <= results[name]["relational"] <= 100, name
    # 2 x 8 summed and maxed relations into f: the pixel RN's parameter count says so
    model = RelationNetwork(conv_channels=4, g_hidden=8, f_hidden=8, batchnorm_first=True,
                            relation_norm=True, aggregation="sum+max", pair_geometry=True,
                            refine_positions=True, coord_conv=True)  # fmt: skip
    assert results["rn"]["parameters"] == sum(p.numel() for p in model.parameters())
