"""The tokenizer interface shared by every kind, and the registry that loads them by type.

Saved tokenizers are JSON objects with a ``"type"`` field; `load_tokenizer` looks the type up
in a registry filled by `register_tokenizer`, so kinds defined elsewhere (for example the
SentencePiece tokenizer of converted Marian models) load through the same function.
"""

from __future__ import annotations

import importlib
import json
import os
from pathlib import Path
from typing import Iterable

from mlxt.errors import MlxtError

PAD_ID, BOS_ID, EOS_ID, UNK_ID = 0, 1, 2, 3
SPECIAL_TOKENS = ("<pad>", "<s>", "</s>", "<unk>")

_REGISTRY: dict[str, type["Tokenizer"]] = {}
# Kinds defined in other modules, imported on first use so loading works without importing them first.
_LAZY = {"sentencepiece": "mlxt.data.tokenizers.sentencepiece"}


def register_tokenizer(type_name: str, cls: type["Tokenizer"]) -> None:
    """Make `load_tokenizer` build ``cls.from_dict(data)`` for JSON whose ``"type"`` is ``type_name``."""
    _REGISTRY[type_name] = cls


def registered_types() -> list[str]:
    return sorted(set(_REGISTRY) | set(_LAZY))


class Tokenizer:
    """Text <-> token ids. Ids 0-3 are pad, bos, eos and unk unless a subclass says otherwise.

    ``encode`` adds no bos/eos; ``decode`` drops special ids.
    """

    type_name = ""
    pad_id = PAD_ID
    bos_id = BOS_ID
    eos_id = EOS_ID
    unk_id = UNK_ID

    @property
    def vocab_size(self) -> int:
        raise NotImplementedError

    @property
    def special_ids(self) -> frozenset[int]:
        return frozenset((self.pad_id, self.bos_id, self.eos_id, self.unk_id))

    def encode(self, text: str) -> list[int]:
        raise NotImplementedError

    def decode(self, ids: Iterable[int]) -> str:
        raise NotImplementedError

    def encode_batch(self, texts: list[str]) -> list[list[int]]:
        return [self.encode(t) for t in texts]

    def to_dict(self) -> dict:
        """JSON-able form; must contain ``"type"``."""
        raise NotImplementedError

    @classmethod
    def from_dict(cls, data: dict, where: str = "tokenizer") -> "Tokenizer":
        raise NotImplementedError

    def save(self, path: str | os.PathLike) -> None:
        """Write the tokenizer as one JSON file (atomically)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(json.dumps(self.to_dict(), ensure_ascii=False), encoding="utf-8")
        os.replace(tmp, path)

    @classmethod
    def load(cls, path: str | os.PathLike) -> "Tokenizer":
        tok = load_tokenizer(path)
        if cls is not Tokenizer and not isinstance(tok, cls):
            raise MlxtError(f"{path}: holds a {tok.type_name!r} tokenizer, expected {cls.type_name!r}")
        return tok

    def __eq__(self, other: object) -> bool:
        return type(self) is type(other) and self.to_dict() == other.to_dict()

    def __hash__(self) -> int:
        return id(self)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(vocab_size={self.vocab_size})"


def check_encodable(text: str) -> None:
    """Reject strings that are not valid Unicode text (lone surrogates) with a clear error."""
    if not isinstance(text, str):
        raise MlxtError(f"tokenizer input: expected a string, got {type(text).__name__}")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise MlxtError(
            f"tokenizer input: character {exc.object[exc.start]!r} at position {exc.start} "
            "is not valid Unicode text (lone surrogate)"
        ) from None


def load_tokenizer(path: str | os.PathLike) -> Tokenizer:
    """Read a tokenizer JSON file written by ``Tokenizer.save`` of any registered kind."""
    path = Path(path)
    if not path.is_file():
        raise MlxtError(f"{path}: tokenizer file not found")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise MlxtError(f"{path}: not a tokenizer JSON file ({exc})") from None
    if not isinstance(data, dict) or "type" not in data:
        raise MlxtError(f"{path}: tokenizer JSON has no \"type\" field")
    kind = data["type"]
    if kind not in _REGISTRY and kind in _LAZY:
        importlib.import_module(_LAZY[kind])
    if kind not in _REGISTRY:
        raise MlxtError(f"{path}: unknown tokenizer type {kind!r}; known: {', '.join(registered_types())}")
    return _REGISTRY[kind].from_dict(data, where=str(path))
