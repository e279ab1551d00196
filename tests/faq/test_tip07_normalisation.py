"""Executable FAQ, tip 7 (normalisation): claims 7.1–7.5 of FAQ_CLAIMS.md on real computation.

Every claim is shown with torchkata's from-scratch layers on the scikit-learn digits;
where torch has the same layer, the same statement is checked on it too.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from torchkata.data import load_digits
from torchkata.norm import BatchNorm1d, GroupNorm, InstanceNorm2d, LayerNorm
from torchkata.norm.models import MLP


@pytest.fixture(scope="module")
def digits():
    return load_digits()


@pytest.fixture(scope="module")
def features(digits) -> torch.Tensor:
    """(1437, 64) float64 pixel features with very different scales and means."""
    x = digits.x_train.flatten(1).double()
    return x[:, x.std(0) > 0] * torch.linspace(
        0.5, 20.0, int((x.std(0) > 0).sum()), dtype=torch.float64
    )


# --------------------------------------------------------------------------- 7.1


def test_7_1_batchnorm_standardises_each_feature_over_the_batch_then_applies_an_affine(features):
    x = features[:128]
    x = x[:, x.std(0) > 0.5]  # features that vary within this batch
    assert (x.mean(0) > 0.2).all() and (x.std(0) > 2).any()  # far from standardised
    bn = BatchNorm1d(x.shape[1], dtype=torch.float64).train()
    y = bn(x)
    torch.testing.assert_close(
        y.mean(0), torch.zeros(x.shape[1], dtype=torch.float64), atol=1e-12, rtol=0
    )
    torch.testing.assert_close(
        y.std(0, unbiased=False), torch.ones(x.shape[1], dtype=torch.float64), atol=1e-3, rtol=0
    )
    # the learned affine: gamma * x_hat + beta, per feature
    with torch.no_grad():
        bn.weight.uniform_(0.5, 2.0)
        bn.bias.uniform_(-1.0, 1.0)
    torch.testing.assert_close(bn(x), y * bn.weight + bn.bias)
    # gamma and beta are learned: one SGD step on a loss moves them
    before = bn.weight.detach().clone()
    opt = torch.optim.SGD(bn.parameters(), lr=0.1)
    bn(x).pow(2).mean().backward()
    opt.step()
    assert not torch.equal(before, bn.weight.detach())


# --------------------------------------------------------------------------- 7.2


def test_7_2_at_test_time_batchnorm_uses_the_running_statistics_of_training(features):
    bn = BatchNorm1d(features.shape[1], momentum=0.1, dtype=torch.float64).train()
    mean = torch.zeros(features.shape[1], dtype=torch.float64)
    var = torch.ones(features.shape[1], dtype=torch.float64)
    for batch in features[:640].split(64):  # ten training batches
        bn(batch)
        mean = 0.9 * mean + 0.1 * batch.mean(0)  # exponential moving averages, computed here
        var = 0.9 * var + 0.1 * batch.var(0, unbiased=True)
    torch.testing.assert_close(bn.running_mean, mean)
    torch.testing.assert_close(bn.running_var, var)

    bn.eval()
    test = features[1000:1010]
    expected = (test - mean) / torch.sqrt(var + bn.eps) * bn.weight + bn.bias
    torch.testing.assert_close(bn(test), expected)
    # in eval mode a sample's output no longer depends on its batch companions ...
    torch.testing.assert_close(bn(test[:1]), bn(test)[:1])
    torch.testing.assert_close(bn(torch.cat([test[:1], features[:50]]))[:1], bn(test)[:1])
    # ... while in training mode it does
    bn.train()
    assert not torch.allclose(bn(torch.cat([test[:2], features[:50]]))[:1], bn(test[:2])[:1])


# --------------------------------------------------------------------------- 7.3 and 7.4


def test_7_3_batchnorm_at_batch_size_2_maps_every_feature_to_plus_or_minus_one(features):
    bn = BatchNorm1d(features.shape[1], dtype=torch.float64).train()
    for pair in (features[:2], features[500:502], features[1000:1002] * 100):
        y = bn(pair)
        differs = (pair[0] - pair[1]).abs() > 1  # (eps = 1e-5 shrinks smaller differences)
        assert differs.sum() > 10
        # whatever the input, each feature that differs comes out as -1 or +1
        ones = torch.ones_like(y[:, differs])
        torch.testing.assert_close(y[:, differs].abs(), ones, atol=1e-4, rtol=0)
        torch.testing.assert_close(y[0, differs], -y[1, differs])


@pytest.mark.parametrize(
    "make", [lambda c: LayerNorm(c), lambda c: GroupNorm(4, c)], ids=["LayerNorm", "GroupNorm"]
)
def test_7_3_and_7_4_layernorm_and_groupnorm_do_not_depend_on_the_batch(features, make):
    norm = make(features.shape[1] // 4 * 4).double().train()
    x = features[:64, : features.shape[1] // 4 * 4]
    alone = torch.cat([norm(x[i : i + 1]) for i in range(len(x))])
    torch.testing.assert_close(norm(x), alone, atol=1e-12, rtol=0)
    torch.testing.assert_close(norm(x[:2]), alone[:2], atol=1e-12, rtol=0)


def _train_mlp(digits, norm: str, batch_size: int, epochs: int = 2) -> float:
    """Test accuracy (%) of a 64-64-64-10 MLP after `epochs` of SGD (lr 0.1 x batch/32)."""
    torch.manual_seed(0)
    model = MLP(64, 64, depth=2, norm=norm)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1 * batch_size / 32, momentum=0.9)
    x, y = digits.x_train.flatten(1), digits.y_train
    gen = torch.Generator().manual_seed(0)
    for _ in range(epochs):
        model.train()
        order = torch.randperm(len(x), generator=gen)
        for i in range(0, len(x) - batch_size + 1, batch_size):
            idx = order[i : i + batch_size]
            loss = F.cross_entropy(model(x[idx]), y[idx])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    model.eval()
    with torch.no_grad():
        predictions = model(digits.x_test.flatten(1)).argmax(1)
    return 100 * (predictions == digits.y_test).float().mean().item()


def test_7_3_and_7_4_batchnorm_degrades_at_batch_2_where_layernorm_and_groupnorm_do_not(digits):
    accuracy = {
        (n, b): _train_mlp(digits, n, b) for n in ("batch", "layer", "group") for b in (2, 32)
    }
    # Measured on the development machine: BatchNorm 57.8 at batch 2 vs 96.1 at batch 32;
    # LayerNorm 93.1 and 94.4, GroupNorm 88.3 and 89.7. The bounds leave room for other machines.
    assert accuracy[("batch", 32)] > 85
    assert accuracy[("batch", 2)] < accuracy[("batch", 32)] - 25
    for norm in ("layer", "group"):
        assert accuracy[(norm, 2)] > 80
        assert abs(accuracy[(norm, 2)] - accuracy[(norm, 32)]) < 10
        assert accuracy[(norm, 2)] > accuracy[("batch", 2)] + 25


def test_7_4_instancenorm_and_layernorm_are_the_two_ends_of_groupnorm(digits):
    conv = nn.Conv2d(1, 8, 3, padding=1).double()
    with torch.no_grad():
        x = conv(digits.x_train[:16].double())  # (16, 8, 8, 8) real feature maps
    instance = InstanceNorm2d(8).double()
    per_channel = GroupNorm(8, 8, affine=False).double()
    torch.testing.assert_close(instance(x), per_channel(x))
    whole = LayerNorm((8, 8, 8), elementwise_affine=False).double()
    one_group = GroupNorm(1, 8, affine=False).double()
    torch.testing.assert_close(whole(x), one_group(x))
    # and they are torch's layers of the same names (tests/norm holds the full parity suite)
    torch.testing.assert_close(instance(x), nn.InstanceNorm2d(8)(x))
    torch.testing.assert_close(per_channel(x), nn.GroupNorm(8, 8, affine=False).double()(x))


# --------------------------------------------------------------------------- 7.5


def _at_init(digits, norm: str, gain: float) -> tuple[float, float]:
    """(fraction of saturated tanh units, first-layer gradient norm) of a 10-layer tanh MLP."""
    x = digits.x_train.flatten(1)
    x = (x - x.mean(0)) / (x.std(0) + 1e-6)
    torch.manual_seed(0)
    model = MLP(64, 64, depth=10, norm=norm, activation="tanh", init_gain=gain).train()
    F.cross_entropy(model(x[:256]), digits.y_train[:256]).backward()
    saturated = torch.stack([(a.abs() > 0.99).float().mean() for a in model.activations]).mean()
    return saturated.item(), model.linears[0].weight.grad.norm().item()


def test_7_5_normalisation_keeps_tanh_out_of_saturation(digits):
    saturated_plain, _ = _at_init(digits, "none", gain=3.0)
    saturated_layer, _ = _at_init(digits, "layer", gain=3.0)
    saturated_batch, _ = _at_init(digits, "batch", gain=3.0)
    assert saturated_plain > 0.2  # measured 0.29
    assert saturated_layer < 0.02 and saturated_batch < 0.02  # measured 0.007 and 0.005


def test_7_5_normalisation_eases_vanishing_gradients(digits):
    _, grad_plain = _at_init(digits, "none", gain=0.5)
    _, grad_layer = _at_init(digits, "layer", gain=0.5)
    assert grad_plain < 0.01  # measured 0.0013: the signal fades layer after layer
    assert grad_layer > 100 * grad_plain  # measured 1.3
