"""Parity of torchkata.transformer.attention with its torch twins (STYLE.md rule 9).

- :class:`MultiheadAttention` against ``nn.MultiheadAttention``: one module's random
  (not initial) parameters are loaded strictly into the other, in both directions; both
  run on the same inputs and upstream gradients; outputs, returned weights, the gradients
  of query/key/value and of every parameter are compared, over batch-first, sequence-first
  and unbatched inputs, self-, memory- (key is value) and cross-attention (with and
  without kdim/vdim), biases, ``add_bias_kv``, ``add_zero_attn``, every kind of mask,
  ``need_weights`` and ``average_attn_weights``, in train mode.
- Dropout: the same seed gives the same dropped weights in both.
- Torch quirks pinned by a test each: is_causal with add_bias_kv/add_zero_attn and
  need_weights=False (``test_causal_with_extra_keys``), fully masked query rows
  (``test_fully_masked_rows_give_nan_where_torch_does``).
- ``fast=True`` (``F.scaled_dot_product_attention``, whose boolean masks mean True = may
  attend) against the slow path and torch, and against a forgotten mask inversion.
- :func:`scaled_dot_product_attention` against ``F.scaled_dot_product_attention``.
- :func:`causal_mask`, :func:`padding_mask`, and the errors that name their argument.

All float64 and seeded; shapes (N, L, S, E, num_heads, kdim, vdim) are one hand-picked
draw and three random ones. Tolerance: ``atol=1e-10, rtol=0`` (values and gradients are
O(1)-O(100); the two sides sum in different orders: observed differences < 1e-13).
Random masks never block key 0, so no query row is fully masked (such rows give NaN:
see ``test_fully_masked_rows_give_nan_where_torch_does``).
"""

from __future__ import annotations

import dataclasses
import math
import random
import warnings
import zlib
from typing import Any

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from torchkata.transformer import (
    MultiheadAttention,
    causal_mask,
    padding_mask,
    scaled_dot_product_attention,
)

DT = torch.float64
TOL = {"rtol": 0.0, "atol": 1e-10}

LAYOUTS = ("batch_first", "seq_first", "unbatched")
# self: query is key is value; memory: key is value (encoder-decoder); cross: three
# tensors of width E; kvdim: kdim and vdim differ from E (separate q/k/v_proj_weight).
ATTENTIONS = ("self", "memory", "cross", "kvdim")
# The three ways to ask for (or not) the weights; each parity test runs all three.
CALLS = (
    {"need_weights": True},
    {"need_weights": True, "average_attn_weights": False},
    {"need_weights": False},
)


@dataclasses.dataclass(frozen=True)
class Shape:
    N: int  # batch
    L: int  # query positions
    S: int  # key positions
    E: int  # embed_dim
    H: int  # num_heads
    kdim: int  # key width for the kvdim case (!= E)
    vdim: int  # value width for the kvdim case (!= E)

    def __str__(self) -> str:
        return f"N{self.N}-L{self.L}-S{self.S}-E{self.E}-H{self.H}-k{self.kdim}-v{self.vdim}"


def draw_shapes(seed: int, count: int) -> list[Shape]:
    rng = random.Random(seed)
    shapes = []
    for _ in range(count):
        H = rng.randint(1, 4)
        E = H * rng.randint(1, 4)
        kdim, vdim = rng.sample([w for w in range(1, 10) if w != E], 2)
        shapes.append(
            Shape(rng.randint(1, 4), rng.randint(1, 6), rng.randint(1, 6), E, H, kdim, vdim)
        )
    return shapes


SHAPES = [Shape(N=2, L=3, S=5, E=8, H=2, kdim=5, vdim=3), *draw_shapes(6, 3)]


# ---------------------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------------------


def blocked(shape: tuple[int, ...], gen: torch.Generator) -> Tensor:
    """A random boolean mask, True = blocked, that never blocks key 0 (the last dim)."""
    mask = torch.rand(shape, generator=gen, dtype=DT) < 0.35
    mask[..., 0] = False
    return mask


def additive(shape: tuple[int, ...], gen: torch.Generator) -> Tensor:
    """A random float mask: finite values, and -inf where `blocked` says."""
    return torch.randn(shape, generator=gen, dtype=DT).masked_fill(blocked(shape, gen), -math.inf)


def top_left_causal(L: int, S: int) -> Tensor:
    """(L, S), True = blocked: j > i, as F.scaled_dot_product_attention's is_causal."""
    return causal_mask(max(L, S))[:L, :S]


# "a+b" combines parts; "causal" passes is_causal=True together with the causal attn_mask
# (torch requires the mask with is_causal).
MASK_KINDS = (
    "none",
    "kpm_bool",
    "kpm_float",
    "attn2d_bool",
    "attn3d_bool",
    "attn2d_float",
    "attn3d_float",
    "kpm_bool+attn3d_bool",
    "kpm_float+attn2d_float",
    "kpm_bool+attn2d_float",
    "kpm_float+attn3d_bool",
    "causal",
    "causal+kpm_bool",
)


