"""Tip 4: Relation Networks, the CNN+MLP baseline, and their state-description twins."""

from torchkata.relational.models import (
    CNNMLP,
    ConvObjects,
    RelationModule,
    RelationNetwork,
    StateMLP,
    StateRelationNetwork,
)

__all__ = [
    "CNNMLP",
    "ConvObjects",
    "RelationModule",
    "RelationNetwork",
    "StateMLP",
    "StateRelationNetwork",
]
