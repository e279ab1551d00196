"""Parity of torchkata.transformer.layers with torch.nn's Transformer modules (STYLE.md rule 9).

Each comparison builds our module and its torch twin with the same arguments, gives ours
random parameters (not the default init, whose unit norm weights and zero biases could hide
a swapped norm or a missing bias), loads them into torch's with ``strict=True``, and runs
both on the same inputs and upstream gradient: outputs, gradients with respect to every
input and every parameter are compared, in eval mode (built with dropout 0.1, which eval
switches off) and in train mode (built with dropout 0; there on the no-mask and the
richest mask scenario only, for time). Configurations: norm_first, activation relu/gelu,
bias, batch_first (16 combinations per class), each with its own seeded draw of N, S, T,
d_model and nhead; masks: none, causal (bool from ``causal_mask`` and float from
``generate_square_subsequent_mask``), bool key padding on src/tgt/memory, a memory mask,
and the ``is_causal`` flags. Where dropout is applied is checked by swapping each dropout
module for a distinct scaling on both sides (random masks differ, see that test).

Tolerance: float64, ``rtol=1e-9, atol=1e-10`` (the two sides sum in different orders).

torch quirks met here:

- ``nn.TransformerEncoder`` in eval mode without gradients may convert a padded batch to a
  nested tensor and return zeros at padded positions; parity tests build it with
  ``enable_nested_tensor=False`` (they need gradients anyway, which also turn the fast
  path off), and :func:`test_default_torch_encoder_fast_path_agrees_on_real_positions`
  compares a default one on real positions only.
- torch's ``is_causal`` flags are hints that need the mask (torch raises without one); ours
  build the causal mask when none is given, so torch gets the mask where ours gets none.
- torch raises ``RuntimeError`` for bad input shapes in ``Transformer.forward`` and for a
  bad activation string; ours raise ``ValueError``.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Callable
from typing import Any

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from torchkata.transformer.attention import causal_mask, padding_mask
from torchkata.transformer.layers import (
    Transformer,
    TransformerDecoder,
    TransformerDecoderLayer,
    TransformerEncoder,
    TransformerEncoderLayer,
)

pytestmark = [
    # torch's own construction and mask warnings, not ours: nested tensors are unavailable
    # for some configurations (norm_first, odd nhead, ...), and a float attention mask
    # with a bool key padding mask is "deprecated" in torch but defined (both are added).
    pytest.mark.filterwarnings("ignore:enable_nested_tensor is True:UserWarning"),
    pytest.mark.filterwarnings("ignore:Support for mismatched:UserWarning"),
]

DTYPE = torch.float64
TOL = {"rtol": 1e-9, "atol": 1e-10}
DIM_FF = 24
NUM_LAYERS = 2


# ---------------------------------------------------------------------------------------
# Configurations and helpers
# ---------------------------------------------------------------------------------------


def _cases() -> list:
    """16 configurations, each with its own seeded draw of sizes."""
    cases = []
    for i, (norm_first, activation, bias, batch_first) in enumerate(
        itertools.product([False, True], ["relu", "gelu"], [True, False], [False, True])
    ):
        rng = random.Random(1000 + i)
        nhead = rng.choice([1, 2, 3, 4])
        sizes = {
            "N": rng.randint(1, 3),
            "S": rng.randint(2, 6),
            "T": rng.randint(2, 6),
            "E": nhead * rng.choice([2, 3, 4]),
            "H": nhead,
        }
        cfg = {
            "norm_first": norm_first,
            "activation": activation,
            "bias": bias,
            "batch_first": batch_first,
        }
        name = (
            f"{'pre' if norm_first else 'post'}-{activation}-{'bias' if bias else 'nobias'}-"
            f"{'bf' if batch_first else 'sf'}-N{sizes['N']}S{sizes['S']}T{sizes['T']}"
            f"E{sizes['E']}H{sizes['H']}"
        )
        cases.append(pytest.param(cfg, sizes, i, id=name))
    return cases


CASES = _cases()


def layer_kwargs(cfg: dict[str, Any], dropout: float) -> dict[str, Any]:
    return {"dim_feedforward": DIM_FF, "dropout": dropout, "dtype": DTYPE, **cfg}


def randomize_(module: nn.Module, gen: torch.Generator) -> nn.Module:
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(0.5 * torch.randn(p.shape, generator=gen, dtype=p.dtype))
    return module


def sequence(length: int, sizes: dict[str, int], batch_first: bool, gen: torch.Generator):
    shape = (sizes["N"], length, sizes["E"]) if batch_first else (length, sizes["N"], sizes["E"])
    return torch.randn(shape, generator=gen, dtype=DTYPE)


def lengths(n: int, max_len: int, gen: torch.Generator) -> list[int]:
    """Lengths in [1, max_len] (no all-padding row, which gives NaN on both sides)."""
    return torch.randint(1, max_len + 1, (n,), generator=gen).tolist()


def float_causal(size: int) -> Tensor:
    return Transformer.generate_square_subsequent_mask(size, dtype=DTYPE)


def random_cross_mask(T: int, S: int, gen: torch.Generator) -> Tensor:
    """A bool (T, S) mask, True = blocked, never blocking memory position 0."""
    mask = torch.rand(T, S, generator=gen) < 0.3
    mask[:, 0] = False
    return mask


def assert_close(actual: Tensor, expected: Tensor, what: str) -> None:
    """``torch.testing.assert_close`` with TOL; ``torch.allclose`` first, as it is ~50x faster
    and this suite makes thousands of comparisons (same criterion, same dtype check)."""
    if not (
        actual.shape == expected.shape
        and actual.dtype == expected.dtype
        and torch.allclose(actual, expected, **TOL)
    ):
        torch.testing.assert_close(actual, expected, **TOL, msg=lambda m: f"{what}: {m}")


def assert_twins(
    ours: nn.Module,
    theirs: nn.Module,
    inputs: dict[str, Tensor],
    ours_kwargs: dict[str, Any],
    theirs_kwargs: dict[str, Any],
    gen: torch.Generator,
    label: str,
) -> None:
    """One forward/backward of both; compare output, input gradients, parameter gradients."""
    xa = {k: v.detach().clone().requires_grad_() for k, v in inputs.items()}
    xb = {k: v.detach().clone().requires_grad_() for k, v in inputs.items()}
    ya = ours(*xa.values(), **ours_kwargs)
    yb = theirs(*xb.values(), **theirs_kwargs)
    assert_close(ya, yb, f"{label}: output")
    dy = torch.randn(ya.shape, generator=gen, dtype=ya.dtype)
    ours_params = dict(ours.named_parameters())
    theirs_params = dict(theirs.named_parameters())
    assert ours_params.keys() == theirs_params.keys()
    grads_a = torch.autograd.grad(ya, [*xa.values(), *ours_params.values()], dy)
    grads_b = torch.autograd.grad(yb, [*xb.values(), *(theirs_params[n] for n in ours_params)], dy)
    for name, ga, gb in zip([*xa, *ours_params], grads_a, grads_b, strict=True):
        assert_close(ga, gb, f"{label}: grad {name}")


Scenario = tuple[str, dict[str, Any], dict[str, Any]]


def run_scenarios(
    make_pair: Callable[[float], tuple[nn.Module, nn.Module]],
    inputs: dict[str, Tensor],
    scenarios: list[Scenario],
    gen: torch.Generator,
) -> None:
    """Every scenario in eval mode (built with dropout 0.1, which eval switches off); in
    train mode (built with dropout 0) the first (no masks) and the last, which combines the
    most masks and flags: the code paths are the same in both modes, and time is short."""
    for mode, dropout, subset in (
        ("eval", 0.1, scenarios),
        ("train", 0.0, [scenarios[0], scenarios[-1]]),
    ):
        ours, theirs = make_pair(dropout)
        ours.train(mode == "train")
        theirs.train(mode == "train")
        for name, ours_kwargs, theirs_kwargs in subset:
            assert_twins(ours, theirs, inputs, ours_kwargs, theirs_kwargs, gen, f"{mode}/{name}")


def twin(ours: nn.Module, theirs: nn.Module, gen: torch.Generator) -> tuple[nn.Module, nn.Module]:
    randomize_(ours, gen)
    theirs.load_state_dict(ours.state_dict())  # strict
    return ours, theirs


def self_attention_scenarios(
    L: int, N: int, gen: torch.Generator, mask_name: str, pad_name: str, flag: str
) -> list[Scenario]:
    """Mask scenarios of one self-attention (encoder's src, decoder's tgt)."""
    pad = padding_mask(lengths(N, L, gen), L)
    bool_causal, float_c = causal_mask(L), float_causal(L)
    return [
        ("no masks", {}, {}),
        ("causal bool", {mask_name: bool_causal}, {mask_name: bool_causal}),
        ("causal float", {mask_name: float_c}, {mask_name: float_c}),
        ("padding", {pad_name: pad}, {pad_name: pad}),
        (
            "causal bool + padding",
            {mask_name: bool_causal, pad_name: pad},
            {mask_name: bool_causal, pad_name: pad},
        ),
        (
            "causal float + padding",
            {mask_name: float_c, pad_name: pad},
            {mask_name: float_c, pad_name: pad},
        ),
        (
            "is_causal with mask",
            {mask_name: bool_causal, flag: True},
            {mask_name: bool_causal, flag: True},
        ),
        # torch's flag is a hint that needs the mask; ours builds it
        ("is_causal without mask", {flag: True}, {mask_name: bool_causal, flag: True}),
        (
            "is_causal without mask + padding",
            {flag: True, pad_name: pad},
            {mask_name: float_c, flag: True, pad_name: pad},
        ),
    ]


def cross_attention_scenarios(
    sizes: dict[str, int], gen: torch.Generator, tgt_mask_name: str, tgt_flag: str
) -> list[Scenario]:
    """Scenarios of the decoder's attention to the memory."""
    N, S, T = sizes["N"], sizes["S"], sizes["T"]
    mem_pad = padding_mask(lengths(N, S, gen), S)
    tgt_pad = padding_mask(lengths(N, T, gen), T)
    cross = random_cross_mask(T, S, gen)
    top_left = causal_mask(max(T, S))[:T, :S]
    everything = {
        tgt_mask_name: causal_mask(T),
        "memory_mask": cross,
        "tgt_key_padding_mask": tgt_pad,
        "memory_key_padding_mask": mem_pad,
    }
    return [
        (
            "memory padding",
            {"memory_key_padding_mask": mem_pad},
            {"memory_key_padding_mask": mem_pad},
        ),
        ("memory mask", {"memory_mask": cross}, {"memory_mask": cross}),
        ("all masks", everything, everything),
        (
            "memory_is_causal without mask",
            {"memory_is_causal": True},
            {"memory_mask": top_left, "memory_is_causal": True},
        ),
        (
            "both flags + paddings",
            {tgt_flag: True, "memory_is_causal": True, "memory_key_padding_mask": mem_pad},
            {
                tgt_mask_name: causal_mask(T),
                tgt_flag: True,
                "memory_mask": top_left,
                "memory_is_causal": True,
                "memory_key_padding_mask": mem_pad,
            },
        ),
    ]


