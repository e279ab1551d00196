"""The command line: listing, errors, a recipe smoke run with pinned metrics, kill and resume."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from torchkata.cli import main

# A tiny norm run: a few hundred SGD steps, seconds on one CPU core.
TINY = [
    "--set", "norms=batch,group",
    "--set", "batch_sizes=4,16",
    "--set", "epochs=1",
    "--set", "seeds=1",
    "--set", "probe_depth=3",
    "--set", "probe_epochs=1",
]  # fmt: skip


def torchkata(*args: str, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "torchkata", *args], capture_output=True, text=True, **kwargs
    )


def test_ls_lists_every_tip_with_its_presets():
    result = torchkata("ls")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 11  # header + ten tips
    norm = next(line for line in lines if line.split()[:2] == ["7", "norm"])
    assert "quick, full" in norm


def test_unknown_recipe_exits_2_and_lists_the_known_ones(capsys):
    assert main(["run", "nosuch"]) == 2
    err = capsys.readouterr().err
    assert (
        "unknown recipe 'nosuch'" in err
        and "known recipes: losses, online, distributed, relational, gan, transfer, norm, ssl, "
        "transformer, doctor"
        in err
    )


def test_set_with_a_bad_value_names_the_field_and_its_type(capsys):
    assert main(["run", "norm", "--set", "epochs=abc"]) == 2
    assert "field 'epochs' expects int, got 'abc'" in capsys.readouterr().err


def test_set_with_a_value_the_recipe_refuses_names_it(capsys):
    assert main(["run", "norm", "--set", "batch_sizes=1,8"]) == 2
    assert "batch_sizes: expected sizes >= 2, got (1, 8)" in capsys.readouterr().err


def test_help_ends_with_examples():
    result = torchkata("run", "--help")
    assert result.returncode == 0
    assert result.stdout.rstrip().splitlines()[-1].strip().startswith("torchkata run --resume")


def _final(run_dir: Path) -> dict:
    return json.loads((run_dir / "metrics.json").read_text())["summary"]


def test_norm_smoke_run_is_reproducible_and_matches_pinned_cpu_metrics(tmp_path, capsys):
    dirs = []
    for _ in range(2):
        assert main(["run", "norm", "--device", "cpu", "--out", str(tmp_path), *TINY]) == 0
        dirs.append(Path(capsys.readouterr().out.strip()))
    first, second = (_final(d) for d in dirs)
    assert first == second  # same seed, same machine: identical numbers
    files = {p.name for p in dirs[0].iterdir()}
    assert {"config.json", "metrics.jsonl", "metrics.json", "report.md"} <= files
    assert {"accuracy_vs_batch_size.png", "activation_statistics.png"} <= files
    accuracy = first["accuracy"]
    assert set(accuracy) == set(PINNED_ACCURACY)
    for key, value in PINNED_ACCURACY.items():
        # 0.6 points = 2 of the 360 test images, room for other CPUs' rounding
        assert accuracy[key]["mean"] == pytest.approx(value, abs=0.6), key


# Test accuracy (%) after one epoch, pinned on the development machine (x86_64 CPU,
# torch 2.13.0, one thread) by `torchkata run norm` with the TINY settings above.
PINNED_ACCURACY = {
    "cnn/batch/4": 93.33,
    "cnn/batch/16": 94.17,
    "cnn/group/4": 51.94,
    "cnn/group/16": 21.11,
    "mlp/batch/4": 92.78,
    "mlp/batch/16": 91.11,
    "mlp/group/4": 87.78,
    "mlp/group/16": 85.83,
}


def _wait_for_checkpoint(run_dir_file: Path, proc: subprocess.Popen, at_least: int) -> Path:
    deadline = time.monotonic() + 120
    while True:
        assert proc.poll() is None, "the run ended before it could be killed"
        assert time.monotonic() < deadline, "no checkpoint appeared"
        runs = list(run_dir_file.glob("norm-*/checkpoint/latest.json"))
        if runs:
            try:
                name = json.loads(runs[0].read_text())["name"]
            except (json.JSONDecodeError, FileNotFoundError):
                name = "0"
            if int(name) >= at_least:
                return runs[0].parent.parent
        time.sleep(0.01)


def test_kill_9_then_resume_ends_with_the_metrics_of_an_uninterrupted_run(tmp_path):
    longer = [*TINY, "--set", "models=mlp", "--set", "epochs=3", "--set", "batch_sizes=2,16"]
    common = ["run", "norm", "--device", "cpu", *longer]
    straight = torchkata(*common, "--out", str(tmp_path / "straight"))
    assert straight.returncode == 0, straight.stderr
    expected = _final(Path(straight.stdout.strip()))

    killed_out = tmp_path / "killed"
    proc = subprocess.Popen(
        [sys.executable, "-m", "torchkata", *common, "--out", str(killed_out)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    run_dir = _wait_for_checkpoint(killed_out, proc, at_least=2)  # inside the first training
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (run_dir / "metrics.json").exists()  # it really died before finishing

    resumed = torchkata("run", "--resume", str(run_dir))
    assert resumed.returncode == 0, resumed.stderr
    assert _final(run_dir) == expected
    records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == list(range(1, len(records) + 1))  # no duplicates


def test_losses_smoke_run_matches_pinned_cpu_metrics(tmp_path, capsys):
    tiny = ["--set", "seeds=1", "--set", "epochs=2", "--set", "losses=ce,ce+focal"]
    assert main(["run", "losses", "--device", "cpu", "--out", str(tmp_path), *tiny]) == 0
    run_dir = Path(capsys.readouterr().out.strip())
    summary = _final(run_dir)
    assert summary["check_loss"] == {"naive_ok": False, "stable_ok": True}
    # Test-set % after two epochs, pinned on the development machine (x86_64 CPU,
    # torch 2.13.0, one thread); the rare classes (17 training images) are not learned yet.
    pinned = {"ce/accuracy": 71.11, "ce/macro_f1": 63.73, "ce+focal/macro_f1": 63.89}
    for key, value in pinned.items():
        assert summary["table"][key]["mean"] == pytest.approx(value, abs=0.6), key
    assert summary["table"]["ce/rare_recall"]["mean"] == 0.0
    assert {"metrics_by_loss.png", "composite_terms.png"} <= {p.name for p in run_dir.iterdir()}


def test_online_smoke_run_matches_pinned_cpu_metrics(tmp_path, capsys):
    pytest.importorskip("river")  # Phishing ships with River (the `river` extra, in `dev`)
    tiny = ["--set", "streams=drift,phishing", "--set", "n_samples=3000", "--set", "after=500"]
    tiny += ["--set", "batch_epochs=2"]
    assert main(["run", "online", "--out", str(tmp_path), *tiny]) == 0
    run_dir = Path(capsys.readouterr().out.strip())
    results = _final(run_dir)["results"]
    # Prequential accuracy, pinned on the development machine (x86_64 CPU, torch 2.13.0,
    # NumPy engine); a few flipped predictions on another CPU stay inside the tolerance.
    pinned = {"drift/adam": 0.658, "drift/sgd": 0.678, "phishing/adam": 0.893}
    for key, value in pinned.items():
        assert results[key]["all"] == pytest.approx(value, abs=0.01), key
    assert results["drift/batch"]["second_half"] < results["drift/adam"]["second_half"]
    assert {"rolling_drift.png", "rolling_phishing.png"} <= {p.name for p in run_dir.iterdir()}


def test_transfer_smoke_run_matches_pinned_cpu_metrics(tmp_path, capsys):
    tiny = ["--set", "seeds=1", "--set", "ks=1,0", "--set", "methods=scratch,frozen"]
    tiny += ["--set", "pretrain_epochs=3", "--set", "steps=30"]
    assert main(["run", "transfer", "--out", str(tmp_path), *tiny]) == 0
    run_dir = Path(capsys.readouterr().out.strip())
    table = _final(run_dir)["table"]
    # Target test accuracy (%), pinned on the development machine (x86_64 CPU, torch
    # 2.13.0, one thread): 180 test images, so one image is 0.56 points.
    pinned = {"scratch/1": 71.11, "scratch/0": 97.78, "frozen/1": 74.44, "frozen/0": 86.67}
    for key, value in pinned.items():
        assert table[key]["mean"] == pytest.approx(value, abs=1.2), key
    assert (run_dir / "backbones" / "source-seed0.safetensors").is_file()
    assert (run_dir / "accuracy_vs_labels.png").is_file()


def test_ssl_smoke_run_matches_pinned_cpu_metrics(tmp_path, capsys):
    tiny = ["--set", "labels=10", "--set", "seeds=1", "--set", "simclr_epochs=2"]
    tiny += ["--set", "supervised_steps=50", "--set", "ae_epochs=5"]
    assert main(["run", "ssl", "--out", str(tmp_path), *tiny]) == 0
    run_dir = Path(capsys.readouterr().out.strip())
    summary = _final(run_dir)
    # MNIST-1D test accuracy (%) with 10 labels per class and the autoencoders' numbers,
    # pinned on the development machine (x86_64 CPU, torch 2.13.0, one thread).
    pinned = {"simclr_probe/10": 33.7, "raw_logistic/10": 20.3, "supervised_cnn/10": 27.3}
    for key, value in pinned.items():
        assert summary["table"][key]["mean"] == pytest.approx(value, abs=1.0), key
    assert summary["autoencoder"]["auroc"] == pytest.approx(0.891, abs=0.02)
    # the SimCLR encoder is a backbone that torchkata.transfer loads
    from torchkata.transfer import load_backbone

    encoder = load_backbone(run_dir / "ssl_encoder.safetensors")
    assert encoder(torch.zeros(2, 40)).shape == (2, 128)
    # ... and the `transfer` recipe's MNIST-1D part uses it as its backbone
    tiny = ["--set", "seeds=1", "--set", "ks=1", "--set", "methods=scratch", "--set", "steps=4"]
    tiny += ["--set", "pretrain_epochs=1", "--set", f"ssl_backbone={encoder_path(run_dir)}"]
    assert main(["run", "transfer", "--out", str(tmp_path), *tiny]) == 0
    ssl = _final(Path(capsys.readouterr().out.strip()))["ssl"]
    assert set(ssl) == {"scratch", "frozen", "finetune"} and set(ssl["frozen"]) == {
        "1",
        "10",
        "100",
    }


def test_transformer_smoke_run_trains_ours_and_nn_transformer_alike(tmp_path, capsys):
    tiny = ["--set", "steps=60", "--set", "train_size=2000", "--set", "test_size=100"]
    tiny += ["--set", "cores=torchkata,torch", "--set", "dropout=0", "--set", "lm_steps=20"]
    tiny += ["--set", "eval_interval=10", "--set", "eval_batches=2", "--set", "sample_chars=20"]
    assert main(["run", "transformer", "--out", str(tmp_path), *tiny]) == 0
    run_dir = Path(capsys.readouterr().out.strip())
    summary = _final(run_dir)
    ours, theirs = summary["seq2seq"]["reverse/torchkata"], summary["seq2seq"]["reverse/torch"]
    # Same initial weights (torch's init order), no dropout: our Transformer and
    # nn.Transformer take the same 60 steps, float32 rounding apart.
    assert ours["final_loss"] == pytest.approx(theirs["final_loss"], abs=1e-5)
    # Pinned on the development machine (x86_64 CPU with AVX512-BF16, torch 2.13.0, one
    # thread): the seq2seq loss after 60 steps and the char GPT's validation loss after 20.
    assert ours["final_loss"] == pytest.approx(1.799, abs=0.01)
    assert summary["lm"]["val_loss"] == pytest.approx(4.065, abs=0.03)
    assert summary["lm"]["val_loss"] < summary["lm"]["initial_val_loss"]
    names = {p.name for p in run_dir.iterdir()}
    assert {"seq2seq_loss.png", "lm_loss.png", "lm_attention.png"} <= names


def test_gan_smoke_run_matches_pinned_cpu_metrics(tmp_path, capsys):
    tiny = ["--set", "variants=ns,wgan-gp", "--set", "steps=200", "--set", "digits_steps=30",
            "--set", "drs_percentiles=80"]  # fmt: skip
    assert main(["run", "gan", "--out", str(tmp_path), *tiny]) == 0
    run_dir = Path(capsys.readouterr().out.strip())
    summary = _final(run_dir)
    # Pinned on the development machine (x86_64 CPU, torch 2.13.0, one thread): after 200
    # steps (cosine-decayed rates) the NS-GAN has two modes, WGAN-GP no sample near a mode
    # yet; rejection sampling keeps one of the WGAN-GP's samples that land on a mode.
    table = summary["table"]
    assert table["grid/ns"]["modes"]["mean"] == 2
    assert table["grid/ns"]["high_quality"]["mean"] == pytest.approx(7.2, abs=0.5)
    assert table["grid/wgan-gp"]["modes"]["mean"] == 0
    assert table["grid/wgan-gp + DRS p80"]["modes"]["mean"] == 1
    assert set(table) == {"grid/ns", "grid/ns + DRS p80", "grid/wgan-gp", "grid/wgan-gp + DRS p80"}
    digits = summary["digits"]
    assert digits["classifier_accuracy"] == pytest.approx(0.967, abs=0.01)
    assert digits["floor_fid"] == pytest.approx(4.06, abs=0.1)
    assert digits["strong D, spectral norm"]["fid"] == pytest.approx(2147, rel=0.02)
    assert digits["floor_fid"] < digits["balanced"]["fid"] < digits["ceiling"]["fid"]
    assert {"mixtures.png", "digits_samples.png"} <= {p.name for p in run_dir.iterdir()}


def encoder_path(run_dir: Path) -> Path:
    return run_dir / "ssl_encoder.safetensors"


def test_doctor_demo_prints_the_gallery_and_exits_0_when_every_bug_is_caught(capsys):
    assert main(["doctor", "--demo", "--steps", "50"]) == 0
    out = capsys.readouterr().out
    assert "| missing zero_grad | zero_grad | zero_grad |" in out
    assert out.count("| caught |") >= 8 and "MISSED" not in out and "FALSE ALARM" not in out


FACTORY = """
import torch
from torch import nn

