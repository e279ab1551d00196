r"""The encoder-decoder Transformer of Vaswani et al. 2017, built on our attention.

:class:`TransformerEncoderLayer`, :class:`TransformerDecoderLayer`,
:class:`TransformerEncoder`, :class:`TransformerDecoder` and :class:`Transformer` are
twins of their ``torch.nn`` namesakes: same constructor arguments, submodule and parameter
names (so ``load_state_dict`` works in both directions with ``strict=True``), forward
arguments and results (tests/transformer/test_layers.py). Attention is
:class:`~torchkata.transformer.attention.MultiheadAttention`, written from tensor
operations; the feed-forward block and the norms are ``nn.Linear``, ``nn.Dropout`` and
``nn.LayerNorm``.

**Post-norm or pre-norm** (``norm_first``). Each layer wraps its sublayers (self-attention,
cross-attention, feed-forward) in a residual connection, and puts a LayerNorm either

- *after* the sum, as in the paper (``norm_first=False``, post-norm):
  :math:`x \leftarrow \mathrm{LN}(x + \mathrm{Sublayer}(x))`; or
- *before* the sublayer (``norm_first=True``, pre-norm, Xiong et al. 2020):
  :math:`x \leftarrow x + \mathrm{Sublayer}(\mathrm{LN}(x))`.

Pre-norm keeps an unnormalised identity path from input to output, so gradients at
initialisation are of the same size in every layer and deep stacks train without a
learning-rate warm-up; its output is not normalised, which is why the stacks end with a
final LayerNorm (``encoder.norm``, ``decoder.norm``; :class:`Transformer` adds them in
both modes, as torch does). Post-norm normalises every layer's output but scales the
gradients of the lower layers down, and usually needs the warm-up.

**Masks.** Boolean masks are True = blocked (the ``nn.Transformer`` convention, see
:func:`~torchkata.transformer.attention.causal_mask` and
:func:`~torchkata.transformer.attention.padding_mask`); float masks are added to the
attention scores (:meth:`Transformer.generate_square_subsequent_mask`). Where torch's
``is_causal`` flags are only hints that the given mask is causal, ours are instructions:
``is_causal=True`` without a mask applies the causal mask, and a given mask is always
applied as it is. Padded positions are computed like any other: torch's encoder may take
a nested-tensor fast path in eval mode without gradients that returns zeros there instead.
"""

from __future__ import annotations

import copy
import math
import numbers
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from torchkata.transformer.attention import MultiheadAttention

__all__ = [
    "Transformer",
    "TransformerDecoder",
    "TransformerDecoderLayer",
    "TransformerEncoder",
    "TransformerEncoderLayer",
]

_ACTIVATIONS: dict[str, Callable[[Tensor], Tensor]] = {"relu": F.relu, "gelu": F.gelu}


def _activation(activation: str | Callable[[Tensor], Tensor]) -> Callable[[Tensor], Tensor]:
    """``"relu"`` or ``"gelu"`` -> the function; a callable passes through (torch's rule)."""
    if isinstance(activation, str):
        if activation not in _ACTIVATIONS:
            raise ValueError(
                f"activation: expected 'relu', 'gelu' or a callable, got {activation!r}"
            )
        return _ACTIVATIONS[activation]
    if not callable(activation):
        raise ValueError(f"activation: expected 'relu', 'gelu' or a callable, got {activation!r}")
    return activation


def _activation_name(activation: Callable[[Tensor], Tensor]) -> str:
    return getattr(activation, "__name__", None) or repr(activation)


def _clones(module: nn.Module, num_layers: int) -> nn.ModuleList:
    """``num_layers`` independent deep copies: same initial values, separate parameters."""
    if isinstance(num_layers, bool) or not isinstance(num_layers, int) or num_layers < 0:
        raise ValueError(f"num_layers: expected an int >= 0, got {num_layers!r}")
    return nn.ModuleList(copy.deepcopy(module) for _ in range(num_layers))


