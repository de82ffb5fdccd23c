"""Synthetic continuous data for the regression model kind (``[data] corpus = "synthetic-sines"``).

A noisy multi-frequency time series: each of ``channels`` channels is a sum of
``num_components`` sines with random frequencies, phases and amplitudes (fixed by ``seed``) plus
Gaussian noise. Training examples are windows of ``window`` past values; the targets are the
same windows shifted by one step, so a causal model learns next-value prediction at every
position. The last ``valid_size`` fraction of the series is the validation split.

The training iterator draws random window offsets from a generator seeded by
``(seed, batch index)``, so its whole state is the batch index and a resumed run sees exactly
the batches an uninterrupted one would.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mlxt.errors import MlxtError

CORPORA = ("synthetic-sines",)


@dataclass
class SeriesConfig:
    """``[data]`` for ``kind = "regression"``."""

    corpus: str = "synthetic-sines"
    length: int = 20000
    channels: int = 1
    num_components: int = 3
    noise: float = 0.05
    window: int = 64
    batch_size: int = 32
    valid_size: float = 0.1
    seed: int = 1234

    def __post_init__(self) -> None:
        if self.corpus not in CORPORA:
            raise MlxtError(f"[data] corpus = {self.corpus!r}: expected one of {', '.join(CORPORA)}")
        for key in ("length", "channels", "num_components", "window", "batch_size"):
            if getattr(self, key) <= 0:
                raise MlxtError(f"[data] {key} = {getattr(self, key)}: expected a positive integer")
        if not 0 < self.valid_size < 1:
            raise MlxtError(f"[data] valid_size = {self.valid_size}: expected a fraction in (0, 1)")
        if self.noise < 0:
            raise MlxtError(f"[data] noise = {self.noise}: expected >= 0")
        if self.length * min(self.valid_size, 1 - self.valid_size) < self.window + 2:
            raise MlxtError(f"[data] length = {self.length}: too short for window {self.window} in each split")


def make_series(config: SeriesConfig) -> np.ndarray:
    """``(length, channels)`` float32 series."""
    rng = np.random.default_rng(config.seed)
    t = np.arange(config.length, dtype=np.float64)[:, None, None]
    shape = (1, config.channels, config.num_components)
    periods = rng.uniform(8.0, 200.0, shape)
    phases = rng.uniform(0.0, 2 * np.pi, shape)
    amplitudes = rng.uniform(0.2, 1.0, shape)
    clean = (amplitudes * np.sin(2 * np.pi * t / periods + phases)).sum(axis=-1)
    return (clean + config.noise * rng.standard_normal(clean.shape)).astype(np.float32)


class SeriesBatches:
    """Batches ``{"inputs": (B, T, C), "targets": (B, T, C)}`` (float32) of one split.

    Training (``shuffle=True``): endless random windows; evaluation: one pass over consecutive
    non-overlapping windows. With ``world_size > 1`` rank ``r`` gets the windows
    ``np.array_split(windows, world_size)[r]`` of every global batch (data-parallel training)."""

    def __init__(self, series: np.ndarray, config: SeriesConfig, seed: int, shuffle: bool, rank: int = 0,
                 world_size: int = 1):
        self.series, self.config, self.seed, self.shuffle = series, config, seed, shuffle
        self.rank, self.world_size = rank, world_size
        self.position = 0
        self.num_windows = len(series) - config.window  # valid start offsets

    @property
    def epoch(self) -> int:
        per_epoch = max(1, self.num_windows // self.config.batch_size)
        return self.position // per_epoch

    def state_dict(self) -> dict:
        return {"epoch": self.epoch, "position": self.position}

    def load_state_dict(self, state: dict) -> None:
        self.position = int(state["position"])

    def _batch(self, starts: np.ndarray) -> dict:
        if self.world_size > 1:
            starts = (np.array_split(starts, self.world_size)[self.rank] if len(starts) >= self.world_size
                      else starts[[self.rank % len(starts)]])
        idx = starts[:, None] + np.arange(self.config.window + 1)[None, :]
        windows = self.series[idx]
        return {"inputs": windows[:, :-1], "targets": windows[:, 1:]}

    def __iter__(self):
        return self

    def __next__(self) -> dict:
        cfg = self.config
        if not self.shuffle:  # one pass over consecutive windows
            start = self.position * cfg.batch_size * cfg.window
            if start >= self.num_windows:
                raise StopIteration
            self.position += 1
            stop = min(start + cfg.batch_size * cfg.window, self.num_windows)
            return self._batch(np.arange(start, stop, cfg.window))
        rng = np.random.default_rng([self.seed, self.position])
        self.position += 1
        return self._batch(rng.integers(0, self.num_windows, cfg.batch_size))


class SeriesData:
    """The synthetic dataset, shaped like `mlxt.data.prepare.PreparedData` (no tokenizers)."""

    def __init__(self, config: SeriesConfig):
        self.config = config
        series = make_series(config)
        cut = int(len(series) * (1 - config.valid_size))
        self.splits = {"train": series[:cut], "valid": series[cut:]}
        self.tokenizers: dict = {}
        self.texts: dict = {}

    def save_tokenizers(self, directory) -> None:
        pass

    def batches(self, split: str, seed: int = 0, shuffle: bool = True, rank: int = 0,
                world_size: int = 1) -> SeriesBatches:
        if split not in self.splits:
            raise MlxtError(f"synthetic series: no split {split!r}; available: {', '.join(self.splits)}")
        return SeriesBatches(self.splits[split], self.config, seed, shuffle, rank, world_size)
