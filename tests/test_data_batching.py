"""Batching: token budget, bucket shapes, every example once per epoch, resume, sharding, LM blocks."""

import json

import numpy as np
import pytest

from mlxt.data.batching import LMBatches, Seq2SeqBatches, TokenizedPairs
from mlxt.data.buckets import bucket_of, bucket_sizes
from mlxt.errors import MlxtError


def _pairs(n=500, seed=0, max_len=60):
    rng = np.random.default_rng(seed)
    # token values encode the example index so batches can be traced back to examples
    src = [np.full(rng.integers(1, max_len), 4 + i, dtype=np.int32) for i in range(n)]
    tgt = [np.full(rng.integers(1, max_len), 4 + i, dtype=np.int32) for i in range(n)]
    return TokenizedPairs(src, tgt)


SIZES = bucket_sizes(64)


def _example_of(row):
    return int(row[0]) - 4


def test_bucket_sizes():
    assert list(bucket_sizes(30)) == [8, 16, 24, 32]
    assert list(bucket_sizes(100, [16, 64])) == [16, 64, 100]
    assert list(bucket_of(np.array([1, 8, 9, 32]), bucket_sizes(32))) == [8, 8, 16, 32]
    with pytest.raises(MlxtError, match="longer than the largest bucket"):
        bucket_of(np.array([33]), bucket_sizes(32))


@pytest.mark.parametrize("joint", [False, True])
def test_every_batch_under_budget_and_every_example_once(joint):
    pairs = _pairs()
    it = Seq2SeqBatches(pairs, max_tokens=1000, sizes=SIZES, seed=5, shuffle=False, joint_buckets=joint)
    seen = []
    for batch in it:
        b, ls = batch["src"].shape
        lt = batch["tgt_in"].shape[1]
        assert b * (ls + lt) <= 1000
        assert ls in SIZES and lt in SIZES
        assert batch["src"].dtype == batch["tgt_in"].dtype == batch["tgt_out"].dtype == np.int32
        for r in range(b):
            i = _example_of(batch["src"][r])
            s, t = pairs.src[i], pairs.tgt[i]
            assert list(batch["src"][r]) == list(s) + [2] + [0] * (ls - len(s) - 1)
            assert list(batch["tgt_in"][r]) == [1] + list(t) + [0] * (lt - len(t) - 1)
            assert list(batch["tgt_out"][r]) == list(t) + [2] + [0] * (lt - len(t) - 1)
            seen.append(i)
    assert sorted(seen) == list(range(len(pairs)))
    assert it.epoch == 0  # shuffle=False: one pass, then StopIteration


def test_training_epochs_reshuffle_and_cover_everything():
    pairs = _pairs(300)
    it = Seq2SeqBatches(pairs, max_tokens=800, sizes=SIZES, seed=1, shuffle=True)
    per_epoch = len(it)
    epochs = []
    for _ in range(2):
        ids = []
        for _ in range(per_epoch):
            batch = next(it)
            ids.append([_example_of(r) for r in batch["src"]])
        epochs.append(ids)
        assert sorted(i for b in ids for i in b) == list(range(300))
    assert epochs[0] != epochs[1]  # reshuffled by seed + epoch
    next(it)
    assert it.epoch == 2


def test_resume_gives_the_same_batches():
    pairs = _pairs(200)
    a = Seq2SeqBatches(pairs, 600, SIZES, seed=9)
    n = len(a)
    for _ in range(n + 3):  # into the second epoch
        next(a)
    state = json.loads(json.dumps(a.state_dict()))
    expected = [next(a) for _ in range(n)]
    b = Seq2SeqBatches(pairs, 600, SIZES, seed=9)
    b.load_state_dict(state)
    for want in expected:
        got = next(b)
        for k in want:
            np.testing.assert_array_equal(got[k], want[k])


def test_state_from_another_configuration_is_rejected():
    a = Seq2SeqBatches(_pairs(50), 600, SIZES, seed=1)
    b = Seq2SeqBatches(_pairs(50), 600, SIZES, seed=2)
    with pytest.raises(MlxtError, match="seed"):
        b.load_state_dict(a.state_dict())


