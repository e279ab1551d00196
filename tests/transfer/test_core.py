"""Freezing, heads, discriminative rates, gradual unfreezing and safe loading."""

from __future__ import annotations

import os
import pickle
import sys

import pytest
import torch
from torch import nn

from torchkata.transfer import (
    DigitsCNN,
    GradualUnfreezing,
    freeze,
    load_backbone,
    param_groups,
    replace_head,
    save_backbone,
    trainable_summary,
    unfreeze,
)


def trainable(model: nn.Module) -> list[str]:
    return [n for n, p in model.named_parameters() if p.requires_grad]


def test_freeze_counts_and_unfreeze_by_prefix_and_glob():
    torch.manual_seed(0)
    model = DigitsCNN(num_classes=5, width=8)
    total = sum(p.numel() for p in model.parameters())
    freeze(model)
    assert trainable(model) == []
    summary = {s.name: s for s in trainable_summary(model)}
    assert summary["total"].trainable == 0 and summary["total"].frozen == total
    unfreeze(model, "fc")
    assert trainable(model) == ["fc.weight", "fc.bias"]
    summary = {s.name: s for s in trainable_summary(model)}
    assert summary["fc"].trainable == (8 * 8) * 5 + 5 and summary["block1"].trainable == 0
    assert summary["total"].trainable + summary["total"].frozen == total
    unfreeze(model, "*.bias")  # a glob
    assert set(trainable(model)) == {"fc.weight"} | {
        n for n in dict(model.named_parameters()) if n.endswith(".bias")
    }
    freeze(model, except_=["block3", "fc"])
    assert all(n.startswith(("block3.", "fc.")) for n in trainable(model))
    assert "block3.0.weight" in trainable(model)


def test_patterns_that_match_nothing_are_errors():
    model = DigitsCNN(width=4)
    with pytest.raises(
        ValueError,
        match="'head' matches no parameter or module of the model; its top-level blocks are",
    ):
        unfreeze(model, "head")
    with pytest.raises(ValueError, match="except_: 'blk1'"):
        freeze(model, except_="blk1")


def test_frozen_batchnorm_stays_in_eval_mode_and_its_statistics_do_not_move():
    torch.manual_seed(0)
    model = DigitsCNN(num_classes=3, width=4)
    model.train()
    model(torch.randn(16, 1, 8, 8))  # some running statistics
    freeze(model, except_="fc")
    model.train()  # the classic pitfall: this puts every BatchNorm back in training mode
    bn = model.block1[1]
    before = (bn.running_mean.clone(), bn.running_var.clone(), int(bn.num_batches_tracked))
    optimizer = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.1)
    for _ in range(5):
        x = torch.randn(16, 1, 8, 8) * 3 + 2  # new data with other statistics
        loss = model(x).logsumexp(1).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert torch.equal(bn.running_mean, before[0]) and torch.equal(bn.running_var, before[1])
    assert int(bn.num_batches_tracked) == before[2]
    assert not bn.training
    # The same in plain PyTorch (requires_grad=False only) moves them: the pitfall is real.
    plain = DigitsCNN(num_classes=3, width=4).train()
    for p in plain.parameters():
        p.requires_grad_(False)
    mean = plain.block1[1].running_mean.clone()
    plain(torch.randn(16, 1, 8, 8) * 3 + 2)
    assert not torch.equal(plain.block1[1].running_mean, mean)
    # Unfrozen, BatchNorm trains again after model.train().
    unfreeze(model, "block1")
    model.train()
    model(torch.randn(16, 1, 8, 8) * 3 + 2)
    assert not torch.equal(bn.running_mean, before[0])


class WithFc(nn.Module):
    def __init__(self):
        super().__init__()
        self.body = nn.Linear(4, 6)
        self.fc = nn.Linear(6, 10)


class WithClassifierSequential(nn.Module):
    def __init__(self):
        super().__init__()
        self.features = nn.Linear(4, 6)
        self.classifier = nn.Sequential(
            nn.Dropout(0.1), nn.Linear(6, 7), nn.ReLU(), nn.Linear(7, 10)
        )


