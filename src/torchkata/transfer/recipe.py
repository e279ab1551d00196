"""Recipe ``transfer`` (tip 6): what a pretrained backbone is worth when labels are few.

Source task: digits 0–4 of the scikit-learn digits; a :class:`DigitsCNN` is trained on
them, saved with :func:`save_backbone` and loaded back with :func:`load_backbone`. Target
task: digits 5–9 with ``k`` labelled images per class. Four ways to learn the target,
each for the same number of optimizer steps:

* ``scratch``: the same CNN, randomly initialised, all layers trained;
* ``frozen`` (feature extraction): the backbone frozen (BatchNorm statistics included), a
  new head trained;
* ``finetune``: a new head, every layer trained at one learning rate;
* ``gradual``: a new head, discriminative learning rates (each block below the top at
  1/2.6 of the rate above) and one more block unfrozen every quarter of the steps.

With the ``text`` extra, the same question on text: the pretrained sentence encoder
all-MiniLM-L6-v2, frozen or with its last layers fine-tuned, against a bag-of-words
logistic regression, on sentences of Python's bundled documentation to be told apart by
the topic they come from.
"""

from __future__ import annotations

import dataclasses
import statistics

import numpy as np
import torch
from torch import nn

from torchkata.data import k_per_class, load_digits
from torchkata.report import subplots
from torchkata.runs import Run
from torchkata.transfer import (
    DigitsCNN,
    GradualUnfreezing,
    freeze,
    load_backbone,
    param_groups,
    replace_head,
    save_backbone,
    unfreeze,
)

METHODS = ("scratch", "frozen", "finetune", "gradual")
NAMES = {
    "scratch": "from scratch",
    "frozen": "feature extraction (frozen)",
    "finetune": "full fine-tuning",
    "gradual": "gradual unfreezing + discriminative rates",
}
SOURCE, TARGET = (0, 1, 2, 3, 4), (5, 6, 7, 8, 9)


@dataclasses.dataclass
class Config:
    methods: tuple[str, ...] = METHODS  # scratch | frozen | finetune | gradual
    ks: tuple[int, ...] = (1, 5, 10, 0)  # labelled target images per class; 0 = all (~144)
    seeds: int = 5  # pretraining, label draws and initial weights
    width: int = 32  # DigitsCNN width
    pretrain_epochs: int = 30  # on the source task, mini-batches of 64
    steps: int = 200  # optimizer steps on the target task, every method and k alike
    batch_size: int = 32  # target mini-batches (all of them when fewer)
    lr: float = 1e-3  # Adam; the top block's rate for `gradual`
    decay: float = 2.6  # `gradual`: rate ratio between neighbouring blocks (ULMFiT)
    text: bool = True  # the MiniLM part, when the `text` extra is installed
    # An `ssl` run's ssl_encoder.safetensors (tip 8's SimCLR encoder): adds MNIST-1D with
    # few labels, that backbone frozen or fine-tuned against the same CNN from scratch.
    ssl_backbone: str = ""
    text_per_class: int = 200  # sentences per topic (70% train, 30% test)
    text_ks: tuple[int, ...] = (2, 10, 0)  # labelled sentences per topic; 0 = all
    text_layers: int = 2  # MiniLM's top layers fine-tuned (of 6)
    text_steps: int = 150  # AdamW steps of fine-tuning, mini-batches of 16

    def check(self) -> None:
        if not self.methods or any(m not in METHODS for m in self.methods):
            raise ValueError(f"methods: expected a subset of {METHODS}, got {self.methods!r}")
        if not self.ks or any(k < 0 for k in self.ks):
            raise ValueError(f"ks: expected counts >= 0 (0 = all), got {self.ks!r}")
        for name in ("seeds", "width", "pretrain_epochs", "steps", "batch_size", "text_steps"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name}: expected >= 1, got {getattr(self, name)!r}")
        if self.decay < 1:
            raise ValueError(f"decay: expected >= 1, got {self.decay!r}")
        if not 1 <= self.text_layers <= 6:
            raise ValueError(f"text_layers: expected 1 to 6 (MiniLM has 6), got {self.text_layers}")


