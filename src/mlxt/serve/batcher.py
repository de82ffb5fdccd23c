"""The model thread: every decode of a server runs here, one at a time, while the HTTP side
keeps answering.

Translation requests waiting at the same moment (the thread waits a little for more while
they are on their way, see `Batcher._gather`) are decoded together: their sentences are
grouped by model and search settings (beam size, n-best), sorted by length and cut into
batches of at most ``max_batch`` sentences and ``batch_tokens`` padded source tokens
(sentences x longest source), each one call of the library's batched search
(`mlxt.decode.translate.translate_ids`, as `mlxt translate` uses it). Between batches, every
running text generation advances by one token, so a long completion does not hold up
translations and several completions progress together.

The queue is bounded: `submit_translate` / `submit_generate` raise `QueueFull` when
``max_queue`` requests are waiting or running. A request whose deadline passes before it is
decoded is dropped with `TimeoutError`. An exception while decoding a batch that mixes
several requests is retried request by request, so it fails only the request that caused it.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, InvalidStateError
from dataclasses import dataclass, field

from mlxt.decode.translate import translate_ids


GATHER_SHARE = 0.25  # of the last batch's time, the most the model thread waits for more requests
GATHER_MAX = 0.25  # seconds, ditto (see `Batcher._gather`)


class QueueFull(Exception):
    """The server holds ``max_queue`` requests already."""


class Closed(Exception):
    """The server is shutting down and takes no new requests."""


@dataclass
class TranslateJob:
    served: object
    sources: list[list[int]]
    beam: int
    n_best: int
    deadline: float
    future: Future = field(default_factory=Future)


@dataclass
class GenerateJob:
    """``on_token(token_id)`` is called in the model thread for every new token; it returns
    False to stop early (a stop sequence was met, or the client went away)."""

    served: object
    start: Callable[[], object]  # makes the token iterator (runs in the model thread)
    on_token: Callable[[int], bool]
    deadline: float
    future: Future = field(default_factory=Future)
    tokens: object = None
    count: int = 0


class Batcher:
    def __init__(self, max_queue: int = 64, max_batch: int = 32, batch_tokens: int = 4096, metrics=None,
                 translate_fn=translate_ids, expected=lambda: 0):
        self.max_queue, self.max_batch, self.batch_tokens = max_queue, max_batch, batch_tokens
        self.metrics = metrics
        self.translate_fn = translate_fn
        self.expected = expected  # translation requests being handled over HTTP (see `_gather`)
        self._last_seconds = 0.0  # the last batch's decoding time, its requests, and the
        self._last_requests = 0  # requests that arrived while it was decoded (see `_gather`)
        self._arrived_during = 0
        self._cond = threading.Condition()
        self._waiting: deque = deque()
        self._generating: list[GenerateJob] = []
        self._in_system = 0
        self._closed = False
        self._thread = threading.Thread(target=self._loop, name="mlxt-model", daemon=True)

    # -- the HTTP side ---------------------------------------------------------------------------
    def start(self) -> None:
        self._thread.start()

    def close(self, wait: bool = True) -> None:
        """Refuse new requests; the thread ends once the ones held are done."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        if wait and self._thread.is_alive():
            self._thread.join()

    @property
    def depth(self) -> int:
        """Requests waiting or being decoded."""
        return self._in_system

    def submit_translate(self, served, sources: list[list[int]], beam: int, n_best: int, timeout: float) -> Future:
        return self._submit(TranslateJob(served, sources, beam, n_best, time.monotonic() + timeout))

    def submit_generate(self, served, start, on_token, timeout: float) -> Future:
        return self._submit(GenerateJob(served, start, on_token, time.monotonic() + timeout))

    def _submit(self, job) -> Future:
        with self._cond:
            if self._closed:
                raise Closed("the server is shutting down")
            if self._in_system >= self.max_queue:
                raise QueueFull(f"the server is busy ({self.max_queue} requests queued); try again shortly")
            self._in_system += 1
            self._waiting.append(job)
            self._cond.notify()
        job.future.add_done_callback(self._left)
        return job.future

    def _left(self, _future) -> None:
        with self._cond:
            self._in_system -= 1

    # -- the model thread ------------------------------------------------------------------------
    def _loop(self) -> None:
        while True:
            with self._cond:
                while not self._waiting and not self._generating and not self._closed:
                    self._cond.wait()
                if self._closed and not self._waiting and not self._generating:
                    return
                if not self._generating:
                    self._gather()
                taken = list(self._waiting)
                self._waiting.clear()
            now = time.monotonic()
            translations = []
            for job in taken:
                if job.future.done():  # cancelled by its request
                    continue
                if now > job.deadline:
                    _fail(job, TimeoutError("the request timed out while queued"))
                elif isinstance(job, TranslateJob):
                    translations.append(job)
                else:
                    self._generating.append(job)
            if translations:
                started = time.monotonic()
                self._translate(translations)
                self._last_seconds = time.monotonic() - started
                self._last_requests = len(translations)
                with self._cond:
                    self._arrived_during = sum(isinstance(j, TranslateJob) for j in self._waiting)
            self._advance_generations()

    def _gather(self) -> None:
        """Before a batch, wait a little for requests that are on their way, for at most
        ``GATHER_SHARE`` of the last batch's decoding time (and ``GATHER_MAX``), until a batch
        is full or as many translation requests wait as are expected: those being handled
        over HTTP (``expected()``), or, when more, the requests of the last batch (their
        clients are likely to send their next ones now) plus those that arrived while it
        was decoded. Without this wait, clients answered together would be decoded apart:
        those that arrived during a batch would start the next one alone, the others queueing
        behind them, batch after batch. A lone client never waits."""
        deadline = time.monotonic() + min(GATHER_MAX, GATHER_SHARE * self._last_seconds)
        target = max(self.expected(), self._last_requests + self._arrived_during)
        while not self._closed:
            jobs = [j for j in self._waiting if isinstance(j, TranslateJob)]
            if sum(len(j.sources) for j in jobs) >= self.max_batch or len(jobs) >= target:
                return
            left = deadline - time.monotonic()
            if left <= 0:
                return
            self._cond.wait(min(0.002, left))

    def _translate(self, jobs: list[TranslateJob]) -> None:
        groups: dict[tuple, list[TranslateJob]] = {}
        for job in jobs:
            groups.setdefault((id(job.served), job.beam, job.n_best), []).append(job)
        for group in groups.values():
            results = {id(job): [[] for _ in job.sources] for job in group}
            failed: dict[int, BaseException] = {}
            items = [(job, i, ids) for job in group for i, ids in enumerate(job.sources) if ids]
            items.sort(key=lambda item: -len(item[2]))
            for chunk in self._chunks(items):
                live = [item for item in chunk if id(item[0]) not in failed and not item[0].future.done()]
                if live:
                    self._decode(live, results, failed)
            for job in group:
                if id(job) in failed:
                    _fail(job, failed[id(job)])
                else:
                    _finish(job, results[id(job)])

    def _chunks(self, items):
        chunk: list = []
        for item in items:  # longest first: the first item of a chunk sets its padded width
            if chunk and (len(chunk) + 1 > self.max_batch or (len(chunk) + 1) * len(chunk[0][2]) > self.batch_tokens):
                yield chunk
                chunk = []
            chunk.append(item)
        if chunk:
            yield chunk

    def _decode(self, chunk, results, failed) -> None:
        job0 = chunk[0][0]
        served = job0.served
        try:
            hyps = self.translate_fn(served.model, [ids for _, _, ids in chunk], job0.beam, job0.n_best,
                                     len(chunk), **served.search)
        except Exception as exc:  # noqa: BLE001 -- one request's failure must not end the thread
            jobs = {id(job): job for job, _, _ in chunk}
            if len(jobs) == 1:
                failed[id(job0)] = exc
                return
            for job in jobs.values():  # find the request that fails; the others go on
                self._decode([item for item in chunk if item[0] is job], results, failed)
            return
        if self.metrics is not None:
            self.metrics.observe_batch(len(chunk))
        for (job, i, _), h in zip(chunk, hyps):
            results[id(job)][i] = h

    def _advance_generations(self) -> None:
        still = []
        now = time.monotonic()
        for job in self._generating:
            if job.future.done():
                continue
            try:
                if job.tokens is None:
                    job.tokens = iter(job.start())
                if now > job.deadline:
                    raise TimeoutError("the request timed out while generating")
                token = next(job.tokens, None)
                if token is None or not job.on_token(token):
                    _finish(job, job.count + (token is not None))
                    continue
                job.count += 1
                still.append(job)
            except Exception as exc:  # noqa: BLE001 -- fails this request only
                _fail(job, exc)
        self._generating = still


def _finish(job, result) -> None:
    try:
        job.future.set_result(result)
    except InvalidStateError:  # cancelled by its request meanwhile
        pass


def _fail(job, exc: BaseException) -> None:
    try:
        job.future.set_exception(exc)
    except InvalidStateError:
        pass
