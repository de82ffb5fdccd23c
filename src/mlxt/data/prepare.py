"""`prepare_data`: from a `DataConfig` to tokenizers, texts and resumable batch iterators.

Steps: locate the source files -> reuse the prepared cache if the files and settings are
unchanged -> otherwise read, split, train the tokenizer(s) on the training split, tokenize
every split, drop or truncate over-long examples, and store the result in the cache.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from safetensors.numpy import load_file, save_file

from mlxt.errors import MlxtError, warn

from . import cache
from .batching import BatchIterator, LMBatches, Seq2SeqBatches, TokenizedPairs
from .buckets import bucket_sizes
from .config import DataConfig
from .sources import read_source, source_files
from .splits import dedup_pairs, split_pairs, split_text
from .tokenizers import SPECIAL_TOKENS, BPETokenizer, CharTokenizer, Tokenizer, load_tokenizer

KINDS = ("seq2seq", "lm")
# Settings that change the prepared arrays (batch settings do not).
_PREPARE_KEYS = ("corpus", "format", "src_lang", "tgt_lang", "tokenizer", "vocab_size", "joint_vocab",
                 "lowercase", "valid_size", "test_size", "seed", "dedup", "max_len", "overlong")


def _train_tokenizer(config: DataConfig, texts: list[str]) -> Tokenizer:
    if config.tokenizer == "char":
        if config.vocab_size <= 4:
            raise MlxtError(f"[data] vocab_size = {config.vocab_size}: too small, the 4 special tokens need ids 0-3")
        return CharTokenizer.train(texts, max_chars=config.vocab_size - 4)
    return BPETokenizer.train(texts, vocab_size=config.vocab_size)


def _pack(arrays: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    lengths = np.fromiter((len(a) for a in arrays), dtype=np.int64, count=len(arrays))
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    ids = np.concatenate(arrays).astype(np.int32) if arrays else np.zeros(0, np.int32)
    return ids, offsets


def _unpack(ids: np.ndarray, offsets: np.ndarray) -> list[np.ndarray]:
    return [ids[offsets[i]:offsets[i + 1]] for i in range(len(offsets) - 1)]


@dataclass
class PreparedData:
    """A tokenized corpus ready for batching.

    tokenizers: seq2seq ``{"src", "tgt"}`` (one object when the vocabulary is joint); lm ``{"text"}``.
    texts: seq2seq ``{split: [(src, tgt), ...]}``; lm ``{split: text}``, aligned with the arrays.
    """

    kind: str
    config: DataConfig
    tokenizers: dict[str, Tokenizer]
    texts: dict
    arrays: dict = field(repr=False)  # seq2seq: split -> TokenizedPairs; lm: split -> int32 tokens
    stats: dict = field(default_factory=dict)
    cache_path: Path | None = None
    from_cache: bool = False

    @property
    def splits(self) -> list[str]:
        return [s for s in ("train", "valid", "test") if s in self.arrays]

    def batches(self, split: str = "train", seed: int | None = None, shuffle: bool | None = None,
                rank: int = 0, world_size: int = 1) -> BatchIterator:
        """Batches of ``split``; ``shuffle`` defaults to True for train (endless epochs) and
        False otherwise (one pass); ``seed`` defaults to the config's."""
        if split not in self.arrays:
            raise MlxtError(f"split {split!r}: this corpus has {', '.join(self.splits)}")
        seed = self.config.seed if seed is None else seed
        shuffle = (split == "train") if shuffle is None else shuffle
        c = self.config
        if self.kind == "seq2seq":
            sizes = bucket_sizes(c.max_len, c.buckets, c.bucket_multiple)
            return Seq2SeqBatches(self.arrays[split], c.max_tokens, sizes, seed, shuffle, rank, world_size,
                                  joint_buckets=c.joint_buckets)
        return LMBatches(self.arrays[split], c.batch_size, c.block_size, c.lm_sampling, seed, shuffle,
                         rank, world_size)

    def save_tokenizers(self, directory: str | os.PathLike) -> None:
        save_tokenizers(self.tokenizers, directory)


def save_tokenizers(tokenizers: dict[str, Tokenizer], directory: str | os.PathLike) -> None:
    """Write ``shared.json`` (joint), ``src.json`` + ``tgt.json``, or ``tokenizer.json`` (lm)."""
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    if "text" in tokenizers:
        tokenizers["text"].save(d / "tokenizer.json")
    elif tokenizers["src"] is tokenizers["tgt"]:
        tokenizers["src"].save(d / "shared.json")
    else:
        tokenizers["src"].save(d / "src.json")
        tokenizers["tgt"].save(d / "tgt.json")


