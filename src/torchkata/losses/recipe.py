"""Recipe ``losses`` (tip 1): custom losses on a real class-imbalance problem, and why
a loss must be written stably.

Part 1 makes the scikit-learn digits imbalanced (the ``rare_classes`` keep only
``rare_fraction`` of their training images; the test set is untouched) and trains the same
MLP with cross-entropy, class-weighted cross-entropy, focal loss (Lin et al. 2017) and a
:class:`~torchkata.losses.CompositeLoss` of cross-entropy + focal, over several seeds. It
reports accuracy, macro-F1 and the rare classes' recall, and the curve of each composite
term.

Part 2 runs :func:`~torchkata.losses.check_loss` on a focal loss written the naive way,
``-(1 - p)**gamma * log(p)`` with ``p`` from ``softmax``, and on the stable
:class:`~torchkata.losses.FocalLoss` that works from ``log_softmax``.
"""

from __future__ import annotations

import dataclasses
import statistics

import torch
import torch.nn.functional as F
from sklearn.metrics import f1_score, recall_score
from torch import nn

from torchkata.data import load_digits, subsample_classes
from torchkata.losses import CompositeLoss, FocalLoss, check_loss
from torchkata.report import subplots
from torchkata.runs import Run

LOSSES = ("ce", "weighted_ce", "focal", "ce+focal")
NAMES = {
    "ce": "cross-entropy",
    "weighted_ce": "class-weighted CE",
    "focal": "focal",
    "ce+focal": "CE + focal (composite)",
}


@dataclasses.dataclass
class Config:
    losses: tuple[str, ...] = LOSSES  # ce | weighted_ce | focal | ce+focal
    rare_classes: tuple[int, ...] = (3, 8)  # digits made rare in the training set
    rare_fraction: float = 0.06  # share of each rare class's training images kept (~9 of 145)
    seeds: int = 5  # seeds per loss (each seed also draws which rare images are kept)
    epochs: int = 30
    batch_size: int = 32
    lr: float = 1e-3  # Adam
    hidden: int = 64  # hidden units of the MLP 64 -> hidden -> hidden -> 10
    gamma: float = 2.0  # focal loss focusing parameter (the paper's default)
    focal_weight: float = 0.5  # weight of the focal term in the composite (CE weight is 1)

    def check(self) -> None:
        if not self.losses or any(name not in LOSSES for name in self.losses):
            raise ValueError(
                f"losses: expected a non-empty subset of {LOSSES}, got {self.losses!r}"
            )
        if not self.rare_classes or any(not 0 <= c <= 9 for c in self.rare_classes):
            raise ValueError(f"rare_classes: expected digits 0-9, got {self.rare_classes!r}")
        if not 0.0 < self.rare_fraction <= 1.0:
            raise ValueError(f"rare_fraction: expected (0, 1], got {self.rare_fraction!r}")
        for name in ("seeds", "epochs", "batch_size", "hidden"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name}: expected >= 1, got {getattr(self, name)!r}")
        if self.gamma < 0:
            raise ValueError(f"gamma: expected >= 0, got {self.gamma!r}")


PRESETS: dict[str, dict] = {"quick": {"seeds": 2, "epochs": 20}, "full": {}}


def _build_loss(name: str, cfg: Config, class_weight: torch.Tensor) -> nn.Module:
    if name == "ce":
        return nn.CrossEntropyLoss()
    if name == "weighted_ce":
        return nn.CrossEntropyLoss(weight=class_weight)
    if name == "focal":
        return FocalLoss(gamma=cfg.gamma)
    return CompositeLoss(
        {
            "ce": (nn.CrossEntropyLoss(), 1.0),
            "focal": (FocalLoss(gamma=cfg.gamma), cfg.focal_weight),
        }
    )


def _job_seed(run_seed: int, seed: int) -> int:
    # The loss does not enter the seed: every loss sees the same data and initial weights.
    return run_seed * 1_000_003 + seed