# The stacks hand their masks to every layer, whose handling of each mask the layer tests
# cover one by one; the stacks and the Transformer get the combined scenarios (time).
STACK_SCENARIOS = {
    "no masks",
    "causal bool + padding",
    "causal float + padding",
    "is_causal without mask + padding",
    "all masks",
    "both flags + paddings",
}


def for_stacks(scenarios: list[Scenario]) -> list[Scenario]:
    return [sc for sc in scenarios if sc[0] in STACK_SCENARIOS]


# ---------------------------------------------------------------------------------------
# Parity, one test per class and configuration
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(("cfg", "sizes", "seed"), CASES)
def test_encoder_layer_matches_torch(cfg, sizes, seed):
    gen = torch.Generator().manual_seed(seed)
    E, H = sizes["E"], sizes["H"]

    def make_pair(dropout):
        kw = layer_kwargs(cfg, dropout)
        return twin(
            TransformerEncoderLayer(E, H, **kw), nn.TransformerEncoderLayer(E, H, **kw), gen
        )

    inputs = {"src": sequence(sizes["S"], sizes, cfg["batch_first"], gen)}
    scenarios = self_attention_scenarios(
        sizes["S"], sizes["N"], gen, "src_mask", "src_key_padding_mask", "is_causal"
    )
    run_scenarios(make_pair, inputs, scenarios, gen)


