"""A character-level tokenizer: one id per distinct character of a training text."""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import Tensor

__all__ = ["CharTokenizer"]


class CharTokenizer:
    """Maps each character of a fixed alphabet to an id, in sorted order (nanoGPT's
    Shakespeare-char scheme). Characters outside the alphabet are an error, not a guess.

    Args:
        alphabet: the characters; duplicates are dropped and the rest sorted.

    Examples:
        >>> tok = CharTokenizer.from_text("hello world")
        >>> tok.vocab_size, tok.encode("hold")
        (8, [3, 5, 4, 1])
        >>> tok.decode(tok.encode("hold"))
        'hold'
    """

    def __init__(self, alphabet: Iterable[str]) -> None:
        chars = sorted(set(alphabet))
        if not chars or any(len(c) != 1 for c in chars):
            raise ValueError(f"alphabet: expected single characters, got {chars[:10]!r}")
        self.chars = chars
        self._ids = {c: i for i, c in enumerate(chars)}

    @classmethod
    def from_text(cls, text: str) -> CharTokenizer:
        """The tokenizer whose alphabet is the characters of ``text``."""
        return cls(text)

    @property
    def vocab_size(self) -> int:
        return len(self.chars)

    def encode(self, text: str) -> list[int]:
        """Ids of the characters of ``text``."""
        try:
            return [self._ids[c] for c in text]
        except KeyError as err:
            raise ValueError(
                f"text: character {err.args[0]!r} is not in the tokenizer's "
                f"{self.vocab_size}-character alphabet"
            ) from None

    def decode(self, ids: Iterable[int] | Tensor) -> str:
        """The text of a sequence of ids."""
        if isinstance(ids, Tensor):
            ids = ids.tolist()
        try:
            return "".join(self.chars[i] for i in ids)
        except (IndexError, TypeError):
            raise ValueError(f"ids: expected ids in [0, {self.vocab_size}), got {ids!r}") from None

    def tensor(self, text: str) -> Tensor:
        """``encode`` as a 1-D long tensor."""
        return torch.tensor(self.encode(text), dtype=torch.long)

    def __repr__(self) -> str:
        return f"CharTokenizer(vocab_size={self.vocab_size})"
