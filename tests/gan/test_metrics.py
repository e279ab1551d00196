"""Mode coverage, Fréchet distance and precision/recall against references and closed forms.

References: ``scipy.linalg.sqrtm`` for the Fréchet distance (the pytorch-fid recipe),
``scipy.stats.entropy`` for the KL divergence, and a brute-force NumPy double loop for
precision and recall.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import scipy.linalg
import scipy.stats
import torch

from torchkata.data import grid25, ring8, sample_mixture
from torchkata.gan import ModeCoverage, frechet_distance, mode_coverage, precision_recall
from torchkata.gan import metrics as metrics_module

f64 = torch.float64
HQ_IDEAL = 1 - math.exp(-4.5)  # P(chi2_2 <= 9): a 2-D Gaussian within 3 standard deviations


def randn(*shape, seed=0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=f64)


# ---------------------------------------------------------------------------------------
# Mode coverage
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("mixture", [ring8, grid25], ids=["ring", "grid"])
def test_true_mixture_scores_98_89_percent_high_quality(mixture):
    centers, std = mixture()
    gen = torch.Generator().manual_seed(0)
    r = mode_coverage(sample_mixture(centers, std, 200_000, generator=gen), centers, std)
    assert pytest.approx(0.98889, abs=1e-5) == HQ_IDEAL
    assert r.high_quality == pytest.approx(HQ_IDEAL, abs=0.002)  # binomial sd 0.00023
    assert r.modes_covered == len(centers)
    assert r.kl < 1e-3


@pytest.mark.parametrize("mixture", [ring8, grid25], ids=["ring", "grid"])
def test_true_mixture_at_the_papers_2500_samples(mixture):
    centers, std = mixture()
    gen = torch.Generator().manual_seed(1)
    r = mode_coverage(sample_mixture(centers, std, 2500, generator=gen), centers, std)
    K = len(centers)
    assert r.modes_covered == K
    assert sum(r.counts) == round(r.high_quality * 2500)
    # KL of a multinomial histogram to its truth is about chi2_{K-1} / (2 n): mean
    # 0.0014 (ring) / 0.005 (grid), sd 0.0005 / 0.0014.
    assert r.kl < (K - 1) / 2500 + 0.01


def test_collapsed_generator():
    centers, std = ring8()
    # 30 samples exactly on modes 0, 1, 2 (10 each): KL = log(8 / 3), 3 modes covered
    samples = centers[[0, 1, 2]].repeat(10, 1)
    r = mode_coverage(samples, centers, std)
    assert isinstance(r, ModeCoverage)
    assert (r.modes_covered, r.high_quality) == (3, 1.0)
    assert r.counts == (10, 10, 10, 0, 0, 0, 0, 0)
    assert r.kl == pytest.approx(math.log(8 / 3), rel=1e-12)


def test_kl_matches_scipy_entropy_on_uneven_counts():
    centers, std = grid25()
    counts = [0, 5, 1, 30, 2] + [3] * 20
    samples = torch.cat([centers[i].repeat(n, 1) for i, n in enumerate(counts)])
    r = mode_coverage(samples, centers, std)
    assert r.counts == tuple(counts)
    assert r.modes_covered == 24
    assert r.kl == pytest.approx(scipy.stats.entropy(counts, np.ones(25)), rel=1e-12)


def test_high_quality_threshold_and_nearest_mode():
    centers, std = grid25()  # mode 12 is the origin, mode 13 is (0, 2)
    offsets = torch.tensor([[2.9, 0.0], [0.0, 3.1], [-2.0, -2.0], [0.0, 20.0]]) * std
    r = mode_coverage(offsets, centers, std)
    # 2.9 sd and |(-2, -2)| = 2.83 sd are in, 3.1 sd is out, 20 sd lies halfway to mode 13
    assert r.high_quality == 0.5
    assert r.counts[12] == 2 and sum(r.counts) == 2
    assert mode_coverage(offsets, centers, std, threshold=3.2).high_quality == 0.75
    moved = offsets + torch.tensor([0.0, 2.0])  # the same pattern around mode 13
    assert mode_coverage(moved, centers, std).counts[13] == 2


def test_no_high_quality_samples():
    centers, std = ring8()
    r = mode_coverage(torch.full((10, 2), 5.0), centers, std)
    assert r.modes_covered == 0 and r.high_quality == 0.0
    assert r.kl == math.inf
    assert r.counts == (0,) * 8


def test_mode_coverage_blocks_agree(monkeypatch):
    centers, std = grid25()
    x = sample_mixture(centers, 3 * std, 1000, generator=torch.Generator().manual_seed(2))
    whole = mode_coverage(x, centers, std)
    monkeypatch.setattr(metrics_module, "_BLOCK", 100)  # blocks of 4 rows
    assert mode_coverage(x, centers, std) == whole


def test_mode_coverage_is_frozen():
    centers, std = ring8()
    r = mode_coverage(centers, centers, std)
    assert r.modes_covered == 8 and r.kl == 0.0
    with pytest.raises(dataclasses.FrozenInstanceError):
        r.kl = 1.0  # type: ignore[misc]


@pytest.mark.parametrize(
    ("args", "kwargs", "name"),
    [
        ((torch.zeros(5, 3), torch.zeros(8, 2), 0.1), {}, "samples"),
        ((torch.zeros(0, 2), torch.zeros(8, 2), 0.1), {}, "samples"),
        ((torch.zeros(5, 2), torch.zeros(2), 0.1), {}, "centers"),
        ((torch.zeros(5, 2), torch.zeros(8, 2), 0.0), {}, "std"),
        ((torch.zeros(5, 2), torch.zeros(8, 2), 0.1), {"threshold": -3}, "threshold"),
    ],
)
def test_mode_coverage_errors_name_the_argument(args, kwargs, name):
    with pytest.raises(ValueError, match=rf"^{name}: expected"):
        mode_coverage(*args, **kwargs)


# ---------------------------------------------------------------------------------------
# Fréchet distance
# ---------------------------------------------------------------------------------------


def scipy_frechet(a: np.ndarray, b: np.ndarray) -> float:
    """pytorch-fid's calculate_frechet_distance, minus its epsilon retry."""
    mu1, mu2 = a.mean(axis=0), b.mean(axis=0)
    s1, s2 = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    covmean = scipy.linalg.sqrtm(s1 @ s2)
    covmean = covmean.real
    diff = mu1 - mu2
    return float(diff @ diff + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean))


