"""Seq2SeqTransformer.exact_match: what counts as an exactly decoded sequence."""

from __future__ import annotations

import torch

from torchkata.data.sequences import BOS, EOS, PAD, VOCAB, make_task
from torchkata.transformer import Seq2SeqTransformer


def test_exact_match_compares_bos_to_eos_and_ignores_the_padding(monkeypatch):
    data = make_task("reverse", 6, 1, 5, seed=0)
    model = Seq2SeqTransformer(len(VOCAB), 16, 2, 1, 1, 32, dropout=0.0)
    wrong = data.tgt.clone()
    wrong[::2, 1] = (wrong[::2, 1] - 3 + 1) % 10 + 3  # another digit in rows 0, 2, 4
    padded = torch.cat([data.tgt, torch.full((6, 3), PAD)], dim=1)  # decoded past EOS
    for decoded, expected in ((data.tgt, 1.0), (wrong, 0.5), (padded, 1.0), (data.tgt[:, :2], 0)):
        monkeypatch.setattr(model, "greedy_decode", lambda *args, out=decoded: out)
        assert model.exact_match(data.src, data.tgt, BOS, EOS) == expected


def test_an_untrained_model_decodes_almost_nothing_exactly():
    torch.manual_seed(0)
    data = make_task("reverse", 50, 1, 5, seed=0)
    model = Seq2SeqTransformer(len(VOCAB), 16, 2, 1, 1, 32, dropout=0.0)
    assert model.exact_match(data.src, data.tgt, BOS, EOS) < 0.1
    # decoding in batches gives the same count as in one
    batched = model.exact_match(data.src, data.tgt, BOS, EOS, batch_size=7)
    assert batched == model.exact_match(data.src, data.tgt, BOS, EOS)
