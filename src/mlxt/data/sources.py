"""From a `DataConfig` to raw text: which files hold the corpus, and their parsed splits.

`source_files` only locates (and for built-in corpora, fetches) the files, so the prepared
cache can be checked from their sizes and times before anything is parsed; `read_source`
parses them into splits: seq2seq ``{split: [(src, tgt), ...]}``, lm ``{split: text}``.
"""

from __future__ import annotations

from pathlib import Path

from mlxt.errors import MlxtError

from . import readers
from .config import DataConfig
from .corpora import get_corpus
from .raw import RawCorpus

__all__ = ["RawCorpus", "read_source", "source_files"]


def _fmt(config: DataConfig, path: str, kind: str) -> str:
    if config.format != "auto":
        return config.format
    if config.src_path:
        return "aligned"
    if path.endswith(".zip"):
        return "tatoeba"
    if path.endswith((".tsv", ".tsv.gz")):
        return "tsv"
    return "text" if kind == "lm" else "tsv"


def _user_paths(config: DataConfig) -> dict[str, list[str]]:
    """split -> the files of that split, as configured."""
    if config.src_path:
        out = {"train": [config.src_path, config.tgt_path]}
        for split in ("valid", "test"):
            s, t = getattr(config, f"{split}_src_path"), getattr(config, f"{split}_tgt_path")
            if bool(s) != bool(t):
                raise MlxtError(f"[data] {split}_src_path and {split}_tgt_path: give both or neither")
            if s:
                out[split] = [s, t]
        return out
    if not config.path:
        raise MlxtError("[data]: no data given; set corpus = NAME (see `mlxt data list`) or path / src_path + tgt_path")
    out = {"train": [config.path]}
    for split in ("valid", "test"):
        if getattr(config, f"{split}_path"):
            out[split] = [getattr(config, f"{split}_path")]
    return out


def source_files(config: DataConfig, kind: str) -> list[Path]:
    """Every file the corpus is read from (fetched first for downloadable built-ins)."""
    if config.corpus:
        corpus = get_corpus(config.corpus)
        corpus.check_kind(kind)
        return corpus.files(config)
    return [Path(p) for paths in _user_paths(config).values() for p in paths]


def _read_user_split(config: DataConfig, paths: list[str], kind: str):
    fmt = _fmt(config, paths[0], kind)
    if kind == "lm":
        if fmt != "text":
            raise MlxtError(f"[data] format = {fmt!r}: language modelling reads plain text (format = \"text\")")
        return readers.read_text(paths[0])
    if fmt == "aligned":
        if len(paths) != 2:
            raise MlxtError("[data] format = \"aligned\": needs src_path and tgt_path")
        return readers.read_aligned(*paths)
    if fmt == "tsv":
        return readers.read_tsv(paths[0])
    if fmt == "tatoeba":
        return readers.read_tatoeba_zip(paths[0])
    raise MlxtError(f"[data] format = {fmt!r}: seq2seq reads aligned files, tsv or tatoeba zip")


def read_source(config: DataConfig, kind: str) -> RawCorpus:
    if config.corpus:
        corpus = get_corpus(config.corpus)
        corpus.check_kind(kind)
        raw = corpus.read(config)
    else:
        splits = {split: _read_user_split(config, paths, kind) for split, paths in _user_paths(config).items()}
        raw = RawCorpus(kind, splits)
    if kind == "seq2seq":
        raw = _orient(raw, config)
    return raw


def _orient(raw: RawCorpus, config: DataConfig) -> RawCorpus:
    """Swap source and target when ``src_lang``/``tgt_lang`` ask for the reverse direction."""
    want = (config.src_lang, config.tgt_lang)
    if not any(want) or raw.languages is None:
        return raw
    have = raw.languages
    if (want[0] or have[0], want[1] or have[1]) == have:
        return raw
    if (want[0] or have[1], want[1] or have[0]) == (have[1], have[0]):
        splits = {k: [(t, s) for s, t in v] for k, v in raw.splits.items()}
        return RawCorpus(raw.kind, splits, (have[1], have[0]), raw.description, raw.notes)
    raise MlxtError(f"[data] src_lang/tgt_lang = {want[0]!r}/{want[1]!r}: corpus {config.corpus!r} "
                    f"has languages {have[0]!r} and {have[1]!r}")
