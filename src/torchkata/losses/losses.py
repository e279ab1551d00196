r"""Custom losses written from tensor operations (tip 1).

Each loss is an ``nn.Module`` with a ``reduction`` of ``'mean'``, ``'sum'`` or ``'none'``
and a function (the snake-case name) that does the work, checked as listed:

- :class:`SquaredErrorLoss` / :func:`squared_error_loss`: twin of ``nn.MSELoss``;
- :class:`FocalLoss` / :func:`focal_loss`: float64 formula; cross-entropy at gamma 0;
- :class:`LabelSmoothingCrossEntropy` / :func:`label_smoothing_cross_entropy`: twin of
  ``nn.CrossEntropyLoss`` (weights, ``ignore_index``, label smoothing);
- :class:`DiceLoss` / :func:`dice_loss`: float64 formula;
- :class:`NTXentLoss` / :func:`nt_xent_loss`: float64 double loop over the views;
- :class:`TripletMarginLoss` / :func:`triplet_margin_loss`: twin of
  ``nn.TripletMarginLoss``.

Stability rule: every loss that takes logits works from ``log_softmax`` or ``logsigmoid``,
never from ``log(softmax(x))``, so values and gradients stay finite however confident
the logits (tested at :math:`\pm 10^4`; only differences of logits that overflow the
dtype break it), the source document's "numerically stable" advice (FAQ claim 1.3).

Nothing is broadcast: inputs whose shapes do not match as documented raise a
``ValueError`` naming the argument, the expected and the actual shape.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = [
    "DiceLoss",
    "FocalLoss",
    "LabelSmoothingCrossEntropy",
    "NTXentLoss",
    "SquaredErrorLoss",
    "TripletMarginLoss",
    "dice_loss",
    "focal_loss",
    "label_smoothing_cross_entropy",
    "nt_xent_loss",
    "squared_error_loss",
    "triplet_margin_loss",
]

_REDUCTIONS = ("mean", "sum", "none")


# ---------------------------------------------------------------------------------------
# Validation helpers
# ---------------------------------------------------------------------------------------


def _shape(x: Tensor) -> str:
    return str(tuple(x.shape))


def _check_reduction(reduction: object) -> str:
    if not isinstance(reduction, str) or reduction not in _REDUCTIONS:
        raise ValueError(f"reduction: expected one of 'mean', 'sum', 'none', got {reduction!r}")
    return reduction


def _reduce(loss: Tensor, reduction: str) -> Tensor:
    if reduction == "mean":
        return loss.mean()
    if reduction == "sum":
        return loss.sum()
    return loss


def _check_tensor(name: str, x: object) -> Tensor:
    if not isinstance(x, Tensor):
        raise TypeError(f"{name}: expected a torch.Tensor, got {type(x).__name__}")
    return x


def _check_floating(name: str, x: object) -> Tensor:
    x = _check_tensor(name, x)
    if not x.is_floating_point():
        raise TypeError(f"{name}: expected a floating-point tensor, got dtype {x.dtype}")
    return x


def _is_integer(x: Tensor) -> bool:
    return not x.is_floating_point() and not x.is_complex() and x.dtype != torch.bool


def _check_real(name: str, value: object, low: float, *, low_inclusive: bool = True) -> float:
    """A finite real number ``>= low`` (or ``> low``), not a bool."""
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool)
    if ok and math.isfinite(float(value)):  # type: ignore[arg-type]
        v = float(value)  # type: ignore[arg-type]
        if v > low or (low_inclusive and v == low):
            return v
    bound = f">= {low}" if low_inclusive else f"> {low}"
    raise ValueError(f"{name}: expected a finite real number {bound}, got {value!r}")


def _check_int(name: str, value: object) -> int:
    if not isinstance(value, numbers.Integral) or isinstance(value, bool):
        raise TypeError(f"{name}: expected an int, got {value!r} ({type(value).__name__})")
    return int(value)


def _check_in_unit_interval(name: str, x: Tensor) -> None:
    """Values in [0, 1] (one device sync)."""
    if x.numel() and bool(((x < 0) | (x > 1) | x.isnan()).any()):
        bad = x[(x < 0) | (x > 1) | x.isnan()][0].item()
        raise ValueError(f"{name}: expected values in [0, 1], got {bad}")


def _check_class_target(input: Tensor, target: Tensor, ignore_index: int | None) -> None:
    """``input`` (N, C, d1, ...) logits and ``target`` (N, d1, ...) indices in [0, C)."""
    if input.dim() < 2:
        raise ValueError(
            f"input: expected logits of shape (N, C) or (N, C, d1, ...), got {_shape(input)}"
        )
    if not _is_integer(target):
        raise TypeError(
            f"target: expected integer class indices (torch.long), got dtype {target.dtype}"
        )
    expected = (input.shape[0], *input.shape[2:])
    if tuple(target.shape) != expected:
        raise ValueError(
            f"target: expected shape {expected} (N, d1, ...) for input of shape "
            f"{_shape(input)} (N, C, d1, ...), got {_shape(target)}"
        )
    C = input.shape[1]
    bad = (target < 0) | (target >= C)
    if ignore_index is not None:
        bad &= target != ignore_index
    if target.numel() and bool(bad.any()):
        value = target[bad][0].item()
        allowed = "" if ignore_index is None else f" or ignore_index={ignore_index}"
        raise ValueError(
            f"target: expected class indices in [0, {C - 1}] (C={C}){allowed}, got {value}"
        )


def _unbatched_class_input(input: Tensor, target: Tensor) -> tuple[Tensor, Tensor, bool]:
    """An unbatched pair, logits (C,) and a 0-dim target, as a batch of one."""
    if input.dim() == 1 and target.dim() == 0:
        return input.unsqueeze(0), target.unsqueeze(0), True
    return input, target, False


def _class_weights(
    name: str, weight: Tensor | Sequence[float] | None, C: int, like: Tensor
) -> Tensor | None:
    """``weight`` as a (C,) tensor of ``like``'s dtype and device, or None."""
    if weight is None:
        return None
    w = torch.as_tensor(weight, dtype=like.dtype, device=like.device)
    if w.dim() != 1 or w.shape[0] != C:
        raise ValueError(
            f"{name}: expected one weight per class, shape ({C},) for input of shape "
            f"{_shape(like)}, got {_shape(w)}"
        )
    return w


