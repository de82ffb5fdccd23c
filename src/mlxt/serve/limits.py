"""What a server accepts: sizes, counts, time, API keys and request rates.

``--api-keys FILE`` holds one key per line (blank lines and ``#`` comments ignored); with it,
every translation and completion request needs one of those keys (``api_key`` in the body, or
an ``Authorization: Bearer KEY`` header). The rate limit counts requests per key, or per
client address when no key is given, over a sliding minute.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path

from mlxt.errors import MlxtError


@dataclass
class Limits:
    """``max_chars``: characters of one request (all items); ``max_item_chars``: of one text;
    ``max_items``: texts in one request; ``max_batch``: sentences decoded together;
    ``batch_tokens``: padded source tokens decoded together; ``max_queue``: requests waiting
    or running before 503; ``timeout``: seconds one request may take; ``max_body``: bytes of a
    request body; ``max_tokens``: most tokens one completion may ask for; ``max_alternatives``;
    ``rate_limit``: requests per minute per key or address (0: none)."""

    max_chars: int = 5000
    max_item_chars: int = 1000
    max_items: int = 64
    max_batch: int = 32
    batch_tokens: int = 4096
    max_queue: int = 64
    timeout: float = 60.0
    max_body: int = 1 << 20
    max_tokens: int = 1024
    max_alternatives: int = 4
    rate_limit: int = 0

    def check(self) -> None:
        for name, value in vars(self).items():
            if name == "rate_limit":
                if value < 0:
                    raise MlxtError(f"--rate-limit: expected requests per minute >= 0 (0: no limit), got {value}")
            elif not value > 0:
                raise MlxtError(f"--{name.replace('_', '-')}: expected a positive number, got {value}")


def read_api_keys(path: str | Path) -> frozenset[str]:
    """The keys of an ``--api-keys`` file (one per line)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise MlxtError(f"{path}: API key file not found") from None
    except UnicodeDecodeError as exc:
        raise MlxtError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    keys = set()
    for number, line in enumerate(text.splitlines(), 1):
        key = line.split("#", 1)[0].strip()
        if not key:
            continue
        if any(c.isspace() for c in key):
            raise MlxtError(f"{path}:{number}: expected one API key per line, got {key!r}")
        keys.add(key)
    if not keys:
        raise MlxtError(f"{path}: holds no API key (one per line expected)")
    return frozenset(keys)


class RateLimiter:
    """At most ``per_minute`` requests per client in any 60 seconds (0: unlimited)."""

    def __init__(self, per_minute: int, window: float = 60.0, clock=time.monotonic):
        self.per_minute, self.window, self.clock = per_minute, window, clock
        self._seen: dict[str, deque] = {}
        self._lock = threading.Lock()

    def allow(self, client: str) -> bool:
        if self.per_minute <= 0:
            return True
        now = self.clock()
        with self._lock:
            times = self._seen.setdefault(client, deque())
            while times and now - times[0] >= self.window:
                times.popleft()
            if len(times) >= self.per_minute:
                return False
            times.append(now)
            if len(self._seen) > 10000:  # forget idle clients
                for key in [k for k, v in self._seen.items() if not v or now - v[-1] >= self.window]:
                    del self._seen[key]
            return True
