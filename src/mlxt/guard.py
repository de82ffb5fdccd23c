"""Guards for every path a command reads or writes, so that no command loses a user's files.

- `check_path` refuses what cannot be a path at all (an empty string, a NUL byte).
- `check_replaceable_dir` decides whether a directory may be emptied or written over: only when it
  is absent, empty (or holds only a lock file left by a failed start), or an mlxt run directory
  holding nothing but what mlxt writes there. Anything else (a folder with the user's config,
  corpus or own files) is refused, naming an entry that is not mlxt's.
- `check_output_file` refuses an output file that is a directory, that is the same file as an
  input (compared by inode, so symlinks and hard links count), or that is one of a run's own files.
- `atomic_output` writes an output to a temporary file beside it and renames it into place only
  when the command finished, so a failure never leaves a truncated file, and an output that was
  an input cannot be emptied before it is read.
"""

from __future__ import annotations

import contextlib
import fnmatch
import os
import tempfile
from pathlib import Path

from mlxt.errors import MlxtError

# What `mlxt train`, `mlxt evaluate`, `mlxt plot` and `mlxt average` write into a run directory.
RUN_FILES = ("config.toml", "tokenizer", "checkpoints", "metrics.jsonl", "curves.png", ".lock")
RUN_PATTERNS = ("eval-*.json", "metrics.jsonl.tmp", ".tmp-*")
# The entries of a run that decoding and evaluation read (an output must never be one of them).
RUN_INPUTS = ("config.toml", "tokenizer", "checkpoints", "metrics.jsonl", ".lock")
IMAGE_SUFFIXES = (".png", ".pdf", ".svg", ".jpg", ".jpeg")


def check_path(path, flag: str) -> Path:
    """``path`` as a `Path`, refusing an empty string or a NUL byte (which no file name holds)."""
    text = os.fspath(path)
    if isinstance(text, bytes):
        text = os.fsdecode(text)
    if text == "":
        raise MlxtError(f"{flag}: expected a path, got an empty string")
    if "\x00" in text:
        raise MlxtError(f"{flag} {text!r}: a path cannot contain a NUL character")
    return Path(text)


def _entries(directory: Path) -> list[str]:
    try:
        return sorted(p.name for p in directory.iterdir())
    except OSError as exc:
        raise MlxtError(f"{directory}: cannot list the directory ({exc.strerror or exc})") from None


def is_empty_dir(directory: Path) -> bool:
    """Absent, empty, or holding only the lock file of a run that failed before writing anything."""
    if not directory.exists():
        return True
    return directory.is_dir() and all(name == ".lock" for name in _entries(directory))


def foreign_entries(directory: Path) -> list[str]:
    """Entries of ``directory`` that mlxt does not write into a run directory."""
    return [name for name in _entries(directory)
            if name not in RUN_FILES and not any(fnmatch.fnmatchcase(name, p) for p in RUN_PATTERNS)]


def is_run_dir(directory: Path) -> bool:
    """An mlxt run: ``config.toml`` with ``checkpoints/`` or ``tokenizer/`` and nothing else of the user's."""
    directory = Path(directory)
    if not directory.is_dir() or directory.is_symlink():
        return False
    if not (directory / "config.toml").is_file():
        return False
    if not ((directory / "checkpoints").is_dir() or (directory / "tokenizer").is_dir()):
        return False
    return not foreign_entries(directory)


def check_replaceable_dir(directory: Path, flag: str, inputs: tuple = ()) -> None:
    """Refuse to empty or write over ``directory`` unless it is empty or an mlxt run, and never
    when it holds (or is) one of ``inputs``."""
    directory = Path(directory)
    if directory.exists() and not directory.is_dir():
        raise MlxtError(f"{directory}: {flag} expects a directory, but this is a file; choose another path")
    for item in inputs:
        if item is not None and _inside(Path(item), directory):
            raise MlxtError(f"{flag} {directory}: holds the input {item}; choose another directory")
    if is_empty_dir(directory):
        return
    if not is_run_dir(directory):
        foreign = foreign_entries(directory) if directory.is_dir() else []
        what = f" (it holds {foreign[0]!r}" + (f" and {len(foreign) - 1} more" if len(foreign) > 1 else "") + ")"
        raise MlxtError(f"{directory}: not an mlxt run directory{what if foreign else ''}; {flag} only "
                        "replaces a run directory or fills an empty one; choose a new directory")


