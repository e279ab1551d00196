"""Recipe ``relational`` (tip 4): Relation Networks against MLPs on Sort-of-CLEVR.

Part 1, state descriptions (each object given as colour, shape, x, y): a Relation
Network against an MLP of similar size, per question type — the relational gap with the
perception problem removed — and the RN's aggregation over pairs, sum vs mean vs max
(claim 4.3).

Part 2, pixels (the paper's experiment): the Relation Network (CNN objects, g on every
pair, sum, f) against the CNN+MLP baseline, scored on the 4,000 questions of the 200
test images, per question type, against the paper's numbers (RN > 94% on both kinds;
CNN+MLP 63% relational). Each image's CNN features are shared by the
``questions_per_image`` questions asked about it in one batch. The full preset first
trains on "is the <colour> object on the left?" alone (``curriculum_steps``): without it
the RN stays for many epochs at the score of the picture's global statistics (see the
guide). Checkpointed every epoch: ``torchkata run --resume RUN_DIR`` continues a run that
was cut short.
"""

from __future__ import annotations

import dataclasses
import itertools
import time

import torch
import torch.nn.functional as F
from torch import nn

from torchkata.data.sort_of_clevr import (
    QUESTION_TYPES,
    SortOfClevr,
    load_sort_of_clevr,
    question_type,
)
from torchkata.relational.models import (
    AGGREGATIONS,
    CNNMLP,
    RelationNetwork,
    StateMLP,
    StateRelationNetwork,
)
from torchkata.report import subplots
from torchkata.runs import Run, bf16_autocast, lr_factor

STATE_MODELS = ("rn-sum", "rn-mean", "rn-max", "rn-sum+max", "mlp")
PIXEL_MODELS = ("rn", "cnn-mlp")
# Santoro et al. 2017, Sort-of-CLEVR (section 5.3): accuracy (%) by question kind
PAPER = {"rn": {"relational": 94.0, "non-relational": 94.0}, "cnn-mlp": {"relational": 63.0}}