PRESETS: dict[str, dict] = {
    "quick": {"seeds": 2, "ks": (1, 10, 0), "pretrain_epochs": 15, "steps": 100, "text": False},
    "full": {},
}


def _subset(x: torch.Tensor, y: torch.Tensor, classes: tuple[int, ...]):
    """The images of ``classes``, labels renumbered 0..len(classes)-1."""
    keep = torch.isin(y, torch.tensor(classes))
    return x[keep], y[keep] - classes[0]


def _accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    model.eval()
    with torch.no_grad():
        return (model(x).argmax(1) == y).float().mean().item()


def _pretrain(cfg: Config, data, seed: int, run: Run) -> tuple[str, float]:
    """Train the source CNN, save it as a backbone file; (its path, source test accuracy)."""
    x, y = _subset(data.x_train, data.y_train, SOURCE)
    x_test, y_test = _subset(data.x_test, data.y_test, SOURCE)
    torch.manual_seed(seed)
    model = DigitsCNN(num_classes=len(SOURCE), width=cfg.width)
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    gen = torch.Generator().manual_seed(seed)
    for _ in range(cfg.pretrain_epochs):
        model.train()
        for idx in torch.randperm(len(x), generator=gen).split(64):
            loss = nn.functional.cross_entropy(model(x[idx]), y[idx])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    path = save_backbone(
        model, run.dir / "backbones" / f"source-seed{seed}", arch="digits_cnn",
        num_classes=len(SOURCE), width=cfg.width,
    )  # fmt: skip
    return str(path), _accuracy(model, x_test, y_test)


def _target_model(method: str, cfg: Config, backbone: str, seed: int):
    """(model, optimizer, gradual schedule or None) for one way of learning the target."""
    torch.manual_seed(seed)
    if method == "scratch":
        model = DigitsCNN(num_classes=len(TARGET), width=cfg.width)
        return model, torch.optim.Adam(model.parameters(), lr=cfg.lr), None
    model = load_backbone(backbone)  # safetensors + JSON: no pickle
    if method == "frozen":
        freeze(model)
    replace_head(model, len(TARGET))  # new and trainable
    if method == "gradual":
        schedule = GradualUnfreezing(model)
        optimizer = torch.optim.Adam(param_groups(model, cfg.lr, cfg.decay), lr=cfg.lr)
        return model, optimizer, schedule
    trainable = [p for p in model.parameters() if p.requires_grad]
    return model, torch.optim.Adam(trainable, lr=cfg.lr), None


