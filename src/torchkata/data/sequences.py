"""Generated sequence-to-sequence tasks: reverse, sort and add digit strings.

Three toy tasks for an encoder-decoder Transformer, each with sources of varying length:

- ``"reverse"``: the source is :math:`L` random digits, the target the same digits in
  reverse order (``"3071"`` -> ``"1703"``);
- ``"sort"``: the source is :math:`L` random digits, the target the same digits sorted
  ascending (``"3071"`` -> ``"0137"``);
- ``"add"``: the source is ``"a+b"``, the target the decimal sum without leading zeros
  (``"123+45"`` -> ``"168"``).

:math:`L` is uniform in ``[min_len, max_len]``; for ``"add"`` the two operands draw their
digit counts independently from that range, and each operand is uniform among the numbers
with exactly that many digits (a 1-digit operand may be 0, a longer one has no leading
zero).

Token layout: a vocabulary of 14 tokens, :data:`VOCAB`: ``PAD = 0``, ``BOS = 1``,
``EOS = 2``, digit :math:`d` is :math:`3 + d` and ``"+"`` is 13. A source is its tokens
then ``PAD`` up to the longest source in the set; a target is ``BOS``, the answer's tokens,
``EOS``, then ``PAD`` up to the longest target. A decoder is fed ``tgt[:, :-1]`` and trained
to predict ``tgt[:, 1:]``.

Held-out split: whether a source belongs to the ``"test"`` or the ``"train"`` split is a
fixed function of its text, ``zlib.crc32(source.encode()) % 10 == 0`` for test, the same
for every task, seed and length. About 10% of all possible sources are test-only, so a
model scored on a test set never saw any of its sources in training, whatever seeds
built the two sets. Sets are drawn by rejection: draw a source, keep it if it is in the
requested split. Duplicates within a set are kept (they are rare except at short lengths:
of the ten one-digit sources only ``"6"`` is in the test split).
"""

from __future__ import annotations

import dataclasses
import numbers
import zlib
from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor

__all__ = [
    "BOS",
    "EOS",
    "PAD",
    "TASKS",
    "VOCAB",
    "Seq2SeqData",
    "answer",
    "decode",
    "encode",
    "make_task",
]

PAD, BOS, EOS = 0, 1, 2
"""The ids of the padding, begin-of-sequence and end-of-sequence tokens."""

VOCAB: tuple[str, ...] = ("<pad>", "<bos>", "<eos>", *"0123456789", "+")
"""The 14 tokens, by id: the three specials, the digits 0..9 (ids 3..12) and ``"+"`` (13)."""

TASKS: tuple[str, ...] = ("reverse", "sort", "add")
"""The names of the tasks that :func:`make_task` generates."""

SPLITS: tuple[str, ...] = ("train", "test")

_DIGIT0 = 3  # the id of "0"
_PLUS = 13  # the id of "+"
_CHAR_TO_ID = {char: i for i, char in enumerate(VOCAB) if len(char) == 1}
_ID_TO_ASCII = np.frombuffer(b"\0\0\0" + "".join(VOCAB[3:]).encode(), dtype=np.uint8)
_CHUNK = 4096  # sources drawn at a time; fixed, so a set's first k examples ignore n
_MAX_EMPTY_DRAWS = 1 << 16  # draws without a single source of the split before giving up


def _is_test_source(source: bytes) -> bool:
    """Whether an ASCII source such as ``b"123+45"`` belongs to the test split."""
    return zlib.crc32(source) % 10 == 0


