"""Resumable batch iterators: token-budget seq2seq batches and language-model blocks.

Both are pure functions of (data, settings, seed, epoch, position): the batches of an epoch are
planned from ``seed + epoch``, so ``state_dict()`` only records the epoch and the index of the
next batch, and ``load_state_dict`` restarts at exactly that batch.

Sharding: the config describes the *global* batch; with ``world_size > 1`` each rank yields the
rows ``np.array_split(rows, world_size)[rank]`` of every global batch, so ranks see disjoint
shards and together see the global batch. (A global batch with fewer rows than ranks -- only
possible for a tiny final group -- gives the rows it lacks to ranks by wrapping around.)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mlxt.errors import MlxtError

from .buckets import bucket_of
from .tokenizers.base import BOS_ID, EOS_ID, PAD_ID


def _shard_rows(rows: np.ndarray, rank: int, world_size: int) -> np.ndarray:
    if world_size == 1:
        return rows
    if len(rows) >= world_size:
        return np.array_split(rows, world_size)[rank]
    return rows[[rank % len(rows)]]


def _check_rank(rank: int, world_size: int) -> None:
    if world_size < 1 or not 0 <= rank < world_size:
        raise MlxtError(f"rank {rank} / world_size {world_size}: expected 0 <= rank < world_size")


class BatchIterator:
    """Common iteration and resume logic. Subclasses plan an epoch as a list of batches."""

    kind = ""

    def __init__(self, seed: int, shuffle: bool, rank: int, world_size: int):
        _check_rank(rank, world_size)
        self.seed, self.shuffle, self.rank, self.world_size = int(seed), bool(shuffle), rank, world_size
        self.epoch = 0
        self.position = 0  # index of the next batch within the epoch
        self._plan: list | None = None
        self._plan_epoch = -1

    # -- to implement -------------------------------------------------------------------
    def _plan_epoch_batches(self, epoch: int) -> list:
        raise NotImplementedError

    def _make_batch(self, planned) -> dict[str, np.ndarray]:
        raise NotImplementedError

    # -- iteration ----------------------------------------------------------------------
    def _current_plan(self) -> list:
        if self._plan_epoch != self.epoch:
            self._plan = self._plan_epoch_batches(self.epoch)
            self._plan_epoch = self.epoch
        return self._plan

    def __len__(self) -> int:
        """Batches in one epoch."""
        return len(self._current_plan())

    def __iter__(self):
        return self

    def __next__(self) -> dict[str, np.ndarray]:
        plan = self._current_plan()
        if self.position >= len(plan):
            if not self.shuffle:
                raise StopIteration
            self.epoch += 1
            self.position = 0
            plan = self._current_plan()
            if not plan:
                raise StopIteration
        batch = self._make_batch(plan[self.position])
        self.position += 1
        return batch

    def state_dict(self) -> dict:
        return {"kind": self.kind, "epoch": self.epoch, "position": self.position, "seed": self.seed,
                "shuffle": self.shuffle, "rank": self.rank, "world_size": self.world_size}

    def load_state_dict(self, state: dict) -> None:
        for key in ("kind", "seed", "world_size"):
            if key in state and state[key] != getattr(self, key):
                raise MlxtError(f"data iterator state: {key} = {state[key]!r} does not match "
                                f"this iterator's {getattr(self, key)!r}")
        self.epoch = int(state["epoch"])
        self.position = int(state["position"])


@dataclass
class TokenizedPairs:
    """Token ids of parallel examples, without bos/eos: ``src[i]``, ``tgt[i]`` as int32 arrays."""

    src: list[np.ndarray]
    tgt: list[np.ndarray]

    def __len__(self) -> int:
        return len(self.src)


class Seq2SeqBatches(BatchIterator):
    """Token-budget batches of ``{"src", "tgt_in", "tgt_out"}``.

    A sequence's length counts eos (source) or bos/eos (target): ``len(x) + 1``. Source and
    target are padded to bucket sizes -- with ``joint_buckets`` both to the bucket of the longer
    of the two, so a batch has shape ``(B, L)`` for both sides and there are as few shapes as
    buckets. ``max_tokens`` bounds padded source plus padded target tokens:
    ``B * (Ls + Lt) <= max_tokens``, with ``B = max_tokens // (Ls + Lt)`` (rounded down to a
    multiple of ``world_size`` when possible, so every rank gets the same number of rows).
    Examples longer than the largest bucket must have been truncated or dropped before.

    Each epoch: shuffle examples by ``seed + epoch``, group them by bucket shape, cut each group
    into full batches, carry the rest of a group into the next larger shape (padding them a
    little more, so nearly all batches are full and the shapes repeat), and shuffle the batch
    order. Without shuffle, examples keep corpus order within each group and batches come in
    shape order.
    """

    kind = "seq2seq"

    def __init__(self, pairs: TokenizedPairs, max_tokens: int, sizes: np.ndarray, seed: int = 0,
                 shuffle: bool = True, rank: int = 0, world_size: int = 1, joint_buckets: bool = True):
        super().__init__(seed, shuffle, rank, world_size)
        self.pairs, self.max_tokens, self.sizes = pairs, int(max_tokens), np.asarray(sizes)
        src_len = np.fromiter((len(s) + 1 for s in pairs.src), dtype=np.int64, count=len(pairs))
        tgt_len = np.fromiter((len(t) + 1 for t in pairs.tgt), dtype=np.int64, count=len(pairs))
        if joint_buckets:
            src_len = tgt_len = np.maximum(src_len, tgt_len)
        self.src_bucket = bucket_of(src_len, self.sizes)
        self.tgt_bucket = bucket_of(tgt_len, self.sizes)
        smallest = int((self.src_bucket + self.tgt_bucket).max()) if len(pairs) else 0
        if smallest > self.max_tokens:
            raise MlxtError(f"[data] max_tokens = {max_tokens}: too small for one example padded to "
                            f"{smallest} tokens (source + target); raise max_tokens or lower max_len")

    def _rows_per_batch(self, ls: int, lt: int) -> int:
        per = max(1, self.max_tokens // (ls + lt))
        if per >= self.world_size:
            per -= per % self.world_size
        return per

    def _plan_epoch_batches(self, epoch: int) -> list:
        n = len(self.pairs)
        if self.shuffle:
            rng = np.random.default_rng([self.seed, epoch])
            order = rng.permutation(n)
        else:
            rng, order = None, np.arange(n)
        key = self.src_bucket[order] * (int(self.sizes[-1]) + 1) + self.tgt_bucket[order]
        order = order[np.argsort(key, kind="stable")]
        key = np.sort(key, kind="stable")
        starts = np.flatnonzero(np.r_[True, key[1:] != key[:-1]]) if n else np.zeros(0, np.int64)
        ends = list(starts[1:]) + [n]
        batches = []
        carry, carry_shape = order[:0], (0, 0)
        for a, b in zip(starts, ends):
            ls, lt = int(self.src_bucket[order[a]]), int(self.tgt_bucket[order[a]])
            rows = order[a:b]
            if len(carry) and carry_shape[0] <= ls and carry_shape[1] <= lt:
                rows = np.concatenate([carry, rows])  # pad last group's rest to this shape
            elif len(carry):
                batches.append((carry, *carry_shape))
            per = self._rows_per_batch(ls, lt)
            full = len(rows) // per * per
            batches.extend((rows[s:s + per], ls, lt) for s in range(0, full, per))
            carry, carry_shape = rows[full:], (ls, lt)
        if len(carry):
            batches.append((carry, *carry_shape))
        if self.shuffle:
            perm = rng.permutation(len(batches))
            batches = [batches[i] for i in perm]
        return batches

    def _make_batch(self, planned) -> dict[str, np.ndarray]:
        rows, ls, lt = planned
        rows = _shard_rows(rows, self.rank, self.world_size)
        b = len(rows)
        src = np.full((b, ls), PAD_ID, dtype=np.int32)
        tgt_in = np.full((b, lt), PAD_ID, dtype=np.int32)
        tgt_out = np.full((b, lt), PAD_ID, dtype=np.int32)
        for r, i in enumerate(rows):
            s, t = self.pairs.src[i], self.pairs.tgt[i]
            src[r, :len(s)] = s
            src[r, len(s)] = EOS_ID
            tgt_in[r, 0] = BOS_ID
            tgt_in[r, 1:len(t) + 1] = t
            tgt_out[r, :len(t)] = t
            tgt_out[r, len(t)] = EOS_ID
        return {"src": src, "tgt_in": tgt_in, "tgt_out": tgt_out}

    def example_ids(self, planned) -> np.ndarray:
        """Indices (into the split) of this rank's rows of a planned batch (for tests/tools)."""
        return _shard_rows(planned[0], self.rank, self.world_size)


