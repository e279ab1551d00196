"""Generic checks every public torchkata module passes (STYLE.md rule 7).

To register a module, append one ``ModuleCase`` to ``MODULE_CASES``: a name, a factory
that builds it with non-default hyperparameters, a factory for an example input (given a
seeded generator and a dtype), the output shape its docstring promises for that input, and
the strings its ``extra_repr`` must contain (its hyperparameters). The checks below then
run on it:

- the output has the documented shape;
- ``state_dict`` round trip: a fresh instance loaded from a used one gives equal outputs,
  in training and eval mode;
- float64 ``torch.autograd.gradcheck`` with respect to the input and every parameter;
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
from typing import NamedTuple

import pytest
import torch
from torch import Tensor, nn

import torchkata
from torchkata.norm import BatchNorm1d, BatchNorm2d, GroupNorm, InstanceNorm2d, LayerNorm, RMSNorm


class ModuleCase(NamedTuple):
    name: str
    factory: Callable[[], nn.Module]
    make_input: Callable[[torch.Generator, torch.dtype], Tensor]
    output_shape: tuple[int, ...]
    in_repr: tuple[str, ...]


def randn(*shape: int) -> Callable[[torch.Generator, torch.dtype], Tensor]:
    """Example-input factory: standard normal values of the given shape."""
    return lambda gen, dtype: torch.randn(shape, generator=gen, dtype=dtype)


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
        for b in module.buffers():
            if b.is_floating_point():  # running variances must stay positive
                b.copy_(torch.rand(b.shape, generator=gen, dtype=dtype) + 0.5)
    return module


@pytest.mark.parametrize("case", MODULE_CASES, ids=IDS)
def test_output_has_documented_shape(case: ModuleCase) -> None:
    x = case.make_input(torch.Generator().manual_seed(0), torch.float32)
    module = case.factory()
    assert tuple(module(x).shape) == case.output_shape
    assert tuple(module.eval()(x).shape) == case.output_shape


@pytest.mark.parametrize("case", MODULE_CASES, ids=IDS)
def test_state_dict_round_trip(case: ModuleCase) -> None:
    gen = torch.Generator().manual_seed(1)
    used = _randomised(case, torch.float64)
    used(case.make_input(gen, torch.float64))  # a training step may move buffers
    fresh = case.factory().to(torch.float64)
    fresh.load_state_dict(used.state_dict())
    for mode in ("train", "eval"):
        used.train(mode == "train")
        fresh.train(mode == "train")
        x = case.make_input(gen, torch.float64)
        torch.testing.assert_close(fresh(x), used(x), rtol=0, atol=0, msg=mode)
    for name, value in used.state_dict().items():
        assert torch.equal(fresh.state_dict()[name], value), name


@pytest.mark.parametrize("case", MODULE_CASES, ids=IDS)
@pytest.mark.parametrize("mode", ["train", "eval"])
def test_gradcheck_float64(case: ModuleCase, mode: str) -> None:
    module = _randomised(case, torch.float64).train(mode == "train")
    names = [name for name, _ in module.named_parameters()]
    params = tuple(p.detach().clone().requires_grad_() for p in module.parameters())
    x = case.make_input(torch.Generator().manual_seed(2), torch.float64).requires_grad_()

    def f(x: Tensor, *ps: Tensor) -> Tensor:
        return torch.func.functional_call(module, dict(zip(names, ps, strict=True)), (x,))

    assert torch.autograd.gradcheck(f, (x, *params))


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
