"""Unit tests of torchkata.ssl.autoencoders: architecture, shapes, corruption, scores, errors."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from torchkata.data import load_digits
from torchkata.ssl.autoencoders import (
    AutoEncoder,
    DenoisingAutoEncoder,
    anomaly_scores,
    to_tanh_range,
)


class DocumentAutoEncoder(nn.Module):
    """The document's autoencoder (tip 8), copied as written."""

    def __init__(self):
        super().__init__()
        self.encoder = nn.Sequential(
            nn.Linear(28 * 28, 128),
            nn.ReLU(),
            nn.Linear(128, 64),
            nn.ReLU(),
            nn.Linear(64, 12),
            nn.ReLU(),
            nn.Linear(12, 3),
        )
        self.decoder = nn.Sequential(
            nn.Linear(3, 12),
            nn.ReLU(),
            nn.Linear(12, 64),
            nn.ReLU(),
            nn.Linear(64, 128),
            nn.ReLU(),
            nn.Linear(128, 28 * 28),
            nn.Tanh(),
        )

    def forward(self, x):
        return self.decoder(self.encoder(x))


@pytest.fixture(scope="module")
def digits() -> torch.Tensor:
    """(200, 64) scikit-learn digits, flattened and scaled from [0, 1] to [-1, 1]."""
    return to_tanh_range(load_digits().x_train[:200].flatten(1))


def _layers(seq: nn.Sequential) -> list[tuple[str, ...]]:
    return [
        ("Linear", m.in_features, m.out_features)
        if isinstance(m, nn.Linear)
        else (type(m).__name__,)
        for m in seq
    ]


# --------------------------------------------------------------------------- architecture


def test_default_is_the_documents_architecture():
    model = AutoEncoder()
    assert _layers(model.encoder) == [
        ("Linear", 784, 128),
        ("ReLU",),
        ("Linear", 128, 64),
        ("ReLU",),
        ("Linear", 64, 12),
        ("ReLU",),
        ("Linear", 12, 3),
    ]
    assert _layers(model.decoder) == [
        ("Linear", 3, 12),
        ("ReLU",),
        ("Linear", 12, 64),
        ("ReLU",),
        ("Linear", 64, 128),
        ("ReLU",),
        ("Linear", 128, 784),
        ("Tanh",),
    ]
    assert isinstance(model.encoder, nn.Sequential) and isinstance(model.decoder, nn.Sequential)


def test_default_loads_the_documents_weights_and_computes_the_same_function():
    torch.manual_seed(0)
    document = DocumentAutoEncoder()
    model = AutoEncoder()
    model.load_state_dict(document.state_dict())  # strict: same keys, same shapes
    x = to_tanh_range(torch.rand(5, 784))
    torch.testing.assert_close(model(x), document(x), rtol=0, atol=0)
    torch.testing.assert_close(model.encode(x), document.encoder(x), rtol=0, atol=0)


def test_custom_widths_activation_and_linear_output():
    model = AutoEncoder(
        64, hidden=(32, 16), bottleneck=2, activation=nn.GELU, output_activation=None
    )
    assert _layers(model.encoder) == [
        ("Linear", 64, 32),
        ("GELU",),
        ("Linear", 32, 16),
        ("GELU",),
        ("Linear", 16, 2),
    ]
    assert _layers(model.decoder) == [
        ("Linear", 2, 16),
        ("GELU",),
        ("Linear", 16, 32),
        ("GELU",),
        ("Linear", 32, 64),
    ]
    assert _layers(AutoEncoder(10, hidden=(), bottleneck=2).decoder) == [
        ("Linear", 2, 10),
        ("Tanh",),
    ]


def test_extra_repr_and_factory_kwargs():
    text = DenoisingAutoEncoder(64, hidden=(32,), bottleneck=4, noise_std=0.2, mask_prob=0.1)
    assert "in_features=64, hidden=(32,), bottleneck=4" in repr(text)
    assert "noise_std=0.2, mask_prob=0.1, mask_value=-1.0" in repr(text)
    model = AutoEncoder(8, hidden=(4,), bottleneck=2, dtype=torch.float64)
    assert {p.dtype for p in model.parameters()} == {torch.float64}


# --------------------------------------------------------------------------- shapes


def test_shapes_on_digits(digits):
    model = AutoEncoder(in_features=64)
    assert model(digits).shape == (200, 64)
    assert model.encode(digits).shape == (200, 3)
    # Linear layers accept any leading dimensions: (*, H_in)
    assert model(digits.reshape(4, 50, 64)).shape == (4, 50, 64)
    assert model.encode(digits.reshape(4, 50, 64)).shape == (4, 50, 3)
    out = model(digits)
    assert out.abs().max() < 1  # Tanh output, the range the data was scaled to