class WithHead(nn.Module):
    def __init__(self):
        super().__init__()
        self.encoder = nn.Sequential(nn.Linear(4, 6), nn.ReLU())
        self.head = nn.Linear(6, 10, bias=False)


class Nested(nn.Module):
    def __init__(self):
        super().__init__()
        self.stages = nn.ModuleList(
            [nn.Sequential(nn.Linear(4, 6)), nn.Sequential(nn.Linear(6, 9))]
        )


@pytest.mark.parametrize(
    ("make", "where"),
    [
        (WithFc, lambda m: m.fc),
        (WithClassifierSequential, lambda m: m.classifier[3]),
        (WithHead, lambda m: m.head),
        (Nested, lambda m: m.stages[1][0]),
        (lambda: nn.Sequential(nn.Linear(4, 6), nn.ReLU(), nn.Linear(6, 10)), lambda m: m[2]),
        (lambda: DigitsCNN(width=4).double(), lambda m: m.fc),
    ],
)
def test_replace_head_finds_the_classifier_on_several_shapes(make, where):
    model = make()
    old = where(model)
    freeze(model)
    new = replace_head(model, 3)
    assert where(model) is new and new is not old
    assert (new.in_features, new.out_features) == (old.in_features, 3)
    assert (new.bias is None) == (old.bias is None) and new.weight.dtype == old.weight.dtype
    assert all(p.requires_grad for p in new.parameters())
    assert trainable(model) == [
        n for n, p in model.named_parameters() if any(p is q for q in new.parameters())
    ]


def test_replace_head_errors():
    with pytest.raises(ValueError, match="found no final classifier"):
        replace_head(nn.Sequential(nn.Conv2d(1, 2, 3)), 3)
    with pytest.raises(ValueError, match="num_classes: expected a positive int, got 0"):
        replace_head(WithFc(), 0)


def test_param_groups_give_discriminative_rates_and_cover_every_parameter():
    model = DigitsCNN(width=4)
    groups = param_groups(model, lr=1e-2, decay=2.0)
    assert [g["name"] for g in groups] == ["block1", "block2", "block3", "fc"]
    assert [g["lr"] for g in groups] == pytest.approx([1.25e-3, 2.5e-3, 5e-3, 1e-2])
    ids = [id(p) for g in groups for p in g["params"]]
    assert sorted(ids) == sorted(id(p) for p in model.parameters())
    # torch applies them: one SGD step moves each block by lr_block * grad.
    optimizer = torch.optim.SGD(groups, lr=1.0)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    model(torch.randn(4, 1, 8, 8)).sum().backward()
    optimizer.step()
    for g in groups:
        name = f"{g['name']}.0.weight" if g["name"] != "fc" else "fc.weight"
        p = dict(model.named_parameters())[name]
        torch.testing.assert_close(before[name] - g["lr"] * p.grad, p.detach())
    with pytest.raises(ValueError, match="decay: expected >= 1"):
        param_groups(model, 1e-3, decay=0.5)


def test_gradual_unfreezing_releases_one_block_per_step_from_the_top():
    torch.manual_seed(0)
    model = DigitsCNN(num_classes=5, width=4)
    schedule = GradualUnfreezing(model)
    optimizer = torch.optim.Adam(param_groups(model, lr=1e-2), lr=1e-2)
    seen = []
    for _epoch in range(5):
        seen.append(sorted({n.split(".")[0] for n in trainable(model)}))
        before = {n: p.detach().clone() for n, p in model.named_parameters()}
        model.train()
        loss = model(torch.randn(8, 1, 8, 8)).logsumexp(1).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        moved = {
            n.split(".")[0] for n, p in model.named_parameters() if not torch.equal(before[n], p)
        }
        assert moved == set(seen[-1])  # only the unfrozen blocks train
        schedule.step()
    assert seen == [
        ["fc"],
        ["block3", "fc"],
        ["block2", "block3", "fc"],
        ["block1", "block2", "block3", "fc"],
        ["block1", "block2", "block3", "fc"],
    ]


