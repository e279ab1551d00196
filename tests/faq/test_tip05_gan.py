"""Executable FAQ, tip 5 (GANs): claims 5.1–5.5 of FAQ_CLAIMS.md.

5.1 is checked on the gradients themselves; 5.2 with the classic WGAN experiment (two
distributions with disjoint supports, a discriminator trained to optimum); 5.3 with the
mode-coverage metric on generators whose collapse is known; 5.4 and 5.5 as measured
experiments: short DCGAN runs on the digits with a balanced discriminator, a too strong
one, a too weak one, and the too strong one spectrally normalised.
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from torchkata.data import load_digits
from torchkata.data.mixtures import grid25, sample_mixture
from torchkata.gan import (
    DCGANDiscriminator,
    DCGANGenerator,
    MLPDiscriminator,
    MLPGenerator,
    SelfAttention2d,
    discriminator_loss,
    frechet_distance,
    generator_loss,
    gradient_penalty,
    mode_coverage,
)


# ---------------------------------------------------------------- 5.1
def test_5_1_the_discriminator_step_uses_detached_fakes_and_leaves_the_generator_alone():
    torch.manual_seed(0)
    G, D = MLPGenerator(2, 16, 2, 2), MLPDiscriminator(2, 16, 2)
    real, z = torch.randn(64, 2), torch.randn(64, 2)
    fake = G(z)
    discriminator_loss(D(real), D(fake.detach())).backward()
    assert all(p.grad is None for p in G.parameters())  # D's step cannot move G
    assert all(p.grad is not None for p in D.parameters())
    # Without the detach, D's loss sends G a gradient that points against G's own
    # objective (it would make the fakes easier to spot): negative cosine.
    G.zero_grad(set_to_none=True)
    discriminator_loss(D(real), D(G(z))).backward()
    wrong = torch.cat([p.grad.flatten() for p in G.parameters()])
    G.zero_grad(set_to_none=True)
    D.zero_grad(set_to_none=True)
    generator_loss(D(G(z))).backward()
    right = torch.cat([p.grad.flatten() for p in G.parameters()])
    assert F.cosine_similarity(wrong, right, dim=0).item() < -0.5


# ---------------------------------------------------------------- 5.2
def _optimal_critic(kind: str, shift: float) -> tuple[float, float]:
    """Train a critic to (near) optimum between N(0, 0.01²) and N(shift, 0.01²) in 1-D;
    return (its loss, |gradient| it gives the generator at the fakes)."""
    torch.manual_seed(0)
    D = nn.Sequential(
        nn.Linear(1, 64), nn.LeakyReLU(0.2), nn.Linear(64, 64), nn.LeakyReLU(0.2), nn.Linear(64, 1)
    )
    optimizer = torch.optim.Adam(D.parameters(), lr=1e-3, betas=(0.5, 0.9))
    gen = torch.Generator().manual_seed(0)
    for _ in range(400):
        real = 0.01 * torch.randn(256, 1, generator=gen)
        fake = shift + 0.01 * torch.randn(256, 1, generator=gen)
        loss = discriminator_loss(D(real), D(fake), kind)
        if kind == "wgan":
            loss = loss + 10 * gradient_penalty(D, real, fake, generator=gen)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    fake = (shift + 0.01 * torch.randn(256, 1, generator=gen)).requires_grad_()
    (grad,) = torch.autograd.grad(
        generator_loss(D(fake), "minimax" if kind == "ns" else kind), fake
    )
    return loss.item(), grad.abs().mean().item() * 256


def test_5_2_wasserstein_critics_keep_measuring_distance_where_the_standard_gan_saturates():
    """Disjoint supports, as for a generator early in training: the standard
    discriminator reaches ~0 loss at every distance (no information), and the original
    minimax generator loss then gives ~0 gradient; the WGAN-GP critic's estimate grows
    with the distance and its gradient stays near 1 (the penalty's target)."""
    ns = {shift: _optimal_critic("ns", shift) for shift in (1.0, 3.0)}
    wgan = {shift: _optimal_critic("wgan", shift) for shift in (1.0, 3.0)}
    assert all(loss < 0.01 for loss, _ in ns.values())
    assert all(grad < 1e-2 for _, grad in ns.values())
    # -critic loss estimates the Wasserstein-1 distance (= shift), minus the penalty
    assert -wgan[3.0][0] > 2 * -wgan[1.0][0] > 0
    assert all(0.5 < grad < 1.5 for _, grad in wgan.values())


# ---------------------------------------------------------------- 5.3
def test_5_3_mode_collapse_is_measured_by_the_modes_a_generator_covers():
    centers, std = grid25()
    gen = torch.Generator().manual_seed(0)
    ideal = mode_coverage(sample_mixture(centers, std, 2500, generator=gen), centers, std)
    collapsed = mode_coverage(sample_mixture(centers[:3], std, 2500, generator=gen), centers, std)
    blurred = mode_coverage(sample_mixture(centers, 0.5, 2500, generator=gen), centers, std)
    assert ideal.modes_covered == 25 and ideal.high_quality == pytest.approx(0.9889, abs=0.01)
    assert collapsed.modes_covered == 3 and collapsed.high_quality > 0.95  # sharp, not diverse
    assert collapsed.kl == pytest.approx(math.log(25 / 3), abs=0.02)
    assert blurred.modes_covered == 25 and blurred.high_quality < 0.1  # diverse, not sharp
    assert ideal.kl < 0.02


# ---------------------------------------------------------------- 5.4 and 5.5
@pytest.fixture(scope="module")
def digit_runs() -> dict[str, float]:
    """Short DCGAN runs on the digits (16x16, [-1, 1]) in four settings; for each, the
    Fréchet distance to the held-out digits of the features of a small classifier
    trained here on the real training digits (no Inception weights exist offline)."""
    split = load_digits()
    train, test = (
        F.interpolate(x, size=16, mode="bilinear", align_corners=False) * 2 - 1
        for x in (split.x_train, split.x_test)
    )
    torch.manual_seed(0)
    features = nn.Sequential(
        nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
        nn.Linear(32 * 16, 32), nn.ReLU(),
    )  # fmt: skip
    classifier = nn.Sequential(features, nn.Linear(32, 10))
    optimizer = torch.optim.Adam(classifier.parameters(), lr=2e-3)
    for _ in range(5):
        for idx in torch.randperm(len(train)).split(64):
            loss = F.cross_entropy(classifier(train[idx]), split.y_train[idx])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    with torch.no_grad():
        assert (classifier(test).argmax(1) == split.y_test).float().mean() > 0.9
        reference = features(test).double()
    settings = {  # discriminator learning rate, D steps per G step, spectral norm
        "balanced": (2e-4, 1, False),
        "too strong": (2e-3, 5, False),
        "too weak": (2e-7, 1, False),
        "too strong, spectral norm": (2e-3, 5, True),
    }
    distances = {}
    for name, (lr_d, d_steps, spectral_norm) in settings.items():
        G = _dcgan(train, lr_d, d_steps, spectral_norm)
        with torch.no_grad():
            fake = G(torch.randn(720, 16, generator=torch.Generator().manual_seed(1)))
            distances[name] = frechet_distance(features(fake).double(), reference)
    return distances


def _dcgan(digits, lr_d: float, d_steps: int, spectral_norm: bool, steps: int = 200) -> nn.Module:
    """A short DCGAN run on ``digits``; returns the generator in eval mode."""
    torch.manual_seed(0)
    G = DCGANGenerator(16, 16, 1, 16)
    D = DCGANDiscriminator(16, 1, 16, spectral_norm=spectral_norm)
    opt_d = torch.optim.Adam(D.parameters(), lr=lr_d, betas=(0.5, 0.999))
    opt_g = torch.optim.Adam(G.parameters(), lr=2e-4, betas=(0.5, 0.999))
    gen = torch.Generator().manual_seed(0)
    for _ in range(steps):
        for _ in range(d_steps):
            real = digits[torch.randint(len(digits), (64,), generator=gen)]
            fake = G(torch.randn(64, 16, generator=gen))
            loss_d = discriminator_loss(D(real), D(fake.detach()))
            opt_d.zero_grad()
            loss_d.backward()
            opt_d.step()
        loss_g = generator_loss(D(fake))
        opt_g.zero_grad()
        loss_g.backward()
        opt_g.step()
    return G.eval()


def test_5_4_a_too_strong_or_too_weak_discriminator_hurts_the_generator(digit_runs):
    # measured (200 generator steps): balanced 636, too strong 1542, too weak 1323
    assert digit_runs["too strong"] > 1.5 * digit_runs["balanced"]
    assert digit_runs["too weak"] > 1.5 * digit_runs["balanced"]


def test_5_5_spectral_normalisation_rescues_the_too_strong_discriminator(digit_runs):
    # measured: too strong 1542, the same spectrally normalised 546 (balanced: 636)
    assert digit_runs["too strong, spectral norm"] < digit_runs["too strong"] / 2


def test_5_5_spectral_norm_bounds_the_discriminators_slope_and_self_attention_sees_far():
    torch.manual_seed(0)
    x = torch.randn(256, 2, requires_grad=True)
    slopes = {}
    for sn in (False, True):
        D = MLPDiscriminator(2, 64, 3, spectral_norm=sn)
        with torch.no_grad():
            for p in D.parameters():
                p.mul_(3)  # a discriminator whose weights grew large
        for _ in range(50):  # power iterations (train mode) converge the estimate
            D(x)
        (grad,) = torch.autograd.grad(D.eval()(x).sum(), x)
        slopes[sn] = grad.norm(dim=1).max().item()
    assert slopes[True] <= 1.0 + 1e-3 < 3 < slopes[False]  # 1-Lipschitz layers, product <= 1
    # self-attention: one layer connects every position to every other; a 3x3 conv does not
    attention = SelfAttention2d(8, reduction=2)
    with torch.no_grad():
        attention.gamma.fill_(1.0)
    image = torch.randn(1, 8, 8, 8, requires_grad=True)
    (reach,) = torch.autograd.grad(attention(image)[0, :, 0, 0].sum(), image)
    assert reach[0, :, 7, 7].abs().sum() > 0  # the far corner
    conv = nn.Conv2d(8, 8, 3, padding=1)
    (local,) = torch.autograd.grad(conv(image)[0, :, 0, 0].sum(), image)
    assert local[0, :, 7, 7].abs().sum() == 0
