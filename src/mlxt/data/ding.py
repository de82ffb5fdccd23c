"""German-English example sentences from Debian's ``trans-de-en`` (the Ding dictionary).

Each line is ``German :: English``; both sides hold ``|``-separated sub-entries that align.
Most entries are headwords (``Haus {n} | Häuser {pl}``); we keep only aligned sub-entries
where both sides are whole sentences, after dropping grammar tags (``{n}``, ``[ugs.]``),
optional words in parentheses and all but the first of listed alternatives (``a; b``, ``a / b``,
``word/word``). Entries with placeholders (``jdm.``, ``sth.``) or ellipses are skipped.
"""

from __future__ import annotations

import re
from pathlib import Path

from mlxt.errors import MlxtError

from .readers import read_lines

DING_PATH = Path("/usr/share/trans/de-en")
INSTALL_HINT = "install it with `sudo apt-get install trans-de-en` (Debian/Ubuntu)"

_TAGS = re.compile(r"\s*(\[[^\]]*\]|\{[^}]*\}|\([^)]*\))")
_SENTENCE = re.compile(r"^[A-ZÄÖÜ0-9\"„‚'¿¡].*[.!?][\"“”']?$")
_START = re.compile(r"[A-ZÄÖÜ0-9\"„‚'¿¡]")
_END = re.compile(r"[.!?]")
_ALTERNATIVE_WORD = re.compile(r"(\w+)/\w+")
_SPACE_BEFORE_PUNCT = re.compile(r"\s+([.!?,])")
_SPACES = re.compile(r"\s{2,}")
_REJECT = re.compile(r"[{}\[\]();/~<>=+]|\b(jd|jdm|jdn|jds|etw|sb|sth|sb's)\.|\.\.\.|…")


def clean_entry(text: str) -> str:
    text = _TAGS.sub("", text).strip()
    text = text.split("; ")[0].strip()
    text = text.split(" / ")[0].strip()
    text = _ALTERNATIVE_WORD.sub(r"\1", text)
    text = _SPACE_BEFORE_PUNCT.sub(r"\1", text)
    return _SPACES.sub(" ", text)


def parse_ding(lines: list[str]) -> list[tuple[str, str]]:
    """(German, English) sentence pairs, deduplicated, in file order."""
    seen: dict[tuple[str, str], None] = {}
    for line in lines:
        if line.startswith("#") or " :: " not in line:
            continue
        de, en = line.split(" :: ", 1)
        de_parts, en_parts = de.split(" | "), en.split(" | ")
        if len(de_parts) != len(en_parts):
            continue
        for d, e in zip(de_parts, en_parts):
            d, e = d.strip(), e.strip()
            if not (_START.match(d) and _START.match(e) and _END.search(d) and _END.search(e)):
                continue  # cheap pre-filter: headwords start lowercase or have no sentence end
            d, e = clean_entry(d), clean_entry(e)
            if _SENTENCE.match(d) and _SENTENCE.match(e) and not _REJECT.search(d) and not _REJECT.search(e):
                seen.setdefault((d, e), None)
    return list(seen)


def read_ding(path: Path = DING_PATH) -> list[tuple[str, str]]:
    if not path.exists():
        raise MlxtError(f"{path}: the Ding dictionary is not installed; {INSTALL_HINT}")
    pairs = parse_ding(read_lines(path))
    if not pairs:
        raise MlxtError(f"{path}: no sentence pairs found (expected lines 'German :: English')")
    return pairs
