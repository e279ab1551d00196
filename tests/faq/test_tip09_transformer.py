"""Executable FAQ, tip 9 (Transformers): claims 9.1–9.4 of FAQ_CLAIMS.md.

9.1 and 9.2 are checked against the paper (Vaswani et al. 2017) and against torch; 9.3 is
the padding invariance the document's Q4 promises, shown to hold with the mask and to
fail without it; 9.4 is shown at the scale of a unit test by a sequence transduction (the
shape of translation) learned from scratch. Summarisation and question answering at the
scale the document means need pretrained weights, which cannot be downloaded here.
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from torchkata.data.sequences import BOS, EOS, PAD, VOCAB, make_task
from torchkata.transformer import (
    MultiheadAttention,
    Transformer,
    TransformerEncoder,
    TransformerEncoderLayer,
    padding_mask,
    scaled_dot_product_attention,
)
from torchkata.transformer.seq2seq import Seq2SeqTransformer


# ---------------------------------------------------------------- 9.1
def test_9_1_the_documents_call_builds_the_base_model_of_the_paper():
    """``nn.Transformer(512, 8, 6, 6, 2048)`` is the paper's base model (Table 3): d_model
    512, 8 heads of d_k = d_v = 64, d_ff 2048, 6 + 6 layers, dropout 0.1. The paper's
    65M parameters include the 37,000-token shared embedding, which nn.Transformer leaves
    to the user (it has no embeddings and no positional encoding)."""
    d_model, nhead, num_encoder_layers, num_decoder_layers, dim_feedforward = 512, 8, 6, 6, 2048
    theirs = nn.Transformer(d_model, nhead, num_encoder_layers, num_decoder_layers, dim_feedforward)
    ours = Transformer(d_model, nhead, num_encoder_layers, num_decoder_layers, dim_feedforward)
    count = sum(p.numel() for p in theirs.parameters())
    # per layer: attention 4·d² + 4·d; feed-forward 2·d·d_ff + d_ff + d; LayerNorm 2·d
    attention = 4 * d_model**2 + 4 * d_model
    ffn = 2 * d_model * dim_feedforward + dim_feedforward + d_model
    encoder_layer = attention + ffn + 2 * (2 * d_model)
    decoder_layer = 2 * attention + ffn + 3 * (2 * d_model)
    expected = 6 * encoder_layer + 6 * decoder_layer + 2 * (2 * d_model)  # + final norms
    assert count == expected == sum(p.numel() for p in ours.parameters()) == 44_140_544
    assert count + 37_000 * d_model == pytest.approx(65e6, rel=0.04)  # the paper's "65M"
    heads = theirs.encoder.layers[0].self_attn
    assert heads.head_dim == ours.encoder.layers[0].self_attn.head_dim == 64
    assert theirs.encoder.layers[0].dropout.p == 0.1
    assert not hasattr(theirs, "embedding") and theirs.batch_first is False  # (S, N, E)
    assert {k: v.shape for k, v in ours.state_dict().items()} == {
        k: v.shape for k, v in theirs.state_dict().items()
    }


# ---------------------------------------------------------------- 9.2
def test_9_2_attention_is_softmax_of_scaled_query_key_products_times_values():
    """softmax(QKᵀ/√d)·V computed with explicit loops equals our vectorised function and
    torch's fused kernel; the 1/√d keeps the scores' spread independent of d."""
    gen = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(2, 5, 16, generator=gen, dtype=torch.float64) for _ in range(3))
    d = q.size(-1)
    loops = torch.empty_like(q)
    for n in range(2):
        for i in range(5):
            scores = [
                sum(q[n, i, c] * k[n, j, c] for c in range(d)) / math.sqrt(d) for j in range(5)
            ]
            exp = [math.exp(s - max(scores)) for s in scores]
            weights = [e / sum(exp) for e in exp]
            loops[n, i] = sum(w * v[n, j] for j, w in enumerate(weights))
    torch.testing.assert_close(scaled_dot_product_attention(q, k, v), loops)
    torch.testing.assert_close(F.scaled_dot_product_attention(q, k, v), loops)
    # why the scale: unscaled scores of random unit-variance vectors grow like √d
    for width in (16, 256):
        a, b = torch.randn(2, 4000, width, generator=gen).unbind(0)
        dots = (a * b).sum(-1)
        assert dots.std().item() == pytest.approx(math.sqrt(width), rel=0.1)
        assert (dots / math.sqrt(width)).std().item() == pytest.approx(1.0, rel=0.1)


def test_9_2_multi_head_attention_projects_queries_keys_and_values_per_head():
    """nn.MultiheadAttention = h independent attentions on learned projections, concatenated
    and projected: our tensor-op version loads torch's weights and gives its outputs."""
    torch.manual_seed(0)
    theirs = nn.MultiheadAttention(32, 4, batch_first=True, dtype=torch.float64)
    ours = MultiheadAttention(32, 4, batch_first=True, dtype=torch.float64)
    ours.load_state_dict(theirs.state_dict())
    x = torch.randn(3, 7, 32, dtype=torch.float64)
    (out_a, w_a), (out_b, w_b) = ours(x, x, x), theirs(x, x, x)
    torch.testing.assert_close(out_a, out_b)
    torch.testing.assert_close(w_a, w_b)
    # by hand, head by head
    w_q, w_k, w_v = theirs.in_proj_weight.split(32)
    b_q, b_k, b_v = theirs.in_proj_bias.split(32)
    heads = []
    for h in range(4):
        rows = slice(8 * h, 8 * (h + 1))
        qh, kh, vh = (x @ w[rows].T + b[rows] for w, b in ((w_q, b_q), (w_k, b_k), (w_v, b_v)))
        heads.append(torch.softmax(qh @ kh.transpose(1, 2) / math.sqrt(8), -1) @ vh)
    torch.testing.assert_close(theirs.out_proj(torch.cat(heads, -1)), out_b)


