"""Scaled dot-product attention and multi-head attention from tensor operations.

:func:`scaled_dot_product_attention` is the formula of Vaswani et al. 2017 (claim 9.2),
softmax(QKᵀ/√d + M)·V, with the arguments of ``F.scaled_dot_product_attention``.
:class:`MultiheadAttention` has the constructor, parameter names, forward arguments and
results of ``nn.MultiheadAttention``, so ``load_state_dict`` works both ways and the
outputs and weights are equal (tests/transformer/test_attention.py).

Two boolean mask conventions meet here, and mixing them up is the classic bug:

- ``nn.MultiheadAttention``, ``nn.Transformer*`` and this module's ``attn_mask`` and
  ``key_padding_mask``: **True = blocked** (may not attend); :func:`causal_mask` and
  :func:`padding_mask` build masks in this convention.
- ``F.scaled_dot_product_attention`` and :func:`scaled_dot_product_attention`:
  **True = may attend**. :class:`MultiheadAttention` inverts its masks before it calls
  them.

A float mask means the same in both: it is added to the scores (``-inf`` blocks).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["MultiheadAttention", "causal_mask", "padding_mask", "scaled_dot_product_attention"]


def causal_mask(size: int, *, device: torch.device | str | None = None) -> Tensor:
    """A (size, size) boolean mask, True = blocked: position i may attend to j <= i only.

    The convention of ``nn.MultiheadAttention``'s ``attn_mask``; equal to
    ``nn.Transformer.generate_square_subsequent_mask(size) == -inf``.

    Examples:
        >>> causal_mask(3)
        tensor([[False,  True,  True],
                [False, False,  True],
                [False, False, False]])
    """
    if size < 1:
        raise ValueError(f"size: expected >= 1, got {size}")
    return torch.ones(size, size, dtype=torch.bool, device=device).triu(1)


def padding_mask(lengths: Tensor | list[int], max_len: int | None = None, *, device=None) -> Tensor:
    """An (N, max_len) boolean key padding mask, True = padding (ignored by attention).

    Args:
        lengths: (N,) the number of real tokens of each sequence; the rest is padding.
        max_len: the padded length. Default: ``max(lengths)``.

    Examples:
        >>> padding_mask([3, 1], 4)
        tensor([[False, False, False,  True],
                [False,  True,  True,  True]])
    """
    lengths = torch.as_tensor(lengths, device=device)
    if lengths.dim() != 1 or lengths.dtype.is_floating_point:
        raise ValueError(
            f"lengths: expected a 1-D integer tensor, got shape {tuple(lengths.shape)} "
            f"dtype {lengths.dtype}"
        )
    longest = int(lengths.max()) if len(lengths) else 0
    if max_len is None:
        max_len = longest
    if len(lengths) and (int(lengths.min()) < 0 or longest > max_len):
        raise ValueError(f"lengths: expected values in [0, max_len={max_len}], got {lengths}")
    return torch.arange(max_len, device=lengths.device) >= lengths[:, None]


def scaled_dot_product_attention(
    query: Tensor,
    key: Tensor,
    value: Tensor,
    attn_mask: Tensor | None = None,
    dropout_p: float = 0.0,
    is_causal: bool = False,
    scale: float | None = None,
    *,
    return_weights: bool = False,
) -> Tensor | tuple[Tensor, Tensor]:
    r"""Attention written out: :math:`\mathrm{softmax}(QK^\top \cdot s + M)\,V`.

    The twin of ``F.scaled_dot_product_attention`` (same arguments, same results), with
    the same mask convention: a boolean ``attn_mask`` is **True where attention is
    allowed** (the opposite of ``nn.MultiheadAttention``'s), a float one is added to the
    scores. Query rows that may attend nowhere give NaN, as softmax over only ``-inf`` does.

    Args:
        query: (..., L, E) queries.
        key: (..., S, E) keys.
        value: (..., S, Ev) values.
        attn_mask: boolean or float, broadcastable to (..., L, S). Default: None.
        dropout_p: dropout probability on the attention weights. Default: 0.
        is_causal: block j > i (top-left aligned), as ``causal_mask(L)`` would. Default: False.
        scale: the factor s. Default: ``1 / sqrt(E)``.
        return_weights: also return the (..., L, S) attention weights (after dropout).

    Shape:
        - Output: (..., L, Ev).

    Examples:
        >>> q = k = v = torch.randn(2, 4, 5, 8)
        >>> out, weights = scaled_dot_product_attention(q, k, v, return_weights=True)
        >>> out.shape, weights.sum(-1).allclose(torch.ones(2, 4, 5))
        (torch.Size([2, 4, 5, 8]), True)
    """
    L, S = query.size(-2), key.size(-2)
    if query.size(-1) != key.size(-1):
        raise ValueError(
            f"key: expected last dimension {query.size(-1)} (the query's), got {key.size(-1)}"
        )
    if key.size(-2) != value.size(-2):
        raise ValueError(f"value: expected {S} positions (the key's), got {value.size(-2)}")
    if is_causal and attn_mask is not None:
        raise ValueError("attn_mask: expected None when is_causal=True (the mask is implied)")
    scale = 1.0 / math.sqrt(query.size(-1)) if scale is None else scale
    scores = query @ key.transpose(-2, -1) * scale  # (..., L, S)
    if is_causal:
        scores = scores.masked_fill(causal_mask(max(L, S), device=scores.device)[:L, :S], -math.inf)
    elif attn_mask is not None:
        if attn_mask.dtype == torch.bool:
            scores = scores.masked_fill(~attn_mask, -math.inf)
        else:
            scores = scores + attn_mask
    weights = scores.softmax(dim=-1)
    if dropout_p > 0.0:
        weights = F.dropout(weights, p=dropout_p)
    out = weights @ value  # (..., L, Ev)
    return (out, weights) if return_weights else out


def _as_float_mask(mask: Tensor | None, dtype: torch.dtype, name: str) -> Tensor | None:
    """True = blocked (bool) -> -inf; float masks are additive already."""
    if mask is None:
        return None
    if mask.dtype == torch.bool:
        return torch.zeros(mask.shape, dtype=dtype, device=mask.device).masked_fill(mask, -math.inf)
    if not mask.dtype.is_floating_point:
        raise TypeError(f"{name}: expected a bool or floating-point tensor, got {mask.dtype}")
    return mask.to(dtype)


class MultiheadAttention(nn.Module):
    r"""Multi-head attention (Vaswani et al. 2017), a drop-in twin of ``nn.MultiheadAttention``.

    .. math::
        \mathrm{MultiHead}(Q, K, V) = [\mathrm{head}_1; \dots; \mathrm{head}_h] W^O,\quad
        \mathrm{head}_i = \mathrm{softmax}\big(QW_i^Q (KW_i^K)^\top / \sqrt{d} + M\big) VW_i^V

    Same constructor arguments, parameter names (``in_proj_weight``, ``in_proj_bias``,
    ``out_proj``; ``q_proj_weight``/``k_proj_weight``/``v_proj_weight`` when ``kdim`` or
    ``vdim`` differ from ``embed_dim``; ``bias_k``/``bias_v``), initialisation and forward
    arguments as torch's, so a state_dict loads either way and results are equal.
    The one extension: ``is_causal=True`` without an ``attn_mask`` applies
    :func:`causal_mask` (torch raises).

    Args:
        embed_dim: E, the model width; split over the heads.
        num_heads: h; E must be divisible by h (head width d = E / h).
        dropout: dropout on the attention weights in training. Default: 0.
        bias: biases in the input and output projections. Default: True.
        add_bias_kv: learn one extra key and value appended to the sequence. Default: False.
        add_zero_attn: append a zero key and value (per head). Default: False.
        kdim: width of the keys. Default: ``embed_dim``.
        vdim: width of the values. Default: ``embed_dim``.
        batch_first: inputs and outputs are (N, L, E) instead of (L, N, E). Default: False.
        fast: when no weights are needed, compute with ``F.scaled_dot_product_attention``
            (fused kernels) instead of :func:`scaled_dot_product_attention`. Default: False.

    Shape:
        - query: (L, N, E), or (N, L, E) with ``batch_first``, or (L, E) unbatched.
        - key: (S, N, kdim); value: (S, N, vdim) (batch first or unbatched likewise).
        - key_padding_mask: (N, S) or (S,), bool (True = ignore this key) or float (added).
        - attn_mask: (L, S) or (N·h, L, S), bool (True = blocked) or float (added).
        - Output: (L, N, E) (like the query) and weights (N, L, S) averaged over heads, or
          (N, h, L, S) with ``average_attn_weights=False``; None if ``need_weights=False``.

    Examples:
        >>> mha = MultiheadAttention(16, 4, batch_first=True)
        >>> x = torch.randn(2, 5, 16)
        >>> out, weights = mha(x, x, x, attn_mask=causal_mask(5))
        >>> out.shape, weights.shape
        (torch.Size([2, 5, 16]), torch.Size([2, 5, 5]))
        >>> torch_mha = torch.nn.MultiheadAttention(16, 4, batch_first=True)
        >>> torch_mha.load_state_dict(mha.state_dict())
        <All keys matched successfully>
        >>> torch.allclose(torch_mha(x, x, x, attn_mask=causal_mask(5))[0], out, atol=1e-6)
        True
    """

    def __init__(
        self,
        embed_dim: int,
        num_heads: int,
        dropout: float = 0.0,
        bias: bool = True,
        add_bias_kv: bool = False,
        add_zero_attn: bool = False,
        kdim: int | None = None,
        vdim: int | None = None,
        batch_first: bool = False,
        fast: bool = False,
        device=None,
        dtype=None,
    ) -> None:
        super().__init__()
        if embed_dim < 1 or num_heads < 1:
            raise ValueError(
                f"embed_dim and num_heads: expected >= 1, got {embed_dim} and {num_heads}"
            )
        if embed_dim % num_heads:
            raise ValueError(
                f"embed_dim: expected a multiple of num_heads={num_heads}, got {embed_dim}"
            )
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout: expected a probability in [0, 1), got {dropout}")
        factory = {"device": device, "dtype": dtype}
        self.embed_dim = embed_dim
        self.kdim = embed_dim if kdim is None else kdim
        self.vdim = embed_dim if vdim is None else vdim
        self._qkv_same_embed_dim = self.kdim == embed_dim and self.vdim == embed_dim
        self.num_heads = num_heads
        self.head_dim = embed_dim // num_heads
        self.dropout = dropout
        self.add_zero_attn = add_zero_attn
        self.batch_first = batch_first
        self.fast = fast
        if self._qkv_same_embed_dim:
            self.in_proj_weight = nn.Parameter(torch.empty(3 * embed_dim, embed_dim, **factory))
            self.register_parameter("q_proj_weight", None)
            self.register_parameter("k_proj_weight", None)
            self.register_parameter("v_proj_weight", None)
        else:
            self.q_proj_weight = nn.Parameter(torch.empty(embed_dim, embed_dim, **factory))
            self.k_proj_weight = nn.Parameter(torch.empty(embed_dim, self.kdim, **factory))
            self.v_proj_weight = nn.Parameter(torch.empty(embed_dim, self.vdim, **factory))
            self.register_parameter("in_proj_weight", None)
        if bias:
            self.in_proj_bias = nn.Parameter(torch.empty(3 * embed_dim, **factory))
        else:
            self.register_parameter("in_proj_bias", None)
        self.out_proj = nn.Linear(embed_dim, embed_dim, bias=bias, **factory)
        if add_bias_kv:
            self.bias_k = nn.Parameter(torch.empty(1, 1, embed_dim, **factory))
            self.bias_v = nn.Parameter(torch.empty(1, 1, embed_dim, **factory))
        else:
            self.bias_k = self.bias_v = None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """torch's initialisation: Xavier-uniform projections, zero biases."""
        if self._qkv_same_embed_dim:
            nn.init.xavier_uniform_(self.in_proj_weight)
        else:
            nn.init.xavier_uniform_(self.q_proj_weight)
            nn.init.xavier_uniform_(self.k_proj_weight)
            nn.init.xavier_uniform_(self.v_proj_weight)
        if self.in_proj_bias is not None:
            nn.init.zeros_(self.in_proj_bias)
            nn.init.zeros_(self.out_proj.bias)
        if self.bias_k is not None:
            nn.init.xavier_normal_(self.bias_k)
            nn.init.xavier_normal_(self.bias_v)

    def extra_repr(self) -> str:
        extra = f"embed_dim={self.embed_dim}, num_heads={self.num_heads}"
        if self.dropout:
            extra += f", dropout={self.dropout}"
        if not self._qkv_same_embed_dim:
            extra += f", kdim={self.kdim}, vdim={self.vdim}"
        if self.bias_k is not None:
            extra += ", add_bias_kv=True"
        if self.add_zero_attn:
            extra += ", add_zero_attn=True"
        return extra + f", batch_first={self.batch_first}, fast={self.fast}"

    def _project(self, query: Tensor, key: Tensor, value: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        E = self.embed_dim
        b_q, b_k, b_v = (None,) * 3 if self.in_proj_bias is None else self.in_proj_bias.split(E)
        if self._qkv_same_embed_dim:
            w_q, w_k, w_v = self.in_proj_weight.split(E)
            if query is key and key is value:  # self-attention: one matmul
                return F.linear(query, self.in_proj_weight, self.in_proj_bias).split(E, dim=-1)
        else:
            w_q, w_k, w_v = self.q_proj_weight, self.k_proj_weight, self.v_proj_weight
        return F.linear(query, w_q, b_q), F.linear(key, w_k, b_k), F.linear(value, w_v, b_v)

    def _check(self, query: Tensor, key: Tensor, value: Tensor, key_padding_mask, attn_mask):
        batched = query.dim() == 3
        if query.dim() not in (2, 3):
            raise ValueError(f"query: expected 2 or 3 dimensions, got shape {tuple(query.shape)}")
        for name, t, width in (("key", key, self.kdim), ("value", value, self.vdim)):
            if t.dim() != query.dim():
                raise ValueError(
                    f"{name}: expected {query.dim()} dimensions like the query, "
                    f"got shape {tuple(t.shape)}"
                )
            if t.size(-1) != width:
                raise ValueError(f"{name}: expected last dimension {width}, got {t.size(-1)}")
        if query.size(-1) != self.embed_dim:
            raise ValueError(
                f"query: expected last dimension embed_dim={self.embed_dim}, got {query.size(-1)}"
            )
        if key.shape[:-1] != value.shape[:-1]:
            raise ValueError(
                f"value: expected leading dimensions {tuple(key.shape[:-1])} (the key's), "
                f"got {tuple(value.shape[:-1])}"
            )
        if batched:
            n_dim = 0 if self.batch_first else 1
            if key.size(n_dim) != query.size(n_dim):
                raise ValueError(
                    f"key: expected batch size {query.size(n_dim)}, got {key.size(n_dim)}"
                )
        if key_padding_mask is not None and key_padding_mask.dim() != (2 if batched else 1):
            raise ValueError(
                f"key_padding_mask: expected {2 if batched else 1} dimensions, "
                f"got shape {tuple(key_padding_mask.shape)}"
            )
        if attn_mask is not None and attn_mask.dim() not in (2, 3):
            raise ValueError(
                f"attn_mask: expected (L, S) or (N*num_heads, L, S), got shape "
                f"{tuple(attn_mask.shape)}"
            )
        return batched

    def forward(
        self,
        query: Tensor,
        key: Tensor,
        value: Tensor,
        key_padding_mask: Tensor | None = None,
        need_weights: bool = True,
        attn_mask: Tensor | None = None,
        average_attn_weights: bool = True,
        is_causal: bool = False,
    ) -> tuple[Tensor, Tensor | None]:
        """Attend from ``query`` to ``key``/``value``; see the class docstring for shapes.

        Returns:
            ``(output, weights)``; ``weights`` is None when ``need_weights=False``.
        """
        batched = self._check(query, key, value, key_padding_mask, attn_mask)
        if not batched:
            query, key, value = query.unsqueeze(0), key.unsqueeze(0), value.unsqueeze(0)
            if key_padding_mask is not None:
                key_padding_mask = key_padding_mask.unsqueeze(0)
        elif not self.batch_first:
            # keep self-attention's `query is key` identity through the transpose
            same_k, same_v = key is query, value is key
            query = query.transpose(0, 1)
            key = query if same_k else key.transpose(0, 1)
            value = key if same_v else value.transpose(0, 1)
        N, L, E = query.shape
        S = key.size(1)
        H, D = self.num_heads, self.head_dim
        if is_causal and attn_mask is None:
            attn_mask = causal_mask(max(L, S), device=query.device)[:L, :S]
        if attn_mask is not None and attn_mask.shape not in ((L, S), (N * H, L, S)):
            raise ValueError(
                f"attn_mask: expected shape {(L, S)} or {(N * H, L, S)}, "
                f"got {tuple(attn_mask.shape)}"
            )
        if key_padding_mask is not None and key_padding_mask.shape != (N, S):
            raise ValueError(
                f"key_padding_mask: expected shape {(N, S)}, got {tuple(key_padding_mask.shape)}"
            )

        q, k, v = self._project(query, key, value)  # (N, L, E), (N, S, E), (N, S, E)
        if self.bias_k is not None:
            k = torch.cat([k, self.bias_k.expand(N, 1, E)], dim=1)  # (N, S+1, E)
            v = torch.cat([v, self.bias_v.expand(N, 1, E)], dim=1)
            attn_mask, key_padding_mask = _pad_masks(attn_mask, key_padding_mask)
        q = q.view(N, L, H, D).transpose(1, 2)  # (N, H, L, D)
        k = k.view(N, -1, H, D).transpose(1, 2)  # (N, H, S', D)
        v = v.view(N, -1, H, D).transpose(1, 2)
        if self.add_zero_attn:
            k = torch.cat([k, k.new_zeros(N, H, 1, D)], dim=2)  # (N, H, S'+1, D)
            v = torch.cat([v, v.new_zeros(N, H, 1, D)], dim=2)
            attn_mask, key_padding_mask = _pad_masks(attn_mask, key_padding_mask)
        S = k.size(2)

        # One mask of shape broadcastable to (N, H, L, S): bool (True = blocked) when both
        # masks are bool, else additive float (torch's rule for mixed masks).
        if attn_mask is not None and attn_mask.dim() == 3:
            attn_mask = attn_mask.view(N, H, L, S)
        if key_padding_mask is not None:
            key_padding_mask = key_padding_mask.view(N, 1, 1, S)
        masks = [m for m in (attn_mask, key_padding_mask) if m is not None]
        if all(m.dtype == torch.bool for m in masks):
            blocked = None if not masks else masks[0] if len(masks) == 1 else masks[0] | masks[1]
            mask = None if blocked is None else ~blocked  # SDPA's convention: True = may attend
        else:
            named = (("attn_mask", attn_mask), ("key_padding_mask", key_padding_mask))
            floats = [_as_float_mask(m, q.dtype, name) for name, m in named if m is not None]
            mask = floats[0] if len(floats) == 1 else floats[0] + floats[1]

        dropout_p = self.dropout if self.training else 0.0
        if self.fast and not need_weights:
            out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=dropout_p)
            weights = None
        else:
            out, weights = scaled_dot_product_attention(
                q, k, v, attn_mask=mask, dropout_p=dropout_p, return_weights=True
            )  # (N, H, L, D), (N, H, L, S)
        out = self.out_proj(out.transpose(1, 2).reshape(N, L, E))  # (N, L, E)

        if not batched:
            out = out.squeeze(0)
        elif not self.batch_first:
            out = out.transpose(0, 1)  # (L, N, E)
        if not need_weights:
            return out, None
        if average_attn_weights:
            weights = weights.mean(dim=1)  # (N, L, S)
        return out, weights if batched else weights.squeeze(0)


def _pad_masks(attn_mask: Tensor | None, key_padding_mask: Tensor | None):
    """One more key column that nothing blocks (the appended bias or zero key)."""
    pad = (0, 1)
    return (
        None if attn_mask is None else F.pad(attn_mask, pad),
        None if key_padding_mask is None else F.pad(key_padding_mask, pad),
    )