class TransformerEncoderLayer(nn.Module):
    r"""Self-attention and a feed-forward network (Vaswani et al. 2017), twin of torch's.

    .. math::
        \text{post-norm: } x \leftarrow \mathrm{LN}_1(x + \mathrm{SA}(x)),\;
        x \leftarrow \mathrm{LN}_2(x + \mathrm{FF}(x));\qquad
        \text{pre-norm: } x \leftarrow x + \mathrm{SA}(\mathrm{LN}_1(x)),\;
        x \leftarrow x + \mathrm{FF}(\mathrm{LN}_2(x))

    with :math:`\mathrm{FF}(x) = W_2\,\mathrm{dropout}(\sigma(W_1 x + b_1)) + b_2` and
    dropout on the output of each sublayer. Submodules are named as in
    ``nn.TransformerEncoderLayer`` (``self_attn``, ``linear1``, ``dropout``, ``linear2``,
    ``norm1``, ``norm2``, ``dropout1``, ``dropout2``).

    Args:
        d_model: E, the width of the inputs and outputs.
        nhead: the number of attention heads; E must be divisible by it.
        dim_feedforward: the hidden width of the feed-forward network. Default: 2048.
        dropout: dropout on the attention weights, in the feed-forward network and on each
            sublayer's output. Default: 0.1.
        activation: σ, ``"relu"``, ``"gelu"`` or a unary callable. Default: ``"relu"``.
        layer_norm_eps: the eps of the LayerNorms. Default: 1e-5.
        batch_first: inputs and outputs are (N, S, E) instead of (S, N, E). Default: False.
        norm_first: pre-norm instead of post-norm (see the module docstring). Default: False.
        bias: biases in the linear layers, attention projections and LayerNorms.
            Default: True.

    Shape:
        - src: (S, N, E), or (N, S, E) with ``batch_first``, or (S, E) unbatched.
        - src_mask: (S, S) or (N·nhead, S, S), bool (True = blocked) or float (added).
        - src_key_padding_mask: (N, S) or (S,) unbatched, bool (True = padding) or float.
        - Output: the shape of src.

    Examples:
        >>> _ = torch.manual_seed(0)
        >>> layer = TransformerEncoderLayer(16, 4, dim_feedforward=32, batch_first=True)
        >>> src = torch.randn(2, 5, 16)
        >>> out = layer(src, is_causal=True)
        >>> out.shape
        torch.Size([2, 5, 16])
        >>> twin = torch.nn.TransformerEncoderLayer(16, 4, dim_feedforward=32, batch_first=True)
        >>> twin.load_state_dict(layer.state_dict())
        <All keys matched successfully>
        >>> _ = layer.eval(), twin.eval()
        >>> mask = Transformer.generate_square_subsequent_mask(5)
        >>> torch.allclose(layer(src, is_causal=True), twin(src, mask, is_causal=True), atol=1e-6)
        True
    """

    def __init__(
        self,
        d_model: int,
        nhead: int,
        dim_feedforward: int = 2048,
        dropout: float = 0.1,
        activation: str | Callable[[Tensor], Tensor] = "relu",
        layer_norm_eps: float = 1e-5,
        batch_first: bool = False,
        norm_first: bool = False,
        bias: bool = True,
        device=None,
        dtype=None,
    ) -> None:
        super().__init__()
        factory = {"device": device, "dtype": dtype}
        act = _activation(activation)
        # Registration order is torch's: parameters, and the random draws that initialise
        # them, come in the same order, so one seed gives both the same initial weights.
        self.self_attn = MultiheadAttention(
            d_model, nhead, dropout=dropout, bias=bias, batch_first=batch_first, **factory
        )
        self.linear1 = nn.Linear(d_model, dim_feedforward, bias=bias, **factory)
        self.dropout = nn.Dropout(dropout)
        self.linear2 = nn.Linear(dim_feedforward, d_model, bias=bias, **factory)
        self.norm_first = norm_first
        self.norm1 = nn.LayerNorm(d_model, eps=layer_norm_eps, bias=bias, **factory)
        self.norm2 = nn.LayerNorm(d_model, eps=layer_norm_eps, bias=bias, **factory)
        self.dropout1 = nn.Dropout(dropout)
        self.dropout2 = nn.Dropout(dropout)
        self.activation = act

    def extra_repr(self) -> str:
        return (
            f"d_model={self.linear1.in_features}, nhead={self.self_attn.num_heads}, "
            f"dim_feedforward={self.linear1.out_features}, dropout={self.dropout.p}, "
            f"activation={_activation_name(self.activation)}, "
            f"layer_norm_eps={self.norm1.eps}, batch_first={self.self_attn.batch_first}, "
            f"norm_first={self.norm_first}, bias={self.linear1.bias is not None}"
        )

    def forward(
        self,
        src: Tensor,
        src_mask: Tensor | None = None,
        src_key_padding_mask: Tensor | None = None,
        is_causal: bool = False,
    ) -> Tensor:
        """Encode ``src``; see the class docstring for shapes.

        Args:
            src: the input sequence.
            src_mask: attention mask over (query, key) positions. Default: None.
            src_key_padding_mask: keys to ignore, per sequence. Default: None.
            is_causal: with no ``src_mask``, apply the causal mask (position i attends to
                j <= i); with one, ``src_mask`` is applied as given. Default: False.
        """
        x = src
        if self.norm_first:
            x = x + self._sa_block(self.norm1(x), src_mask, src_key_padding_mask, is_causal)
            x = x + self._ff_block(self.norm2(x))
        else:
            x = self.norm1(x + self._sa_block(x, src_mask, src_key_padding_mask, is_causal))
            x = self.norm2(x + self._ff_block(x))
        return x

    def _sa_block(
        self, x: Tensor, attn_mask: Tensor | None, key_padding_mask: Tensor | None, is_causal: bool
    ) -> Tensor:
        x = self.self_attn(
            x,
            x,
            x,
            attn_mask=attn_mask,
            key_padding_mask=key_padding_mask,
            need_weights=False,
            is_causal=is_causal,
        )[0]
        return self.dropout1(x)

    def _ff_block(self, x: Tensor) -> Tensor:
        x = self.linear2(self.dropout(self.activation(self.linear1(x))))
        return self.dropout2(x)


