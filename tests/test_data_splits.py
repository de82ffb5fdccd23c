"""Splits: deterministic by seed, no sentence shared across splits, sizes as configured."""

import pytest

from mlxt.data.splits import dedup_pairs, split_pairs, split_text
from mlxt.errors import MlxtError


def _pairs():
    pairs = []
    for i in range(300):
        for k in range(1 + i % 3):  # several translations of one source
            pairs.append((f"source {i}", f"target {i}.{k}"))
    pairs.append(("another source", "target 7.0"))  # shares a target with source 7
    return pairs


def test_no_leakage_and_everything_kept():
    pairs = _pairs()
    splits = split_pairs(pairs, valid_size=30, test_size=0.1, seed=3)
    sides = {name: ({s for s, _ in v}, {t for _, t in v}) for name, v in splits.items()}
    for a in splits:
        for b in splits:
            if a < b:
                assert not sides[a][0] & sides[b][0], (a, b)
                assert not sides[a][1] & sides[b][1], (a, b)
    assert sorted(p for v in splits.values() for p in v) == sorted(pairs)
    assert len({s for s, _ in splits["valid"]}) == 30
    # the linked group {source 7, another source} counts once: 300 groups, 10% of them
    assert len({s for s, _ in splits["test"]} - {"another source"}) == 30


def test_deterministic_by_seed():
    pairs = _pairs()
    assert split_pairs(pairs, 20, 20, seed=1) == split_pairs(pairs, 20, 20, seed=1)
    assert split_pairs(pairs, 20, 20, seed=1)["test"] != split_pairs(pairs, 20, 20, seed=2)["test"]


def test_only_missing_splits_are_cut():
    out = split_pairs(_pairs(), 20, 20, seed=1, need_valid=False)
    assert set(out) == {"train", "test"}


def test_too_few_examples():
    with pytest.raises(MlxtError, match="too few examples to split"):
        split_pairs([("a", "b"), ("c", "d")], 1, 1, seed=0)


def test_dedup():
    assert dedup_pairs([("a", "b"), ("a", "b"), ("a", "c")]) == [("a", "b"), ("a", "c")]


def test_lm_text_split_nanogpt_style():
    text = "".join(chr(65 + i % 26) for i in range(1000))
    out = split_text(text, -1, -1)
    assert out["train"] == text[:900] and out["valid"] == text[900:] and "test" not in out
    out = split_text(text, 0.1, 0.05)
    assert out["train"] + out["test"] + out["valid"] == text and len(out["test"]) == 50
