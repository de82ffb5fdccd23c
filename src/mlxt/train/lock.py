"""``RUN_DIR/.lock``: one training process per run directory.

The lock is an exclusive `fcntl.flock` on the file, which the operating system releases when
the process ends in any way (including SIGKILL), so a killed run can be resumed at once while
a second concurrent writer is refused.
"""

from __future__ import annotations

import os
from pathlib import Path

from mlxt.errors import MlxtError

try:
    import fcntl
except ImportError:  # Windows: no advisory locks; the lock file is informative only
    fcntl = None


class RunLock:
    def __init__(self, run_dir: str | Path):
        self.path = Path(run_dir) / ".lock"
        self._fd: int | None = None

    def acquire(self) -> "RunLock":
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        if fcntl is not None:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                holder = os.read(fd, 64).decode(errors="replace").strip() or "another process"
                os.close(fd)
                raise MlxtError(f"{self.path.parent}: already in use by a training process (pid {holder})") from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing drops the flock
            self._fd = None

    def __enter__(self) -> "RunLock":
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()
