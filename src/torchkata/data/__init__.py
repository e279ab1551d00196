"""Data sets that need no network: generated here, or bundled with a dependency."""

from torchkata.data.digits import Split, k_per_class, load_digits, subsample_classes
from torchkata.data.mixtures import (
    Mixture,
    grid25,
    grid_centers,
    ring8,
    ring_centers,
    sample_mixture,
)
from torchkata.data.mnist1d import load_mnist1d
from torchkata.data.sequences import (
    BOS,
    EOS,
    PAD,
    TASKS,
    VOCAB,
    Seq2SeqData,
    answer,
    decode,
    encode,
    make_task,
)
from torchkata.data.sort_of_clevr import SortOfClevr, load_sort_of_clevr
from torchkata.data.streams import FEATURES, agrawal, agrawal_label, drift_points, drift_stream

__all__ = [
    "BOS",
    "EOS",
    "FEATURES",
    "PAD",
    "TASKS",
    "VOCAB",
    "Mixture",
    "Seq2SeqData",
    "SortOfClevr",
    "Split",
    "agrawal",
    "agrawal_label",
    "answer",
    "decode",
    "drift_points",
    "drift_stream",
    "encode",
    "grid25",
    "grid_centers",
    "k_per_class",
    "load_digits",
    "load_mnist1d",
    "load_sort_of_clevr",
    "make_task",
    "ring8",
    "ring_centers",
    "sample_mixture",
    "subsample_classes",
]