def load_tokenizers(directory: str | os.PathLike) -> dict[str, Tokenizer]:
    """Read back what `save_tokenizers` wrote (the same dict shape)."""
    d = Path(directory)
    if (d / "tokenizer.json").is_file():
        return {"text": load_tokenizer(d / "tokenizer.json")}
    if (d / "shared.json").is_file():
        tok = load_tokenizer(d / "shared.json")
        return {"src": tok, "tgt": tok}
    if (d / "src.json").is_file() and (d / "tgt.json").is_file():
        return {"src": load_tokenizer(d / "src.json"), "tgt": load_tokenizer(d / "tgt.json")}
    raise MlxtError(f"{d}: no tokenizer found (expected tokenizer.json, shared.json, or src.json + tgt.json)")


# -- building ------------------------------------------------------------------------------

def _fit_pairs(src: list[list[int]], tgt: list[list[int]], pairs: list, config: DataConfig):
    """Apply ``max_len`` (counting eos / bos): truncate or reject. Returns kept arrays and texts."""
    limit = config.max_len - 1
    out_s, out_t, out_p, dropped, cut = [], [], [], 0, 0
    for s, t, p in zip(src, tgt, pairs):
        if len(s) > limit or len(t) > limit:
            if config.overlong == "reject":
                dropped += 1
                continue
            s, t, cut = s[:limit], t[:limit], cut + 1
        out_s.append(np.asarray(s, dtype=np.int32))
        out_t.append(np.asarray(t, dtype=np.int32))
        out_p.append(p)
    return TokenizedPairs(out_s, out_t), out_p, dropped, cut


def _build_seq2seq(config: DataConfig, splits: dict) -> tuple[dict, dict, dict, dict]:
    if config.dedup:
        splits = {k: dedup_pairs(v) for k, v in splits.items()}
    if "valid" not in splits or "test" not in splits:
        cut = split_pairs(splits["train"], config.valid_size, config.test_size, config.seed,
                          need_valid="valid" not in splits, need_test="test" not in splits)
        splits = {**splits, **cut}
    train = splits["train"]
    if config.joint_vocab:
        tok = _train_tokenizer(config, [s for s, _ in train] + [t for _, t in train])
        toks = {"src": tok, "tgt": tok}
    else:
        toks = {"src": _train_tokenizer(config, [s for s, _ in train]),
                "tgt": _train_tokenizer(config, [t for _, t in train])}
    arrays, texts, stats = {}, {}, {}
    for name in ("train", "valid", "test"):
        pairs = splits[name]
        src = toks["src"].encode_batch([s for s, _ in pairs])
        tgt = toks["tgt"].encode_batch([t for _, t in pairs])
        arrays[name], texts[name], dropped, cut = _fit_pairs(src, tgt, pairs, config)
        if name == "train" and not texts[name]:
            raise MlxtError(f"[data] max_len = {config.max_len}: every training sentence is longer "
                            "(with eos/bos); raise max_len or use overlong = \"truncate\"")
        if name == "train" and not any(len(t) for t in arrays[name].tgt):
            raise MlxtError(f"{_where(config)}: every training target is empty after tokenizing; "
                            "nothing to learn from")
        stats[name] = {"examples": len(texts[name]), "dropped_overlong": dropped, "truncated": cut,
                       "src_tokens": int(sum(len(a) for a in arrays[name].src)),
                       "tgt_tokens": int(sum(len(a) for a in arrays[name].tgt))}
    return toks, texts, arrays, stats


def _where(config: DataConfig) -> str:
    return config.path or config.src_path or config.corpus or "[data]"


def _warn_tiny_vocabulary(toks: dict, config: DataConfig) -> None:
    """A vocabulary of one real token: the model can only learn to repeat it."""
    specials = len(SPECIAL_TOKENS)
    sides = [("shared", toks["src"])] if toks.get("src") is toks.get("tgt") is not None else list(toks.items())
    for side, tok in sides:
        if tok.vocab_size - specials <= 1:
            warn(f"{_where(config)}: the {side} vocabulary has {tok.vocab_size - specials} token besides the "
                 f"{specials} special ones; the model can only learn to repeat it")


def _build_lm(config: DataConfig, splits: dict) -> tuple[dict, dict, dict, dict]:
    if "valid" not in splits or ("test" not in splits and config.test_size > 0):
        cut = split_text(splits["train"], 0.0 if "valid" in splits else config.valid_size,
                         0.0 if "test" in splits else config.test_size)
        splits = {**cut, **{k: v for k, v in splits.items() if k != "train"}}
    tok = _train_tokenizer(config, [splits["train"]])
    arrays, stats = {}, {}
    for name, text in splits.items():
        arrays[name] = np.asarray(tok.encode(text), dtype=np.int32)
        stats[name] = {"characters": len(text), "tokens": int(len(arrays[name]))}
    return {"text": tok}, dict(splits), arrays, stats


def _settings(config: DataConfig, kind: str) -> dict:
    settings = {"kind": kind, **{k: getattr(config, k) for k in _PREPARE_KEYS}}
    if config.corpus:
        from .corpora import get_corpus

        settings["corpus_version"] = get_corpus(config.corpus).version
    return settings


