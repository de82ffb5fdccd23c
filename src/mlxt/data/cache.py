"""Where mlxt keeps downloads and prepared data: ``$MLXT_CACHE`` or ``~/.cache/mlxt``.

A prepared corpus lives in ``prepared/<key>/`` where the key hashes the source files' stats
(path, size, modification time) and every setting that changes the tokenized arrays, so a
changed file or setting prepares afresh and an unchanged one is reused.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path

FORMAT_VERSION = 1


def cache_root() -> Path:
    env = os.environ.get("MLXT_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "mlxt"


def file_stats(paths: list[Path]) -> list[dict]:
    out = []
    for p in paths:
        try:
            st = Path(p).stat()
        except FileNotFoundError:
            from mlxt.errors import MlxtError

            raise MlxtError(f"{p}: file not found") from None
        out.append({"path": str(Path(p).resolve()), "size": st.st_size, "mtime_ns": st.st_mtime_ns})
    return out


def prepared_key(stats: list[dict], settings: dict) -> str:
    blob = json.dumps({"version": FORMAT_VERSION, "files": stats, "settings": settings}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:20]


def publish_dir(tmp: Path, final: Path, replace: bool = False) -> None:
    """Move a fully written temporary directory into place. An existing entry is kept (the first
    writer wins) unless ``replace`` (it was found damaged): then it is moved aside and deleted."""
    final.parent.mkdir(parents=True, exist_ok=True)
    if replace and final.exists():
        old = new_temp_dir(final.parent)
        try:
            os.replace(final, old / final.name)
        except OSError:  # another process replaced it already
            pass
        shutil.rmtree(old, ignore_errors=True)
    try:
        os.replace(tmp, final)
    except OSError:  # another process published it first
        shutil.rmtree(tmp, ignore_errors=True)


def new_temp_dir(parent: Path) -> Path:
    parent.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=".tmp-", dir=parent))
