"""Helpers shared by the tests of mlxt's native kernels (tests/test_kernels_*.py)."""

from __future__ import annotations

import mlx.core as mx
import numpy as np
import pytest

from mlxt import kernels


@pytest.fixture(autouse=True)
def native_kernels(monkeypatch):
    """Kernels on (whatever the environment says), and the thread count restored afterwards."""
    monkeypatch.delenv("MLXT_KERNELS", raising=False)
    assert kernels.use_native(), f"native kernels not available: {kernels.status()['reason']}"
    threads = kernels.num_threads()
    yield
    kernels.set_num_threads(threads)


def np32(a) -> np.ndarray:
    return np.array(a.astype(mx.float32))


def at_threads(n: int, fn):
    """fn() evaluated with the kernels on n threads, as numpy arrays."""
    kernels.set_num_threads(n)
    out = fn()
    out = out if isinstance(out, (tuple, list)) else [out]
    mx.eval(*out)
    return [np32(o) for o in out]


def assert_same_for_thread_counts(fn, counts=(1, 2, 3)):
    """Bitwise equal results for every thread count."""
    first = at_threads(counts[0], fn)
    for n in counts[1:]:
        for a, b in zip(first, at_threads(n, fn)):
            assert a.tobytes() == b.tobytes(), f"result differs between 1 and {n} threads"


def torch_tensor(a: np.ndarray, grad: bool = False):
    import torch

    return torch.tensor(np.ascontiguousarray(a), requires_grad=grad)
