"""Generic checks every public torchkata module passes (STYLE.md rule 7).

To register a module, append one ``ModuleCase`` to ``MODULE_CASES``: a name, a factory
that builds it with non-default hyperparameters, a factory for an example input (given a
seeded generator and a dtype; a tuple of tensors for a module called with several
arguments, such as a loss's ``(input, target)``), the output shape its docstring promises
for that input, and the strings its ``extra_repr`` must contain (its hyperparameters). The
checks below then run on it:

- the output has the documented shape (for a module that returns a tuple, ``select``
  picks the tensors the checks compare, e.g. attention's output and weights);
- ``state_dict`` round trip: a fresh instance loaded from a used one gives equal outputs,
  in training and eval mode;
- float64 ``torch.autograd.gradcheck`` with respect to every floating-point input and
  every parameter (integer inputs, such as class indices, are passed through);
- the hyperparameters appear in ``extra_repr``;
- the class docstring has ``Shape:`` and ``Examples`` sections;
- and every ``nn.Module`` exported in a ``torchkata`` subpackage's ``__all__`` is
  registered here (or listed in ``EXEMPT`` with its reason).
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from collections.abc import Callable
from typing import Any, NamedTuple

import pytest
import torch
from torch import Tensor, nn

import torchkata
from torchkata.gan.models import (
    DCGANDiscriminator,
    DCGANGenerator,
    MinibatchStdDev,
    MLPDiscriminator,
    MLPGenerator,
    SelfAttention2d,
)
from torchkata.losses import (
    CompositeLoss,
    DiceLoss,
    FocalLoss,
    LabelSmoothingCrossEntropy,
    NTXentLoss,
    SquaredErrorLoss,
    TripletMarginLoss,
)
from torchkata.norm import BatchNorm1d, BatchNorm2d, GroupNorm, InstanceNorm2d, LayerNorm, RMSNorm
from torchkata.relational import (
    CNNMLP,
    ConvObjects,
    RelationModule,
    RelationNetwork,
    StateMLP,
    StateRelationNetwork,
)
from torchkata.ssl import (
    MLP,
    AutoEncoder,
    Classifier,
    Conv1dEncoder,
    DenoisingAutoEncoder,
    GRUClassifier,
    SimCLR,
    VICReg,
)
from torchkata.transfer import DigitsCNN, SentenceEncoder
from torchkata.transformer import (
    GPT,
    LearnedPositionalEncoding,
    MultiheadAttention,
    Seq2SeqTransformer,
    SinusoidalPositionalEncoding,
    Transformer,
    TransformerDecoder,
    TransformerDecoderLayer,
    TransformerEncoder,
    TransformerEncoderLayer,
    causal_mask,
)


class ModuleCase(NamedTuple):
    name: str
    factory: Callable[[], nn.Module]
    make_input: Callable[[torch.Generator, torch.dtype], Tensor | tuple[Tensor, ...]]
    output_shape: tuple[int, ...]
    in_repr: tuple[str, ...]
    select: Callable[[Any], Tensor] = lambda output: output  # the checked tensor


def randn(*shape: int) -> Callable[[torch.Generator, torch.dtype], Tensor]:
    """Example-input factory: standard normal values of the given shape."""
    return lambda gen, dtype: torch.randn(shape, generator=gen, dtype=dtype)


def logits_and_classes(
    N: int, C: int, *rest: int
) -> Callable[[torch.Generator, torch.dtype], tuple[Tensor, Tensor]]:
    """Loss-input factory: (N, C, *rest) standard normal logits, (N, *rest) class indices."""
    return lambda gen, dtype: (
        torch.randn((N, C, *rest), generator=gen, dtype=dtype),
        torch.randint(0, C, (N, *rest), generator=gen),
    )


def randn_args(
    *shapes: tuple[int, ...],
) -> Callable[[torch.Generator, torch.dtype], tuple[Tensor, ...]]:
    """Input factory for a call with several tensors: standard normal, one per shape."""
    return lambda gen, dtype: tuple(torch.randn(s, generator=gen, dtype=dtype) for s in shapes)


def as_args(inputs: Tensor | tuple[Tensor, ...]) -> tuple[Tensor, ...]:
    """The positional arguments of a call: ``make_input``'s tensor or tuple of tensors."""
    return inputs if isinstance(inputs, tuple) else (inputs,)


