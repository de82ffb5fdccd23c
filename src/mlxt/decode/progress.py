"""Progress of a translation job on stderr (stdout holds the translations and stays clean).

On a terminal: one line redrawn in place (``\\r``), at most ten times a second. Elsewhere (a log
file): a plain line every ``every`` seconds, but only once the job has run ``after`` seconds, so
short jobs print nothing. `close` ends the line (terminal) or prints the total (long jobs).
"""

from __future__ import annotations

import sys
import time


class TranslationProgress:
    def __init__(self, total: int | None, stream=None, after: float = 2.0, every: float = 10.0,
                 enabled: bool = True, clock=time.monotonic):
        self.total, self.stream, self.after, self.every = total, stream or sys.stderr, after, every
        self.enabled, self.clock = enabled, clock
        self.tty = enabled and bool(getattr(self.stream, "isatty", lambda: False)())
        self.start = clock()
        self.done = 0
        self.last_shown = None  # when a line was last written
        self.width = 0

    def _line(self) -> str:
        spent = max(self.clock() - self.start, 1e-9)
        rate = self.done / spent
        count = f"{self.done}/{self.total}" if self.total else f"{self.done}"
        text = f"translate: {count} sentences, {rate:.1f} sentences/s"
        if self.total and rate > 0 and self.done < self.total:
            left = int((self.total - self.done) / rate)
            text += f", {left // 60:02d}:{left % 60:02d} left"
        return text

    def update(self, count: int) -> None:
        """``count`` more sentences are translated."""
        self.done += count
        if not self.enabled:
            return
        now = self.clock()
        if self.tty:
            if self.last_shown is None or now - self.last_shown >= 0.1 or (self.total and self.done >= self.total):
                text = self._line()
                self.stream.write("\r" + text.ljust(self.width))
                self.stream.flush()
                self.width, self.last_shown = len(text), now
        elif now - self.start >= self.after and (self.last_shown is None or now - self.last_shown >= self.every):
            print(self._line(), file=self.stream, flush=True)
            self.last_shown = now

    def close(self) -> None:
        if not self.enabled or self.last_shown is None:
            return
        if self.tty:
            self.stream.write("\n")
            self.stream.flush()
        else:
            print(self._line(), file=self.stream, flush=True)