@dataclasses.dataclass
class Seq2SeqData:
    r"""A padded set of source and target token sequences for one task.

    Indexing with an int, a slice, a list or a tensor of indices (or a bool mask) returns
    a new :class:`Seq2SeqData` with those examples, its padding trimmed to the longest
    source and the longest target among them (an int gives a set of one example, still
    2-D). The tensors are indexed, not copied, where PyTorch's indexing allows it.

    Attributes:
        src: source tokens, ``PAD`` after each source's end.
        tgt: target tokens: ``BOS``, the answer, ``EOS``, then ``PAD``.
        src_lengths: the number of source tokens before the padding.
        tgt_lengths: the number of target tokens before the padding, ``BOS`` and ``EOS``
            included.
        task: the task's name, one of :data:`TASKS`.

    Shape:
        - src: :math:`(N, S)`, int64, with :math:`N` examples and :math:`S` the longest
          source length.
        - tgt: :math:`(N, T)`, int64, with :math:`T` the longest target length.
        - src_lengths, tgt_lengths: :math:`(N)`, int64.

    Examples:
        >>> data = make_task("reverse", 100, 2, 9, seed=0)
        >>> tuple(data.src.shape), data[:3].src_lengths.tolist(), tuple(data[:3].src.shape)
        ((100, 9), [8, 7, 6], (3, 8))
        >>> decode(data.src[0]), decode(data.tgt[0])
        ('42288016', '61088224')
    """

    src: Tensor
    tgt: Tensor
    src_lengths: Tensor
    tgt_lengths: Tensor
    task: str

    def __len__(self) -> int:
        return self.src.shape[0]

    def __getitem__(self, idx: int | slice | Sequence[int] | Tensor) -> Seq2SeqData:
        if isinstance(idx, Tensor) and idx.dim() == 0 and not idx.is_floating_point():
            idx = int(idx)
        if isinstance(idx, numbers.Integral) and not isinstance(idx, bool):
            n = len(self)
            if not -n <= idx < n:
                raise IndexError(f"idx: expected an int in [{-n}, {n}), got {idx!r}")
            idx = slice(int(idx) % n, int(idx) % n + 1)  # keep the batch dimension
        elif isinstance(idx, (list, tuple)):
            idx = torch.as_tensor(idx, dtype=torch.long) if len(idx) else slice(0, 0)
        src_lengths, tgt_lengths = self.src_lengths[idx], self.tgt_lengths[idx]
        s = int(src_lengths.max()) if len(src_lengths) else 0
        t = int(tgt_lengths.max()) if len(tgt_lengths) else 0
        return Seq2SeqData(
            self.src[idx][:, :s], self.tgt[idx][:, :t], src_lengths, tgt_lengths, self.task
        )


def _check_task(task: str) -> None:
    if task not in TASKS:
        raise ValueError(f"task: expected one of {TASKS}, got {task!r}")


def _check_int(name: str, value: object, minimum: int, what: str) -> int:
    if not isinstance(value, numbers.Integral) or isinstance(value, bool) or value < minimum:
        raise ValueError(f"{name}: expected an int >= {what}, got {value!r}")
    return int(value)


def _draw_chunk(
    rng: np.random.Generator, task: str, min_len: int, max_len: int
) -> tuple[np.ndarray, ...]:
    """One chunk of ``_CHUNK`` sources as digit arrays and lengths, left-aligned.

    ``"reverse"``/``"sort"``: ``(lengths, digits)``; ``"add"``: ``(len_a, digits_a,
    len_b, digits_b)``. Digit arrays are (C, max_len) with junk after each length.
    """
    c, w = _CHUNK, max_len
    lengths = rng.integers(min_len, max_len + 1, size=c)
    digits = rng.integers(0, 10, size=(c, w))
    if task != "add":
        return lengths, digits
    len_b = rng.integers(min_len, max_len + 1, size=c)
    digits_b = rng.integers(0, 10, size=(c, w))
    lead = rng.integers(1, 10, size=(2, c))  # a number with 2+ digits has no leading 0
    digits[:, 0] = np.where(lengths > 1, lead[0], digits[:, 0])
    digits_b[:, 0] = np.where(len_b > 1, lead[1], digits_b[:, 0])
    return lengths, digits, len_b, digits_b