@dataclasses.dataclass
class Config:
    n_train: int = 9800  # training images (20 questions each), the paper's
    n_test: int = 200  # test images: 4,000 questions
    # Part 1: state descriptions
    state_models: tuple[str, ...] = ("rn-sum", "rn-mean", "rn-max", "mlp")  # see STATE_MODELS
    state_epochs: int = 10
    state_hidden: int = 64  # width of the RN's g and f; the MLP's is twice (more parameters)
    state_batch: int = 256  # questions per step, 4 per scene
    state_lr: float = 1e-2  # Adam peak; warm-up (a tenth of the steps) then cosine decay
    state_pair_geometry: bool = False  # the state RNs' g also sees each pair's offset, distance
    shuffle_objects: bool = True  # objects as a set (random order), as a CNN's or detector's
    # Part 2: pixels
    pixel_models: tuple[str, ...] = PIXEL_MODELS  # rn | cnn-mlp
    epochs: int = 16  # passes over the 196,000 training questions
    images_per_batch: int = 16  # a batch is images_per_batch x questions_per_image questions
    questions_per_image: int = 4  # questions sharing one CNN pass (divides 20)
    conv_channels: int = 24  # the paper's CNN: 4 stride-2 layers of 24 channels
    g_hidden: int = 128  # g: 4 layers of this width (the paper's 256: 2.3x slower, see bench)
    f_hidden: int = 256
    batchnorm_first: bool = False  # the CNN as Conv → BatchNorm → ReLU (the paper: ReLU first)
    relation_norm: bool = False  # BatchNorm1d on the summed relations before f
    coord_conv: bool = False  # (x, y) channels at the RN's CNN input (CoordConv)
    refine_positions: bool = False  # each cell's (x, y) plus a learned sub-cell offset
    pair_geometry: bool = False  # g also sees each pair's offset p_j - p_i and distance
    aggregation: str = "sum"  # the RN's over pairs: sum (the paper) | mean | max | sum+max
    curriculum_steps: int = 0  # steps on curriculum_types' questions alone, before epoch 1
    curriculum_types: tuple[str, ...] = ("left",)  # see QUESTION_TYPES
    curriculum_batch: int = 64  # questions per curriculum step, each about its own image
    lr: float = 1e-4  # Adam peak, the public reference's rate (5e-4 and more stall: see the guide)
    warmup_epochs: float = 1.0
    min_lr_ratio: float = 0.02  # the cosine ends at lr * min_lr_ratio
    bf16: bool = True  # bfloat16 autocast on CUDA or CPUs with AVX512-BF16 (2.2x here)
    eval_every: int = 1  # epochs between test evaluations (and checkpoints)
    precise_bn_batches: int = 100  # BatchNorm statistics for evaluation: averaged over this
    # many training batches at the current weights (0: the running averages)
    data_dir: str = ""  # where to cache the generated images ("" regenerates, ~1 s)

    def check(self) -> None:
        for name, allowed in (("state_models", STATE_MODELS), ("pixel_models", PIXEL_MODELS)):
            chosen = getattr(self, name)
            if any(c not in allowed for c in chosen):
                raise ValueError(f"{name}: expected a subset of {allowed}, got {chosen!r}")
        for name in ("n_train", "n_test", "state_epochs", "state_hidden", "epochs",
                     "state_batch",
                     "images_per_batch", "conv_channels", "g_hidden", "f_hidden",
                     "eval_every", "curriculum_batch"):  # fmt: skip
            if getattr(self, name) < 1:
                raise ValueError(f"{name}: expected >= 1, got {getattr(self, name)!r}")
        if self.questions_per_image not in (1, 2, 4, 5, 10, 20):
            raise ValueError(
                f"questions_per_image: expected a divisor of 20, got {self.questions_per_image!r}"
            )
        for name in ("curriculum_steps", "precise_bn_batches"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name}: expected >= 0, got {getattr(self, name)!r}")
        if not self.curriculum_types or any(t not in QUESTION_TYPES for t in self.curriculum_types):
            raise ValueError(
                f"curriculum_types: expected a non-empty subset of {QUESTION_TYPES}, "
                f"got {self.curriculum_types!r}"
            )
        if self.aggregation not in AGGREGATIONS:
            raise ValueError(
                f"aggregation: expected one of {AGGREGATIONS}, got {self.aggregation!r}"
            )
        if not 0.0 <= self.min_lr_ratio <= 1.0:
            raise ValueError(f"min_lr_ratio: expected a value in [0, 1], got {self.min_lr_ratio}")


PRESETS: dict[str, dict] = {
    "quick": {"state_epochs": 2, "state_hidden": 32, "pixel_models": ()},
    # The RN's pixel run that leaves the plateau (see the guide): 2,000 steps of "is the
    # <colour> object on the left?" first, then 25 epochs of the full task.
    "full": {
        "batchnorm_first": True,
        "relation_norm": True,
        "curriculum_steps": 2000,
        "epochs": 25,
    },
}


def run(cfg: Config, run: Run) -> None:
    train, test = load_sort_of_clevr(
        cfg.n_train, cfg.n_test, seed=run.seed, cache_dir=cfg.data_dir or None
    )
    saved = run.load_checkpoint() if run.resumed else None
    results: dict[str, dict] = saved["results"] if saved else {}
    curves: dict[str, list] = saved["curves"] if saved else {}
    results["question only"] = _question_only(train, test)  # the floor of every table
    if cfg.state_models:
        for name in cfg.state_models:
            if name not in results:
                results[name], curves[name] = _train_state(cfg, run, name, train, test)
                run.save_checkpoint({"results": results, "curves": curves})
        _report(run, results, curves, cfg.state_models, "state", "state descriptions", cfg.n_test)
    for name in cfg.pixel_models:
        if name not in results:
            partial = saved["partial"] if saved and saved.get("model") == name else None
            results[name], curves[name] = _train_pixels(
                cfg, run, name, train, test, results, curves, partial
            )
            run.save_checkpoint({"results": results, "curves": curves})
    if cfg.pixel_models:
        _report(run, results, curves, cfg.pixel_models, "pixels", "pixels", cfg.n_test)
    run.finish(results=results)