MODULE_CASES: list[ModuleCase] = [
    # tip 7: normalisation layers
    ModuleCase(
        "BatchNorm1d",
        lambda: BatchNorm1d(3, eps=1e-3, momentum=0.3),
        randn(4, 3, 5),
        (4, 3, 5),
        ("3", "eps=0.001", "momentum=0.3", "affine=True", "track_running_stats=True"),
    ),
    ModuleCase(
        "BatchNorm2d",
        lambda: BatchNorm2d(2, momentum=None, bias=False),
        randn(3, 2, 3, 2),
        (3, 2, 3, 2),
        ("2", "momentum=None", "bias=False"),
    ),
    ModuleCase(
        "InstanceNorm2d",
        lambda: InstanceNorm2d(2, eps=1e-4, affine=True, track_running_stats=True),
        randn(2, 2, 3, 3),
        (2, 2, 3, 3),
        ("2", "eps=0.0001", "affine=True", "track_running_stats=True"),
    ),
    ModuleCase(
        "LayerNorm",
        lambda: LayerNorm((3, 4), eps=1e-6),
        randn(2, 3, 4),
        (2, 3, 4),
        ("(3, 4)", "eps=1e-06", "elementwise_affine=True"),
    ),
    ModuleCase(
        "GroupNorm",
        lambda: GroupNorm(2, 6, eps=1e-3),
        randn(2, 6, 3),
        (2, 6, 3),
        ("2, 6", "eps=0.001", "affine=True"),
    ),
    ModuleCase(
        "RMSNorm",
        lambda: RMSNorm(5, eps=1e-6),
        randn(3, 2, 5),
        (3, 2, 5),
        ("(5,)", "eps=1e-06", "elementwise_affine=True"),
    ),
    # tip 1: losses, called with (input, target) or (anchor, positive, negative)
    ModuleCase(
        "SquaredErrorLoss",
        lambda: SquaredErrorLoss(reduction="sum"),
        randn_args((4, 3), (4, 3)),
        (),
        ("reduction='sum'",),
    ),
    ModuleCase(
        "FocalLoss",
        lambda: FocalLoss(gamma=1.5, alpha=[0.25, 0.5, 0.25], ignore_index=-1),
        logits_and_classes(5, 3),
        (),
        ("gamma=1.5", "alpha=[0.25, 0.5, 0.25]", "ignore_index=-1", "reduction='mean'"),
    ),
    ModuleCase(
        "LabelSmoothingCrossEntropy",
        lambda: LabelSmoothingCrossEntropy(0.2, weight=[1.0, 2.0, 0.5], ignore_index=-1),
        logits_and_classes(4, 3, 2),
        (),
        ("label_smoothing=0.2", "weight=[1.0, 2.0, 0.5]", "ignore_index=-1"),
    ),
    ModuleCase(
        "DiceLoss",
        lambda: DiceLoss(smooth=0.5, reduction="none"),
        logits_and_classes(2, 3, 3, 3),
        (2, 3),
        ("smooth=0.5", "reduction='none'"),
    ),
    ModuleCase(
        "NTXentLoss",
        lambda: NTXentLoss(temperature=0.2, reduction="none"),
        randn_args((3, 4), (3, 4)),
        (6,),
        ("temperature=0.2", "reduction='none'"),
    ),
    ModuleCase(
        "TripletMarginLoss",
        lambda: TripletMarginLoss(margin=2.0, p=1.5, swap=True),
        randn_args((4, 5), (4, 5), (4, 5)),
        (),
        ("margin=2.0", "p=1.5", "eps=1e-06", "swap=True", "reduction='mean'"),
    ),
    ModuleCase(
        "CompositeLoss",
        lambda: CompositeLoss(
            {"ce": (nn.CrossEntropyLoss(), 1.0), "focal": (FocalLoss(gamma=1.0), 0.5)}
        ),
        logits_and_classes(4, 3),
        (),
        ("'ce': 1.0", "'focal': 0.5"),
    ),
    ModuleCase(
        "DigitsCNN",
        lambda: DigitsCNN(num_classes=5, width=4),
        randn(2, 1, 8, 8),
        (2, 5),
        ("num_classes=5", "width=4", "in_channels=1"),
    ),
    ModuleCase(
        "SentenceEncoder",
        lambda: SentenceEncoder(
            vocab_size=7,
            d_model=4,
            nhead=2,
            num_layers=1,
            dim_feedforward=6,
            max_positions=5,
            dropout=0.0,
        ),
        # ids from 1: id 0 is padding, whose embedding never trains (gradcheck would fail)
        lambda gen, dtype: (
            torch.randint(1, 7, (3, 5), generator=gen),
            torch.tensor([[1] * 5, [1, 1, 1, 0, 0], [1, 0, 0, 0, 0]]),
        ),
        (3, 4),
        (
            "vocab_size=7",
            "d_model=4",
            "nhead=2",
            "num_layers=1",
            "dim_feedforward=6",
            "max_positions=5",
            "dropout=0.0",
        ),
    ),
]

