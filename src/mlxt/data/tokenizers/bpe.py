"""Byte-level BPE tokenizer trained locally with Hugging Face ``tokenizers``.

Byte-level means the base alphabet is the 256 byte values, so every Unicode string encodes
without ``unk`` and ``decode(encode(s)) == s`` for any text. The Hugging Face model holds no
special tokens at all (so a literal ``"<pad>"`` in the text is ordinary text); mlxt ids are the
Hugging Face ids shifted by 4, leaving 0-3 for pad/bos/eos/unk.
"""

from __future__ import annotations

import json
from typing import Iterable

import tokenizers as hf
from tokenizers import decoders, models, pre_tokenizers, trainers

from mlxt.errors import MlxtError

from .base import SPECIAL_TOKENS, Tokenizer, check_encodable, register_tokenizer

FORMAT_VERSION = 1
OFFSET = len(SPECIAL_TOKENS)
MIN_VOCAB = 256 + OFFSET


def _new_model() -> hf.Tokenizer:
    tok = hf.Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tok.decoder = decoders.ByteLevel()
    return tok


class BPETokenizer(Tokenizer):
    """Byte-level BPE; ``vocab_size`` counts the 4 special ids."""

    type_name = "bpe"

    def __init__(self, model: hf.Tokenizer):
        self._model = model
        self._hf_size = model.get_vocab_size(with_added_tokens=False)

    @classmethod
    def train(cls, texts: Iterable[str], vocab_size: int = 8000, min_frequency: int = 2) -> "BPETokenizer":
        """Learn merges on ``texts`` until the vocabulary (with specials) has ``vocab_size`` ids.

        The result is the same for the same texts and settings (ids are deterministic).
        """
        if vocab_size < MIN_VOCAB:
            raise MlxtError(
                f"[data] vocab_size = {vocab_size}: too small for byte-level BPE, "
                f"expected at least {MIN_VOCAB} (256 bytes + {OFFSET} special tokens)"
            )
        model = _new_model()
        trainer = trainers.BpeTrainer(
            vocab_size=vocab_size - OFFSET,
            min_frequency=min_frequency,
            initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
            special_tokens=[],
            show_progress=False,
        )
        model.train_from_iterator((t for t in texts), trainer=trainer)
        return cls(model)

    @property
    def vocab_size(self) -> int:
        return OFFSET + self._hf_size

    def encode(self, text: str) -> list[int]:
        check_encodable(text)
        return [i + OFFSET for i in self._model.encode(text, add_special_tokens=False).ids]

    def encode_batch(self, texts: list[str]) -> list[list[int]]:
        for t in texts:
            check_encodable(t)
        encs = self._model.encode_batch(list(texts), add_special_tokens=False)
        return [[i + OFFSET for i in e.ids] for e in encs]

    def decode(self, ids: Iterable[int]) -> str:
        hf_ids = [int(i) - OFFSET for i in ids if OFFSET <= int(i) < OFFSET + self._hf_size]
        return self._model.decode(hf_ids, skip_special_tokens=False)

    def to_dict(self) -> dict:
        return {"type": self.type_name, "version": FORMAT_VERSION, "specials": list(SPECIAL_TOKENS),
                "offset": OFFSET, "model": json.loads(self._model.to_str())}

    @classmethod
    def from_dict(cls, data: dict, where: str = "tokenizer") -> "BPETokenizer":
        if data.get("version") != FORMAT_VERSION or data.get("offset") != OFFSET:
            raise MlxtError(f"{where}: bpe tokenizer version/offset {data.get('version')!r}/"
                            f"{data.get('offset')!r}, expected {FORMAT_VERSION}/{OFFSET}")
        try:
            model = hf.Tokenizer.from_str(json.dumps(data["model"]))
        except Exception as exc:  # a missing key, or the Rust side's plain Exception
            raise MlxtError(f"{where}: bpe tokenizer model cannot be read ({exc})") from None
        return cls(model)


register_tokenizer(BPETokenizer.type_name, BPETokenizer)