# ---------------------------------------------------------------- shared chores


@torch.no_grad()
def _evaluate(
    model: nn.Module, inputs: torch.Tensor, data: SortOfClevr, autocast, chunk: int = 20
) -> dict[str, float]:
    """Accuracy (%) on all questions of ``data``: overall, per kind and per question type."""
    model.eval()
    correct = []
    for i in range(0, len(data), chunk):
        x = inputs[i : i + chunk]
        x = x.float() / 255 if x.dtype == torch.uint8 else x
        with autocast():
            logits = model(x, data.questions[i : i + chunk])  # (n, 20, 10)
        correct.append(logits.argmax(-1) == data.answers[i : i + chunk])
    return _scores(torch.cat(correct).cpu(), data.questions)


def _scores(correct: torch.Tensor, questions: torch.Tensor) -> dict[str, float]:
    """Accuracy (%) per question type, per kind and overall from (N, 20) hits."""
    correct, kinds = correct.flatten().float(), question_type(questions).flatten()  # (N 20,)
    result = {t: 100 * correct[kinds == k].mean().item() for k, t in enumerate(QUESTION_TYPES)}
    result["non-relational"] = 100 * correct[kinds < 3].mean().item()
    result["relational"] = 100 * correct[kinds >= 3].mean().item()
    result["overall"] = 100 * correct.mean().item()
    return result


def _question_only(train: SortOfClevr, test: SortOfClevr) -> dict[str, float]:
    """The floor: answer each test question with the answer its question vector (colour,
    kind, subtype) most often has in training, without looking at the scene."""
    codes = 2 ** torch.arange(11)  # a question vector is 11 bits
    train_keys = (train.questions * codes).sum(-1).long().flatten()  # (N 20,)
    test_keys = (test.questions * codes).sum(-1).long()  # (N_test, 20)
    table = torch.zeros(2**11, 10).index_put_(
        (train_keys, train.answers.flatten()), torch.ones(len(train_keys)), accumulate=True
    )
    return _scores(table.argmax(1)[test_keys] == test.answers, test.questions)


def _batches(n_images: int, per_image: int, images_per_batch: int, gen: torch.Generator):
    """One epoch of (image index, question indices) batches: every question once.

    Each image's 20 questions are shuffled and cut into groups of ``per_image``; the
    groups of all images are shuffled and dealt out ``images_per_batch`` at a time.
    """
    groups = 20 // per_image
    questions = torch.rand(n_images, 20, generator=gen).argsort(1)  # (N, 20) permutations
    questions = questions.reshape(n_images * groups, per_image)  # (N groups, per_image)
    images = torch.arange(n_images).repeat_interleave(groups)
    order = torch.randperm(n_images * groups, generator=gen)
    for i in range(0, len(order) - images_per_batch + 1, images_per_batch):
        idx = order[i : i + images_per_batch]
        yield images[idx], questions[idx]


# ---------------------------------------------------------------- part 1: state descriptions