MODULE_CASES += [
    ModuleCase(
        "AutoEncoder",
        lambda: AutoEncoder(6, hidden=(5, 4), bottleneck=2, activation=nn.Tanh),
        randn(3, 6),
        (3, 6),
        ("in_features=6", "hidden=(5, 4)", "bottleneck=2"),
    ),
    ModuleCase(
        # corruption off: in training mode it is random, so two calls would differ
        "DenoisingAutoEncoder",
        lambda: DenoisingAutoEncoder(
            6, hidden=(5,), bottleneck=2, noise_std=0.0, mask_prob=0.0, mask_value=0.5
        ),
        randn(3, 6),
        (3, 6),
        ("noise_std=0.0", "mask_prob=0.0", "mask_value=0.5"),
    ),
    ModuleCase(
        "Conv1dEncoder",
        lambda: Conv1dEncoder(in_length=12, channels=3, out_dim=5),
        randn(2, 12),
        (2, 5),
        ("in_length=12", "channels=3", "out_dim=5"),
    ),
    ModuleCase(
        "Classifier",
        lambda: Classifier(Conv1dEncoder(in_length=12, channels=3, out_dim=5), num_classes=4),
        randn(2, 12),
        (2, 4),
        ("in_features=5", "num_classes=4"),
    ),
    ModuleCase(
        "MLP",
        lambda: MLP(in_features=7, hidden=6, num_classes=3),
        randn(4, 7),
        (4, 3),
        ("in_features=7", "hidden=6", "num_classes=3"),
    ),
    ModuleCase(
        "GRUClassifier",
        lambda: GRUClassifier(in_length=9, hidden=4, num_classes=3),
        randn(2, 9),
        (2, 3),
        ("in_length=9", "hidden=4", "num_classes=3"),
    ),
    ModuleCase(
        "SimCLR",
        lambda: SimCLR(nn.Linear(6, 4), feature_dim=4, projection_dim=3, temperature=0.5),
        randn_args((5, 6), (5, 6)),
        (),
        ("feature_dim=4", "projection_dim=3"),
    ),
    ModuleCase(
        "VICReg",
        lambda: VICReg(nn.Linear(6, 4), feature_dim=4, projection_dim=3),
        randn_args((5, 6), (5, 6)),
        (),
        ("feature_dim=4", "projection_dim=3"),
    ),
]


def ids_and(
    *shapes: tuple[int, ...], vocab: int
) -> Callable[[torch.Generator, torch.dtype], tuple]:
    """Input factory: token ids in [1, vocab) (0 is padding) of each shape."""
    return lambda gen, dtype: tuple(torch.randint(1, vocab, s, generator=gen) for s in shapes)


def _first(output: tuple) -> Tensor:
    return output[0]


