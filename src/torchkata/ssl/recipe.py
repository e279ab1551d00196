"""Recipe ``ssl`` (tip 8): representations learned without labels, measured with few labels.

Part 1, MNIST-1D (Greydanus 2020; generated locally by the ``mnist1d`` package): a
:class:`Conv1dEncoder` is pretrained with SimCLR on the 4,000 training signals without
their labels, then frozen; with 1, 10, 100 labelled signals per class or all of them, a
linear probe and a kNN vote on its features are compared with logistic regression on
the raw signal and with the same CNN trained from scratch on those labels. The encoder
is saved as a backbone that :func:`torchkata.transfer.load_backbone` loads.

Part 2, the document's autoencoder on the scikit-learn digits scaled to [-1, 1]: its
3-number codes coloured by class, a denoising autoencoder's before/after images, and
anomaly detection by reconstruction error with one digit held out of training.
"""

from __future__ import annotations

import dataclasses
import statistics

import numpy as np
import torch
from torch import nn

from torchkata.data import k_per_class, load_digits
from torchkata.data.mnist1d import load_mnist1d
from torchkata.report import subplots
from torchkata.runs import Run
from torchkata.ssl.autoencoders import AutoEncoder, DenoisingAutoEncoder, anomaly_scores
from torchkata.ssl.contrastive import SimCLR, augment_signal
from torchkata.ssl.evaluation import knn_accuracy, linear_probe
from torchkata.ssl.models import MLP, Classifier, Conv1dEncoder, GRUClassifier
from torchkata.transfer import save_backbone

METHODS = ("simclr_probe", "simclr_knn", "raw_logistic", "supervised_cnn")
NAMES = {
    "simclr_probe": "SimCLR features, linear probe",
    "simclr_knn": "SimCLR features, kNN (k=5)",
    "raw_logistic": "raw signal, logistic regression",
    "supervised_cnn": "same CNN, supervised from scratch",
}


@dataclasses.dataclass
class Config:
    labels: tuple[int, ...] = (1, 10, 100, 0)  # labelled signals per class; 0 = all
    seeds: int = 3  # label draws and supervised initialisations (one SimCLR pretraining)
    simclr_epochs: int = 300  # passes over the 4,000 unlabelled signals
    batch_size: int = 256  # SimCLR batch: 2 x 256 views, 510 negatives per anchor
    temperature: float = 0.2  # NT-Xent
    lr: float = 2e-3  # Adam, SimCLR
    channels: int = 32  # Conv1dEncoder width
    features: int = 128  # encoder output
    # The from-scratch CNN with the MNIST-1D paper's training: Adam lr 1e-2, batches of 100,
    # 6,000 steps (95.5% with all labels here; the paper reports 94%).
    supervised_steps: int = 6000
    supervised_lr: float = 1e-2
    ae_epochs: int = 200  # the autoencoders on the 8x8 digits
    baselines: bool = True  # the MNIST-1D paper's four supervised baselines, all labels
    anomaly_class: int = 0  # digit held out of the anomaly detector's training

    def check(self) -> None:
        if not self.labels or any(k < 0 for k in self.labels):
            raise ValueError(f"labels: expected counts >= 0 (0 = all), got {self.labels!r}")
        for name in ("seeds", "simclr_epochs", "batch_size", "channels", "features"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name}: expected >= 1, got {getattr(self, name)!r}")
        if not 0 <= self.anomaly_class <= 9:
            raise ValueError(f"anomaly_class: expected a digit 0-9, got {self.anomaly_class}")


PRESETS: dict[str, dict] = {
    "quick": {
        "labels": (10, 0),
        "seeds": 1,
        "simclr_epochs": 15,
        "supervised_steps": 300,
        "ae_epochs": 60,
        "baselines": False,
    },
    "full": {},
}


def _supervised(cfg: Config, x, y, x_test, y_test, seed: int) -> float:
    torch.manual_seed(seed)
    model = Classifier(Conv1dEncoder(40, cfg.channels, cfg.features), 10)
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.supervised_lr)
    gen = torch.Generator().manual_seed(seed)
    for _ in range(cfg.supervised_steps):
        idx = torch.randperm(len(x), generator=gen)[:100]
        loss = nn.functional.cross_entropy(model(x[idx]), y[idx])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.eval()
    with torch.no_grad():
        return (model(x_test).argmax(1) == y_test).float().mean().item()


