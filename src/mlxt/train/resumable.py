"""Can this config continue that checkpoint? ``--resume`` refuses a changed model or data.

A resumed run loads the checkpoint's weights into a model built from the run's config.toml
(after ``--set``). Weights of the same shapes load into a model with, say, a different
``num_heads`` or ``activation`` without complaint, and a changed ``[data]`` setting changes the
batches: either way the run would silently continue as a different experiment. So every
``[model]`` field must equal the checkpoint's ``config.json`` and every ``[data]`` field the
checkpoint's saved config; ``[train]`` settings (lr, steps, max_minutes, eval_every, ...) may
change.
"""

from __future__ import annotations

from pathlib import Path

from mlxt.errors import MlxtError
from mlxt.model import ModelConfig
from mlxt.schema import to_dict

# Sizes filled in from the data when the config leaves them out.
_FILLED = ("vocab_size", "src_vocab_size", "input_dim", "output_dim")
# [data] keys that say where the files come from, not what is in them.
_DATA_LOCATION = ("source",)


def _differences(old: dict, new: dict, section: str, skip=()) -> list[str]:
    keys = sorted((set(old) | set(new)) - set(skip))
    return [f"[{section}] {k}: {old.get(k)!r} -> {new.get(k)!r}" for k in keys if old.get(k) != new.get(k)]


def check_resumable(config, checkpoint: Path, state: dict) -> None:
    """Raise `MlxtError` naming every ``[model]``/``[data]`` field of ``config`` (a `RunConfig`)
    that differs from what ``checkpoint`` was trained with."""
    saved_model = ModelConfig.load(Path(checkpoint) / "config.json")
    fill = {k: getattr(saved_model, k) for k in _FILLED if hasattr(saved_model, k)}
    new_model = config.model_config(**fill)
    diffs = _differences(saved_model.to_dict(), new_model.to_dict(), "model")
    saved_data = state.get("config", {}).get("data")
    if saved_data is not None:
        diffs += _differences(saved_data, to_dict(config.data), "data", skip=_DATA_LOCATION)
    if diffs:
        raise MlxtError(f"{checkpoint}: cannot resume with a changed model or data ({'; '.join(diffs)}); "
                        "change them back, or start a new run with --config")