@pytest.mark.parametrize(("cfg", "sizes", "seed"), CASES)
def test_decoder_layer_matches_torch(cfg, sizes, seed):
    gen = torch.Generator().manual_seed(seed)
    E, H = sizes["E"], sizes["H"]

    def make_pair(dropout):
        kw = layer_kwargs(cfg, dropout)
        return twin(
            TransformerDecoderLayer(E, H, **kw), nn.TransformerDecoderLayer(E, H, **kw), gen
        )

    inputs = {
        "tgt": sequence(sizes["T"], sizes, cfg["batch_first"], gen),
        "memory": sequence(sizes["S"], sizes, cfg["batch_first"], gen),
    }
    scenarios = self_attention_scenarios(
        sizes["T"], sizes["N"], gen, "tgt_mask", "tgt_key_padding_mask", "tgt_is_causal"
    ) + cross_attention_scenarios(sizes, gen, "tgt_mask", "tgt_is_causal")
    run_scenarios(make_pair, inputs, scenarios, gen)


@pytest.mark.parametrize(("cfg", "sizes", "seed"), CASES)
def test_encoder_matches_torch(cfg, sizes, seed):
    gen = torch.Generator().manual_seed(seed)
    E, H, bias = sizes["E"], sizes["H"], cfg["bias"]

    def make_pair(dropout):
        kw = layer_kwargs(cfg, dropout)
        ours = TransformerEncoder(
            TransformerEncoderLayer(E, H, **kw), NUM_LAYERS, nn.LayerNorm(E, bias=bias, dtype=DTYPE)
        )
        theirs = nn.TransformerEncoder(
            nn.TransformerEncoderLayer(E, H, **kw),
            NUM_LAYERS,
            nn.LayerNorm(E, bias=bias, dtype=DTYPE),
            enable_nested_tensor=False,  # torch's zeros at padded positions; see module doc
        )
        return twin(ours, theirs, gen)

    inputs = {"src": sequence(sizes["S"], sizes, cfg["batch_first"], gen)}
    scenarios = self_attention_scenarios(
        sizes["S"], sizes["N"], gen, "mask", "src_key_padding_mask", "is_causal"
    )
    run_scenarios(make_pair, inputs, for_stacks(scenarios), gen)