def test_to_tanh_range_maps_digits_onto_minus_one_to_one():
    x = load_digits().x_train  # pixels in [0, 1]
    y = to_tanh_range(x)
    assert y.shape == x.shape
    assert y.min() == -1 and y.max() == 1
    torch.testing.assert_close(to_tanh_range(x * 16, high=16.0), y)
    torch.testing.assert_close(
        to_tanh_range(torch.tensor([2.0, 3.0, 4.0]), 2.0, 4.0), torch.tensor([-1.0, 0.0, 1.0])
    )
    with pytest.raises(ValueError, match=r"high: expected a number greater than low=1.0, got 1.0"):
        to_tanh_range(x, 1.0, 1.0)


def test_a_few_steps_without_labels_lower_the_reconstruction_error(digits):
    torch.manual_seed(0)
    model = AutoEncoder(64)
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    before = anomaly_scores(model, digits).mean()
    for _ in range(30):
        loss = F.mse_loss(model(digits), digits)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    after = anomaly_scores(model, digits).mean()
    assert after < 0.6 * before  # measured: 0.72 -> 0.30


# --------------------------------------------------------------------------- corruption


def test_gaussian_corruption_only_in_training_mode(digits):
    torch.manual_seed(0)
    model = DenoisingAutoEncoder(64, noise_std=0.5)
    clean = model.decoder(model.encoder(digits))
    # training mode: a fresh corruption on each call, the same one for the same seed
    torch.manual_seed(1)
    first = model(digits)
    torch.manual_seed(1)
    torch.testing.assert_close(model(digits), first, rtol=0, atol=0)
    torch.manual_seed(1)
    torch.testing.assert_close(model.decoder(model.encoder(model.corrupt(digits))), first)
    assert not torch.allclose(model(digits), first)
    assert not torch.allclose(first, clean)
    # eval mode: the plain reconstruction
    model.eval()
    torch.testing.assert_close(model(digits), clean, rtol=0, atol=0)
    torch.testing.assert_close(model(digits), model(digits), rtol=0, atol=0)


def test_corrupt_adds_noise_of_the_given_std_and_masks_with_the_given_rate(digits):
    torch.manual_seed(0)
    x = digits.clone()
    noise = DenoisingAutoEncoder(64, noise_std=0.3).corrupt(x) - x
    assert torch.equal(x, digits)  # the input is not modified
    assert abs(noise.std().item() - 0.3) < 0.01  # measured 0.299
    assert abs(noise.mean().item()) < 0.01

    masked = DenoisingAutoEncoder(64, noise_std=0.0, mask_prob=0.25, mask_value=-1.0).corrupt(x)
    changed = masked != x
    assert (masked[changed] == -1).all()
    # some masked elements already held -1 (background pixels): count the element-wise mask
    hit = (masked == -1) & (x != -1)
    rate = hit.sum() / (x != -1).sum()
    assert abs(rate.item() - 0.25) < 0.02  # measured 0.249
    assert torch.equal(masked[~changed], x[~changed])


def test_no_corruption_when_both_rates_are_zero(digits):
    model = DenoisingAutoEncoder(64, noise_std=0.0, mask_prob=0.0)
    assert model.training
    torch.testing.assert_close(model(digits), model.eval()(digits), rtol=0, atol=0)


def test_denoising_learns_to_reconstruct_the_clean_input(digits):
    torch.manual_seed(0)
    model = DenoisingAutoEncoder(64, hidden=(64,), bottleneck=16, noise_std=0.5)
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    noisy = digits + 0.5 * torch.randn(digits.shape, generator=torch.Generator().manual_seed(1))
    before = F.mse_loss(torch.zeros_like(digits), digits)
    for _ in range(100):
        loss = F.mse_loss(model(digits), digits)  # target: the clean input
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    with torch.no_grad():
        denoised = model.eval()(noisy)
    # measured: output 0.090 from the clean digits, noisy input 0.253, zeros 0.720
    assert F.mse_loss(denoised, digits) < 0.7 * F.mse_loss(noisy, digits)
    assert F.mse_loss(denoised, digits) < 0.3 * before


# --------------------------------------------------------------------------- anomaly_scores


