"""Stopping by signal: SIGINT (Ctrl-C) and SIGTERM (``kill``, ``timeout``, job schedulers).

The first signal only sets a flag; the loop reads it at the next step boundary, saves a
checkpoint there and stops (exit status ``128 + signal``: 130 for SIGINT, 143 for SIGTERM). A
second signal stops at once -- except while a checkpoint is being written or old ones pruned
(`StopSignals.deferred`): then it waits until that operation is complete, so a signal never
leaves a half-written or half-deleted checkpoint behind.
"""

from __future__ import annotations

import signal
import threading
from contextlib import contextmanager

HANDLED = (signal.SIGINT, signal.SIGTERM)


def signal_name(signum: int) -> str:
    return signal.Signals(signum).name


def exit_status(signum: int) -> int:
    """The shell convention for a process stopped by ``signum``."""
    return 128 + int(signum)


class StopRequested(KeyboardInterrupt):
    """A second signal: stop now (after any checkpoint write in progress)."""

    def __init__(self, signum: int):
        super().__init__(signal_name(signum))
        self.signum = signum


class StopSignals:
    """Context manager turning SIGINT/SIGTERM into a flag (`received`: the first signal's number).

    Handlers can only be installed from the main thread; elsewhere (a training thread of a
    server or a notebook) signals keep their previous behaviour.
    """

    def __init__(self):
        self.received: int | None = None
        self._previous: dict = {}
        self._deferring = 0
        self._pending: int | None = None

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            for signum in HANDLED:
                self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def _handle(self, signum, frame):
        if self.received is None:
            self.received = signum
            return
        if self._deferring:
            self._pending = signum
            return
        raise StopRequested(signum)

    @contextmanager
    def deferred(self):
        """A section a second signal must not cut short (checkpoint write, prune, best link)."""
        self._deferring += 1
        try:
            yield
        finally:
            self._deferring -= 1
        if not self._deferring and self._pending is not None:
            signum, self._pending = self._pending, None
            raise StopRequested(signum)

    def __exit__(self, *exc):
        for signum, previous in self._previous.items():
            signal.signal(signum, previous)
        self._previous = {}


@contextmanager
def forwarding_sigterm(procs):
    """``mlxt train --workers N``: pass a SIGTERM sent to the launching process on to the ranks,
    which then stop together like a signalled single process. (A terminal's Ctrl-C already
    reaches every process of the group, so SIGINT is not forwarded: a rank would see it twice.)"""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def forward(signum, frame):
        for p in procs:
            if p.poll() is None:
                p.send_signal(signum)

    previous = signal.signal(signal.SIGTERM, forward)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
