"""What a training run starts from: its data, the filled-in model config, and the RNG key.

The global MLX random key (dropout) is part of every checkpoint so a resumed run draws the same
masks; `rng_state`/`set_rng_state` read and restore it.
"""

from __future__ import annotations

import mlx.core as mx
import numpy as np

from mlxt.errors import MlxtError
from mlxt.model import ModelConfig
from mlxt.train import rundir
from mlxt.train.config import RunConfig


def prepare(config: RunConfig):
    """The data object for ``config`` (`PreparedData`, or `SeriesData` for regression)."""
    if config.kind == "regression":
        from mlxt.data.series import SeriesData

        return SeriesData(config.data)
    from mlxt.data.prepare import prepare_data

    return prepare_data(config.data, config.kind)


def model_config_for(config: RunConfig, data) -> ModelConfig:
    """``[model]`` with the sizes the data decides (vocabularies, feature sizes) filled in."""
    toks = data.tokenizers
    if config.kind == "seq2seq":
        fill = {"vocab_size": toks["tgt"].vocab_size}
        if toks["src"] is not toks["tgt"]:
            fill["src_vocab_size"] = toks["src"].vocab_size
        needed, what = config.data.max_len, "[data] max_len"
    elif config.kind == "lm":
        fill = {"vocab_size": toks["text"].vocab_size}
        needed, what = config.data.block_size, "[data] block_size"
    else:
        fill = {"input_dim": config.data.channels, "output_dim": config.data.channels}
        needed, what = config.data.window, "[data] window"
    model_config = config.model_config(**fill)
    rundir.check_vocabularies(model_config, toks, "[model] vocab_size")
    if model_config.positional in ("learned", "sinusoidal") and model_config.max_len < needed:
        raise MlxtError(f"[model] max_len = {model_config.max_len} is shorter than {what} = {needed}")
    return model_config


def same_tokenizers(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(a[k].to_dict() == b[k].to_dict() for k in a)


def targets(batch: dict) -> int:
    """Target tokens (or values) of a batch, for tokens/s."""
    if "tgt_out" in batch:
        return int(np.count_nonzero(batch["tgt_out"]))
    return int(batch["targets"].size)


def rng_state() -> list[int]:
    return [int(v) for v in np.array(mx.random.state[0]).tolist()]


def set_rng_state(key: list[int]) -> None:
    # MLX has no setter for the global key, but seed(s) sets it to key(s) = [s >> 32, s & 0xffffffff].
    mx.random.seed((int(key[0]) << 32) | int(key[1]))
