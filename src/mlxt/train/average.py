"""Checkpoint averaging: the element-wise mean of the weights of a run's last N checkpoints,
a cheap and reliable gain for translation models (as in "Attention Is All You Need")."""

from __future__ import annotations

from pathlib import Path

import mlx.core as mx

from mlxt import guard
from mlxt.errors import MlxtError
from mlxt.model import ModelConfig
from mlxt.train import checkpoint as ckpt
from mlxt.train import rundir


def average_weights(paths: list[Path]) -> dict[str, mx.array]:
    """Mean of the ``model.safetensors`` of ``paths`` (all must hold the same tensors)."""
    total: dict[str, mx.array] = {}
    dtypes: dict[str, mx.Dtype] = {}
    for path in paths:
        weights = ckpt.read_safetensors(path / ckpt.MODEL_FILE, "weights", missing="missing model weights")
        if total and weights.keys() != total.keys():
            raise MlxtError(f"{path}: holds different tensors than {paths[0]}; cannot average")
        for k, v in weights.items():
            if k in total and v.shape != total[k].shape:
                raise MlxtError(f"{path}: tensor '{k}' has shape {tuple(v.shape)}, {paths[0]} has "
                                f"{tuple(total[k].shape)}")
            dtypes.setdefault(k, v.dtype)
            total[k] = total[k] + v.astype(mx.float32) if k in total else v.astype(mx.float32)
        mx.eval(total)
    return {k: (v / len(paths)).astype(dtypes[k]) for k, v in total.items()}


def average_run(run_dir: str | Path, last: int, out_dir: str | Path | None = None) -> Path:
    """Average the last ``last`` checkpoints of ``run_dir``. Writes ``checkpoints/avg-last-N``
    in the run (loadable with ``checkpoint="avg-last-N"``) or, with ``out_dir``, a new
    inference-only run directory. Returns the written path."""
    run_dir = Path(run_dir)
    if last < 1:
        raise MlxtError(f"--last {last}: expected a positive number of checkpoints")
    found = ckpt.list_checkpoints(run_dir / rundir.CHECKPOINTS)
    if not found:
        raise MlxtError(f"{run_dir}: no checkpoints to average")
    if len(found) < last:
        raise MlxtError(f"{run_dir}: asked for the last {last} checkpoints but there are {len(found)} "
                        f"(raise [train] keep_last to keep more)")
    if out_dir is not None:
        out_dir = guard.check_new_run_dir(out_dir, "--output")
    paths = [p for _, p in found[-last:]]
    config = ModelConfig.load(paths[-1] / ckpt.CONFIG_FILE)
    loaded = rundir.load_run(run_dir, paths[-1].name)  # checks the model and tokenizers
    loaded.model.load_weights(list(average_weights(paths).items()))
    steps = [int(p.name.split("-")[1]) for p in paths]
    state = {"epoch": 0, "averaged_steps": steps, "metrics": {}}
    if out_dir is not None:
        return rundir.write_inference_run(out_dir, loaded.model, config, loaded.tokenizers, loaded.run_config)
    return ckpt.write_checkpoint(run_dir / rundir.CHECKPOINTS, steps[-1], loaded.model, config, state,
                                 name=f"avg-last-{last}")