def _as_class_weight_buffer(name: str, weight: object) -> Tensor | None:
    """Validate a per-class weight given to a constructor: a 1-D tensor (or sequence)."""
    if weight is None:
        return None
    if isinstance(weight, Tensor):
        w = weight.detach().clone()
        if not w.is_floating_point():
            w = w.to(torch.get_default_dtype())
    elif isinstance(weight, Sequence) and not isinstance(weight, str):
        w = torch.as_tensor([float(v) for v in weight], dtype=torch.get_default_dtype())
    else:
        raise TypeError(
            f"{name}: expected None, a 1-D tensor or a sequence of floats, "
            f"got {type(weight).__name__}"
        )
    if w.dim() != 1 or w.numel() == 0:
        raise ValueError(f"{name}: expected a non-empty 1-D tensor (C,), got shape {_shape(w)}")
    if not bool(torch.isfinite(w).all()) or bool((w < 0).any()):
        raise ValueError(f"{name}: expected finite non-negative weights, got {w.tolist()}")
    return w


def _weights_repr(w: Tensor) -> str:
    values = [round(v, 4) for v in w.tolist()]
    return str(values) if len(values) <= 6 else f"<{len(values)} class weights>"


# ---------------------------------------------------------------------------------------
# Squared error: the source document's own example
# ---------------------------------------------------------------------------------------


def squared_error_loss(input: Tensor, target: Tensor, reduction: str = "mean") -> Tensor:
    r"""Squared error :math:`(x - y)^2`, reduced; see :class:`SquaredErrorLoss`.

    Args:
        input: predictions :math:`x`, any shape, floating point.
        target: targets :math:`y`, the same shape and dtype as ``input``.
        reduction: ``'mean'``, ``'sum'`` or ``'none'``. Default: ``'mean'``

    Returns:
        A scalar, or a tensor of ``input``'s shape for ``reduction='none'``.

    Examples:
        >>> import torch
        >>> squared_error_loss(torch.tensor([1.0, 2.0]), torch.tensor([0.0, 0.0]))
        tensor(2.5000)
    """
    reduction = _check_reduction(reduction)
    input = _check_floating("input", input)
    target = _check_floating("target", target)
    if target.shape != input.shape:
        raise ValueError(
            f"target: expected the shape of input {_shape(input)}, got {_shape(target)} "
            f"(nothing is broadcast)"
        )
    return _reduce((input - target).square(), reduction)


class SquaredErrorLoss(nn.Module):
    r"""Mean squared error, the source document's example of a custom loss.

    The document subclasses ``nn.Module`` and returns ``torch.mean((input - target) ** 2)``
    from ``forward``; this is that loss, with a ``reduction`` and input checks. It equals
    ``torch.nn.MSELoss`` in values and gradients (with respect to both arguments), except
    that shapes must match exactly (``MSELoss`` broadcasts, with a warning).

    .. math::
        \ell_i = (x_i - y_i)^2, \qquad
        \ell = \operatorname{mean}_i \ell_i \ (\text{'mean'}), \quad
        \textstyle\sum_i \ell_i \ (\text{'sum'})

    Args:
        reduction: ``'mean'``, ``'sum'`` or ``'none'`` (no reduction). Default: ``'mean'``

    Shape:
        - Input: :math:`(*)`, any number of dimensions.
        - Target: :math:`(*)`, the same shape and dtype as the input.
        - Output: scalar; :math:`(*)` for ``reduction='none'``.

    Raises:
        ValueError: a ``reduction`` other than the three, or a target shape that differs
            from the input's.
        TypeError: non-floating-point input or target.

    Examples:
        >>> import torch
        >>> from torchkata.losses import SquaredErrorLoss
        >>> loss = SquaredErrorLoss()
        >>> x = torch.tensor([[0.5, 1.0], [2.0, -1.0]], requires_grad=True)
        >>> y = torch.tensor([[0.0, 1.0], [1.0, 1.0]])
        >>> value = loss(x, y)
        >>> value
        tensor(1.3125, grad_fn=<MeanBackward0>)
        >>> value.backward()
        >>> x.grad
        tensor([[ 0.2500,  0.0000],
                [ 0.5000, -1.0000]])
        >>> loss
        SquaredErrorLoss(reduction='mean')
    """

    def __init__(self, reduction: str = "mean") -> None:
        super().__init__()
        self.reduction = _check_reduction(reduction)

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        return squared_error_loss(input, target, reduction=self.reduction)

    def extra_repr(self) -> str:
        return f"reduction={self.reduction!r}"


# ---------------------------------------------------------------------------------------
# Focal loss
# ---------------------------------------------------------------------------------------


def _modulating_factor(one_minus_pt: Tensor, gamma: float) -> Tensor:
    """:math:`(1 - p_t)^\\gamma`, with a finite gradient where :math:`1 - p_t = 0`.

    For :math:`0 < \\gamma < 1` the derivative of :math:`u^\\gamma` is infinite at
    :math:`u = 0`, which autograd would multiply by the zero derivative of
    :math:`\\log p_t` and turn into NaN. Clamping :math:`u` to the smallest normal number
    changes the loss by less than that number times :math:`-\\log p_t \\approx u`.
    """
    tiny = torch.finfo(one_minus_pt.dtype).tiny
    return one_minus_pt.clamp_min(tiny).pow(gamma)


