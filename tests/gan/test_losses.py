"""GAN losses and penalties against torch twins and independent formulas.

Tolerances: float64 formulas agree to 1e-12 (``assert_close`` defaults for float64 where
not stated); the linear-critic penalties are exact up to rounding.
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from torchkata.gan import KINDS, discriminator_loss, generator_loss, gradient_penalty, r1_penalty

f64 = torch.float64


def logits(*shape, seed=0, scale=3.0):
    gen = torch.Generator().manual_seed(seed)
    return scale * torch.randn(*shape, generator=gen, dtype=f64)


def mlp(d_in=3, seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(d_in, 16), nn.Tanh(), nn.Linear(16, 1)).double()


def assert_trains_critic(critic):
    # Every parameter but the output bias, which shifts D without changing its gradient.
    *inner, out_bias = critic.parameters()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in inner)
    assert out_bias.grad is None


# ---------------------------------------------------------------------------------------
# Losses
# ---------------------------------------------------------------------------------------


def test_kinds():
    assert KINDS == ("ns", "minimax", "hinge", "wgan")


@pytest.mark.parametrize("kind", ["ns", "minimax"])
def test_ns_discriminator_loss_is_bce_with_logits(kind):
    # Twin: BCE with targets 1 on real and 0 on fake, batches of different sizes.
    real = logits(8, 1, seed=1).requires_grad_()
    fake = logits(5, 1, seed=2).requires_grad_()
    ours = discriminator_loss(real, fake, kind)
    twin = F.binary_cross_entropy_with_logits(
        real, torch.ones_like(real)
    ) + F.binary_cross_entropy_with_logits(fake, torch.zeros_like(fake))
    torch.testing.assert_close(ours, twin)
    g_ours = torch.autograd.grad(ours, (real, fake))
    g_twin = torch.autograd.grad(twin, (real, fake))
    torch.testing.assert_close(g_ours, g_twin)


def test_losses_match_formulas():
    real, fake = logits(64, seed=3), logits(64, seed=4)
    sig = torch.sigmoid
    expected_d = {
        "ns": (-torch.log(sig(real))).mean() + (-torch.log(1 - sig(fake))).mean(),
        "hinge": torch.clamp(1 - real, min=0).mean() + torch.clamp(1 + fake, min=0).mean(),
        "wgan": fake.mean() - real.mean(),
    }
    expected_d["minimax"] = expected_d["ns"]
    expected_g = {
        "ns": (-torch.log(sig(fake))).mean(),
        "minimax": torch.log(1 - sig(fake)).mean(),
        "hinge": -fake.mean(),
        "wgan": -fake.mean(),
    }
    for kind in KINDS:
        torch.testing.assert_close(discriminator_loss(real, fake, kind), expected_d[kind])
        torch.testing.assert_close(generator_loss(fake, kind), expected_g[kind])


def test_default_kind_is_ns():
    real, fake = logits(10, seed=5), logits(10, seed=6)
    assert torch.equal(discriminator_loss(real, fake), discriminator_loss(real, fake, "ns"))
    assert torch.equal(generator_loss(fake), generator_loss(fake, "ns"))


def _g_grad(value, kind):
    fake = torch.tensor([value], dtype=f64, requires_grad=True)
    (grad,) = torch.autograd.grad(generator_loss(fake, kind), fake)
    return grad.item()


def test_minimax_generator_gradient_saturates_and_ns_does_not():
    # THE reason for the non-saturating loss: early in training D rejects the fakes
    # confidently (very negative logits). d/dl log(1 - sigmoid(l)) = -sigmoid(l) -> 0,
    # while d/dl -log sigmoid(l) = -sigmoid(-l) -> -1.
    for value in (-5.0, -10.0, -20.0, -50.0):
        assert _g_grad(value, "minimax") == pytest.approx(-1 / (1 + math.exp(-value)), rel=1e-9)
        assert _g_grad(value, "ns") == pytest.approx(-1 / (1 + math.exp(value)), rel=1e-9)
    assert abs(_g_grad(-20.0, "minimax")) < 1e-8
    assert _g_grad(-20.0, "ns") == pytest.approx(-1.0, abs=1e-8)
    # Both push the fake logit up, and agree where D is fooled half the time.
    assert _g_grad(0.0, "minimax") == _g_grad(0.0, "ns") == -0.5


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_stable_at_extreme_logits(kind, dtype):
    real = torch.tensor([1e4, -1e4], dtype=dtype, requires_grad=True)
    fake = torch.tensor([-1e4, 1e4], dtype=dtype, requires_grad=True)
    for loss in (discriminator_loss(real, fake, kind), generator_loss(fake, kind)):
        grads = torch.autograd.grad(loss, (real, fake), allow_unused=True)
        assert torch.isfinite(loss)
        assert all(g is None or torch.isfinite(g).all() for g in grads)
    if kind == "ns":  # a confident right answer costs ~0, a confident wrong one ~1e4
        assert discriminator_loss(real, fake).item() == pytest.approx(1e4, rel=1e-6)


@pytest.mark.parametrize("kind", KINDS)
def test_loss_gradients_gradcheck(kind):
    real = logits(6, seed=7).requires_grad_()
    fake = logits(4, seed=8).requires_grad_()
    assert torch.autograd.gradcheck(lambda r, f: discriminator_loss(r, f, kind), (real, fake))
    assert torch.autograd.gradcheck(lambda f: generator_loss(f, kind), (fake,))


@pytest.mark.parametrize("kind", ["NS", "lsgan", None, ("ns",)])
def test_unknown_kind_lists_kinds(kind):
    message = r"^kind: expected one of 'ns', 'minimax', 'hinge', 'wgan', got"
    with pytest.raises(ValueError, match=message):
        discriminator_loss(torch.zeros(2), torch.zeros(2), kind)
    with pytest.raises(ValueError, match=message):
        generator_loss(torch.zeros(2), kind)


def test_loss_input_errors_name_the_argument():
    with pytest.raises(TypeError, match=r"^real: expected a torch"):
        discriminator_loss([1.0], torch.zeros(2))
    with pytest.raises(TypeError, match=r"^fake: expected a floating-point tensor"):
        discriminator_loss(torch.zeros(2), torch.zeros(2, dtype=torch.long))
    with pytest.raises(ValueError, match=r"^fake: expected a non-empty tensor, got shape \(0,\)"):
        generator_loss(torch.zeros(0))


# ---------------------------------------------------------------------------------------
# Gradient penalty (WGAN-GP)
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("shape", [(16, 3), (4, 2, 3, 3)])
def test_gradient_penalty_of_linear_critic_is_exact(shape):
    # D(x) = <w, x> has gradient w at every x, so GP = (|w| - target)^2 whatever epsilon.
    d = math.prod(shape[1:])
    w = logits(d, seed=9).requires_grad_()
    critic = lambda x: x.reshape(x.shape[0], -1) @ w  # noqa: E731
    real, fake = logits(*shape, seed=10), logits(*shape, seed=11)
    norm = w.detach().norm().item()
    gp = gradient_penalty(critic, real, fake)
    assert gp.item() == pytest.approx((norm - 1) ** 2, rel=1e-12)
    assert gradient_penalty(critic, real, fake, target=0.0).item() == pytest.approx(norm**2)
    assert gradient_penalty(critic, real, fake, target=norm).item() == pytest.approx(0, abs=1e-24)
    gp.backward()  # d/dw (|w| - 1)^2 = 2 (|w| - 1) w / |w|
    torch.testing.assert_close(w.grad, 2 * (norm - 1) * w.detach() / norm)


def test_gradient_penalty_is_zero_for_unit_norm_linear_critic():
    w = torch.tensor([0.6, 0.0, -0.8], dtype=f64)
    gp = gradient_penalty(lambda x: x @ w, logits(32, 3, seed=12), logits(32, 3, seed=13))
    assert gp.item() == pytest.approx(0.0, abs=1e-28)


def test_gradient_penalty_matches_per_sample_loop():
    # Independent formula: the same epsilon (same seed), each sample's input gradient by
    # its own autograd call, the norm by hand.
    critic = mlp()
    real, fake = logits(10, 3, seed=14), logits(10, 3, seed=15)
    gp = gradient_penalty(critic, real, fake, generator=torch.Generator().manual_seed(5))
    eps = torch.rand((10, 1), generator=torch.Generator().manual_seed(5), dtype=f64)
    terms = []
    for i in range(10):
        x = (eps[i] * real[i] + (1 - eps[i]) * fake[i]).requires_grad_()
        (g,) = torch.autograd.grad(critic(x[None]).sum(), x)
        terms.append((math.sqrt(sum(v * v for v in g.tolist())) - 1) ** 2)
    assert gp.item() == pytest.approx(sum(terms) / 10, rel=1e-12)


def test_gradient_penalty_interpolates_per_sample():
    seen = []

    def critic(x):
        seen.append(x.detach().clone())
        return x.sum(dim=(1, 2, 3))

    real, fake = logits(6, 2, 3, 3, seed=16), logits(6, 2, 3, 3, seed=17)
    gradient_penalty(critic, real, fake, generator=torch.Generator().manual_seed(0))
    ratio = (seen[0] - fake) / (real - fake)  # epsilon, one value per sample in [0, 1]
    eps = ratio.reshape(6, -1)
    torch.testing.assert_close(eps, eps[:, :1].expand_as(eps))
    assert bool(((eps >= 0) & (eps <= 1)).all())
    assert eps[:, 0].unique().numel() == 6


def test_gradient_penalty_trains_the_critic_not_the_generator():
    critic = mlp()
    gen_net = nn.Linear(2, 3).double()
    real = logits(8, 3, seed=18)
    fake = gen_net(logits(8, 2, seed=19))  # not detached by the caller
    gp = gradient_penalty(critic, real, fake)
    gp.backward()
    assert_trains_critic(critic)
    assert all(p.grad is None for p in gen_net.parameters())


def test_gradient_penalty_double_backward_gradcheck():
    # float64 gradcheck of the penalty with respect to the critic's weights (needs
    # create_graph=True: the second-order terms of tanh).
    x_real, x_fake = logits(5, 3, seed=20), logits(5, 3, seed=21)

    def penalty(w1, w2):
        critic = lambda x: torch.tanh(x @ w1) @ w2  # noqa: E731
        gen = torch.Generator().manual_seed(3)
        return gradient_penalty(critic, x_real, x_fake, generator=gen)

    w1 = logits(3, 4, seed=22, scale=0.5).requires_grad_()
    w2 = logits(4, seed=23, scale=0.5).requires_grad_()
    assert torch.autograd.gradcheck(penalty, (w1, w2))


def test_gradient_penalty_seeded():
    critic = mlp()
    real, fake = logits(8, 3, seed=24), logits(8, 3, seed=25)
    values = [
        gradient_penalty(critic, real, fake, generator=torch.Generator().manual_seed(s)).item()
        for s in (1, 1, 2)
    ]
    assert values[0] == values[1] != values[2]


def test_gradient_penalty_errors_name_the_argument():
    critic = mlp()
    with pytest.raises(ValueError, match=r"^fake: expected the shape of real, \(4, 3\), got"):
        gradient_penalty(critic, logits(4, 3), logits(5, 3))
    with pytest.raises(ValueError, match=r"^target: expected a finite real number >= 0"):
        gradient_penalty(critic, logits(4, 3), logits(4, 3), target=-1.0)
    with pytest.raises(ValueError, match=r"^real: expected a batch of shape"):
        gradient_penalty(critic, torch.tensor(1.0), torch.tensor(1.0))
    with pytest.raises(ValueError, match=r"^discriminator: expected one output per sample"):
        gradient_penalty(lambda x: x, logits(4, 3), logits(4, 3))
    with pytest.raises(ValueError, match=r"^discriminator: expected one output per sample"):
        r1_penalty(lambda x: x.sum(), logits(4, 3))
    with pytest.raises(ValueError, match=r"^discriminator: .* per pack of 2 samples, .* \(2,\)"):
        r1_penalty(lambda x: x.sum(dim=1), logits(4, 3), pack=2)
    with pytest.raises(ValueError, match=r"^pack: expected a divisor of the batch size 4, got 3"):
        gradient_penalty(critic, logits(4, 3), logits(4, 3), pack=3)
    with pytest.raises(ValueError, match=r"^pack: expected an int >= 1, got 0"):
        r1_penalty(critic, logits(4, 3), pack=0)


# ---------------------------------------------------------------------------------------
# R1
# ---------------------------------------------------------------------------------------


def test_r1_of_linear_discriminator_is_squared_norm():
    w = logits(3, seed=26).requires_grad_()
    r1 = r1_penalty(lambda x: x @ w, logits(12, 3, seed=27))
    norm2 = w.detach().pow(2).sum()
    assert r1.item() == pytest.approx(norm2.item(), rel=1e-12)
    r1.backward()
    torch.testing.assert_close(w.grad, 2 * w.detach())


def test_r1_matches_per_sample_loop_and_trains_only_the_discriminator():
    critic = mlp(seed=1)
    source = nn.Linear(2, 3).double()
    real = source(logits(7, 2, seed=28))  # as if real data came out of a network
    r1 = r1_penalty(critic, real)
    terms = []
    for i in range(7):
        x = real[i].detach().requires_grad_()
        (g,) = torch.autograd.grad(critic(x[None]).sum(), x)
        terms.append(float((g**2).sum()))
    assert r1.item() == pytest.approx(sum(terms) / 7, rel=1e-12)
    r1.backward()
    assert_trains_critic(critic)
    assert all(p.grad is None for p in source.parameters())


# ---------------------------------------------------------------------------------------
# PacGAN packing
# ---------------------------------------------------------------------------------------


def packed(w, pack):
    """A linear critic judging ``pack`` consecutive samples: (N, D) -> (N / P,)."""
    return lambda x: x.reshape(x.shape[0] // pack, -1) @ w


def test_penalties_of_packed_linear_critic_are_exact():
    # The gradient with respect to a whole pack is w (P * D values), at every point.
    w = logits(4 * 3, seed=29).requires_grad_()
    real, fake = logits(8, 3, seed=30), logits(8, 3, seed=31)
    norm = w.detach().norm().item()
    gp = gradient_penalty(packed(w, 4), real, fake, pack=4)
    assert gp.item() == pytest.approx((norm - 1) ** 2, rel=1e-12)
    assert r1_penalty(packed(w, 4), real, pack=4).item() == pytest.approx(norm**2, rel=1e-12)


def test_packed_gradient_penalty_shares_epsilon_within_a_pack():
    seen = []

    def critic(x):
        seen.append(x.detach().clone())
        return x.reshape(3, -1).sum(dim=1)

    real, fake = logits(6, 2, seed=32), logits(6, 2, seed=33)
    gradient_penalty(critic, real, fake, pack=2, generator=torch.Generator().manual_seed(0))
    eps = ((seen[0] - fake) / (real - fake))[:, 0]  # (6,)
    torch.testing.assert_close(eps[0::2], eps[1::2])
    assert eps[0::2].unique().numel() == 3


def test_packed_r1_matches_per_pack_loop():
    torch.manual_seed(2)
    net = nn.Sequential(nn.Linear(2 * 3, 8), nn.Tanh(), nn.Linear(8, 1)).double()
    critic = lambda x: net(x.reshape(x.shape[0] // 2, -1))  # noqa: E731
    real = logits(6, 3, seed=34)
    r1 = r1_penalty(critic, real, pack=2)
    terms = []
    for j in range(3):
        x = real[2 * j : 2 * j + 2].detach().requires_grad_()
        (g,) = torch.autograd.grad(critic(x).sum(), x)
        terms.append(float((g**2).sum()))
    assert r1.item() == pytest.approx(sum(terms) / 3, rel=1e-12)
