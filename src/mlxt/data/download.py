"""Fetch a corpus file: from a URL into the cache (resumable, atomic, sha256-checked), or from a
local path / ``file://`` URL in place.

A download goes to ``NAME.part`` and resumes from its size with an HTTP ``Range`` request; only
a complete file whose sha256 matches is renamed to ``NAME``. For a file without a published
sha256, the hash of the first download is recorded in ``NAME.sha256`` and checked afterwards.
"""

from __future__ import annotations

import hashlib
import os
import sys
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

from mlxt.errors import MlxtError

CHUNK = 1 << 20


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(CHUNK), b""):
            h.update(block)
    return h.hexdigest()


def local_path(source: str) -> Path | None:
    """The file a ``file://`` URL or plain path names; None for a network URL."""
    parsed = urllib.parse.urlparse(source)
    if parsed.scheme == "file":
        return Path(urllib.request.url2pathname(parsed.path))
    if parsed.scheme in ("http", "https", "ftp"):
        return None
    return Path(source).expanduser()


def _verify(path: Path, sha256: str | None, origin: str) -> None:
    if sha256 is None:
        return
    got = sha256_of(path)
    if got != sha256:
        raise MlxtError(f"{origin}: sha256 {got} does not match the expected {sha256} "
                        "(a different or corrupt file)")


def _download(url: str, dest: Path, quiet: bool) -> None:
    part = dest.with_name(dest.name + ".part")
    have = part.stat().st_size if part.exists() else 0
    request = urllib.request.Request(url, headers={"User-Agent": "mlxt"})
    if have:
        request.add_header("Range", f"bytes={have}-")
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            resumed = have and response.status == 206
            mode = "ab" if resumed else "wb"
            total = response.headers.get("Content-Length")
            if not quiet:
                what = f"resuming at {have} bytes" if resumed else f"{total or '?'} bytes"
                print(f"downloading {url} ({what})", file=sys.stderr)
            with open(part, mode) as f:
                for block in iter(lambda: response.read(CHUNK), b""):
                    f.write(block)
                f.flush()
                os.fsync(f.fileno())
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and have:  # the partial file is already complete
            pass
        else:
            raise MlxtError(f"{url}: download failed (HTTP {exc.code}); pass a local copy with "
                            "--source PATH or [data] source") from None
    except (urllib.error.URLError, OSError) as exc:
        hint = "pass a local copy with --source PATH or [data] source"
        if part.exists() and part.stat().st_size:
            hint = "run again to resume the partial download, or " + hint
        raise MlxtError(f"{url}: download failed ({getattr(exc, 'reason', exc)}); {hint}") from None
    os.replace(part, dest)


def fetch(source: str, sha256: str | None, dest: Path, quiet: bool = False) -> Path:
    """Return a verified local file for ``source`` (URL, ``file://`` URL or path).

    Local sources are used in place (after checking the sha256 when one is known); URLs are
    downloaded once to ``dest``.
    """
    path = local_path(source)
    if path is not None:
        if not path.is_file():
            raise MlxtError(f"{path}: file not found" if not path.is_dir() else f"{path}: is a directory, expected a file")
        _verify(path, sha256, str(path))
        return path
    recorded = dest.with_name(dest.name + ".sha256")
    expected = sha256 or (recorded.read_text().strip() if recorded.exists() else None)
    if dest.is_file():
        _verify(dest, expected, str(dest))
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    _download(source, dest, quiet)
    try:
        _verify(dest, expected, source)
    except MlxtError:
        dest.unlink(missing_ok=True)
        raise
    if sha256 is None and not recorded.exists():
        recorded.write_text(sha256_of(dest) + "\n")
    return dest