def random_set(n, d, seed):
    gen = torch.Generator().manual_seed(seed)
    mix = torch.randn(d, d, generator=gen, dtype=f64) / math.sqrt(d)
    shift = torch.randn(d, generator=gen, dtype=f64)
    return torch.randn(n, d, generator=gen, dtype=f64) @ mix + shift


@pytest.mark.parametrize("d", [5, 12, 20])
def test_frechet_matches_scipy_sqrtm(d):
    a, b = random_set(300, d, seed=d), random_set(200, d, seed=d + 100)
    ours = frechet_distance(a, b)
    assert ours == pytest.approx(scipy_frechet(a.numpy(), b.numpy()), rel=1e-8, abs=1e-10)
    assert ours > 0.1


def exact_moments(n, mean, cov, seed):
    """n samples whose sample mean and unbiased covariance are exactly mean and cov."""
    d = len(mean)
    x = randn(n, d, seed=seed)
    x = x - x.mean(dim=0)
    x = (
        x @ torch.linalg.inv(torch.linalg.cholesky(torch.cov(x.T).reshape(d, d))).T
    )  # sample cov = I
    return x @ torch.linalg.cholesky(cov).T + mean


def test_frechet_closed_form_for_commuting_covariances():
    # Sigma_a = Q diag(a) Q^T, Sigma_b = Q diag(b) Q^T: the distance is
    # |mu_a - mu_b|^2 + sum_i (sqrt(a_i) - sqrt(b_i))^2.
    d = 6
    q, _ = torch.linalg.qr(randn(d, d, seed=3))
    va = torch.tensor([0.5, 1.0, 2.0, 3.0, 0.1, 4.0], dtype=f64)
    vb = torch.tensor([1.5, 1.0, 0.2, 5.0, 0.3, 4.0], dtype=f64)
    mu_a, mu_b = randn(d, seed=4), randn(d, seed=5)
    a = exact_moments(500, mu_a, q @ torch.diag(va) @ q.T, seed=6)
    b = exact_moments(400, mu_b, q @ torch.diag(vb) @ q.T, seed=7)
    expected = (mu_a - mu_b).pow(2).sum() + (va.sqrt() - vb.sqrt()).pow(2).sum()
    assert frechet_distance(a, b) == pytest.approx(expected.item(), rel=1e-9)


def test_frechet_one_feature():
    a = exact_moments(50, torch.tensor([1.0], dtype=f64), torch.tensor([[4.0]], dtype=f64), 8)
    b = exact_moments(60, torch.tensor([-2.0], dtype=f64), torch.tensor([[9.0]], dtype=f64), 9)
    assert frechet_distance(a, b) == pytest.approx(3.0**2 + (2.0 - 3.0) ** 2, rel=1e-10)