def run(cfg: Config, run: Run) -> None:
    data = load_mnist1d()
    test = (data.x_test, data.y_test)

    # ---- SimCLR pretraining: no labels are read here.
    torch.manual_seed(run.seed)
    encoder = Conv1dEncoder(40, cfg.channels, cfg.features)
    model = SimCLR(encoder, cfg.features, projection_dim=64, temperature=cfg.temperature)
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    gen = torch.Generator().manual_seed(run.seed)
    for epoch in run.progress(range(cfg.simclr_epochs), desc="SimCLR epochs"):
        model.train()
        total = 0.0
        batches = torch.randperm(len(data.x_train), generator=gen).split(cfg.batch_size)
        for idx in batches:
            x = data.x_train[idx]
            loss = model(augment_signal(x, generator=gen), augment_signal(x, generator=gen))
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total += loss.item()
        run.log({"part": "simclr", "epoch": epoch + 1, "loss": total / len(batches)})
    backbone = save_backbone(
        encoder, run.dir / "ssl_encoder", arch="mnist1d_conv1d_encoder",
        in_length=40, channels=cfg.channels, out_dim=cfg.features,
    )  # fmt: skip
    run.info(f"SimCLR encoder saved: {backbone}")

    # ---- few labels: frozen features vs raw signal vs supervised from scratch
    results: dict[str, dict[int, list[float]]] = {m: {k: [] for k in cfg.labels} for m in METHODS}
    jobs = [(k, s) for k in cfg.labels for s in range(cfg.seeds)]
    for k, s in run.progress(jobs, desc="labels x seed"):
        idx = k_per_class(data.y_train, k, torch.Generator().manual_seed(run.seed * 100 + s))
        few = (data.x_train[idx], data.y_train[idx])
        scores = {
            "simclr_probe": linear_probe(encoder, few, test),
            "simclr_knn": knn_accuracy(encoder, few, test, k=5),
            "raw_logistic": linear_probe(nn.Identity(), few, test),
            "supervised_cnn": _supervised(cfg, *few, *test, seed=run.seed * 100 + s),
        }
        for method, value in scores.items():
            results[method][k].append(100 * value)
        run.log({"part": "labels", "labels_per_class": k, "seed": s, **scores})
    _report_labels(cfg, run, results)

    baselines = _paper_baselines(cfg, run, data) if cfg.baselines else None
    ae_summary = _autoencoders(cfg, run)
    summary = {
        f"{m}/{k}": {"mean": statistics.mean(v), "std": statistics.pstdev(v)}
        for m, per_k in results.items()
        for k, v in per_k.items()
    }
    run.finish(table=summary, autoencoder=ae_summary, baselines=baselines)


PAPER = {  # MNIST-1D paper (Greydanus 2020), test accuracy (%) with all labels
    "logistic regression": 32.0,
    "MLP": 68.0,
    "CNN": 94.0,
    "GRU": 91.0,
}


def _paper_baselines(cfg: Config, run: Run, data) -> dict[str, float]:
    """The paper's four models, trained as in its code: Adam lr 1e-2, batches of 100 taken
    in order, 6,000 steps, all 4,000 labels; test accuracy (%) after the last step."""
    builders = {
        "logistic regression": lambda: nn.Linear(40, 10),
        "MLP": lambda: MLP(40, 100, 10),
        "CNN": lambda: Classifier(Conv1dEncoder(40, cfg.channels, cfg.features), 10),
        "GRU": lambda: GRUClassifier(40, 6, 10),
    }
    results = {}
    for name, build in run.progress(list(builders.items()), desc="paper baselines"):
        torch.manual_seed(run.seed)
        model = build()
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
        for step in range(6000):
            start = (step * 100) % len(data.x_train)
            x, y = data.x_train[start : start + 100], data.y_train[start : start + 100]
            loss = nn.functional.cross_entropy(model(x), y)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        model.eval()
        with torch.no_grad():
            results[name] = (
                100 * (model(data.x_test).argmax(1) == data.y_test).float().mean().item()
            )
        run.log({"part": "baselines", "model": name, "accuracy": results[name]})
    rows = "\n".join(f"| {n} | {results[n]:.1f} | {PAPER[n]:.0f} |" for n in builders)
    run.note(
        "The MNIST-1D paper's supervised baselines with all labels, trained as in its code "
        "(Adam lr 1e-2, batches of 100, 6,000 steps; one seed):\n\n"
        "| model | test accuracy (%) | paper |\n|---|---|---|\n" + rows
    )
    return results


def _report_labels(cfg: Config, run: Run, results) -> None:
    label = {k: (str(k) if k else "all (~400)") for k in cfg.labels}
    lines = [
        f"MNIST-1D test accuracy (%), mean ± std over {cfg.seeds} label draw(s); the "
        f"encoder was pretrained with SimCLR for {cfg.simclr_epochs} epochs on the 4,000 "
        "training signals without labels. Paper baselines with all labels: logistic "
        "regression 32%, CNN 94%.",
        "",
        "| method | " + " | ".join(f"{label[k]} per class" for k in cfg.labels) + " |",
        "|---|" + "---|" * len(cfg.labels),
    ]
    for method in METHODS:
        values = [results[method][k] for k in cfg.labels]
        cells = [f"{statistics.mean(v):.1f} ± {statistics.pstdev(v):.1f}" for v in values]
        lines.append(f"| {NAMES[method]} | " + " | ".join(cells) + " |")
    run.note("\n".join(lines))

    fig, ax = subplots(figsize=(6.4, 4))
    xs = np.arange(len(cfg.labels))
    for method in METHODS:
        means = [statistics.mean(results[method][k]) for k in cfg.labels]
        stds = [statistics.pstdev(results[method][k]) for k in cfg.labels]
        ax.errorbar(xs, means, yerr=stds, marker="o", capsize=3, label=NAMES[method])
    ax.set_xticks(xs, [label[k] for k in cfg.labels])
    ax.set_xlabel("labelled signals per class")
    ax.set_ylabel("test accuracy (%)")
    ax.set_title("MNIST-1D: features learned without labels")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    run.figure("accuracy_vs_labels", fig)

    if 0 in cfg.labels:
        run.headline(
            "SimCLR linear probe, all labels",
            statistics.mean(results["simclr_probe"][0]),
            reference=85.0,
            source="this tip's target",
            unit="%",
        )
    if 10 in cfg.labels:
        run.headline(
            "10 labels per class: SimCLR linear probe",
            statistics.mean(results["simclr_probe"][10]),
            reference=statistics.mean(results["supervised_cnn"][10]),
            source="the same CNN supervised from scratch",
            unit="%",
        )