def run(cfg: Config, run: Run) -> None:
    data = load_digits()
    x_all, y_all = data.x_train.flatten(1), data.y_train
    x_test, y_test = data.x_test.flatten(1).to(run.device), data.y_test
    jobs = [(loss, seed) for seed in range(cfg.seeds) for loss in cfg.losses]

    saved = run.load_checkpoint() if run.resumed else None
    results: list[dict] = saved["results"] if saved else []
    curves: dict[str, list[float]] = saved["curves"] if saved else {}
    run.info(f"part 1: {len(jobs)} trainings on digits with rare classes {cfg.rare_classes}")

    for j in run.progress(range(saved["next_job"] if saved else 0, len(jobs)), desc="loss x seed"):
        loss_name, seed = jobs[j]
        gen = torch.Generator().manual_seed(_job_seed(run.seed, seed))
        keep = subsample_classes(y_all, cfg.rare_classes, cfg.rare_fraction, gen)
        x_train, y_train = x_all[keep].to(run.device), y_all[keep].to(run.device)
        counts = torch.bincount(y_train, minlength=10).float()
        class_weight = (counts.sum() / (10 * counts)).to(run.device)  # inverse frequency

        torch.manual_seed(_job_seed(run.seed, seed))
        model = nn.Sequential(
            nn.Linear(64, cfg.hidden),
            nn.ReLU(),
            nn.Linear(cfg.hidden, cfg.hidden),
            nn.ReLU(),
            nn.Linear(cfg.hidden, 10),
        ).to(run.device)
        criterion = _build_loss(loss_name, cfg, class_weight)
        optimizer = torch.optim.Adam(model.parameters(), lr=cfg.lr)

        n = len(x_train)
        for epoch in range(cfg.epochs):
            model.train()
            order = torch.randperm(n, generator=gen)
            terms: dict[str, float] = {}
            total, steps = 0.0, 0
            for i in range(0, n, cfg.batch_size):
                idx = order[i : i + cfg.batch_size]
                logits = model(x_train[idx])
                loss = criterion(logits, y_train[idx])
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                total += loss.item()
                steps += 1
                if isinstance(criterion, CompositeLoss):
                    for name, value in criterion.last.items():
                        terms[name] = terms.get(name, 0.0) + value
            record = {"loss_fn": loss_name, "seed": seed, "epoch": epoch + 1, "loss": total / steps}
            record |= {f"term_{k}": v / steps for k, v in terms.items()}
            if isinstance(criterion, CompositeLoss) and seed == 0:
                for key in ("loss", *(f"term_{k}" for k in terms)):
                    curves.setdefault(key, []).append(record[key])
            run.log(record)

        model.eval()
        with torch.no_grad():
            predicted = model(x_test).argmax(dim=1).cpu()
        recall = recall_score(y_test, predicted, labels=list(range(10)), average=None)
        result = {
            "loss_fn": loss_name,
            "seed": seed,
            "accuracy": 100 * (predicted == y_test).float().mean().item(),
            "macro_f1": 100 * f1_score(y_test, predicted, average="macro"),
            "rare_recall": 100 * statistics.fmean(float(recall[c]) for c in cfg.rare_classes),
            "rare_train_images": int(counts[list(cfg.rare_classes)].sum()),
        }
        results.append(result)
        run.log(result)
        run.save_checkpoint({"results": results, "curves": curves, "next_job": j + 1})

    table = _summarise(results, cfg)
    run.figure("metrics_by_loss", _plot_metrics(table, cfg))
    if curves:
        run.figure("composite_terms", _plot_curves(curves, cfg))
    _report_part1(run, table, results, curves, cfg)

    run.info("part 2: check_loss on a naive and a stable focal loss")
    naive, stable = _check_focal(cfg, y_test)
    _report_part2(run, naive, stable)
    run.finish(
        table={f"{loss}/{metric}": v for (loss, metric), v in table.items()},
        check_loss={"naive_ok": naive.ok, "stable_ok": stable.ok},
    )