def run(cfg: Config, run: Run) -> None:
    data = load_digits()
    x_pool, y_pool = _subset(data.x_train, data.y_train, TARGET)
    x_test, y_test = _subset(data.x_test, data.y_test, TARGET)
    saved = run.load_checkpoint() if run.resumed else None
    results: list[dict] = saved["results"] if saved else []
    backbones: dict[str, dict] = saved["backbones"] if saved else {}
    jobs = [(s, k, m) for s in range(cfg.seeds) for k in cfg.ks for m in cfg.methods]
    run.info(f"{len(jobs)} target trainings ({cfg.seeds} seeds x k {cfg.ks} x {cfg.methods})")

    for j in run.progress(range(len(results), len(jobs)), desc="seed x k x method"):
        seed, k, method = jobs[j]
        job_seed = run.seed * 1000 + seed
        if str(seed) not in backbones:
            path, source_accuracy = _pretrain(cfg, data, job_seed, run)
            backbones[str(seed)] = {"path": path, "source_accuracy": source_accuracy}
        gen = torch.Generator().manual_seed(job_seed * 100 + k)  # the same labels per method
        labelled = k_per_class(y_pool, k, gen)
        x, y = x_pool[labelled], y_pool[labelled]
        model, optimizer, schedule = _target_model(
            method, cfg, backbones[str(seed)]["path"], job_seed
        )
        for step in range(cfg.steps):
            if schedule is not None and step and step % max(cfg.steps // 4, 1) == 0:
                schedule.step()  # one more block trains, from the top down
            model.train()
            idx = torch.randperm(len(x), generator=gen)[: cfg.batch_size]
            loss = nn.functional.cross_entropy(model(x[idx]), y[idx])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        accuracy = _accuracy(model, x_test, y_test)
        results.append({"seed": seed, "k": k, "method": method, "accuracy": accuracy})
        run.log({"seed": seed, "k": k, "method": method, "accuracy": accuracy, "loss": loss})
        run.save_checkpoint({"results": results, "backbones": backbones})

    _report(cfg, run, results, backbones, len(y_pool) // len(TARGET))
    text = _text_part(cfg, run) if cfg.text else None
    ssl = _ssl_part(cfg, run) if cfg.ssl_backbone else None
    table = _table(cfg, results)
    run.finish(table=table, text=text, ssl=ssl)


def _table(cfg: Config, results: list[dict]) -> dict[str, dict]:
    table = {}
    for method in cfg.methods:
        for k in cfg.ks:
            values = [100 * r["accuracy"] for r in results if r["method"] == method and r["k"] == k]
            table[f"{method}/{k}"] = {
                "mean": statistics.mean(values),
                "std": statistics.pstdev(values),
            }
    return table


def _report(cfg: Config, run: Run, results, backbones, per_class: int) -> None:
    table = _table(cfg, results)
    label = {k: (str(k) if k else f"all (~{per_class})") for k in cfg.ks}
    source = [b["source_accuracy"] for b in backbones.values()]
    lines = [
        f"Source task: digits 0–4, test accuracy of the pretrained CNN "
        f"{100 * statistics.mean(source):.1f}% (mean of {len(source)}). Target task: digits "
        f"5–9, test accuracy (%) after {cfg.steps} Adam steps, mean ± std over {cfg.seeds} "
        "seeds, by labelled images per class:",
        "",
        "| method | " + " | ".join(f"k = {label[k]}" for k in cfg.ks) + " |",
        "|---|" + "---|" * len(cfg.ks),
    ]
    for method in cfg.methods:
        cells = [
            f"{table[f'{method}/{k}']['mean']:.1f} ± {table[f'{method}/{k}']['std']:.1f}"
            for k in cfg.ks
        ]
        lines.append(f"| {NAMES[method]} | " + " | ".join(cells) + " |")
    run.note("\n".join(lines))

    fig, ax = subplots(figsize=(6.4, 4))
    xs = np.arange(len(cfg.ks))
    for method in cfg.methods:
        means = [table[f"{method}/{k}"]["mean"] for k in cfg.ks]
        stds = [table[f"{method}/{k}"]["std"] for k in cfg.ks]
        ax.errorbar(xs, means, yerr=stds, marker="o", capsize=3, label=NAMES[method])
    ax.set_xticks(xs, [label[k] for k in cfg.ks])
    ax.set_xlabel("labelled target images per class")
    ax.set_ylabel("target test accuracy (%)")
    ax.set_title("Digits 0–4 → 5–9")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    run.figure("accuracy_vs_labels", fig)

    small = min(k for k in cfg.ks if k) if any(cfg.ks) else None
    if small and "scratch" in cfg.methods:
        for method in ("frozen", "finetune", "gradual"):
            if method in cfg.methods:
                run.headline(
                    f"k = {small}: {NAMES[method]}",
                    table[f"{method}/{small}"]["mean"],
                    reference=table[f"scratch/{small}"]["mean"],
                    source="the same CNN trained from scratch",
                    unit="%",
                )
    if 0 in cfg.ks and "scratch" in cfg.methods and "finetune" in cfg.methods:
        run.headline(
            "all labels: full fine-tuning",
            table["finetune/0"]["mean"],
            reference=table["scratch/0"]["mean"],
            source="the same CNN trained from scratch",
            unit="%",
        )


def _text_part(cfg: Config, run: Run) -> dict | None:
    """MiniLM frozen / last layers fine-tuned vs bag-of-words, by labels per class."""
    from sklearn.linear_model import LogisticRegression

    try:
        encoder = load_backbone("minilm")  # safetensors, offline
    except ImportError as exc:
        run.note(f"Text part skipped: {exc}")
        return None
    from torchkata.transfer.text import bag_of_words_baseline, pydoc_sections_dataset

    train_x, train_y, test_x, test_y, names = pydoc_sections_dataset(
        n_classes=5, per_class=cfg.text_per_class, seed=run.seed
    )
    y_train, y_test = torch.tensor(train_y), torch.tensor(test_y)
    run.info(f"text: {len(train_x)} training and {len(test_x)} test sentences, 5 topics")
    z_train, z_test = encoder.encode(train_x), encoder.encode(test_x)  # frozen features

    # The frozen lower layers' token states are computed once; the top layers train on them.
    n_layers = len(encoder.layers)
    top = [f"layers.{i}" for i in range(n_layers - cfg.text_layers, n_layers)]
    freeze(encoder)
    unfreeze(encoder, top)

    def lower_states(texts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        batch = encoder.tokenize(texts, max_length=64)
        padding = batch["attention_mask"] == 0  # (N, L)
        with torch.no_grad():
            x = encoder.embeddings(batch["input_ids"])  # (N, L, E)
            for layer in encoder.layers[: n_layers - cfg.text_layers]:
                x = layer(x, src_key_padding_mask=padding)
        return x, padding

    def top_embedding(x: torch.Tensor, padding: torch.Tensor) -> torch.Tensor:
        for layer in encoder.layers[n_layers - cfg.text_layers :]:
            x = layer(x, src_key_padding_mask=padding)  # (N, L, E)
        keep = (~padding).unsqueeze(-1).to(x.dtype)  # (N, L, 1)
        return (x * keep).sum(1) / keep.sum(1)  # mean pooling, (N, E)

    states_train, pad_train = lower_states(train_x)
    states_test, pad_test = lower_states(test_x)
    initial = {k: v.clone() for k, v in encoder.state_dict().items() if k.startswith("layers.")}

    rows: dict[str, dict[str, float]] = {}
    for k in cfg.text_ks:
        gen = torch.Generator().manual_seed(run.seed * 100 + k)
        idx = k_per_class(y_train, k, gen)
        row = {
            "bag_of_words": bag_of_words_baseline(
                [train_x[i] for i in idx], [train_y[i] for i in idx], test_x, test_y
            ),
            "frozen": LogisticRegression(max_iter=2000)
            .fit(z_train[idx].numpy(), y_train[idx].numpy())
            .score(z_test.numpy(), y_test.numpy()),
        }
        encoder.load_state_dict(initial, strict=False)  # every k starts from the pretrained
        torch.manual_seed(run.seed)
        head = nn.Linear(z_train.shape[1], len(names))
        optimizer = torch.optim.AdamW(
            [
                {"params": [p for p in encoder.parameters() if p.requires_grad], "lr": 5e-5},
                {"params": head.parameters(), "lr": 1e-3},
            ]
        )
        for layer in encoder.layers[n_layers - cfg.text_layers :]:
            layer.train()  # dropout in the layers that learn
        for _ in range(cfg.text_steps):
            b = idx[torch.randperm(len(idx), generator=gen)[:16]]
            loss = nn.functional.cross_entropy(
                head(top_embedding(states_train[b], pad_train[b])), y_train[b]
            )
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        encoder.eval()
        with torch.no_grad():
            logits = head(top_embedding(states_test, pad_test))
        row["finetuned"] = (logits.argmax(1) == y_test).float().mean().item()
        rows[str(k)] = row
        run.log({"part": "text", "k": k, **row})

    per_class = len(train_x) // len(names)
    label = {k: (str(k) if k else f"all ({per_class})") for k in cfg.text_ks}
    lines = [
        f"**Text.** Topics of Python's bundled documentation ({', '.join(names)}): "
        f"{len(train_x)} training and {len(test_x)} test sentences; test accuracy (%) by "
        "labelled sentences per class. The encoder is all-MiniLM-L6-v2 (pretrained on a "
        f"billion sentence pairs), frozen with a logistic regression, or its last "
        f"{cfg.text_layers} layers fine-tuned with a new head ({cfg.text_steps} AdamW steps).",
        "",
        "| method | " + " | ".join(f"k = {label[k]}" for k in cfg.text_ks) + " |",
        "|---|" + "---|" * len(cfg.text_ks),
    ]
    for key, name in (
        ("bag_of_words", "bag-of-words logistic regression (no pretraining)"),
        ("frozen", "MiniLM frozen + logistic regression"),
        ("finetuned", f"MiniLM, last {cfg.text_layers} layers fine-tuned"),
    ):
        cells = [f"{100 * rows[str(k)][key]:.1f}" for k in cfg.text_ks]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    run.note("\n".join(lines))
    small = str(min(k for k in cfg.text_ks if k)) if any(cfg.text_ks) else str(cfg.text_ks[0])
    run.headline(
        f"text, k = {small}: MiniLM frozen",
        100 * rows[small]["frozen"],
        reference=100 * rows[small]["bag_of_words"],
        source="bag-of-words logistic regression",
        unit="%",
    )
    return rows


def _ssl_part(cfg: Config, run: Run) -> dict:
    """MNIST-1D, k labels per class: tip 8's self-supervised encoder as the backbone."""
    from torchkata.data.mnist1d import load_mnist1d
    from torchkata.ssl import Classifier, Conv1dEncoder

    data = load_mnist1d()
    ks = (1, 10, 100)
    rows: dict[str, dict[str, float]] = {}
    for method in ("scratch", "frozen", "finetune"):
        rows[method] = {}
        for k in ks:
            scores = []
            for seed in range(cfg.seeds):
                job_seed = run.seed * 1000 + seed
                idx = k_per_class(data.y_train, k, torch.Generator().manual_seed(job_seed))
                x, y = data.x_train[idx], data.y_train[idx]
                torch.manual_seed(job_seed)
                if method == "scratch":
                    encoder = Conv1dEncoder()
                else:
                    encoder = load_backbone(cfg.ssl_backbone)  # safetensors + JSON
                    if method == "frozen":
                        freeze(encoder)
                model = Classifier(encoder, 10)  # a new head
                params = [p for p in model.parameters() if p.requires_grad]
                optimizer = torch.optim.Adam(params, lr=cfg.lr)
                gen = torch.Generator().manual_seed(job_seed)
                for _ in range(cfg.steps * 5):
                    model.train()
                    b = torch.randperm(len(x), generator=gen)[:100]
                    loss = nn.functional.cross_entropy(model(x[b]), y[b])
                    optimizer.zero_grad()
                    loss.backward()
                    optimizer.step()
                scores.append(100 * _accuracy(model, data.x_test, data.y_test))
            rows[method][str(k)] = statistics.mean(scores)
    names = {
        "scratch": "same CNN from scratch",
        "frozen": "SimCLR backbone frozen + new head",
        "finetune": "SimCLR backbone fine-tuned",
    }
    lines = [
        f"**MNIST-1D with tip 8's self-supervised backbone** (`{cfg.ssl_backbone}`): test "
        f"accuracy (%), mean of {cfg.seeds} seeds, {cfg.steps * 5} Adam steps, by labelled "
        "signals per class:",
        "",
        "| method | " + " | ".join(f"k = {k}" for k in ks) + " |",
        "|---|" + "---|" * len(ks),
    ]
    for method, name in names.items():
        lines.append(f"| {name} | " + " | ".join(f"{rows[method][str(k)]:.1f}" for k in ks) + " |")
    run.note("\n".join(lines))
    run.headline(
        "MNIST-1D, k = 10: SimCLR backbone fine-tuned",
        rows["finetune"]["10"],
        reference=rows["scratch"]["10"],
        source="the same CNN from scratch",
        unit="%",
    )
    return rows
