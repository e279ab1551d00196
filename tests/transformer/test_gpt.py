"""GPT, positions and the character tokenizer: causality, the KV cache, training, errors."""

from __future__ import annotations

import math

import pytest
import torch

from torchkata.data.text import pydoc_text
from torchkata.transformer import (
    GPT,
    CharTokenizer,
    LearnedPositionalEncoding,
    SinusoidalPositionalEncoding,
    sinusoidal_table,
)


def tiny_gpt(dtype=torch.float64, **kwargs) -> GPT:
    torch.manual_seed(0)
    args = dict(vocab_size=13, block_size=12, n_layer=2, n_head=2, n_embd=16) | kwargs
    return GPT(**args).to(dtype).eval()


@pytest.mark.parametrize("positional", ["learned", "sinusoidal"])
def test_logits_at_a_position_do_not_depend_on_later_tokens(positional):
    model = tiny_gpt(positional=positional)
    idx = torch.randint(0, 13, (3, 12), generator=torch.Generator().manual_seed(1))
    changed = idx.clone()
    changed[:, 7:] = (changed[:, 7:] + 5) % 13
    a, b = model(idx)[0], model(changed)[0]
    torch.testing.assert_close(a[:, :7], b[:, :7], rtol=0, atol=1e-12)
    assert not torch.allclose(a[:, 7:], b[:, 7:])


@pytest.mark.parametrize("chunks", [(12,), (5, 7), (1,) * 12, (4, 1, 6, 1)])
def test_forward_with_a_cache_in_chunks_equals_one_full_forward(chunks):
    model = tiny_gpt()
    idx = torch.randint(0, 13, (2, 12), generator=torch.Generator().manual_seed(2))
    full = model(idx)[0]
    cache, pieces, start = [], [], 0
    for size in chunks:  # chunks of more than one position need the offset causal mask
        logits, cache = model(idx[:, start : start + size], past=cache)
        pieces.append(logits)
        start += size
    torch.testing.assert_close(torch.cat(pieces, dim=1), full, rtol=0, atol=1e-12)
    assert cache[0][0].shape == (2, 2, 12, 8)  # (N, nh, T, hs) per layer


@pytest.mark.parametrize("prompt_len", [1, 5])
@pytest.mark.parametrize("greedy", [True, False])
def test_generation_with_the_kv_cache_equals_generation_without_it(prompt_len, greedy):
    model = tiny_gpt()
    prompt = torch.randint(0, 13, (3, prompt_len), generator=torch.Generator().manual_seed(3))
    # 20 new tokens: past block_size=12, where both read the last 12 tokens afresh
    runs = [
        model.generate(
            prompt,
            20,
            temperature=0.7,
            top_k=6,
            greedy=greedy,
            use_cache=cache,
            generator=torch.Generator().manual_seed(4),
        )
        for cache in (True, False)
    ]
    assert runs[0].shape == (3, prompt_len + 20)
    assert torch.equal(runs[0], runs[1])
    assert torch.equal(runs[0][:, :prompt_len], prompt)


def test_float32_greedy_generation_with_and_without_cache_agree():
    model = tiny_gpt(torch.float32, block_size=32)
    prompt = torch.randint(0, 13, (4, 3), generator=torch.Generator().manual_seed(5))
    with_cache = model.generate(prompt, 25, greedy=True)
    assert torch.equal(with_cache, model.generate(prompt, 25, greedy=True, use_cache=False))


def test_sampling_is_reproducible_and_top_k_restricts_the_choice():
    model = tiny_gpt()
    prompt = torch.zeros(50, 1, dtype=torch.long)
    a = model.generate(prompt, 3, top_k=2, generator=torch.Generator().manual_seed(0))
    b = model.generate(prompt, 3, top_k=2, generator=torch.Generator().manual_seed(0))
    assert torch.equal(a, b)
    top2 = torch.topk(model(prompt[:1])[0][0, -1], 2).indices
    assert set(a[:, 1].tolist()) <= set(top2.tolist())
    assert len(set(a[:, 1].tolist())) == 2  # 50 draws take both


def test_attention_maps_are_causal_distributions():
    model = tiny_gpt()
    idx = torch.randint(0, 13, (2, 9), generator=torch.Generator().manual_seed(6))
    maps = model.attention_maps(idx)
    assert maps.shape == (2, 2, 2, 9, 9)  # (n_layer, N, n_head, T, T)
    torch.testing.assert_close(maps.sum(-1), torch.ones(2, 2, 2, 9, dtype=maps.dtype))
    assert (maps.triu(1) == 0).all()


@pytest.mark.parametrize("chunks", [(9,), (4, 1, 4)])
def test_written_out_attention_equals_torchs_fused_kernel_with_and_without_a_cache(chunks):
    model = tiny_gpt()
    idx = torch.randint(0, 13, (2, 9), generator=torch.Generator().manual_seed(6))
    results = []
    for fused in (False, True):
        for block in model.blocks:
            block.attn.fused = fused
        cache, pieces, start = [], [], 0
        for size in chunks:
            logits, cache = model(idx[:, start : start + size], past=cache)
            pieces.append(logits)
            start += size
        results.append(torch.cat(pieces, dim=1))
    torch.testing.assert_close(results[0], results[1], rtol=0, atol=1e-12)