# --------------------------------------------------------------------------- part 1 helpers

METRICS = {"accuracy": "accuracy", "macro_f1": "macro-F1", "rare_recall": "rare-class recall"}


def _summarise(results: list[dict], cfg: Config) -> dict[tuple[str, str], dict[str, float]]:
    """(loss, metric) -> mean and std over seeds, in percent."""
    table = {}
    for loss in cfg.losses:
        for metric in METRICS:
            values = [r[metric] for r in results if r["loss_fn"] == loss]
            table[(loss, metric)] = {
                "mean": statistics.fmean(values),
                "std": statistics.stdev(values) if len(values) > 1 else 0.0,
            }
    return table


def _plot_metrics(table: dict, cfg: Config):
    fig, ax = subplots(figsize=(8, 4.2))
    width = 0.8 / len(cfg.losses)
    for k, loss in enumerate(cfg.losses):
        xs = [m + (k - (len(cfg.losses) - 1) / 2) * width for m in range(len(METRICS))]
        means = [table[(loss, metric)]["mean"] for metric in METRICS]
        stds = [table[(loss, metric)]["std"] for metric in METRICS]
        ax.bar(xs, means, width, yerr=stds, capsize=3, label=NAMES[loss])
    ax.set_xticks(range(len(METRICS)), list(METRICS.values()))
    ax.set_ylabel("% on the untouched test set")
    ax.set_ylim(0, 105)
    ax.set_title(
        f"Digits {', '.join(map(str, cfg.rare_classes))} at {100 * cfg.rare_fraction:.0f}% "
        f"of their training images; mean ± std over {cfg.seeds} seed(s)"
    )
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.08), ncol=len(cfg.losses), fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    return fig


def _plot_curves(curves: dict[str, list[float]], cfg: Config):
    fig, ax = subplots(figsize=(6.4, 4))
    labels = {
        "loss": "total = CE + " + f"{cfg.focal_weight} x focal",
        "term_ce": "CE term",
        "term_focal": "focal term (unweighted)",
    }
    for key, values in curves.items():
        ax.plot(range(1, len(values) + 1), values, label=labels.get(key, key))
    ax.set_yscale("log")
    ax.set_xlabel("epoch")
    ax.set_ylabel("mean training loss")
    ax.set_title("CompositeLoss: each term, seed 0")
    ax.legend()
    ax.grid(alpha=0.3)
    return fig