@pytest.mark.parametrize(("cfg", "sizes", "seed"), CASES)
def test_decoder_matches_torch(cfg, sizes, seed):
    gen = torch.Generator().manual_seed(seed)
    E, H, bias = sizes["E"], sizes["H"], cfg["bias"]

    def make_pair(dropout):
        kw = layer_kwargs(cfg, dropout)
        ours = TransformerDecoder(
            TransformerDecoderLayer(E, H, **kw), NUM_LAYERS, nn.LayerNorm(E, bias=bias, dtype=DTYPE)
        )
        theirs = nn.TransformerDecoder(
            nn.TransformerDecoderLayer(E, H, **kw),
            NUM_LAYERS,
            nn.LayerNorm(E, bias=bias, dtype=DTYPE),
        )
        return twin(ours, theirs, gen)

    inputs = {
        "tgt": sequence(sizes["T"], sizes, cfg["batch_first"], gen),
        "memory": sequence(sizes["S"], sizes, cfg["batch_first"], gen),
    }
    scenarios = self_attention_scenarios(
        sizes["T"], sizes["N"], gen, "tgt_mask", "tgt_key_padding_mask", "tgt_is_causal"
    ) + cross_attention_scenarios(sizes, gen, "tgt_mask", "tgt_is_causal")
    run_scenarios(make_pair, inputs, for_stacks(scenarios), gen)


def transformer_pair(cfg, sizes, dropout, gen) -> tuple[nn.Module, nn.Module]:
    kw = {
        "d_model": sizes["E"],
        "nhead": sizes["H"],
        "num_encoder_layers": NUM_LAYERS,
        "num_decoder_layers": NUM_LAYERS,
        **layer_kwargs(cfg, dropout),
    }
    return twin(Transformer(**kw), nn.Transformer(**kw), gen)


