"""Reading a Hugging Face model directory: locate it (local or Hub), its JSON configs and tensors.

Weights are read from ``model.safetensors`` (or the shards listed in
``model.safetensors.index.json``) with MLX, which needs no pickle and keeps bfloat16. Only when a
``pytorch_model.bin`` is all there is, it is read with ``torch.load(weights_only=True)``, which
refuses to execute pickled code; torch is needed for that case only.
"""

from __future__ import annotations

import json
from pathlib import Path

import mlx.core as mx

from mlxt.errors import MlxtError

SAFETENSORS = "model.safetensors"
SAFETENSORS_INDEX = "model.safetensors.index.json"
PYTORCH_BIN = "pytorch_model.bin"

# What a download fetches: configs, tokenizer files and safetensors weights (not TF/Flax/Rust ones).
HUB_PATTERNS = ["*.json", "*.spm", "*.model", "*.safetensors"]


def read_json(path: Path, required: bool = True) -> dict:
    """A JSON object from ``path``; ``{}`` when it is absent and not ``required``."""
    if not path.is_file():
        if required:
            raise MlxtError(f"{path}: file not found")
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise MlxtError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(data, dict):
        raise MlxtError(f"{path}: expected a JSON object")
    return data


def locate(src: str) -> Path:
    """A local model directory, or a Hub model id downloaded with `huggingface_hub`."""
    path = Path(src).expanduser()
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise MlxtError(f"{path}: not a Hugging Face model directory (no config.json)")
        return path
    if path.exists():
        raise MlxtError(f"{src}: expected a model directory or a Hugging Face Hub model id, got a file")
    return download(src)


def download(repo_id: str) -> Path:
    """Fetch ``repo_id`` from the Hub (safetensors weights; ``pytorch_model.bin`` if there are none)."""
    try:
        from huggingface_hub import snapshot_download
    except ImportError:
        raise MlxtError(
            f"{repo_id}: no such local directory, and downloading from the Hugging Face Hub needs "
            "the 'huggingface_hub' package (pip install 'mlxt[marian]')"
        ) from None
    try:
        path = Path(snapshot_download(repo_id, allow_patterns=HUB_PATTERNS))
        if not (path / SAFETENSORS).is_file() and not (path / SAFETENSORS_INDEX).is_file():
            path = Path(snapshot_download(repo_id, allow_patterns=HUB_PATTERNS + [PYTORCH_BIN]))
    except Exception as exc:  # offline, unknown repository, gated model, ...
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise MlxtError(
            f"{repo_id}: no such local directory, and downloading it from the Hugging Face Hub failed "
            f"({type(exc).__name__}: {reason}); check the name and the network, or pass a local directory"
        ) from None
    if not (path / "config.json").is_file():
        raise MlxtError(f"{repo_id}: the downloaded repository has no config.json")
    return path


def read_tensors(directory: Path) -> dict[str, mx.array]:
    """All tensors of the checkpoint in ``directory``, by their Hugging Face names."""
    if (directory / SAFETENSORS).is_file():
        return _load_safetensors(directory / SAFETENSORS)
    if (directory / SAFETENSORS_INDEX).is_file():
        index = read_json(directory / SAFETENSORS_INDEX)
        shards = sorted(set((index.get("weight_map") or {}).values()))
        if not shards:
            raise MlxtError(f"{directory / SAFETENSORS_INDEX}: no 'weight_map' entries")
        tensors: dict[str, mx.array] = {}
        for shard in shards:
            tensors.update(_load_safetensors(directory / shard))
        return tensors
    if (directory / PYTORCH_BIN).is_file():
        return _load_torch_bin(directory / PYTORCH_BIN)
    raise MlxtError(f"{directory}: no weights found (expected {SAFETENSORS}, {SAFETENSORS_INDEX} or {PYTORCH_BIN})")


def _load_safetensors(path: Path) -> dict[str, mx.array]:
    if not path.is_file():
        raise MlxtError(f"{path}: weight file not found")
    try:
        return dict(mx.load(str(path), format="safetensors"))
    except (RuntimeError, ValueError, OSError) as exc:
        raise MlxtError(f"{path}: not a readable safetensors file ({exc})") from None


def _load_torch_bin(path: Path) -> dict[str, mx.array]:
    try:
        import torch
    except ImportError:
        raise MlxtError(
            f"{path}: reading a PyTorch .bin checkpoint needs torch; install it, or convert a "
            "checkpoint that has model.safetensors"
        ) from None
    try:
        state = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as exc:  # weights_only refuses anything but plain tensors
        raise MlxtError(f"{path}: not a plain PyTorch state dict ({type(exc).__name__}: {exc})") from None
    if not isinstance(state, dict):
        raise MlxtError(f"{path}: expected a state dict of tensors, got {type(state).__name__}")
    out = {}
    for name, tensor in state.items():
        if not isinstance(tensor, torch.Tensor):
            raise MlxtError(f"{path}: entry {name!r} is not a tensor")
        tensor = tensor.detach().cpu()
        if tensor.dtype == torch.bfloat16:
            out[name] = mx.array(tensor.float().numpy()).astype(mx.bfloat16)
        else:
            out[name] = mx.array(tensor.numpy())
    return out