class TransformerDecoderLayer(nn.Module):
    r"""Self-attention, cross-attention to the memory and a feed-forward network, twin of torch's.

    The decoder layer of Vaswani et al. 2017. Post-norm
    (:math:`x \leftarrow \mathrm{LN}(x + \mathrm{Sublayer}(x))`) or pre-norm
    (:math:`x \leftarrow x + \mathrm{Sublayer}(\mathrm{LN}(x))`) around, in turn,
    self-attention over the target (``self_attn``, ``norm1``, ``dropout1``), attention
    from the target to the encoder's output, the memory (``multihead_attn``, ``norm2``,
    ``dropout2``), and the feed-forward network (``linear1``, ``dropout``, ``linear2``,
    ``norm3``, ``dropout3``): the names of ``nn.TransformerDecoderLayer``.

    Args:
        d_model: E, the width of the inputs and outputs.
        nhead: the number of attention heads; E must be divisible by it.
        dim_feedforward: the hidden width of the feed-forward network. Default: 2048.
        dropout: dropout on the attention weights, in the feed-forward network and on each
            sublayer's output. Default: 0.1.
        activation: ``"relu"``, ``"gelu"`` or a unary callable. Default: ``"relu"``.
        layer_norm_eps: the eps of the LayerNorms. Default: 1e-5.
        batch_first: inputs and outputs are (N, T, E) instead of (T, N, E). Default: False.
        norm_first: pre-norm instead of post-norm (see the module docstring). Default: False.
        bias: biases in the linear layers, attention projections and LayerNorms.
            Default: True.

    Shape:
        - tgt: (T, N, E), or (N, T, E) with ``batch_first``, or (T, E) unbatched.
        - memory: (S, N, E), or (N, S, E) with ``batch_first``, or (S, E) unbatched.
        - tgt_mask: (T, T) or (N·nhead, T, T); memory_mask: (T, S) or (N·nhead, T, S);
          bool (True = blocked) or float (added).
        - tgt_key_padding_mask: (N, T); memory_key_padding_mask: (N, S) ((T,), (S,)
          unbatched); bool (True = padding) or float.
        - Output: the shape of tgt.

    Examples:
        >>> _ = torch.manual_seed(0)
        >>> layer = TransformerDecoderLayer(8, 2, dim_feedforward=16, norm_first=True)
        >>> tgt, memory = torch.randn(4, 3, 8), torch.randn(6, 3, 8)
        >>> layer(tgt, memory, tgt_is_causal=True).shape
        torch.Size([4, 3, 8])
        >>> twin = torch.nn.TransformerDecoderLayer(8, 2, dim_feedforward=16, norm_first=True)
        >>> twin.load_state_dict(layer.state_dict())
        <All keys matched successfully>
    """

    def __init__(
        self,
        d_model: int,
        nhead: int,
        dim_feedforward: int = 2048,
        dropout: float = 0.1,
        activation: str | Callable[[Tensor], Tensor] = "relu",
        layer_norm_eps: float = 1e-5,
        batch_first: bool = False,
        norm_first: bool = False,
        bias: bool = True,
        device=None,
        dtype=None,
    ) -> None:
        super().__init__()
        factory = {"device": device, "dtype": dtype}
        act = _activation(activation)
        # torch's registration order (see TransformerEncoderLayer)
        self.self_attn = MultiheadAttention(
            d_model, nhead, dropout=dropout, bias=bias, batch_first=batch_first, **factory
        )
        self.multihead_attn = MultiheadAttention(
            d_model, nhead, dropout=dropout, bias=bias, batch_first=batch_first, **factory
        )
        self.linear1 = nn.Linear(d_model, dim_feedforward, bias=bias, **factory)
        self.dropout = nn.Dropout(dropout)
        self.linear2 = nn.Linear(dim_feedforward, d_model, bias=bias, **factory)
        self.norm_first = norm_first
        self.norm1 = nn.LayerNorm(d_model, eps=layer_norm_eps, bias=bias, **factory)
        self.norm2 = nn.LayerNorm(d_model, eps=layer_norm_eps, bias=bias, **factory)
        self.norm3 = nn.LayerNorm(d_model, eps=layer_norm_eps, bias=bias, **factory)
        self.dropout1 = nn.Dropout(dropout)
        self.dropout2 = nn.Dropout(dropout)
        self.dropout3 = nn.Dropout(dropout)
        self.activation = act

    def extra_repr(self) -> str:
        return (
            f"d_model={self.linear1.in_features}, nhead={self.self_attn.num_heads}, "
            f"dim_feedforward={self.linear1.out_features}, dropout={self.dropout.p}, "
            f"activation={_activation_name(self.activation)}, "
            f"layer_norm_eps={self.norm1.eps}, batch_first={self.self_attn.batch_first}, "
            f"norm_first={self.norm_first}, bias={self.linear1.bias is not None}"
        )

    def forward(
        self,
        tgt: Tensor,
        memory: Tensor,
        tgt_mask: Tensor | None = None,
        memory_mask: Tensor | None = None,
        tgt_key_padding_mask: Tensor | None = None,
        memory_key_padding_mask: Tensor | None = None,
        tgt_is_causal: bool = False,
        memory_is_causal: bool = False,
    ) -> Tensor:
        """Decode ``tgt`` attending to ``memory``; see the class docstring for shapes.

        Args:
            tgt: the target sequence.
            memory: the encoder's output.
            tgt_mask: self-attention mask over (target, target) positions. Default: None.
            memory_mask: cross-attention mask over (target, memory) positions.
                Default: None.
            tgt_key_padding_mask: target positions to ignore as keys. Default: None.
            memory_key_padding_mask: memory positions to ignore as keys. Default: None.
            tgt_is_causal: with no ``tgt_mask``, apply the causal mask; with one,
                ``tgt_mask`` is applied as given. Default: False.
            memory_is_causal: likewise for ``memory_mask`` (target i attends to memory
                j <= i). Default: False.
        """
        x = tgt
        if self.norm_first:
            x = x + self._sa_block(self.norm1(x), tgt_mask, tgt_key_padding_mask, tgt_is_causal)
            x = x + self._mha_block(
                self.norm2(x), memory, memory_mask, memory_key_padding_mask, memory_is_causal
            )
            x = x + self._ff_block(self.norm3(x))
        else:
            x = self.norm1(x + self._sa_block(x, tgt_mask, tgt_key_padding_mask, tgt_is_causal))
            x = self.norm2(
                x
                + self._mha_block(x, memory, memory_mask, memory_key_padding_mask, memory_is_causal)
            )
            x = self.norm3(x + self._ff_block(x))
        return x

    def _sa_block(
        self, x: Tensor, attn_mask: Tensor | None, key_padding_mask: Tensor | None, is_causal: bool
    ) -> Tensor:
        x = self.self_attn(
            x,
            x,
            x,
            attn_mask=attn_mask,
            key_padding_mask=key_padding_mask,
            need_weights=False,
            is_causal=is_causal,
        )[0]
        return self.dropout1(x)

    def _mha_block(
        self,
        x: Tensor,
        memory: Tensor,
        attn_mask: Tensor | None,
        key_padding_mask: Tensor | None,
        is_causal: bool,
    ) -> Tensor:
        x = self.multihead_attn(
            x,
            memory,
            memory,
            attn_mask=attn_mask,
            key_padding_mask=key_padding_mask,
            need_weights=False,
            is_causal=is_causal,
        )[0]
        return self.dropout2(x)

    def _ff_block(self, x: Tensor) -> Tensor:
        x = self.linear2(self.dropout(self.activation(self.linear1(x))))
        return self.dropout3(x)