@pytest.mark.parametrize(("cfg", "sizes", "seed"), CASES)
def test_transformer_matches_torch(cfg, sizes, seed):
    gen = torch.Generator().manual_seed(seed)
    N, S, T = sizes["N"], sizes["S"], sizes["T"]
    inputs = {
        "src": sequence(S, sizes, cfg["batch_first"], gen),
        "tgt": sequence(T, sizes, cfg["batch_first"], gen),
    }
    src_pad = padding_mask(lengths(N, S, gen), S)
    tgt_pad = padding_mask(lengths(N, T, gen), T)
    pads = {
        "src_key_padding_mask": src_pad,
        "tgt_key_padding_mask": tgt_pad,
        "memory_key_padding_mask": src_pad,
    }
    cross = random_cross_mask(T, S, gen)
    scenarios: list[Scenario] = [
        ("no masks", {}, {}),
        (
            "tgt causal bool + paddings",
            {"tgt_mask": causal_mask(T), **pads},
            {"tgt_mask": causal_mask(T), **pads},
        ),
        (
            "tgt causal float + paddings + memory mask",
            {"tgt_mask": float_causal(T), "memory_mask": cross, **pads},
            {"tgt_mask": float_causal(T), "memory_mask": cross, **pads},
        ),
        (
            "is_causal flags without masks",
            {"src_is_causal": True, "tgt_is_causal": True, **pads},
            {
                "src_mask": causal_mask(S),
                "src_is_causal": True,
                "tgt_mask": causal_mask(T),
                "tgt_is_causal": True,
                **pads,
            },
        ),
    ]
    run_scenarios(lambda p: transformer_pair(cfg, sizes, p, gen), inputs, scenarios, gen)


def test_unbatched_inputs_match_torch():
    gen = torch.Generator().manual_seed(5)
    cfg = {"norm_first": True, "activation": "gelu", "bias": True, "batch_first": False}
    sizes = {"N": 1, "S": 5, "T": 4, "E": 12, "H": 3}
    src = torch.randn(5, 12, generator=gen, dtype=DTYPE)  # (S, E)
    tgt = torch.randn(4, 12, generator=gen, dtype=DTYPE)  # (T, E)
    pad = torch.tensor([False, False, False, True, True])  # (S,)
    scenarios: list[Scenario] = [
        ("no masks", {}, {}),
        (
            "causal + padding",
            {"tgt_is_causal": True, "src_key_padding_mask": pad, "memory_key_padding_mask": pad},
            {
                "tgt_mask": causal_mask(4),
                "tgt_is_causal": True,
                "src_key_padding_mask": pad,
                "memory_key_padding_mask": pad,
            },
        ),
    ]
    run_scenarios(
        lambda p: transformer_pair(cfg, sizes, p, gen), {"src": src, "tgt": tgt}, scenarios, gen
    )


@pytest.mark.parametrize("activation", [F.silu, nn.GELU(approximate="tanh")], ids=["fn", "module"])
def test_callable_activation_matches_torch(activation):
    gen = torch.Generator().manual_seed(11)
    kw = {"dim_feedforward": DIM_FF, "dropout": 0.0, "activation": activation, "dtype": DTYPE}
    ours, theirs = twin(
        TransformerDecoderLayer(8, 2, **kw), nn.TransformerDecoderLayer(8, 2, **kw), gen
    )
    inputs = {
        "tgt": torch.randn(4, 2, 8, generator=gen, dtype=DTYPE),
        "memory": torch.randn(3, 2, 8, generator=gen, dtype=DTYPE),
    }
    assert_twins(ours, theirs, inputs, {}, {}, gen, "callable activation")


# ---------------------------------------------------------------------------------------
# torch's encoder fast path, state dicts, initialisation
# ---------------------------------------------------------------------------------------


@pytest.mark.filterwarnings("ignore:The PyTorch API of nested tensors:UserWarning")
def test_default_torch_encoder_fast_path_agrees_on_real_positions():
    """torch's default encoder, eval + no_grad + padding: nested tensors, zeros at padding."""
    gen = torch.Generator().manual_seed(3)
    # the fast path's conditions: batch_first, post-norm, bias, relu/gelu, even nhead
    kw = {"dim_feedforward": DIM_FF, "batch_first": True, "dtype": DTYPE}
    ours = TransformerEncoder(TransformerEncoderLayer(8, 2, **kw), NUM_LAYERS)
    theirs = nn.TransformerEncoder(nn.TransformerEncoderLayer(8, 2, **kw), NUM_LAYERS)
    assert theirs.use_nested_tensor
    twin(ours, theirs, gen)
    ours.eval()
    theirs.eval()
    src = torch.randn(3, 6, 8, generator=gen, dtype=DTYPE)
    pad = padding_mask([6, 2, 4], 6)  # left-aligned, as the fast path requires
    with torch.no_grad():
        ya = ours(src, src_key_padding_mask=pad)
        yb = theirs(src, src_key_padding_mask=pad)
    real = ~pad
    assert_close(ya[real], yb[real], "real positions")
    assert torch.all(yb[pad] == 0)  # the quirk: torch's padded positions are zeros
    assert torch.all(ya[pad] != 0)  # ours are computed like real ones (and ignored as keys)