def _report_part1(
    run: Run, table: dict, results: list[dict], curves: dict[str, list[float]], cfg: Config
) -> None:
    rare_images = statistics.fmean(r["rare_train_images"] for r in results)
    lines = [
        f"**Part 1 (claims 1.1, 1.4).** An MLP (64-{cfg.hidden}-{cfg.hidden}-10, Adam, "
        f"{cfg.epochs} epochs) on the digits, with digits {', '.join(map(str, cfg.rare_classes))} "
        f"kept at {100 * cfg.rare_fraction:.0f}% of their training images ({rare_images:.0f} "
        f"images in all instead of about {len(cfg.rare_classes) * 144}); the 360 test images are "
        f"untouched. Mean ± std over {cfg.seeds} seed(s), in %:",
        "",
        "| loss | " + " | ".join(METRICS.values()) + " |",
        "|---|" + "---|" * len(METRICS),
    ]
    for loss in cfg.losses:
        cells = [f"{table[(loss, m)]['mean']:.1f} ± {table[(loss, m)]['std']:.1f}" for m in METRICS]
        lines.append(f"| {NAMES[loss]} | " + " | ".join(cells) + " |")
    run.note("\n".join(lines))

    for loss in cfg.losses:
        run.headline(
            f"{NAMES[loss]}: rare-class recall", table[(loss, "rare_recall")]["mean"], unit="%"
        )
    for loss in cfg.losses:
        run.headline(f"{NAMES[loss]}: macro-F1", table[(loss, "macro_f1")]["mean"], unit="%")

    best = max(cfg.losses, key=lambda loss: table[(loss, "rare_recall")]["mean"])
    text = f"Best rare-class recall: {NAMES[best]} ({table[(best, 'rare_recall')]['mean']:.1f}%)."
    if "ce" in cfg.losses and best != "ce":
        gain = table[(best, "rare_recall")]["mean"] - table[("ce", "rare_recall")]["mean"]
        spread = max(table[(best, "rare_recall")]["std"], table[("ce", "rare_recall")]["std"])
        text += f" That is {gain:.1f} points above plain cross-entropy, " + (
            f"more than the seed-to-seed spread ({spread:.1f} points)."
            if gain > spread
            else f"within the seed-to-seed spread ({spread:.1f} points): not a clear win."
        )
    if "focal" in cfg.losses and "ce" in cfg.losses:
        diff = table[("focal", "rare_recall")]["mean"] - table[("ce", "rare_recall")]["mean"]
        spread = max(table[("focal", "rare_recall")]["std"], table[("ce", "rare_recall")]["std"])
        text += (
            f" Focal loss alone is {diff:+.1f} points against cross-entropy on the rare classes"
            + (f", within the seed-to-seed spread ({spread:.1f})" if abs(diff) <= spread else "")
            + ": it down-weights examples the model already gets right, which is not the same "
            "as up-weighting rare classes (that is what class weights do)."
        )
    if curves:
        falls = ", ".join(
            f"{key.removeprefix('term_')} {values[0]:.3g} → {values[-1]:.3g}"
            for key, values in curves.items()
        )
        text += (
            " The composite logs each of its terms at every step (`CompositeLoss.last`); "
            f"first to last epoch of seed 0: {falls}."
        )
    run.note(text)


# --------------------------------------------------------------------------- part 2 helpers


class NaiveFocalLoss(nn.Module):
    """Focal loss as often first written: ``-(1 - p)**gamma * log(p)``, ``p`` from softmax.

    Unstable on purpose: for a confident wrong prediction ``p`` underflows to 0 and
    ``log(p)`` is ``-inf``. Kept here to show what :func:`check_loss` catches.
    """

    def __init__(self, gamma: float = 2.0) -> None:
        super().__init__()
        self.gamma = gamma

    def forward(self, input: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        p = F.softmax(input, dim=1).gather(1, target[:, None]).squeeze(1)  # (N,)
        return (-((1 - p) ** self.gamma) * torch.log(p)).mean()


def _check_focal(cfg: Config, y_test: torch.Tensor):
    torch.manual_seed(0)
    logits = 3 * torch.randn(32, 10)  # a batch of plausible logits
    target = y_test[:32].clone()
    stable = FocalLoss(gamma=cfg.gamma)
    return check_loss(NaiveFocalLoss(cfg.gamma), logits, target, stable), check_loss(
        stable, logits, target
    )


def _report_part2(run: Run, naive, stable) -> None:
    run.note(
        "**Part 2 (claims 1.2, 1.3, 1.5).** `check_loss` on a focal loss written the naive way, "
        "`-(1 - p)**gamma * log(p)` with `p` from `softmax`, compared with the stable "
        "`FocalLoss` (which works from `log_softmax`) as reference:\n\n"
        f"```\n{naive}\n```\n\nand on the stable `FocalLoss`:\n\n```\n{stable}\n```"
    )
    failed = ", ".join(r.name + (f" ({r.case})" if r.case else "") for r in naive.failures)
    run.note(
        f"The naive version {'fails' if not naive.ok else 'passes'}"
        + (f": {failed}" if failed else "")
        + f". The stable one {'passes every check' if stable.ok else 'FAILS'}. "
        "Both agree on ordinary logits; they part only where softmax underflows."
    )
    run.headline(
        "check_loss: failed checks, naive focal", len(naive.failures), higher_is_better=False
    )
    run.headline(
        "check_loss: failed checks, stable FocalLoss", len(stable.failures), higher_is_better=False
    )
