"""Beam search: exhaustive search on a tiny vocabulary, beam 1 == greedy, batching and padding."""

from __future__ import annotations

import itertools

import mlx.core as mx
import numpy as np
import pytest

from decode_models import random_sources, tiny_seq2seq
from mlxt.decode import beam_search, beam_search_nbest, greedy, hf_beam_options

V = 6  # pad 0, bos 1, eos 2, unk 3, and two more tokens
BANNED = (0, 1)


def reference_score(model, src_row, seq, limit, alpha, kind, min_len=0, forced_eos=False):
    """Score of one output sequence from a full (uncached) forward pass and numpy log-softmax."""
    cfg = model.config
    tgt_in = mx.array([[cfg.start_id] + seq[:-1]], dtype=mx.int32)
    logits = np.array(model(src_row[None], tgt_in)[0]).astype(np.float64)
    logp = logits - np.log(np.exp(logits - logits.max(-1, keepdims=True)).sum(-1, keepdims=True)) \
        - logits.max(-1, keepdims=True)
    total = 0.0
    for t, tok in enumerate(seq, start=1):
        row = logp[t - 1].copy()
        row[list(BANNED)] = -np.inf
        if t <= min_len:
            row[cfg.eos_id] = -np.inf
        if forced_eos and t == limit:
            row[:] = -np.inf
            row[cfg.eos_id] = 0.0
        total += row[tok]
    n = len(seq)
    pen = ((5 + n) / 6) ** alpha if kind == "gnmt" else n ** alpha
    return total / pen, total


def exhaustive_best(model, src_row, limit, alpha, kind, **rules):
    eos = model.config.eos_id
    words = [i for i in range(V) if i not in BANNED and i != eos]
    candidates = []
    for n in range(1, limit + 1):
        for prefix in itertools.product(words, repeat=n - 1):
            candidates.append(list(prefix) + [eos])
            if n == limit:
                candidates.extend(list(prefix) + [w] for w in words)
    scored = [(reference_score(model, src_row, c, limit, alpha, kind, **rules), c) for c in candidates]
    scored = [(s, c) for s, c in scored if np.isfinite(s[0])]
    (best_score, best_logp), best = max(scored, key=lambda x: x[0][0])
    tokens = best[:-1] if best[-1] == eos else best
    return tokens, best_score, best_logp


CASES = [
    # (candidates, beam, limit, alpha, kind, early_stopping, extra rules)
    ("topk", V, 2, 0.0, "plain", False, {}),
    ("topk", V, 2, 1.0, "plain", False, {}),
    ("topk", V, 2, 0.6, "gnmt", "never", {}),
    ("topk", V, 2, 1.0, "plain", False, {"forced_eos": True}),
    ("all", 9, 3, 0.0, "plain", False, {}),
    ("all", 9, 3, 1.0, "plain", "never", {}),
    ("all", 9, 3, 0.6, "gnmt", "never", {"min_len": 1}),
    ("all", 9, 3, 2.0, "plain", "never", {"forced_eos": True}),
]


@pytest.mark.parametrize("candidates,beam,limit,alpha,kind,early,rules", CASES)
def test_beam_finds_exhaustive_best(rng, candidates, beam, limit, alpha, kind, early, rules):
    """With a beam that holds every prefix, beam search returns the best-scoring sequence."""
    for seed in range(3):
        model = tiny_seq2seq(seed=seed, vocab=V)
        src = random_sources(rng, [3, 2], vocab=V)
        hyps = beam_search_nbest(model, src, beam_size=beam, length_penalty=alpha, penalty=kind, max_len=limit,
                                 early_stopping=early, banned_ids=BANNED, candidates=candidates, **rules)
        for b in range(src.shape[0]):
            tokens, score, logp = exhaustive_best(model, src[b], limit, alpha, kind, **rules)
            assert hyps[b][0].tokens == tokens, (seed, b, hyps[b][0], tokens, score)
            assert hyps[b][0].score == pytest.approx(score, abs=1e-4)
            assert hyps[b][0].logprob == pytest.approx(logp, abs=1e-4)