def focal_loss(
    input: Tensor,
    target: Tensor,
    gamma: float = 2.0,
    alpha: float | Sequence[float] | Tensor | None = None,
    reduction: str = "mean",
    ignore_index: int = -100,
) -> Tensor:
    r"""Focal loss on logits; see :class:`FocalLoss` for the formula and shapes.

    An integer ``target`` selects the multi-class loss (``input`` (N, C, d1, ...) logits,
    ``target`` (N, d1, ...) class indices); a floating-point ``target`` of ``input``'s shape
    selects the binary loss (one logit per element, targets in [0, 1]).

    Args:
        input: logits.
        target: class indices (integer) or binary targets (floating point, in [0, 1]).
        gamma: focusing parameter :math:`\gamma \ge 0`. Default: 2.0
        alpha: binary: weight :math:`\alpha \in [0, 1]` of the positive class (negatives
            get :math:`1 - \alpha`); multi-class: a sequence or (C,) tensor of per-class
            weights. ``None``: no weighting. Default: ``None``
        reduction: ``'mean'``, ``'sum'`` or ``'none'``. Default: ``'mean'``
        ignore_index: multi-class only: a target value that contributes nothing and is
            left out of the mean. Default: -100

    Returns:
        A scalar, or per-element losses (the target's shape) for ``reduction='none'``.

    Examples:
        >>> import torch
        >>> logits = torch.tensor([[2.0, 0.0, -1.0], [0.5, 0.5, 0.0]])
        >>> target = torch.tensor([0, 2])
        >>> focal_loss(logits, target)
        tensor(0.4313)
        >>> focal_loss(logits, target, gamma=0.0)  # cross-entropy
        tensor(0.8139)
    """
    reduction = _check_reduction(reduction)
    gamma = _check_real("gamma", gamma, 0.0)
    input = _check_floating("input", input)
    target = _check_tensor("target", target)
    if target.is_floating_point():
        return _binary_focal(input, target, gamma, alpha, reduction)
    if not _is_integer(target):
        raise TypeError(
            f"target: expected integer class indices (multi-class) or floating-point "
            f"targets in [0, 1] of input's shape (binary), got dtype {target.dtype}"
        )
    input, target, unbatched = _unbatched_class_input(input, target)
    _check_class_target(input, target, ignore_index)
    C = input.shape[1]
    if alpha is not None and (isinstance(alpha, numbers.Real) or _is_scalar_tensor(alpha)):
        raise ValueError(
            f"alpha: a single alpha weights the positive class of binary (floating-point) "
            f"targets; for class-index targets give one weight per class (length {C}), "
            f"got {alpha!r}"
        )
    alpha_t = _class_weights("alpha", alpha, C, input)  # type: ignore[arg-type]

    logp = input.log_softmax(dim=1)  # (N, C, d1, ...)
    keep = target != ignore_index  # (N, d1, ...)
    safe = target.masked_fill(~keep, 0).long()  # (N, d1, ...), a valid index everywhere
    logp_t = logp.gather(1, safe.unsqueeze(1)).squeeze(1)  # (N, d1, ...)
    loss = -logp_t
    if gamma != 0:
        # 1 - p_t = -expm1(log p_t): no cancellation when p_t is close to 1.
        loss = _modulating_factor(-torch.expm1(logp_t), gamma) * loss
    if alpha_t is not None:
        loss = alpha_t[safe] * loss  # (N, d1, ...)
    loss = loss.masked_fill(~keep, 0.0)
    if reduction == "mean":
        return loss.sum() / keep.sum()
    if reduction == "sum":
        return loss.sum()
    return loss.squeeze(0) if unbatched else loss


def _is_scalar_tensor(x: object) -> bool:
    return isinstance(x, Tensor) and x.dim() == 0


def _binary_focal(
    input: Tensor,
    target: Tensor,
    gamma: float,
    alpha: float | Sequence[float] | Tensor | None,
    reduction: str,
) -> Tensor:
    if target.shape != input.shape:
        raise ValueError(
            f"target: floating-point targets select the binary focal loss and must have "
            f"input's shape {_shape(input)}, got {_shape(target)} (for multi-class, "
            f"pass integer class indices)"
        )
    _check_in_unit_interval("target", target)
    a: float | None = None
    if alpha is not None:
        if isinstance(alpha, Tensor) and alpha.dim() == 0:
            alpha = float(alpha.item())
        if not isinstance(alpha, numbers.Real) or isinstance(alpha, bool):
            raise ValueError(
                f"alpha: binary targets take a single float in [0, 1] (weight of the "
                f"positive class), got {alpha!r}"
            )
        a = _check_real("alpha", alpha, 0.0)
        if a > 1:
            raise ValueError(f"alpha: expected a float in [0, 1] for binary targets, got {a}")
    target = target.to(input.dtype)
    # -log p_t for soft targets: the binary cross-entropy, from log-sigmoids.
    loss = -(target * F.logsigmoid(input) + (1 - target) * F.logsigmoid(-input))
    if gamma != 0:
        # 1 - p_t = p (1 - t) + (1 - p) t, with 1 - p = sigmoid(-x): no cancellation.
        one_minus_pt = torch.sigmoid(input) * (1 - target) + torch.sigmoid(-input) * target
        loss = _modulating_factor(one_minus_pt, gamma) * loss
    if a is not None:
        loss = (a * target + (1 - a) * (1 - target)) * loss
    return _reduce(loss, reduction)