def make_masks(kind: str, s: Shape, batched: bool, gen: torch.Generator) -> dict[str, Any]:
    """forward() keyword arguments for the mask kind, in nn.MultiheadAttention's
    convention (bool True = blocked); 3-D attn masks are (N*H, L, S), N = 1 unbatched."""
    kpm_shape = (s.N, s.S) if batched else (s.S,)
    attn3d_shape = ((s.N if batched else 1) * s.H, s.L, s.S)
    make = {
        "kpm_bool": ("key_padding_mask", lambda: blocked(kpm_shape, gen)),
        "kpm_float": ("key_padding_mask", lambda: additive(kpm_shape, gen)),
        "attn2d_bool": ("attn_mask", lambda: blocked((s.L, s.S), gen)),
        "attn3d_bool": ("attn_mask", lambda: blocked(attn3d_shape, gen)),
        "attn2d_float": ("attn_mask", lambda: additive((s.L, s.S), gen)),
        "attn3d_float": ("attn_mask", lambda: additive(attn3d_shape, gen)),
        "causal": ("attn_mask", lambda: top_left_causal(s.L, s.S)),
    }
    kwargs: dict[str, Any] = {}
    for part in kind.split("+"):
        if part == "none":
            continue
        name, build = make[part]
        kwargs[name] = build()
        if part == "causal":
            kwargs["is_causal"] = True
    return kwargs


def make_inputs(
    s: Shape, layout: str, attention: str, gen: torch.Generator
) -> tuple[Tensor, Tensor, Tensor]:
    """query, key, value; self-attention returns one tensor three times (requires S == L)."""

    def rand(length: int, width: int) -> Tensor:
        shape = {
            "batch_first": (s.N, length, width),
            "seq_first": (length, s.N, width),
            "unbatched": (length, width),
        }[layout]
        return torch.randn(shape, generator=gen, dtype=DT)

    query = rand(s.L, s.E)
    if attention == "self":
        assert s.S == s.L
        return query, query, query
    if attention == "memory":
        memory = rand(s.S, s.E)
        return query, memory, memory
    if attention == "cross":
        return query, rand(s.S, s.E), rand(s.S, s.E)
    return query, rand(s.S, s.kdim), rand(s.S, s.vdim)


def for_attention(s: Shape, attention: str) -> Shape:
    return dataclasses.replace(s, S=s.L) if attention == "self" else s


def module_kwargs(s: Shape, layout: str, attention: str, **kwargs: Any) -> dict[str, Any]:
    kwargs = {"embed_dim": s.E, "num_heads": s.H, "batch_first": layout == "batch_first", **kwargs}
    if attention == "kvdim":
        kwargs.update(kdim=s.kdim, vdim=s.vdim)
    return kwargs


def make_pair(
    gen: torch.Generator, direction: str = "ours->torch", fast: bool = False, **kwargs: Any
) -> tuple[MultiheadAttention, nn.MultiheadAttention]:
    """Ours and torch's with the same random parameters (biases nonzero), loaded strictly
    from one into the other."""
    ours = MultiheadAttention(**kwargs, fast=fast, dtype=DT)
    theirs = nn.MultiheadAttention(**kwargs, dtype=DT)
    assert list(ours.state_dict()) == list(theirs.state_dict())
    src, dst = (ours, theirs) if direction == "ours->torch" else (theirs, ours)
    with torch.no_grad():
        for p in src.parameters():
            p.copy_(0.5 * torch.randn(p.shape, generator=gen, dtype=DT))
    dst.load_state_dict(src.state_dict(), strict=True)
    return ours, theirs


def upstream(t: Tensor) -> Tensor:
    """A fixed upstream gradient for an output of this shape (the same for both sides)."""
    return torch.randn(t.shape, generator=torch.Generator().manual_seed(t.numel()), dtype=DT)


@dataclasses.dataclass
class Result:
    out: Tensor
    weights: Tensor | None
    input_grads: list[Tensor]
    param_grads: dict[str, Tensor | None]


