"""An encoder-decoder Transformer for token sequences, with padding masks and greedy decoding."""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from torchkata.transformer.attention import MultiheadAttention, causal_mask
from torchkata.transformer.layers import Transformer
from torchkata.transformer.positional import SinusoidalPositionalEncoding

__all__ = ["Seq2SeqTransformer"]


class Seq2SeqTransformer(nn.Module):
    r"""Embeddings, sinusoidal positions, a Transformer and an output layer (Vaswani et al. 2017).

    Source and target share one vocabulary and one embedding (scaled by √d_model, as in
    the paper). Padding is masked in both the encoder and the decoder (claim 9.3), and the
    decoder is causal. ``core="torch"`` builds ``nn.Transformer``, ``core="torchkata"``
    :class:`torchkata.transformer.Transformer` — same parameter names and results.

    Args:
        vocab_size: V, token ids in [0, V).
        d_model: E. Default: 128.
        nhead: attention heads. Default: 4.
        num_encoder_layers: Default: 3.
        num_decoder_layers: Default: 3.
        dim_feedforward: Default: 512.
        dropout: Default: 0.1.
        pad_id: the padding id; masked wherever it appears. Default: 0.
        max_len: the longest source or target. Default: 128.
        norm_first: pre-norm layers (steadier to train than the paper's post-norm).
            Default: True.
        core: ``"torchkata"`` or ``"torch"``. Default: ``"torchkata"``.

    Shape:
        - src: (N, S) ids; tgt: (N, T) ids (the decoder input: BOS, then the answer so far).
        - Output: (N, T, V) logits of the next target token at every position.

    Examples:
        >>> model = Seq2SeqTransformer(14, d_model=16, nhead=2, num_encoder_layers=1,
        ...                            num_decoder_layers=1, dim_feedforward=32)
        >>> src = torch.tensor([[5, 6, 7], [8, 9, 0]])  # the second is padded
        >>> model(src, torch.tensor([[1, 7], [1, 9]])).shape
        torch.Size([2, 2, 14])
        >>> model.greedy_decode(src, bos_id=1, eos_id=2, max_len=4).shape[0]
        2
    """

    def __init__(
        self,
        vocab_size: int,
        d_model: int = 128,
        nhead: int = 4,
        num_encoder_layers: int = 3,
        num_decoder_layers: int = 3,
        dim_feedforward: int = 512,
        dropout: float = 0.1,
        pad_id: int = 0,
        max_len: int = 128,
        norm_first: bool = True,
        core: str = "torchkata",
    ) -> None:
        super().__init__()
        if core not in ("torchkata", "torch"):
            raise ValueError(f"core: expected 'torchkata' or 'torch', got {core!r}")
        if not 0 <= pad_id < vocab_size:
            raise ValueError(f"pad_id: expected an id in [0, {vocab_size}), got {pad_id}")
        self.vocab_size, self.d_model, self.pad_id, self.core = vocab_size, d_model, pad_id, core
        self.embedding = nn.Embedding(vocab_size, d_model)
        self.positions = SinusoidalPositionalEncoding(d_model, max_len)
        self.dropout = nn.Dropout(dropout)
        build = nn.Transformer if core == "torch" else Transformer
        self.transformer = build(
            d_model=d_model,
            nhead=nhead,
            num_encoder_layers=num_encoder_layers,
            num_decoder_layers=num_decoder_layers,
            dim_feedforward=dim_feedforward,
            dropout=dropout,
            batch_first=True,
            norm_first=norm_first,
        )
        if core == "torchkata":
            for module in self.transformer.modules():
                if isinstance(module, MultiheadAttention):
                    module.fast = True  # the fused kernel: the layers never ask for weights
        self.output = nn.Linear(d_model, vocab_size)
        # N(0, 1/d) so that the paper's √d scaling gives unit-variance embeddings, on the
        # scale of the sinusoids (with nn.Embedding's N(0, 1) they would drown the positions)
        nn.init.normal_(self.embedding.weight, std=d_model**-0.5)

    def extra_repr(self) -> str:
        return f"vocab_size={self.vocab_size}, pad_id={self.pad_id}, core={self.core!r}"

    def _embed(self, ids: Tensor) -> Tensor:
        return self.dropout(self.positions(self.embedding(ids) * math.sqrt(self.d_model)))

    def encode(self, src: Tensor) -> tuple[Tensor, Tensor]:
        """Memory (N, S, E) and the source padding mask (N, S), True = padding."""
        _check_ids(src, "src", self.vocab_size)
        src_padding = src == self.pad_id
        memory = self.transformer.encoder(self._embed(src), src_key_padding_mask=src_padding)
        return memory, src_padding

    def decode(self, tgt: Tensor, memory: Tensor, src_padding: Tensor) -> Tensor:
        """Next-token logits (N, T, V) for decoder input ``tgt`` (N, T)."""
        _check_ids(tgt, "tgt", self.vocab_size)
        T = tgt.size(1)
        h = self.transformer.decoder(
            self._embed(tgt),
            memory,
            tgt_mask=causal_mask(T, device=tgt.device),
            tgt_key_padding_mask=tgt == self.pad_id,
            memory_key_padding_mask=src_padding,
        )  # (N, T, E)
        return self.output(h)

    def forward(self, src: Tensor, tgt: Tensor) -> Tensor:
        if src.size(0) != tgt.size(0):
            raise ValueError(f"tgt: expected batch size {src.size(0)} (src's), got {tgt.size(0)}")
        return self.decode(tgt, *self.encode(src))

    @torch.no_grad()
    def greedy_decode(self, src: Tensor, bos_id: int, eos_id: int, max_len: int) -> Tensor:
        """The most likely next token, one at a time: (N, <= max_len + 1) ids starting with
        BOS; rows that finished (EOS) are padded with ``pad_id`` while the others go on."""
        memory, src_padding = self.encode(src)
        out = torch.full((src.size(0), 1), bos_id, dtype=torch.long, device=src.device)
        done = torch.zeros(src.size(0), dtype=torch.bool, device=src.device)
        for _ in range(max_len):
            next_id = self.decode(out, memory, src_padding)[:, -1].argmax(-1)  # (N,)
            next_id = next_id.masked_fill(done, self.pad_id)
            out = torch.cat([out, next_id[:, None]], dim=1)
            done |= next_id == eos_id
            if done.all():
                break
        return out

    @torch.no_grad()
    def exact_match(
        self, src: Tensor, tgt: Tensor, bos_id: int, eos_id: int, batch_size: int = 500
    ) -> float:
        """Fraction of rows whose greedy decoding of ``src`` is exactly ``tgt`` (N, T): BOS,
        answer, EOS, then ``pad_id`` padding, which is not compared. Leaves eval mode on."""
        self.eval()
        device = next(self.parameters()).device
        lengths = (tgt != self.pad_id).sum(dim=1).tolist()  # BOS..EOS, no padding
        correct = 0
        for start in range(0, len(src), batch_size):
            rows = slice(start, start + batch_size)
            out = self.greedy_decode(src[rows].to(device), bos_id, eos_id, tgt.size(1) - 1).cpu()
            for row, target, n in zip(out, tgt[rows], lengths[rows], strict=True):
                correct += row.size(0) >= n and torch.equal(row[:n], target[:n])
        return correct / len(src)


def _check_ids(ids: Tensor, name: str, vocab_size: int) -> None:
    if ids.dim() != 2 or ids.dtype != torch.long:
        raise ValueError(
            f"{name}: expected (N, L) long ids, got shape {tuple(ids.shape)} dtype {ids.dtype}"
        )
    if ids.numel() and (int(ids.min()) < 0 or int(ids.max()) >= vocab_size):
        raise ValueError(f"{name}: expected ids in [0, {vocab_size}), got {ids.min()}..{ids.max()}")
