"""find_leakage on the real digits, with planted duplicates."""

from __future__ import annotations

import pytest
import torch

from torchkata.data import load_digits
from torchkata.doctor import find_leakage


def test_finds_exactly_the_planted_duplicates() -> None:
    split = load_digits()
    assert find_leakage(split.x_train, split.x_test) == []  # the split itself is clean
    x_test = split.x_test.clone()
    planted = {(5, 0), (100, 17), (1000, 359), (1436, 200)}
    for i, j in planted:
        x_test[j] = split.x_train[i]
    assert find_leakage(split.x_train, x_test) == sorted(planted)


def test_near_duplicates_are_not_leaks_and_repeats_all_pair() -> None:
    train = torch.tensor([[0.0, 1.0], [0.0, 1.0], [2.0, 3.0]])
    held_out = torch.tensor([[0.0, 1.0 + 1e-7], [0.0, 1.0], [2.0, 3.0]])
    assert find_leakage(train, held_out) == [(0, 1), (1, 1), (2, 2)]


@pytest.mark.parametrize(
    ("train", "held_out", "error", "argument"),
    [
        ([1.0], torch.zeros(2), TypeError, "train_inputs"),
        (torch.zeros(2), torch.tensor(1.0), ValueError, "eval_inputs"),
        (torch.zeros(2, 3), torch.zeros(2, 4), ValueError, "eval_inputs"),
        (torch.zeros(2, 3), torch.zeros(2, 3, dtype=torch.float64), ValueError, "eval_inputs"),
    ],
)
def test_bad_inputs(train, held_out, error, argument) -> None:
    with pytest.raises(error, match=rf"^{argument}: expected"):
        find_leakage(train, held_out)
