"""Metrics: sacrebleu BLEU/chrF with signatures, exact match, perplexity."""

from __future__ import annotations

import math

import pytest

from mlxt.evaluate import bleu, chrf, exact_match, perplexity


def test_bleu_and_chrf():
    refs = ["the cat sat on the mat", "a dog runs in the park"]
    perfect = bleu(refs, refs)
    assert perfect["score"] == pytest.approx(100.0)
    assert "tok:13a" in perfect["signature"] and "nrefs:1" in perfect["signature"]
    worse = bleu(["the cat sat", "a dog walks in a park"], refs)
    assert 0.0 < worse["score"] < 100.0
    c = chrf(["the cat sat", "a dog walks in a park"], refs)
    assert 0.0 < c["score"] < 100.0 and "nc:6" in c["signature"]
    assert chrf(refs, refs)["score"] == pytest.approx(100.0)


def test_exact_match_and_perplexity():
    assert exact_match(["a b", " c ", "d"], ["a b", "c", "e"]) == pytest.approx(200 / 3)
    assert exact_match([], []) == 0.0
    with pytest.raises(ValueError):
        exact_match(["a"], [])
    assert perplexity(math.log(7.0)) == pytest.approx(7.0)
    assert math.isfinite(perplexity(1e6))
