r"""Discriminator rejection sampling: keep a generator's samples in proportion to how
real the discriminator finds them.

From Azadi et al., "Discriminator Rejection Sampling", ICLR 2019. A discriminator
trained with the standard (non-saturating or minimax) loss against a *fixed* generator
tends to :math:`D^*(x) = p_{data}(x) / (p_{data}(x) + p_g(x))`, so its logit estimates the
density ratio, :math:`\operatorname{logit} D^*(x) = \log p_{data}(x) / p_g(x)`. Accepting a
generated sample with probability :math:`\exp(\operatorname{logit}(x) - M)`, with
:math:`M` the largest logit, is rejection sampling from :math:`p_{data}` with :math:`p_g`
as the proposal: samples the generator puts where the data has no mass (between the
modes of a mixture) are dropped, and under-sampled modes are topped up. It is exact when
the logit is the true log-ratio and :math:`M` its maximum; :math:`M` is estimated as the
largest logit seen (a burn-in batch first, then every batch), as in the paper.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

from torchkata.gan.models import _check_positive

__all__ = ["RejectionSamples", "rejection_sample"]


@dataclass(frozen=True)
class RejectionSamples:
    """What :func:`rejection_sample` returns."""

    samples: Tensor
    """The accepted samples, :math:`(N, \\ldots)`."""
    acceptance_rate: float
    """Accepted / proposed over the batches drawn after the burn-in."""
    max_logit: float
    """The estimate of :math:`M` at the end."""


@torch.no_grad()
def rejection_sample(
    sample: Callable[[int], Tensor],
    log_ratio: Callable[[Tensor], Tensor],
    num_samples: int,
    *,
    batch_size: int = 10_000,
    burn_in: int = 10_000,
    max_proposals: int = 100_000_000,
    gamma_percentile: float | None = None,
    generator: torch.Generator | None = None,
) -> RejectionSamples:
    r"""Draw ``num_samples`` samples of ``sample`` accepted with probability
    :math:`\exp(\text{log\_ratio}(x) - M)`.

    Args:
        sample: draws n proposals, ``sample(n)`` :math:`\to (n, \ldots)` (for a GAN:
            ``lambda n: G(torch.randn(n, Z))``).
        log_ratio: the log density ratio target / proposal of each proposal,
            :math:`(n, \ldots) \to (n,)`; for a GAN, the logits of a discriminator trained
            against the fixed generator.
        num_samples: samples to return.
        batch_size: proposals per batch. Default: ``10_000``.
        burn_in: proposals drawn first only to estimate :math:`M`. Default: ``10_000``.
        max_proposals: stop with an error after this many proposals (a proposal that
            almost never lands where the target has mass). Default: ``100_000_000``.
        gamma_percentile: ``None`` for the exact rule above; a percentile p in (0, 100)
            for the paper's shifted rule, which trades diversity for quality: accept with
            probability :math:`\sigma(F(x) - \gamma)`, :math:`F(x) = \ell - M - \log(1 -
            e^{\ell - M - \epsilon})` (:math:`\ell` the log-ratio, :math:`\epsilon` =
            1e-6), :math:`\gamma` the p-th percentile of F over the burn-in, so that a
            proposal at that percentile is kept half the time. Default: ``None``.
        generator: the random generator of the acceptance draws (``sample`` uses its
            own). Default: ``None`` (the global one).

    Returns:
        A :class:`RejectionSamples`.

    Examples:
        >>> _ = torch.manual_seed(0)
        >>> proposal = torch.distributions.Normal(0.0, 1.0)
        >>> target = torch.distributions.Normal(0.0, 0.5)
        >>> out = rejection_sample(
        ...     lambda n: proposal.sample((n,)),
        ...     lambda x: target.log_prob(x) - proposal.log_prob(x),
        ...     20_000,
        ... )
        >>> round(out.samples.std().item(), 1), round(out.acceptance_rate, 1)  # 1 / M = 1 / 2
        (0.5, 0.5)
    """
    _check_positive(num_samples=num_samples, batch_size=batch_size, max_proposals=max_proposals)
    if isinstance(burn_in, bool) or not isinstance(burn_in, int) or burn_in < 0:
        raise ValueError(f"burn_in: expected an int >= 0, got {burn_in!r}")
    if gamma_percentile is not None:
        if not 0 < gamma_percentile < 100:
            raise ValueError(
                f"gamma_percentile: expected None or a value in (0, 100), got {gamma_percentile!r}"
            )
        if burn_in == 0:
            raise ValueError("burn_in: expected >= 1 with gamma_percentile (it sets gamma), got 0")

    def propose(n: int) -> tuple[Tensor, Tensor]:
        x = sample(n)
        logits = log_ratio(x)
        if logits.shape != (x.shape[0],):
            raise ValueError(
                f"log_ratio: expected one value per sample, shape ({x.shape[0]},), "
                f"got {tuple(logits.shape)}"
            )
        return x, logits.float()

    burn_in_logits = [
        propose(min(batch_size, burn_in - s))[1] for s in range(0, burn_in, batch_size)
    ]
    max_logit = max((b.max().item() for b in burn_in_logits), default=-math.inf)
    gamma = 0.0
    if gamma_percentile is not None:
        gamma = torch.quantile(_shifted(torch.cat(burn_in_logits), max_logit).double(),
                               gamma_percentile / 100).item()  # fmt: skip
    kept: list[Tensor] = []
    accepted = proposed = 0
    while accepted < num_samples:
        if proposed >= max_proposals:
            raise RuntimeError(
                f"max_proposals: {proposed} proposals gave {accepted} of the {num_samples} "
                f"samples asked for (acceptance rate {accepted / proposed:.2e})"
            )
        x, logits = propose(batch_size)
        max_logit = max(max_logit, logits.max().item())
        u = torch.rand(logits.shape, generator=generator, device=logits.device)
        if gamma_percentile is None:
            keep = u < torch.exp(logits - max_logit)
        else:
            keep = u < torch.sigmoid(_shifted(logits, max_logit) - gamma)
        kept.append(x[keep])
        accepted += int(keep.sum())
        proposed += batch_size
    return RejectionSamples(
        samples=torch.cat(kept)[:num_samples],
        acceptance_rate=accepted / proposed,
        max_logit=max_logit,
    )


def _shifted(logits: Tensor, max_logit: float, eps: float = 1e-6) -> Tensor:
    """F(x) of Azadi et al. (2019), eq. 8 without gamma: log(p / (1 - p)) of the exact
    acceptance probability p = exp(logit - M - eps)."""
    log_p = logits - max_logit - eps
    return log_p - torch.log1p(-torch.exp(log_p))