def test_backbone_round_trip_through_safetensors_and_pt(tmp_path):
    torch.manual_seed(0)
    model = DigitsCNN(num_classes=5, width=4).eval()
    x = torch.randn(3, 1, 8, 8)
    path = save_backbone(model, tmp_path / "source", arch="digits_cnn", num_classes=5, width=4)
    assert path.name == "source.safetensors" and (tmp_path / "source.json").is_file()
    torch.testing.assert_close(load_backbone(path)(x), model(x), rtol=0, atol=0)
    torch.save(model.state_dict(), tmp_path / "plain.pt")
    torch.save({"model": model.state_dict(), "epoch": 3}, tmp_path / "wrapped.pth")
    for name in ("plain.pt", "wrapped.pth"):
        loaded = load_backbone(tmp_path / name, model=DigitsCNN(num_classes=5, width=4))
        torch.testing.assert_close(loaded(x), model(x), rtol=0, atol=0)
    with pytest.raises(ValueError, match=r"bare state dict.*pass the model"):
        load_backbone(tmp_path / "plain.pt")
    with pytest.raises(ValueError, match=r"expected a \.safetensors, \.pt or \.pth file"):
        load_backbone(tmp_path / "source.json")


class _Payload:
    """Unpickling this calls ``open(path, "w")``: code execution on load."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self):
        return (open, (self.path, "w"))


def test_a_planted_pickle_payload_is_refused_and_runs_nothing(tmp_path):
    target = tmp_path / "pwned.txt"
    evil = tmp_path / "evil.pt"
    with open(evil, "wb") as f:
        pickle.dump({"fc.weight": _Payload(str(target))}, f)
    # Plain pickle would run it (shown in a child process, so this test stays clean).
    probe = tmp_path / "probe.txt"
    with open(tmp_path / "probe.pt", "wb") as f:
        pickle.dump(_Payload(str(probe)), f)
    code = f"import pickle; pickle.load(open({str(tmp_path / 'probe.pt')!r}, 'rb'))"
    assert os.system(f'{sys.executable} -c "{code}"') == 0 and probe.exists()

    with pytest.raises(ValueError, match="refused"):
        load_backbone(evil, model=DigitsCNN())
    assert not target.exists()


def test_missing_extras_name_the_extra():
    try:
        import torchvision  # noqa: F401
    except Exception:
        with pytest.raises(ImportError, match=r"pip install 'torchkata\[vision\]'"):
            load_backbone("torchvision:resnet18")
    else:  # pragma: no cover - torchvision importable next to this torch
        pytest.skip("torchvision is importable here; the missing-extra message is not reachable")


def test_torchvision_source_uses_weights_and_the_local_hub_cache_only(tmp_path, monkeypatch):
    # torchvision does not import beside this torch here: a stand-in with its API
    # (get_model_weights(name).DEFAULT.url, get_model(name, weights=None)) checks our side.
    import types

    calls = []

    class Weights:
        url = "https://download.pytorch.org/models/tiny-abc123.pth"

        def __repr__(self):
            return "Tiny_Weights.IMAGENET1K_V1"

    def get_model(name, weights):
        calls.append((name, weights))
        torch.manual_seed(0)
        return nn.Linear(3, 2)

    models = types.SimpleNamespace(
        get_model_weights=lambda name: types.SimpleNamespace(DEFAULT=Weights()),
        get_model=get_model,
    )
    monkeypatch.setitem(sys.modules, "torchvision", types.SimpleNamespace(models=models))
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    expected = tmp_path / "hub" / "checkpoints" / "tiny-abc123.pth"
    with pytest.raises(FileNotFoundError, match=r"never downloads: put tiny-abc123\.pth") as info:
        load_backbone("torchvision:tiny")
    assert str(expected) in str(info.value)
    expected.parent.mkdir(parents=True)
    reference = nn.Linear(3, 2)
    torch.save(reference.state_dict(), expected)
    model = load_backbone("torchvision:tiny")
    assert calls[-1] == ("tiny", None)  # built with weights=None, then loaded from the file
    torch.testing.assert_close(model.weight, reference.weight)
    assert not model.training
