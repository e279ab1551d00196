"""Executable FAQ, tip 6 (transfer learning): claims 6.1–6.3 of FAQ_CLAIMS.md on real computation.

Source task: digits 0–4 of the scikit-learn digits. A ``DigitsCNN`` is trained on them once
(module fixture), saved with ``save_backbone`` and loaded back with ``load_backbone``, the
path a user takes. Target task: digits 5–9, with all ~143 or only ``k`` labelled training
images per class; accuracies are on the 180 test images of digits 5–9 (chance: 0.2).
"""

from __future__ import annotations

import dataclasses
import importlib.util
import inspect
import statistics
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from torchkata.data import k_per_class, load_digits
from torchkata.transfer import (
    DigitsCNN,
    freeze,
    load_backbone,
    param_groups,
    replace_head,
    save_backbone,
    trainable_summary,
    unfreeze,
)

WIDTH = 16  # DigitsCNN(width=16): 128 features reach the head


@dataclasses.dataclass(frozen=True)
class Tasks:
    """Images (N, 1, 8, 8) and labels renumbered 0..4 of the source and target tasks."""

    x_source: torch.Tensor
    y_source: torch.Tensor
    x_source_test: torch.Tensor
    y_source_test: torch.Tensor
    x_target: torch.Tensor
    y_target: torch.Tensor
    x_target_test: torch.Tensor
    y_target_test: torch.Tensor


@pytest.fixture(scope="module")
def tasks() -> Tasks:
    d = load_digits()
    source, source_test = d.y_train < 5, d.y_test < 5
    return Tasks(
        d.x_train[source], d.y_train[source], d.x_test[source_test], d.y_test[source_test],
        d.x_train[~source], d.y_train[~source] - 5, d.x_test[~source_test],
        d.y_test[~source_test] - 5,
    )  # fmt: skip


def _fit(model: nn.Module, x, y, steps: int, lr: float, seed: int, optimizer=None) -> nn.Module:
    """Adam on mini-batches of up to 64 random images; frozen parameters get no gradient,
    and optimizers skip those."""
    optimizer = optimizer or torch.optim.Adam(model.parameters(), lr=lr)
    gen = torch.Generator().manual_seed(seed)
    model.train()
    for _ in range(steps):
        idx = torch.randperm(len(x), generator=gen)[:64]
        loss = F.cross_entropy(model(x[idx]), y[idx])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return model.eval()


def _accuracy(model: nn.Module, x, y) -> float:
    model.eval()
    with torch.no_grad():
        return (model(x).argmax(1) == y).float().mean().item()