@pytest.mark.parametrize(
    ("ours_factory", "theirs_factory"),
    [
        (
            lambda: TransformerEncoderLayer(8, 2, 16, norm_first=True, bias=False),
            lambda: nn.TransformerEncoderLayer(8, 2, 16, norm_first=True, bias=False),
        ),
        (lambda: TransformerDecoderLayer(8, 2, 16), lambda: nn.TransformerDecoderLayer(8, 2, 16)),
        (
            lambda: TransformerEncoder(TransformerEncoderLayer(8, 2, 16), 3, nn.LayerNorm(8)),
            lambda: nn.TransformerEncoder(
                nn.TransformerEncoderLayer(8, 2, 16), 3, nn.LayerNorm(8), enable_nested_tensor=False
            ),
        ),
        (
            lambda: TransformerDecoder(TransformerDecoderLayer(8, 2, 16), 3),
            lambda: nn.TransformerDecoder(nn.TransformerDecoderLayer(8, 2, 16), 3),
        ),
        (
            lambda: Transformer(8, 2, 2, 3, 16, bias=False),
            lambda: nn.Transformer(8, 2, 2, 3, 16, bias=False),
        ),
    ],
    ids=["encoder_layer", "decoder_layer", "encoder", "decoder", "transformer"],
)
def test_state_dict_loads_both_ways(ours_factory, theirs_factory):
    ours, theirs = ours_factory(), theirs_factory()
    assert {k: v.shape for k, v in ours.state_dict().items()} == {
        k: v.shape for k, v in theirs.state_dict().items()
    }
    # torch -> ours, then ours (perturbed) -> torch; strict both times
    assert not ours.load_state_dict(theirs.state_dict()).missing_keys
    for k, v in ours.state_dict().items():
        assert torch.equal(v, theirs.state_dict()[k]), k
    randomize_(ours, torch.Generator().manual_seed(0))
    theirs.load_state_dict(ours.state_dict())
    for k, v in theirs.state_dict().items():
        assert torch.equal(v, ours.state_dict()[k]), k


def test_default_transformer_has_torchs_parameters():
    """Claim 9.1: ``Transformer()`` has nn.Transformer()'s 44,140,544 parameters, key for key."""
    ours, theirs = Transformer(), nn.Transformer()  # float32, the defaults
    ours_sd, theirs_sd = ours.state_dict(), theirs.state_dict()
    assert list(ours_sd) == list(theirs_sd)
    assert all(ours_sd[k].shape == theirs_sd[k].shape for k in ours_sd)
    assert all(ours_sd[k].dtype == torch.float32 for k in ours_sd)
    n_ours = sum(p.numel() for p in ours.parameters())
    assert n_ours == sum(p.numel() for p in theirs.parameters()) == 44_140_544
    assert len(ours.encoder.layers) == len(ours.decoder.layers) == 6


@pytest.mark.parametrize(
    ("ours_factory", "theirs_factory"),
    [
        (
            lambda: TransformerEncoderLayer(12, 3, 20),
            lambda: nn.TransformerEncoderLayer(12, 3, 20),
        ),
        (
            lambda: TransformerDecoderLayer(12, 3, 20, bias=False),
            lambda: nn.TransformerDecoderLayer(12, 3, 20, bias=False),
        ),
        (
            lambda: Transformer(12, 3, 2, 2, 20, norm_first=True),
            lambda: nn.Transformer(12, 3, 2, 2, 20, norm_first=True),
        ),
    ],
    ids=["encoder_layer", "decoder_layer", "transformer"],
)
def test_same_seed_gives_torchs_initial_parameters(ours_factory, theirs_factory):
    """Same registration order and init (Xavier-uniform for dim > 1): same values."""
    torch.manual_seed(123)
    ours = ours_factory()
    torch.manual_seed(123)
    theirs = theirs_factory()
    theirs_sd = theirs.state_dict()
    for k, v in ours.state_dict().items():
        assert torch.equal(v, theirs_sd[k]), k


def test_transformer_init_is_xavier_uniform():
    torch.manual_seed(4)
    model = Transformer(16, 4, 2, 2, 32)
    for name, p in model.named_parameters():
        if p.dim() > 1:
            fan_out, fan_in = p.shape
            bound = (6 / (fan_in + fan_out)) ** 0.5
            assert p.abs().max() <= bound, name
            assert p.abs().max() > 0.9 * bound, name  # filled, not left at a smaller init
        elif name.endswith("norm1.weight"):
            assert torch.equal(p, torch.ones_like(p))
    # layers start different: the re-draw happens after the deep copies
    assert not torch.equal(
        model.encoder.layers[0].linear1.weight, model.encoder.layers[1].linear1.weight
    )