def test_frechet_properties():
    a, b = random_set(300, 8, seed=10), random_set(250, 8, seed=11)
    assert frechet_distance(a, a) == pytest.approx(0.0, abs=1e-10)
    assert frechet_distance(a, b) == pytest.approx(frechet_distance(b, a), rel=1e-10)
    # invariant to a rotation and translation applied to both sets
    q, _ = torch.linalg.qr(randn(8, 8, seed=12))
    shift = randn(8, seed=13)
    moved = frechet_distance(a @ q + shift, b @ q + shift)
    assert moved == pytest.approx(frechet_distance(a, b), rel=1e-9)
    # float32 input is promoted to float64 before any arithmetic
    assert frechet_distance(a.float(), b.float()) == frechet_distance(
        a.float().double(), b.float().double()
    )


def test_frechet_singular_covariances():
    # Fewer samples than features: both covariances are singular (rank 9 in 30 dims),
    # where sqrtm is fragile. The eigenvalue route stays real, finite and symmetric.
    a, b = random_set(10, 30, seed=14), random_set(10, 30, seed=15)
    d_ab, d_ba = frechet_distance(a, b), frechet_distance(b, a)
    assert math.isfinite(d_ab) and d_ab > 0
    assert d_ab == pytest.approx(d_ba, rel=1e-8)
    assert frechet_distance(a, a) == pytest.approx(0.0, abs=1e-9)


def test_frechet_errors_name_the_argument():
    with pytest.raises(ValueError, match=r"^feats_a: expected shape \(N, D\) with N >= 2"):
        frechet_distance(torch.zeros(1, 3), torch.zeros(5, 3))
    with pytest.raises(ValueError, match=r"^feats_b: expected 3 features per row"):
        frechet_distance(torch.zeros(4, 3), torch.zeros(5, 4))
    with pytest.raises(TypeError, match=r"^feats_b: expected a floating-point tensor"):
        frechet_distance(torch.zeros(4, 3), torch.zeros(5, 3, dtype=torch.long))


# ---------------------------------------------------------------------------------------
# Precision and recall
# ---------------------------------------------------------------------------------------


def brute_precision_recall(real: np.ndarray, fake: np.ndarray, k: int) -> tuple[float, float]:
    def radii(x):
        out = []
        for i in range(len(x)):
            others = sorted(np.linalg.norm(x[i] - x[j]) for j in range(len(x)) if j != i)
            out.append(others[k - 1])
        return out

    def inside(queries, points, r):
        return [
            any(np.linalg.norm(q - p) <= rad for p, rad in zip(points, r, strict=True))
            for q in queries
        ]

    precision = float(np.mean(inside(fake, real, radii(real))))
    recall = float(np.mean(inside(real, fake, radii(fake))))
    return precision, recall


@pytest.mark.parametrize("k", [1, 3, 5])
def test_precision_recall_matches_brute_force(k):
    real = randn(40, 3, seed=20)
    fake = 0.8 * randn(35, 3, seed=21) + 0.5  # narrower and shifted: both below 1
    ours = precision_recall(real, fake, k=k)
    assert ours == brute_precision_recall(real.numpy(), fake.numpy(), k)
    assert 0 < ours[0] < 1 and 0 < ours[1] < 1


def test_precision_recall_identical_sets():
    x = randn(500, 4, seed=22).float()
    assert precision_recall(x, x) == (1.0, 1.0)


def clusters(ids, per_cluster, seed):
    centers = torch.stack([torch.tensor([100.0 * i, 0.0], dtype=f64) for i in ids])
    return (centers[:, None, :] + randn(len(ids), per_cluster, 2, seed=seed)).reshape(-1, 2)


def test_precision_recall_half_the_clusters():
    real = clusters(range(10), 200, seed=23)
    fake = clusters(range(5), 300, seed=24)  # a generator that dropped 5 of 10 modes
    precision, recall = precision_recall(real, fake)
    assert precision > 0.95
    assert recall == pytest.approx(0.5, abs=0.03)


def test_precision_recall_far_away():
    real = randn(300, 5, seed=25)
    assert precision_recall(real, randn(300, 5, seed=26) + 100.0) == (0.0, 0.0)


def test_precision_recall_blocks_agree(monkeypatch):
    real, fake = randn(300, 3, seed=27), 1.2 * randn(250, 3, seed=28)
    whole = precision_recall(real, fake)
    monkeypatch.setattr(metrics_module, "_BLOCK", 1000)  # blocks of 3 or 4 rows
    assert precision_recall(real, fake) == whole


def test_precision_recall_errors_name_the_argument():
    x = randn(10, 3)
    with pytest.raises(ValueError, match=r"^k: expected an int >= 1, got True"):
        precision_recall(x, x, k=True)
    with pytest.raises(ValueError, match=r"^k: expected an int >= 1, got 0"):
        precision_recall(x, x, k=0)
    with pytest.raises(ValueError, match=r"^real_feats: expected shape \(N, D\) with N >= 4"):
        precision_recall(x[:3], x)
    with pytest.raises(ValueError, match=r"^fake_feats: expected 3 features per row"):
        precision_recall(x, randn(10, 2))
