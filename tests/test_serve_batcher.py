"""The model thread's batching on its own: requests waiting together are decoded in batches
bounded by sentences and padded tokens, grouped by search settings, with the results of the
library's own search for each sentence."""

from __future__ import annotations

import threading
from types import SimpleNamespace

import numpy as np
import pytest
from decode_models import tiny_seq2seq

from mlxt.decode.translate import translate_ids
from mlxt.serve.batcher import Batcher, Closed, QueueFull


def sources(rng, lengths):
    return [rng.integers(4, 20, size=n).tolist() + [2] for n in lengths]


def test_chunks_respect_sentence_and_token_budgets():
    batcher = Batcher(max_batch=3, batch_tokens=20)
    items = [(None, i, [5] * n) for i, n in enumerate([9, 8, 6, 5, 5, 4, 2, 2, 1])]  # longest first
    chunks = [[len(ids) for _, _, ids in c] for c in batcher._chunks(items)]
    assert chunks == [[9, 8], [6, 5, 5], [4, 2, 2], [1]]  # 3 x 9 > 20 tokens; then 3 sentences at most


def test_waiting_requests_decode_together_with_the_library_results():
    rng = np.random.default_rng(0)
    model = tiny_seq2seq(seed=1)
    served = SimpleNamespace(model=model, search={"max_len": 12})
    calls, gate = [], threading.Event()

    def recorded(model, srcs, beam, n_best, batch_size, **options):
        gate.wait(30)
        calls.append((len(srcs), beam))
        return translate_ids(model, srcs, beam, n_best, batch_size, **options)

    batcher = Batcher(max_batch=4, batch_tokens=1000, translate_fn=recorded)
    jobs = [(sources(rng, [3, 7]), 1), (sources(rng, [5]), 1), (sources(rng, [2, 4, 6]), 3), ([[]], 1)]
    futures = [batcher.submit_translate(served, srcs, beam, 1, 60) for srcs, beam in jobs]
    assert batcher.depth == 4
    batcher.start()
    gate.set()
    results = [f.result(60) for f in futures]
    batcher.close()
    for (srcs, beam), got in zip(jobs, results):
        alone = translate_ids(model, srcs, beam, 1, 1, max_len=12)
        assert [[h.tokens for h in hs] for hs in got] == [[h.tokens for h in hs] for hs in alone]
    # greedy: 3 sentences of two requests in one search; beam 3: one search of 3; the empty one: none
    assert sorted(calls) == [(3, 1), (3, 3)]
    assert batcher.depth == 0


def test_queue_bound_and_close():
    batcher = Batcher(max_queue=2)
    served = SimpleNamespace(model=None, search={})
    batcher.submit_translate(served, [[4, 2]], 1, 1, 60)
    batcher.submit_translate(served, [[4, 2]], 1, 1, 60)
    with pytest.raises(QueueFull):
        batcher.submit_translate(served, [[4, 2]], 1, 1, 60)
    batcher.close(wait=False)
    with pytest.raises(Closed):
        batcher.submit_translate(served, [[4, 2]], 1, 1, 60)