class FocalLoss(nn.Module):
    r"""Focal loss, multi-class (softmax) or binary (sigmoid), on logits.

    Lin, Goyal, Girshick, He and Dollár, *Focal Loss for Dense Object Detection*, 2017
    (https://arxiv.org/abs/1708.02002).

    .. math::
        \ell_i = -\alpha_{t} \, (1 - p_{t})^{\gamma} \log p_{t}

    where :math:`p_t` is the predicted probability of the true class. The factor
    :math:`(1 - p_t)^\gamma` shrinks the loss of well-classified examples so that
    training focuses on hard ones; :math:`\gamma = 0` without :math:`\alpha` is the
    cross-entropy (``F.cross_entropy`` / ``F.binary_cross_entropy_with_logits``).

    The target's dtype selects the form:

    - **multi-class** (integer ``target``): :math:`\log p_t` is taken from
      ``log_softmax(input, dim=1)`` at the target class; :math:`\alpha_t` is
      ``alpha[target]`` (one weight per class) or 1.
    - **binary** (floating-point ``target`` of ``input``'s shape, values in [0, 1]):
      :math:`-\log p_t = -t \log\sigma(x) - (1 - t) \log\sigma(-x)` (from ``logsigmoid``),
      :math:`1 - p_t = \sigma(x)(1 - t) + \sigma(-x)\, t` and
      :math:`\alpha_t = \alpha t + (1 - \alpha)(1 - t)` (as ``torchvision``'s
      ``sigmoid_focal_loss``; soft targets interpolate).

    Computed from log-probabilities, the loss and its gradient stay finite however
    confident the logits (tested at :math:`\pm 10^4`), unlike
    ``-(1 - p)**gamma * log(p)`` with ``p`` from ``softmax``, which gives ``inf``/``NaN``
    once a probability underflows to 0.

    ``'mean'`` divides by the number of non-ignored elements, also when ``alpha`` is
    given (as the paper and ``torchvision``; ``F.cross_entropy(weight=...)`` instead
    divides by the total weight).

    Args:
        gamma: focusing parameter :math:`\gamma \ge 0`. Default: 2.0
        alpha: binary: a float in [0, 1], the weight of the positive class (the paper
            uses 0.25); multi-class: a sequence or (C,) tensor of per-class weights,
            kept as the buffer ``alpha`` (a tensor keeps its dtype, a sequence gets the
            default dtype; ``.to()`` converts it). ``None``: no weighting. Default: ``None``
        reduction: ``'mean'``, ``'sum'`` or ``'none'``. Default: ``'mean'``
        ignore_index: multi-class only: a target value that contributes 0 and is left out
            of the mean. Default: -100

    Shape:
        - Multi-class input: :math:`(N, C)` or :math:`(N, C, d_1, \ldots, d_K)` logits, or
          :math:`(C)` with a 0-dim target; target: :math:`(N)` or
          :math:`(N, d_1, \ldots, d_K)` integer class indices in :math:`[0, C)`.
        - Binary input: :math:`(*)` logits; target: :math:`(*)`, the same shape, floating
          point, in [0, 1].
        - Output: scalar; the target's shape for ``reduction='none'`` (0 at ignored
          elements).

    Raises:
        ValueError: bad ``gamma``, ``alpha`` or ``reduction``; target shape not as above;
            class index out of range; binary target outside [0, 1]; a float ``alpha``
            with class-index targets or a per-class ``alpha`` with binary targets.
        TypeError: non-floating-point input; a target that is neither integer nor
            floating point; a non-integer ``ignore_index``.

    Examples:
        >>> import torch
        >>> import torch.nn.functional as F
        >>> from torchkata.losses import FocalLoss
        >>> logits = torch.tensor([[2.0, 0.0, -1.0], [0.5, 0.5, 0.0], [1e4, -1e4, 0.0]])
        >>> target = torch.tensor([0, 2, 1])
        >>> FocalLoss(gamma=2.0)(logits, target)
        tensor(6666.9546)
        >>> bool(torch.isclose(FocalLoss(gamma=0.0)(logits, target),
        ...                    F.cross_entropy(logits, target)))
        True
        >>> binary = FocalLoss(alpha=0.25)
        >>> binary(torch.tensor([3.0, -2.0]), torch.tensor([1.0, 0.0]))
        tensor(0.0007)
        >>> binary
        FocalLoss(gamma=2.0, alpha=0.25, ignore_index=-100, reduction='mean')
    """

    def __init__(
        self,
        gamma: float = 2.0,
        alpha: float | Sequence[float] | Tensor | None = None,
        reduction: str = "mean",
        ignore_index: int = -100,
    ) -> None:
        super().__init__()
        self.gamma = _check_real("gamma", gamma, 0.0)
        self.reduction = _check_reduction(reduction)
        self.ignore_index = _check_int("ignore_index", ignore_index)
        self.alpha: float | Tensor | None
        if alpha is None:
            self.alpha = None
        elif isinstance(alpha, numbers.Real) or _is_scalar_tensor(alpha):
            a = _check_real("alpha", float(alpha), 0.0)  # type: ignore[arg-type]
            if a > 1:
                raise ValueError(f"alpha: expected a float in [0, 1] or per-class weights, got {a}")
            self.alpha = a
        else:
            self.register_buffer("alpha", _as_class_weight_buffer("alpha", alpha))

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        return focal_loss(
            input,
            target,
            gamma=self.gamma,
            alpha=self.alpha,
            reduction=self.reduction,
            ignore_index=self.ignore_index,
        )

    def extra_repr(self) -> str:
        alpha = _weights_repr(self.alpha) if isinstance(self.alpha, Tensor) else self.alpha
        return (
            f"gamma={self.gamma}, alpha={alpha}, ignore_index={self.ignore_index}, "
            f"reduction={self.reduction!r}"
        )


# ---------------------------------------------------------------------------------------
# Cross-entropy with label smoothing
# ---------------------------------------------------------------------------------------