def forward_backward(module: nn.Module, q: Tensor, k: Tensor, v: Tensor, **kwargs: Any) -> Result:
    """Run on fresh leaf copies of the inputs, keeping which of q, k, v are one tensor."""
    leaves: dict[int, Tensor] = {}
    for x in (q, k, v):
        if id(x) not in leaves:
            leaves[id(x)] = x.detach().clone().requires_grad_()
    q, k, v = (leaves[id(x)] for x in (q, k, v))
    module.zero_grad(set_to_none=True)
    with warnings.catch_warnings():
        # torch warns about mixed bool/float masks and about is_causal hints
        warnings.simplefilter("ignore")
        out, weights = module(q, k, v, **kwargs)
    loss = (out * upstream(out)).sum()
    if weights is not None:
        loss = loss + (weights * upstream(weights)).sum()
    loss.backward()
    return Result(
        out.detach(),
        None if weights is None else weights.detach(),
        [x.grad for x in leaves.values()],
        {name: p.grad for name, p in module.named_parameters()},
    )


def assert_same(ours: Result, theirs: Result, *, equal_nan: bool = False) -> None:
    torch.testing.assert_close(ours.out, theirs.out, equal_nan=equal_nan, **TOL)
    assert (ours.weights is None) == (theirs.weights is None)
    if theirs.weights is not None:
        torch.testing.assert_close(ours.weights, theirs.weights, equal_nan=equal_nan, **TOL)
    if equal_nan:
        return  # gradients through NaN outputs are NaN on both sides, nothing to compare
    assert len(ours.input_grads) == len(theirs.input_grads)
    for a, b in zip(ours.input_grads, theirs.input_grads, strict=True):
        torch.testing.assert_close(a, b, **TOL)
    assert ours.param_grads.keys() == theirs.param_grads.keys()
    for name, grad in theirs.param_grads.items():
        assert grad is not None, name
        torch.testing.assert_close(ours.param_grads[name], grad, **TOL, msg=name)


def assert_parity(
    ours: nn.Module, theirs: nn.Module, inputs: tuple[Tensor, Tensor, Tensor], **kwargs: Any
) -> None:
    for call in CALLS:
        assert_same(
            forward_backward(ours, *inputs, **kwargs, **call),
            forward_backward(theirs, *inputs, **kwargs, **call),
        )


def generator(*parts: Any) -> torch.Generator:
    """A generator seeded from the test's parameters (crc32: stable between runs)."""
    return torch.Generator().manual_seed(zlib.crc32("/".join(map(str, parts)).encode()))


# ---------------------------------------------------------------------------------------
# 1. MultiheadAttention vs nn.MultiheadAttention
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize(
    "extras",
    [{}, {"bias": False, "add_bias_kv": True}, {"add_zero_attn": True}],
    ids=["plain", "no_bias+bias_kv", "zero_attn"],
)
@pytest.mark.parametrize("attention", ATTENTIONS)
@pytest.mark.parametrize("layout", LAYOUTS)
def test_mha_parity_configurations(layout, attention, extras, shape):
    """Every layout x attention kind x module option, with both a bool key padding mask and
    a bool (N*H, L, S) attn_mask; ours loads torch's state_dict for half the shapes, torch
    loads ours for the other half."""
    direction = ("ours->torch", "torch->ours")[SHAPES.index(shape) % 2]
    gen = generator(layout, attention, extras, direction, shape)
    s = for_attention(shape, attention)
    ours, theirs = make_pair(gen, direction, **module_kwargs(s, layout, attention, **extras))
    inputs = make_inputs(s, layout, attention, gen)
    masks = make_masks("kpm_bool+attn3d_bool", s, layout != "unbatched", gen)
    assert_parity(ours, theirs, inputs, **masks)


@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("variant", ["self", "kvdim+extra_keys"])
@pytest.mark.parametrize("layout", ["batch_first", "unbatched"])
@pytest.mark.parametrize("kind", MASK_KINDS)
def test_mha_parity_masks(kind, layout, variant, shape):
    """Every mask kind, in self-attention, and in cross-attention with kdim/vdim and the
    extra key columns of add_bias_kv and add_zero_attn (the masks are padded for them).
    Causal kinds go without the extra keys: see test_causal_with_extra_keys. Sequence-first
    inputs are transposed before any mask is used; test_mha_parity_configurations has them."""
    attention = variant.split("+")[0]
    extras = {}
    if variant.endswith("extra_keys") and not kind.startswith("causal"):
        extras = {"add_bias_kv": True, "add_zero_attn": True}
    gen = generator(kind, layout, attention, extras, shape)
    s = for_attention(shape, attention)
    ours, theirs = make_pair(gen, **module_kwargs(s, layout, attention, **extras))
    inputs = make_inputs(s, layout, attention, gen)
    assert_parity(ours, theirs, inputs, **make_masks(kind, s, layout != "unbatched", gen))


