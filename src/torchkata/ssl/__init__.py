"""Tip 8: self-supervised learning — autoencoders, SimCLR and VICReg, and how to evaluate them.

Learn a representation from inputs alone (reconstruction, or agreement between two
augmented views), then measure it with few labels: :func:`linear_probe` and
:func:`knn_accuracy` on the frozen encoder's features.
"""

from torchkata.ssl.autoencoders import AutoEncoder, DenoisingAutoEncoder, anomaly_scores
from torchkata.ssl.contrastive import SimCLR, VICReg, augment_image, augment_signal, vicreg_loss
from torchkata.ssl.evaluation import embed, knn_accuracy, linear_probe
from torchkata.ssl.models import MLP, Classifier, Conv1dEncoder, GRUClassifier

__all__ = [
    "MLP",
    "AutoEncoder",
    "Classifier",
    "Conv1dEncoder",
    "DenoisingAutoEncoder",
    "GRUClassifier",
    "SimCLR",
    "VICReg",
    "anomaly_scores",
    "augment_image",
    "augment_signal",
    "embed",
    "knn_accuracy",
    "linear_probe",
    "vicreg_loss",
]
