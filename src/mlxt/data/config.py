"""`DataConfig`: the ``[data]`` section of a training TOML.

A corpus is named either by a built-in ``corpus`` (see ``mlxt data list``) or by user files:
``path`` (plain text for lm; TSV or Tatoeba ``.zip`` for seq2seq) or ``src_path`` + ``tgt_path``
(two aligned files, optionally ``.gz``). Held-out splits may be given as files too; missing
splits are cut from the training data deterministically by ``seed``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from mlxt.errors import MlxtError

FORMATS = ("auto", "text", "aligned", "tsv", "tatoeba")
TOKENIZERS = ("char", "bpe")
OVERLONG = ("truncate", "reject")
LM_SAMPLING = ("random", "contiguous")


@dataclass
class DataConfig:
    """Where the text comes from, how it is tokenized, split and batched.

    corpus: a built-in corpus name (``shakespeare``, ``ding-de-en``, ``tatoeba-deu-eng``, ...).
    source: where a downloadable built-in corpus is fetched from instead of its public URL
        (a local path, a ``file://`` URL or another URL; a directory for ``multi30k``).
    path / src_path / tgt_path: user files (see module docstring).
    valid_path, test_path (and ``valid_src_path`` ... for aligned files): held-out splits.
    format: ``auto`` guesses from the file names (``.zip`` -> tatoeba, ``.tsv`` -> tsv, two
        files -> aligned, else text for lm and tsv for seq2seq).
    src_lang / tgt_lang: direction for corpora with known languages (``"de"``, ``"en"``);
        empty means the corpus's own order (Tatoeba: English -> other).
    tokenizer: ``char`` or ``bpe`` (byte-level BPE trained with Hugging Face ``tokenizers``).
    vocab_size: BPE vocabulary size including the 4 special tokens.
    joint_vocab: one tokenizer for source and target (seq2seq).
    lowercase: lowercase all text before anything else.
    valid_size / test_size: held-out examples cut when no file is given: a count when >= 1,
        else a fraction; negative means the default (seq2seq: 5% capped at 2000 each; lm:
        valid is the last 10% of the text, nanoGPT style, and no test). For lm text they are
        fractions of the characters, the test part sitting just before the valid part.
    seed: seed of the split.
    dedup: drop repeated (source, target) pairs (seq2seq) before splitting.
    max_len: longest sequence in tokens (seq2seq: source + eos, and target + bos/eos).
    overlong: ``truncate`` or ``reject`` (drop) examples longer than ``max_len`` (in every split;
        ``texts`` keeps exactly the examples that are batched).
    max_tokens: seq2seq token budget of one global batch, counted as padded source plus
        padded target tokens: ``B * (Ls + Lt) <= max_tokens``.
    buckets: padded lengths used for sequences; empty means multiples of ``bucket_multiple``.
    joint_buckets: pad source and target of an example to the same bucket (the longer one's),
        so batches have as few distinct shapes as there are buckets (each shape is a compile).
    batch_size / block_size: lm batches of ``batch_size`` rows of ``block_size`` tokens.
    lm_sampling: ``random`` (nanoGPT: random offsets by seed) or ``contiguous`` blocks.
    """

    corpus: str = ""
    source: str = ""
    path: str = ""
    src_path: str = ""
    tgt_path: str = ""
    valid_path: str = ""
    test_path: str = ""
    valid_src_path: str = ""
    valid_tgt_path: str = ""
    test_src_path: str = ""
    test_tgt_path: str = ""
    format: str = "auto"
    src_lang: str = ""
    tgt_lang: str = ""
    tokenizer: str = "bpe"
    vocab_size: int = 8000
    joint_vocab: bool = True
    lowercase: bool = False
    valid_size: float = -1.0
    test_size: float = -1.0
    seed: int = 1234
    dedup: bool = False
    max_len: int = 128
    overlong: str = "truncate"
    max_tokens: int = 4096
    buckets: list[int] = field(default_factory=list)
    bucket_multiple: int = 8
    joint_buckets: bool = True
    batch_size: int = 32
    block_size: int = 256
    lm_sampling: str = "random"

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        def choose(key: str, options: tuple) -> None:
            value = getattr(self, key)
            if value not in options:
                raise MlxtError(f"[data] {key} = {value!r}: expected one of {', '.join(options)}")

        choose("format", FORMATS)
        choose("tokenizer", TOKENIZERS)
        choose("overlong", OVERLONG)
        choose("lm_sampling", LM_SAMPLING)
        for key in ("max_len", "max_tokens", "batch_size", "block_size", "bucket_multiple", "vocab_size"):
            if getattr(self, key) <= 0:
                raise MlxtError(f"[data] {key} = {getattr(self, key)}: expected a positive integer")
        if any(b <= 0 for b in self.buckets) or sorted(set(self.buckets)) != list(self.buckets):
            raise MlxtError(f"[data] buckets = {self.buckets}: expected increasing positive integers")
        if bool(self.src_path) != bool(self.tgt_path):
            raise MlxtError("[data] src_path and tgt_path: give both aligned files or neither")
        if self.corpus and (self.path or self.src_path):
            raise MlxtError("[data] corpus and path/src_path: give a built-in corpus or files, not both")
