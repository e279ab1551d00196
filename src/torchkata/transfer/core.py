"""Freezing, heads and discriminative learning rates: the moves of transfer learning.

Transfer learning reuses a model trained on a source task: *feature extraction* freezes
its parameters and trains a new last layer; *fine-tuning* trains some or all of the old
layers too, usually with smaller learning rates for the lower (more general) layers, and
*gradual unfreezing* (Howard & Ruder 2018, ULMFiT) releases one block per epoch from the
top.

Names are matched against parameter and module names (``model.named_parameters()``):
a pattern matches a name equal to it or starting with it followed by ``.`` (a prefix:
``"layer4"`` matches ``"layer4.0.conv1.weight"``), or, when it holds ``*``, ``?`` or
``[``, as a shell glob (``"*.bias"``).
"""

from __future__ import annotations

import dataclasses
import fnmatch
from collections.abc import Iterable, Sequence

from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

__all__ = [
    "BlockSummary",
    "GradualUnfreezing",
    "blocks",
    "freeze",
    "param_groups",
    "replace_head",
    "trainable_summary",
    "unfreeze",
]

_FROZEN_FLAG = "_torchkata_frozen"


def _patterns(patterns: str | Iterable[str] | None, argument: str) -> list[str]:
    if patterns is None:
        return []
    if isinstance(patterns, str):
        return [patterns]
    out = list(patterns)
    if not all(isinstance(p, str) for p in out):
        raise TypeError(f"{argument}: expected a str or an iterable of str, got {patterns!r}")
    return out


def _matches(name: str, patterns: list[str]) -> bool:
    for pattern in patterns:
        if any(c in pattern for c in "*?["):
            if fnmatch.fnmatchcase(name, pattern):
                return True
        elif name == pattern or name.startswith(pattern + "."):
            return True
    return False


def _check_patterns_match(model: nn.Module, patterns: list[str], argument: str) -> None:
    names = [n for n, _ in model.named_parameters()] + [n for n, _ in model.named_modules() if n]
    for pattern in patterns:
        if not any(_matches(name, [pattern]) for name in names):
            tops = [n for n, _ in model.named_children()]
            raise ValueError(
                f"{argument}: {pattern!r} matches no parameter or module of the model; "
                f"its top-level blocks are {tops}"
            )


def _keep_frozen_batchnorm_in_eval(module: nn.Module, _inputs: tuple) -> None:
    # A forward pre-hook: model.train() sets training=True on every module; a frozen
    # BatchNorm must keep normalising with (and not update) its running statistics.
    if getattr(module, _FROZEN_FLAG, False):
        module.training = False


def _mark_batchnorm(module: _BatchNorm, frozen: bool) -> None:
    if not getattr(module, "_torchkata_hooked", False):
        module.register_forward_pre_hook(_keep_frozen_batchnorm_in_eval)
        module._torchkata_hooked = True
    setattr(module, _FROZEN_FLAG, frozen)
    if frozen:
        module.eval()


def freeze(model: nn.Module, except_: str | Iterable[str] | None = None) -> nn.Module:
    """Stop training ``model``'s parameters (``requires_grad=False``), except those named.

    BatchNorm layers that are frozen stay in eval mode even after ``model.train()``: they
    normalise with their running statistics and never update them (otherwise a "frozen"
    backbone still drifts, through its running statistics, on the new data).

    Args:
        model: the model, changed in place.
        except_: names or patterns of parameters/modules left trainable (see the module
            docstring). Default: ``None`` (freeze everything)

    Returns:
        ``model``.

    Examples:
        >>> from torch import nn
        >>> model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
        >>> _ = freeze(model, except_="2")
        >>> [n for n, p in model.named_parameters() if p.requires_grad]
        ['2.weight', '2.bias']
    """
    keep = _patterns(except_, "except_")
    _check_patterns_match(model, keep, "except_")
    for name, p in model.named_parameters():
        p.requires_grad_(_matches(name, keep))
    for name, module in model.named_modules():
        if isinstance(module, _BatchNorm):
            _mark_batchnorm(module, frozen=not _matches(name, keep))
    return model


