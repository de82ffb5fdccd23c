"""SentencePiece tokenizer with a separate piece -> id vocabulary, as Marian (opus-mt) models use.

A Marian model ships ``source.spm`` / ``target.spm`` (SentencePiece models that split text into
pieces) and ``vocab.json`` (piece -> model id; ``target_vocab.json`` when source and target have
separate vocabularies). The SentencePiece models' own ids are not the model's ids: text is split
into pieces by SentencePiece, and each piece is looked up in the vocabulary (unknown pieces get
the ``<unk>`` id). This reproduces Hugging Face's ``MarianTokenizer``:

- ``encode``: a leading language code such as ``>>fra<<`` is kept as one token, the rest is split
  by SentencePiece; no eos is added (the decoding convention appends it);
- ``decode``: special ids (pad, eos, unk) are dropped, ids become pieces through the inverse
  vocabulary and the pieces are detokenized by SentencePiece.

Saved as one self-contained JSON file (``"type": "sentencepiece"``): the SentencePiece models
are embedded byte for byte (base64) beside the vocabulary, so a run directory needs no other
tokenizer files. Needs the ``sentencepiece`` package (``pip install mlxt[marian]``).
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Iterable

from mlxt.data.tokenizers.base import Tokenizer, check_encodable, register_tokenizer
from mlxt.errors import MlxtError

UNK, EOS, PAD = "<unk>", "</s>", "<pad>"
SPIECE_UNDERLINE = "\u2581"


def _processor(proto: bytes, where: str):
    try:
        import sentencepiece
    except ImportError:
        raise MlxtError(f"{where}: needs the 'sentencepiece' package (pip install 'mlxt[marian]')") from None
    try:
        return sentencepiece.SentencePieceProcessor(model_proto=proto)
    except (RuntimeError, OSError, TypeError) as exc:
        raise MlxtError(f"{where}: not a valid SentencePiece model ({exc})") from None


def split_language_code(text: str) -> tuple[list[str], str]:
    """``">>fra<< Bonjour"`` -> ``([">>fra<<"], " Bonjour")``; text without a code is unchanged."""
    if text.startswith(">>"):
        end = text.find("<<")
        if end != -1:
            return [text[: end + 2]], text[end + 2 :]
    return [], text


def read_vocab(path: str | Path) -> dict[str, int]:
    """A Marian ``vocab.json``: a JSON object mapping each piece to its id."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise MlxtError(f"{path}: cannot read vocabulary ({exc.strerror})") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise MlxtError(f"{path}: not a JSON vocabulary ({exc})") from None
    if not isinstance(data, dict) or not all(
        isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in data.values()
    ):
        raise MlxtError(f"{path}: expected a JSON object mapping pieces to ids >= 0")
    return data


class SentencePieceTokenizer(Tokenizer):
    """Text -> SentencePiece pieces -> ids through ``vocab``; ids -> pieces -> detokenized text.

    ``model``: serialized SentencePiece model used to split text (Marian's ``source.spm`` for the
    source side, ``target.spm`` for the target side). ``detokenizer``: serialized model used to
    join pieces back into text (defaults to ``model``; Hugging Face joins with the source model
    when source and target share one vocabulary, and so does the converter).
    ``bos_id``: Marian has no bos token; the decoder start token (``<pad>``) plays its role.
    """

    type_name = "sentencepiece"

    def __init__(self, model: bytes, vocab: dict[str, int], detokenizer: bytes | None = None,
                 bos_id: int | None = None, where: str = "sentencepiece tokenizer"):
        for token in (UNK, EOS, PAD):
            if token not in vocab:
                raise MlxtError(f"{where}: the vocabulary has no {token!r} token")
        self.model_proto = bytes(model)
        self.detokenizer_proto = bytes(detokenizer) if detokenizer is not None else self.model_proto
        self.vocab = dict(vocab)
        self.pieces = {i: p for p, i in self.vocab.items()}
        self.unk_id = self.vocab[UNK]
        self.eos_id = self.vocab[EOS]
        self.pad_id = self.vocab[PAD]
        self.bos_id = self.pad_id if bos_id is None else bos_id
        self._sp = _processor(self.model_proto, where)
        self._detok = (
            self._sp if self.detokenizer_proto == self.model_proto else _processor(self.detokenizer_proto, where)
        )
        self._size = max(self.vocab.values()) + 1

    @classmethod
    def from_files(cls, model: str | Path, vocab: str | Path, detokenizer: str | Path | None = None,
                   bos_id: int | None = None) -> "SentencePieceTokenizer":
        """From Marian's files: a ``.spm`` model, a ``vocab.json`` and optionally a second ``.spm``."""
        def read_bytes(path) -> bytes:
            try:
                return Path(path).read_bytes()
            except OSError as exc:
                raise MlxtError(f"{path}: cannot read SentencePiece model ({exc.strerror})") from None

        return cls(
            read_bytes(model), read_vocab(vocab),
            read_bytes(detokenizer) if detokenizer is not None else None, bos_id, where=str(model),
        )

    # -- the Tokenizer interface --------------------------------------------------------------
    @property
    def vocab_size(self) -> int:
        return self._size

    def encode(self, text: str) -> list[int]:
        check_encodable(text)
        code, rest = split_language_code(text)
        pieces = code + self._sp.encode(rest, out_type=str)
        return [self.vocab.get(p, self.unk_id) for p in pieces]

    def tokenize(self, text: str) -> list[str]:
        """The pieces ``encode`` looks up (for inspection)."""
        code, rest = split_language_code(text)
        return code + self._sp.encode(rest, out_type=str)

    def decode(self, ids: Iterable[int]) -> str:
        special = self.special_ids
        pieces = [self.pieces[i] for i in map(int, ids) if i not in special and i in self.pieces]
        return self._detok.decode_pieces(pieces).replace(SPIECE_UNDERLINE, " ").strip()

    def to_dict(self) -> dict:
        return {
            "type": self.type_name,
            "model": base64.b64encode(self.model_proto).decode("ascii"),
            "detokenizer": (
                None if self.detokenizer_proto == self.model_proto
                else base64.b64encode(self.detokenizer_proto).decode("ascii")
            ),
            "vocab": self.vocab,
            "bos_id": self.bos_id,
        }

    @classmethod
    def from_dict(cls, data: dict, where: str = "tokenizer") -> "SentencePieceTokenizer":
        try:
            model = base64.b64decode(data["model"], validate=True)
            detok = data.get("detokenizer")
            detok = base64.b64decode(detok, validate=True) if detok else None
            vocab = data["vocab"]
            bos_id = data.get("bos_id")
        except KeyError as exc:
            raise MlxtError(f"{where}: sentencepiece tokenizer has no {exc.args[0]!r} field") from None
        except (ValueError, TypeError) as exc:
            raise MlxtError(f"{where}: sentencepiece model is not valid base64 ({exc})") from None
        if not isinstance(vocab, dict) or not all(
            isinstance(k, str) and isinstance(v, int) and not isinstance(v, bool) and v >= 0 for k, v in vocab.items()
        ):
            raise MlxtError(f"{where}: 'vocab' must map pieces to ids >= 0")
        if bos_id is not None and (not isinstance(bos_id, int) or isinstance(bos_id, bool)):
            raise MlxtError(f"{where}: 'bos_id' must be an integer, got {bos_id!r}")
        return cls(model, vocab, detok, bos_id, where=where)


register_tokenizer(SentencePieceTokenizer.type_name, SentencePieceTokenizer)