@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("kpm", [False, True], ids=["no_kpm", "kpm"])
@pytest.mark.parametrize("attention", ["self", "kvdim"])
@pytest.mark.parametrize("layout", LAYOUTS)
def test_is_causal_without_mask_equals_torch_with_causal_mask(layout, attention, kpm, shape):
    """Our extension: is_causal=True alone applies the top-left causal mask (torch raises)."""
    gen = generator(layout, attention, kpm, shape)
    s = for_attention(shape, attention)
    ours, theirs = make_pair(gen, **module_kwargs(s, layout, attention))
    inputs = make_inputs(s, layout, attention, gen)
    masks = make_masks("kpm_bool" if kpm else "none", s, layout != "unbatched", gen)
    for call in CALLS:
        assert_same(
            forward_backward(ours, *inputs, is_causal=True, **masks, **call),
            forward_backward(
                theirs,
                *inputs,
                is_causal=True,
                attn_mask=top_left_causal(s.L, s.S),
                **masks,
                **call,
            ),
        )
    with pytest.raises(RuntimeError):  # the reason for the extension
        theirs(*inputs, is_causal=True)


@pytest.mark.parametrize(
    "extras", [{"add_bias_kv": True}, {"add_zero_attn": True}], ids=["bias_kv", "zero_attn"]
)
def test_causal_with_extra_keys(extras):
    """With is_causal=True, no key padding mask and need_weights=False, torch hands
    is_causal to F.scaled_dot_product_attention instead of the padded mask, so its causal
    triangle also covers the appended bias/zero key (blocked for rows i < S), unlike its
    own need_weights=True path, which lets every row see it. Ours always does what torch's
    need_weights=True path does; compare against that."""
    s = SHAPES[0]
    gen = generator("causal_extra", extras)
    ours, theirs = make_pair(gen, **module_kwargs(s, "batch_first", "cross", **extras))
    inputs = make_inputs(s, "batch_first", "cross", gen)
    mask = top_left_causal(s.L, s.S)
    reference = forward_backward(theirs, *inputs, attn_mask=mask, is_causal=True, need_weights=True)
    for kwargs in ({"attn_mask": mask}, {}):
        out = forward_backward(ours, *inputs, is_causal=True, need_weights=False, **kwargs).out
        torch.testing.assert_close(out, reference.out, **TOL)


@pytest.mark.parametrize("layout", LAYOUTS)
def test_weights_shapes(layout):
    s = SHAPES[0]
    gen = generator("shapes", layout)
    ours, _ = make_pair(
        gen, **module_kwargs(s, layout, "cross", add_bias_kv=True, add_zero_attn=True)
    )
    q, k, v = make_inputs(s, layout, "cross", gen)
    lead = () if layout == "unbatched" else (s.N,)
    out, weights = ours(q, k, v)
    assert out.shape == q.shape
    assert weights.shape == (*lead, s.L, s.S + 2)
    assert ours(q, k, v, average_attn_weights=False)[1].shape == (*lead, s.H, s.L, s.S + 2)
    assert ours(q, k, v, need_weights=False)[1] is None
    torch.testing.assert_close(weights.sum(-1), torch.ones(*lead, s.L, dtype=DT), **TOL)


@pytest.mark.parametrize(
    "extras",
    [{}, {"kdim": 3, "vdim": 5}, {"bias": False, "add_bias_kv": True}],
    ids=["plain", "kvdim", "bias_kv"],
)
def test_same_seed_same_initialisation(extras):
    """Same constructor RNG draws in the same order as torch: equal initial state_dicts."""
    torch.manual_seed(7)
    ours = MultiheadAttention(8, 2, dtype=DT, **extras)
    torch.manual_seed(7)
    theirs = nn.MultiheadAttention(8, 2, dtype=DT, **extras)
    assert list(ours.state_dict()) == list(theirs.state_dict())
    for name, value in theirs.state_dict().items():
        torch.testing.assert_close(ours.state_dict()[name], value, rtol=0, atol=0, msg=name)


@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("attention", ["self", "memory"])
def test_eval_mode_no_grad(attention, shape):
    """Eval mode without autograd (where torch may take its native fast path)."""
    gen = generator("eval", attention, shape)
    s = for_attention(shape, attention)
    ours, theirs = make_pair(gen, **module_kwargs(s, "batch_first", attention))
    ours.eval()
    theirs.eval()
    inputs = make_inputs(s, "batch_first", attention, gen)
    kpm = make_masks("kpm_bool", s, True, gen)
    with torch.no_grad():
        for call in CALLS:
            (a, aw), (b, bw) = ours(*inputs, **kpm, **call), theirs(*inputs, **kpm, **call)
            torch.testing.assert_close(a, b, **TOL)
            assert (aw is None) == (bw is None)
            if bw is not None:
                torch.testing.assert_close(aw, bw, **TOL)