def label_smoothing_cross_entropy(
    input: Tensor,
    target: Tensor,
    weight: Tensor | None = None,
    ignore_index: int = -100,
    reduction: str = "mean",
    label_smoothing: float = 0.0,
) -> Tensor:
    r"""Cross-entropy with class weights and label smoothing, from ``log_softmax``.

    Equals ``F.cross_entropy(input, target, weight=weight, ignore_index=ignore_index,
    reduction=reduction, label_smoothing=label_smoothing)`` for class-index targets; see
    :class:`LabelSmoothingCrossEntropy` for the formula and shapes.

    Examples:
        >>> import torch
        >>> logits = torch.tensor([[2.0, 0.0, -1.0], [0.5, 0.5, 0.0]])
        >>> label_smoothing_cross_entropy(logits, torch.tensor([0, 2]), label_smoothing=0.1)
        tensor(0.8806)
    """
    reduction = _check_reduction(reduction)
    eps = _check_real("label_smoothing", label_smoothing, 0.0)
    if eps > 1:
        raise ValueError(f"label_smoothing: expected a float in [0, 1], got {label_smoothing}")
    input = _check_floating("input", input)
    target = _check_tensor("target", target)
    if not _is_integer(target):
        raise TypeError(
            f"target: expected integer class indices (torch.long), got dtype {target.dtype} "
            f"(class-probability targets are not supported)"
        )
    input, target, unbatched = _unbatched_class_input(input, target)
    _check_class_target(input, target, ignore_index)
    C = input.shape[1]
    w = _class_weights("weight", weight, C, input)  # (C,) or None

    logp = input.log_softmax(dim=1)  # (N, C, d1, ...)
    keep = target != ignore_index  # (N, d1, ...)
    safe = target.masked_fill(~keep, 0).long()  # (N, d1, ...)
    nll = -logp.gather(1, safe.unsqueeze(1)).squeeze(1)  # (N, d1, ...)
    w_t = keep.to(input.dtype) if w is None else w[safe] * keep  # (N, d1, ...)
    loss = nll if w is None else w_t * nll
    if eps > 0:
        # The uniform part of the smoothed target: -(1/C) sum_c w_c log p_c.
        if w is None:
            smooth = -logp.sum(dim=1)  # (N, d1, ...)
        else:
            w_b = w.view(1, C, *([1] * (input.dim() - 2)))  # (1, C, 1, ...)
            smooth = -(logp * w_b).sum(dim=1)  # (N, d1, ...)
        loss = (1 - eps) * loss + (eps / C) * smooth
    loss = loss.masked_fill(~keep, 0.0)
    if reduction == "mean":
        # torch's weighted mean: both terms are divided by the total weight of the
        # non-ignored targets, sum_i w[y_i] (the count when unweighted).
        return loss.sum() / w_t.sum()
    if reduction == "sum":
        return loss.sum()
    return loss.squeeze(0) if unbatched else loss


class LabelSmoothingCrossEntropy(nn.Module):
    r"""Cross-entropy with label smoothing and class weights, written from ``log_softmax``.

    Szegedy et al., *Rethinking the Inception Architecture for Computer Vision*, 2016
    (https://arxiv.org/abs/1512.00567), section 7.

    The one-hot target is mixed with the uniform distribution,
    :math:`q = (1 - \varepsilon)\,\mathrm{onehot}(y) + \varepsilon / C`, and with class
    weights :math:`w` each sample's loss is

    .. math::
        \ell_i = (1 - \varepsilon)\, w_{y_i} \bigl(-\log p_{i, y_i}\bigr)
            + \frac{\varepsilon}{C} \sum_{c=1}^{C} w_c \bigl(-\log p_{i, c}\bigr),
        \qquad \log p_i = \operatorname{log\_softmax}(x_i)

    (:math:`\ell_i = 0` where :math:`y_i` is ``ignore_index``). ``'sum'`` is
    :math:`\sum_i \ell_i`; ``'mean'`` is :math:`\sum_i \ell_i / \sum_{i} w_{y_i}` over the
    non-ignored samples: both terms are divided by the total weight of the targets, as
    ``torch.nn.CrossEntropyLoss`` does (the count of non-ignored targets when
    unweighted). Values and gradients equal ``nn.CrossEntropyLoss(weight=weight,
    ignore_index=ignore_index, reduction=reduction, label_smoothing=label_smoothing)`` for
    class-index targets; class-probability targets are not supported.

    Args:
        label_smoothing: :math:`\varepsilon \in [0, 1]`, the mass moved to the uniform
            distribution. Default: 0.0
        weight: per-class weights (C,), kept as the buffer ``weight`` (a tensor keeps its
            dtype, a sequence gets the default dtype). Default: ``None``
        ignore_index: a target value that contributes 0 and is left out of the mean.
            Default: -100
        reduction: ``'mean'``, ``'sum'`` or ``'none'``. Default: ``'mean'``

    Shape:
        - Input: :math:`(N, C)` or :math:`(N, C, d_1, \ldots, d_K)` logits, or :math:`(C)`.
        - Target: :math:`(N)` or :math:`(N, d_1, \ldots, d_K)` integer class indices in
          :math:`[0, C)` or ``ignore_index``; 0-dim for a :math:`(C)` input.
        - Output: scalar; the target's shape for ``reduction='none'``.

    Raises:
        ValueError: bad ``label_smoothing``, ``weight`` or ``reduction``; target shape
            not as above; class index out of range; ``weight`` not of length C.
        TypeError: non-floating-point input, non-integer target or ``ignore_index``.

    Examples:
        >>> import torch
        >>> from torch import nn
        >>> from torchkata.losses import LabelSmoothingCrossEntropy
        >>> _ = torch.manual_seed(0)
        >>> logits, target = torch.randn(8, 5), torch.randint(0, 5, (8,))
        >>> w = torch.tensor([1.0, 2.0, 0.5, 1.0, 3.0])
        >>> ours = LabelSmoothingCrossEntropy(label_smoothing=0.1, weight=w)
        >>> twin = nn.CrossEntropyLoss(weight=w, label_smoothing=0.1)
        >>> bool(torch.isclose(ours(logits, target), twin(logits, target)))
        True
        >>> LabelSmoothingCrossEntropy(0.1)(torch.tensor([[1e4, -1e4]]), torch.tensor([1]))
        tensor(19000.)
    """

    def __init__(
        self,
        label_smoothing: float = 0.0,
        weight: Tensor | Sequence[float] | None = None,
        ignore_index: int = -100,
        reduction: str = "mean",
    ) -> None:
        super().__init__()
        self.label_smoothing = _check_real("label_smoothing", label_smoothing, 0.0)
        if self.label_smoothing > 1:
            raise ValueError(f"label_smoothing: expected a float in [0, 1], got {label_smoothing}")
        self.ignore_index = _check_int("ignore_index", ignore_index)
        self.reduction = _check_reduction(reduction)
        self.weight: Tensor | None
        self.register_buffer("weight", _as_class_weight_buffer("weight", weight))

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        return label_smoothing_cross_entropy(
            input,
            target,
            weight=self.weight,
            ignore_index=self.ignore_index,
            reduction=self.reduction,
            label_smoothing=self.label_smoothing,
        )

    def extra_repr(self) -> str:
        weight = None if self.weight is None else _weights_repr(self.weight)
        return (
            f"label_smoothing={self.label_smoothing}, weight={weight}, "
            f"ignore_index={self.ignore_index}, reduction={self.reduction!r}"
        )


