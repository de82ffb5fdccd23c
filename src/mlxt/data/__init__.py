"""Data: readers, splits, tokenizers, batching and built-in corpora."""

from .batching import BatchIterator, LMBatches, Seq2SeqBatches
from .config import DataConfig
from .prepare import PreparedData, load_tokenizers, prepare_data, save_tokenizers
from .series import SeriesConfig, SeriesData, make_series
from .tokenizers import BPETokenizer, CharTokenizer, Tokenizer, load_tokenizer, register_tokenizer

__all__ = [
    "BatchIterator", "LMBatches", "Seq2SeqBatches", "DataConfig", "PreparedData", "prepare_data",
    "load_tokenizers", "save_tokenizers", "Tokenizer", "CharTokenizer", "BPETokenizer", "load_tokenizer",
    "register_tokenizer", "SeriesConfig", "SeriesData", "make_series",
]