class LMBatches(BatchIterator):
    """Blocks ``{"inputs": (B, T), "targets": (B, T)}`` of one token stream, targets shifted by one.

    ``random`` (nanoGPT): each global batch takes ``batch_size`` offsets drawn uniformly by
    ``(seed, epoch, batch index)``; an epoch is ``(N - 1) // (batch_size * T)`` batches.
    ``contiguous``: the stream is cut into non-overlapping blocks; an epoch visits each block
    once (shuffled by ``seed + epoch`` when ``shuffle``), the last batch may be smaller and
    the final partial block (fewer than ``T + 1`` tokens) is not used.
    Without shuffle (evaluation) the blocks are always contiguous and in order.
    """

    kind = "lm"

    def __init__(self, tokens: np.ndarray, batch_size: int, block_size: int, sampling: str = "random",
                 seed: int = 0, shuffle: bool = True, rank: int = 0, world_size: int = 1):
        super().__init__(seed, shuffle, rank, world_size)
        self.tokens = np.asarray(tokens, dtype=np.int32)
        self.batch_size, self.block_size, self.sampling = int(batch_size), int(block_size), sampling
        if len(self.tokens) < self.block_size + 1:
            raise MlxtError(f"[data] block_size = {block_size}: the text has only {len(self.tokens)} tokens, "
                            f"expected at least block_size + 1")

    def _plan_epoch_batches(self, epoch: int) -> list:
        n, t, bs = len(self.tokens), self.block_size, self.batch_size
        if self.shuffle and self.sampling == "random":
            steps = max(1, (n - 1) // (bs * t))
            return [("random", epoch, i) for i in range(steps)]
        starts = np.arange(0, n - t, t, dtype=np.int64)  # block needs t + 1 tokens
        if self.shuffle:
            starts = starts[np.random.default_rng([self.seed, epoch]).permutation(len(starts))]
        return [("offsets", starts[i:i + bs]) for i in range(0, len(starts), bs)]

    def _offsets(self, planned) -> np.ndarray:
        if planned[0] == "random":
            _, epoch, i = planned
            rng = np.random.default_rng([self.seed, epoch, i])
            return rng.integers(0, len(self.tokens) - self.block_size, size=self.batch_size)
        return planned[1]

    def _make_batch(self, planned) -> dict[str, np.ndarray]:
        offsets = _shard_rows(self._offsets(planned), self.rank, self.world_size)
        idx = offsets[:, None] + np.arange(self.block_size + 1)[None, :]
        block = self.tokens[idx]
        return {"inputs": np.ascontiguousarray(block[:, :-1]), "targets": np.ascontiguousarray(block[:, 1:])}
