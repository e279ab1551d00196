"""load_mnist1d: shapes, balance, determinism, and generation without network or disk."""

from __future__ import annotations

import random
import socket
import sys

import numpy as np
import pytest
import torch

from torchkata.data import Split, load_mnist1d
from torchkata.data import mnist1d as mnist1d_module


@pytest.fixture(scope="module")
def split() -> Split:
    pytest.importorskip("mnist1d")
    return load_mnist1d()


def test_shapes_and_dtypes(split: Split) -> None:
    assert split.x_train.shape == (4000, 40) and split.x_train.dtype == torch.float32
    assert split.x_test.shape == (1000, 40) and split.x_test.dtype == torch.float32
    assert split.y_train.shape == (4000,) and split.y_train.dtype == torch.int64
    assert split.y_test.shape == (1000,) and split.y_test.dtype == torch.int64


def test_values_are_standardised_and_labels_in_range(split: Split) -> None:
    x = torch.cat([split.x_train, split.x_test]).double()
    assert torch.isfinite(x).all()
    # mnist1d centres the whole set and scales it to unit standard deviation
    assert abs(x.mean().item()) < 1e-6
    assert x.std(unbiased=False).item() == pytest.approx(1.0, abs=1e-6)
    y = torch.cat([split.y_train, split.y_test])
    assert y.min().item() == 0 and y.max().item() == 9


def test_classes_are_balanced(split: Split) -> None:
    # 500 signals per class, shuffled before the 80/20 split
    both = torch.bincount(torch.cat([split.y_train, split.y_test]), minlength=10)
    assert both.tolist() == [500] * 10
    train = torch.bincount(split.y_train, minlength=10)
    test = torch.bincount(split.y_test, minlength=10)
    assert ((train >= 360) & (train <= 440)).all(), train.tolist()
    assert ((test >= 80) & (test <= 120)).all(), test.tolist()


def test_pinned_values_of_the_paper_set(split: Split) -> None:
    # seed 42, the package default; pinned so that a change in mnist1d is noticed
    assert split.y_train[:10].tolist() == [2, 6, 4, 5, 6, 6, 6, 0, 3, 1]
    expected = torch.tensor([-0.3320057, -0.4719104, -0.7786971, -1.0097408, -0.8823526])
    torch.testing.assert_close(split.x_train[0, :5], expected, rtol=0, atol=1e-6)


def test_calls_return_copies(split: Split) -> None:
    first = load_mnist1d()
    first.x_train.zero_()
    first.y_test.fill_(-1)
    again = load_mnist1d()
    assert torch.equal(again.x_train, split.x_train)
    assert torch.equal(again.y_test, split.y_test)


def test_generation_is_deterministic_offline_and_leaves_global_rngs(
    split: Split, monkeypatch: pytest.MonkeyPatch, tmp_path
) -> None:
    requests = pytest.importorskip("requests")

    def no_network(*args, **kwargs):
        raise AssertionError("load_mnist1d touched the network")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    monkeypatch.setattr(socket, "create_connection", no_network)
    monkeypatch.setattr(socket, "getaddrinfo", no_network)
    monkeypatch.setattr(requests, "get", no_network)
    monkeypatch.setattr(requests.Session, "request", no_network)
    monkeypatch.chdir(tmp_path)  # mnist1d.data.get_dataset would write a pickle here

    random.seed(5)
    np.random.seed(5)
    expected_py, expected_np = random.random(), np.random.rand()
    random.seed(5)
    np.random.seed(5)

    fresh = mnist1d_module._generate.__wrapped__(42)  # bypass the in-memory cache

    assert random.random() == expected_py
    assert np.random.rand() == expected_np
    assert list(tmp_path.iterdir()) == []
    parts = (split.x_train, split.y_train, split.x_test, split.y_test)
    for got, want in zip(fresh, parts, strict=True):
        assert torch.equal(got, want)


def test_another_seed_gives_other_data(split: Split) -> None:
    other = load_mnist1d(seed=0)
    assert other.x_train.shape == (4000, 40)
    assert not torch.equal(other.x_train, split.x_train)
    assert not torch.equal(other.y_train, split.y_train)
    both = torch.bincount(torch.cat([other.y_train, other.y_test]), minlength=10)
    assert both.tolist() == [500] * 10


@pytest.mark.parametrize("seed", [-1, 2**32, 1.5, "42", True])
def test_bad_seed_raises(seed) -> None:
    with pytest.raises(ValueError, match=r"seed: expected an int in \[0, 2\*\*32\), got"):
        load_mnist1d(seed)


def test_missing_package_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    # None in sys.modules makes `import mnist1d.data` raise ImportError
    monkeypatch.setitem(sys.modules, "mnist1d", None)
    monkeypatch.setitem(sys.modules, "mnist1d.data", None)
    with pytest.raises(ImportError, match=r"pip install 'torchkata\[ssl\]'"):
        load_mnist1d(seed=123456)  # a seed no other test has cached
