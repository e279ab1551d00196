"""Tip 5: generative adversarial networks — losses, penalties and sample-based metrics.

Losses take the discriminator's outputs (:func:`discriminator_loss`,
:func:`generator_loss`, one of :data:`KINDS`); :func:`gradient_penalty` (WGAN-GP) and
:func:`r1_penalty` regularize the discriminator. Mode collapse is measured on the 2-D
mixtures of :mod:`torchkata.data.mixtures` with :func:`mode_coverage`, and on features
with :func:`frechet_distance` and :func:`precision_recall`. Models: MLPs for 2-D data
(with PacGAN packing), DCGAN at any power-of-two image size, spectral normalisation,
self-attention (SAGAN), minibatch standard deviation, and an EMA of the generator.
Sampling: :func:`rejection_sample`, discriminator rejection sampling (DRS).
"""

from torchkata.gan.losses import (
    KINDS,
    discriminator_loss,
    generator_loss,
    gradient_penalty,
    r1_penalty,
)
from torchkata.gan.metrics import ModeCoverage, frechet_distance, mode_coverage, precision_recall
from torchkata.gan.models import (
    EMA,
    DCGANDiscriminator,
    DCGANGenerator,
    MinibatchStdDev,
    MLPDiscriminator,
    MLPGenerator,
    SelfAttention2d,
)
from torchkata.gan.sampling import RejectionSamples, rejection_sample

__all__ = [
    "EMA",
    "KINDS",
    "DCGANDiscriminator",
    "DCGANGenerator",
    "MLPDiscriminator",
    "MLPGenerator",
    "MinibatchStdDev",
    "ModeCoverage",
    "RejectionSamples",
    "SelfAttention2d",
    "discriminator_loss",
    "frechet_distance",
    "generator_loss",
    "gradient_penalty",
    "mode_coverage",
    "precision_recall",
    "r1_penalty",
    "rejection_sample",
]