def check_new_run_dir(directory, flag: str) -> Path:
    """A directory to write a new run into (`mlxt average -o`, `mlxt convert`): absent or empty.
    A folder of the user's is refused naming what it holds; an existing run is never written over."""
    directory = check_path(directory, flag)
    if directory.exists() and not is_empty_dir(directory):
        if not is_run_dir(directory):
            check_replaceable_dir(directory, flag)
        raise MlxtError(f"{directory}: {flag} already holds a run; choose a new or empty directory")
    return directory


def check_not_in_run(path, flag: str) -> Path:
    """Refuse a path inside (or equal to) an mlxt run directory: writing there would replace the
    run's own files (its tokenizer, for one)."""
    path = check_path(path, flag)
    try:
        resolved = path.resolve()
    except (OSError, RuntimeError) as exc:
        raise MlxtError(f"{path}: {flag} cannot be resolved ({getattr(exc, 'strerror', None) or exc})") from None
    for parent in (resolved, *resolved.parents):
        if is_run_dir(parent):
            raise MlxtError(f"{flag} {path}: is part of the run directory {parent}; choose another path")
    return path


def _inside(path: Path, directory: Path) -> bool:
    try:
        path, directory = path.resolve(), directory.resolve()
    except (OSError, RuntimeError):  # a symlink loop: cannot be inside anything real
        return False
    return path == directory or directory in path.parents


def same_file(a: Path, b: Path) -> bool:
    """Whether ``a`` and ``b`` name one file (same device and inode: symlinks and hard links too)."""
    try:
        return os.path.samefile(a, b)
    except (OSError, ValueError):
        return False


def check_output_file(path, flag: str, inputs: tuple = (), runs: tuple = (), what: str = "the output",
                      parents: bool = False, suffixes: tuple = ()) -> Path:
    """An output file path that may be written: not a directory, not one of ``inputs``, and not
    a file that the run directories ``runs`` are made of; its folder must exist unless ``parents``
    (the caller creates it); with ``suffixes``, its name must end in one of them (matplotlib would
    otherwise write ``NAME.png`` instead of the file named)."""
    path = check_path(path, flag)
    if suffixes and path.suffix.lower() not in suffixes:
        raise MlxtError(f"{flag} {path}: expected a file name ending in {', '.join(suffixes)}")
    if path.is_dir():
        raise MlxtError(f"{path}: {flag} is a directory, expected a file path")
    for item in inputs:
        if item is not None and str(item) != "-" and same_file(path, Path(item)):
            raise MlxtError(f"{flag} {path}: is the same file as the input {item}; "
                            "write to another file (the input would be lost)")
    for run in runs:
        run = Path(run)
        for name in RUN_INPUTS:
            if _inside(path, run / name):
                raise MlxtError(f"{flag} {path}: is part of the run directory {run}; choose another path")
    parent = path.parent
    if not parent.is_dir() and not (parents and not parent.exists()):
        reason = "No such file or directory" if not parent.exists() else "Not a directory"
        raise MlxtError(f"{path}: cannot write {what} ({reason})")
    return path


@contextlib.contextmanager
def atomic_output(path: Path, what: str, mode: str = "w"):
    """A file object on a temporary file beside ``path``, renamed onto ``path`` when the block ends
    without an exception and deleted otherwise (``what`` names the output in error messages)."""
    path = Path(path)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:
        raise MlxtError(f"{path}: cannot write {what} ({exc.strerror or exc})") from None
    f = os.fdopen(fd, mode, encoding=None if "b" in mode else "utf-8")
    try:
        yield f
    except BaseException:
        with contextlib.suppress(OSError):
            f.close()
            os.unlink(tmp)
        raise
    try:
        f.close()
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, path.stat().st_mode & 0o7777 if path.exists() else 0o666 & ~umask)
        os.replace(tmp, path)
    except OSError as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise MlxtError(f"{path}: cannot write {what} ({exc.strerror or exc})") from None


def check_input_file(path, flag: str, what: str = "input file") -> Path:
    """An existing regular file (a symlink loop, a directory or a missing file is one line)."""
    path = check_path(path, flag)
    try:
        path.stat()
    except FileNotFoundError:
        raise MlxtError(f"{path}: {what} not found") from None
    except OSError as exc:
        raise MlxtError(f"{path}: cannot read the {what} ({exc.strerror or exc})") from None
    if path.is_dir():
        raise MlxtError(f"{path}: is a directory, expected a file ({flag})")
    return path
