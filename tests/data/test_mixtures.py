"""The 2-D ring and grid mixtures of VEEGAN/PacGAN: centers, sampling, validation."""

from __future__ import annotations

import math

import pytest
import torch

from torchkata.data import Mixture, grid25, grid_centers, ring8, ring_centers, sample_mixture


@pytest.mark.parametrize("n", [1, 2, 3, 7, 8, 12])
def test_ring_centers_are_n_distinct_points_on_the_circle(n):
    c = ring_centers(n, radius=2.5).double()
    assert c.shape == (n, 2)
    torch.testing.assert_close(c.norm(dim=1), torch.full((n,), 2.5, dtype=torch.float64))
    if n > 1:
        # distinct: neighbours are a chord 2 r sin(pi / n) apart, no point repeated
        d = torch.cdist(c, c) + torch.eye(n, dtype=torch.float64) * 1e9
        assert d.min().item() == pytest.approx(2 * 2.5 * math.sin(math.pi / n), rel=1e-6)


def test_ring_centers_angles_start_at_zero_and_go_counterclockwise():
    c = ring_centers(8).double()
    angles = torch.atan2(c[:, 1], c[:, 0]) % (2 * math.pi)
    expected = torch.arange(8, dtype=torch.float64) * 2 * math.pi / 8
    torch.testing.assert_close(angles, expected, atol=1e-6, rtol=0)


def test_linspace_centers_repeat_a_mode():
    # What ring_centers avoids: the common linspace(0, 2 pi, 8) closes the circle.
    angles = torch.linspace(0, 2 * math.pi, 8)
    c = torch.stack((angles.cos(), angles.sin()), dim=1)
    assert torch.allclose(c[0], c[-1], atol=1e-6)
    assert len({tuple(p) for p in ring_centers(8).round(decimals=4).tolist()}) == 8


def test_grid_centers_default_is_even_integers():
    c = grid_centers()
    assert c.shape == (25, 2)
    expected = {(float(x), float(y)) for x in (-4, -2, 0, 2, 4) for y in (-4, -2, 0, 2, 4)}
    assert {tuple(p) for p in c.tolist()} == expected


def test_grid_centers_other_sizes_are_centred():
    assert grid_centers(1).tolist() == [[0.0, 0.0]]
    c = grid_centers(4, spacing=1.0)
    assert sorted(set(c[:, 0].tolist())) == [-1.5, -0.5, 0.5, 1.5]
    torch.testing.assert_close(c.mean(dim=0), torch.zeros(2))


def test_presets_match_the_papers():
    centers, std = ring8()
    assert isinstance(ring8(), Mixture)
    torch.testing.assert_close(centers, ring_centers(8, 1.0))
    assert std == 0.01
    centers, std = grid25()
    torch.testing.assert_close(centers, grid_centers(5, 2.0))
    assert grid25().std == 0.05


def test_centers_use_the_default_dtype():
    assert ring_centers().dtype == torch.get_default_dtype()
    assert grid_centers().dtype == torch.get_default_dtype()


def test_sample_mixture_shape_dtype_and_seed():
    centers = grid_centers().double()
    x = sample_mixture(centers, 0.05, 100, generator=torch.Generator().manual_seed(1))
    assert x.shape == (100, 2) and x.dtype == torch.float64
    y = sample_mixture(centers, 0.05, 100, generator=torch.Generator().manual_seed(1))
    z = sample_mixture(centers, 0.05, 100, generator=torch.Generator().manual_seed(2))
    assert torch.equal(x, y) and not torch.equal(x, z)
    assert sample_mixture(centers, 0.05, 0).shape == (0, 2)


def test_sample_mixture_modes_uniform_and_noise_isotropic():
    centers, std = grid25()
    n = 50_000
    x = sample_mixture(centers, std, n, generator=torch.Generator().manual_seed(0))
    mode = torch.cdist(x, centers).argmin(dim=1)  # modes are 40 std apart: no confusion
    counts = torch.bincount(mode, minlength=25).double()
    # Pearson chi-square with 24 degrees of freedom: mean 24, sd 7; 70 is p < 1e-6.
    chi2 = ((counts - n / 25) ** 2 / (n / 25)).sum().item()
    assert chi2 < 70
    noise = (x - centers[mode]).double()
    torch.testing.assert_close(
        noise.mean(dim=0), torch.zeros(2, dtype=torch.float64), atol=2e-3, rtol=0
    )
    cov = torch.cov(noise.T)
    expected = torch.eye(2, dtype=torch.float64) * std**2
    torch.testing.assert_close(cov, expected, atol=std**2 * 0.03, rtol=0)


def test_sample_mixture_zero_std_gives_centers_in_higher_dims():
    centers = torch.randn(4, 5)
    x = sample_mixture(centers, 0.0, 30)
    assert x.shape == (30, 5)
    assert all(any(torch.equal(row, c) for c in centers) for row in x)


@pytest.mark.parametrize(
    ("call", "name"),
    [
        (lambda: ring_centers(0), "n_modes"),
        (lambda: ring_centers(True), "n_modes"),
        (lambda: ring_centers(8, radius=0.0), "radius"),
        (lambda: ring_centers(8, radius=math.inf), "radius"),
        (lambda: grid_centers(0), "side"),
        (lambda: grid_centers(5, spacing=-1), "spacing"),
        (lambda: sample_mixture(torch.zeros(2), 0.1, 5), "centers"),
        (lambda: sample_mixture(torch.zeros(0, 2), 0.1, 5), "centers"),
        (lambda: sample_mixture(torch.zeros(3, 2, dtype=torch.long), 0.1, 5), "centers"),
        (lambda: sample_mixture(torch.zeros(3, 2), -0.1, 5), "std"),
        (lambda: sample_mixture(torch.zeros(3, 2), 0.1, -1), "n"),
        (lambda: sample_mixture(torch.zeros(3, 2), 0.1, 2.5), "n"),
    ],
)
def test_errors_name_the_argument(call, name):
    with pytest.raises(ValueError, match=rf"^{name}: expected .*, got"):
        call()


def test_centers_must_be_a_tensor():
    with pytest.raises(TypeError, match=r"^centers: expected a torch\.Tensor, got list"):
        sample_mixture([[0.0, 0.0]], 0.1, 5)