@pytest.mark.parametrize(
    ("stack", "layer"),
    [(TransformerEncoder, TransformerEncoderLayer), (TransformerDecoder, TransformerDecoderLayer)],
)
def test_stacked_layers_are_independent_deep_copies(stack, layer):
    prototype = layer(8, 2, 16)
    model = stack(prototype, 3)
    assert model.num_layers == 3
    for copy_ in model.layers:
        assert copy_ is not prototype
        for (name, p), q in zip(copy_.named_parameters(), prototype.parameters(), strict=True):
            assert torch.equal(p, q), name  # same initial values ...
            assert p.data_ptr() != q.data_ptr(), name  # ... in separate storage
    before = model.layers[1].linear1.weight.detach().clone()
    with torch.no_grad():
        model.layers[0].linear1.weight.add_(1.0)
    assert torch.equal(model.layers[1].linear1.weight, before)
    assert torch.equal(prototype.linear1.weight, before)


@pytest.mark.parametrize("sz", [0, 1, 2, 7])
@pytest.mark.parametrize("dtype", [None, torch.float64, torch.float16])
def test_generate_square_subsequent_mask_matches_torch(sz, dtype):
    ours = Transformer.generate_square_subsequent_mask(sz, dtype=dtype)
    theirs = nn.Transformer.generate_square_subsequent_mask(sz, dtype=dtype)
    assert ours.dtype == theirs.dtype
    assert torch.equal(ours, theirs)
    if sz:
        assert torch.equal(ours == float("-inf"), causal_mask(sz))


def test_given_mask_wins_over_is_causal():
    """Ours apply a given mask as it is, is_causal or not (torch may swap in the causal one)."""
    gen = torch.Generator().manual_seed(8)
    layer = randomize_(TransformerEncoderLayer(8, 2, 16, dropout=0.0, dtype=DTYPE), gen)
    src = torch.randn(5, 2, 8, generator=gen, dtype=DTYPE)
    not_causal = random_cross_mask(5, 5, gen)
    assert_close(
        layer(src, not_causal, is_causal=True), layer(src, not_causal, is_causal=False), "output"
    )
    assert not torch.allclose(layer(src, not_causal), layer(src, is_causal=True))


class _Scale(nn.Module):
    """A deterministic stand-in for a dropout module: multiplies by a factor."""

    def __init__(self, factor: float) -> None:
        super().__init__()
        self.factor = factor

    def forward(self, x: Tensor) -> Tensor:
        return x * self.factor


@pytest.mark.parametrize("norm_first", [False, True], ids=["post", "pre"])
def test_dropout_placement_matches_torch(norm_first):
    """Each dropout module is applied where torch applies the one of the same name.

    Random masks cannot show this: the two sides draw them for tensors of different memory
    layouts (torch's MultiheadAttention returns a transposed view), so one seed gives
    different masks. Each nn.Dropout is replaced, on both sides, by a distinct scaling.
    """
    gen = torch.Generator().manual_seed(10)
    cfg = {"norm_first": norm_first, "activation": "relu", "bias": True, "batch_first": True}
    sizes = {"N": 2, "S": 5, "T": 4, "E": 8, "H": 2}
    ours, theirs = transformer_pair(cfg, sizes, 0.0, gen)
    factors = {"dropout": 0.5, "dropout1": 1.5, "dropout2": 2.0, "dropout3": 0.25}
    for model in (ours, theirs):
        for name, module in list(model.named_modules()):
            if isinstance(module, nn.Dropout):
                model.set_submodule(name, _Scale(factors[name.rsplit(".", 1)[-1]]))
    assert sum(isinstance(m, _Scale) for m in ours.modules()) == 2 * 3 + 2 * 4
    inputs = {"src": sequence(5, sizes, True, gen), "tgt": sequence(4, sizes, True, gen)}
    kwargs = {"tgt_mask": causal_mask(4)}
    assert_twins(ours, theirs, inputs, kwargs, kwargs, gen, "scaled dropouts")