def _keep(tokens: np.ndarray, lengths: np.ndarray, want_test: bool, needed: int) -> np.ndarray:
    """Indices of the sources (rows of ``tokens``) in the wanted split, at most ``needed``."""
    is_test = _is_test_source  # looked up per call, so a test may swap the split
    w = tokens.shape[1]
    text = _ID_TO_ASCII[tokens].tobytes()  # source i is text[i * w : i * w + lengths[i]]
    kept: list[int] = []
    for i, length in enumerate(lengths.tolist()):
        if is_test(text[i * w : i * w + length]) == want_test:
            kept.append(i)
            if len(kept) == needed:
                break
    return np.asarray(kept, dtype=np.int64)


def _gather(digits: np.ndarray, index: np.ndarray) -> np.ndarray:
    """``digits[i, index[i, j]]``, with out-of-range indices clipped (mask them after)."""
    return np.take_along_axis(digits, np.clip(index, 0, digits.shape[1] - 1), axis=1)


def _answer_digits(task: str, chunk: tuple[np.ndarray, ...]) -> tuple[np.ndarray, np.ndarray]:
    """The answers as left-aligned digit arrays (junk after the length) and their lengths.

    Computed on the digit arrays (column-wise addition with carries for ``"add"``),
    independently of :func:`answer`, which the tests compare against.
    """
    lengths, digits = chunk[0], chunk[1]
    n, w = digits.shape
    cols = np.arange(w)
    if task == "reverse":
        return _gather(digits, lengths[:, None] - 1 - cols), lengths  # (n, w)
    if task == "sort":
        padded = np.where(cols < lengths[:, None], digits, 10)  # 10 sorts after every digit
        return np.sort(padded, axis=1), lengths
    len_b, digits_b = chunk[2], chunk[3]
    # right-aligned: column k holds the digit of 10**k, or 0 beyond the number
    a = np.where(cols < lengths[:, None], _gather(digits, lengths[:, None] - 1 - cols), 0)
    b = np.where(cols < len_b[:, None], _gather(digits_b, len_b[:, None] - 1 - cols), 0)
    total = np.zeros((n, w + 1), dtype=np.int64)  # a + b has at most w + 1 digits
    carry = np.zeros(n, dtype=np.int64)
    for k in range(w):
        column = a[:, k] + b[:, k] + carry
        total[:, k], carry = column % 10, column // 10
    total[:, w] = carry
    # the length is 1 + the position of the highest non-zero digit (1 for a sum of 0)
    nonzero = total != 0
    top = w - np.argmax(nonzero[:, ::-1], axis=1)  # (n,) the highest non-zero column
    out_len = np.where(nonzero.any(axis=1), top + 1, 1)
    return _gather(total, out_len[:, None] - 1 - np.arange(w + 1)), out_len


def _source_tokens(task: str, chunk: tuple[np.ndarray, ...]) -> tuple[np.ndarray, np.ndarray]:
    """Source tokens padded with ``PAD`` to the widest possible source, and lengths."""
    lengths, digits = chunk[0], chunk[1]
    w = digits.shape[1]
    if task != "add":
        cols = np.arange(w)
        return np.where(cols < lengths[:, None], digits + _DIGIT0, PAD), lengths
    len_b, digits_b = chunk[2], chunk[3]
    cols = np.arange(2 * w + 1)[None, :]  # (1, 2w + 1) against lengths (n, 1)
    la, lb = lengths[:, None], len_b[:, None]
    tokens = np.full((len(lengths), 2 * w + 1), PAD, dtype=np.int64)
    a_index = np.broadcast_to(cols, tokens.shape)  # (n, 2w + 1)
    tokens = np.where(cols < la, _gather(digits, a_index) + _DIGIT0, tokens)
    tokens = np.where(cols == la, _PLUS, tokens)
    in_b = (cols > la) & (cols <= la + lb)
    tokens = np.where(in_b, _gather(digits_b, cols - la - 1) + _DIGIT0, tokens)
    return tokens, lengths + 1 + len_b