# ---------------------------------------------------------------------------------------
# Soft Dice loss
# ---------------------------------------------------------------------------------------


def dice_loss(
    input: Tensor, target: Tensor, smooth: float = 1.0, reduction: str = "mean"
) -> Tensor:
    r"""Soft Dice loss on logits; see :class:`DiceLoss` for the formula and shapes.

    Returns:
        A scalar, or for ``reduction='none'`` one loss per sample :math:`(N)` (binary) or
        per sample and class :math:`(N, C)` (multi-class).

    Examples:
        >>> import torch
        >>> logits = torch.tensor([[[4.0, -4.0], [4.0, -4.0]]])  # (N=1, H=2, W=2)
        >>> target = torch.tensor([[[1.0, 0.0], [1.0, 0.0]]])
        >>> dice_loss(logits, target, reduction="none")
        tensor([0.0144])
    """
    reduction = _check_reduction(reduction)
    smooth = _check_real("smooth", smooth, 0.0)
    input = _check_floating("input", input)
    target = _check_tensor("target", target)
    if target.dtype == torch.bool or target.is_complex():
        raise TypeError(f"target: expected integer or floating-point values, got {target.dtype}")
    if input.dim() == 0:
        raise ValueError("input: expected shape (N, *) or (N, C, *), got a 0-dim tensor")
    N = input.shape[0]
    if target.shape == input.shape:
        # Binary, one element per logit: one Dice per sample over all its elements.
        probs = torch.sigmoid(input).reshape(N, 1, -1)  # (N, 1, M)
        onehot = _binary_target(target, input.dtype).reshape(N, 1, -1)  # (N, 1, M)
        binary = True
    elif input.dim() >= 2 and tuple(target.shape) == (N, *input.shape[2:]):
        C = input.shape[1]
        if C == 1:  # binary with a channel dimension: (N, 1, *) logits, (N, *) target
            probs = torch.sigmoid(input).reshape(N, 1, -1)  # (N, 1, M)
            onehot = _binary_target(target, input.dtype).reshape(N, 1, -1)  # (N, 1, M)
            binary = True
        else:
            _check_class_target(input, target, ignore_index=None)
            probs = input.softmax(dim=1).reshape(N, C, -1)  # (N, C, M)
            onehot = F.one_hot(target.long().reshape(N, -1), C)  # (N, M, C)
            onehot = onehot.transpose(1, 2).to(input.dtype)  # (N, C, M)
            binary = False
    else:
        raise ValueError(
            f"target: expected input's shape {_shape(input)} (binary), or "
            f"{(N, *input.shape[2:])} (N, *) for input (N, C, *) (class indices), "
            f"got {_shape(target)}"
        )
    intersection = (probs * onehot).sum(dim=2)  # (N, K)
    total = probs.sum(dim=2) + onehot.sum(dim=2)  # (N, K)
    loss = 1 - (2 * intersection + smooth) / (total + smooth)  # (N, K)
    if binary:
        loss = loss.squeeze(1)  # (N,)
    return _reduce(loss, reduction)


def _binary_target(target: Tensor, dtype: torch.dtype) -> Tensor:
    """Binary Dice targets: floating point in [0, 1] (soft) or integer in {0, 1}."""
    _check_in_unit_interval("target", target)
    return target.to(dtype)


class DiceLoss(nn.Module):
    r"""Soft Dice loss for binary and multi-class segmentation, on logits.

    Milletari, Navab and Ahmadi, *V-Net*, 2016 (https://arxiv.org/abs/1606.04797), with the
    linear denominator and additive smoothing of Sudre et al., 2017.

    For predicted probabilities :math:`p` and (one-hot) targets :math:`t`, summed over the
    positions :math:`j` of one sample and class:

    .. math::
        \ell_{n, c} = 1 - \frac{2 \sum_j p_{n c j}\, t_{n c j} + s}
                               {\sum_j p_{n c j} + \sum_j t_{n c j} + s}

    with smoothing :math:`s` (which makes a class absent from both prediction and target
    score 0 loss, and keeps the ratio finite; with ``smooth=0`` such a class gives NaN).

    The shapes select the form:

    - **binary**: ``target`` of ``input``'s shape, e.g. :math:`(N, H, W)` logits, or
      :math:`(N, 1, *)` logits with an :math:`(N, *)` target; :math:`p = \sigma(x)`; one
      loss per sample over all its elements. Targets: floating point in [0, 1] (soft
      labels allowed) or integer in {0, 1}.
    - **multi-class**: :math:`(N, C, *)` logits with :math:`C \ge 2` and integer
      :math:`(N, *)` class indices; :math:`p = \operatorname{softmax}(x)` over
      :math:`C`, :math:`t` the one-hot target; one loss per sample and class (the
      background class included).

    ``reduction='none'`` returns those losses, :math:`(N)` (binary) or :math:`(N, C)`
    (multi-class, per sample and class); ``'mean'`` averages them all (for multi-class:
    over samples and classes) and ``'sum'`` adds them.

    Args:
        smooth: additive smoothing :math:`s \ge 0` in numerator and denominator.
            Default: 1.0
        reduction: ``'mean'``, ``'sum'`` or ``'none'``. Default: ``'mean'``

    Shape:
        - Input: :math:`(N, *)` (binary, with a target of the same shape),
          :math:`(N, 1, *)` (binary) or :math:`(N, C, *)` (multi-class) logits, where
          :math:`*` is any number of spatial dimensions, e.g. :math:`(H, W)`.
        - Target: the input's shape, or :math:`(N, *)`.
        - Output: scalar; :math:`(N)` (binary) or :math:`(N, C)` (multi-class) for
          ``reduction='none'``.

    Raises:
        ValueError: bad ``smooth`` or ``reduction``; target shape not as above; binary
            target outside [0, 1]; class index out of range.
        TypeError: non-floating-point input; multi-class target not integer.

    Examples:
        >>> import torch
        >>> from torchkata.losses import DiceLoss
        >>> _ = torch.manual_seed(0)
        >>> logits = torch.randn(2, 3, 4, 4)  # (N, C, H, W)
        >>> target = torch.randint(0, 3, (2, 4, 4))  # (N, H, W)
        >>> DiceLoss(reduction="none")(logits, target).shape
        torch.Size([2, 3])
        >>> perfect = 20.0 * torch.nn.functional.one_hot(target, 3).permute(0, 3, 1, 2)
        >>> DiceLoss()(perfect, target)
        tensor(0.)
        >>> DiceLoss(smooth=0.5)
        DiceLoss(smooth=0.5, reduction='mean')
    """

    def __init__(self, smooth: float = 1.0, reduction: str = "mean") -> None:
        super().__init__()
        self.smooth = _check_real("smooth", smooth, 0.0)
        self.reduction = _check_reduction(reduction)

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        return dice_loss(input, target, smooth=self.smooth, reduction=self.reduction)

    def extra_repr(self) -> str:
        return f"smooth={self.smooth}, reduction={self.reduction!r}"


