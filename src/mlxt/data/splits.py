"""Deterministic train/valid/test splits.

Parallel data is split by *sentence group*: pairs that share a source sentence (or a target
sentence) are joined into one group, and a group lands in one split, so no test sentence on
either side was seen in training, whichever direction is trained. Language-model text is split by
position (the last part is validation, as nanoGPT does).
"""

from __future__ import annotations

import numpy as np

from mlxt.errors import MlxtError

DEFAULT_FRACTION = 0.05
DEFAULT_CAP = 2000


def dedup_pairs(pairs: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """Drop repeated (source, target) pairs, keeping the first occurrence."""
    return list(dict.fromkeys(pairs))


def _count(size: float, total: int, name: str) -> int:
    if size < 0:
        return min(DEFAULT_CAP, int(round(total * DEFAULT_FRACTION)))
    if size >= 1:
        if size != int(size):
            raise MlxtError(f"[data] {name} = {size}: expected a whole count (>= 1) or a fraction (< 1)")
        return int(size)
    return int(round(total * size))


def _sentence_groups(pairs: list[tuple[str, str]]) -> dict[int, list[int]]:
    """Connected components of pairs linked by an equal source or an equal target sentence."""
    parent = list(range(len(pairs)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for side in (0, 1):
        first: dict[str, int] = {}
        for i, pair in enumerate(pairs):
            j = first.setdefault(pair[side], i)
            if j != i:
                a, b = find(i), find(j)
                if a != b:
                    parent[max(a, b)] = min(a, b)
    groups: dict[int, list[int]] = {}
    for i in range(len(pairs)):
        groups.setdefault(find(i), []).append(i)
    return groups


def split_pairs(pairs: list[tuple[str, str]], valid_size: float, test_size: float, seed: int,
                need_valid: bool = True, need_test: bool = True) -> dict[str, list[tuple[str, str]]]:
    """Split by sentence group: groups are shuffled by ``seed`` and dealt to test, valid, then
    train. Sizes count groups (a count, or a fraction of all groups)."""
    groups = _sentence_groups(pairs)
    keys = list(groups)
    n_valid = _count(valid_size, len(keys), "valid_size") if need_valid else 0
    n_test = _count(test_size, len(keys), "test_size") if need_test else 0
    if n_valid + n_test >= len(keys):
        raise MlxtError(f"too few examples to split: {len(keys)} distinct sentence groups, "
                        f"{n_valid} for valid and {n_test} for test leave none to train on")
    order = np.random.default_rng(seed).permutation(len(keys))
    parts = {"test": order[:n_test], "valid": order[n_test:n_test + n_valid], "train": order[n_test + n_valid:]}
    out = {}
    for name, idx in parts.items():
        rows = sorted(i for k in idx for i in groups[keys[k]])  # keep corpus order inside a split
        out[name] = [pairs[i] for i in rows]
    if not need_valid:
        del out["valid"]
    if not need_test:
        del out["test"]
    return out


def split_text(text: str, valid_size: float, test_size: float) -> dict[str, str]:
    """Split by position: ``[train | test | valid]``; sizes are fractions of the characters."""
    valid = 0.1 if valid_size < 0 else valid_size
    test = 0.0 if test_size < 0 else test_size
    if valid >= 1 or test >= 1:
        raise MlxtError("[data] valid_size/test_size for lm text: expected fractions below 1")
    n = len(text)
    a = int(n * (1 - valid - test))
    b = int(n * (1 - valid))
    if a <= 0:
        raise MlxtError(f"too few characters to split: {n}")
    out = {"train": text[:a], "valid": text[b:]}
    if test > 0:
        out["test"] = text[a:b]
    return out