def test_nbest_scores_are_sorted_and_recomputable(rng):
    model = tiny_seq2seq(seed=4)
    src = random_sources(rng, [4, 6])
    hyps = beam_search_nbest(model, src, beam_size=4, length_penalty=1.0, penalty="plain", max_len=8)
    for b, nbest in enumerate(hyps):
        assert len(nbest) == 4
        scores = [h.score for h in nbest]
        assert scores == sorted(scores, reverse=True)
        assert len({tuple(h.tokens) for h in nbest}) == 4  # distinct hypotheses
        for h in nbest:
            seq = h.tokens + [2] if h.ended else h.tokens
            total = 0.0
            tgt_in = mx.array([[1] + seq[:-1]], dtype=mx.int32)
            logits = np.array(model(src[b : b + 1], tgt_in)[0]).astype(np.float64)
            for t, tok in enumerate(seq):
                row = logits[t]
                row = row - np.log(np.exp(row - row.max()).sum()) - row.max()
                total += row[tok]
            assert h.logprob == pytest.approx(total, abs=1e-4)
            assert h.score == pytest.approx(total / len(seq), abs=1e-4)


@pytest.mark.parametrize("alpha,kind", [(0.0, "plain"), (1.0, "plain"), (0.6, "gnmt")])
def test_beam_one_equals_greedy(rng, alpha, kind):
    for seed in range(3):
        model = tiny_seq2seq(seed=10 + seed)
        src = random_sources(rng, [5, 2, 8, 4])
        expected = greedy(model, src, max_len_a=1.0, max_len_b=5)
        got = beam_search(model, src, beam_size=1, length_penalty=alpha, penalty=kind, max_len_a=1.0, max_len_b=5)
        assert got == expected


@pytest.mark.parametrize("beam", [1, 4])
def test_batched_equals_one_sentence_at_a_time(rng, beam):
    model = tiny_seq2seq(seed=7)
    lengths = [6, 1, 9, 3]
    src = random_sources(rng, lengths)
    batched = beam_search_nbest(model, src, beam_size=beam, n_best=2)
    for b, n in enumerate(lengths):
        alone = beam_search_nbest(model, src[b : b + 1, : n + 1], beam_size=beam, n_best=2)[0]
        assert [h.tokens for h in alone] == [h.tokens for h in batched[b]]
        np.testing.assert_allclose([h.score for h in alone], [h.score for h in batched[b]], atol=1e-5)
    # extra padding columns change nothing either
    padded = mx.concatenate([src, mx.zeros((src.shape[0], 5), dtype=mx.int32)], axis=1)
    assert beam_search(model, padded, beam_size=beam) == [h[0].tokens for h in batched]


def test_length_limit_follows_source_length(rng):
    model = tiny_seq2seq(seed=5, vocab=20)
    src = random_sources(rng, [2, 10])
    out = beam_search_nbest(model, src, beam_size=3, max_len_a=1.0, max_len_b=1, banned_ids=(0, 1, 2))
    # with end-of-sentence banned every hypothesis runs to its sentence's limit: len + eos + 1
    assert [len(h[0].tokens) for h in out] == [4, 12]
    assert not out[0][0].ended


def test_early_stopping_true_stops_when_beams_are_finished(rng):
    model = tiny_seq2seq(seed=6)
    src = random_sources(rng, [4])
    quick = beam_search_nbest(model, src, beam_size=2, early_stopping=True, max_len=30)[0]
    assert all(h.ended for h in quick) and len(quick) == 2


def test_hf_options_mapping():
    opts = hf_beam_options({"num_beams": 4, "max_length": 512, "bad_words_ids": [[58100]],
                            "forced_eos_token_id": 0, "min_length": 3})
    assert opts == {"beam_size": 4, "length_penalty": 1.0, "penalty": "plain", "max_len": 511, "min_len": 2,
                    "early_stopping": False, "banned_ids": (58100,), "forced_eos": True, "candidates": "topk"}


def test_bad_options_raise():
    model = tiny_seq2seq(seed=0)
    src = mx.array([[5, 2]], dtype=mx.int32)
    with pytest.raises(ValueError):
        beam_search(model, src, beam_size=2, penalty="linear")
    with pytest.raises(ValueError):
        beam_search(model, src, beam_size=2, early_stopping="sometimes")


def test_greedy_scores_match_beam_one(rng):
    model = tiny_seq2seq(seed=8)
    src = random_sources(rng, [3, 7])
    tokens, scores = greedy(model, src, return_scores=True, max_len=12, forced_eos=True)
    hyps = beam_search_nbest(model, src, beam_size=1, length_penalty=0.0, max_len=12, forced_eos=True)
    assert tokens == [h[0].tokens for h in hyps]
    np.testing.assert_allclose(scores, [h[0].logprob for h in hyps], atol=1e-4)
