"""The sequence-to-sequence tasks: correct targets, padding, a held-out split, seeding.

Targets are checked against :func:`answer` and against independent arithmetic here; the
split against ``zlib.crc32`` and by intersecting large train and test sets.
"""

from __future__ import annotations

import collections
import itertools
import zlib

import pytest
import torch

from torchkata.data import sequences
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


def texts(tokens: torch.Tensor) -> list[str]:
    return [decode(row) for row in tokens.tolist()]


def test_vocabulary_layout():
    assert (PAD, BOS, EOS) == (0, 1, 2)
    assert len(VOCAB) == 14
    assert VOCAB[:3] == ("<pad>", "<bos>", "<eos>")
    assert [VOCAB[3 + d] for d in range(10)] == list("0123456789")
    assert VOCAB[13] == "+"
    assert TASKS == ("reverse", "sort", "add")


@pytest.mark.parametrize("split", ["train", "test"])
@pytest.mark.parametrize("task", TASKS)
def test_targets_are_correct(task, split):
    data = make_task(task, 3000, 1, 9, split=split, seed=1)
    assert data.task == task and len(data) == 3000
    for source, target in zip(texts(data.src), texts(data.tgt), strict=True):
        assert target == answer(task, source)
        if task == "reverse":
            assert target == source[::-1]
        elif task == "sort":
            assert collections.Counter(target) == collections.Counter(source)
            assert all(x <= y for x, y in itertools.pairwise(target))
        else:
            a, b = source.split("+")
            assert int(target) == int(a) + int(b)
            assert target == "0" or not target.startswith("0")


def test_answer_on_known_cases():
    assert answer("reverse", "3071") == "1703"
    assert answer("sort", "3071") == "0137"
    assert answer("add", "123+45") == "168"
    assert answer("add", "0+0") == "0"
    assert answer("add", "999+1") == "1000"
    for bad in ("12", "1+2+3", "+1", "1+", "a+1"):
        with pytest.raises(ValueError, match="source"):
            answer("add", bad)
    with pytest.raises(ValueError, match="source"):
        answer("sort", "12+3")
    with pytest.raises(ValueError, match="task"):
        answer("copy", "12")


@pytest.mark.parametrize("task", TASKS)
def test_lengths_and_padding(task):
    min_len, max_len = 2, 7
    data = make_task(task, 2000, min_len, max_len, seed=3)
    src, tgt = data.src, data.tgt
    assert src.dtype == tgt.dtype == data.src_lengths.dtype == data.tgt_lengths.dtype
    assert src.dtype == torch.long
    assert src.shape[1] == int(data.src_lengths.max())  # padded to the longest only
    assert tgt.shape[1] == int(data.tgt_lengths.max())
    assert torch.equal(data.src_lengths, (src != PAD).sum(1))
    assert torch.equal(data.tgt_lengths, (tgt != PAD).sum(1))
    positions = torch.arange(src.shape[1])
    assert ((src == PAD) == (positions >= data.src_lengths[:, None])).all()
    positions = torch.arange(tgt.shape[1])
    assert ((tgt == PAD) == (positions >= data.tgt_lengths[:, None])).all()
    assert (tgt[:, 0] == BOS).all()
    rows = torch.arange(len(data))
    assert (tgt[rows, data.tgt_lengths - 1] == EOS).all()
    assert (tgt == EOS).sum() == len(data) and (tgt == BOS).sum() == len(data)
    assert ((src == BOS) | (src == EOS)).sum() == 0
    if task == "add":
        operands = [len(part) for s in texts(src) for part in s.split("+")]
        assert min(operands) == min_len and max(operands) == max_len
    else:
        assert int(data.src_lengths.min()) == min_len
        assert int(data.src_lengths.max()) == max_len
        assert torch.equal(data.tgt_lengths, data.src_lengths + 2)


def test_add_operands_are_uniform_by_digit_count():
    data = make_task("add", 6000, 1, 3, seed=0)
    operands = [part for s in texts(data.src) for part in s.split("+")]
    counts = collections.Counter(len(x) for x in operands)
    for digits in (1, 2, 3):  # 4000 each expected; 5 standard deviations is about 180
        assert abs(counts[digits] - 4000) < 250, counts
    assert all(len(x) == 1 or x[0] != "0" for x in operands)
    singles = collections.Counter(x for x in operands if len(x) == 1)
    assert set(singles) == set("0123456789")  # a one-digit operand may be 0
    leads = collections.Counter(x[0] for x in operands if len(x) == 3)
    assert set(leads) == set("123456789")


def test_split_is_the_crc_of_the_source():
    for task in TASKS:
        for split in ("train", "test"):
            data = make_task(task, 500, 1, 6, split=split, seed=2)
            in_test = {zlib.crc32(s.encode()) % 10 == 0 for s in texts(data.src)}
            assert in_test == {split == "test"}


