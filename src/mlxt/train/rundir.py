"""Run directories: what `mlxt train` writes and what decoding, evaluation and conversion read.

::

    RUN_DIR/
      config.toml        the effective config ([model], [data], [train])
      tokenizer/         shared.json, or src.json + tgt.json (seq2seq); tokenizer.json (lm)
      checkpoints/       step-XXXXXXXX/ (see `mlxt.train.checkpoint`) and the ``best`` link
      metrics.jsonl      one JSON object per logged step / evaluation
      curves.png         loss and learning-rate curves
      .lock              held while a training process writes here

`load_run` gives a ready-to-use model; `write_inference_run` writes a minimal run directory
for a model that was not trained here (a converted checkpoint).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from mlxt.errors import MlxtError
from mlxt.model import ModelConfig, build_model, pack_for_inference
from mlxt.train import checkpoint as ckpt
from mlxt.train.tomlio import read_toml, write_toml

CONFIG_TOML = "config.toml"
TOKENIZER_DIR = "tokenizer"
CHECKPOINTS = "checkpoints"
METRICS = "metrics.jsonl"
CURVES = "curves.png"
LOCK = ".lock"


# -- tokenizers --------------------------------------------------------------------------------
def save_tokenizers(tokenizers: dict, directory: str | Path) -> None:
    """Write ``{"src", "tgt"}`` (``shared.json`` when they are one object) or ``{"text"}``."""
    directory = Path(directory)
    if not tokenizers:
        return
    directory.mkdir(parents=True, exist_ok=True)
    if "text" in tokenizers:
        tokenizers["text"].save(directory / "tokenizer.json")
    elif "src" in tokenizers and "tgt" in tokenizers:
        if tokenizers["src"] is tokenizers["tgt"]:
            tokenizers["src"].save(directory / "shared.json")
        else:
            tokenizers["src"].save(directory / "src.json")
            tokenizers["tgt"].save(directory / "tgt.json")
    elif tokenizers:
        raise ValueError(f"tokenizers must be {{'src', 'tgt'}} or {{'text'}}, got {sorted(tokenizers)}")


def load_tokenizers(directory: str | Path) -> dict:
    """Read back what `save_tokenizers` wrote (an empty dict when there is no tokenizer)."""
    directory = Path(directory)
    if not directory.is_dir() or not any(directory.glob("*.json")):
        return {}
    from mlxt.data.tokenizers import load_tokenizer

    if (directory / "tokenizer.json").exists():
        return {"text": load_tokenizer(directory / "tokenizer.json")}
    if (directory / "shared.json").exists():
        shared = load_tokenizer(directory / "shared.json")
        return {"src": shared, "tgt": shared}
    if (directory / "src.json").exists() or (directory / "tgt.json").exists():
        for name in ("src.json", "tgt.json"):
            if not (directory / name).exists():
                raise MlxtError(f"{directory / name}: missing tokenizer file")
        return {"src": load_tokenizer(directory / "src.json"), "tgt": load_tokenizer(directory / "tgt.json")}
    return {}


def check_vocabularies(config: ModelConfig, tokenizers: dict, where: str) -> None:
    """Every id a tokenizer can produce must be a row of the model's embedding."""
    if config.kind == "regression":
        return
    if not tokenizers:
        raise MlxtError(f"{where}: no tokenizer files for a {config.kind} model")
    pairs = (
        [("text", config.vocab_size)]
        if config.kind == "lm"
        else [("src", config.source_vocab_size), ("tgt", config.vocab_size)]
    )
    for name, model_vocab in pairs:
        if name not in tokenizers:
            raise MlxtError(f"{where}: no '{name}' tokenizer for a {config.kind} model")
        size = tokenizers[name].vocab_size
        if size > model_vocab:
            raise MlxtError(
                f"{where}: the {name} tokenizer has {size} tokens but the model's vocabulary has {model_vocab}"
            )


# -- loading -------------------------------------------------------------------------------------
@dataclass
class LoadedRun:
    """A model ready for decoding (``model.eval()``), with its tokenizers and configs."""

    model: object
    config: ModelConfig
    tokenizers: dict
    run_config: dict
    path: Path
    checkpoint: Path
    state: dict = field(default_factory=dict)


def resolve_checkpoint(run_dir: Path, checkpoint: str | int | None = "best") -> Path:
    """``"best"`` (falling back to the newest when no best was recorded), ``"last"``/``"latest"``,
    a step number, ``"step-N"``, or a checkpoint directory path."""
    root = run_dir / CHECKPOINTS
    if not root.is_dir():
        raise MlxtError(f"{run_dir}: not a run directory (no {CHECKPOINTS}/)")
    if checkpoint is None or checkpoint == "best":
        path = ckpt.best_checkpoint(root) or ckpt.latest_checkpoint(root)
    elif checkpoint in ("last", "latest"):
        path = ckpt.latest_checkpoint(root)
    elif isinstance(checkpoint, int) or str(checkpoint).isdigit():
        path = root / ckpt.step_name(int(checkpoint))
    elif (root / str(checkpoint)).is_dir():
        path = root / str(checkpoint)
    else:
        path = Path(checkpoint)
    if path is None:
        raise MlxtError(f"{root}: no checkpoint found")
    if not path.is_dir():
        raise MlxtError(f"{path}: checkpoint not found")
    return path


def load_run(run_dir: str | Path, checkpoint: str | int | None = "best", inference: bool = False) -> LoadedRun:
    """Build the model of a run directory from a checkpoint, check it and load its weights.

    ``inference=True`` (translate, generate, evaluate, serve) also packs the linear layers for
    the CPU kernels (`mlxt.model.pack_for_inference`); such a model cannot be trained."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise MlxtError(f"{run_dir}: run directory not found")
    path = resolve_checkpoint(run_dir, checkpoint)
    state = ckpt.read_state(path)
    config = ModelConfig.load(path / ckpt.CONFIG_FILE)
    run_config = read_toml(run_dir / CONFIG_TOML) if (run_dir / CONFIG_TOML).exists() else {}
    tokenizers = load_tokenizers(run_dir / TOKENIZER_DIR)
    check_vocabularies(config, tokenizers, str(run_dir / TOKENIZER_DIR))
    model = build_model(config)
    ckpt.load_weights_checked(model, path / ckpt.MODEL_FILE)
    model.eval()
    if inference:
        pack_for_inference(model)
    return LoadedRun(model, config, tokenizers, run_config, run_dir, path, state)


# -- writing -------------------------------------------------------------------------------------
def write_inference_run(out_dir: str | Path, model, config: ModelConfig, tokenizers: dict,
                        run_config: dict | None = None) -> Path:
    """Write a minimal run directory for ``model`` (config.toml, tokenizer/, checkpoints/step-0
    and best) that `load_run` reads. Refuses a directory that already holds checkpoints."""
    out = Path(out_dir)
    if (out / CHECKPOINTS).exists():
        raise MlxtError(f"{out}: already holds checkpoints; choose a new output directory")
    out.mkdir(parents=True, exist_ok=True)
    check_vocabularies(config, tokenizers, str(out))
    run_config = dict(run_config or {})
    run_config["model"] = config.to_dict()
    write_toml(out / CONFIG_TOML, run_config)
    save_tokenizers(tokenizers, out / TOKENIZER_DIR)
    root = out / CHECKPOINTS
    path = ckpt.write_checkpoint(root, 0, model, config, {"epoch": 0, "metrics": {}})
    ckpt.set_best(root, path)
    return out
