r"""A weighted sum of losses that remembers each term for logging (tip 1, FAQ claim 1.4)."""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Mapping

from torch import Tensor, nn

__all__ = ["CompositeLoss"]

LossFn = Callable[[Tensor, Tensor], Tensor]


class _FunctionLoss(nn.Module):
    """Wraps a plain loss function so that every term of a CompositeLoss is a submodule."""

    def __init__(self, fn: LossFn) -> None:
        super().__init__()
        self.fn = fn

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        return self.fn(input, target)

    def extra_repr(self) -> str:
        return getattr(self.fn, "__qualname__", repr(self.fn))


class CompositeLoss(nn.Module):
    r"""A weighted sum of losses; each term's last value is kept for logging.

    .. math::
        \ell(x, y) = \sum_k w_k\, \ell_k(x, y)

    Every term is called with the same ``(input, target)`` and must return a scalar.
    The terms are submodules (in the ``ModuleDict`` ``terms``; a plain function is
    wrapped in a small module), so ``.to()``, ``state_dict()`` and ``parameters()``
    reach them.

    After each call, :attr:`last` holds each term's *unweighted* value as a Python float
    (detached), e.g. ``{"ce": 0.71, "focal": 0.23}``, ready for ``run.log(...)``; the
    weighted total is the return value. The values are kept as detached tensors and
    turned into floats only when :attr:`last` is read, so a training step that does not
    log does not wait for the device.

    Args:
        terms: a mapping from a name (a non-empty string without ``.``) to a pair
            ``(loss, weight)``: ``loss`` an ``nn.Module`` or function called as
            ``loss(input, target)``, ``weight`` a finite real number.

    Attributes:
        terms: ``nn.ModuleDict`` of the loss modules, in the given order.
        weights: ``dict`` from name to weight (floats).
        last: ``dict`` from name to the term's last unweighted value (floats); empty
            before the first call.

    Shape:
        - Input, Target: whatever every term accepts.
        - Output: scalar.

    Raises:
        TypeError: ``terms`` not a mapping; a name that is not a string; a value that is
            not a ``(loss, weight)`` pair; a loss that is not callable; a weight that is
            not a real number.
        ValueError: no terms; an empty or dotted name; a non-finite weight; a term that
            returns something other than a 0-dim tensor.

    Examples:
        >>> import torch
        >>> from torch import nn
        >>> from torchkata.losses import CompositeLoss, FocalLoss
        >>> loss = CompositeLoss({"ce": (nn.CrossEntropyLoss(), 1.0), "focal": (FocalLoss(), 0.5)})
        >>> logits = torch.tensor([[2.0, 0.0, -1.0], [0.5, 0.5, 0.0]], requires_grad=True)
        >>> target = torch.tensor([0, 2])
        >>> total = loss(logits, target)
        >>> total.backward()
        >>> total
        tensor(1.0296, grad_fn=<AddBackward0>)
        >>> loss.last
        {'ce': 0.813..., 'focal': 0.431...}
        >>> loss.weights
        {'ce': 1.0, 'focal': 0.5}
    """

    def __init__(self, terms: Mapping[str, tuple[LossFn, float]]) -> None:
        super().__init__()
        if not isinstance(terms, Mapping):
            raise TypeError(
                f"terms: expected a mapping name -> (loss, weight), got {type(terms).__name__}"
            )
        if not terms:
            raise ValueError("terms: expected at least one (loss, weight) term, got none")
        modules: dict[str, nn.Module] = {}
        weights: dict[str, float] = {}
        for name, value in terms.items():
            if not isinstance(name, str):
                raise TypeError(f"terms: expected string names, got {name!r}")
            if not name or "." in name:
                raise ValueError(f"terms: expected a non-empty name without '.', got {name!r}")
            if not isinstance(value, (tuple, list)) or len(value) != 2:
                raise TypeError(f"terms[{name!r}]: expected a pair (loss, weight), got {value!r}")
            loss, weight = value
            if not callable(loss):
                raise TypeError(
                    f"terms[{name!r}]: expected a callable loss (an nn.Module or a function), "
                    f"got {type(loss).__name__}"
                )
            if not isinstance(weight, numbers.Real) or isinstance(weight, bool):
                raise TypeError(
                    f"terms[{name!r}]: expected a real-number weight, got {weight!r} "
                    f"({type(weight).__name__})"
                )
            if not math.isfinite(float(weight)):
                raise ValueError(f"terms[{name!r}]: expected a finite weight, got {weight!r}")
            modules[name] = loss if isinstance(loss, nn.Module) else _FunctionLoss(loss)
            weights[name] = float(weight)
        try:
            self.terms = nn.ModuleDict(modules)
        except KeyError as error:  # a name that clashes with a ModuleDict attribute
            raise ValueError(f"terms: a name is not usable as a submodule name: {error}") from None
        self.weights = weights
        self._last: dict[str, Tensor] = {}

    @property
    def last(self) -> dict[str, float]:
        """Each term's unweighted value at the last call, as floats (empty before it)."""
        return {name: float(value) for name, value in self._last.items()}

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        total: Tensor | None = None
        last: dict[str, Tensor] = {}
        for name, loss in self.terms.items():
            value = loss(input, target)
            if not isinstance(value, Tensor) or value.dim() != 0:
                got = tuple(value.shape) if isinstance(value, Tensor) else type(value).__name__
                raise ValueError(
                    f"terms[{name!r}]: expected the loss to return a scalar (0-dim tensor; "
                    f"use reduction='mean' or 'sum'), got {got}"
                )
            last[name] = value.detach()
            weighted = self.weights[name] * value
            total = weighted if total is None else total + weighted
        self._last = last
        return total  # type: ignore[return-value]  # at least one term (checked in __init__)

    def extra_repr(self) -> str:
        return f"weights={self.weights}"
