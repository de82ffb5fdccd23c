"""`RawCorpus`: a corpus as read from its files, before splitting and tokenizing.

Its own module because both the built-in corpora (`mlxt.data.corpora`) and the config-driven
reader (`mlxt.data.sources`) build one, and `sources` looks corpora up by name.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class RawCorpus:
    kind: str
    splits: dict  # split name -> pairs (seq2seq) or text (lm); "train" always present
    languages: tuple[str, str] | None = None  # (source, target) of ``splits`` as read
    description: str = ""
    notes: list[str] = field(default_factory=list)
