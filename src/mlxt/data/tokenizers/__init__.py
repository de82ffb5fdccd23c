"""Tokenizers with one interface: ``encode``/``decode``/``save``/``load`` and specials pad/bos/eos/unk."""

from .base import (
    BOS_ID,
    EOS_ID,
    PAD_ID,
    SPECIAL_TOKENS,
    UNK_ID,
    Tokenizer,
    load_tokenizer,
    register_tokenizer,
    registered_types,
)
from .bpe import BPETokenizer
from .char import CharTokenizer

__all__ = [
    "BOS_ID", "EOS_ID", "PAD_ID", "UNK_ID", "SPECIAL_TOKENS", "Tokenizer", "CharTokenizer",
    "BPETokenizer", "load_tokenizer", "register_tokenizer", "registered_types",
]
