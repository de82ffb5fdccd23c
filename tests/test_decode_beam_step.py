"""One beam-search step's candidate selection (`_StepScores`) equals the full computation it
replaces: log-softmax over the whole vocabulary, the rules, every beam's score added, the best
``2 * beam`` of each sentence -- same candidates, bit-for-bit the same scores (with the same
normaliser: the native `log_norm` kernel's, or numpy's with the kernels off). The kernel's
normaliser itself is checked against PyTorch's logsumexp."""

from __future__ import annotations

import numpy as np
import pytest

from mlxt import kernels
from mlxt.decode.beam import _StepScores
from mlxt.decode.rules import TokenRules


def full_reference(logits, rules, step, limits, run_scores, K2):
    native = kernels.log_norm(logits)
    if native is not None:
        x = (logits - native[0]) - native[1]
    else:
        x = logits - logits.max(axis=-1, keepdims=True)
        x -= np.log(np.exp(x).sum(axis=-1, keepdims=True))
    logprobs = rules.apply_np(x, step, limits)
    B, k = run_scores.shape
    total = (run_scores[:, :, None] + logprobs.reshape(B, k, -1)).reshape(B, -1)
    idx = np.argsort(-total, axis=-1, kind="stable")[:, :K2]
    return idx, np.take_along_axis(total, idx, axis=-1), logprobs


@pytest.mark.parametrize("B,k,V", [(3, 4, 50), (2, 5, 3), (1, 1, 7), (4, 2, 1000)])
@pytest.mark.parametrize("forced_eos,min_len", [(False, 0), (True, 0), (False, 5)])
@pytest.mark.parametrize("native", [True, False], ids=["native-top-k", "numpy-partition"])
def test_same_candidates_and_scores_as_a_full_log_softmax(B, k, V, forced_eos, min_len, native, monkeypatch):
    monkeypatch.setenv("MLXT_KERNELS", "1" if native else "0")
    rng = np.random.default_rng(B * 100 + k * 10 + V)
    eos = 1
    rules = TokenRules(V, eos, banned_ids=(0,) if V > 2 else (), min_len=min_len, forced_eos=forced_eos)
    run_scores = rng.normal(-3, 2, size=(B, k)).astype(np.float32)
    run_scores[0, 1:] = -np.inf  # a sentence at its first step: one live beam
    limits = rng.integers(2, 4, size=B * k)
    K2 = min(2 * k, k * V)
    for step in (1, 2, 3):
        logits = (4 * rng.normal(size=(B * k, V))).astype(np.float32)
        want_idx, want_vals, logprobs = full_reference(logits.copy(), rules, step, limits, run_scores, K2)
        scores = _StepScores(logits.copy(), rules, step, limits, eos)
        idx, vals = scores.best(run_scores, K2)
        finite = np.isfinite(want_vals)
        assert np.array_equal(vals, want_vals)  # bit-for-bit, -inf included
        assert np.array_equal(idx[finite], want_idx[finite])  # -inf ties may come in any order
        assert np.array_equal(scores.eos_logprobs(), logprobs[:, eos])


@pytest.mark.parametrize("rows,V", [(1, 1), (3, 15), (7, 17), (128, 58101)])
def test_native_log_norm_matches_torch_logsumexp(rows, V):
    import torch

    x = (6 * np.random.default_rng(V).normal(size=(rows, V))).astype(np.float32)
    top, log_norm = kernels.log_norm(x)
    np.testing.assert_array_equal(top[:, 0], x.max(axis=-1))
    want = torch.logsumexp(torch.tensor(x, dtype=torch.float64), dim=-1).numpy()
    np.testing.assert_allclose((top + log_norm)[:, 0], want, rtol=1e-6, atol=1e-5)