class TransformerEncoder(nn.Module):
    r"""A stack of ``num_layers`` encoder layers and an optional final norm, twin of torch's.

    The encoder of Vaswani et al. 2017: :math:`\mathrm{norm}(f_L(\dots f_1(x)))`, where the
    layers :math:`f_i` (``layers.0`` … ``layers.{L-1}``) are independent deep copies of
    ``encoder_layer``: they start with its values and are then trained apart.

    Args:
        encoder_layer: the layer to copy, e.g. a :class:`TransformerEncoderLayer`.
        num_layers: L, the number of copies.
        norm: applied to the last layer's output, e.g. ``nn.LayerNorm(E)``. Default: None.
        enable_nested_tensor: accepted for compatibility with torch and ignored: this
            encoder never converts padded input to a nested tensor. Default: True.
        mask_check: accepted for compatibility with torch and ignored. Default: True.

    Shape:
        - src: (S, N, E), or (N, S, E) if the layers are ``batch_first``, or (S, E).
        - mask: (S, S) or (N·nhead, S, S); src_key_padding_mask: (N, S) or (S,).
        - Output: the shape of src.

    Examples:
        >>> from torchkata.transformer.attention import padding_mask
        >>> _ = torch.manual_seed(0)
        >>> layer = TransformerEncoderLayer(8, 2, dim_feedforward=16, batch_first=True)
        >>> encoder = TransformerEncoder(layer, num_layers=2, norm=nn.LayerNorm(8))
        >>> src, lengths = torch.randn(3, 5, 8), [5, 2, 4]
        >>> encoder(src, src_key_padding_mask=padding_mask(lengths)).shape
        torch.Size([3, 5, 8])
        >>> twin = torch.nn.TransformerEncoder(
        ...     torch.nn.TransformerEncoderLayer(8, 2, dim_feedforward=16, batch_first=True),
        ...     num_layers=2,
        ...     norm=torch.nn.LayerNorm(8),
        ... )
        >>> twin.load_state_dict(encoder.state_dict())
        <All keys matched successfully>
    """

    def __init__(
        self,
        encoder_layer: nn.Module,
        num_layers: int,
        norm: nn.Module | None = None,
        enable_nested_tensor: bool = True,
        mask_check: bool = True,
    ) -> None:
        super().__init__()
        self.layers = _clones(encoder_layer, num_layers)
        self.num_layers = num_layers
        self.norm = norm
        self.enable_nested_tensor = enable_nested_tensor
        self.mask_check = mask_check

    def extra_repr(self) -> str:
        return f"num_layers={self.num_layers}"

    def forward(
        self,
        src: Tensor,
        mask: Tensor | None = None,
        src_key_padding_mask: Tensor | None = None,
        is_causal: bool | None = None,
    ) -> Tensor:
        """Pass ``src`` through the layers in turn, then the norm.

        Args:
            src: the input sequence.
            mask: attention mask, given to every layer. Default: None.
            src_key_padding_mask: keys to ignore, given to every layer. Default: None.
            is_causal: True applies the causal mask when ``mask`` is None. Default: None,
                the same as False (torch's None asks it to detect whether ``mask`` is
                causal; here a given mask is applied as it is, so that changes nothing).
        """
        output = src
        for layer in self.layers:
            output = layer(
                output,
                src_mask=mask,
                src_key_padding_mask=src_key_padding_mask,
                is_causal=bool(is_causal),
            )
        if self.norm is not None:
            output = self.norm(output)
        return output


