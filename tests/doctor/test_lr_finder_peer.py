"""The LR range test against its peer, torch-lr-finder (installed with the dev extra)."""

from __future__ import annotations

import copy

import matplotlib

matplotlib.use("Agg")

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset
from torch_lr_finder import LRFinder

from torchkata.data import load_digits
from torchkata.doctor import lr_range_test


def test_suggested_rate_agrees_with_torch_lr_finder_within_a_factor_of_3():
    digits = load_digits()
    data = TensorDataset(digits.x_train.flatten(1), digits.y_train)
    loader = DataLoader(data, batch_size=64, shuffle=False)  # the same batches for both
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 10))
    loss_fn = nn.CrossEntropyLoss()

    ours = lr_range_test(
        copy.deepcopy(model), loader, loss_fn, start_lr=1e-7, end_lr=10, num_iter=100
    )

    peer_model = copy.deepcopy(model)
    optimizer = torch.optim.Adam(peer_model.parameters(), lr=1e-7)
    finder = LRFinder(peer_model, optimizer, loss_fn, device="cpu")
    finder.range_test(loader, end_lr=10, num_iter=100, step_mode="exp", smooth_f=0.05, diverge_th=5)
    _, peer_lr = finder.plot(skip_start=10, skip_end=5, suggest_lr=True)

    assert ours.suggested_lr is not None and peer_lr is not None
    ratio = ours.suggested_lr / peer_lr
    assert 1 / 3 <= ratio <= 3, (ours.suggested_lr, peer_lr)  # measured: 2.6e-2 both
