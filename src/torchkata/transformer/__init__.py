"""Tip 9: Transformers — attention from tensor operations, masks, encoder-decoder, GPT."""

from torchkata.transformer.attention import (
    MultiheadAttention,
    causal_mask,
    padding_mask,
    scaled_dot_product_attention,
)
from torchkata.transformer.gpt import GPT
from torchkata.transformer.layers import (
    Transformer,
    TransformerDecoder,
    TransformerDecoderLayer,
    TransformerEncoder,
    TransformerEncoderLayer,
)
from torchkata.transformer.positional import (
    LearnedPositionalEncoding,
    SinusoidalPositionalEncoding,
    sinusoidal_table,
)
from torchkata.transformer.seq2seq import Seq2SeqTransformer
from torchkata.transformer.tokenizer import CharTokenizer

__all__ = [
    "GPT",
    "CharTokenizer",
    "LearnedPositionalEncoding",
    "MultiheadAttention",
    "Seq2SeqTransformer",
    "SinusoidalPositionalEncoding",
    "Transformer",
    "TransformerDecoder",
    "TransformerDecoderLayer",
    "TransformerEncoder",
    "TransformerEncoderLayer",
    "causal_mask",
    "padding_mask",
    "scaled_dot_product_attention",
    "sinusoidal_table",
]
