"""torchkata.gan.models: shapes, pytorch/examples' DCGAN as the reference, PacGAN packing,
spectral norm, self-attention, minibatch standard deviation, EMA, and errors."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.nn.utils import parametrize

from torchkata.gan.models import (
    EMA,
    DCGANDiscriminator,
    DCGANGenerator,
    MinibatchStdDev,
    MLPDiscriminator,
    MLPGenerator,
    SelfAttention2d,
)

# ---------------------------------------------------------------------------------------
# The reference: pytorch/examples' dcgan/main.py (nz, ngf, ndf, nc = 100, 64, 64, 3)
# ---------------------------------------------------------------------------------------


class RefGenerator(nn.Module):
    def __init__(self, nz: int = 100, ngf: int = 64, nc: int = 3) -> None:
        super().__init__()
        self.main = nn.Sequential(
            nn.ConvTranspose2d(nz, ngf * 8, 4, 1, 0, bias=False),
            nn.BatchNorm2d(ngf * 8),
            nn.ReLU(True),
            nn.ConvTranspose2d(ngf * 8, ngf * 4, 4, 2, 1, bias=False),
            nn.BatchNorm2d(ngf * 4),
            nn.ReLU(True),
            nn.ConvTranspose2d(ngf * 4, ngf * 2, 4, 2, 1, bias=False),
            nn.BatchNorm2d(ngf * 2),
            nn.ReLU(True),
            nn.ConvTranspose2d(ngf * 2, ngf, 4, 2, 1, bias=False),
            nn.BatchNorm2d(ngf),
            nn.ReLU(True),
            nn.ConvTranspose2d(ngf, nc, 4, 2, 1, bias=False),
            nn.Tanh(),
        )

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.main(z)


class RefDiscriminator(nn.Module):
    def __init__(self, ndf: int = 64, nc: int = 3) -> None:
        super().__init__()
        self.main = nn.Sequential(
            nn.Conv2d(nc, ndf, 4, 2, 1, bias=False),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(ndf, ndf * 2, 4, 2, 1, bias=False),
            nn.BatchNorm2d(ndf * 2),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(ndf * 2, ndf * 4, 4, 2, 1, bias=False),
            nn.BatchNorm2d(ndf * 4),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(ndf * 4, ndf * 8, 4, 2, 1, bias=False),
            nn.BatchNorm2d(ndf * 8),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(ndf * 8, 1, 4, 1, 0, bias=False),
            nn.Sigmoid(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.main(x).view(-1, 1).squeeze(1)


def weights_init(m: nn.Module) -> None:
    classname = m.__class__.__name__
    if classname.find("Conv") != -1:
        nn.init.normal_(m.weight, 0.0, 0.02)
    elif classname.find("BatchNorm") != -1:
        nn.init.normal_(m.weight, 1.0, 0.02)
        nn.init.zeros_(m.bias)


def n_params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def test_dcgan_64_is_pytorch_examples_generator() -> None:
    torch.manual_seed(0)
    ours = DCGANGenerator()
    torch.manual_seed(0)
    ref = RefGenerator()
    ref.apply(weights_init)
    assert repr(ours.main) == repr(ref.main)  # the same layers in the same order
    assert n_params(ours) == n_params(ref) == 3576704
    for (name, a), (ref_name, b) in zip(
        ours.state_dict().items(), ref.state_dict().items(), strict=True
    ):
        assert name == ref_name and torch.equal(a, b), name  # same seed, same weights
    with torch.no_grad():  # after a training step of BatchNorm, loaded into theirs
        ours(torch.randn(4, 100))
    ref.load_state_dict(ours.state_dict())
    z = torch.randn(3, 100)
    for mode in (True, False):
        out = ours.train(mode)(z)
        torch.testing.assert_close(out, ref.train(mode)(z.view(3, 100, 1, 1)), rtol=0, atol=0)
        assert out.shape == (3, 3, 64, 64) and out.abs().max() <= 1


def test_dcgan_64_is_pytorch_examples_discriminator_without_sigmoid() -> None:
    torch.manual_seed(0)
    ours = DCGANDiscriminator()
    torch.manual_seed(0)
    ref = RefDiscriminator()
    ref.apply(weights_init)
    assert repr(ours.main) == repr(ref.main[:-1])
    assert n_params(ours) == n_params(ref) == 2765568
    assert list(ours.state_dict()) == list(ref.state_dict())
    for name, value in ours.state_dict().items():
        assert torch.equal(value, ref.state_dict()[name]), name
    with torch.no_grad():
        ours(torch.randn(4, 3, 64, 64))
    ref.load_state_dict(ours.state_dict())
    x = torch.randn(3, 3, 64, 64)
    for mode in (True, False):
        logits = ours.train(mode)(x)
        assert logits.shape == (3,)
        torch.testing.assert_close(torch.sigmoid(logits), ref.train(mode)(x))


# ---------------------------------------------------------------------------------------
# Shapes and the general image-size rule
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("size", [8, 16, 32, 64])
def test_dcgan_shapes(size: int) -> None:
    G = DCGANGenerator(latent_dim=5, image_size=size, channels=2, width=4)
    z = torch.randn(4, 5)
    images = G(z)
    assert images.shape == (4, 2, size, size)
    assert torch.equal(G(z.view(4, 5, 1, 1)), images)
    for options in [{}, {"spectral_norm": True, "self_attention": True, "minibatch_std": True}]:
        D = DCGANDiscriminator(image_size=size, channels=2, width=4, **options)
        assert D(images).shape == (4,)
        assert D.eval()(images[:2]).shape == (2,)


@pytest.mark.parametrize(("size", "multipliers"), [(8, [1]), (16, [2, 1]), (64, [8, 4, 2, 1])])
def test_channel_multipliers(size: int, multipliers: list[int]) -> None:
    G = DCGANGenerator(latent_dim=3, image_size=size, channels=1, width=2)
    convs = [m for m in G.main if isinstance(m, nn.ConvTranspose2d)]
    assert [c.out_channels for c in convs] == [2 * k for k in multipliers] + [1]
    D = DCGANDiscriminator(image_size=size, channels=1, width=2)
    convs = [m for m in D.main if isinstance(m, nn.Conv2d)]
    assert [c.out_channels for c in convs] == [2 * k for k in reversed(multipliers)] + [1]


@pytest.mark.parametrize(("size", "after"), [(8, 4), (16, 8), (32, 16), (64, 16)])
def test_self_attention_placement(size: int, after: int) -> None:
    """After the 16x16 stage if there is one, else after the first stage."""
    D = DCGANDiscriminator(image_size=size, channels=1, width=4, self_attention=True)
    shapes: list[torch.Size] = []
    hooks = [
        m.register_forward_hook(lambda m, i, o: shapes.append(o.shape))
        for m in D.modules()
        if isinstance(m, SelfAttention2d)
    ]
    D(torch.randn(2, 1, size, size))
    assert len(hooks) == 1 and shapes[0][-1] == after


def test_minibatch_std_adds_a_channel_to_the_last_conv() -> None:
    D = DCGANDiscriminator(image_size=16, channels=1, width=4, minibatch_std=True)
    assert isinstance(D.main[-2], MinibatchStdDev)
    assert D.main[-1].in_channels == 8 + 1


def test_spectral_norm_drops_batchnorm_and_wraps_every_conv() -> None:
    D = DCGANDiscriminator(image_size=32, channels=1, width=4, spectral_norm=True)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in D.modules())
    convs = [m for m in D.modules() if isinstance(m, nn.Conv2d)]
    assert len(convs) == 4 and all(parametrize.is_parametrized(m, "weight") for m in convs)
    D = DCGANDiscriminator(
        image_size=16, channels=1, width=8, spectral_norm=True, self_attention=True
    )
    convs = [m for m in D.modules() if isinstance(m, nn.Conv2d)]
    assert len(convs) == 3 + 3 and all(parametrize.is_parametrized(m, "weight") for m in convs)


def test_dcgan_init_statistics() -> None:
    torch.manual_seed(0)
    D = DCGANDiscriminator(spectral_norm=True)  # the unnormalised weights are drawn
    weight = D.main[4].parametrizations.weight.original
    assert abs(weight.std().item() - 0.02) < 1e-3 and abs(weight.mean().item()) < 1e-3
    assert all(m.bias.abs().max() == 0 for m in D.modules() if isinstance(m, nn.Conv2d))
    G = DCGANGenerator()
    bn = G.main[1]
    assert abs(bn.weight.mean().item() - 1) < 5e-3 and bn.bias.abs().max() == 0


def test_mlp_shapes() -> None:
    G = MLPGenerator(latent_dim=3, hidden=8, out_dim=5, num_layers=2)
    assert G(torch.randn(6, 3)).shape == (6, 5)
    assert sum(isinstance(m, nn.Linear) for m in G.net) == 3  # two hidden and the output
    D = MLPDiscriminator(in_dim=5, hidden=8, num_layers=1, activation="relu")
    assert D(torch.randn(6, 5)).shape == (6,)
    assert isinstance(D.net[1], nn.ReLU)
    assert isinstance(MLPDiscriminator().net[1], nn.LeakyReLU)


# ---------------------------------------------------------------------------------------
# PacGAN packing and spectral normalisation
# ---------------------------------------------------------------------------------------


def test_packing_is_an_unpacked_discriminator_on_reshaped_input() -> None:
    torch.manual_seed(0)
    packed = MLPDiscriminator(in_dim=2, hidden=16, num_layers=2, pack=2)
    plain = MLPDiscriminator(in_dim=4, hidden=16, num_layers=2, pack=1)
    plain.load_state_dict(packed.state_dict())
    x = torch.randn(6, 2)
    expected = plain(torch.cat([x[0::2], x[1::2]], dim=1))  # samples 2i and 2i+1 together
    torch.testing.assert_close(packed(x), expected, rtol=0, atol=0)
    assert packed(x).shape == (3,)


def _spectral_norms(module: nn.Module) -> list[float]:
    """The largest singular value of each normalised weight, as (out, in·k·k) matrices."""
    return [
        torch.linalg.matrix_norm(m.weight.flatten(1), ord=2).item()
        for m in module.modules()
        if parametrize.is_parametrized(m, "weight")
    ]


@pytest.mark.parametrize(
    "factory",
    [
        lambda: MLPDiscriminator(hidden=32, pack=2, spectral_norm=True),
        lambda: DCGANDiscriminator(
            image_size=16, channels=1, width=8, spectral_norm=True, self_attention=True
        ),
    ],
    ids=["MLPDiscriminator", "DCGANDiscriminator"],
)
def test_spectral_norm_makes_largest_singular_value_one(factory) -> None:
    torch.manual_seed(0)
    D = factory()
    x = torch.randn(4, 2) if isinstance(D, MLPDiscriminator) else torch.randn(4, 1, 16, 16)
    with torch.no_grad():
        for _ in range(100):  # one power iteration per forward in training mode
            D(x)
    D.eval()
    norms = _spectral_norms(D)
    assert len(norms) == (4 if isinstance(D, MLPDiscriminator) else 6)
    torch.testing.assert_close(torch.tensor(norms), torch.ones(len(norms)), rtol=0, atol=2e-3)


@pytest.mark.parametrize(
    "factory",
    [
        lambda: MLPDiscriminator(in_dim=2, hidden=3, num_layers=1, pack=2, spectral_norm=True),
        lambda: DCGANDiscriminator(
            image_size=8, channels=1, width=2, spectral_norm=True, self_attention=True
        ),
    ],
    ids=["MLPDiscriminator", "DCGANDiscriminator"],
)
def test_spectral_norm_state_dict_and_eval_gradcheck(factory) -> None:
    """What the generic checks cannot do for these configurations (see EXEMPT there):
    in training mode each call moves the power-iteration vectors, so gradcheck's repeated
    calls see different functions; in eval mode the vectors stay put."""
    torch.manual_seed(0)
    shape = (4, 2) if isinstance(factory(), MLPDiscriminator) else (2, 1, 8, 8)
    used = factory().double()
    for p in used.parameters():  # gamma = 0 would hide the attention's gradients
        nn.init.normal_(p.data, 0.0, 0.5)
    used(torch.randn(shape, dtype=torch.float64))
    fresh = factory().double()
    fresh.load_state_dict(used.state_dict())
    x = torch.randn(shape, dtype=torch.float64)
    for mode in (True, False):
        torch.testing.assert_close(
            fresh.train(mode)(x), used.train(mode)(x), rtol=0, atol=0, msg=str(mode)
        )
    used.eval()
    names = [n for n, _ in used.named_parameters()]
    params = tuple(p.detach().clone().requires_grad_() for p in used.parameters())

    def f(x: torch.Tensor, *ps: torch.Tensor) -> torch.Tensor:
        return torch.func.functional_call(used, dict(zip(names, ps, strict=True)), (x,))

    assert torch.autograd.gradcheck(f, (x.requires_grad_(), *params))


# ---------------------------------------------------------------------------------------
# SelfAttention2d and MinibatchStdDev against hand computations
# ---------------------------------------------------------------------------------------


def test_self_attention_starts_as_identity_and_rows_sum_to_one() -> None:
    torch.manual_seed(0)
    attn = SelfAttention2d(8, reduction=4)
    assert attn.gamma.item() == 0
    x = torch.randn(2, 8, 3, 5)
    assert torch.equal(attn(x), x)
    beta = attn.attention(x)
    assert beta.shape == (2, 15, 15) and (beta >= 0).all()
    torch.testing.assert_close(beta.sum(-1), torch.ones(2, 15))


def test_self_attention_matches_the_papers_sums() -> None:
    torch.manual_seed(0)
    attn = SelfAttention2d(4, reduction=2).double()
    with torch.no_grad():
        attn.gamma.fill_(0.7)
    x = torch.randn(2, 4, 2, 3, dtype=torch.float64)
    f, g, h = (conv(x).flatten(2) for conv in (attn.f, attn.g, attn.h))  # (N, C*, L)
    expected = x.clone().flatten(2)
    for n in range(2):
        for j in range(6):
            s = torch.stack([f[n, :, i] @ g[n, :, j] for i in range(6)])
            beta = s.exp() / s.exp().sum()
            o = sum(beta[i] * h[n, :, i] for i in range(6))
            expected[n, :, j] += 0.7 * o
    torch.testing.assert_close(attn(x), expected.view(2, 4, 2, 3))


def test_minibatch_std_matches_hand_computation() -> None:
    torch.manual_seed(0)
    x = torch.randn(6, 3, 2, 2, dtype=torch.float64)
    out = MinibatchStdDev(group_size=3)(x)
    assert out.shape == (6, 4, 2, 2)
    assert torch.equal(out[:, :3], x)
    M = 2  # groups of 3: samples {0, 2, 4} and {1, 3, 5}
    for n in range(6):
        group = x[n % M :: M]  # (3, C, H, W)
        var = ((group - group.mean(0)) ** 2).mean(0)
        value = (var + 1e-8).sqrt().mean()
        torch.testing.assert_close(out[n, 3], torch.full((2, 2), value.item(), dtype=x.dtype))


def test_minibatch_std_small_batch_is_one_group() -> None:
    x = torch.randn(3, 2, 1, 1, dtype=torch.float64)
    out = MinibatchStdDev(group_size=4)(x)  # group = min(4, 3) = 3: the whole batch
    expected = (x.var(0, unbiased=False) + 1e-8).sqrt().mean()
    torch.testing.assert_close(out[:, 2], expected.expand(3, 1, 1))


# ---------------------------------------------------------------------------------------
# EMA
# ---------------------------------------------------------------------------------------


def test_ema_update_is_exact() -> None:
    torch.manual_seed(0)
    model = DCGANGenerator(latent_dim=3, image_size=8, channels=1, width=2)
    ema = EMA(model, decay=0.9)
    assert not ema.module.training
    assert not any(p.requires_grad for p in ema.module.parameters())
    assert all(p.requires_grad for p in model.parameters())
    for _ in range(2):
        before = {k: v.clone() for k, v in ema.module.state_dict().items()}
        with torch.no_grad():
            for p in model.parameters():
                p.add_(torch.randn_like(p))
            model(torch.randn(4, 3))  # moves BatchNorm's running statistics
        ema.update(model)
        params = dict(model.named_parameters())
        for name, value in ema.module.state_dict().items():
            if name in params:
                expected = 0.9 * before[name] + (1 - 0.9) * params[name].detach()
            else:  # buffers are copied
                expected = model.state_dict()[name]
            assert torch.equal(value, expected), name


def test_ema_decay_bounds_and_state_dict() -> None:
    model = MLPGenerator(hidden=4)
    frozen, copying = EMA(model, decay=1.0), EMA(model, decay=0)
    with torch.no_grad():
        model.net[0].weight.add_(1.0)
    frozen.update(model)
    copying.update(model)
    assert not torch.equal(frozen.module.net[0].weight, model.net[0].weight)
    assert torch.equal(copying.module.net[0].weight, model.net[0].weight)
    other = EMA(MLPGenerator(hidden=4))
    other.load_state_dict(copying.state_dict())
    z = torch.randn(3, 2)
    assert torch.equal(other.module(z), model(z))
    assert repr(frozen) == "EMA(decay=1.0, module=MLPGenerator)"


# ---------------------------------------------------------------------------------------
# Errors name the argument, what was expected and what was given
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("build", "match"),
    [
        (
            lambda: DCGANGenerator(image_size=48),
            r"image_size: expected a power of two >= 8, got 48",
        ),
        (lambda: DCGANDiscriminator(image_size=4), r"image_size: .* got 4"),
        (lambda: DCGANDiscriminator(width=0), r"width: expected a positive int, got 0"),
        (lambda: MLPGenerator(num_layers=0), r"num_layers: expected a positive int, got 0"),
        (lambda: MLPDiscriminator(pack=0), r"pack: expected a positive int, got 0"),
        (lambda: MLPDiscriminator(activation="tanh"), r"activation: expected .* got 'tanh'"),
        (lambda: SelfAttention2d(4, reduction=8), r"reduction: expected at most channels=4"),
        (lambda: MinibatchStdDev(group_size=0), r"group_size: expected a positive int"),
        (lambda: EMA(MLPGenerator(), decay=1.5), r"decay: expected a float in \[0, 1\], got 1.5"),
        (lambda: EMA(torch.zeros(2)), r"model: expected an nn.Module, got Tensor"),
    ],
)
def test_constructor_errors(build, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        build()


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: MLPDiscriminator(pack=4)(torch.randn(6, 2)), r"x: .*divisible by pack=4, got N=6"),
        (
            lambda: MLPDiscriminator()(torch.randn(6, 3)),
            r"x: expected shape \(N, 2\), got \(6, 3\)",
        ),
        (lambda: MLPGenerator()(torch.randn(6, 3)), r"z: expected shape \(N, 2\), got \(6, 3\)"),
        (
            lambda: DCGANGenerator(latent_dim=4, image_size=8, width=2)(torch.randn(2, 5)),
            r"z: expected shape \(N, 4\) or \(N, 4, 1, 1\), got \(2, 5\)",
        ),
        (
            lambda: DCGANDiscriminator(image_size=8, width=2)(torch.randn(2, 3, 16, 16)),
            r"x: expected shape \(N, 3, 8, 8\), got \(2, 3, 16, 16\)",
        ),
        (
            lambda: MinibatchStdDev(group_size=4)(torch.randn(6, 2, 1, 1)),
            r"x: expected a batch size divisible by .* = 4, got N=6",
        ),
        (lambda: MinibatchStdDev()(torch.randn(6, 2)), r"x: expected shape \(N, C, H, W\)"),
        (
            lambda: SelfAttention2d(4, 2)(torch.randn(2, 3, 2, 2)),
            r"x: expected shape \(N, 4, H, W\)",
        ),
        (
            lambda: EMA(MLPGenerator(hidden=4)).update(MLPGenerator(num_layers=1)),
            r"model: expected the parameters of the averaged model",
        ),
    ],
)
def test_forward_errors(call, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        call()


def test_ema_warmup_starts_with_small_decays_and_reaches_the_set_one():
    model = MLPGenerator(hidden=4)
    ema = EMA(model, decay=0.9, warmup=True)
    start = ema.module.net[0].bias.clone()
    with torch.no_grad():
        model.net[0].bias.add_(1.0)
    ema.update(model)  # n = 1: d = 2/11
    expected = 2 / 11 * start + (1 - 2 / 11) * model.net[0].bias
    torch.testing.assert_close(ema.module.net[0].bias, expected)
    for _ in range(200):
        ema.update(model)
    assert ema.updates == 201 and min(0.9, 202 / 211) == 0.9
