"""Importers of foreign checkpoints into mlxt run directories.

`convert(src, out_dir)` reads a Hugging Face model directory (or Hub id), recognises its
architecture from ``config.json`` and writes a run directory that `mlxt translate`/`evaluate`
load like any trained run. Supported: MarianMT (``model_type: marian``, the opus-mt family).
"""

from __future__ import annotations

from pathlib import Path

from mlxt.convert.hf_checkpoint import locate, read_json
from mlxt.convert.marian import convert_marian
from mlxt.errors import MlxtError

CONVERTERS = {"marian": convert_marian}


def convert(src: str | Path, out_dir: str | Path) -> Path:
    """Convert the model at ``src`` (directory or Hub id) into the run directory ``out_dir``."""
    directory = locate(str(src))
    model_type = read_json(directory / "config.json").get("model_type")
    if model_type not in CONVERTERS:
        raise MlxtError(
            f"{directory / 'config.json'}: 'model_type' {model_type!r} is not supported; "
            f"supported: {', '.join(CONVERTERS)}"
        )
    return CONVERTERS[model_type](directory, out_dir)


__all__ = ["convert", "convert_marian", "CONVERTERS"]