# tip 9: Transformers (dropout 0: in training mode two calls would differ)
MODULE_CASES += [
    ModuleCase(
        "MultiheadAttention",
        lambda: MultiheadAttention(6, 2, kdim=4, vdim=5, batch_first=True, add_bias_kv=True),
        lambda gen, dtype: (
            torch.randn(2, 3, 6, generator=gen, dtype=dtype),
            torch.randn(2, 4, 4, generator=gen, dtype=dtype),
            torch.randn(2, 4, 5, generator=gen, dtype=dtype),
        ),
        (2, 3, 6),
        ("embed_dim=6", "num_heads=2", "kdim=4", "vdim=5", "add_bias_kv=True", "batch_first=True"),
        select=_first,
    ),
    ModuleCase(
        "TransformerEncoderLayer",
        lambda: TransformerEncoderLayer(4, 2, 6, dropout=0.0, activation="gelu", norm_first=True),
        randn(3, 2, 4),
        (3, 2, 4),
        ("d_model=4", "nhead=2", "dim_feedforward=6", "norm_first=True"),
    ),
    ModuleCase(
        "TransformerDecoderLayer",
        lambda: TransformerDecoderLayer(4, 2, 6, dropout=0.0, batch_first=True),
        randn_args((2, 3, 4), (2, 5, 4)),
        (2, 3, 4),
        ("d_model=4", "nhead=2", "dim_feedforward=6", "batch_first=True"),
    ),
    ModuleCase(
        "TransformerEncoder",
        lambda: TransformerEncoder(
            TransformerEncoderLayer(4, 2, 6, dropout=0.0), 2, norm=nn.LayerNorm(4)
        ),
        randn(3, 2, 4),
        (3, 2, 4),
        ("num_layers=2",),
    ),
    ModuleCase(
        "TransformerDecoder",
        lambda: TransformerDecoder(TransformerDecoderLayer(4, 2, 6, dropout=0.0), 2),
        randn_args((3, 2, 4), (5, 2, 4)),
        (3, 2, 4),
        ("num_layers=2",),
    ),
    ModuleCase(
        "Transformer",
        lambda: Transformer(4, 2, 1, 1, 6, dropout=0.0, batch_first=True),
        lambda gen, dtype: (
            torch.randn(2, 5, 4, generator=gen, dtype=dtype),
            torch.randn(2, 3, 4, generator=gen, dtype=dtype),
            None,
            causal_mask(3),
        ),
        (2, 3, 4),
        ("d_model=4", "nhead=2", "batch_first=True"),
    ),
    ModuleCase(
        "SinusoidalPositionalEncoding",
        lambda: SinusoidalPositionalEncoding(4, max_len=6),
        randn(2, 5, 4),
        (2, 5, 4),
        ("d_model=4", "max_len=6"),
    ),
    ModuleCase(
        "LearnedPositionalEncoding",
        lambda: LearnedPositionalEncoding(4, max_len=6),
        randn(2, 5, 4),
        (2, 5, 4),
        ("d_model=4", "max_len=6"),
    ),
    ModuleCase(
        "GPT",
        lambda: GPT(vocab_size=5, block_size=4, n_layer=1, n_head=2, n_embd=4, bias=True),
        ids_and((2, 4), vocab=5),
        (2, 4, 5),
        ("vocab_size=5", "block_size=4", "n_layer=1", "n_head=2", "n_embd=4", "bias=True"),
        select=_first,
    ),
    ModuleCase(
        "Seq2SeqTransformer",
        lambda: Seq2SeqTransformer(6, 4, 2, 1, 1, 6, dropout=0.0, max_len=8, core="torchkata"),
        ids_and((2, 5), (2, 3), vocab=6),
        (2, 3, 6),
        ("vocab_size=6", "pad_id=0", "core='torchkata'"),
    ),
]

