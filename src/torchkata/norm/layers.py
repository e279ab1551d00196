r"""Normalisation layers written from tensor operations (tip 7).

Six layers with the constructor arguments, parameter and buffer names, ``state_dict``
keys, ``extra_repr`` and behaviour of their ``torch.nn`` twins:
:class:`BatchNorm1d`, :class:`BatchNorm2d`, :class:`LayerNorm`, :class:`GroupNorm`,
:class:`InstanceNorm2d` and :class:`RMSNorm`. None of them calls a fused normalisation
kernel of PyTorch; all statistics are plain reductions.

They differ only in the axes over which the mean and variance are taken. For an input
of shape :math:`(N, C, L)`:

========================  ====================================  =================
layer                     statistics over                       one pair per
========================  ====================================  =================
BatchNorm                 :math:`(N, L)`                        channel
LayerNorm / RMSNorm       the trailing ``normalized_shape``     sample (row)
GroupNorm                 :math:`(C / G, L)`                    sample and group
InstanceNorm              :math:`(L)`                           sample and channel
========================  ====================================  =================

The core of each is a :class:`torch.autograd.Function` with a hand-written backward:
:class:`_SampleNorm` normalises within each sample, viewed as :math:`(N, G, K)` with
statistics over K (LayerNorm and RMSNorm with G = 1, GroupNorm, InstanceNorm with one
group per channel), and :class:`_ChannelNorm` normalises each channel of an
:math:`(N, C, L)` tensor over :math:`(N, L)` (BatchNorm). Autograd through the elementary
operations would be exact too, but it keeps several full-size intermediates alive and
makes several times as many passes over memory; the cores save only the input and two
small statistics, allocate nothing of full size besides their result, and
:class:`_SampleNorm` works through the samples in cache-sized blocks. Double backward is
not supported and raises a ``RuntimeError`` (``once_differentiable``); eval-mode
BatchNorm and InstanceNorm with running statistics are plain autograd and support it.
"""

from __future__ import annotations

import math
import numbers
import warnings
from collections.abc import Sequence

import torch
from torch import Tensor, nn
from torch.autograd.function import FunctionCtx, once_differentiable

__all__ = [
    "BatchNorm1d",
    "BatchNorm2d",
    "GroupNorm",
    "InstanceNorm2d",
    "LayerNorm",
    "RMSNorm",
]

_LOW_PRECISION = (torch.float16, torch.bfloat16)


# ---------------------------------------------------------------------------------------
# Cores: autograd Functions with hand-written backward passes
# ---------------------------------------------------------------------------------------


# Samples are processed in blocks of about this many bytes, so that the several passes each
# step makes over a block hit the CPU cache; only x, dy and the result travel to memory.
# (Measured on CPU: smaller blocks pay more Python overhead, larger ones miss the cache.)
_BLOCK_BYTES = 1 << 18