def test_anomaly_scores_are_the_per_sample_mean_squared_error(digits):
    torch.manual_seed(0)
    model = AutoEncoder(64)
    scores = anomaly_scores(model, digits)
    assert scores.shape == (200,)
    expected = torch.stack([F.mse_loss(model(x), x) for x in digits]).detach()
    torch.testing.assert_close(scores, expected)
    # (N, *) input: the error is averaged over all of a sample's elements
    images = digits.reshape(200, 1, 8, 8)
    conv = nn.Sequential(nn.Flatten(), model, nn.Unflatten(1, (1, 8, 8)))
    torch.testing.assert_close(anomaly_scores(conv, images), scores)


def test_anomaly_scores_run_in_eval_mode_without_gradients_and_restore_modes(digits):
    torch.manual_seed(0)
    model = DenoisingAutoEncoder(64, noise_std=1.0, mask_prob=0.5)
    seen = []
    model.register_forward_hook(
        lambda module, args, out: seen.append((module.training, torch.is_grad_enabled()))
    )
    scores = anomaly_scores(model, digits)
    assert seen == [(False, False)]
    assert model.training  # restored
    assert not scores.requires_grad
    assert all(p.grad is None for p in model.parameters())
    # no corruption: equal to the plain reconstruction error, and deterministic
    with torch.no_grad():
        clean = (model.decoder(model.encoder(digits)) - digits).pow(2).mean(1)
    torch.testing.assert_close(scores, clean, rtol=0, atol=0)
    torch.testing.assert_close(anomaly_scores(model, digits), scores, rtol=0, atol=0)


def test_anomaly_scores_restore_mixed_modes_and_eval_mode(digits):
    model = AutoEncoder(64)
    model.eval()
    model.decoder.train()  # mixed: encoder in eval, decoder in training mode
    anomaly_scores(model, digits)
    assert not model.training and not model.encoder.training
    assert model.decoder.training and all(m.training for m in model.decoder.modules())

    model.eval()
    anomaly_scores(model, digits)
    assert not any(m.training for m in model.modules())


def test_anomaly_scores_restore_the_mode_when_the_forward_fails(digits):
    model = AutoEncoder(64).train()
    with pytest.raises(RuntimeError):
        anomaly_scores(model, digits[:, :10])  # wrong width for Linear(64, 128)
    assert all(m.training for m in model.modules())


def test_anomaly_scores_argument_errors(digits):
    model = AutoEncoder(64)
    with pytest.raises(
        ValueError, match=r"x: expected a non-empty batch \(N, \*\) tensor, got \(0, 64\)"
    ):
        anomaly_scores(model, digits[:0])
    with pytest.raises(ValueError, match=r"x: expected .* got list"):
        anomaly_scores(model, [[0.0] * 64])
    with pytest.raises(
        ValueError,
        match=r"autoencoder: expected an output of the input's shape \(200, 64\), got \(200, 3\)",
    ):
        anomaly_scores(model.encoder, digits)


# --------------------------------------------------------------------------- argument errors


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"in_features": 0}, r"in_features: expected a positive int, got 0"),
        ({"in_features": 784.0}, r"in_features: expected a positive int, got 784.0"),
        ({"in_features": True}, r"in_features: expected a positive int, got True"),
        ({"bottleneck": -3}, r"bottleneck: expected a positive int, got -3"),
        ({"hidden": (128, 0)}, r"hidden: expected a sequence of positive ints, got \(128, 0\)"),
        ({"hidden": 128}, r"hidden: expected a sequence of positive ints, got 128"),
        ({"hidden": "128"}, r"hidden: expected a sequence of positive ints, got '128'"),
        ({"activation": "relu"}, r"activation: expected a callable returning a module, got 'relu'"),
        (
            {"output_activation": "tanh"},
            r"output_activation: expected None or a callable returning a module, got 'tanh'",
        ),
    ],
)
@pytest.mark.parametrize("cls", [AutoEncoder, DenoisingAutoEncoder])
def test_constructor_argument_errors(cls, kwargs, message):
    with pytest.raises(ValueError, match=message):
        cls(**kwargs)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"noise_std": -0.1}, r"noise_std: expected a finite number >= 0, got -0.1"),
        ({"noise_std": float("nan")}, r"noise_std: expected a finite number >= 0, got nan"),
        ({"noise_std": float("inf")}, r"noise_std: expected a finite number >= 0, got inf"),
        ({"noise_std": "0.3"}, r"noise_std: expected a finite number >= 0, got '0.3'"),
        ({"mask_prob": 1.0}, r"mask_prob: expected a number in \[0, 1\), got 1.0"),
        ({"mask_prob": -0.5}, r"mask_prob: expected a number in \[0, 1\), got -0.5"),
    ],
)
def test_denoising_argument_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        DenoisingAutoEncoder(64, **kwargs)