def test_fully_masked_rows_give_nan_where_torch_does():
    """A query row that may attend nowhere gives NaN in both (softmax over only -inf),
    in the same places. Only with need_weights=True: for need_weights=False torch calls
    F.scaled_dot_product_attention, which (torch 2.13) gives such rows zero weights;
    ours gives NaN there, and fast=True gives what torch gives."""
    s = SHAPES[0]
    gen = generator("nan")
    ours, theirs = make_pair(gen, **module_kwargs(s, "batch_first", "cross"))
    inputs = make_inputs(s, "batch_first", "cross", gen)
    attn_mask = blocked((s.L, s.S), gen)
    attn_mask[1] = True  # row 1 blocked everywhere
    kpm = torch.zeros(s.N, s.S, dtype=torch.bool)
    kpm[0] = True  # batch element 0 has no keys at all
    for call in CALLS[:2]:
        a = forward_backward(ours, *inputs, attn_mask=attn_mask, key_padding_mask=kpm, **call)
        b = forward_backward(theirs, *inputs, attn_mask=attn_mask, key_padding_mask=kpm, **call)
        assert_same(a, b, equal_nan=True)
        nan_rows = a.out.isnan().any(-1)  # (N, L)
        expected = torch.zeros(s.N, s.L, dtype=torch.bool)
        expected[0], expected[:, 1] = True, True
        assert torch.equal(nan_rows, expected)
    ours.fast = True
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        a, _ = ours(*inputs, attn_mask=attn_mask, key_padding_mask=kpm, need_weights=False)
        b, _ = theirs(*inputs, attn_mask=attn_mask, key_padding_mask=kpm, need_weights=False)
    torch.testing.assert_close(a, b, equal_nan=True, **TOL)


# ---------------------------------------------------------------------------------------
# 2. Dropout
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("kind", ["none", "kpm_float+attn3d_bool"])
@pytest.mark.parametrize("attention", ["self", "kvdim"])
@pytest.mark.parametrize("layout", LAYOUTS)
def test_dropout_same_seed_same_result(layout, attention, kind, shape):
    """Both drop the (N*H, L, S) softmax weights with one F.dropout call on a contiguous
    tensor in the same memory order, so the same seed drops the same weights: outputs,
    weights (returned after dropout) and gradients are equal. For need_weights=False torch
    calls F.scaled_dot_product_attention, which (torch 2.13, CPU) draws the same mask."""
    gen = generator("dropout", layout, attention, kind, shape)
    s = for_attention(shape, attention)
    ours, theirs = make_pair(gen, **module_kwargs(s, layout, attention, dropout=0.3))
    inputs = make_inputs(s, layout, attention, gen)
    masks = make_masks(kind, s, layout != "unbatched", gen)
    for fast, call in [(False, c) for c in CALLS] + [(True, CALLS[2])]:
        ours.fast = fast
        torch.manual_seed(11)
        a = forward_backward(ours, *inputs, **masks, **call)
        torch.manual_seed(11)
        assert_same(a, forward_backward(theirs, *inputs, **masks, **call))
    ours.fast = False
    # and the draws matter: another seed drops other weights
    torch.manual_seed(11)
    first = forward_backward(ours, *inputs, **masks).weights
    torch.manual_seed(12)
    assert not torch.equal(forward_backward(ours, *inputs, **masks).weights, first)


# ---------------------------------------------------------------------------------------
# 3. fast=True
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("layout", ["batch_first", "unbatched"])
@pytest.mark.parametrize("kind", MASK_KINDS)
def test_fast_equals_slow_and_torch(kind, layout, shape):
    gen = generator("fast", kind, layout, shape)
    kwargs = module_kwargs(shape, layout, "cross")
    slow, theirs = make_pair(gen, **kwargs)
    fast = MultiheadAttention(**kwargs, fast=True, dtype=DT)
    fast.load_state_dict(slow.state_dict())
    inputs = make_inputs(shape, layout, "cross", gen)
    masks = make_masks(kind, shape, layout != "unbatched", gen)
    a = forward_backward(fast, *inputs, **masks, need_weights=False)
    assert a.weights is None
    assert_same(a, forward_backward(slow, *inputs, **masks, need_weights=False))
    assert_same(a, forward_backward(theirs, *inputs, **masks, need_weights=False))
    for call in CALLS[:2]:  # weights wanted: the fast module still returns torch's
        assert_same(
            forward_backward(fast, *inputs, **masks, **call),
            forward_backward(theirs, *inputs, **masks, **call),
        )