# ---------------------------------------------------------------------------------------
# NT-Xent (SimCLR)
# ---------------------------------------------------------------------------------------


def nt_xent_loss(
    z_a: Tensor, z_b: Tensor, temperature: float = 0.5, reduction: str = "mean"
) -> Tensor:
    r"""NT-Xent loss of two batches of paired views; see :class:`NTXentLoss`.

    Returns:
        A scalar, or the :math:`2N` per-anchor losses for ``reduction='none'`` (the
        anchors of ``z_a`` first, then those of ``z_b``).

    Examples:
        >>> import torch
        >>> z = torch.eye(3)
        >>> nt_xent_loss(z, z, temperature=0.5)  # each view matches only its pair
        tensor(0.4327)
    """
    reduction = _check_reduction(reduction)
    temperature = _check_real("temperature", temperature, 0.0, low_inclusive=False)
    z_a = _check_floating("z_a", z_a)
    z_b = _check_floating("z_b", z_b)
    if z_a.dim() != 2 or z_a.shape[0] == 0:
        raise ValueError(f"z_a: expected shape (N, D) with N >= 1, got {_shape(z_a)}")
    if z_b.shape != z_a.shape:
        raise ValueError(f"z_b: expected the shape of z_a {_shape(z_a)}, got {_shape(z_b)}")
    if z_b.dtype != z_a.dtype:
        raise TypeError(f"z_b: expected the dtype of z_a ({z_a.dtype}), got {z_b.dtype}")
    N = z_a.shape[0]
    z = F.normalize(torch.cat([z_a, z_b]), dim=1)  # (2N, D) unit rows
    sim = z @ z.T / temperature  # (2N, 2N) cosine similarities / tau, a fresh tensor
    sim.fill_diagonal_(float("-inf"))  # an anchor is not its own candidate
    positive = torch.arange(2 * N, device=z.device).roll(N)  # (2N,): i <-> i + N
    # cross_entropy = logsumexp over the row - the positive's logit, fused (log_softmax)
    loss = F.cross_entropy(sim, positive, reduction="none")  # (2N,)
    return _reduce(loss, reduction)


class NTXentLoss(nn.Module):
    r"""Normalised temperature-scaled cross-entropy (NT-Xent), SimCLR's contrastive loss.

    Chen, Kornblith, Norouzi and Hinton, *A Simple Framework for Contrastive Learning of
    Visual Representations*, 2020 (https://arxiv.org/abs/2002.05709), equation (1).

    ``z_a[k]`` and ``z_b[k]`` are two views of sample :math:`k`. Stack them into
    :math:`2N` vectors :math:`z_1, \ldots, z_{2N}` (``z_a`` first), let
    :math:`s_{ij} = z_i^\top z_j / (\lVert z_i \rVert \lVert z_j \rVert)` (cosine
    similarity) and let :math:`j(i)` be the other view of :math:`i`'s sample. Each of the
    :math:`2N` anchors is a :math:`(2N - 1)`-way classification of its positive among all
    other views (itself excluded):

    .. math::
        \ell_i = -\log \frac{\exp(s_{i, j(i)} / \tau)}
                             {\sum_{k \ne i} \exp(s_{i k} / \tau)}, \qquad
        \ell = \frac{1}{2N} \sum_{i=1}^{2N} \ell_i

    Computed with ``logsumexp``, so any temperature and scale of ``z`` is finite; a zero
    vector has similarity 0 with everything (``F.normalize``).

    Args:
        temperature: :math:`\tau > 0`. Default: 0.5
        reduction: ``'mean'`` (over the :math:`2N` anchors), ``'sum'`` or ``'none'``.
            Default: ``'mean'``

    Shape:
        - z_a: :math:`(N, D)` embeddings of the first views, :math:`N \ge 1`.
        - z_b: :math:`(N, D)` embeddings of the second views, same shape and dtype.
        - Output: scalar; :math:`(2N)` for ``reduction='none'`` (``z_a``'s anchors first).

    Raises:
        ValueError: bad ``temperature`` or ``reduction``; ``z_a`` not 2-D or empty;
            ``z_b`` of another shape.
        TypeError: non-floating-point embeddings, or two dtypes.

    Examples:
        >>> import torch
        >>> from torchkata.losses import NTXentLoss
        >>> _ = torch.manual_seed(0)
        >>> z = torch.randn(4, 8)
        >>> loss = NTXentLoss(temperature=0.1)
        >>> aligned = loss(z, z + 0.01 * torch.randn(4, 8))
        >>> shuffled = loss(z, z[[1, 2, 3, 0]])
        >>> bool(aligned < shuffled)
        True
        >>> loss(z, z).shape, NTXentLoss(reduction="none")(z, z).shape
        (torch.Size([]), torch.Size([8]))
    """

    def __init__(self, temperature: float = 0.5, reduction: str = "mean") -> None:
        super().__init__()
        self.temperature = _check_real("temperature", temperature, 0.0, low_inclusive=False)
        self.reduction = _check_reduction(reduction)

    def forward(self, z_a: Tensor, z_b: Tensor) -> Tensor:
        return nt_xent_loss(z_a, z_b, temperature=self.temperature, reduction=self.reduction)

    def extra_repr(self) -> str:
        return f"temperature={self.temperature}, reduction={self.reduction!r}"