# tip 5: GANs. Spectral norm is off here: in training mode each call takes a power-iteration
# step on the weights' singular vectors, so gradcheck's repeated calls would see different
# functions; tests/gan/test_models.py checks the spectral-norm discriminators' state_dict
# round trip and their eval-mode gradcheck. EMA is not an nn.Module.
MODULE_CASES += [
    ModuleCase(
        "MLPGenerator",
        lambda: MLPGenerator(latent_dim=3, hidden=4, out_dim=2, num_layers=2),
        randn(5, 3),
        (5, 2),
        ("latent_dim=3", "hidden=4", "out_dim=2", "num_layers=2"),
    ),
    # tip 4: relation networks (small images: gradcheck differentiates every pixel)
    ModuleCase(
        "ConvObjects",
        lambda: ConvObjects(in_channels=2, channels=3, num_layers=2, batchnorm_first=True),
        randn(2, 2, 7, 6),
        (2, 4, 5),
        ("in_channels=2", "channels=3", "num_layers=2", "batchnorm_first=True"),
    ),
    ModuleCase(
        "RelationModule",
        lambda: RelationModule(3, 2, hidden=4, num_layers=2, aggregation="max", factored=True),
        randn_args((2, 3, 3), (2, 2, 2)),
        (2, 2, 4),
        ("object_dim=3", "question_dim=2", "hidden=4", "num_layers=2", "'max'", "factored=True"),
    ),
    ModuleCase(
        "RelationNetwork",
        lambda: RelationNetwork(
            num_classes=3,
            question_dim=2,
            conv_channels=2,
            conv_layers=2,
            g_hidden=4,
            g_layers=2,
            f_hidden=4,
            dropout=0.0,
            aggregation="mean",
            batchnorm_first=True,
            relation_norm=True,
        ),
        randn_args((2, 3, 5, 5), (2, 3, 2)),
        (2, 3, 3),
        ("num_classes=3", "question_dim=2", "aggregation='mean'"),
    ),
    ModuleCase(
        "StateRelationNetwork",
        lambda: StateRelationNetwork(object_dim=3, num_classes=2, g_hidden=4, f_hidden=4),
        randn_args((2, 3, 3), (2, 11)),
        (2, 2),
        ("num_classes=2", "question_dim=11", "object_dim=3"),
    ),
    ModuleCase(
        "CNNMLP",
        lambda: CNNMLP(
            image_size=6, num_classes=3, conv_channels=2, conv_layers=2, f_hidden=4, dropout=0.0
        ),
        randn_args((2, 3, 6, 6), (2, 11)),
        (2, 3),
        ("image_size=6", "num_classes=3"),
    ),
    ModuleCase(
        "StateMLP",
        lambda: StateMLP(num_objects=3, object_dim=2, hidden=5, num_layers=2),
        randn_args((2, 3, 2), (2, 4, 11)),
        (2, 4, 10),
        ("num_objects=3", "object_dim=2", "num_classes=10"),
    ),
    ModuleCase(
        "MLPDiscriminator",
        lambda: MLPDiscriminator(in_dim=2, hidden=4, num_layers=2, pack=2, activation="relu"),
        randn(6, 2),
        (3,),
        (
            "in_dim=2",
            "hidden=4",
            "num_layers=2",
            "pack=2",
            "spectral_norm=False",
            "activation='relu'",
        ),
    ),
    ModuleCase(
        "DCGANGenerator",
        lambda: DCGANGenerator(latent_dim=3, image_size=8, channels=1, width=2),
        randn(2, 3),
        (2, 1, 8, 8),
        ("latent_dim=3", "image_size=8", "channels=1", "width=2"),
    ),
    ModuleCase(
        "DCGANDiscriminator",
        lambda: DCGANDiscriminator(
            image_size=16, channels=1, width=2, self_attention=True, minibatch_std=True
        ),
        randn(2, 1, 16, 16),
        (2,),
        (
            "image_size=16",
            "channels=1",
            "width=2",
            "spectral_norm=False",
            "self_attention=True",
            "minibatch_std=True",
        ),
    ),
    ModuleCase(
        "SelfAttention2d",
        lambda: SelfAttention2d(4, reduction=2),
        randn(2, 4, 3, 2),
        (2, 4, 3, 2),
        ("channels=4", "reduction=2"),
    ),
    ModuleCase(
        "MinibatchStdDev",
        lambda: MinibatchStdDev(group_size=2),
        randn(4, 3, 2, 2),
        (4, 4, 2, 2),
        ("group_size=2",),
    ),
]

# Public nn.Modules that cannot take the generic checks, each with the reason.
EXEMPT: dict[str, str] = {}

IDS = [case.name for case in MODULE_CASES]