@pytest.mark.parametrize("fast", [False, True], ids=["slow", "fast"])
@pytest.mark.parametrize("mask", ["key_padding_mask", "attn_mask"])
def test_masked_keys_do_not_matter(mask, fast):
    """Catches a forgotten inversion between the two bool conventions: with the last keys
    masked (True = blocked), changing the keys and values there changes nothing; changing
    an unmasked one changes the output (so the test is not vacuous)."""
    N, L, S, E, H = 3, 4, 6, 8, 2
    gen = generator("inversion", mask, fast)
    ours = MultiheadAttention(E, H, batch_first=True, fast=fast, dtype=DT)
    lengths = [6, 2, 4]
    if mask == "key_padding_mask":
        masks = {"key_padding_mask": padding_mask(lengths, S)}
    else:  # per batch element and head: (N*H, L, S), each head like its padding
        masks = {
            "attn_mask": padding_mask(lengths, S)
            .repeat_interleave(H, 0)[:, None, :]
            .expand(N * H, L, S)
        }
    q = torch.randn(N, L, E, generator=gen, dtype=DT)
    k = torch.randn(N, S, E, generator=gen, dtype=DT)
    v = torch.randn(N, S, E, generator=gen, dtype=DT)
    out, _ = ours(q, k, v, **masks, need_weights=False)
    k2, v2 = k.clone(), v.clone()
    for n, length in enumerate(lengths):
        k2[n, length:] = 100 * torch.randn(S - length, E, generator=gen, dtype=DT)
        v2[n, length:] = 100 * torch.randn(S - length, E, generator=gen, dtype=DT)
    torch.testing.assert_close(ours(q, k2, v2, **masks, need_weights=False)[0], out, **TOL)
    v2[:, 0] += 1.0  # key 0 is real in every sequence
    assert (ours(q, k2, v2, **masks, need_weights=False)[0] - out).abs().amin(-1).gt(1e-6).all()


# ---------------------------------------------------------------------------------------
# 4. scaled_dot_product_attention vs F.scaled_dot_product_attention
# ---------------------------------------------------------------------------------------

SDPA_MASKS = ("none", "bool2d", "bool4d", "float2d", "float4d", "causal")


def sdpa_inputs(s: Shape, gen: torch.Generator) -> tuple[Tensor, Tensor, Tensor]:
    """(N, H, L, E/H) queries and keys, (N, H, S, vdim) values: Ev need not equal E."""
    D = s.E // s.H
    return (
        torch.randn(s.N, s.H, s.L, D, generator=gen, dtype=DT),
        torch.randn(s.N, s.H, s.S, D, generator=gen, dtype=DT),
        torch.randn(s.N, s.H, s.S, s.vdim, generator=gen, dtype=DT),
    )


def sdpa_kwargs(kind: str, s: Shape, gen: torch.Generator) -> dict[str, Any]:
    """F.scaled_dot_product_attention's convention: bool True = may attend."""
    full = (s.N, s.H, s.L, s.S)
    return {
        "none": {},
        "bool2d": {"attn_mask": ~blocked((s.L, s.S), gen)},
        "bool4d": {"attn_mask": ~blocked(full, gen)},
        "float2d": {"attn_mask": additive((s.L, s.S), gen)},
        "float4d": {"attn_mask": additive(full, gen)},
        "causal": {"is_causal": True},
    }[kind]


def sdpa_forward_backward(fn, q: Tensor, k: Tensor, v: Tensor, **kwargs: Any):
    q, k, v = (x.detach().clone().requires_grad_() for x in (q, k, v))
    out = fn(q, k, v, **kwargs)
    (out * upstream(out)).sum().backward()
    return out.detach(), [q.grad, k.grad, v.grad]


@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("scale", [None, 0.37])
@pytest.mark.parametrize("kind", SDPA_MASKS)
def test_sdpa_matches_torch(kind, scale, shape):
    """Outputs and the gradients of q, k, v; is_causal with L != S in some shapes (both
    align the triangle top-left)."""
    gen = generator("sdpa", kind, scale, shape)
    inputs = sdpa_inputs(shape, gen)
    kwargs = {**sdpa_kwargs(kind, shape, gen), "scale": scale, "dropout_p": 0.0}
    out, grads = sdpa_forward_backward(scaled_dot_product_attention, *inputs, **kwargs)
    ref, ref_grads = sdpa_forward_backward(F.scaled_dot_product_attention, *inputs, **kwargs)
    assert out.shape == (shape.N, shape.H, shape.L, shape.vdim)
    torch.testing.assert_close(out, ref, **TOL)
    for a, b in zip(grads, ref_grads, strict=True):
        torch.testing.assert_close(a, b, **TOL)


@pytest.mark.parametrize("L, S", [(3, 5), (5, 3), (4, 4)])
def test_sdpa_causal_is_top_left(L, S):
    """is_causal: weights are zero exactly where j > i, whichever of L, S is larger."""
    s = dataclasses.replace(SHAPES[0], L=L, S=S)
    q, k, v = sdpa_inputs(s, generator("causal", L, S))
    out, weights = scaled_dot_product_attention(q, k, v, is_causal=True, return_weights=True)
    above = torch.ones(L, S, dtype=torch.bool).triu(1)
    assert torch.equal(weights == 0, above.expand_as(weights))
    torch.testing.assert_close(out, F.scaled_dot_product_attention(q, k, v, is_causal=True), **TOL)
    # and equal to passing the top-left mask (True = may attend) explicitly
    torch.testing.assert_close(out, scaled_dot_product_attention(q, k, v, attn_mask=~above), **TOL)