@pytest.mark.parametrize("world_size", [2, 3])
def test_shards_are_disjoint_and_cover_the_global_batch(world_size):
    pairs = _pairs(300)
    ranks = [Seq2SeqBatches(pairs, 900, SIZES, seed=4, shuffle=False, rank=r, world_size=world_size)
             for r in range(world_size)]
    plan = ranks[0]._current_plan()  # the global batches, identical on every rank
    assert all(r._current_plan()[i][0].tolist() == plan[i][0].tolist() for r in ranks for i in range(len(plan)))
    everything = []
    for rows, ls, lt in plan:
        shards = [next(r) for r in ranks]
        ids = [[_example_of(row) for row in s["src"]] for s in shards]
        assert all(s["src"].shape[1] == ls and s["tgt_in"].shape[1] == lt for s in shards)
        if len(rows) >= world_size:
            assert sorted(i for part in ids for i in part) == sorted(rows.tolist())
            assert len({len(part) for part in ids}) == 1 or len(rows) % world_size  # equal shards when divisible
            for x in range(world_size):
                for y in range(x + 1, world_size):
                    assert not set(ids[x]) & set(ids[y])
        everything.extend(rows.tolist())
    assert sorted(everything) == list(range(300))
    for r in ranks:
        with pytest.raises(StopIteration):
            next(r)


def test_joint_buckets_give_few_shapes_and_full_batches():
    pairs = _pairs(2000)
    it = Seq2SeqBatches(pairs, 2048, SIZES, seed=0, shuffle=True, joint_buckets=True)
    shapes, rows = set(), 0
    for _ in range(len(it)):
        b = next(it)
        assert b["src"].shape[1] == b["tgt_in"].shape[1]
        shapes.add(b["src"].shape)
        rows += len(b["src"])
    assert rows == 2000
    assert len(shapes) <= len(SIZES) + 1  # one full shape per bucket, plus the very last rest
    separate = Seq2SeqBatches(pairs, 2048, SIZES, seed=0, shuffle=True, joint_buckets=False)
    separate_shapes = set()
    for _ in range(len(separate)):
        b = next(separate)
        separate_shapes.add((b["src"].shape, b["tgt_in"].shape))
    assert len(separate_shapes) > 2 * len(shapes)


def test_budget_too_small_for_one_example():
    with pytest.raises(MlxtError, match="max_tokens = 20: too small"):
        Seq2SeqBatches(_pairs(10), 20, SIZES)


def test_lm_random_blocks_are_shifted_windows_and_resume():
    tokens = np.arange(10_000, dtype=np.int32)
    it = LMBatches(tokens, batch_size=4, block_size=16, sampling="random", seed=3)
    assert len(it) == (10_000 - 1) // 64
    batch = next(it)
    assert batch["inputs"].shape == batch["targets"].shape == (4, 16)
    np.testing.assert_array_equal(batch["targets"], batch["inputs"] + 1)
    assert np.all(np.diff(batch["inputs"], axis=1) == 1)
    for _ in range(200):
        next(it)
    state = it.state_dict()
    want = [next(it) for _ in range(5)]
    again = LMBatches(tokens, 4, 16, "random", seed=3)
    again.load_state_dict(state)
    for w in want:
        np.testing.assert_array_equal(next(again)["inputs"], w["inputs"])
    other = LMBatches(tokens, 4, 16, "random", seed=4)
    assert not np.array_equal(next(other)["inputs"], batch["inputs"])


def test_lm_contiguous_epoch_visits_every_block_once():
    tokens = np.arange(1000, dtype=np.int32)
    it = LMBatches(tokens, batch_size=8, block_size=10, sampling="contiguous", seed=0, shuffle=True)
    starts = [int(row[0]) for _ in range(len(it)) for row in next(it)["inputs"]]
    assert sorted(starts) == list(range(0, 990, 10))


def test_lm_evaluation_pass_is_in_order_and_sharded():
    tokens = np.arange(1000, dtype=np.int32)
    full = list(LMBatches(tokens, 8, 10, shuffle=False))
    starts = [int(row[0]) for b in full for row in b["inputs"]]
    assert starts == list(range(0, 990, 10))
    shards = [list(LMBatches(tokens, 8, 10, shuffle=False, rank=r, world_size=2)) for r in range(2)]
    for g, a, b in zip(full, *shards):
        np.testing.assert_array_equal(np.concatenate([a["inputs"], b["inputs"]]), g["inputs"])


def test_lm_text_shorter_than_a_block():
    with pytest.raises(MlxtError, match="block_size = 64"):
        LMBatches(np.arange(10), 2, 64)


def test_bad_rank():
    with pytest.raises(MlxtError, match="rank 2 / world_size 2"):
        LMBatches(np.arange(100), 2, 8, rank=2, world_size=2)
