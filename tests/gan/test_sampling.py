import math

import pytest
import torch

from torchkata.gan.sampling import rejection_sample


def _normal_sampler(std: float, seed: int):
    gen = torch.Generator().manual_seed(seed)
    return lambda n: std * torch.randn(n, generator=gen, dtype=torch.float64)


@pytest.mark.parametrize(("mean", "std"), [(0.0, 0.5), (0.7, 0.3)])
def test_accepted_samples_follow_the_target(mean: float, std: float) -> None:
    proposal = torch.distributions.Normal(0.0, 1.0)
    target = torch.distributions.Normal(mean, std)
    out = rejection_sample(
        _normal_sampler(1.0, 0),
        lambda x: target.log_prob(x) - proposal.log_prob(x),
        20_000,
        generator=torch.Generator().manual_seed(1),
    )
    assert out.samples.shape == (20_000,)
    assert abs(out.samples.mean().item() - mean) < 0.02  # standard error ~0.004
    assert abs(out.samples.std().item() - std) < 0.02
    # exact rejection sampling accepts 1 / M of the proposals, M = max of the ratio
    x = torch.linspace(-5, 5, 100_001, dtype=torch.float64)
    M = (target.log_prob(x) - proposal.log_prob(x)).max().exp().item()
    assert out.acceptance_rate == pytest.approx(1 / M, rel=0.05)
    assert out.max_logit == pytest.approx(math.log(M), abs=0.05)


def test_a_constant_ratio_accepts_everything_in_order() -> None:
    out = rejection_sample(_normal_sampler(1.0, 3), lambda x: torch.zeros_like(x), 5, burn_in=0,
                           batch_size=8)  # fmt: skip
    torch.testing.assert_close(out.samples, _normal_sampler(1.0, 3)(8)[:5])
    assert out.acceptance_rate == 1.0


def test_the_same_generators_give_the_same_samples() -> None:
    def draw() -> torch.Tensor:
        return rejection_sample(_normal_sampler(1.0, 4), lambda x: -(x**2), 100,
                                generator=torch.Generator().manual_seed(5)).samples  # fmt: skip

    torch.testing.assert_close(draw(), draw())


def test_gamma_percentile_trades_diversity_for_quality() -> None:
    proposal = torch.distributions.Normal(0.0, 1.0)
    target = torch.distributions.Normal(0.0, 0.5)

    def draw(percentile: float | None):
        return rejection_sample(
            _normal_sampler(1.0, 6), lambda x: target.log_prob(x) - proposal.log_prob(x),
            20_000, gamma_percentile=percentile, generator=torch.Generator().manual_seed(7),
        )  # fmt: skip

    stds = {p: draw(p).samples.std().item() for p in (None, 50, 80, 95)}
    assert abs(stds[None] - 0.5) < 0.02  # the exact rule: the target itself
    # a higher percentile keeps only the proposals the ratio likes most: narrower
    assert 0.5 > stds[50] > stds[80] > stds[95]
    # a proposal at the percentile is kept half the time; above it, more often
    assert 0.15 < draw(80).acceptance_rate < 0.45


def test_bad_arguments_are_named() -> None:
    sample = _normal_sampler(1.0, 0)
    with pytest.raises(ValueError, match="num_samples: expected a positive int, got 0"):
        rejection_sample(sample, lambda x: x, 0)
    with pytest.raises(
        ValueError, match=r"gamma_percentile: expected None or a value in \(0, 100\)"
    ):
        rejection_sample(sample, lambda x: x, 1, gamma_percentile=100)
    with pytest.raises(ValueError, match="burn_in: expected >= 1 with gamma_percentile"):
        rejection_sample(sample, lambda x: x, 1, gamma_percentile=50, burn_in=0)
    with pytest.raises(ValueError, match="burn_in: expected an int >= 0, got -1"):
        rejection_sample(sample, lambda x: x, 1, burn_in=-1)
    with pytest.raises(ValueError, match=r"log_ratio: expected one value per sample, shape \(10"):
        rejection_sample(sample, lambda x: x[:, None], 1, batch_size=10, burn_in=0)
    # the burn-in finds a ratio e^50 times larger than every later proposal's: nearly
    # nothing is accepted, and the draw stops at max_proposals instead of looping on
    calls = iter(range(100))

    def batches(n: int) -> torch.Tensor:  # the burn-in batch is zeros, then 1s, 2s, ...
        return torch.full((n,), float(next(calls)))

    with pytest.raises(RuntimeError, match="max_proposals: 2000 proposals gave 0 of the 10"):
        rejection_sample(
            batches, lambda x: torch.where(x == 0, 0.0, -50.0), 10, batch_size=1000,
            burn_in=1000, max_proposals=2000,
        )  # fmt: skip