def _train_state(cfg: Config, run: Run, name: str, train: SortOfClevr, test: SortOfClevr):
    torch.manual_seed(run.seed)
    h = cfg.state_hidden
    if name == "mlp":
        model = StateMLP(hidden=2 * h, num_layers=4)
    else:
        model = StateRelationNetwork(
            g_hidden=h,
            f_hidden=h,
            aggregation=name.split("-")[1],
            pair_geometry=cfg.state_pair_geometry,
        )
    model = model.to(run.device)
    gen = torch.Generator().manual_seed(run.seed)
    states = train.state_descriptions().to(run.device)
    test_states = _shuffled(test.state_descriptions(), cfg.shuffle_objects, gen).to(run.device)
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.state_lr)
    per_image = 4
    per_epoch = len(train) * 20 // cfg.state_batch
    total, curve, step = cfg.state_epochs * per_epoch, [], 0
    warmup = min(per_epoch, total // 10)
    start = time.perf_counter()
    for epoch in run.progress(range(1, cfg.state_epochs + 1), desc=f"state {name}"):
        model.train()
        losses = []
        for images, questions in _batches(len(train), per_image, cfg.state_batch // per_image, gen):
            for group in optimizer.param_groups:
                group["lr"] = cfg.state_lr * lr_factor(step, total, warmup, 0.02)
            objects = _shuffled(states[images], cfg.shuffle_objects, gen)  # (B, 6, 9)
            logits = model(objects, train.questions[images[:, None], questions])  # (B, 4, 10)
            answers = train.answers[images[:, None], questions]  # (B, 4)
            loss = F.cross_entropy(logits.flatten(0, 1), answers.flatten())
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            losses.append(loss.detach())
            step += 1
        acc = _evaluate(model, test_states, test, bf16_autocast(run.device, False))
        curve.append({"epoch": epoch, "train_loss": torch.stack(losses).mean().item(), **acc})
        run.log({"part": "state", "model": name, **curve[-1]})
    seconds = time.perf_counter() - start
    return {**curve[-1], "seconds": seconds, "parameters": _count(model)}, curve


def _shuffled(states: torch.Tensor, shuffle: bool, gen: torch.Generator) -> torch.Tensor:
    """(N, P, D) object descriptions, each scene's objects in a random order if ``shuffle``."""
    if not shuffle:
        return states
    order = torch.rand(states.shape[:2], generator=gen).argsort(1).to(states.device)  # (N, P)
    return states.gather(1, order[..., None].expand(-1, -1, states.shape[2]))


# ---------------------------------------------------------------- part 2: pixels


def _train_pixels(cfg, run, name, train, test, results, curves, partial):
    torch.manual_seed(run.seed)
    if name == "rn":
        model = RelationNetwork(
            conv_channels=cfg.conv_channels,
            g_hidden=cfg.g_hidden,
            f_hidden=cfg.f_hidden,
            batchnorm_first=cfg.batchnorm_first,
            relation_norm=cfg.relation_norm,
            coord_conv=cfg.coord_conv,
            refine_positions=cfg.refine_positions,
            pair_geometry=cfg.pair_geometry,
            aggregation=cfg.aggregation,
        )
    else:
        model = CNNMLP(conv_channels=cfg.conv_channels, f_hidden=cfg.f_hidden)
    model = model.to(run.device)
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    gen = torch.Generator().manual_seed(run.seed)
    autocast = bf16_autocast(run.device, cfg.bf16)
    batch = cfg.images_per_batch * cfg.questions_per_image
    per_epoch = len(train) * 20 // batch
    total, warmup = cfg.epochs * per_epoch, round(cfg.warmup_epochs * per_epoch)
    curve, first_epoch, seconds, samples = [], 1, 0.0, 0
    if partial:  # resume mid-training
        model.load_state_dict(partial["model_state"])
        optimizer.load_state_dict(partial["optimizer"])
        gen.set_state(partial["gen"])
        torch.set_rng_state(partial["rng"])
        curve, first_epoch = partial["curve"], partial["next_epoch"]
        seconds = partial["seconds"]
        samples = partial.get("samples", (first_epoch - 1) * per_epoch * batch)  # older runs
    run.info(f"pixels {name}: {_count(model):,} parameters, {per_epoch:,} steps per epoch")

    def checkpoint(next_epoch: int) -> None:
        state = {
            "model_state": model.state_dict(),
            "optimizer": optimizer.state_dict(),
            "gen": gen.get_state(),
            "rng": torch.get_rng_state(),  # dropout's random numbers
            "curve": curve,
            "next_epoch": next_epoch,
            "seconds": seconds,
            "samples": samples,
        }
        run.save_checkpoint({"results": results, "curves": curves, "model": name, "partial": state})

    if cfg.curriculum_steps and not partial:
        start = time.perf_counter()
        _curriculum(cfg, run, name, model, optimizer, train, autocast, gen)
        seconds += time.perf_counter() - start
        samples += cfg.curriculum_steps * cfg.curriculum_batch
        # epoch 0: where the full task starts from
        _precise_batchnorm(cfg, run, model, train, autocast)
        curve.append(
            {"epoch": 0, "seconds": seconds} | _evaluate(model, test.images, test, autocast)
        )
        run.log({"part": "pixels", "model": name, **curve[-1]})
        run.info(f"pixels {name} after the curriculum: " + _format(curve[-1]))
        checkpoint(1)
    for epoch in range(first_epoch, cfg.epochs + 1):
        model.train()
        start, losses = time.perf_counter(), []
        step = (epoch - 1) * per_epoch
        for images, questions in run.progress(
            _batches(len(train), cfg.questions_per_image, cfg.images_per_batch, gen),
            desc=f"pixels {name} epoch {epoch}",
            total=per_epoch,
        ):
            for group in optimizer.param_groups:
                group["lr"] = cfg.lr * lr_factor(step, total, warmup, cfg.min_lr_ratio)
            x, q, y = _pixel_batch(train, images, questions, run.device)
            losses.append(_step(model, optimizer, autocast, x, q, y))
            step += 1
        seconds += time.perf_counter() - start
        samples += per_epoch * batch
        record = {
            "epoch": epoch,
            "train_loss": torch.stack(losses).mean().item(),
            "seconds": seconds,
        }
        if epoch % cfg.eval_every == 0 or epoch == cfg.epochs:
            _precise_batchnorm(cfg, run, model, train, autocast)
            record |= _evaluate(model, test.images, test, autocast)
        curve.append(record)
        run.log({"part": "pixels", "model": name, **record})
        run.info(f"pixels {name} epoch {epoch}: " + _format(record))
        checkpoint(epoch + 1)
    final = curve[-1]
    rate = samples / final["seconds"]
    return {**final, "parameters": _count(model), "samples_per_s": rate}, curve


def _pixel_batch(data: SortOfClevr, images: torch.Tensor, slots: torch.Tensor, device):
    """Images (B, 3, 75, 75) as floats in [0, 1], questions (B, K, 11) and answers (B, K)
    for image indices (B,) and the indices (B, K) of K of each image's 20 questions."""
    x = data.images[images].to(device).float() / 255
    q = data.questions[images[:, None], slots].to(device)
    y = data.answers[images[:, None], slots].to(device)
    return x, q, y


def _step(model, optimizer, autocast, x: torch.Tensor, q: torch.Tensor, y: torch.Tensor):
    """One optimizer step on images x (B, 3, 75, 75), questions q (B, K, 11) and answers
    y (B, K); returns the detached loss."""
    with autocast():
        logits = model(x, q)  # (B, K, 10)
    loss = F.cross_entropy(logits.float().flatten(0, 1), y.flatten())
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    return loss.detach()


def _curriculum(cfg, run, name, model, optimizer, train, autocast, gen) -> None:
    """``curriculum_steps`` steps at the peak rate on the training questions of
    ``curriculum_types`` alone, ``curriculum_batch`` of them drawn at random per step
    (each with its own image's CNN pass).

    The full task first learns what the whole picture says (majority shape, counts) and
    stays there for epochs (the guide's plateau); "is the <colour> object on the left?"
    alone has no such shortcut, so the RN must learn to find an object by its colour,
    which every question type needs.
    """
    kinds = question_type(train.questions)  # (N, 20)
    wanted = torch.tensor([QUESTION_TYPES.index(t) for t in cfg.curriculum_types])
    images, slots = torch.isin(kinds, wanted).nonzero(as_tuple=True)  # (M,), (M,)
    for group in optimizer.param_groups:
        group["lr"] = cfg.lr
    model.train()
    for _ in run.progress(range(cfg.curriculum_steps), desc=f"pixels {name} curriculum"):
        pick = torch.randint(len(images), (cfg.curriculum_batch,), generator=gen)
        x, q, y = _pixel_batch(train, images[pick], slots[pick, None], run.device)
        _step(model, optimizer, autocast, x, q, y)


@torch.no_grad()
def _precise_batchnorm(cfg, run, model, train, autocast) -> None:
    """Set every BatchNorm's running statistics to their average over
    ``precise_bn_batches`` training batches at the current weights ("precise BN").

    The running averages (momentum 0.1) follow the last ~10 batches of 64 questions and
    are noisy; the count questions, which read the size of the summed relations, scored
    46% with them against 97% with recomputed statistics at the same weights (epoch 9 of
    the full preset's run). Training is unchanged: the batches come from a generator of
    their own, and dropout's random numbers are restored afterwards.
    """
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    if not norms or cfg.precise_bn_batches == 0:
        return
    momenta = [m.momentum for m in norms]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # a cumulative average over the batches below
    gen = torch.Generator().manual_seed(run.seed)
    batches = _batches(len(train), cfg.questions_per_image, cfg.images_per_batch, gen)
    model.train()
    with torch.random.fork_rng(devices=[run.device] if run.device.type == "cuda" else []):
        for images, questions in itertools.islice(batches, cfg.precise_bn_batches):
            x, q, _ = _pixel_batch(train, images, questions, run.device)
            with autocast():
                model(x, q)
    for m, momentum in zip(norms, momenta, strict=True):
        m.momentum = momentum


def _format(record: dict) -> str:
    return ", ".join(f"{k} {v:.2f}" for k, v in record.items() if k != "epoch")


def _count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


# ---------------------------------------------------------------- report


def _report(
    run: Run, results: dict, curves: dict, names, part: str, title: str, n_test: int
) -> None:
    header = "| model | " + " | ".join(QUESTION_TYPES) + " | non-relational | relational |"
    lines = [
        f"Sort-of-CLEVR from {title}: test accuracy (%) on the {20 * n_test:,} questions of "
        f"the {n_test} test images, by question type. *question only* answers from the question "
        "alone (its most frequent training answer): the floor.",
        "",
        header,
        "|---" * (len(QUESTION_TYPES) + 3) + "|",
    ]
    rows = {name: results[name] for name in names} | {"question only": results["question only"]}
    for name, r in rows.items():
        cells = [f"{r[t]:.1f}" for t in (*QUESTION_TYPES, "non-relational", "relational")]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    if part == "pixels":
        lines += [
            f"| {m} (paper) | "
            + " | ".join([""] * len(QUESTION_TYPES))
            + " | "
            + f"{ref.get('non-relational', '')} | {ref['relational']} |"
            for m, ref in PAPER.items()
        ]
    run.note("\n".join(lines))
    fig, axes = subplots(1, 2, figsize=(10, 3.6))
    for name in names:
        epochs = [c["epoch"] for c in curves[name] if "relational" in c]
        for ax, kind in zip(axes, ("relational", "non-relational"), strict=True):
            ax.plot(epochs, [c[kind] for c in curves[name] if kind in c], label=name)
            ax.set_title(f"{title}: {kind} questions")
            ax.set_xlabel("epoch")
            ax.set_ylabel("test accuracy (%)")
    axes[0].legend()
    run.figure(f"{part}_accuracy", fig)
    for name in names:
        for kind in ("relational", "non-relational"):
            ref = PAPER.get(name, {}).get(kind) if part == "pixels" else None
            run.headline(
                f"{part} {name}: {kind} accuracy",
                results[name][kind],
                reference=ref,
                source="Santoro et al. 2017" if ref else "",
                unit="%",
            )