def _samples_per_block(G: int, K: int, itemsize: int) -> int:
    return max(1, _BLOCK_BYTES // max(1, G * K * itemsize))


def _split(t: Tensor | None, size: int, n_blocks: int) -> Sequence[Tensor | None]:
    """Blocks of ``size`` samples along dim 1 of ``t`` (G, N, ...); Nones for None."""
    return [None] * n_blocks if t is None else t.split(size, dim=1)


def _sum_rows(t: Tensor, r: Tensor | None = None) -> Tensor:
    """``sum_b r[g, b] * t[g, b, k]`` for t (G, B, K) and r (G, B, 1) or None (ones): (G, K).

    The fastest form depends on the shape of the block (measured on CPU).
    """
    G, B, _ = t.shape
    if B == 1:  # one sample per block: nothing to sum
        return t[:, 0] if r is None else t[:, 0] * r[:, 0]
    if r is None:
        return t.sum(dim=1)
    if G == 1:
        return torch.bmm(r.mT, t).squeeze(1)  # one vector-matrix product
    return torch.linalg.vecdot(t, r, dim=1)  # many small groups: batched products are slow


def _dot_rows(t: Tensor, w_col: Tensor) -> Tensor:
    """``sum_k t[g, b, k] * w[g, k]`` for t (G, B, K) and w_col (G, K, 1): (G, B, 1)."""
    if t.shape[0] == 1:
        return torch.bmm(t, w_col)  # one matrix-vector product
    return torch.linalg.vecdot(t, w_col.mT, dim=2).unsqueeze(2)


class _SampleNorm(torch.autograd.Function):
    r"""Normalise ``x`` of shape (N, G, K) over K for each (n, g); affine per (g, k).

    One core for the layers whose statistics stay within a sample; they differ only in how
    they view their input and parameters::

        LayerNorm, RMSNorm   (M, 1, D)           D = prod(normalized_shape)
        GroupNorm            (N, G, C/G * L)     groups of C/G channels, L positions
        InstanceNorm2d       (N, C, H * W)       every channel its own group

    ``center=True``: ``y = (x - mean) * rstd * weight + bias`` with ``rstd = 1 / sqrt(var
    + eps)`` and ``var`` the biased variance of the K values of each (n, g).
    ``center=False`` (RMSNorm): ``mean = 0``, so ``var`` is their mean square. ``weight``
    and ``bias`` have shape (G, K) or are None (``bias`` only with ``weight``).

    Backward, per (n, g) with ``gw = dy * weight`` and ``xhat = (x - mean) * rstd``::

        dx      = rstd * (gw - [center] mean(gw) - xhat * mean(gw * xhat))
        dweight = sum over n of dy * xhat
        dbias   = sum over n of dy

    Only ``x`` (the caller's tensor), ``mean`` and ``rstd`` are saved for backward. Inside,
    tensors are viewed as (G, N, K) and cut into blocks of S samples along N.
    """

    @staticmethod
    def forward(
        ctx: FunctionCtx,
        x: Tensor,
        weight: Tensor | None,
        bias: Tensor | None,
        eps: float,
        center: bool,
    ) -> Tensor:
        N, G, K = x.shape
        S = _samples_per_block(G, K, x.element_size())
        y = torch.empty((N, G, K), dtype=x.dtype, device=x.device)
        w = None if weight is None else weight.unsqueeze(1)  # (G, 1, K)
        b = None if bias is None else bias.unsqueeze(1)  # (G, 1, K)
        mean = x.new_empty(G, N, 1) if center else None
        rstd = x.new_empty(G, N, 1)
        eps_t = torch.tensor(eps, dtype=x.dtype, device=x.device)
        blocks = zip(
            x.transpose(0, 1).split(S, dim=1),  # (G, B, K) each
            y.transpose(0, 1).split(S, dim=1),  # (G, B, K)
            _split(mean, S, -(-N // S)),  # (G, B, 1)
            rstd.split(S, dim=1),  # (G, B, 1)
            strict=True,
        )
        for xb, yb, mb, rb in blocks:
            if mb is not None:
                torch.mean(xb, dim=2, keepdim=True, out=mb)  # (G, B, 1)
                src = torch.sub(xb, mb, out=yb)  # (G, B, K) x - mean
            else:
                src = xb
            # Two-pass variance: sum of squares of the centred values (no cancellation).
            torch.linalg.vector_norm(src, dim=2, keepdim=True, out=rb)  # (G, B, 1)
            torch.addcmul(eps_t, rb, rb, value=1 / K, out=rb).rsqrt_()  # 1 / sqrt(var + eps)
            torch.mul(src, rb, out=yb)  # (G, B, K) xhat
            if w is not None and b is not None:
                torch.addcmul(b, yb, w, out=yb)  # (G, B, K)
            elif w is not None:
                yb.mul_(w)
        ctx.center = center
        ctx.save_for_backward(x, weight, mean, rstd)
        return y

    @staticmethod
    @once_differentiable
    def backward(ctx: FunctionCtx, dy: Tensor) -> tuple[Tensor | None, ...]:
        x, weight, mean, rstd = ctx.saved_tensors  # (N, G, K), (G, K), (G, N, 1), (G, N, 1)
        N, G, K = x.shape
        S = _samples_per_block(G, K, x.element_size())
        n_blocks = -(-N // S)
        need_x, need_weight, need_bias = ctx.needs_input_grad[:3]
        dx = torch.empty((N, G, K), dtype=x.dtype, device=x.device) if need_x else None
        dweight = x.new_zeros(G, K) if need_weight else None
        dbias = x.new_zeros(G, K) if need_bias else None
        if weight is None:
            weight = x.new_ones(G, K)
        w_row, w_col = weight.unsqueeze(1), weight.unsqueeze(2)  # (G, 1, K), (G, K, 1)
        w_col_over_K = w_col / K  # (G, K, 1)
        scratch = x.new_empty(G, min(S, N), K)  # one block, reused
        # dx = rstd * (gw + a * (x - mean) - mean(gw)) with a = -rstd**2 * mean(gw * (x - mean)),
        # so that rstd * a * (x - mean) is the -xhat * mean(gw * xhat) term.
        minus_rstd2_over_K = rstd.square().div_(-K)  # (G, N, 1)
        blocks = zip(
            x.transpose(0, 1).split(S, dim=1),  # (G, B, K) each
            dy.transpose(0, 1).split(S, dim=1),  # (G, B, K)
            _split(None if dx is None else dx.transpose(0, 1), S, n_blocks),  # (G, B, K)
            _split(mean, S, n_blocks),  # (G, B, 1)
            rstd.split(S, dim=1),  # (G, B, 1)
            minus_rstd2_over_K.split(S, dim=1),  # (G, B, 1)
            strict=True,
        )
        for xb, dyb, dxb, mb, rb, m2b in blocks:
            B = xb.shape[1]
            t = scratch if scratch.shape[1] == B else scratch[:, :B]  # (G, B, K)
            if mb is not None:
                torch.sub(xb, mb, out=t).mul_(dyb)  # (x - mean) * dy
            else:
                torch.mul(xb, dyb, out=t)  # x * dy
            if dweight is not None:
                dweight += _sum_rows(t, rb)  # (G, K) sum_B dy * xhat
            if dbias is not None:
                dbias += _sum_rows(dyb)  # (G, K) sum_B dy
            if dxb is None:
                continue
            a = _dot_rows(t, w_col).mul_(m2b)  # (G, B, 1)
            torch.mul(xb, a, out=dxb)  # (G, B, K) a * x
            if mb is not None:
                # - a * mean - mean(gw)
                dxb.sub_(torch.addcmul(_dot_rows(dyb, w_col_over_K), a, mb))
            dxb.addcmul_(dyb, w_row)  # + gw
            dxb.mul_(rb)
        return dx, dweight, dbias, None, None


class _ChannelNorm(torch.autograd.Function):
    r"""Batch normalisation of ``x`` of shape (N, C, L) over (N, L) for each channel.

    Returns ``y`` and the batch statistics ``mean`` and biased ``var`` (both (C,),
    not differentiable) so that the caller can update its running estimates.

    Backward, per channel with ``n = N * L`` and ``xhat = (x - mean) * rstd``::

        dx      = weight * rstd * (dy - mean(dy) - xhat * mean(dy * xhat))
        dweight = sum(dy * xhat),   dbias = sum(dy)
    """

    @staticmethod
    def forward(
        ctx: FunctionCtx,
        x: Tensor,
        weight: Tensor | None,
        bias: Tensor | None,
        eps: float,
    ) -> tuple[Tensor, Tensor, Tensor]:
        N, _, L = x.shape  # (N, C, L)
        mean = x.mean(dim=(0, 2))  # (C,)
        y = x - mean[:, None]  # (N, C, L), becomes the output in place below
        var = torch.linalg.vector_norm(y, dim=(0, 2)).square_().div_(N * L)  # (C,)
        rstd = (var + eps).rsqrt_()  # (C,)
        scale = rstd if weight is None else rstd * weight  # (C,)
        y.mul_(scale[:, None])  # (N, C, L)
        if bias is not None:
            y.add_(bias[:, None])
        ctx.save_for_backward(x, weight, mean, rstd)
        ctx.mark_non_differentiable(mean, var)
        return y, mean, var

    @staticmethod
    @once_differentiable
    def backward(
        ctx: FunctionCtx, dy: Tensor, _dmean: Tensor | None, _dvar: Tensor | None
    ) -> tuple[Tensor | None, ...]:
        x, weight, mean, rstd = ctx.saved_tensors  # (N, C, L), (C,), (C,), (C,)
        N, _, L = x.shape
        need_x, need_weight, need_bias = ctx.needs_input_grad[:3]

        buf = torch.sub(x, mean[:, None])  # (N, C, L), later overwritten with dx
        buf.mul_(dy)  # (N, C, L) = dy * (x - mean)
        s_dyxc = buf.sum(dim=(0, 2))  # (C,)
        s_dy = dy.sum(dim=(0, 2))  # (C,)

        dweight = s_dyxc * rstd if need_weight else None  # (C,)
        dbias = s_dy if need_bias else None  # (C,)
        dx = None
        if need_x:
            # dx = k1 * dy + k2 * x + k3, all three constant per channel.
            k1 = rstd if weight is None else rstd * weight  # (C,)
            k2 = -k1 * rstd.square() * s_dyxc / (N * L)  # (C,)
            k3 = -k1 * s_dy / (N * L) - k2 * mean  # (C,)
            dx = torch.mul(x, k2[:, None], out=buf)  # (N, C, L)
            dx.add_(k3[:, None]).addcmul_(dy, k1[:, None])
        return dx, dweight, dbias, None


def _sample_norm(
    x: Tensor, weight: Tensor | None, bias: Tensor | None, eps: float | None, center: bool
) -> Tensor:
    """Apply :class:`_SampleNorm` to ``x`` (N, G, K) with (G, K) ``weight`` and ``bias``.

    float16 and bfloat16 are computed in float32. ``eps=None`` is the machine epsilon of
    the computation type, as in ``torch.nn.RMSNorm``.
    """
    compute_dtype = torch.float32 if x.dtype in _LOW_PRECISION else x.dtype
    if eps is None:
        eps = torch.finfo(compute_dtype).eps
    if compute_dtype == x.dtype:
        return _SampleNorm.apply(x, weight, bias, eps, center)
    y = _SampleNorm.apply(
        x.to(compute_dtype),
        None if weight is None else weight.to(compute_dtype),
        None if bias is None else bias.to(compute_dtype),
        eps,
        center,
    )
    return y.to(x.dtype)


def _per_position(
    weight: Tensor | None, bias: Tensor | None, C: int, L: int
) -> tuple[Tensor | None, Tensor | None]:
    """Per-channel (C,) parameters repeated over L positions: (C, L) each (differentiable)."""
    w = None if weight is None else weight.view(C, 1).expand(C, L).contiguous()
    b = None if bias is None else bias.view(C, 1).expand(C, L).contiguous()
    return w, b


def _shape_str(x: Tensor) -> str:
    return str(tuple(x.shape))


# ---------------------------------------------------------------------------------------
# Batch and instance normalisation (running statistics)
# ---------------------------------------------------------------------------------------


class _NormBase(nn.Module):
    """Parameters, buffers, resets and ``extra_repr`` shared by BatchNorm and InstanceNorm.

    Mirrors ``torch.nn.modules.batchnorm._NormBase`` so that ``state_dict`` keys, buffer
    dtypes and the repr are the twin's.
    """

    # Version 2 of torch's _NormBase added ``num_batches_tracked``; claiming it keeps
    # state_dicts loadable into the twin without its backward-compatibility path.
    _version = 2

    def __init__(
        self,
        num_features: int,
        eps: float,
        momentum: float | None,
        affine: bool,
        track_running_stats: bool,
        device: torch.device | str | None,
        dtype: torch.dtype | None,
        bias: bool,
    ) -> None:
        super().__init__()
        factory_kwargs = {"device": device, "dtype": dtype}
        self.num_features = num_features
        self.eps = eps
        self.momentum = momentum
        self.affine = affine
        self.track_running_stats = track_running_stats
        self.weight: nn.Parameter | None
        self.bias: nn.Parameter | None
        self.running_mean: Tensor | None
        self.running_var: Tensor | None
        self.num_batches_tracked: Tensor | None
        if affine:
            self.weight = nn.Parameter(torch.empty(num_features, **factory_kwargs))
            if bias:
                self.bias = nn.Parameter(torch.empty(num_features, **factory_kwargs))
            else:
                self.register_parameter("bias", None)
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)
        if track_running_stats:
            self.register_buffer("running_mean", torch.zeros(num_features, **factory_kwargs))
            self.register_buffer("running_var", torch.ones(num_features, **factory_kwargs))
            self.register_buffer(
                "num_batches_tracked", torch.tensor(0, dtype=torch.long, device=device)
            )
        else:
            self.register_buffer("running_mean", None)
            self.register_buffer("running_var", None)
            self.register_buffer("num_batches_tracked", None)
        self.reset_parameters()

    def reset_running_stats(self) -> None:
        """Set ``running_mean`` to 0, ``running_var`` to 1 and ``num_batches_tracked`` to 0."""
        if self.running_mean is not None and self.running_var is not None:
            self.running_mean.zero_()
            self.running_var.fill_(1)
        if self.num_batches_tracked is not None:
            self.num_batches_tracked.zero_()

    def reset_parameters(self) -> None:
        """Reset the running statistics, ``weight`` to 1 and ``bias`` to 0."""
        self.reset_running_stats()
        if self.weight is not None:
            nn.init.ones_(self.weight)
        if self.bias is not None:
            nn.init.zeros_(self.bias)

    def extra_repr(self) -> str:
        return (
            f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, "
            f"affine={self.affine}, bias={self.bias is not None}, "
            f"track_running_stats={self.track_running_stats}"
        )

    def _check_channels(self, x: Tensor) -> None:
        if x.shape[1] != self.num_features:
            raise ValueError(
                f"input: expected {self.num_features} channels at dim 1 "
                f"(num_features={self.num_features}), got {x.shape[1]} "
                f"(input shape {_shape_str(x)})"
            )

    def _normalize_with_running_stats(
        self, x: Tensor, running_mean: Tensor, running_var: Tensor
    ) -> Tensor:
        """Eval-mode normalisation of ``x`` (N, C, L) with the running estimates."""
        rstd = (running_var + self.eps).rsqrt()  # (C,)
        scale = rstd if self.weight is None else rstd * self.weight  # (C,)
        shift = -running_mean * scale  # (C,)
        if self.bias is not None:
            shift = shift + self.bias
        return torch.addcmul(shift[:, None], x, scale[:, None])  # (N, C, L)


class _BatchNorm(_NormBase):
    """Forward pass of BatchNorm1d/2d; subclasses only say which inputs they accept."""

    def _as_ncl(self, x: Tensor) -> Tensor:
        raise NotImplementedError

    def forward(self, input: Tensor) -> Tensor:
        x = self._as_ncl(input)  # (N, C, L)
        self._check_channels(x)
        N, _, L = x.shape

        factor = 0.0 if self.momentum is None else self.momentum
        if self.training and self.num_batches_tracked is not None:
            self.num_batches_tracked.add_(1)
            if self.momentum is None:  # cumulative moving average
                factor = 1.0 / float(self.num_batches_tracked)

        # Batch statistics in training, and in eval when no running estimates are kept.
        if not self.training and self.running_mean is not None and self.running_var is not None:
            if self.eps < 0:  # the twin's checks and wording
                raise ValueError(f"batch_norm eps must be non-negative, but got {self.eps}")
            y = self._normalize_with_running_stats(x, self.running_mean, self.running_var)
            return y.reshape(input.shape)

        if self.eps <= 0:
            raise ValueError(f"batch_norm eps must be positive during training, but got {self.eps}")
        if N * L == 1:
            raise ValueError(
                f"Expected more than 1 value per channel when training, got input size "
                f"{input.size()}"
            )
        y, mean, var = _ChannelNorm.apply(x, self.weight, self.bias, self.eps)
        if self.training and self.running_mean is not None and self.running_var is not None:
            with torch.no_grad():
                # The running variance is the unbiased one; normalisation used the biased.
                var_unbiased = var * (N * L / (N * L - 1))
                self.running_mean.mul_(1 - factor).add_(mean, alpha=factor)
                self.running_var.mul_(1 - factor).add_(var_unbiased, alpha=factor)
        return y.reshape(input.shape)


_BATCHNORM_ARGS = r"""
    Args:
        num_features: number of channels :math:`C` of the input.
        eps: value added to the variance for numerical stability. Default: 1e-5
        momentum: weight of the newest batch in the running estimates,
            ``running = (1 - momentum) * running + momentum * batch``; ``None`` gives the
            cumulative (simple) average over ``num_batches_tracked`` batches. Default: 0.1
        affine: learn a per-channel scale ``weight`` and shift ``bias``. Default: ``True``
        track_running_stats: keep ``running_mean``, ``running_var`` (unbiased) and
            ``num_batches_tracked`` in training and use them in eval; when ``False`` the
            buffers are ``None`` and batch statistics are used in eval too. Default: ``True``
        device: device of the parameters and buffers. Default: ``None``
        dtype: dtype of the parameters and running statistics. Default: ``None``
        bias: learn ``bias`` (only with ``affine=True``); keyword only. Default: ``True``

    Attributes:
        weight: (C,) initialised to 1, or ``None``.
        bias: (C,) initialised to 0, or ``None``.
        running_mean: (C,) initialised to 0, or ``None``.
        running_var: (C,) initialised to 1, or ``None``.
        num_batches_tracked: scalar ``torch.long`` count of training batches, or ``None``.
"""


class BatchNorm1d(_BatchNorm):
    __doc__ = (
        r"""Batch normalisation over a 2-D or 3-D input, as ``torch.nn.BatchNorm1d``.

    Ioffe and Szegedy, *Batch Normalization: Accelerating Deep Network Training by
    Reducing Internal Covariate Shift*, 2015 (https://arxiv.org/abs/1502.03167).

    .. math::
        y = \frac{x - \mathrm{E}[x]}{\sqrt{\mathrm{Var}[x] + \epsilon}} \cdot \gamma + \beta

    Mean and biased variance are taken per channel over :math:`(N, L)` of the batch in
    training; eval uses the running estimates (when tracked).
"""
        + _BATCHNORM_ARGS
        + r"""
    Shape:
        - Input: :math:`(N, C)` or :math:`(N, C, L)`, with batch size :math:`N`, channels
          :math:`C` and sequence length :math:`L`.
        - Output: same shape as the input.

    Raises:
        ValueError: input not 2-D or 3-D, wrong channel count, a single value per
            channel or ``eps <= 0`` while using batch statistics (``eps < 0`` otherwise).

    Examples:
        >>> import torch
        >>> from torchkata.norm import BatchNorm1d
        >>> _ = torch.manual_seed(0)
        >>> m = BatchNorm1d(3)
        >>> x = 5 * torch.randn(16, 3) + 2
        >>> y = m(x)
        >>> y.shape
        torch.Size([16, 3])
        >>> bool(y.mean(0).abs().max() < 1e-5), m.num_batches_tracked.item()
        (True, 1)
        >>> m
        BatchNorm1d(3, eps=1e-05, momentum=0.1, affine=True, bias=True, track_running_stats=True)
    """
    )

    def __init__(
        self,
        num_features: int,
        eps: float = 1e-5,
        momentum: float | None = 0.1,
        affine: bool = True,
        track_running_stats: bool = True,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
        *,
        bias: bool = True,
    ) -> None:
        super().__init__(
            num_features, eps, momentum, affine, track_running_stats, device, dtype, bias
        )

    def _as_ncl(self, x: Tensor) -> Tensor:
        if x.dim() == 2:
            return x.unsqueeze(2)  # (N, C, 1)
        if x.dim() == 3:
            return x  # (N, C, L)
        raise ValueError(
            f"input: expected a 2-D (N, C) or 3-D (N, C, L) tensor, got {x.dim()}-D "
            f"with shape {_shape_str(x)}"
        )


class BatchNorm2d(_BatchNorm):
    __doc__ = (
        r"""Batch normalisation over a 4-D input, as ``torch.nn.BatchNorm2d``.

    Ioffe and Szegedy, *Batch Normalization: Accelerating Deep Network Training by
    Reducing Internal Covariate Shift*, 2015 (https://arxiv.org/abs/1502.03167).

    .. math::
        y = \frac{x - \mathrm{E}[x]}{\sqrt{\mathrm{Var}[x] + \epsilon}} \cdot \gamma + \beta

    Mean and biased variance are taken per channel over :math:`(N, H, W)` of the batch
    in training; eval uses the running estimates (when tracked).
"""
        + _BATCHNORM_ARGS
        + r"""
    Shape:
        - Input: :math:`(N, C, H, W)`, with height :math:`H` and width :math:`W`.
        - Output: :math:`(N, C, H, W)` (same shape as input).

    Raises:
        ValueError: input not 4-D, wrong channel count, a single value per channel or
            ``eps <= 0`` while using batch statistics (``eps < 0`` otherwise).

    Examples:
        >>> import torch
        >>> from torchkata.norm import BatchNorm2d
        >>> _ = torch.manual_seed(0)
        >>> m = BatchNorm2d(4, momentum=None)
        >>> x = torch.randn(2, 4, 5, 5)
        >>> m(x).shape
        torch.Size([2, 4, 5, 5])
        >>> _ = m(x + 1.0)  # momentum=None: running_mean is the average of both batches
        >>> torch.allclose(m.running_mean, x.mean((0, 2, 3)) + 0.5)
        True
        >>> _ = m.eval()  # running estimates: one value per channel is fine now
        >>> m(torch.randn(1, 4, 1, 1)).shape
        torch.Size([1, 4, 1, 1])
    """
    )

    def __init__(
        self,
        num_features: int,
        eps: float = 1e-5,
        momentum: float | None = 0.1,
        affine: bool = True,
        track_running_stats: bool = True,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
        *,
        bias: bool = True,
    ) -> None:
        super().__init__(
            num_features, eps, momentum, affine, track_running_stats, device, dtype, bias
        )

    def _as_ncl(self, x: Tensor) -> Tensor:
        if x.dim() != 4:
            raise ValueError(
                f"input: expected a 4-D (N, C, H, W) tensor, got {x.dim()}-D "
                f"with shape {_shape_str(x)}"
            )
        N, C, H, W = x.shape
        return x.reshape(N, C, H * W)  # (N, C, L=H*W)


class InstanceNorm2d(_NormBase):
    r"""Instance normalisation over a 3-D or 4-D input, as ``torch.nn.InstanceNorm2d``.

    Ulyanov, Vedaldi and Lempitsky, *Instance Normalization: The Missing Ingredient for
    Fast Stylization*, 2016 (https://arxiv.org/abs/1607.08022).

    .. math::
        y = \frac{x - \mathrm{E}[x]}{\sqrt{\mathrm{Var}[x] + \epsilon}} \cdot \gamma + \beta

    Mean and biased variance are taken over :math:`(H, W)` separately for each sample
    and channel, in training and eval. With ``track_running_stats=True`` training also
    updates ``running_mean`` and ``running_var`` (the batch average of the per-instance
    mean and unbiased variance) and eval uses them. As in PyTorch, ``num_batches_tracked``
    is never incremented and ``momentum=None`` leaves the running estimates unchanged.

    Args:
        num_features: number of channels :math:`C` of the input.
        eps: value added to the variance for numerical stability. Default: 1e-5
        momentum: weight of the newest batch in the running estimates. Default: 0.1
        affine: learn a per-channel scale ``weight`` and shift ``bias``. Default: ``False``
        track_running_stats: keep running estimates and use them in eval.
            Default: ``False``
        device: device of the parameters and buffers. Default: ``None``
        dtype: dtype of the parameters and running statistics. Default: ``None``
        bias: learn ``bias`` (only with ``affine=True``); keyword only. Default: ``True``

    Attributes:
        weight: (C,) initialised to 1, or ``None``.
        bias: (C,) initialised to 0, or ``None``.
        running_mean, running_var: (C,) initialised to 0 and 1, or ``None``.

    Shape:
        - Input: :math:`(N, C, H, W)` or :math:`(C, H, W)`.
        - Output: same shape as the input.

    Raises:
        ValueError: input not 3-D or 4-D; wrong channel count with ``affine`` or
            ``track_running_stats`` (without them PyTorch only warns, and so do we);
            a single spatial element while using instance statistics.

    Examples:
        >>> import torch
        >>> from torchkata.norm import InstanceNorm2d
        >>> _ = torch.manual_seed(0)
        >>> m = InstanceNorm2d(3)
        >>> y = m(torch.randn(2, 3, 4, 4) * 7 + 3)
        >>> y.shape
        torch.Size([2, 3, 4, 4])
        >>> bool(y.mean((2, 3)).abs().max() < 1e-5)
        True
        >>> m
        InstanceNorm2d(3, eps=1e-05, momentum=0.1, affine=False, bias=False,
                       track_running_stats=False)
    """

    def __init__(
        self,
        num_features: int,
        eps: float = 1e-5,
        momentum: float | None = 0.1,
        affine: bool = False,
        track_running_stats: bool = False,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
        *,
        bias: bool = True,
    ) -> None:
        super().__init__(
            num_features, eps, momentum, affine, track_running_stats, device, dtype, bias
        )

    def forward(self, input: Tensor) -> Tensor:
        if input.dim() not in (3, 4):
            raise ValueError(
                f"input: expected a 3-D (C, H, W) or 4-D (N, C, H, W) tensor, got "
                f"{input.dim()}-D with shape {_shape_str(input)}"
            )
        x = input.unsqueeze(0) if input.dim() == 3 else input  # (N, C, H, W)
        N, C, H, W = x.shape
        if self.affine or self.track_running_stats:
            self._check_channels(x)
        elif self.num_features != C:
            warnings.warn(
                f"input: has {C} channels at dim 1 but num_features={self.num_features}; "
                "num_features is unused because affine=False and track_running_stats=False",
                stacklevel=2,
            )

        # Instance statistics unless in eval with running estimates.
        if not self.training and self.running_mean is not None and self.running_var is not None:
            x3 = x.reshape(N, C, H * W)  # (N, C, L)
            y = self._normalize_with_running_stats(x3, self.running_mean, self.running_var)
            return y.reshape(input.shape)

        if H * W == 1:
            raise ValueError(
                f"Expected more than 1 spatial element when training, got input size {x.size()}"
            )
        x3 = x.reshape(N, C, H * W)  # (N, G=C, K=L): each channel its own group
        weight, bias = _per_position(self.weight, self.bias, C, H * W)  # (C, L)
        y = _sample_norm(x3, weight, bias, self.eps, center=True)  # (N, C, L)
        if (
            self.training
            and self.momentum is not None
            and self.running_mean is not None
            and self.running_var is not None
        ):
            with torch.no_grad():
                var, mean = torch.var_mean(x3, dim=2)  # (N, C), var unbiased
                m = self.momentum
                self.running_mean.mul_(1 - m).add_(mean.mean(0), alpha=m)
                self.running_var.mul_(1 - m).add_(var.mean(0), alpha=m)
        return y.reshape(input.shape)


# ---------------------------------------------------------------------------------------
# Per-sample normalisation (no running statistics)
# ---------------------------------------------------------------------------------------


def _as_shape(normalized_shape: int | Sequence[int]) -> tuple[int, ...]:
    if isinstance(normalized_shape, numbers.Integral):
        return (int(normalized_shape),)
    return tuple(int(d) for d in normalized_shape)


def _check_trailing(x: Tensor, normalized_shape: tuple[int, ...]) -> None:
    k = len(normalized_shape)
    if x.dim() < k or tuple(x.shape[x.dim() - k :]) != normalized_shape:
        raise ValueError(
            f"input: expected trailing dimensions {normalized_shape} "
            f"(normalized_shape), got shape {_shape_str(x)}"
        )


class LayerNorm(nn.Module):
    r"""Layer normalisation over the trailing dimensions, as ``torch.nn.LayerNorm``.

    Ba, Kiros and Hinton, *Layer Normalization*, 2016 (https://arxiv.org/abs/1607.06450).

    .. math::
        y = \frac{x - \mathrm{E}[x]}{\sqrt{\mathrm{Var}[x] + \epsilon}} \cdot \gamma + \beta

    Mean and biased variance are taken over the last ``len(normalized_shape)``
    dimensions of each sample, in training and eval alike.

    Args:
        normalized_shape: trailing shape to normalise over; an int means the last
            dimension only.
        eps: value added to the variance for numerical stability. Default: 1e-5
        elementwise_affine: learn a per-element ``weight`` (and ``bias``) of shape
            ``normalized_shape``. Default: ``True``
        bias: learn ``bias`` (only with ``elementwise_affine=True``). Default: ``True``
        device: device of the parameters. Default: ``None``
        dtype: dtype of the parameters. Default: ``None``

    Attributes:
        weight: ``normalized_shape`` initialised to 1, or ``None``.
        bias: ``normalized_shape`` initialised to 0, or ``None``.

    Shape:
        - Input: :math:`(N, *, \text{normalized\_shape})`, for example :math:`(N, L, E)`
          with sequence length :math:`L` and embedding size :math:`E`.
        - Output: same shape as the input.

    Raises:
        ValueError: trailing dimensions of the input differ from ``normalized_shape``.

    Examples:
        >>> import torch
        >>> from torchkata.norm import LayerNorm
        >>> _ = torch.manual_seed(0)
        >>> m = LayerNorm(8)
        >>> y = m(torch.randn(2, 5, 8) * 3 + 1)
        >>> y.shape
        torch.Size([2, 5, 8])
        >>> bool(y.mean(-1).abs().max() < 1e-5)
        True
        >>> m
        LayerNorm((8,), eps=1e-05, elementwise_affine=True, bias=True)
    """

    def __init__(
        self,
        normalized_shape: int | Sequence[int],
        eps: float = 1e-5,
        elementwise_affine: bool = True,
        bias: bool = True,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        factory_kwargs = {"device": device, "dtype": dtype}
        self.normalized_shape = _as_shape(normalized_shape)
        self.eps = eps
        self.elementwise_affine = elementwise_affine
        self.weight: nn.Parameter | None
        self.bias: nn.Parameter | None
        if elementwise_affine:
            self.weight = nn.Parameter(torch.empty(self.normalized_shape, **factory_kwargs))
            if bias:
                self.bias = nn.Parameter(torch.empty(self.normalized_shape, **factory_kwargs))
            else:
                self.register_parameter("bias", None)
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Set ``weight`` to 1 and ``bias`` to 0."""
        if self.weight is not None:
            nn.init.ones_(self.weight)
        if self.bias is not None:
            nn.init.zeros_(self.bias)

    def forward(self, input: Tensor) -> Tensor:
        _check_trailing(input, self.normalized_shape)
        D = math.prod(self.normalized_shape)
        x = input.reshape(-1, 1, D)  # (M, G=1, D), M = product of the leading dims
        weight = None if self.weight is None else self.weight.view(1, D)  # (G, D)
        bias = None if self.bias is None else self.bias.view(1, D)  # (G, D)
        return _sample_norm(x, weight, bias, self.eps, center=True).reshape(input.shape)

    def extra_repr(self) -> str:
        return (
            f"{self.normalized_shape}, eps={self.eps}, "
            f"elementwise_affine={self.elementwise_affine}, bias={self.bias is not None}"
        )


class RMSNorm(nn.Module):
    r"""Root mean square normalisation over the trailing dimensions, as ``torch.nn.RMSNorm``.

    Zhang and Sennrich, *Root Mean Square Layer Normalization*, 2019
    (https://arxiv.org/abs/1910.07467).

    .. math::
        y = \frac{x}{\sqrt{\epsilon + \frac{1}{D}\sum_{i=1}^{D} x_i^2}} \cdot \gamma

    where the sum runs over the :math:`D` elements of the last
    ``len(normalized_shape)`` dimensions. No mean is subtracted and there is no bias.

    Args:
        normalized_shape: trailing shape to normalise over; an int means the last
            dimension only.
        eps: value added to the mean square. ``None`` uses the machine epsilon of the
            computation type: ``torch.finfo(torch.float64).eps`` for float64 inputs and
            ``torch.finfo(torch.float32).eps`` otherwise (float16/bfloat16 inputs are
            computed in float32). Default: ``None``
        elementwise_affine: learn a per-element ``weight`` of shape ``normalized_shape``.
            Default: ``True``
        device: device of the parameters. Default: ``None``
        dtype: dtype of the parameters. Default: ``None``

    Attributes:
        weight: ``normalized_shape`` initialised to 1, or ``None``.

    Shape:
        - Input: :math:`(N, *, \text{normalized\_shape})`, for example :math:`(N, L, E)`.
        - Output: same shape as the input.

    Raises:
        ValueError: trailing dimensions of the input differ from ``normalized_shape``.

    Examples:
        >>> import torch
        >>> from torchkata.norm import RMSNorm
        >>> m = RMSNorm(4)
        >>> m(torch.tensor([[1.0, -1.0, 1.0, -1.0], [2.0, 2.0, 2.0, 2.0]])).detach()
        tensor([[ 1.0000, -1.0000,  1.0000, -1.0000],
                [ 1.0000,  1.0000,  1.0000,  1.0000]])
        >>> m
        RMSNorm((4,), eps=None, elementwise_affine=True)
    """

    def __init__(
        self,
        normalized_shape: int | Sequence[int],
        eps: float | None = None,
        elementwise_affine: bool = True,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        self.normalized_shape = _as_shape(normalized_shape)
        self.eps = eps
        self.elementwise_affine = elementwise_affine
        self.weight: nn.Parameter | None
        if elementwise_affine:
            self.weight = nn.Parameter(
                torch.empty(self.normalized_shape, device=device, dtype=dtype)
            )
        else:
            self.register_parameter("weight", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Set ``weight`` to 1."""
        if self.weight is not None:
            nn.init.ones_(self.weight)

    def forward(self, input: Tensor) -> Tensor:
        _check_trailing(input, self.normalized_shape)
        D = math.prod(self.normalized_shape)
        x = input.reshape(-1, 1, D)  # (M, G=1, D)
        weight = None if self.weight is None else self.weight.view(1, D)  # (G, D)
        return _sample_norm(x, weight, None, self.eps, center=False).reshape(input.shape)

    def extra_repr(self) -> str:
        return (
            f"{self.normalized_shape}, eps={self.eps}, elementwise_affine={self.elementwise_affine}"
        )


class GroupNorm(nn.Module):
    r"""Group normalisation, as ``torch.nn.GroupNorm``.

    Wu and He, *Group Normalization*, 2018 (https://arxiv.org/abs/1803.08494).

    .. math::
        y = \frac{x - \mathrm{E}[x]}{\sqrt{\mathrm{Var}[x] + \epsilon}} \cdot \gamma + \beta

    The :math:`C` channels are split into :math:`G` groups of :math:`C / G` consecutive
    channels; mean and biased variance are taken over each group's channels and all
    positions, separately for each sample, in training and eval alike. ``weight`` and
    ``bias`` are per channel. :math:`G = 1` is LayerNorm over :math:`(C, *)` with a
    per-channel affine; :math:`G = C` is InstanceNorm.

    Args:
        num_groups: number of groups :math:`G`.
        num_channels: number of channels :math:`C`, divisible by ``num_groups``.
        eps: value added to the variance for numerical stability. Default: 1e-5
        affine: learn a per-channel ``weight`` and ``bias``. Default: ``True``
        device: device of the parameters. Default: ``None``
        dtype: dtype of the parameters. Default: ``None``
        bias: learn ``bias`` (only with ``affine=True``); keyword only. Default: ``True``

    Attributes:
        weight: (C,) initialised to 1, or ``None``.
        bias: (C,) initialised to 0, or ``None``.

    Shape:
        - Input: :math:`(N, C, *)`, for example :math:`(N, C, H, W)`.
        - Output: same shape as the input.

    Raises:
        ValueError: ``num_channels`` not divisible by ``num_groups``; input with fewer
            than 2 dimensions or a channel count other than ``num_channels`` (PyTorch
            accepts any multiple of ``num_groups`` when ``affine=False``; we do not);
            a single sample with a single value per group (as PyTorch).

    Examples:
        >>> import torch
        >>> from torchkata.norm import GroupNorm
        >>> _ = torch.manual_seed(0)
        >>> m = GroupNorm(2, 6)
        >>> y = m(torch.randn(4, 6, 5, 5))
        >>> y.shape
        torch.Size([4, 6, 5, 5])
        >>> bool(y.reshape(4, 2, -1).mean(-1).abs().max() < 1e-5)
        True
        >>> m
        GroupNorm(2, 6, eps=1e-05, affine=True, bias=True)
    """

    def __init__(
        self,
        num_groups: int,
        num_channels: int,
        eps: float = 1e-5,
        affine: bool = True,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
        *,
        bias: bool = True,
    ) -> None:
        super().__init__()
        if num_groups <= 0 or num_channels % num_groups != 0:
            raise ValueError(
                f"num_channels: expected a multiple of num_groups ({num_groups}), "
                f"got {num_channels}"
            )
        factory_kwargs = {"device": device, "dtype": dtype}
        self.num_groups = num_groups
        self.num_channels = num_channels
        self.eps = eps
        self.affine = affine
        self.weight: nn.Parameter | None
        self.bias: nn.Parameter | None
        if affine:
            self.weight = nn.Parameter(torch.empty(num_channels, **factory_kwargs))
            if bias:
                self.bias = nn.Parameter(torch.empty(num_channels, **factory_kwargs))
            else:
                self.register_parameter("bias", None)
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Set ``weight`` to 1 and ``bias`` to 0."""
        if self.weight is not None:
            nn.init.ones_(self.weight)
        if self.bias is not None:
            nn.init.zeros_(self.bias)

    def forward(self, input: Tensor) -> Tensor:
        if input.dim() < 2 or input.shape[1] != self.num_channels:
            raise ValueError(
                f"input: expected shape (N, {self.num_channels}, *) "
                f"(num_channels={self.num_channels}), got {_shape_str(input)}"
            )
        N, C = input.shape[:2]
        G = self.num_groups
        if N * (C // G) * math.prod(input.shape[2:]) == 1:
            # torch.nn.GroupNorm refuses one sample with one value per group, in BatchNorm's
            # words; so do we, for parity.
            size = [N * C // G, G, *input.shape[2:]]
            raise ValueError(
                f"Expected more than 1 value per channel when training, got input size {size}"
            )
        L = math.prod(input.shape[2:])
        x = input.reshape(N, G, C // G * L)  # (N, G, K = C/G * L)
        weight, bias = _per_position(self.weight, self.bias, C, L)  # (C, L)
        if weight is not None:
            weight = weight.view(G, C // G * L)  # (G, K)
        if bias is not None:
            bias = bias.view(G, C // G * L)  # (G, K)
        return _sample_norm(x, weight, bias, self.eps, center=True).reshape(input.shape)

    def extra_repr(self) -> str:
        return (
            f"{self.num_groups}, {self.num_channels}, eps={self.eps}, "
            f"affine={self.affine}, bias={self.bias is not None}"
        )