@pytest.mark.parametrize("task", TASKS)
def test_train_and_test_sources_are_disjoint(task):
    # Short sources, so that the sets cover nearly every possible source of their split.
    train = set(texts(make_task(task, 15000, 1, 2, seed=0).src))
    train |= set(texts(make_task(task, 5000, 1, 2, seed=1).src))
    test = set(texts(make_task(task, 5000, 1, 2, split="test", seed=0).src))
    test |= set(texts(make_task(task, 5000, 1, 2, split="test", seed=7).src))
    assert train.isdisjoint(test)
    if task == "add":  # 110 ** 2 sources; the sets above see a part of them
        assert len(train) > 1000 and len(test) > 100
    else:  # 10 + 100 sources: together the sets see all of them, about 10% test-only
        assert train | test == {
            "".join(p) for n in (1, 2) for p in itertools.product("0123456789", repeat=n)
        }
        assert 5 <= len(test) <= 20


def test_shortest_test_split_has_a_single_source():
    # of "0".."9" only "6" hashes into the test split; duplicates are allowed
    data = make_task("reverse", 20, 1, 1, split="test")
    assert set(texts(data.src)) == {"6"} and set(texts(data.tgt)) == {"6"}


def test_impossible_split_raises(monkeypatch):
    monkeypatch.setattr(sequences, "_is_test_source", lambda source: False)
    with pytest.raises(ValueError, match=r"split.*'test'.*none"):
        make_task("sort", 10, 1, 3, split="test")
    assert len(make_task("sort", 10, 1, 3)) == 10


def assert_same(a: Seq2SeqData, b: Seq2SeqData) -> None:
    assert a.task == b.task
    for name in ("src", "tgt", "src_lengths", "tgt_lengths"):
        assert torch.equal(getattr(a, name), getattr(b, name)), name


@pytest.mark.parametrize("task", TASKS)
def test_seeding(task):
    assert_same(make_task(task, 300, 1, 6, seed=5), make_task(task, 300, 1, 6, seed=5))
    assert not torch.equal(
        make_task(task, 300, 1, 6, seed=5).src, make_task(task, 300, 1, 6, seed=6).src
    )
    assert set(texts(make_task(task, 300, 3, 6, seed=5).src)) != set(
        texts(make_task(task, 300, 3, 6, seed=5, split="test").src)
    )
    # the first k examples do not depend on n, across several chunks of draws
    assert_same(make_task(task, 50, 1, 6, seed=5), make_task(task, 9000, 1, 6, seed=5)[:50])


def test_indexing_trims_padding():
    data = make_task("reverse", 200, 1, 10, seed=0)
    short = torch.nonzero(data.src_lengths <= 3).flatten()
    subset = data[short]
    assert len(subset) == len(short) and subset.src.shape[1] == int(subset.src_lengths.max())
    assert subset.src.shape[1] <= 3 and subset.tgt.shape[1] <= 5
    assert texts(subset.src) == [texts(data.src)[i] for i in short.tolist()]
    assert texts(subset.tgt) == [texts(data.tgt)[i] for i in short.tolist()]
    assert_same(data[data.src_lengths <= 3], subset)  # a bool mask
    assert_same(data[short.tolist()], subset)  # a list
    one = data[-1]
    assert one.src.shape == (1, int(data.src_lengths[-1]))
    assert texts(one.tgt) == texts(data.tgt)[-1:]
    assert_same(data[4], data[4:5])
    assert_same(data[torch.tensor(4)], data[4:5])
    assert data[2:9].src.shape[0] == 7
    assert data[:0].src.shape == (0, 0) and len(data[[]]) == 0
    with pytest.raises(IndexError, match="idx"):
        data[200]


def test_encode_decode_round_trip():
    for text in ("", "0", "123+45", "9876543210", "+", "007+1"):
        assert decode(encode(text)) == text
        assert decode([BOS, *encode(text), EOS, *encode("99"), PAD]) == text
    assert encode("0123456789+") == list(range(3, 14))
    assert decode(torch.tensor([BOS, 4, PAD, 5, EOS, 6])) == "12"
    data = make_task("add", 50, 1, 4)
    for row, source in zip(data.src.tolist(), texts(data.src), strict=True):
        assert encode(source) == [t for t in row if t != PAD]


def test_encode_decode_errors():
    with pytest.raises(ValueError, match=r"text.*'x'.*index 3"):
        encode("123x")
    with pytest.raises(ValueError, match=r"text.*'-'"):
        encode("1-2")
    with pytest.raises(ValueError, match=r"tokens.*14"):
        decode([4, 14])
    with pytest.raises(ValueError, match=r"tokens.*-1"):
        decode([-1])
    with pytest.raises(ValueError, match=r"tokens.*1-D"):
        decode(torch.zeros(2, 3, dtype=torch.long))


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"task": "copy"}, "task"),
        ({"n": 0}, "n"),
        ({"n": 2.5}, "n"),
        ({"min_len": 0}, "min_len"),
        ({"max_len": 1, "min_len": 2}, "max_len"),
        ({"split": "valid"}, "split"),
        ({"seed": -1}, "seed"),
    ],
)
def test_bad_arguments_raise(kwargs, name):
    arguments = {"task": "sort", "n": 5, "min_len": 1, "max_len": 4, **kwargs}
    with pytest.raises(ValueError, match=f"^{name}: expected") as info:
        make_task(**arguments)
    assert repr(kwargs[name]) in str(info.value)  # the actual value
    if name == "task":
        assert all(task in str(info.value) for task in TASKS)