def make_task(
    task: str, n: int, min_len: int, max_len: int, *, split: str = "train", seed: int = 0
) -> Seq2SeqData:
    r"""Generate ``n`` examples of a sequence-to-sequence task, padded on the right.

    See the module docstring for the tasks, the token layout and the split. Sources are
    drawn with ``np.random.default_rng([seed, s])`` (:math:`s` = 0 for train, 1 for test)
    in chunks of 4096, and those outside ``split`` are rejected; the same arguments give
    the same data, and the first :math:`k` examples do not depend on ``n``. Targets are
    computed on digit arrays (column-wise addition for ``"add"``), independently of
    :func:`answer`. Duplicate sources are kept; at short lengths they are common.
    20,000 examples of up to 12 digits take 0.05 s to 0.5 s on a CPU core (the most for
    the ``"add"`` test split, which rejects nine draws in ten).

    Args:
        task: one of :data:`TASKS`: ``"reverse"``, ``"sort"`` or ``"add"``.
        n: the number of examples, >= 1.
        min_len: the fewest digits of a source (of each operand for ``"add"``), >= 1.
        max_len: the most digits of a source (of each operand for ``"add"``),
            >= ``min_len``.
        split: ``"train"`` or ``"test"``: which of the two disjoint sets of sources to
            draw from. Default: ``"train"``.
        seed: seed of the generator, an int >= 0. Default: ``0``.

    Returns:
        Seq2SeqData: ``n`` examples of ``task``.

    Raises:
        ValueError: an argument is out of range, or no source of the lengths asked for is
            found in ``split`` after 65,536 draws.

    Shape:
        - Output.src: :math:`(N, S)` with :math:`N` = ``n`` and :math:`S` the longest
          source drawn: at most ``max_len``, or ``2 * max_len + 1`` for ``"add"``.
        - Output.tgt: :math:`(N, T)`, :math:`T` the longest target with ``BOS`` and
          ``EOS``: at most ``max_len + 2``, or ``max_len + 3`` for ``"add"``.
        - Output.src_lengths, Output.tgt_lengths: :math:`(N)`.

    Examples:
        >>> data = make_task("add", 1000, 1, 3, split="test", seed=0)
        >>> tuple(data.src.shape), tuple(data.tgt.shape)
        ((1000, 7), (1000, 6))
        >>> data.src[1].tolist(), data.tgt[1].tolist()
        ([11, 12, 11, 13, 12, 0, 0], [1, 12, 3, 10, 2, 0])
        >>> source = decode(data.src[1]); source, decode(data.tgt[1]), answer("add", source)
        ('898+9', '907', '907')
    """
    _check_task(task)
    n = _check_int("n", n, 1, "1")
    min_len = _check_int("min_len", min_len, 1, "1")
    max_len = _check_int("max_len", max_len, min_len, f"min_len = {min_len}")
    if split not in SPLITS:
        raise ValueError(f"split: expected one of {SPLITS}, got {split!r}")
    seed = _check_int("seed", seed, 0, "0")

    rng = np.random.default_rng([seed, SPLITS.index(split)])
    want_test = split == "test"
    parts: list[tuple[np.ndarray, ...]] = []  # per chunk: source tokens, lengths, draws
    found = draws = 0
    while found < n:
        chunk = _draw_chunk(rng, task, min_len, max_len)
        draws += _CHUNK
        tokens, lengths = _source_tokens(task, chunk)
        kept = _keep(tokens, lengths, want_test, n - found)
        if len(kept):
            parts.append((tokens[kept], lengths[kept], *(array[kept] for array in chunk)))
            found += len(kept)
        elif found == 0 and draws >= _MAX_EMPTY_DRAWS:
            raise ValueError(
                f"split: expected a split holding sources of task {task!r} with lengths in "
                f"[min_len, max_len] = [{min_len}, {max_len}], got {split!r}, in which "
                f"{draws} draws found none; widen the lengths"
            )
    src, src_lengths, *drawn = (np.concatenate(arrays) for arrays in zip(*parts, strict=True))
    answer_digits, answer_lengths = _answer_digits(task, tuple(drawn))
    cols = np.arange(answer_digits.shape[1])
    tgt = np.full((n, answer_digits.shape[1] + 2), PAD, dtype=np.int64)
    tgt[:, 0] = BOS
    tgt[:, 1:-1] = np.where(cols < answer_lengths[:, None], answer_digits + _DIGIT0, PAD)
    tgt[np.arange(n), answer_lengths + 1] = EOS
    tgt_lengths = answer_lengths + 2
    s, t = int(src_lengths.max()), int(tgt_lengths.max())
    return Seq2SeqData(
        src=torch.from_numpy(np.ascontiguousarray(src[:, :s])).long(),
        tgt=torch.from_numpy(np.ascontiguousarray(tgt[:, :t])).long(),
        src_lengths=torch.from_numpy(src_lengths).long(),
        tgt_lengths=torch.from_numpy(tgt_lengths).long(),
        task=task,
    )