# ---------------------------------------------------------------- 9.3
@pytest.mark.parametrize("norm_first", [False, True])
@pytest.mark.parametrize("implementation", ["torchkata", "torch"])
def test_9_3_with_the_padding_masked_real_positions_ignore_the_paddings_content_and_length(
    norm_first, implementation
):
    torch.manual_seed(0)
    layer_cls = (
        TransformerEncoderLayer if implementation == "torchkata" else nn.TransformerEncoderLayer
    )
    layer = layer_cls(16, 4, 32, dropout=0.0, batch_first=True, norm_first=norm_first)
    kwargs = {} if implementation == "torchkata" else {"enable_nested_tensor": False}
    encoder = (TransformerEncoder if implementation == "torchkata" else nn.TransformerEncoder)(
        layer, num_layers=2, **kwargs
    ).double()
    lengths = torch.tensor([5, 2, 7])
    x = torch.randn(3, 7, 16, dtype=torch.float64)
    real = ~padding_mask(lengths, 7)  # (N, S), True at real positions

    def encode(inputs, width, masked=True):
        mask = padding_mask(lengths, width) if masked else None
        return encoder(inputs, src_key_padding_mask=mask)

    base = encode(x, 7)
    other_content = torch.where(real[..., None], x, 100 * torch.randn_like(x))
    longer = torch.cat([x, torch.randn(3, 4, 16, dtype=torch.float64)], dim=1)  # 4 more pads
    torch.testing.assert_close(encode(other_content, 7)[real], base[real], rtol=0, atol=1e-12)
    torch.testing.assert_close(encode(longer, 11)[:, :7][real], base[real], rtol=0, atol=1e-12)
    # without the mask, the padding leaks into every real position
    leak = (encode(other_content, 7, masked=False) - encode(x, 7, masked=False))[real]
    assert leak.abs().amax().item() > 1e-2


def test_9_3_a_padded_batch_gives_each_sequence_the_result_it_gets_alone():
    """The document's recipe (pad to the longest, mask the padding) end to end: a
    seq2seq model's logits for a sequence do not depend on its batch-mates."""
    torch.manual_seed(0)
    model = Seq2SeqTransformer(len(VOCAB), 32, 4, 2, 2, 64, dropout=0.0).double().eval()
    data = make_task("reverse", 6, 1, 8, seed=3)
    batch = model(data.src, data.tgt[:, :-1])
    for i in range(len(data)):
        alone = data[i]
        logits = model(alone.src, alone.tgt[:, :-1])
        n = alone.tgt.size(1) - 1
        torch.testing.assert_close(batch[i, :n], logits[0], rtol=0, atol=1e-10)


# ---------------------------------------------------------------- 9.4
def test_9_4_an_encoder_decoder_learns_a_sequence_transduction_from_scratch():
    """Translation's shape — read a whole sequence, write another token by token — on a
    task a unit test can train in seconds: reverse 1-5 digits. Exact-sequence accuracy
    on held-out sources after 300 steps (the recipe trains to >= 99% on longer ones)."""
    torch.manual_seed(0)
    train = make_task("reverse", 5000, 1, 5, split="train", seed=0)
    test = make_task("reverse", 300, 1, 5, split="test", seed=1)
    model = Seq2SeqTransformer(len(VOCAB), 64, 4, 2, 2, 128, dropout=0.0)
    optimizer = torch.optim.AdamW(model.parameters(), lr=2e-3)
    gen = torch.Generator().manual_seed(0)
    for _ in range(300):
        batch = train[torch.randint(len(train), (64,), generator=gen)]
        logits = model(batch.src, batch.tgt[:, :-1])
        loss = F.cross_entropy(logits.flatten(0, 1), batch.tgt[:, 1:].flatten(), ignore_index=PAD)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    accuracy = model.exact_match(test.src, test.tgt, BOS, EOS)
    assert accuracy >= 0.9, accuracy