class TransformerDecoder(nn.Module):
    r"""A stack of ``num_layers`` decoder layers and an optional final norm, twin of torch's.

    The decoder of Vaswani et al. 2017: each layer (``layers.0`` … ``layers.{L-1}``, deep
    copies of ``decoder_layer``) attends to its own input and to the same ``memory``, the
    encoder's output; ``norm`` is applied to the last layer's output.

    Args:
        decoder_layer: the layer to copy, e.g. a :class:`TransformerDecoderLayer`.
        num_layers: L, the number of copies.
        norm: applied to the last layer's output, e.g. ``nn.LayerNorm(E)``. Default: None.

    Shape:
        - tgt: (T, N, E), or (N, T, E) if the layers are ``batch_first``, or (T, E).
        - memory: (S, N, E), or (N, S, E) if the layers are ``batch_first``, or (S, E).
        - tgt_mask: (T, T) or (N·nhead, T, T); memory_mask: (T, S) or (N·nhead, T, S).
        - tgt_key_padding_mask: (N, T); memory_key_padding_mask: (N, S).
        - Output: the shape of tgt.

    Examples:
        >>> _ = torch.manual_seed(0)
        >>> layer = TransformerDecoderLayer(8, 2, dim_feedforward=16, batch_first=True)
        >>> decoder = TransformerDecoder(layer, num_layers=2)
        >>> tgt, memory = torch.randn(3, 4, 8), torch.randn(3, 6, 8)
        >>> decoder(tgt, memory, tgt_is_causal=True).shape
        torch.Size([3, 4, 8])
        >>> twin = torch.nn.TransformerDecoder(
        ...     torch.nn.TransformerDecoderLayer(8, 2, dim_feedforward=16, batch_first=True), 2
        ... )
        >>> twin.load_state_dict(decoder.state_dict())
        <All keys matched successfully>
    """

    def __init__(
        self, decoder_layer: nn.Module, num_layers: int, norm: nn.Module | None = None
    ) -> None:
        super().__init__()
        self.layers = _clones(decoder_layer, num_layers)
        self.num_layers = num_layers
        self.norm = norm

    def extra_repr(self) -> str:
        return f"num_layers={self.num_layers}"

    def forward(
        self,
        tgt: Tensor,
        memory: Tensor,
        tgt_mask: Tensor | None = None,
        memory_mask: Tensor | None = None,
        tgt_key_padding_mask: Tensor | None = None,
        memory_key_padding_mask: Tensor | None = None,
        tgt_is_causal: bool | None = None,
        memory_is_causal: bool = False,
    ) -> Tensor:
        """Pass ``tgt`` through the layers in turn, each attending to ``memory``; then the norm.

        Args:
            tgt: the target sequence.
            memory: the encoder's output.
            tgt_mask, memory_mask, tgt_key_padding_mask, memory_key_padding_mask: given to
                every layer (see :meth:`TransformerDecoderLayer.forward`). Default: None.
            tgt_is_causal: True applies the causal mask when ``tgt_mask`` is None.
                Default: None, the same as False (see :meth:`TransformerEncoder.forward`).
            memory_is_causal: True applies the causal mask when ``memory_mask`` is None.
                Default: False.
        """
        output = tgt
        for layer in self.layers:
            output = layer(
                output,
                memory,
                tgt_mask=tgt_mask,
                memory_mask=memory_mask,
                tgt_key_padding_mask=tgt_key_padding_mask,
                memory_key_padding_mask=memory_key_padding_mask,
                tgt_is_causal=bool(tgt_is_causal),
                memory_is_causal=memory_is_causal,
            )
        if self.norm is not None:
            output = self.norm(output)
        return output


