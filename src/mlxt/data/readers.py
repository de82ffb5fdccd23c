"""Readers for user text: plain text, aligned files (``.gz`` too), TSV and Tatoeba ``.zip``.

All input is UTF-8; CRLF and CR line endings become LF. Mistakes raise `MlxtError` naming the
file and line.
"""

from __future__ import annotations

import gzip
import zipfile
import zlib
from pathlib import Path

from mlxt.errors import MlxtError


def _check_file(path: Path) -> None:
    from mlxt import guard

    guard.check_path(path, "file")
    try:
        path.stat()
    except FileNotFoundError:
        raise MlxtError(f"{path}: file not found") from None
    except OSError as exc:  # a symlink loop, a path through a file, no permission
        raise MlxtError(f"{path}: cannot read the file ({exc.strerror or exc})") from None
    if path.is_dir():
        raise MlxtError(f"{path}: is a directory, expected a text file")


def decode_text(data: bytes, where: str) -> str:
    """UTF-8 bytes -> text with LF line endings; invalid UTF-8 names the line it is on."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise MlxtError(f"{where}:{line}: invalid UTF-8 (byte 0x{data[exc.start]:02x} at offset {exc.start})") from None
    if text.startswith("\ufeff"):
        text = text[1:]
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    return text


def read_bytes(path: str | Path) -> bytes:
    """Raw bytes of a file, transparently gunzipped when it ends in ``.gz``."""
    path = Path(path)
    _check_file(path)
    if path.suffix == ".gz":
        try:
            with gzip.open(path, "rb") as f:
                return f.read()
        except (OSError, EOFError, zlib.error) as exc:  # truncated, or damaged in the middle
            raise MlxtError(f"{path}: not a readable gzip file ({exc or type(exc).__name__})") from None
    try:
        return path.read_bytes()
    except OSError as exc:
        raise MlxtError(f"{path}: cannot read the file ({exc.strerror or exc})") from None


def read_text(path: str | Path) -> str:
    """A whole plain-text file (language modelling)."""
    text = decode_text(read_bytes(path), str(path))
    if not text.strip():
        raise MlxtError(f"{path}: file is empty")
    return text


def split_lines(text: str) -> list[str]:
    """Lines of user input split at ``"\n"`` only, a ``"\r"`` before it (CRLF) removed, without the
    empty string after a final newline. Unlike `str.splitlines`, U+2028, form feeds, vertical tabs
    and the other Unicode line breaks stay inside their line, so line ``i`` of the input is always
    line ``i`` of the output."""
    lines = text.split("\n")
    if lines[-1] == "":
        lines.pop()
    return [line[:-1] if line.endswith("\r") else line for line in lines]


def read_input_lines(path: str | Path, flag: str = "--input") -> list[str]:
    """One sentence per line of a user's input file (``.gz`` too); may be empty."""
    from mlxt import guard

    path = guard.check_input_file(path, flag)
    data = read_bytes(path)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise MlxtError(f"{path}:{line}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    return split_lines(text[1:] if text.startswith("\ufeff") else text)


def read_lines(path: str | Path) -> list[str]:
    """Lines of a text file without line endings; an empty file is an error."""
    text = read_text(path)
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return lines


def read_aligned(src_path: str | Path, tgt_path: str | Path) -> list[tuple[str, str]]:
    """Two files with one sentence per line, line i of one translating line i of the other."""
    src, tgt = read_lines(src_path), read_lines(tgt_path)
    if len(src) != len(tgt):
        shorter = src_path if len(src) < len(tgt) else tgt_path
        raise MlxtError(f"{shorter}:{min(len(src), len(tgt)) + 1}: aligned files differ in length "
                        f"({src_path} has {len(src)} lines, {tgt_path} has {len(tgt)})")
    return list(zip(src, tgt))


def parse_tsv(lines: list[str], where: str) -> list[tuple[str, str]]:
    """``src<TAB>tgt[<TAB>ignored...]`` lines; blank lines are skipped."""
    pairs = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        parts = line.split("\t")
        if len(parts) < 2:
            raise MlxtError(f"{where}:{number}: expected source<TAB>target, found no tab")
        pairs.append((parts[0], parts[1]))
    if not pairs:
        raise MlxtError(f"{where}: file is empty")
    return pairs


def read_tsv(path: str | Path) -> list[tuple[str, str]]:
    return parse_tsv(read_lines(path), str(path))


def read_tatoeba_zip(path: str | Path, member: str | None = None) -> list[tuple[str, str]]:
    """The manythings.org archive: member ``xxx.txt`` with ``English<TAB>Other<TAB>attribution``.

    Without ``member`` the one ``.txt`` member other than ``_about.txt`` is used.
    """
    path = Path(path)
    _check_file(path)
    try:
        with zipfile.ZipFile(path) as z:
            names = [n for n in z.namelist() if n.endswith(".txt") and not Path(n).name.startswith("_")]
            if member is None:
                if len(names) != 1:
                    raise MlxtError(f"{path}: expected one sentence file in the archive, found {names or 'none'}")
                member = names[0]
            elif member not in z.namelist():
                raise MlxtError(f"{path}: archive has no member {member!r}; members: {', '.join(names)}")
            data = z.read(member)
    except zipfile.BadZipFile as exc:
        raise MlxtError(f"{path}: not a zip archive or damaged ({exc})") from None
    except (OSError, EOFError, zlib.error, NotImplementedError) as exc:  # damaged in the middle
        raise MlxtError(f"{path}: damaged zip archive ({exc or type(exc).__name__})") from None
    where = f"{path}:{member}"
    lines = decode_text(data, where).split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return parse_tsv(lines, where)