def unfreeze(model: nn.Module, patterns: str | Iterable[str]) -> nn.Module:
    """Train again the parameters (and BatchNorm layers) that ``patterns`` name.

    Call ``model.train()`` afterwards for unfrozen BatchNorm layers to use batch
    statistics again.

    Args:
        model: the model, changed in place.
        patterns: names or patterns (see the module docstring); ``"*"`` for all.

    Returns:
        ``model``.
    """
    names = _patterns(patterns, "patterns")
    if not names:
        raise ValueError("patterns: expected at least one name or pattern, got none")
    _check_patterns_match(model, names, "patterns")
    for name, p in model.named_parameters():
        if _matches(name, names):
            p.requires_grad_(True)
    for name, module in model.named_modules():
        if isinstance(module, _BatchNorm) and _matches(name, names):
            _mark_batchnorm(module, frozen=False)
    return model


def blocks(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """The top-level blocks that hold parameters, bottom (input side) first.

    A model that is one ``nn.Sequential`` of blocks gives its items; otherwise its direct
    children, in registration order.
    """
    return [(n, m) for n, m in model.named_children() if any(True for _ in m.parameters())]


@dataclasses.dataclass(frozen=True)
class BlockSummary:
    """Trainable and frozen parameter counts of one top-level block."""

    name: str
    trainable: int
    frozen: int


class _Summary(list):
    def __str__(self) -> str:
        rows = [("block", "trainable", "frozen")]
        rows += [(s.name, f"{s.trainable:,}", f"{s.frozen:,}") for s in self]
        widths = [max(len(r[i]) for r in rows) for i in range(3)]
        return "\n".join(
            f"{r[0]:<{widths[0]}}  {r[1]:>{widths[1]}}  {r[2]:>{widths[2]}}" for r in rows
        )


def trainable_summary(model: nn.Module) -> list[BlockSummary]:
    """Trainable and frozen parameter counts per top-level block, and a ``total`` row.

    Examples:
        >>> from torch import nn
        >>> model = freeze(nn.Sequential(nn.Linear(4, 8), nn.Linear(8, 2)), except_="1")
        >>> print(trainable_summary(model))
        block  trainable  frozen
        0              0      40
        1             18       0
        total         18      40
    """
    summary = _Summary()
    for name, module in model.named_children():
        params = list(module.parameters())
        if params:
            trainable = sum(p.numel() for p in params if p.requires_grad)
            summary.append(
                BlockSummary(name, trainable, sum(p.numel() for p in params) - trainable)
            )
    own = [p for n, p in model.named_parameters(recurse=False)]
    if own:
        trainable = sum(p.numel() for p in own if p.requires_grad)
        summary.append(BlockSummary("(own)", trainable, sum(p.numel() for p in own) - trainable))
    summary.append(
        BlockSummary("total", sum(s.trainable for s in summary), sum(s.frozen for s in summary))
    )
    return summary


def _find_head(model: nn.Module) -> tuple[nn.Module, str, nn.Linear]:
    """(parent, attribute name, Linear) of the final classifier."""
    for attr in ("fc", "classifier", "head"):
        child = getattr(model, attr, None)
        if isinstance(child, nn.Linear):
            return model, attr, child
        if isinstance(child, nn.Sequential):
            linears = [(str(i), m) for i, m in enumerate(child) if isinstance(m, nn.Linear)]
            if linears:
                return child, *linears[-1]
    last = None
    for parent in model.modules():
        for name, child in parent.named_children():
            if isinstance(child, nn.Linear):
                last = (parent, name, child)
    if last is None:
        raise ValueError(
            f"model: found no final classifier (an nn.Linear named fc, classifier or head, "
            f"or any nn.Linear) in {type(model).__name__}"
        )
    return last


def replace_head(model: nn.Module, num_classes: int) -> nn.Linear:
    """Replace the final classifier by a new, trainable ``nn.Linear(in, num_classes)``.

    The classifier is the ``nn.Linear`` called ``fc``, ``classifier`` or ``head`` (or the
    last ``nn.Linear`` of one of those when it is an ``nn.Sequential``), else the last
    ``nn.Linear`` of the model. The new layer has the old one's input size, bias setting,
    device and dtype, and PyTorch's default initialisation.

    Args:
        model: the model, changed in place.
        num_classes: output units of the new head.

    Returns:
        nn.Linear: the new head.

    Examples:
        >>> from torch import nn
        >>> model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 10))
        >>> replace_head(model, 3)
        Linear(in_features=8, out_features=3, bias=True)
        >>> model[2].out_features
        3
    """
    if not isinstance(num_classes, int) or isinstance(num_classes, bool) or num_classes < 1:
        raise ValueError(f"num_classes: expected a positive int, got {num_classes!r}")
    parent, name, old = _find_head(model)
    new = nn.Linear(old.in_features, num_classes, bias=old.bias is not None)
    new = new.to(device=old.weight.device, dtype=old.weight.dtype)
    if isinstance(parent, nn.Sequential) and name.isdigit():
        parent[int(name)] = new
    else:
        setattr(parent, name, new)
    return new


def param_groups(
    model: nn.Module,
    lr: float,
    decay: float = 2.6,
    *,
    block_names: Sequence[str] | None = None,
) -> list[dict]:
    """Optimizer parameter groups with discriminative learning rates, one per block.

    The top block (the head, last) gets ``lr``, the one below it ``lr / decay``, then
    ``lr / decay**2`` and so on down to the input (ULMFiT's 2.6 by default). Every
    parameter of a block is in its group, frozen or not, so that the same optimizer keeps
    working as blocks are unfrozen (optimizers skip parameters whose ``.grad`` is None).

    Args:
        model: the model.
        lr: learning rate of the top block.
        decay: factor between the rates of neighbouring blocks (1 = one rate). Default: ``2.6``
        block_names: the blocks, bottom first. Default: :func:`blocks` of the model.

    Returns:
        list of dicts with ``params``, ``lr`` and ``name``, for ``torch.optim`` optimizers.

    Examples:
        >>> from torch import nn
        >>> model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 8), nn.Linear(8, 2))
        >>> [(g["name"], round(g["lr"], 4)) for g in param_groups(model, 0.01, decay=2.0)]
        [('0', 0.0025), ('2', 0.005), ('3', 0.01)]
    """
    if not lr > 0:
        raise ValueError(f"lr: expected > 0, got {lr!r}")
    if not decay >= 1:
        raise ValueError(f"decay: expected >= 1, got {decay!r}")
    names = list(block_names) if block_names is not None else [n for n, _ in blocks(model)]
    children = dict(model.named_children())
    unknown = [n for n in names if n not in children]
    if unknown:
        raise ValueError(f"block_names: {unknown} are not blocks of the model: {list(children)}")
    groups = []
    for depth, name in enumerate(reversed(names)):
        groups.append(
            {"params": list(children[name].parameters()), "lr": lr / decay**depth, "name": name}
        )
    return groups[::-1]


class GradualUnfreezing:
    """Unfreeze one block per epoch, from the top (ULMFiT).

    At construction everything but the top block is frozen; each :meth:`step` (call it at
    the start of every epoch after the first) unfreezes the next block down. Use it with
    an optimizer built from :func:`param_groups`, which already holds every block.

    Args:
        model: the model, changed in place.
        block_names: the blocks, bottom first. Default: :func:`blocks` of the model.

    Attributes:
        unfrozen: number of blocks trainable now (from the top).

    Examples:
        >>> from torch import nn
        >>> model = nn.Sequential(nn.Linear(4, 8), nn.Linear(8, 8), nn.Linear(8, 2))
        >>> schedule = GradualUnfreezing(model)
        >>> [n for n, p in model.named_parameters() if p.requires_grad]
        ['2.weight', '2.bias']
        >>> schedule.step(); schedule.unfrozen
        2
    """

    def __init__(self, model: nn.Module, block_names: Sequence[str] | None = None) -> None:
        self.model = model
        self.block_names = (
            list(block_names) if block_names is not None else [n for n, _ in blocks(model)]
        )
        if not self.block_names:
            raise ValueError("model: expected at least one block with parameters, found none")
        freeze(model, except_=self.block_names[-1])
        self.unfrozen = 1

    def step(self) -> None:
        """Unfreeze the next block down (a no-op once all are trainable)."""
        if self.unfrozen < len(self.block_names):
            self.unfrozen += 1
            unfreeze(self.model, self.block_names[-self.unfrozen])
            self.model.train(self.model.training)  # unfrozen BatchNorm uses batch stats again