class Transformer(nn.Module):
    r"""The encoder-decoder Transformer of Vaswani et al. 2017, twin of ``nn.Transformer``.

    .. math::
        \mathrm{memory} = \mathrm{Encoder}(\mathrm{src}),\qquad
        \mathrm{output} = \mathrm{Decoder}(\mathrm{tgt}, \mathrm{memory})

    ``encoder`` is a :class:`TransformerEncoder` of ``num_encoder_layers``
    :class:`TransformerEncoderLayer` and a final LayerNorm (``encoder.norm``), ``decoder``
    likewise with :class:`TransformerDecoderLayer` (``decoder.norm``), unless custom ones
    are given. As in torch, every parameter with more than one dimension (projection and
    linear weights; also those of custom modules) is then re-drawn with
    ``nn.init.xavier_uniform_``; biases keep their initial values. No embeddings and no
    output projection: inputs and output are E-dimensional vectors.

    Args:
        d_model: E, the width of the inputs and outputs. Default: 512.
        nhead: the number of attention heads; E must be divisible by it. Default: 8.
        num_encoder_layers: the number of encoder layers. Default: 6.
        num_decoder_layers: the number of decoder layers. Default: 6.
        dim_feedforward: the hidden width of the feed-forward networks. Default: 2048.
        dropout: the dropout probability everywhere. Default: 0.1.
        activation: ``"relu"``, ``"gelu"`` or a unary callable. Default: ``"relu"``.
        custom_encoder: used as ``encoder`` instead of the default one. Default: None.
        custom_decoder: used as ``decoder`` instead of the default one. Default: None.
        layer_norm_eps: the eps of the LayerNorms. Default: 1e-5.
        batch_first: inputs and outputs are (N, S, E) instead of (S, N, E). Default: False.
        norm_first: pre-norm layers instead of post-norm (see the module docstring).
            Default: False.
        bias: biases in the linear layers, attention projections and LayerNorms.
            Default: True.

    Shape:
        - src: (S, N, E), or (N, S, E) with ``batch_first``, or (S, E) unbatched.
        - tgt: (T, N, E), or (N, T, E) with ``batch_first``, or (T, E) unbatched.
        - src_mask: (S, S) or (N·nhead, S, S); tgt_mask: (T, T) or (N·nhead, T, T);
          memory_mask: (T, S) or (N·nhead, T, S); bool (True = blocked) or float (added).
        - src_key_padding_mask: (N, S); tgt_key_padding_mask: (N, T);
          memory_key_padding_mask: (N, S) ((S,), (T,), (S,) unbatched).
        - Output: (T, N, E), or (N, T, E) with ``batch_first``, or (T, E) unbatched.

        where S is the source length, T the target length, N the batch size and E
        ``d_model``.

    Examples:
        >>> _ = torch.manual_seed(0)
        >>> model = Transformer(d_model=16, nhead=4, num_encoder_layers=2,
        ...                     num_decoder_layers=2, dim_feedforward=32, batch_first=True)
        >>> src, tgt = torch.randn(3, 7, 16), torch.randn(3, 5, 16)
        >>> model(src, tgt, tgt_is_causal=True).shape
        torch.Size([3, 5, 16])
        >>> twin = torch.nn.Transformer(d_model=16, nhead=4, num_encoder_layers=2,
        ...                             num_decoder_layers=2, dim_feedforward=32, batch_first=True)
        >>> twin.load_state_dict(model.state_dict())
        <All keys matched successfully>
        >>> Transformer.generate_square_subsequent_mask(3)
        tensor([[0., -inf, -inf],
                [0., 0., -inf],
                [0., 0., 0.]])
    """

    def __init__(
        self,
        d_model: int = 512,
        nhead: int = 8,
        num_encoder_layers: int = 6,
        num_decoder_layers: int = 6,
        dim_feedforward: int = 2048,
        dropout: float = 0.1,
        activation: str | Callable[[Tensor], Tensor] = "relu",
        custom_encoder: nn.Module | None = None,
        custom_decoder: nn.Module | None = None,
        layer_norm_eps: float = 1e-5,
        batch_first: bool = False,
        norm_first: bool = False,
        bias: bool = True,
        device=None,
        dtype=None,
    ) -> None:
        super().__init__()
        factory = {"device": device, "dtype": dtype}
        layer_args: dict[str, Any] = {
            "dim_feedforward": dim_feedforward,
            "dropout": dropout,
            "activation": activation,
            "layer_norm_eps": layer_norm_eps,
            "batch_first": batch_first,
            "norm_first": norm_first,
            "bias": bias,
            **factory,
        }
        if custom_encoder is not None:
            self.encoder = custom_encoder
        else:
            self.encoder = TransformerEncoder(
                TransformerEncoderLayer(d_model, nhead, **layer_args),
                num_encoder_layers,
                nn.LayerNorm(d_model, eps=layer_norm_eps, bias=bias, **factory),
            )
        if custom_decoder is not None:
            self.decoder = custom_decoder
        else:
            self.decoder = TransformerDecoder(
                TransformerDecoderLayer(d_model, nhead, **layer_args),
                num_decoder_layers,
                nn.LayerNorm(d_model, eps=layer_norm_eps, bias=bias, **factory),
            )
        self._reset_parameters()
        self.d_model = d_model
        self.nhead = nhead
        self.batch_first = batch_first

    def _reset_parameters(self) -> None:
        """torch's initialisation: Xavier-uniform for every parameter with dim > 1."""
        for p in self.parameters():
            if p.dim() > 1:
                nn.init.xavier_uniform_(p)

    def extra_repr(self) -> str:
        return f"d_model={self.d_model}, nhead={self.nhead}, batch_first={self.batch_first}"

    @staticmethod
    def generate_square_subsequent_mask(
        sz: int, device: torch.device | str | None = None, dtype: torch.dtype | None = None
    ) -> Tensor:
        """An (sz, sz) float causal mask: -inf above the diagonal (blocked), 0 elsewhere.

        Equal to ``nn.Transformer.generate_square_subsequent_mask``; the additive form of
        :func:`~torchkata.transformer.attention.causal_mask`.

        Examples:
            >>> Transformer.generate_square_subsequent_mask(2)
            tensor([[0., -inf],
                    [0., 0.]])
        """
        if isinstance(sz, bool) or not isinstance(sz, numbers.Integral) or sz < 0:
            raise ValueError(f"sz: expected an int >= 0, got {sz!r}")
        return torch.full((sz, sz), -math.inf, device=device, dtype=dtype).triu(1)

    def forward(
        self,
        src: Tensor,
        tgt: Tensor,
        src_mask: Tensor | None = None,
        tgt_mask: Tensor | None = None,
        memory_mask: Tensor | None = None,
        src_key_padding_mask: Tensor | None = None,
        tgt_key_padding_mask: Tensor | None = None,
        memory_key_padding_mask: Tensor | None = None,
        src_is_causal: bool | None = None,
        tgt_is_causal: bool | None = None,
        memory_is_causal: bool = False,
    ) -> Tensor:
        """Encode ``src``, then decode ``tgt`` attending to the encoding.

        Args:
            src: the source sequence, the encoder's input.
            tgt: the target sequence, the decoder's input.
            src_mask, tgt_mask, memory_mask: attention masks of the encoder's
                self-attention, the decoder's self-attention and its attention to the
                memory. Default: None.
            src_key_padding_mask, tgt_key_padding_mask, memory_key_padding_mask: source,
                target and memory positions to ignore as keys (the memory has the source's
                positions, so this is usually ``src_key_padding_mask``). Default: None.
            src_is_causal, tgt_is_causal, memory_is_causal: True applies the causal mask
                where the corresponding mask is None; a given mask is applied as it is.
                Default: None, None (both the same as False), False.

        Returns:
            The decoder's output, shaped like ``tgt``.
        """
        if src.dim() != tgt.dim():
            raise ValueError(
                f"tgt: expected {src.dim()} dimensions like src, got shape {tuple(tgt.shape)}"
            )
        if src.dim() == 3:
            n_dim = 0 if self.batch_first else 1
            if src.size(n_dim) != tgt.size(n_dim):
                raise ValueError(
                    f"tgt: expected batch size {src.size(n_dim)} (the src's), got {tgt.size(n_dim)}"
                )
        for name, x in (("src", src), ("tgt", tgt)):
            if x.size(-1) != self.d_model:
                raise ValueError(
                    f"{name}: expected last dimension d_model={self.d_model}, got {x.size(-1)}"
                )
        memory = self.encoder(
            src, mask=src_mask, src_key_padding_mask=src_key_padding_mask, is_causal=src_is_causal
        )
        return self.decoder(
            tgt,
            memory,
            tgt_mask=tgt_mask,
            memory_mask=memory_mask,
            tgt_key_padding_mask=tgt_key_padding_mask,
            memory_key_padding_mask=memory_key_padding_mask,
            tgt_is_causal=tgt_is_causal,
            memory_is_causal=memory_is_causal,
        )
