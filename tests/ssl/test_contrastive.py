"""SimCLR, VICReg, the augmentations and the frozen-feature evaluations."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from torchkata.losses import NTXentLoss
from torchkata.ssl import SimCLR, VICReg, augment_image, augment_signal, vicreg_loss
from torchkata.ssl.evaluation import knn_accuracy, linear_probe


def test_simclr_is_nt_xent_on_the_projected_views():
    torch.manual_seed(0)
    model = SimCLR(nn.Linear(10, 6), feature_dim=6, projection_dim=4, temperature=0.3).double()
    a, b = torch.randn(8, 10, dtype=torch.float64), torch.randn(8, 10, dtype=torch.float64)
    expected = NTXentLoss(temperature=0.3)(
        model.projector(model.encoder(a)), model.projector(model.encoder(b))
    )
    torch.testing.assert_close(model(a, b), expected)


def test_vicreg_loss_equals_an_independent_numpy_formula():
    rng = np.random.default_rng(0)
    za, zb = rng.normal(size=(16, 5)), rng.normal(size=(16, 5)) * 0.3
    D = za.shape[1]
    inv = ((za - zb) ** 2).mean()
    var = cov = 0.0
    for z in (za, zb):
        std = np.sqrt(z.var(0, ddof=1) + 1e-4)
        var += np.maximum(0, 1 - std).mean()
        c = np.cov(z, rowvar=False)  # unbiased
        cov += (c**2).sum() - (np.diag(c) ** 2).sum()
    expected = 25 * inv + 25 * var + 1 * cov / D
    got = vicreg_loss(torch.tensor(za), torch.tensor(zb))
    assert got.item() == pytest.approx(expected, rel=1e-12)
    with pytest.raises(ValueError, match="N >= 2"):
        vicreg_loss(torch.randn(1, 3), torch.randn(1, 3))


def test_vicreg_variance_term_prevents_collapse():
    # All embeddings equal: invariance 0, but the variance term is at its maximum.
    z = torch.ones(8, 4)
    assert vicreg_loss(z, z).item() == pytest.approx(25 * 2 * (1 - 1e-2), rel=1e-6)
    model = VICReg(nn.Linear(10, 6), feature_dim=6, projection_dim=8)
    assert model(torch.randn(8, 10), torch.randn(8, 10)).shape == ()


def test_signal_augmentation_is_random_deterministic_with_a_generator_and_leaves_x_alone():
    x = torch.randn(5, 40)
    before = x.clone()
    a = augment_signal(x, generator=torch.Generator().manual_seed(1))
    b = augment_signal(x, generator=torch.Generator().manual_seed(1))
    c = augment_signal(x, generator=torch.Generator().manual_seed(2))
    assert torch.equal(a, b) and not torch.equal(a, c) and torch.equal(x, before)
    identity = augment_signal(
        x, max_shift=0, max_stretch=0, scale=(1, 1), max_shear=0, noise_std=0,
        smooth_noise_std=0,
    )  # fmt: skip
    torch.testing.assert_close(identity, x)
    with pytest.raises(ValueError, match=r"expected signals of shape \(N, L\)"):
        augment_signal(torch.randn(2, 1, 40))


def test_image_augmentation_shapes_and_identity():
    x = torch.rand(4, 1, 8, 8)
    out = augment_image(x, generator=torch.Generator().manual_seed(0))
    assert out.shape == x.shape and not torch.equal(out, x)
    same = augment_image(x, max_translate=0, max_rotation=0, noise_std=0, cutout=0)
    torch.testing.assert_close(same, x, atol=1e-6, rtol=0)
    holes = augment_image(
        torch.ones(3, 1, 8, 8), max_translate=0, max_rotation=0, noise_std=0, cutout=2
    )
    assert (holes == 0).flatten(1).sum(1).tolist() == [4, 4, 4]
    with pytest.raises(ValueError, match=r"expected images of shape \(N, C, H, W\)"):
        augment_image(torch.rand(8, 8))


def test_knn_accuracy_equals_a_brute_force_vote():
    gen = torch.Generator().manual_seed(0)
    x_train, y_train = torch.randn(60, 6, generator=gen), torch.randint(0, 3, (60,), generator=gen)
    x_test, y_test = torch.randn(40, 6, generator=gen), torch.randint(0, 3, (40,), generator=gen)
    a = x_test / x_test.norm(dim=1, keepdim=True)
    b = x_train / x_train.norm(dim=1, keepdim=True)
    hits = 0
    for i in range(40):
        order = np.argsort(-(a[i] @ b.T).numpy(), kind="stable")[:5]
        counts = np.bincount(y_train[order].numpy(), minlength=3)
        best = np.flatnonzero(counts == counts.max())
        sims = [(a[i] @ b[order].T).numpy()[y_train[order].numpy() == c].sum() for c in best]
        hits += int(best[int(np.argmax(sims))] == y_test[i])
    got = knn_accuracy(nn.Identity(), (x_train, y_train), (x_test, y_test), k=5)
    assert got == pytest.approx(hits / 40)


def test_linear_probe_reads_linear_structure_and_not_noise():
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(400, 8, generator=gen)
    y = (x[:, 0] + 0.5 * x[:, 1] > 0).long()
    assert linear_probe(nn.Identity(), (x[:200], y[:200]), (x[200:], y[200:])) > 0.95
    noise = torch.randint(0, 2, (400,), generator=gen)
    chance = linear_probe(nn.Identity(), (x[:200], noise[:200]), (x[200:], noise[200:]))
    assert 0.35 < chance < 0.65
    with pytest.raises(ValueError, match="train: expected x of N samples"):
        linear_probe(nn.Identity(), (x[:10], y[:9]), (x, y))
    encoder = nn.Linear(8, 3).train()
    linear_probe(encoder, (x[:50], y[:50]), (x[50:60], y[50:60]))
    assert encoder.training  # its mode is restored