def test_training_under_bfloat16_autocast_follows_float32():
    """The benchmark's fast setting: bf16 matmuls (AMX/AVX512-BF16 on CPUs that have them)."""
    torch.manual_seed(0)
    model = GPT(vocab_size=20, block_size=16, n_layer=2, n_head=2, n_embd=32)
    idx = torch.randint(0, 20, (4, 16), generator=torch.Generator().manual_seed(7))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        logits, loss = model(idx, idx)
    assert logits.dtype == torch.bfloat16
    reference = model(idx, idx)[1]
    assert loss.item() == pytest.approx(reference.item(), rel=0.02)
    loss.backward()
    assert all(p.grad.dtype == torch.float32 for p in model.parameters())


def test_initial_loss_is_near_log_vocab_and_a_tiny_gpt_learns_a_sequence_by_heart():
    torch.manual_seed(0)
    model = GPT(vocab_size=20, block_size=16, n_layer=2, n_head=2, n_embd=32)
    idx = torch.randint(0, 20, (4, 17), generator=torch.Generator().manual_seed(7))
    x, y = idx[:, :-1], idx[:, 1:]
    first = model(x, y)[1].item()
    assert first == pytest.approx(math.log(20), abs=0.15)
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    for _ in range(150):
        loss = model(x, y)[1]
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert loss.item() < 0.05
    # and it can continue the memorised rows greedily
    assert torch.equal(model.eval().generate(idx[:, :4], 13, greedy=True), idx)


def test_weight_tying_shares_one_tensor_and_survives_a_state_dict_round_trip():
    model = tiny_gpt()
    assert model.lm_head.weight is model.wte.weight
    untied = tiny_gpt(tie_weights=False)
    assert untied.num_parameters() == model.num_parameters() + 13 * 16
    copy = GPT(13, 12, 2, 2, 16).double().eval()
    copy.load_state_dict(model.state_dict())
    assert copy.lm_head.weight is copy.wte.weight
    idx = torch.randint(0, 13, (2, 12))
    torch.testing.assert_close(copy(idx)[0], model(idx)[0])


def test_targets_of_minus_one_are_ignored():
    model = tiny_gpt()
    idx = torch.randint(0, 13, (2, 8))
    targets = torch.randint(0, 13, (2, 8))
    masked = targets.clone()
    masked[:, 4:] = -1
    logits, loss = model(idx, masked)
    expected = torch.nn.functional.cross_entropy(
        logits[:, :4].flatten(0, 1), targets[:, :4].flatten()
    )
    torch.testing.assert_close(loss, expected)


IDS = torch.zeros(1, 4, dtype=torch.long)
ONE = torch.zeros(1, 1, dtype=torch.long)


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda m: m(torch.zeros(1, 13, dtype=torch.long)), "block_size"),
        (lambda m: m(torch.zeros(1, 4)), "idx"),
        (lambda m: m(IDS, IDS[:, :3]), "targets"),
        (lambda m: m.generate(ONE, 2, temperature=0), "temperature"),
        (lambda m: m.generate(ONE, 2, top_k=14), "top_k"),
        (lambda m: GPT(10, 8, n_head=3, n_embd=16), "n_embd"),
        (lambda m: GPT(10, 8, positional="rope"), "positional"),
        (lambda m: GPT(0, 8), "vocab_size"),
    ],
)
def test_bad_arguments_raise_value_errors_naming_them(call, match):
    with pytest.raises(ValueError, match=match):
        call(tiny_gpt())


def test_sinusoidal_table_equals_the_papers_formula():
    d = 10
    table = sinusoidal_table(7, d).double()
    for pos in range(7):
        for i in range(d // 2):
            angle = pos / 10000 ** (2 * i / d)
            assert table[pos, 2 * i].item() == pytest.approx(math.sin(angle), abs=1e-6)
            assert table[pos, 2 * i + 1].item() == pytest.approx(math.cos(angle), abs=1e-6)


@pytest.mark.parametrize("cls", [SinusoidalPositionalEncoding, LearnedPositionalEncoding])
def test_positions_with_an_offset_continue_the_sequence(cls):
    pe = cls(8, max_len=10)
    x = torch.randn(2, 6, 8)
    whole = pe(x)
    torch.testing.assert_close(torch.cat([pe(x[:, :4]), pe(x[:, 4:], offset=4)], 1), whole)
    with pytest.raises(ValueError, match="max_len"):
        pe(torch.randn(1, 7, 8), offset=4)
    with pytest.raises(ValueError, match="x: expected"):
        pe(torch.randn(1, 4, 9))
    assert "sinusoidal" not in str(list(pe.state_dict())) and (
        (cls is LearnedPositionalEncoding) == bool(pe.state_dict())
    )  # the fixed table is a buffer outside the state_dict


def test_char_tokenizer_round_trips_the_bundled_text_and_rejects_unknown_characters():
    text = pydoc_text()
    tokenizer = CharTokenizer.from_text(text)
    assert tokenizer.vocab_size == len(set(text))
    assert tokenizer.decode(tokenizer.encode(text)) == text
    assert tokenizer.tensor("ab").dtype == torch.long
    with pytest.raises(ValueError, match="'☃'"):
        tokenizer.encode("snow ☃")
    with pytest.raises(ValueError, match="ids"):
        tokenizer.decode([tokenizer.vocab_size])
