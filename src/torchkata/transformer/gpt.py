"""A decoder-only Transformer language model (GPT; Radford et al. 2018, 2019).

The shape of nanoGPT's ``model.py`` — token and position embeddings, ``n_layer``
pre-LayerNorm blocks of causal self-attention and a 4x GELU MLP, a final LayerNorm and a
head tied to the token embedding — written here independently, with two additions:
:meth:`GPT.generate` keeps a key/value cache (one new token costs one position of work
instead of the whole context, and gives the same tokens as recomputing everything), and
:meth:`GPT.attention_maps` returns every head's attention weights for plotting.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from torchkata.transformer.positional import LearnedPositionalEncoding, SinusoidalPositionalEncoding

__all__ = ["GPT", "KVCache"]

KVCache = list[tuple[Tensor, Tensor]]
"""Per layer, the keys and values of the positions seen so far: (N, nh, T, hs) each."""


class CausalSelfAttention(nn.Module):
    """Masked multi-head self-attention with one fused q/k/v projection and a KV cache.

    ``fused``: compute with ``F.scaled_dot_product_attention`` (True), with the scores
    written out as ``baddbmm`` + softmax + ``bmm`` (False), or pick (None: fused on CUDA,
    where flash kernels win; written out on CPU, where SDPA's bfloat16 backward took half
    of a training step in benchmarks/bench_transformer.py). Both give the same results.
    """

    def __init__(
        self, n_embd: int, n_head: int, block_size: int, dropout: float, bias: bool
    ) -> None:
        super().__init__()
        self.n_head = n_head
        self.dropout = dropout
        self.fused: bool | None = None
        self.qkv = nn.Linear(n_embd, 3 * n_embd, bias=bias)
        self.proj = nn.Linear(n_embd, n_embd, bias=bias)
        self.resid_dropout = nn.Dropout(dropout)
        # additive causal mask over absolute positions: row i has -inf at columns j > i
        causal = torch.full((block_size, block_size), -math.inf).triu(1)
        self.register_buffer("causal", causal, persistent=False)

    def forward(
        self,
        x: Tensor,
        past: tuple[Tensor, Tensor] | None = None,
        need_weights: bool = False,
    ) -> tuple[Tensor, tuple[Tensor, Tensor], Tensor | None]:
        N, T, E = x.shape
        nh, hs = self.n_head, E // self.n_head
        q, k, v = self.qkv(x).split(E, dim=2)
        q = q.view(N, T, nh, hs).transpose(1, 2)  # (N, nh, T, hs)
        k = k.view(N, T, nh, hs).transpose(1, 2)
        v = v.view(N, T, nh, hs).transpose(1, 2)
        if past is not None:
            k = torch.cat([past[0], k], dim=2)  # (N, nh, S, hs), S = cached P + T
            v = torch.cat([past[1], v], dim=2)
        S = k.size(2)
        P = S - T
        dropout_p = self.dropout if self.training else 0.0
        fused = x.is_cuda if self.fused is None else self.fused
        weights = None
        if fused and not need_weights:
            # SDPA's boolean mask is True = may attend: new position P + i sees j <= P + i
            mask = None if P == 0 else self.causal[P:S, :S] == 0
            y = F.scaled_dot_product_attention(
                q, k, v, attn_mask=mask, is_causal=P == 0 and T > 1, dropout_p=dropout_p
            )  # (N, nh, T, hs)
        else:
            mask = self.causal[P:S, :S].to(q.dtype).expand(N * nh, T, S)  # absolute positions
            scores = torch.baddbmm(
                mask,
                q.reshape(N * nh, T, hs),
                k.reshape(N * nh, S, hs).transpose(1, 2),
                alpha=1.0 / math.sqrt(hs),
            )  # (N*nh, T, S)
            weights = scores.softmax(dim=-1)
            if dropout_p > 0.0:
                weights = F.dropout(weights, p=dropout_p)
            y = torch.bmm(weights.to(v.dtype), v.reshape(N * nh, S, hs)).view(N, nh, T, hs)
            weights = weights.view(N, nh, T, S)
        y = y.transpose(1, 2).reshape(N, T, E)  # (N, T, E)
        return self.resid_dropout(self.proj(y)), (k, v), weights if need_weights else None


class Block(nn.Module):
    """x + attn(ln(x)), then x + mlp(ln(x)): the pre-norm residual block of GPT-2."""

    def __init__(
        self, n_embd: int, n_head: int, block_size: int, dropout: float, bias: bool
    ) -> None:
        super().__init__()
        self.ln_1 = nn.LayerNorm(n_embd, bias=bias)
        self.attn = CausalSelfAttention(n_embd, n_head, block_size, dropout, bias)
        self.ln_2 = nn.LayerNorm(n_embd, bias=bias)
        self.mlp = nn.Sequential(
            nn.Linear(n_embd, 4 * n_embd, bias=bias),
            nn.GELU(),
            nn.Linear(4 * n_embd, n_embd, bias=bias),
            nn.Dropout(dropout),
        )

    def forward(self, x: Tensor, past=None, need_weights: bool = False):
        a, present, weights = self.attn(self.ln_1(x), past, need_weights)
        x = x + a
        return x + self.mlp(self.ln_2(x)), present, weights


class GPT(nn.Module):
    r"""A GPT language model: predicts each next token from the ones before it.

    Radford et al. 2019 ("Language models are unsupervised multitask learners"): token
    embedding + position encoding, ``n_layer`` pre-norm blocks (causal self-attention,
    4x GELU MLP), final LayerNorm, linear head. Initialised as GPT-2: N(0, 0.02) weights,
    residual projections scaled by 1/√(2·n_layer).

    Args:
        vocab_size: V, the number of token ids.
        block_size: the longest context the model reads (learned positions exist for it).
        n_layer: number of Transformer blocks. Default: 4.
        n_head: attention heads per block; ``n_embd`` must be divisible by it. Default: 4.
        n_embd: E, the width of the residual stream. Default: 128.
        dropout: dropout on attention weights, residual branches and embeddings. Default: 0.
        bias: biases in the Linear and LayerNorm layers (GPT-2 has them). Default: False.
        tie_weights: share the token embedding and the output head's weight (GPT-2, Press &
            Wolf 2017). Default: True.
        positional: ``"learned"`` (GPT-2) or ``"sinusoidal"`` (the original Transformer).

    Shape:
        - Input: (N, T) token ids, T <= block_size.
        - Output: (N, T, V) logits for the next token at every position; with
          ``targets`` (N, T), also the mean cross-entropy (ids of -1 are ignored).

    Examples:
        >>> torch.manual_seed(0)
        <torch._C.Generator object at ...>
        >>> model = GPT(vocab_size=10, block_size=8, n_layer=2, n_head=2, n_embd=16)
        >>> idx, targets = torch.zeros(3, 8, dtype=torch.long), torch.ones(3, 8, dtype=torch.long)
        >>> logits, loss = model(idx, targets)
        >>> logits.shape, round(loss.item(), 1)  # ~ln(10) before training
        (torch.Size([3, 8, 10]), 2.3)
        >>> model.generate(torch.zeros(1, 1, dtype=torch.long), max_new_tokens=5).shape
        torch.Size([1, 6])
    """

    def __init__(
        self,
        vocab_size: int,
        block_size: int,
        n_layer: int = 4,
        n_head: int = 4,
        n_embd: int = 128,
        dropout: float = 0.0,
        bias: bool = False,
        tie_weights: bool = True,
        positional: str = "learned",
    ) -> None:
        super().__init__()
        for name, value in (
            ("vocab_size", vocab_size),
            ("block_size", block_size),
            ("n_layer", n_layer),
            ("n_head", n_head),
            ("n_embd", n_embd),
        ):
            if value < 1:
                raise ValueError(f"{name}: expected >= 1, got {value}")
        if n_embd % n_head:
            raise ValueError(f"n_embd: expected a multiple of n_head={n_head}, got {n_embd}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout: expected a probability in [0, 1), got {dropout}")
        if positional not in ("learned", "sinusoidal"):
            raise ValueError(f"positional: expected 'learned' or 'sinusoidal', got {positional!r}")
        self.vocab_size, self.block_size = vocab_size, block_size
        self.n_layer, self.n_head, self.n_embd = n_layer, n_head, n_embd
        self.dropout, self.bias, self.tie_weights = dropout, bias, tie_weights
        self.positional = positional

        self.wte = nn.Embedding(vocab_size, n_embd)
        if positional == "learned":
            self.wpe = LearnedPositionalEncoding(n_embd, block_size)
        else:
            self.wpe = SinusoidalPositionalEncoding(n_embd, block_size)
        self.drop = nn.Dropout(dropout)
        self.blocks = nn.ModuleList(
            Block(n_embd, n_head, block_size, dropout, bias) for _ in range(n_layer)
        )
        self.ln_f = nn.LayerNorm(n_embd, bias=bias)
        self.lm_head = nn.Linear(n_embd, vocab_size, bias=False)
        if tie_weights:
            self.lm_head.weight = self.wte.weight
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """GPT-2 initialisation: N(0, 0.02), residual output projections N(0, 0.02/√(2L))."""
        for module in self.modules():
            if isinstance(module, (nn.Linear, nn.Embedding)):
                nn.init.normal_(module.weight, std=0.02)
            if isinstance(module, nn.Linear) and module.bias is not None:
                nn.init.zeros_(module.bias)
            if isinstance(module, nn.LayerNorm):
                module.reset_parameters()
        for name, p in self.named_parameters():
            if name.endswith(("attn.proj.weight", "mlp.2.weight")):
                nn.init.normal_(p, std=0.02 / math.sqrt(2 * self.n_layer))

    def extra_repr(self) -> str:
        return (
            f"vocab_size={self.vocab_size}, block_size={self.block_size}, "
            f"n_layer={self.n_layer}, n_head={self.n_head}, n_embd={self.n_embd}, "
            f"dropout={self.dropout}, bias={self.bias}, tie_weights={self.tie_weights}, "
            f"positional={self.positional!r}"
        )

    def num_parameters(self, non_embedding: bool = True) -> int:
        """Parameter count; by default without the position embedding (the convention in
        the scaling-law papers; the tied token embedding counts once, as the head)."""
        n = sum(p.numel() for p in self.parameters())
        if non_embedding:
            n -= sum(p.numel() for p in self.wpe.parameters())
        return n

    def forward(
        self,
        idx: Tensor,
        targets: Tensor | None = None,
        *,
        past: KVCache | None = None,
    ) -> tuple[Tensor, Tensor | None] | tuple[Tensor, KVCache]:
        """Next-token logits (N, T, V) and the loss if ``targets`` is given.

        With ``past`` (a :data:`KVCache`, ``[]`` to start one), ``idx`` continues the
        cached positions and the result is ``(logits, cache)`` with the cache extended.
        """
        self._check_ids(idx, "idx")
        N, T = idx.shape
        offset = 0 if not past else past[0][0].size(2)
        if offset + T > self.block_size:
            raise ValueError(
                f"idx: expected at most block_size={self.block_size} positions"
                + (f" (with {offset} cached)" if offset else "")
                + f", got {T}"
            )
        x = self.drop(self.wpe(self.wte(idx), offset=offset))  # (N, T, E)
        present = [] if past is not None else None
        for i, block in enumerate(self.blocks):
            x, kv, _ = block(x, past[i] if past else None)
            if present is not None:
                present.append(kv)
        logits = self.lm_head(self.ln_f(x))  # (N, T, V)
        if present is not None:
            return logits, present
        if targets is None:
            return logits, None
        if targets.shape != idx.shape:
            raise ValueError(
                f"targets: expected shape {tuple(idx.shape)} (like idx), got {tuple(targets.shape)}"
            )
        loss = F.cross_entropy(logits.view(N * T, -1), targets.reshape(N * T), ignore_index=-1)
        return logits, loss

    def _check_ids(self, idx: Tensor, name: str) -> None:
        if idx.dim() != 2 or idx.dtype not in (torch.long, torch.int):
            raise ValueError(
                f"{name}: expected (N, T) integer token ids, got shape {tuple(idx.shape)} "
                f"dtype {idx.dtype}"
            )

    @torch.no_grad()
    def attention_maps(self, idx: Tensor) -> Tensor:
        """Every head's attention weights: (n_layer, N, n_head, T, T), rows sum to 1."""
        self._check_ids(idx, "idx")
        x = self.drop(self.wpe(self.wte(idx)))
        maps = []
        for block in self.blocks:
            x, _, weights = block(x, need_weights=True)
            maps.append(weights)
        return torch.stack(maps)

    @torch.no_grad()
    def generate(
        self,
        idx: Tensor,
        max_new_tokens: int,
        temperature: float = 1.0,
        top_k: int | None = None,
        *,
        greedy: bool = False,
        use_cache: bool = True,
        generator: torch.Generator | None = None,
    ) -> Tensor:
        """Continue each row of ``idx`` (N, T) by ``max_new_tokens`` tokens: (N, T + new).

        Samples from softmax(logits / temperature), restricted to the ``top_k`` most likely
        tokens if given, or takes the most likely token (``greedy=True``). With
        ``use_cache`` each new token runs the model on one position and reuses the cached
        keys and values; once the context outgrows ``block_size`` the model reads the last
        ``block_size`` tokens afresh each step (positions shift), exactly as without the
        cache — so both give the same tokens for the same ``generator``.
        """
        self._check_ids(idx, "idx")
        if max_new_tokens < 0:
            raise ValueError(f"max_new_tokens: expected >= 0, got {max_new_tokens}")
        if temperature <= 0:
            raise ValueError(f"temperature: expected > 0, got {temperature}")
        if top_k is not None and not 1 <= top_k <= self.vocab_size:
            raise ValueError(f"top_k: expected 1..{self.vocab_size}, got {top_k}")
        cache: KVCache | None = None
        for _ in range(max_new_tokens):
            if use_cache and idx.size(1) <= self.block_size:
                if cache is None:  # prefill
                    logits, cache = self(idx, past=[])
                else:
                    logits, cache = self(idx[:, -1:], past=cache)
            else:
                logits, _ = self(idx[:, -self.block_size :])
            logits = logits[:, -1, :] / temperature  # (N, V)
            if greedy:
                next_id = logits.argmax(dim=-1, keepdim=True)
            else:
                if top_k is not None:
                    kth = torch.topk(logits, top_k).values[:, -1:]
                    logits = logits.masked_fill(logits < kth, -math.inf)
                probs = logits.softmax(dim=-1)
                next_id = torch.multinomial(probs, num_samples=1, generator=generator)
            idx = torch.cat([idx, next_id], dim=1)
        return idx
