"""Tip 6: transfer learning — backbones, freezing, new heads, discriminative learning rates.

backbone = load_backbone("runs/.../source.safetensors")     # safetensors + JSON
freeze(backbone)                                           # feature extraction
head = replace_head(backbone, num_classes=5)               # new, trainable
optimizer = torch.optim.Adam(param_groups(backbone, lr=1e-3, decay=2.6))
"""

from torchkata.transfer.backbones import BACKBONES, DigitsCNN, load_backbone, save_backbone
from torchkata.transfer.core import (
    BlockSummary,
    GradualUnfreezing,
    blocks,
    freeze,
    param_groups,
    replace_head,
    trainable_summary,
    unfreeze,
)
from torchkata.transfer.text import SentenceEncoder, load_minilm

__all__ = [
    "BACKBONES",
    "BlockSummary",
    "DigitsCNN",
    "GradualUnfreezing",
    "SentenceEncoder",
    "blocks",
    "freeze",
    "load_backbone",
    "load_minilm",
    "param_groups",
    "replace_head",
    "save_backbone",
    "trainable_summary",
    "unfreeze",
]
