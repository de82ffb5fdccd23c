"""Exact resume after a real SIGKILL, SIGINT handling, NaN stop and run-directory refusals."""

from __future__ import annotations

import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import mlx.core as mx
import pytest
from mlx.utils import tree_flatten

from mlxt.errors import MlxtError
from mlxt.train import checkpoint as ckpt
from mlxt.train import step as step_module
from mlxt.train.config import load_config
from mlxt.train.lock import RunLock
from mlxt.train.metrics import read_metrics
from mlxt.train.rundir import load_run
from mlxt.train.trainer import NonFiniteLoss, train
from train_helpers import train_losses, wait_for, write_tiny_config

REPO = Path(__file__).resolve().parents[1]


def _mlxt(*args) -> list[str]:
    return [sys.executable, "-m", "mlxt", *map(str, args)]


def _env() -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO / "src") + os.pathsep + env.get("PYTHONPATH", "")
    return env


def _last_step(run_dir: Path) -> int:
    path = run_dir / "metrics.jsonl"
    if not path.exists():
        return 0
    steps = [r["step"] for r in read_metrics(path) if r.get("split") == "train"]
    return max(steps, default=0)


def test_resume_after_sigkill_is_exact(tmp_path):
    steps = 60
    config = write_tiny_config(tmp_path, steps=steps, eval_every=10, save_every=10)
    reference = tmp_path / "reference"
    train(load_config(config), reference, show_progress=False)

    killed = tmp_path / "killed"
    proc = subprocess.Popen(_mlxt("train", "--config", config, "--run-dir", killed, "-q"), env=_env(),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    first = killed / "checkpoints" / "step-00000010"
    got_there = wait_for(proc, lambda: first.is_dir() and _last_step(killed) >= 13)
    proc.kill()  # SIGKILL: no handler, no cleanup
    proc.wait()
    assert got_there, proc.stderr.read().decode()
    assert proc.returncode == -signal.SIGKILL
    before = _last_step(killed)
    assert before < steps and not (killed / "checkpoints" / ckpt.step_name(steps)).exists()
    resumed_from = ckpt.latest_checkpoint(killed / "checkpoints").name
    assert resumed_from < ckpt.step_name(before + 1)  # steps after the checkpoint are redone

    done = subprocess.run(_mlxt("train", "--resume", killed, "-q"), env=_env(), capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    expected, got = train_losses(reference / "metrics.jsonl"), train_losses(killed / "metrics.jsonl")
    assert sorted(got) == list(range(1, steps + 1))
    assert got == expected  # bit-identical losses, step for step
    valid = lambda d: [r for r in read_metrics(d / "metrics.jsonl") if r["split"] == "valid"]  # noqa: E731
    assert valid(killed) == valid(reference)
    a = dict(tree_flatten(load_run(reference, "last").model.parameters()))
    b = dict(tree_flatten(load_run(killed, "last").model.parameters()))
    assert all(mx.array_equal(a[k], b[k]).item() for k in a)
    assert (killed / "curves.png").stat().st_size > 0


def test_sigint_saves_checkpoint_and_exits_130(tmp_path):
    config = write_tiny_config(tmp_path, steps=400, eval_every=100, save_every=100)
    run_dir = tmp_path / "run"
    proc = subprocess.Popen(_mlxt("train", "--config", config, "--run-dir", run_dir, "-q"), env=_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert wait_for(proc, lambda: _last_step(run_dir) >= 3)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "interrupted at step" in err and "--resume" in err
    stopped = int(err.split("interrupted at step ")[1].split(";")[0])
    assert ckpt.latest_checkpoint(run_dir / "checkpoints").name == ckpt.step_name(stopped)
    assert not (run_dir / "checkpoints" / "step-00000400").exists()


def test_nan_loss_stops_with_last_good_checkpoint(tmp_path, monkeypatch):
    original = step_module.batch_loss
    calls = {"n": 0}

    def poisoned(model, batch, smoothing=0.0):
        calls["n"] += 1
        loss, count = original(model, batch, smoothing)
        return (loss * math.nan if calls["n"] >= 13 else loss), count

    monkeypatch.setattr(step_module, "batch_loss", poisoned)
    run_dir = tmp_path / "run"
    with pytest.raises(NonFiniteLoss, match=r"non-finite loss or gradient at step 13.*last good checkpoint: step-00000010"):
        train(load_config(write_tiny_config(tmp_path, steps=20, save_every=5)), run_dir, show_progress=False)
    assert [s for s, _ in ckpt.list_checkpoints(run_dir / "checkpoints")] == [5, 10]
    run = load_run(run_dir, "last")
    assert all(mx.all(mx.isfinite(v)).item() for _, v in tree_flatten(run.model.parameters()))
    assert not (run_dir / ".lock").exists() or RunLock(run_dir).acquire()  # the lock was released


def test_run_dir_refusals(tmp_path):
    config = load_config(write_tiny_config(tmp_path, steps=3, eval_every=3, save_every=3))
    run_dir = tmp_path / "run"
    train(config, run_dir, show_progress=False)
    with pytest.raises(MlxtError, match="already exists; continue it with `mlxt train --resume"):
        train(config, run_dir, show_progress=False)
    with RunLock(run_dir):
        with pytest.raises(MlxtError, match="already in use"):
            train(config, run_dir, resume=True, show_progress=False)
        with pytest.raises(MlxtError, match="already in use"):
            train(config, run_dir, overwrite=True, show_progress=False)
    assert ckpt.latest_checkpoint(run_dir / "checkpoints").name == "step-00000003"  # nothing destroyed
    result = train(config, run_dir, overwrite=True, show_progress=False)
    assert result.step == 3 and result.status == "finished"
