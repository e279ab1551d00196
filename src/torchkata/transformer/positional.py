"""Position encodings: the Transformer's fixed sinusoids and GPT's learned table.

Attention by itself is blind to order (permuting the keys permutes nothing in the
output), so each token's vector gets its position added before the first layer.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

__all__ = ["LearnedPositionalEncoding", "SinusoidalPositionalEncoding", "sinusoidal_table"]


def sinusoidal_table(max_len: int, d_model: int) -> Tensor:
    r"""The (max_len, d_model) table of Vaswani et al. 2017, section 3.5.

    .. math::
        PE_{(pos, 2i)} = \sin(pos / 10000^{2i/d}),\quad PE_{(pos, 2i+1)} = \cos(pos / 10000^{2i/d})

    Examples:
        >>> sinusoidal_table(3, 4)[1]
        tensor([0.8415, 0.5403, 0.0100, 1.0000])
    """
    if max_len < 1 or d_model < 2 or d_model % 2:
        raise ValueError(
            f"max_len, d_model: expected max_len >= 1 and an even d_model >= 2, got "
            f"{max_len}, {d_model}"
        )
    position = torch.arange(max_len, dtype=torch.float64)[:, None]  # (L, 1)
    frequency = torch.exp(torch.arange(0, d_model, 2) * (-math.log(10000.0) / d_model))
    table = torch.empty(max_len, d_model, dtype=torch.float64)
    table[:, 0::2] = torch.sin(position * frequency)  # (L, d/2)
    table[:, 1::2] = torch.cos(position * frequency)
    return table.to(torch.get_default_dtype())


class SinusoidalPositionalEncoding(nn.Module):
    """Adds the fixed sinusoidal position table (no parameters; a buffer outside the state_dict).

    Args:
        d_model: E, the embedding width (even).
        max_len: the longest sequence supported. Default: 5000.

    Shape:
        - Input: (N, L, E), batch first. Output: the same, ``x + table[offset : offset + L]``.

    Examples:
        >>> pe = SinusoidalPositionalEncoding(8, max_len=16)
        >>> pe(torch.zeros(2, 5, 8)).shape
        torch.Size([2, 5, 8])
    """

    def __init__(self, d_model: int, max_len: int = 5000) -> None:
        super().__init__()
        self.d_model, self.max_len = d_model, max_len
        self.register_buffer("table", sinusoidal_table(max_len, d_model), persistent=False)

    def extra_repr(self) -> str:
        return f"d_model={self.d_model}, max_len={self.max_len}"

    def forward(self, x: Tensor, offset: int = 0) -> Tensor:
        _check(x, self.d_model, self.max_len, offset)
        return x + self.table[offset : offset + x.size(1)].to(x.dtype)


class LearnedPositionalEncoding(nn.Module):
    """Adds a learned vector per position (GPT-2's ``wpe``), initialised N(0, 0.02).

    Args:
        d_model: E, the embedding width.
        max_len: the number of positions learned (a model's ``block_size``).

    Shape:
        - Input: (N, L, E), batch first. Output: the same, ``x + weight[offset : offset + L]``.

    Examples:
        >>> pe = LearnedPositionalEncoding(8, max_len=16)
        >>> pe(torch.zeros(2, 5, 8)).shape
        torch.Size([2, 5, 8])
    """

    def __init__(self, d_model: int, max_len: int) -> None:
        super().__init__()
        if d_model < 1 or max_len < 1:
            raise ValueError(f"d_model, max_len: expected >= 1, got {d_model}, {max_len}")
        self.d_model, self.max_len = d_model, max_len
        self.weight = nn.Parameter(torch.empty(max_len, d_model))
        nn.init.normal_(self.weight, std=0.02)

    def extra_repr(self) -> str:
        return f"d_model={self.d_model}, max_len={self.max_len}"

    def forward(self, x: Tensor, offset: int = 0) -> Tensor:
        _check(x, self.d_model, self.max_len, offset)
        return x + self.weight[offset : offset + x.size(1)]


def _check(x: Tensor, d_model: int, max_len: int, offset: int) -> None:
    if x.dim() != 3 or x.size(-1) != d_model:
        raise ValueError(f"x: expected (N, L, {d_model}), got shape {tuple(x.shape)}")
    if offset < 0 or offset + x.size(1) > max_len:
        raise ValueError(
            f"x: positions {offset}..{offset + x.size(1) - 1} exceed max_len={max_len}"
        )