def decode(tokens: Tensor | Sequence[int]) -> str:
    """Turn token ids into text: skip ``BOS`` and ``PAD``, stop at the first ``EOS``.

    Args:
        tokens: a sequence of ids in ``0..13``, such as a row of ``src``, ``tgt`` or a
            model's greedy output.

    Returns:
        The text of the digits and ``"+"`` signs before the first ``EOS``.

    Shape:
        - tokens: :math:`(L)`, any integer dtype.

    Examples:
        >>> decode([BOS, 4, 5, 6, 13, 7, 8, EOS, PAD])
        '123+45'
        >>> decode(torch.tensor([BOS, EOS, 5, 5]))
        ''
    """
    if isinstance(tokens, Tensor):
        if tokens.dim() != 1:
            raise ValueError(f"tokens: expected a 1-D tensor, got shape {tuple(tokens.shape)}")
        tokens = tokens.tolist()
    chars = []
    for token in tokens:
        if token == EOS:
            break
        if token in (BOS, PAD):
            continue
        if (
            not isinstance(token, numbers.Integral)
            or isinstance(token, bool)
            or not 0 <= token < len(VOCAB)
        ):
            raise ValueError(f"tokens: expected ids in 0..{len(VOCAB) - 1}, got {token!r}")
        chars.append(VOCAB[token])
    return "".join(chars)


def encode(text: str) -> list[int]:
    """Turn text of digits and ``"+"`` signs into token ids, without ``BOS`` or ``EOS``.

    Args:
        text: a string of the characters ``0123456789+``.

    Returns:
        One id per character: :math:`3 + d` for digit :math:`d`, 13 for ``"+"``.

    Examples:
        >>> encode("123+45")
        [4, 5, 6, 13, 7, 8]
        >>> decode(encode("907"))
        '907'
    """
    ids = []
    for i, char in enumerate(text):
        if char not in _CHAR_TO_ID:
            raise ValueError(
                f"text: expected only the characters 0123456789+, got {char!r} at index {i}"
            )
        ids.append(_CHAR_TO_ID[char])
    return ids


def answer(task: str, source: str) -> str:
    """The correct target text for a source text, to score a model's decoded outputs.

    Written with Python's ``reversed``, ``sorted`` and ``int`` arithmetic, apart from the
    generator's own computation, so that each checks the other.

    Args:
        task: one of :data:`TASKS`.
        source: a source as :func:`decode` gives it: digits for ``"reverse"`` and
            ``"sort"``, ``"a+b"`` for ``"add"``.

    Returns:
        The reversed digits, the sorted digits, or the decimal sum without leading zeros.

    Examples:
        >>> answer("reverse", "3071"), answer("sort", "3071"), answer("add", "123+45")
        ('1703', '0137', '168')
    """
    _check_task(task)
    if task == "add":
        parts = source.split("+")
        if len(parts) != 2 or not all(p.isdigit() and p.isascii() for p in parts):
            raise ValueError(f"source: expected digits '+' digits for task 'add', got {source!r}")
        return str(int(parts[0]) + int(parts[1]))
    if not (source.isdigit() and source.isascii()):
        raise ValueError(f"source: expected digits for task {task!r}, got {source!r}")
    return "".join(reversed(source)) if task == "reverse" else "".join(sorted(source))