def test_dropout_acts_in_train_mode_only():
    gen = torch.Generator().manual_seed(9)
    model = randomize_(Transformer(8, 2, 1, 1, 16, dropout=0.5, dtype=DTYPE), gen)
    src, tgt = (torch.randn(n, 2, 8, generator=gen, dtype=DTYPE) for n in (5, 4))
    assert not torch.equal(model(src, tgt), model(src, tgt))
    model.eval()
    assert torch.equal(model(src, tgt), model(src, tgt))


def test_extra_repr_shows_hyperparameters():
    layer = TransformerDecoderLayer(8, 2, 16, dropout=0.2, activation="gelu", norm_first=True)
    text = repr(layer)
    for part in ("d_model=8", "nhead=2", "dim_feedforward=16", "dropout=0.2", "activation=gelu"):
        assert part in text
    assert "norm_first=True" in text
    assert "num_layers=3" in repr(TransformerEncoder(TransformerEncoderLayer(8, 2, 16), 3))
    assert "d_model=8, nhead=2" in repr(Transformer(8, 2, 1, 1, 16))


# ---------------------------------------------------------------------------------------
# Errors
# ---------------------------------------------------------------------------------------


def _small_transformer(batch_first: bool = False) -> Transformer:
    return Transformer(8, 2, 1, 1, 16, batch_first=batch_first)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (
            lambda: TransformerEncoderLayer(8, 2, activation="tanh"),
            r"activation: expected 'relu', 'gelu' or a callable, got 'tanh'",
        ),
        (
            lambda: TransformerDecoderLayer(8, 2, activation=3),
            r"activation: expected 'relu', 'gelu' or a callable, got 3",
        ),
        (
            lambda: Transformer(d_model=10, nhead=3),
            r"embed_dim: expected a multiple of num_heads=3, got 10",
        ),
        (lambda: TransformerEncoderLayer(8, 2, dropout=1.5), r"dropout: expected a probability"),
        (
            lambda: TransformerEncoder(TransformerEncoderLayer(8, 2, 16), -1),
            r"num_layers: expected an int >= 0, got -1",
        ),
        (
            lambda: Transformer.generate_square_subsequent_mask(-2),
            r"sz: expected an int >= 0, got -2",
        ),
        (
            lambda: _small_transformer()(torch.randn(5, 2, 8), torch.randn(4, 3, 8)),
            r"tgt: expected batch size 2 \(the src's\), got 3",
        ),
        (
            lambda: _small_transformer(True)(torch.randn(2, 5, 8), torch.randn(3, 4, 8)),
            r"tgt: expected batch size 2 \(the src's\), got 3",
        ),
        (
            lambda: _small_transformer()(torch.randn(5, 2, 6), torch.randn(4, 2, 6)),
            r"src: expected last dimension d_model=8, got 6",
        ),
        (
            lambda: _small_transformer()(torch.randn(5, 2, 8), torch.randn(4, 2, 4)),
            r"tgt: expected last dimension d_model=8, got 4",
        ),
        (
            lambda: _small_transformer()(torch.randn(5, 2, 8), torch.randn(4, 8)),
            r"tgt: expected 3 dimensions like src, got shape \(4, 8\)",
        ),
        (
            lambda: TransformerEncoderLayer(8, 2, 16)(torch.randn(5, 2, 8), causal_mask(4)),
            r"attn_mask: expected shape \(5, 5\)",
        ),
    ],
    ids=[
        "activation-string",
        "activation-not-callable",
        "nhead-divides-d_model",
        "dropout",
        "num_layers",
        "mask-size",
        "batch-mismatch",
        "batch-mismatch-batch-first",
        "src-features",
        "tgt-features",
        "tgt-dims",
        "src_mask-shape",
    ],
)
def test_errors_name_argument_expected_and_actual(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_torch_raises_runtime_error_where_ours_raise_value_error():
    """The documented divergence: torch's RuntimeError for the same mistakes."""
    with pytest.raises(RuntimeError, match="activation should be relu/gelu"):
        nn.TransformerEncoderLayer(8, 2, activation="tanh")
    theirs = nn.Transformer(8, 2, 1, 1, 16)
    with pytest.raises(RuntimeError, match="batch number of src and tgt must be equal"):
        theirs(torch.randn(5, 2, 8), torch.randn(4, 3, 8))
    with pytest.raises(RuntimeError, match="feature number of src and tgt must be equal"):
        theirs(torch.randn(5, 2, 6), torch.randn(4, 2, 6))