def _autoencoders(cfg: Config, run: Run) -> dict:
    from sklearn.metrics import roc_auc_score

    digits = load_digits()
    x_train = digits.x_train.flatten(1) * 2 - 1  # [0, 1] -> [-1, 1], Tanh's range
    x_test = digits.x_test.flatten(1) * 2 - 1

    def train(model: nn.Module, x: torch.Tensor, seed: int) -> None:
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
        gen = torch.Generator().manual_seed(seed)
        for _ in range(cfg.ae_epochs):
            model.train()
            for idx in torch.randperm(len(x), generator=gen).split(64):
                loss = nn.functional.mse_loss(model(x[idx]), x[idx])  # inputs only, no labels
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()

    torch.manual_seed(run.seed)
    ae = AutoEncoder(in_features=64)  # the document's widths, 64 inputs
    train(ae, x_train, run.seed)
    with torch.no_grad():
        codes = ae.eval().encode(x_test)
        ae_error = nn.functional.mse_loss(ae(x_test), x_test).item()
    fig = subplots(figsize=(5.5, 5), subplot_kw={"projection": "3d"})[0]
    ax = fig.axes[0]
    points = ax.scatter(*codes.T.numpy(), c=digits.y_test.numpy(), cmap="tab10", s=8)
    fig.colorbar(points, ax=ax, label="digit", shrink=0.6)
    ax.set_title("The autoencoder's 3 numbers per test digit")
    run.figure("ae_codes", fig)

    torch.manual_seed(run.seed)
    dae = DenoisingAutoEncoder(in_features=64, hidden=(128, 64), bottleneck=32, noise_std=0.5)
    train(dae, x_train, run.seed)
    noisy = x_test + 0.5 * torch.randn(x_test.shape, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        cleaned = dae.eval()(noisy)
    noisy_error = nn.functional.mse_loss(noisy, x_test).item()
    cleaned_error = nn.functional.mse_loss(cleaned, x_test).item()
    fig, axes = subplots(3, 6, figsize=(7, 3.6))
    for j in range(6):
        for i, (row, name) in enumerate(
            ((x_test, "clean"), (noisy, "noisy"), (cleaned, "denoised"))
        ):
            axes[i, j].imshow(
                row[j].view(8, 8).clamp(-1, 1).numpy(), cmap="gray_r", vmin=-1, vmax=1
            )
            axes[i, j].set_xticks([])
            axes[i, j].set_yticks([])
            if j == 0:
                axes[i, j].set_ylabel(name)
    run.figure("denoising", fig)

    normal = digits.y_train != cfg.anomaly_class
    torch.manual_seed(run.seed)
    detector = AutoEncoder(in_features=64, hidden=(128, 64), bottleneck=16)
    train(detector, x_train[normal], run.seed)
    scores = anomaly_scores(detector, x_test)
    is_anomaly = (digits.y_test == cfg.anomaly_class).numpy()
    auroc = float(roc_auc_score(is_anomaly, scores.numpy()))

    run.note(
        f"**Autoencoders** on the 8x8 digits scaled to [-1, 1] (claims 8.1, 8.3). The "
        f"document's autoencoder (64 → 128 → 64 → 12 → 3 and back, Tanh output), trained "
        f"{cfg.ae_epochs} epochs on the inputs alone, reconstructs test digits with MSE "
        f"{ae_error:.3f} from 3 numbers each (compression 64 → 3). A denoising autoencoder "
        f"brings noisy digits (σ = 0.5, MSE to the clean ones {noisy_error:.3f}) to MSE "
        f"{cleaned_error:.3f}. Trained without the digit {cfg.anomaly_class}, an "
        f"autoencoder's reconstruction error flags that digit with AUROC {auroc:.3f}."
    )
    run.headline("denoising: MSE to the clean digits", cleaned_error, reference=noisy_error,
                 source="the noisy input", higher_is_better=False)  # fmt: skip
    run.headline(f"anomaly detection AUROC (digit {cfg.anomaly_class} unseen)", auroc)
    return {
        "ae_mse": ae_error,
        "noisy_mse": noisy_error,
        "denoised_mse": cleaned_error,
        "auroc": auroc,
    }