class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 3))
        self.extra = nn.Linear(16, 3)  # defined, never used: a planted bug

    def forward(self, x):
        return self.body(x)

def make_case():
    torch.manual_seed(0)
    model = Net()
    batch = (torch.randn(32, 8), torch.randint(0, 3, (32,)))
    return model, batch, nn.CrossEntropyLoss()
"""


def test_doctor_on_a_user_factory_names_the_failing_check_and_exits_1(tmp_path, monkeypatch):
    (tmp_path / "my_debug_case.py").write_text(FACTORY)
    monkeypatch.syspath_prepend(str(tmp_path))
    result = torchkata("doctor", "my_debug_case:make_case", "--steps", "20", cwd=tmp_path)
    assert result.returncode == 1, result.stderr
    row = next(line for line in result.stdout.splitlines() if line.startswith("gradient_flow"))
    assert "fail" in row and "extra.weight" in row


def test_doctor_usage_errors_exit_2(capsys):
    assert main(["doctor"]) == 2
    assert main(["doctor", "no_colon"]) == 2
    assert main(["doctor", "no_such_module_xyz:make"]) == 2
    err = capsys.readouterr().err
    assert "give either MODULE:FACTORY or --demo" in err
    assert "expected MODULE:FACTORY, got 'no_colon'" in err
    assert "cannot load 'no_such_module_xyz:make'" in err