@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("kind", SDPA_MASKS)
def test_sdpa_returned_weights(kind, shape):
    """Rows sum to 1, blocked positions weigh 0, and output = weights @ value."""
    gen = generator("sdpa_weights", kind, shape)
    q, k, v = sdpa_inputs(shape, gen)
    kwargs = sdpa_kwargs(kind, shape, gen)
    out, weights = scaled_dot_product_attention(q, k, v, **kwargs, return_weights=True)
    assert weights.shape == (shape.N, shape.H, shape.L, shape.S)
    torch.testing.assert_close(weights.sum(-1), torch.ones(weights.shape[:-1], dtype=DT), **TOL)
    torch.testing.assert_close(out, weights @ v, **TOL)
    torch.testing.assert_close(out, scaled_dot_product_attention(q, k, v, **kwargs), **TOL)
    mask = kwargs.get("attn_mask")
    if mask is not None:
        allowed = mask if mask.dtype == torch.bool else mask > -math.inf
        assert (weights[~allowed.expand_as(weights)] == 0).all()
        assert (weights[allowed.expand_as(weights)] > 0).all()


def test_sdpa_dropout_keeps_expectation():
    """dropout_p > 0 zeroes some weights and scales the rest by 1 / (1 - p)."""
    q, k, v = sdpa_inputs(SHAPES[0], generator("sdpa_dropout"))
    _, weights = scaled_dot_product_attention(q, k, v, return_weights=True)
    torch.manual_seed(3)
    _, dropped = scaled_dot_product_attention(q, k, v, dropout_p=0.25, return_weights=True)
    kept = dropped != 0
    assert 0 < kept.sum() < kept.numel()
    torch.testing.assert_close(dropped[kept], weights[kept] / 0.75, **TOL)


def test_sdpa_errors_name_the_argument():
    q, k, v = sdpa_inputs(SHAPES[0], generator("sdpa_errors"))
    with pytest.raises(ValueError, match=r"^attn_mask:"):
        scaled_dot_product_attention(
            q, k, v, attn_mask=torch.ones(3, 5, dtype=torch.bool), is_causal=True
        )
    with pytest.raises(ValueError, match=r"^key:"):
        scaled_dot_product_attention(q, k[..., :-1], v)
    with pytest.raises(ValueError, match=r"^value:"):
        scaled_dot_product_attention(q, k, v[..., :-1, :])


# ---------------------------------------------------------------------------------------
# 5. causal_mask and padding_mask
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("size", [1, 2, 5, 9])
def test_causal_mask_equals_torch(size):
    mask = causal_mask(size)
    assert mask.dtype == torch.bool
    assert torch.equal(mask, nn.Transformer.generate_square_subsequent_mask(size) == -math.inf)


@pytest.mark.parametrize("size", [0, -1])
def test_causal_mask_rejects_bad_sizes(size):
    with pytest.raises(ValueError, match=r"^size:"):
        causal_mask(size)


@pytest.mark.parametrize("max_len", [None, 7])
def test_padding_mask(max_len):
    lengths = [3, 1, 5, 0]
    mask = padding_mask(lengths, max_len)
    T = 5 if max_len is None else max_len
    assert mask.dtype == torch.bool
    assert mask.shape == (4, T)
    for n, length in enumerate(lengths):
        assert mask[n].tolist() == [t >= length for t in range(T)]  # True = padding
    assert torch.equal(padding_mask(torch.tensor(lengths), max_len), mask)
    assert torch.equal((~mask).sum(1), torch.tensor(lengths))


@pytest.mark.parametrize(
    "lengths, max_len",
    [([2, -1], 4), ([2, 5], 4), ([[1, 2]], 4), ([1.0, 2.0], 4)],
    ids=["negative", "too_long", "2d", "float"],
)
def test_padding_mask_rejects_bad_lengths(lengths, max_len):
    with pytest.raises(ValueError, match=r"^lengths:"):
        padding_mask(lengths, max_len)


# ---------------------------------------------------------------------------------------
# 6. Errors that name the argument
# ---------------------------------------------------------------------------------------


def test_embed_dim_not_divisible_by_num_heads():
    with pytest.raises(ValueError, match=r"^embed_dim:"):
        MultiheadAttention(10, 3)