def _write_cache(path: Path, prepared: PreparedData, settings: dict, replace: bool) -> None:
    tmp = cache.new_temp_dir(path.parent)
    save_tokenizers(prepared.tokenizers, tmp / "tokenizer")
    tensors = {}
    for split, arr in prepared.arrays.items():
        if prepared.kind == "seq2seq":
            for side in ("src", "tgt"):
                ids, offsets = _pack(getattr(arr, side))
                tensors[f"{split}.{side}.ids"], tensors[f"{split}.{side}.offsets"] = ids, offsets
        else:
            tensors[f"{split}.tokens"] = arr
    save_file(tensors, str(tmp / "arrays.safetensors"))
    texts = prepared.texts
    if prepared.kind == "seq2seq":
        texts = {k: [list(p) for p in v] for k, v in texts.items()}
    (tmp / "texts.json").write_text(json.dumps(texts, ensure_ascii=False), encoding="utf-8")
    meta = {"format_version": cache.FORMAT_VERSION, "kind": prepared.kind, "settings": settings,
            "stats": prepared.stats}
    (tmp / "meta.json").write_text(json.dumps(meta, indent=1, ensure_ascii=False), encoding="utf-8")
    cache.publish_dir(tmp, path, replace=replace)


def _read_cache(path: Path, config: DataConfig, kind: str, settings: dict) -> PreparedData | None:
    """The cached entry, or ``None`` when it cannot be trusted: unreadable, partial, damaged, of
    another kind, made with other settings (a copied or colliding entry), or holding ids outside
    its tokenizer's vocabulary. The caller then prepares the corpus again."""
    try:
        meta = json.loads((path / "meta.json").read_text(encoding="utf-8"))
        if meta.get("format_version") != cache.FORMAT_VERSION or meta.get("kind") != kind:
            return None
        if meta.get("settings") != json.loads(json.dumps(settings)):
            return None
        toks = load_tokenizers(path / "tokenizer")
        tensors = load_file(str(path / "arrays.safetensors"))
        texts = json.loads((path / "texts.json").read_text(encoding="utf-8"))
        if not isinstance(texts, dict) or set(texts) != {"train", "valid", "test"} & set(texts) or "train" not in texts:
            return None
        arrays = {}
        for split in texts:
            if kind == "seq2seq":
                arrays[split] = TokenizedPairs(*(_unpack(tensors[f"{split}.{side}.ids"],
                                                         tensors[f"{split}.{side}.offsets"]) for side in ("src", "tgt")))
                texts[split] = [tuple(p) for p in texts[split]]
                if len(texts[split]) != len(arrays[split].src) or any(len(p) != 2 for p in texts[split]):
                    return None
                sides = (("src", arrays[split].src), ("tgt", arrays[split].tgt))
            else:
                arrays[split] = tensors[f"{split}.tokens"]
                if not isinstance(texts[split], str):
                    return None
                sides = (("text", [arrays[split]]),)
            for side, rows in sides:
                size = toks[side].vocab_size
                if any(len(r) and (int(r.min()) < 0 or int(r.max()) >= size) for r in rows):
                    return None
    except Exception:  # noqa: BLE001 (any damage, whatever its error type, means: prepare again)
        return None
    return PreparedData(kind, config, toks, texts, arrays, meta.get("stats", {}), path, True)


def prepare_data(config: DataConfig, kind: str, cache_dir: str | os.PathLike | None = None,
                 use_cache: bool = True) -> PreparedData:
    """Read, split, tokenize and cache the corpus described by ``config`` for ``kind``
    (``"seq2seq"`` or ``"lm"``); reuse the cached result when files and settings are unchanged."""
    if kind not in KINDS:
        raise MlxtError(f"data kind {kind!r}: expected one of {', '.join(KINDS)}")
    if kind == "seq2seq" and config.max_len < 2:
        raise MlxtError(f"[data] max_len = {config.max_len}: leaves no room for a token (eos/bos take one); "
                        "expected at least 2")
    files = source_files(config, kind)
    settings = _settings(config, kind)
    root = Path(cache_dir) if cache_dir is not None else cache.cache_root() / "prepared"
    path = root / cache.prepared_key(cache.file_stats(files), settings)
    damaged = False
    if use_cache and path.is_dir():
        hit = _read_cache(path, config, kind, settings)
        if hit is not None:
            _warn_tiny_vocabulary(hit.tokenizers, config)
            return hit
        damaged = True  # unreadable: prepare again and put the new entry in its place
    raw = read_source(config, kind)
    splits = raw.splits
    if config.lowercase:
        splits = {k: (v.lower() if isinstance(v, str) else [(s.lower(), t.lower()) for s, t in v])
                  for k, v in splits.items()}
    build = _build_seq2seq if kind == "seq2seq" else _build_lm
    toks, texts, arrays, stats = build(config, splits)
    prepared = PreparedData(kind, config, toks, texts, arrays, stats, path if use_cache else None, False)
    if use_cache:
        _write_cache(path, prepared, settings, replace=damaged)
    _warn_tiny_vocabulary(toks, config)
    return prepared