def _pretrain(x, y, path: Path) -> Path:
    """Train DigitsCNN(5) for 5 epochs of Adam on (x, y) and save it as a backbone file."""
    torch.manual_seed(0)
    model = DigitsCNN(num_classes=5, width=WIDTH)
    _fit(model, x, y, steps=5 * -(-len(x) // 64), lr=3e-3, seed=0)
    return save_backbone(model, path, arch="digits_cnn", num_classes=5, width=WIDTH)


@pytest.fixture(scope="module")
def backbone(tasks, tmp_path_factory) -> Path:
    """The saved CNN pretrained on digits 0–4 (its .safetensors file)."""
    return _pretrain(tasks.x_source, tasks.y_source, tmp_path_factory.mktemp("b") / "digits04")


def _target_model(backbone: Path, seed: int, unfrozen: list[str] | None = None) -> nn.Module:
    """The pretrained backbone with a new 5-class head; frozen except ``unfrozen`` blocks
    (``None``: nothing frozen, full fine-tuning)."""
    model = load_backbone(backbone)
    if unfrozen is not None:
        freeze(model)
        if unfrozen:
            unfreeze(model, unfrozen)
    torch.manual_seed(seed)
    replace_head(model, 5)
    return model


def _state(model: nn.Module) -> dict[str, torch.Tensor]:
    """Parameters *and buffers* (BatchNorm running statistics), copied."""
    return {k: v.clone() for k, v in model.state_dict().items()}


# --------------------------------------------------------------------------- 6.1


def test_6_1_feature_extraction_trains_only_the_new_head(tasks, backbone):
    model = load_backbone(backbone)  # eval mode, weights from safetensors + JSON
    source_accuracy = _accuracy(model, tasks.x_source_test, tasks.y_source_test)
    assert source_accuracy > 0.95  # measured 0.994: it learned digits 0–4

    freeze(model)  # requires_grad=False everywhere (and BatchNorm kept in eval mode)
    torch.manual_seed(0)
    head = replace_head(model, 5)  # the new last layer, for digits 5–9: trainable
    assert model.fc is head and head.weight.requires_grad
    summary = {s.name: (s.trainable, s.frozen) for s in trainable_summary(model)}
    assert summary["fc"] == (128 * 5 + 5, 0)  # 128 features in, 5 digits out
    assert summary["total"] == (645, 14_208)  # the three convolutional blocks: all frozen

    before, head_before = _state(model), head.weight.detach().clone()
    labelled = k_per_class(
        tasks.y_target, 5, torch.Generator().manual_seed(0)
    )  # 25 labelled images
    _fit(model, tasks.x_target[labelled], tasks.y_target[labelled], steps=100, lr=1e-2, seed=0)
    after = _state(model)
    assert not torch.equal(head.weight, head_before)  # the head learned ...
    for name in before:  # ... and nothing else moved by a single bit, running stats included
        if not name.startswith("fc."):
            assert torch.equal(before[name], after[name]), name
    assert all(p.grad is None for n, p in model.named_parameters() if not n.startswith("fc."))
    accuracy = _accuracy(model, tasks.x_target_test, tasks.y_target_test)
    assert accuracy > 0.8  # measured 0.894, from 5 labels per class (chance: 0.2)


def test_6_1_requires_grad_alone_leaves_batchnorm_statistics_drifting(tasks, backbone):
    # The document's loop, `for param in model.parameters(): param.requires_grad = False`,
    # freezes the parameters but not BatchNorm's running statistics: model.train() puts
    # BatchNorm back in training mode, and every forward pass moves them to the new data.
    model = load_backbone(backbone)
    for param in model.parameters():
        param.requires_grad = False
    torch.manual_seed(0)
    model.fc = nn.Linear(model.fc.in_features, 5)
    before = _state(model)
    _fit(model, tasks.x_target, tasks.y_target, steps=5, lr=1e-2, seed=0)
    after = _state(model)
    assert torch.equal(before["block1.0.weight"], after["block1.0.weight"])  # frozen
    assert not torch.equal(before["block1.1.running_mean"], after["block1.1.running_mean"])


def test_6_1_correction_weights_not_pretrained(backbone):
    # torchvision replaced `models.resnet18(pretrained=True)` (deprecated in 0.13) by
    # `models.resnet18(weights=ResNet18_Weights.DEFAULT)`; torchkata's load_backbone takes
    # a source and never had a `pretrained` flag to carry the old spelling over.
    assert "pretrained" not in inspect.signature(load_backbone).parameters
    with pytest.raises(TypeError, match="pretrained"):
        load_backbone(backbone, pretrained=True)
    if importlib.util.find_spec("torchvision") is not None:
        pytest.skip("torchvision is installed here: the missing-`vision`-extra error is moot")
    with pytest.raises(ImportError, match=r"needs the `vision` extra"):
        load_backbone("torchvision:resnet18")  # its `weights=` API, behind the extra


# --------------------------------------------------------------------------- 6.2


@pytest.mark.parametrize(
    ("unfrozen", "trained"),
    [(["block3"], {"block3", "fc"}), (None, {"block1", "block2", "block3", "fc"})],
    ids=["some: unfreeze block3", "all: nothing frozen"],
)
def test_6_2_fine_tuning_retrains_some_or_all_pretrained_layers(tasks, backbone, unfrozen, trained):
    model = _target_model(backbone, seed=0, unfrozen=unfrozen)
    before = _state(model)
    _fit(model, tasks.x_target, tasks.y_target, steps=30, lr=3e-3, seed=0)
    after = _state(model)
    for name in before:  # weights, biases and BatchNorm statistics
        moved = not torch.equal(before[name], after[name])
        assert moved == (name.split(".")[0] in trained), name  # and frozen ones not a bit


def _relative_change(before: dict, after: dict, block: str) -> float:
    """||W_after - W_before|| / ||W_before|| of a block's convolution weights."""
    name = f"{block}.0.weight"
    return ((after[name] - before[name]).norm() / before[name].norm()).item()


def test_6_2_discriminative_rates_move_the_lower_blocks_less(tasks, backbone):
    change = {}
    for decay in (1.0, 2.6):  # one rate; then each block 2.6x slower than the one above
        model = _target_model(backbone, seed=0)
        optimizer = torch.optim.Adam(param_groups(model, lr=3e-3, decay=decay))
        assert [g["name"] for g in optimizer.param_groups] == ["block1", "block2", "block3", "fc"]
        before = _state(model)
        _fit(model, tasks.x_target, tasks.y_target, steps=50, lr=3e-3, seed=0, optimizer=optimizer)
        after = _state(model)
        change[decay] = {
            b: _relative_change(before, after, b) for b in ("block1", "block2", "block3")
        }
    rates = change[2.6]  # measured 0.013, 0.113, 0.367 from block1 up
    assert 4 * rates["block1"] < rates["block2"] and 2 * rates["block2"] < rates["block3"]
    # Even at one rate the lower blocks move less (measured 0.121, 0.443, 0.621: their
    # weights are larger), so the rates' own share is the change against one rate:
    ratio = {b: rates[b] / change[1.0][b] for b in rates}  # measured 0.10, 0.25, 0.59
    assert ratio["block1"] < ratio["block2"] < ratio["block3"] < 1
    assert ratio["block1"] < 0.2


def test_6_2_with_plentiful_labels_fine_tuning_matches_or_beats_feature_extraction(tasks, backbone):
    frozen = _fit(
        _target_model(backbone, seed=0, unfrozen=[]), tasks.x_target, tasks.y_target,
        steps=150, lr=1e-2, seed=0,
    )  # fmt: skip
    tuned = _fit(
        _target_model(backbone, seed=0), tasks.x_target, tasks.y_target,
        steps=150, lr=3e-3, seed=0,
    )  # fmt: skip
    frozen_accuracy = _accuracy(frozen, tasks.x_target_test, tasks.y_target_test)
    tuned_accuracy = _accuracy(tuned, tasks.x_target_test, tasks.y_target_test)
    assert tuned_accuracy > 0.98  # measured 1.000 on all ~143 labels per class
    assert tuned_accuracy >= frozen_accuracy  # measured 1.000 vs 0.989


# --------------------------------------------------------------------------- 6.3

SEEDS = (0, 1, 2)  # label draws, new heads and initial weights


@pytest.fixture(scope="module")
def mean_accuracy(tasks, backbone, tmp_path_factory):
    """``mean_accuracy(method, k)``: target test accuracy after 100 Adam steps on k labels
    per class (0 = all), averaged over SEEDS; cached, as several tests read the same cells.

    Methods: ``scratch`` (the same CNN, random init), ``finetune`` (the backbone, all
    layers), ``frozen`` (the backbone frozen, a new head) and ``frozen_dissimilar`` (the
    same CNN pretrained on a dissimilar task, frozen). Learning rates, the best on the
    development machine: 3e-3 of {1e-3, 3e-3, 1e-2} for whole networks, 1e-2 of
    {1e-2, 3e-2, 1e-1} for a frozen backbone's head."""
    # Dissimilar task on the same images: the quintile of each image's total ink, which
    # needs no digit shapes. (Pixel-shuffled digits 0–4 were tried first and are not
    # dissimilar for a CNN: its frozen features transferred as well as the real ones,
    # measured 0.75 against 0.74 at k = 1, mean of 5 seeds.)
    ink = tasks.x_source.flatten(1).sum(1)
    y_ink = torch.bucketize(ink, torch.quantile(ink, torch.tensor([0.2, 0.4, 0.6, 0.8])))
    dissimilar = _pretrain(tasks.x_source, y_ink, tmp_path_factory.mktemp("b") / "ink")

    def make(method: str, seed: int) -> nn.Module:
        if method == "scratch":
            torch.manual_seed(seed)
            return DigitsCNN(num_classes=5, width=WIDTH)
        if method == "finetune":
            return _target_model(backbone, seed)
        return _target_model(backbone if method == "frozen" else dissimilar, seed, [])

    cache: dict[tuple[str, int], float] = {}

    def mean_accuracy(method: str, k: int) -> float:
        if (method, k) not in cache:
            accuracies = []
            for seed in SEEDS:
                labelled = k_per_class(tasks.y_target, k, torch.Generator().manual_seed(seed))
                model = _fit(
                    make(method, seed), tasks.x_target[labelled], tasks.y_target[labelled],
                    steps=100, lr=1e-2 if method.startswith("frozen") else 3e-3, seed=seed,
                )  # fmt: skip
                accuracies.append(_accuracy(model, tasks.x_target_test, tasks.y_target_test))
            cache[(method, k)] = statistics.mean(accuracies)
        return cache[(method, k)]

    return mean_accuracy


def test_6_3_here_fine_tuning_from_digits_0_to_4_is_only_on_par_with_scratch(mean_accuracy):
    # The claim's first half does not show on this data. Measured (means over SEEDS), at
    # k = 1 / 5 / all: fine-tuned 0.780 / 0.943 / 0.996, from scratch 0.748 / 0.917 / 0.996.
    # The +3 points at k = 1 are seed noise (per seed -1.7, +8.9, +2.2; with seeds 3-5 and
    # two other pretrainings the gain was -3.4 and -2.2). A CNN learns 8x8 digits from one
    # image per class about as well on its own: little is left for digits 0–4 to teach.
    assert mean_accuracy("scratch", 1) > 0.7  # measured 0.748 (0.806 with seeds 3-5)
    for k in (1, 5, 0):
        gain = mean_accuracy("finetune", k) - mean_accuracy("scratch", k)
        assert abs(gain) < 0.06, k  # measured +0.031, +0.026 and 0.000


def test_6_3_the_source_matters_most_with_few_labels_and_a_dissimilar_one_hurts(mean_accuracy):
    # Feature extraction from the digits-0–4 backbone against the same CNN pretrained on
    # the ink quintiles of the same images (a task that needs no digit shapes).
    similar = {k: mean_accuracy("frozen", k) for k in (1, 5)}
    dissimilar = {k: mean_accuracy("frozen_dissimilar", k) for k in (1, 5)}
    assert similar[1] > dissimilar[1] + 0.12  # measured 0.752 vs 0.496 (other seeds: +0.20)
    # more labels let the head make up for poorer features: the gap narrows
    assert similar[5] - dissimilar[5] < similar[1] - dissimilar[1]  # measured 0.043 < 0.256
    # negative transfer: with one label per class, the dissimilar source is far below
    # learning from scratch (which the similar one matches: 0.752 vs 0.748)
    assert dissimilar[1] < mean_accuracy("scratch", 1) - 0.15  # measured 0.496 vs 0.748


def test_6_3_with_few_labels_a_pretrained_text_encoder_beats_learning_from_the_words():
    # The claim's first half where the source is rich: all-MiniLM-L6-v2 (pretrained on a
    # billion sentence pairs), frozen, with a logistic regression, against bag-of-words
    # logistic regression, on sentences of 5 topics of Python's documentation.
    import numpy as np
    from sklearn.linear_model import LogisticRegression

    from torchkata.transfer import load_minilm
    from torchkata.transfer.text import bag_of_words_baseline, pydoc_sections_dataset

    train_x, train_y, test_x, test_y, _ = pydoc_sections_dataset(5, per_class=100, seed=0)
    encoder = load_minilm()
    z_train, z_test = encoder.encode(train_x).numpy(), encoder.encode(test_x).numpy()
    train_y, test_y = np.array(train_y), np.array(test_y)
    result = {}
    for k in (2, 0):  # sentences per topic; 0 = all 70
        gains, ratios = [], []
        for seed in range(5):
            rng = np.random.default_rng(seed)
            idx = (
                np.concatenate(
                    [rng.choice(np.flatnonzero(train_y == c), k, replace=False) for c in range(5)]
                )
                if k
                else np.arange(len(train_y))
            )
            words = bag_of_words_baseline(
                [train_x[i] for i in idx], list(train_y[idx]), test_x, list(test_y)
            )
            frozen = (
                LogisticRegression(max_iter=2000)
                .fit(z_train[idx], train_y[idx])
                .score(z_test, test_y)
            )
            gains.append(frozen - words)
            ratios.append(frozen / words)
        result[k] = (gains, statistics.mean(ratios))
    gains_few, ratio_few = result[2]
    assert min(gains_few) > 0  # every seed; measured +0.027 to +0.113 (mean +0.072)
    assert statistics.mean(gains_few) > 0.04
    # helps most with little data: the relative gain is larger than with all labels
    assert ratio_few > result[0][1] + 0.05  # measured 1.25x against 1.09x
