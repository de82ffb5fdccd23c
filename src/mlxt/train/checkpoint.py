"""Checkpoints on disk: ``checkpoints/step-XXXXXXXX/`` written atomically, plus a ``best`` link.

A checkpoint directory holds ``model.safetensors`` (the weights), ``optimizer.safetensors`` (the
flattened optimizer state; absent in inference-only runs), ``state.json`` (format version, step,
epoch, data iterator state, RNG state, config, metrics) and ``config.json`` (the `ModelConfig`).

Atomicity: everything is written into a hidden temporary directory in the same parent, each file
is fsynced, the directory is renamed into place and the parent fsynced. A crash at any moment
leaves either the complete new checkpoint or none (plus a ``.tmp-*`` directory that the next run
removes); earlier checkpoints are never touched. ``best`` is a symbolic link replaced atomically
(a new link under a temporary name, then ``os.replace``). Pruning renames a checkpoint to a
``.tmp-pruned-*`` name before deleting it, so a stop midway never leaves a half-deleted
``step-*`` directory; readers ignore every ``.tmp-*`` name.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

import mlx.core as mx
from mlx.utils import tree_flatten, tree_unflatten

from mlxt.errors import MlxtError

FORMAT_VERSION = 1
MODEL_FILE = "model.safetensors"
OPTIMIZER_FILE = "optimizer.safetensors"
STATE_FILE = "state.json"
CONFIG_FILE = "config.json"
BEST = "best"
TMP_PREFIX = ".tmp-"  # checkpoints being written or deleted, best links being replaced
_STEP_RE = re.compile(r"^step-(\d+)$")


def step_name(step: int) -> str:
    return f"step-{step:08d}"


def _fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # platforms without directory file descriptors
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _write_json(path: Path, data) -> None:
    path.write_text(json.dumps(data, indent=2, allow_nan=True) + "\n")


def write_checkpoint(root: str | Path, step: int, model, model_config, state: dict, optimizer=None,
                     name: str | None = None) -> Path:
    """Write checkpoint ``root/step-XXXXXXXX`` (or ``root/name``) atomically and return its path.

    ``state`` is the JSON-able training state; ``format_version`` and ``step`` are added.
    """
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    final = root / (name or step_name(step))
    tmp = root / f"{TMP_PREFIX}{final.name}-{os.getpid()}"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir()
    try:
        model.save_weights(str(tmp / MODEL_FILE))
        if optimizer is not None:
            flat = dict(tree_flatten(optimizer.state))
            mx.save_safetensors(str(tmp / OPTIMIZER_FILE), flat)
        _write_json(tmp / STATE_FILE, {"format_version": FORMAT_VERSION, "step": step, **state})
        _write_json(tmp / CONFIG_FILE, model_config.to_dict())
        for f in tmp.iterdir():
            _fsync_file(f)
        fsync_dir(tmp)
        if final.exists():  # the same step saved again (e.g. on interrupt right after a save)
            remove_checkpoint(final)
        os.rename(tmp, final)
        fsync_dir(root)
    except BaseException as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        # A full disk or a missing permission (MLX reports its write errors as RuntimeError).
        if isinstance(exc, (OSError, RuntimeError)):
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            raise MlxtError(f"{final}: cannot write the checkpoint ({reason}); "
                            "earlier checkpoints are intact") from None
        raise
    return final


def list_checkpoints(root: str | Path) -> list[tuple[int, Path]]:
    """``[(step, path)]`` of the complete checkpoints under ``root``, oldest first."""
    root = Path(root)
    if not root.is_dir():
        return []
    found = []
    for p in root.iterdir():
        m = _STEP_RE.match(p.name)
        if m and p.is_dir() and not p.is_symlink() and (p / STATE_FILE).exists():
            found.append((int(m.group(1)), p))
    return sorted(found)


def latest_checkpoint(root: str | Path) -> Path | None:
    found = list_checkpoints(root)
    return found[-1][1] if found else None


def set_best(root: str | Path, checkpoint: Path) -> None:
    """Point ``root/best`` at ``checkpoint`` (a relative symlink, replaced atomically)."""
    root = Path(root)
    tmp = root / f"{TMP_PREFIX}best-{os.getpid()}"
    if tmp.is_symlink() or tmp.exists():
        tmp.unlink()
    os.symlink(Path(checkpoint).name, tmp)
    os.replace(tmp, root / BEST)
    fsync_dir(root)


def best_checkpoint(root: str | Path) -> Path | None:
    link = Path(root) / BEST
    return link.resolve() if link.exists() else None


def prune(root: str | Path, keep_last: int) -> None:
    """Delete all but the newest ``keep_last`` checkpoints, never the one ``best`` points to."""
    if keep_last <= 0:
        return
    best = best_checkpoint(root)
    for _, path in list_checkpoints(root)[:-keep_last]:
        if best is None or path.resolve() != best:
            remove_checkpoint(path)


def remove_checkpoint(path: Path) -> None:
    """Delete a checkpoint directory so that no reader ever sees it half-deleted: it is first
    renamed to a temporary name (which `list_checkpoints` ignores and `remove_temporaries`
    finishes deleting if this process is stopped), then removed."""
    path = Path(path)
    victim = path.parent / f"{TMP_PREFIX}pruned-{path.name}-{os.getpid()}"
    os.rename(path, victim)
    fsync_dir(path.parent)
    shutil.rmtree(victim)


def remove_temporaries(root: str | Path) -> None:
    """Remove ``.tmp-*`` leftovers of an operation that was stopped midway: a checkpoint being
    written or pruned, a ``best`` link being replaced. Only the process holding the run's lock
    may call this (another one's write would look the same)."""
    root = Path(root)
    if root.is_dir():
        for p in root.glob(TMP_PREFIX + "*"):
            if p.is_symlink() or p.is_file():
                p.unlink()
            else:
                shutil.rmtree(p, ignore_errors=True)


def read_state(checkpoint: str | Path) -> dict:
    """``state.json`` of a checkpoint, checking that this version of mlxt can read it."""
    path = Path(checkpoint) / STATE_FILE
    try:
        state = json.loads(path.read_text())
    except FileNotFoundError:
        raise MlxtError(f"{path}: missing (not a complete checkpoint)") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise MlxtError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(state, dict):
        raise MlxtError(f"{path}: expected a JSON object, got {type(state).__name__}")
    version = state.get("format_version")
    if not isinstance(version, int) or isinstance(version, bool):
        raise MlxtError(f"{path}: no integer 'format_version'")
    if version > FORMAT_VERSION:
        raise MlxtError(
            f"{path}: format_version {version} is newer than this mlxt supports ({FORMAT_VERSION}); upgrade mlxt"
        )
    for key, types in _STATE_TYPES.items():
        value = state.get(key)
        if key in state and (not isinstance(value, types) or isinstance(value, bool) and bool not in types):
            raise MlxtError(f"{path}: '{key}' has the wrong type ({type(value).__name__} {str(value)[:40]!r})")
    if "rng" in state and not (len(state["rng"]) == 2 and all(type(v) is int and 0 <= v < 2**32 for v in state["rng"])):
        raise MlxtError(f"{path}: 'rng' is not a random key (two 32-bit integers)")
    return _State(state, path)


# What each entry of state.json holds, when present (an inference-only checkpoint has fewer).
_STATE_TYPES = {"step": (int,), "epoch": (int,), "data": (dict,), "rng": (list,), "rng_ranks": (list, type(None)),
                "best_valid_loss": (int, float, type(None)), "best_step": (int, type(None)), "bad_evals": (int,),
                "elapsed": (int, float), "metrics": (dict,), "averaged_steps": (list,)}


class _State(dict):
    """``state.json`` as a dict whose missing entries are a one-line error naming the file."""

    def __init__(self, data: dict, path: Path):
        super().__init__(data)
        self.path = path

    def __missing__(self, key):
        raise MlxtError(f"{self.path}: no '{key}' entry (not a checkpoint that training can resume from)")


def read_optimizer_state(checkpoint: str | Path) -> dict:
    """The optimizer state tree saved in a checkpoint (for ``optimizer.state = ...``)."""
    path = Path(checkpoint) / OPTIMIZER_FILE
    flat = read_safetensors(path, "the optimizer state",
                            missing="missing (cannot resume training without the optimizer state)")
    return tree_unflatten(list(flat.items()))


def read_safetensors(path: Path, what: str, missing: str) -> dict[str, mx.array]:
    """The tensors of ``path``; a missing or unreadable file is an `MlxtError` naming it."""
    if not path.exists():
        raise MlxtError(f"{path}: {missing}")
    try:
        return mx.load(str(path))
    except Exception as exc:  # mlx raises RuntimeError/ValueError on a corrupt file
        raise MlxtError(f"{path}: cannot read {what} ({exc})") from None


def load_weights_checked(model, path: str | Path) -> None:
    """Load ``path`` (safetensors) into ``model``; a missing, unexpected or misshapen tensor is an
    `MlxtError` naming it."""
    path = Path(path)
    weights = read_safetensors(path, "weights", missing="missing model weights")
    expected = dict(tree_flatten(model.parameters()))
    for name, value in expected.items():
        if name not in weights:
            raise MlxtError(f"{path}: missing tensor '{name}' (expected shape {tuple(value.shape)})")
        if tuple(weights[name].shape) != tuple(value.shape):
            raise MlxtError(
                f"{path}: tensor '{name}' has shape {tuple(weights[name].shape)}, "
                f"the model expects {tuple(value.shape)}"
            )
    for name in weights:
        if name not in expected:
            raise MlxtError(f"{path}: unexpected tensor '{name}' (not a parameter of this model)")
    model.load_weights(list(weights.items()))
    mx.eval(model.parameters())
