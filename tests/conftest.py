"""Shared test fixtures: keep this small and generic."""

from __future__ import annotations

import os
from pathlib import Path

import mlxt  # noqa: F401  (imported first: routes MLX to the fast BLAS before mlx.core loads)
import mlx.core as mx
import numpy as np
import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def repo_root() -> Path:
    """The repository checkout (holds `examples/`, `configs/`, ...)."""
    return REPO_ROOT


@pytest.fixture
def shared_data() -> Path:
    """``<repo>/../shared/data`` (or ``$MLXT_SHARED_DATA``); skips the test when it is absent."""
    path = Path(os.environ.get("MLXT_SHARED_DATA", REPO_ROOT.parent / "shared" / "data"))
    if not path.is_dir():
        pytest.skip(f"shared data not found at {path} (set MLXT_SHARED_DATA)")
    return path


@pytest.fixture
def rng() -> np.random.Generator:
    """A seeded numpy generator, so each test sees the same random inputs on every run."""
    mx.random.seed(0)
    return np.random.default_rng(0)
