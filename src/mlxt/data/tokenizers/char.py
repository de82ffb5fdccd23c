"""Character-level tokenizer: one id per Unicode code point seen in the training text."""

from __future__ import annotations

from collections import Counter
from typing import Iterable

import numpy as np

from mlxt.errors import MlxtError

from .base import SPECIAL_TOKENS, Tokenizer, check_encodable, register_tokenizer

FORMAT_VERSION = 1


class _Table(dict):
    """A translate table that maps every code point it does not hold to ``unk``."""

    def __init__(self, mapping: dict, unk: str):
        super().__init__(mapping)
        self.unk = unk

    def __missing__(self, key: int) -> str:
        return self.unk


class CharTokenizer(Tokenizer):
    """Ids 0-3 are the specials; characters follow in sorted code point order.

    Characters not seen in training encode to ``unk`` (which ``decode`` drops), so
    ``decode(encode(s)) == s`` exactly for text made of known characters.
    """

    type_name = "char"

    def __init__(self, chars: Iterable[str]):
        chars = list(chars)
        if len(set(chars)) != len(chars) or any(len(c) != 1 for c in chars):
            raise MlxtError("char tokenizer: expected distinct single characters")
        self.chars = chars
        offset = len(SPECIAL_TOKENS)
        self._ids = {c: i + offset for i, c in enumerate(chars)}
        # str.translate does the lookups in C: known code point -> chr(id), unknown -> chr(unk)
        self._table = _Table({ord(c): chr(i) for c, i in self._ids.items()}, chr(self.unk_id))

    @classmethod
    def train(cls, texts: Iterable[str], max_chars: int | None = None) -> "CharTokenizer":
        """Vocabulary of every character in ``texts`` (the ``max_chars`` most frequent, if set)."""
        counts: Counter[str] = Counter()
        for text in texts:
            counts.update(text)
        chars = sorted(counts)
        if max_chars is not None and len(chars) > max_chars:
            keep = sorted(chars, key=lambda c: (-counts[c], c))[:max_chars]
            chars = sorted(keep)
        if not chars:
            raise MlxtError("char tokenizer: the training text is empty")
        return cls(chars)

    @property
    def vocab_size(self) -> int:
        return len(SPECIAL_TOKENS) + len(self.chars)

    def encode(self, text: str) -> list[int]:
        check_encodable(text)
        if self.vocab_size >= 0xD800:  # ids would hit the surrogate range of chr()
            get, unk = self._ids.get, self.unk_id
            return [get(c, unk) for c in text]
        mapped = text.translate(self._table).encode("utf-32-le")
        return np.frombuffer(mapped, dtype=np.uint32).tolist()

    def decode(self, ids: Iterable[int]) -> str:
        offset, chars, n = len(SPECIAL_TOKENS), self.chars, len(self.chars)
        out = []
        for i in ids:
            j = int(i) - offset
            if 0 <= j < n:
                out.append(chars[j])
        return "".join(out)

    def covers(self, text: str) -> bool:
        return all(c in self._ids for c in text)

    def to_dict(self) -> dict:
        return {"type": self.type_name, "version": FORMAT_VERSION, "specials": list(SPECIAL_TOKENS),
                "chars": self.chars}

    @classmethod
    def from_dict(cls, data: dict, where: str = "tokenizer") -> "CharTokenizer":
        if data.get("version") != FORMAT_VERSION:
            raise MlxtError(f"{where}: char tokenizer version {data.get('version')!r}, expected {FORMAT_VERSION}")
        chars = data.get("chars")
        if not isinstance(chars, list) or not all(isinstance(c, str) for c in chars):
            raise MlxtError(f"{where}: char tokenizer needs a \"chars\" list of strings")
        return cls(chars)


register_tokenizer(CharTokenizer.type_name, CharTokenizer)