@pytest.mark.parametrize("layout", LAYOUTS)
def test_forward_errors_name_the_argument(layout):
    s = SHAPES[0]
    gen = generator("errors", layout)
    batched = layout != "unbatched"
    ours, _ = make_pair(gen, **module_kwargs(s, layout, "cross"))
    q, k, v = make_inputs(s, layout, "cross", gen)
    lead = (s.N * s.H,) if batched else (s.H,)
    seq_dim = 1 if layout == "batch_first" else 0
    with pytest.raises(ValueError, match=r"^query:"):
        ours(q[..., :-1], k, v)
    with pytest.raises(ValueError, match=r"^key:"):
        ours(q, k[..., :-1], v)
    with pytest.raises(ValueError, match=r"^value:"):  # S differs between key and value
        ours(q, k, v.narrow(seq_dim, 0, s.S - 1))
    for bad in (
        torch.zeros(s.L, s.S + 1, dtype=torch.bool),
        torch.zeros(s.L + 1, s.S, dtype=torch.bool),
        torch.zeros(*lead[:-1], s.H + 1, s.L, s.S, dtype=torch.bool),
        torch.zeros(1, *lead, s.L, s.S, dtype=torch.bool),
        torch.zeros(s.S, dtype=torch.bool),
    ):
        with pytest.raises(ValueError, match=r"^attn_mask:"):
            ours(q, k, v, attn_mask=bad)
    kpm_shape = (s.N, s.S) if batched else (s.S,)
    for bad in (
        torch.zeros(*kpm_shape[:-1], s.S + 1, dtype=torch.bool),
        torch.zeros(1, *kpm_shape, dtype=torch.bool),
        *([torch.zeros(s.N + 1, s.S, dtype=torch.bool)] if batched else []),
    ):
        with pytest.raises(ValueError, match=r"^key_padding_mask:"):
            ours(q, k, v, key_padding_mask=bad)


@pytest.mark.parametrize("name", ["attn_mask", "key_padding_mask"])
def test_integer_masks_are_rejected_naming_the_argument(name):
    """Masks are bool or float; an integer mask is a TypeError naming the argument (torch:
    AssertionError). Before the fix the key_padding_mask one named attn_mask."""
    s = SHAPES[0]
    ours, _ = make_pair(generator("int_mask"), **module_kwargs(s, "batch_first", "cross"))
    q, k, v = make_inputs(s, "batch_first", "cross", generator("int_mask"))
    shape = {"attn_mask": (s.L, s.S), "key_padding_mask": (s.N, s.S)}[name]
    with pytest.raises(TypeError, match=rf"^{name}:"):
        ours(q, k, v, **{name: torch.zeros(shape, dtype=torch.long)})


# ---------------------------------------------------------------------------------------
# 7. Trained weights
# ---------------------------------------------------------------------------------------


def test_load_trained_torch_weights_and_train_in_lockstep():
    """A torch module trained a few SGD steps (weights far from init) loads into ours with
    equal outputs and weights; then both train on together with equal parameters."""
    torch.manual_seed(0)
    N, L, S, E, H = 3, 4, 5, 8, 2
    gen = generator("train")
    kwargs = {"embed_dim": E, "num_heads": H, "batch_first": True, "add_bias_kv": True}
    theirs = nn.MultiheadAttention(**kwargs, dtype=DT)
    init = {k: v.clone() for k, v in theirs.state_dict().items()}
    q = torch.randn(N, L, E, generator=gen, dtype=DT)
    kv = torch.randn(N, S, E, generator=gen, dtype=DT)
    target = torch.randn(N, L, E, generator=gen, dtype=DT)
    kpm = padding_mask([5, 3, 4], S)

    def step(module: nn.Module, opt: torch.optim.Optimizer) -> None:
        opt.zero_grad()
        out, _ = module(q, kv, kv, key_padding_mask=kpm, attn_mask=top_left_causal(L, S))
        F.mse_loss(out, target).backward()
        opt.step()

    opt_theirs = torch.optim.SGD(theirs.parameters(), lr=0.5)
    for _ in range(5):
        step(theirs, opt_theirs)
    for name, value in theirs.state_dict().items():  # every tensor moved off its init
        assert (value - init[name]).abs().max() > 1e-3, name

    ours = MultiheadAttention(**kwargs, dtype=DT)
    ours.load_state_dict(theirs.state_dict(), strict=True)
    with torch.no_grad():
        (a, aw), (b, bw) = (
            ours(q, kv, kv, key_padding_mask=kpm),
            theirs(q, kv, kv, key_padding_mask=kpm),
        )
    torch.testing.assert_close(a, b, **TOL)
    torch.testing.assert_close(aw, bw, **TOL)

    opt_ours = torch.optim.SGD(ours.parameters(), lr=0.5)
    for _ in range(5):
        step(ours, opt_ours)
        step(theirs, opt_theirs)
        for name, value in theirs.state_dict().items():
            torch.testing.assert_close(ours.state_dict()[name], value, **TOL, msg=name)
