"""Counters for ``GET /metrics`` in the Prometheus text format: requests by path and status,
request latencies, queue depth and the sizes of decoded batches."""

from __future__ import annotations

import threading
from collections import defaultdict

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128)


class Histogram:
    def __init__(self, buckets):
        self.buckets = tuple(buckets)
        self.counts = [0] * len(self.buckets)
        self.total = 0
        self.sum = 0.0

    def observe(self, value: float) -> None:
        for i, edge in enumerate(self.buckets):
            if value <= edge:
                self.counts[i] += 1
        self.total += 1
        self.sum += value

    def lines(self, name: str, labels: str = "") -> list[str]:
        sep = "," if labels else ""
        out = [f'{name}_bucket{{{labels}{sep}le="{edge:g}"}} {n}' for edge, n in zip(self.buckets, self.counts)]
        out.append(f'{name}_bucket{{{labels}{sep}le="+Inf"}} {self.total}')
        tail = f"{{{labels}}}" if labels else ""
        out += [f"{name}_sum{tail} {self.sum:.6f}", f"{name}_count{tail} {self.total}"]
        return out


class Metrics:
    def __init__(self):
        self._lock = threading.Lock()
        self.requests: dict[tuple[str, int], int] = defaultdict(int)
        self.latency: dict[str, Histogram] = {}
        self.batches = Histogram(BATCH_BUCKETS)

    def observe_request(self, path: str, status: int, seconds: float) -> None:
        with self._lock:
            self.requests[(path, status)] += 1
            self.latency.setdefault(path, Histogram(LATENCY_BUCKETS)).observe(seconds)

    def observe_batch(self, size: int) -> None:
        with self._lock:
            self.batches.observe(size)

    def render(self, queue_depth: int) -> str:
        with self._lock:
            lines = ["# HELP mlxt_requests_total HTTP requests answered, by path and status.",
                     "# TYPE mlxt_requests_total counter"]
            lines += [f'mlxt_requests_total{{path="{p}",status="{s}"}} {n}'
                      for (p, s), n in sorted(self.requests.items())]
            lines += ["# HELP mlxt_request_seconds Time to answer a request, by path.",
                      "# TYPE mlxt_request_seconds histogram"]
            for path, hist in sorted(self.latency.items()):
                lines += hist.lines("mlxt_request_seconds", f'path="{path}"')
            lines += ["# HELP mlxt_queue_depth Requests waiting or being decoded.", "# TYPE mlxt_queue_depth gauge",
                      f"mlxt_queue_depth {queue_depth}",
                      "# HELP mlxt_batch_size Sentences decoded together in one search.",
                      "# TYPE mlxt_batch_size histogram"]
            lines += self.batches.lines("mlxt_batch_size")
        return "\n".join(lines) + "\n"