def _randomised(case: ModuleCase, dtype: torch.dtype, seed: int = 0) -> nn.Module:
    """The module in ``dtype`` with random parameters and floating-point buffers."""
    gen = torch.Generator().manual_seed(seed)
    module = case.factory().to(dtype)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn(p.shape, generator=gen, dtype=dtype))
        saved = module.state_dict()  # non-persistent buffers are constants (sinusoid tables)
        for name, b in module.named_buffers():
            if b.is_floating_point() and name in saved:  # running variances stay positive
                b.copy_(torch.rand(b.shape, generator=gen, dtype=dtype) + 0.5)
    return module


@pytest.mark.parametrize("case", MODULE_CASES, ids=IDS)
def test_output_has_documented_shape(case: ModuleCase) -> None:
    args = as_args(case.make_input(torch.Generator().manual_seed(0), torch.float32))
    module = case.factory()
    assert tuple(case.select(module(*args)).shape) == case.output_shape
    assert tuple(case.select(module.eval()(*args)).shape) == case.output_shape


@pytest.mark.parametrize("case", MODULE_CASES, ids=IDS)
def test_state_dict_round_trip(case: ModuleCase) -> None:
    gen = torch.Generator().manual_seed(1)
    used = _randomised(case, torch.float64)
    used(*as_args(case.make_input(gen, torch.float64)))  # a training step may move buffers
    fresh = case.factory().to(torch.float64)
    fresh.load_state_dict(used.state_dict())
    for mode in ("train", "eval"):
        used.train(mode == "train")
        fresh.train(mode == "train")
        args = as_args(case.make_input(gen, torch.float64))
        torch.testing.assert_close(
            case.select(fresh(*args)), case.select(used(*args)), rtol=0, atol=0, msg=mode
        )
    for name, value in used.state_dict().items():
        assert torch.equal(fresh.state_dict()[name], value), name


@pytest.mark.parametrize("case", MODULE_CASES, ids=IDS)
@pytest.mark.parametrize("mode", ["train", "eval"])
def test_gradcheck_float64(case: ModuleCase, mode: str) -> None:
    module = _randomised(case, torch.float64).train(mode == "train")
    names = [name for name, _ in module.named_parameters()]
    params = tuple(p.detach().clone().requires_grad_() for p in module.parameters())
    args = tuple(
        a.requires_grad_() if a is not None and a.is_floating_point() else a  # ids pass through
        for a in as_args(case.make_input(torch.Generator().manual_seed(2), torch.float64))
    )

    def f(*tensors: Tensor) -> Tensor:
        inputs, ps = tensors[: len(args)], tensors[len(args) :]
        params = dict(zip(names, ps, strict=True))
        return case.select(torch.func.functional_call(module, params, inputs))

    assert torch.autograd.gradcheck(f, (*args, *params))


@pytest.mark.parametrize("case", MODULE_CASES, ids=IDS)
def test_hyperparameters_in_extra_repr(case: ModuleCase) -> None:
    text = case.factory().extra_repr()
    for expected in case.in_repr:
        assert expected in text, f"{expected!r} not in extra_repr {text!r}"


@pytest.mark.parametrize("case", MODULE_CASES, ids=IDS)
def test_docstring_has_shape_and_examples(case: ModuleCase) -> None:
    doc = inspect.getdoc(type(case.factory())) or ""
    assert doc.strip(), "missing docstring"
    assert "Shape:" in doc
    assert "Examples" in doc and ">>>" in doc


def _public_modules() -> dict[str, type[nn.Module]]:
    """Every nn.Module subclass exported in the ``__all__`` of a torchkata subpackage."""
    found: dict[str, type[nn.Module]] = {}
    for info in pkgutil.iter_modules(torchkata.__path__):
        if not info.ispkg:
            continue
        package = importlib.import_module(f"torchkata.{info.name}")
        for attr in getattr(package, "__all__", []):
            obj = getattr(package, attr)
            if isinstance(obj, type) and issubclass(obj, nn.Module):
                found[f"{info.name}.{attr}"] = obj
    return found


def test_every_public_module_is_registered() -> None:
    registered = {type(case.factory()) for case in MODULE_CASES}
    missing = [
        name
        for name, cls in _public_modules().items()
        if cls not in registered and name not in EXEMPT
    ]
    assert not missing, f"add ModuleCase entries (or EXEMPT reasons) for {missing}"
