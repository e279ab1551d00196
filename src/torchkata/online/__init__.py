"""Tip 2: online learning, one sample at a time, with drift detection.

``OnlineClassifier`` / ``OnlineRegressor`` wrap any ``nn.Module`` in River's API
(``predict_one``, ``predict_proba_one``, ``learn_one``, ``learn_many``): test-then-train at
the cost of one forward per sample, running input standardisation, stable label and
feature maps, malformed samples rejected and counted, ``ADWIN`` / ``PageHinkley`` drift
detection with an optional reaction, and a ``state_dict`` that restores everything.
"""

from torchkata.online.drift import ADWIN, PageHinkley
from torchkata.online.learners import OnlineClassifier, OnlineRegressor
from torchkata.online.scaling import RunningStandardizer

__all__ = ["ADWIN", "OnlineClassifier", "OnlineRegressor", "PageHinkley", "RunningStandardizer"]
