"""The plain list of the ten tips and the recipes that make them real.

``torchkata ls`` prints it and ``torchkata tour`` walks it. A recipe module is imported
only when it runs, so listing stays fast. A recipe module provides:

- ``Config``: a dataclass, every field defaulted and commented;
- ``PRESETS``: ``{"quick": {...}, "full": {...}}``, named overrides of ``Config``;
- ``run(config, run) -> None``: the recipe, its training loop written out.
"""

from __future__ import annotations

import dataclasses
import importlib
from types import ModuleType


@dataclasses.dataclass(frozen=True)
class Tip:
    """One tip of the source document and its recipe."""

    number: int
    name: str  # the recipe's name on the command line
    title: str
    summary: str  # one line for `torchkata ls`
    module: str  # the recipe module, imported by load()
    guide: str  # path of the English guide, relative to the repository

    def load(self) -> ModuleType:
        """Import the recipe module."""
        return importlib.import_module(self.module)


TIPS: list[Tip] = [
    Tip(
        1,
        "losses",
        "Custom losses",
        "CE, weighted CE, focal and composite losses on imbalanced digits; check_loss",
        module="torchkata.losses.recipe",
        guide="docs/tip01-custom-losses.md",
    ),
    Tip(
        2,
        "online",
        "Online learning",
        "one sample at a time on drifting streams: online SGD/Adam, ADWIN, vs a batch model",
        module="torchkata.online.recipe",
        guide="docs/tip02-online-learning.md",
    ),
    Tip(
        3,
        "distributed",
        "Multi-GPU training",
        "1 process vs 2-process DDP and FSDP2 vs activation checkpointing, via torchrun",
        module="torchkata.distributed.recipe",
        guide="docs/tip03-multi-device.md",
    ),
    Tip(
        4,
        "relational",
        "Relational Networks",
        "Relation Network vs MLPs on Sort-of-CLEVR (state descriptions, pixels); sum/mean/max",
        module="torchkata.relational.recipe",
        guide="docs/tip04-relational.md",
    ),
    Tip(
        5,
        "gan",
        "GANs",
        "2-D mixtures (grid 25, ring 8): NS-GAN, WGAN-GP, hinge+SN, PacGAN, R1; DCGAN on digits",
        module="torchkata.gan.recipe",
        guide="docs/tip05-gans.md",
    ),
    Tip(
        6,
        "transfer",
        "Transfer learning",
        "digits 0-4 -> 5-9 with k labels: scratch vs frozen vs fine-tuned vs gradual",
        module="torchkata.transfer.recipe",
        guide="docs/tip06-transfer-learning.md",
    ),
    Tip(
        7,
        "norm",
        "Normalisation",
        "BatchNorm/GroupNorm/LayerNorm from scratch vs batch size on digits",
        module="torchkata.norm.recipe",
        guide="docs/tip07-normalisation.md",
    ),
    Tip(
        8,
        "ssl",
        "Self-supervised learning",
        "SimCLR on MNIST-1D vs raw and supervised with few labels; autoencoders",
        module="torchkata.ssl.recipe",
        guide="docs/tip08-self-supervised.md",
    ),
    Tip(
        9,
        "transformer",
        "Transformers",
        "seq2seq reverse/sort/add with padding masks, ours vs nn.Transformer; a char GPT",
        module="torchkata.transformer.recipe",
        guide="docs/tip09-transformers.md",
    ),
    Tip(
        10,
        "doctor",
        "Debugging",
        "automated sanity checks on a gallery of models with planted bugs",
        module="torchkata.doctor.recipe",
        guide="docs/tip10-debugging.md",
    ),
]


def get(name: str) -> Tip:
    """The tip whose recipe is called ``name``; ``KeyError`` lists the known names."""
    for tip in TIPS:
        if tip.name == name:
            return tip
    raise KeyError(name)
