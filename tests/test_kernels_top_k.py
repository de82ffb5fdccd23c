"""mlxt's native top-k kernel (beam search's candidate cut) against numpy and PyTorch: the k
largest of each row, best first, ties to the lower index, NaN ranked lowest; every
instruction set, any thread count, the same result."""

from __future__ import annotations

import numpy as np
import pytest

from kernel_utils import native_kernels  # noqa: F401  (autouse: kernels on, threads restored)
from mlxt import kernels

torch = pytest.importorskip("torch")


def reference(x: np.ndarray, k: int):
    """Stable descending sort of each row with NaN as the lowest value, cut to k."""
    key = np.where(np.isnan(x), -np.inf, x)
    order = np.lexsort((np.isnan(x), -key), axis=-1)[:, :k]  # NaN after -inf: ranks lowest
    return np.take_along_axis(x, order, axis=-1), order


@pytest.mark.parametrize("rows,length,k", [(128, 58101, 8), (5, 17, 3), (3, 16, 16), (1, 1, 1),
                                           (7, 33, 1), (2, 100, 31), (0, 10, 2), (9, 15, 15)])
def test_matches_a_stable_sort(rows, length, k):
    rng = np.random.default_rng(rows * 1000 + length + k)
    x = (3 * rng.standard_normal((rows, length))).astype(np.float32)
    if rows >= 4 and length >= 8:
        x[0, ::3] = -np.inf             # banned tokens
        x[1, :] = -np.inf               # a row with nothing allowed
        x[2, 1::2] = x[2, 0]            # many exact ties
        x[3, 4] = np.nan
        x[3, 6] = np.inf
    values, indices = kernels.top_k(x, k)
    want_values, want_indices = reference(x, k)
    assert values.dtype == np.float32 and indices.dtype == np.int32
    assert values.shape == indices.shape == (rows, k)
    assert np.array_equal(indices, want_indices)
    assert np.array_equal(values, want_values, equal_nan=True)


def test_matches_torch_topk_on_distinct_values():
    rng = np.random.default_rng(0)
    x = rng.permutation(40 * 999).reshape(40, 999).astype(np.float32) / 7
    values, indices = kernels.top_k(x, 10)
    t_values, t_indices = torch.topk(torch.from_numpy(x), 10, dim=-1, largest=True, sorted=True)
    assert np.array_equal(values, t_values.numpy())
    assert np.array_equal(indices, t_indices.numpy().astype(np.int32))


def test_non_contiguous_input():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((50, 64)).astype(np.float32)
    view = x[::2, 3:]
    values, indices = kernels.top_k(view, 5)
    assert np.array_equal(indices, reference(view, 5)[1])


def test_same_result_for_any_thread_count():
    x = np.random.default_rng(2).standard_normal((61, 3001)).astype(np.float32)
    results = []
    for n in (1, 2, 3):
        kernels.set_num_threads(n)
        results.append(kernels.top_k(x, 9))
    for values, indices in results[1:]:
        assert values.tobytes() == results[0][0].tobytes()
        assert indices.tobytes() == results[0][1].tobytes()


def test_off_or_unsupported_input_returns_none(monkeypatch):
    x = np.zeros((2, 5), np.float32)
    assert kernels.top_k(x, 0) is None and kernels.top_k(x, 6) is None
    assert kernels.top_k(x.astype(np.float64), 2) is None
    monkeypatch.setenv("MLXT_KERNELS", "0")
    assert kernels.top_k(x, 2) is None