# ---------------------------------------------------------------------------------------
# Triplet margin loss
# ---------------------------------------------------------------------------------------


def _pairwise_distance(x1: Tensor, x2: Tensor, p: float, eps: float) -> Tensor:
    """:math:`\\lVert x_1 - x_2 + \\epsilon \\rVert_p` over the last dim, as torch's."""
    return torch.linalg.vector_norm(x1 - x2 + eps, ord=p, dim=-1)


def triplet_margin_loss(
    anchor: Tensor,
    positive: Tensor,
    negative: Tensor,
    margin: float = 1.0,
    p: float = 2.0,
    eps: float = 1e-6,
    swap: bool = False,
    reduction: str = "mean",
) -> Tensor:
    r"""Triplet margin loss; see :class:`TripletMarginLoss` for the formula and shapes.

    Examples:
        >>> import torch
        >>> a, pos, neg = torch.zeros(1, 2), torch.tensor([[0.0, 1.0]]), torch.ones(1, 2)
        >>> triplet_margin_loss(a, pos, neg, margin=1.0)
        tensor(0.5858)
    """
    reduction = _check_reduction(reduction)
    margin = _check_real("margin", margin, 0.0, low_inclusive=False)
    p = _check_real("p", p, 0.0, low_inclusive=False) if not _is_inf(p) else math.inf
    eps = _check_real("eps", eps, 0.0)
    anchor = _check_floating("anchor", anchor)
    if anchor.dim() not in (1, 2):
        raise ValueError(f"anchor: expected shape (N, D) or (D,), got {_shape(anchor)}")
    for name, x in (("positive", positive), ("negative", negative)):
        x = _check_floating(name, x)
        if x.shape != anchor.shape:
            raise ValueError(
                f"{name}: expected the shape of anchor {_shape(anchor)}, got {_shape(x)} "
                f"(nothing is broadcast)"
            )
    d_pos = _pairwise_distance(anchor, positive, p, eps)  # (N,)
    d_neg = _pairwise_distance(anchor, negative, p, eps)  # (N,)
    if swap:
        d_neg = torch.minimum(d_neg, _pairwise_distance(positive, negative, p, eps))
    loss = torch.clamp_min(margin + d_pos - d_neg, 0.0)  # (N,)
    return _reduce(loss, reduction)


def _is_inf(value: object) -> bool:
    return isinstance(value, numbers.Real) and float(value) == math.inf  # type: ignore[arg-type]


class TripletMarginLoss(nn.Module):
    r"""Triplet margin loss, as ``torch.nn.TripletMarginLoss``, from tensor operations.

    Schroff, Kalenichenko and Philbin, *FaceNet*, 2015 (https://arxiv.org/abs/1503.03832);
    the distance swap of Balntas et al., *Learning local feature descriptors with
    triplets and shallow convolutional neural networks*, BMVC 2016.

    .. math::
        \ell_i = \max\bigl(d(a_i, p_i) - d(a_i, n_i) + \text{margin},\ 0\bigr), \qquad
        d(x, y) = \lVert x - y + \epsilon \rVert_p

    (``eps`` is added to the difference, as in ``torch.nn.functional.pairwise_distance``).
    With ``swap=True``, :math:`d(a_i, n_i)` is replaced by
    :math:`\min(d(a_i, n_i), d(p_i, n_i))`. Values and gradients equal the twin's
    (including its gradient conventions at ties of the swap and at the hinge); unlike the
    twin, the three inputs must have the same shape (no broadcasting).

    Args:
        margin: :math:`> 0`. Default: 1.0
        p: the norm degree, :math:`> 0` (``math.inf`` allowed). Default: 2.0
        eps: added to the differences, :math:`\ge 0`. Default: 1e-6
        swap: use the distance swap. Default: ``False``
        reduction: ``'mean'``, ``'sum'`` or ``'none'``. Default: ``'mean'``

    Shape:
        - anchor, positive, negative: :math:`(N, D)` or :math:`(D)`, all the same shape,
          with :math:`D` the embedding size.
        - Output: scalar; :math:`(N)` (or 0-dim for unbatched input) for
          ``reduction='none'``.

    Raises:
        ValueError: bad ``margin``, ``p``, ``eps`` or ``reduction``; inputs not 1-D or
            2-D or of different shapes.
        TypeError: non-floating-point inputs.

    Examples:
        >>> import torch
        >>> from torch import nn
        >>> from torchkata.losses import TripletMarginLoss
        >>> _ = torch.manual_seed(0)
        >>> a, pos, neg = torch.randn(3, 6, 4).unbind(0)
        >>> ours = TripletMarginLoss(margin=0.5, swap=True)
        >>> bool(ours(a, pos, neg) == nn.TripletMarginLoss(margin=0.5, swap=True)(a, pos, neg))
        True
        >>> ours
        TripletMarginLoss(margin=0.5, p=2.0, eps=1e-06, swap=True, reduction='mean')
    """

    def __init__(
        self,
        margin: float = 1.0,
        p: float = 2.0,
        eps: float = 1e-6,
        swap: bool = False,
        reduction: str = "mean",
    ) -> None:
        super().__init__()
        self.margin = _check_real("margin", margin, 0.0, low_inclusive=False)
        self.p = math.inf if _is_inf(p) else _check_real("p", p, 0.0, low_inclusive=False)
        self.eps = _check_real("eps", eps, 0.0)
        self.swap = bool(swap)
        self.reduction = _check_reduction(reduction)

    def forward(self, anchor: Tensor, positive: Tensor, negative: Tensor) -> Tensor:
        return triplet_margin_loss(
            anchor,
            positive,
            negative,
            margin=self.margin,
            p=self.p,
            eps=self.eps,
            swap=self.swap,
            reduction=self.reduction,
        )

    def extra_repr(self) -> str:
        return (
            f"margin={self.margin}, p={self.p}, eps={self.eps}, swap={self.swap}, "
            f"reduction={self.reduction!r}"
        )
