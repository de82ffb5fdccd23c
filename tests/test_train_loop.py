"""Stopping rules of the training loop (early stopping, epochs, time limit), logs and plots."""

from __future__ import annotations

import io
import subprocess
import sys

from mlxt.train import checkpoint as ckpt
from mlxt.train.config import load_config
from mlxt.train.metrics import read_metrics
from mlxt.train.progress import Progress
from mlxt.train.trainer import train
from train_helpers import write_tiny_config


def test_early_stopping(tmp_path):
    # A learning rate far below fp32 resolution leaves the weights unchanged: no evaluation improves.
    config = load_config(write_tiny_config(tmp_path, steps=20, eval_every=2, save_every=100),
                         ["train.lr=1e-12", "train.min_lr=0.0", "train.early_stopping=2"])
    result = train(config, tmp_path / "run", show_progress=False)
    assert result.status == "early_stopped" and result.step == 6
    assert result.best_step == 2
    assert ckpt.best_checkpoint(tmp_path / "run" / "checkpoints").name == "step-00000002"
    assert ckpt.latest_checkpoint(tmp_path / "run" / "checkpoints").name == "step-00000006"


def test_epoch_limit(tmp_path):
    config = load_config(write_tiny_config(tmp_path, steps=1000, eval_every=1000, save_every=1000),
                         ["data.length=600", "train.epochs=1"])
    result = train(config, tmp_path / "run", show_progress=False)
    batches_per_epoch = (480 - 16) // 8
    assert result.status == "epochs_done" and result.step == batches_per_epoch
    assert ckpt.latest_checkpoint(tmp_path / "run" / "checkpoints").name == ckpt.step_name(batches_per_epoch)


def test_time_limit(tmp_path):
    config = load_config(write_tiny_config(tmp_path, steps=100000, eval_every=100000, save_every=100000),
                         ["train.max_minutes=0.0001"])
    result = train(config, tmp_path / "run", show_progress=False)
    assert result.status == "stopped_at_time_limit" and 1 <= result.step < 100000
    records = read_metrics(tmp_path / "run" / "metrics.jsonl")
    assert records[-1]["split"] == "valid" and records[-1]["step"] == result.step
    assert ckpt.latest_checkpoint(tmp_path / "run" / "checkpoints").name == ckpt.step_name(result.step)


def test_log_lines_without_tty():
    stream = io.StringIO()
    progress = Progress(total=100, initial=0, stream=stream)
    progress.update(10, 2.5, 1e-3, 1234.0)
    line = stream.getvalue().strip()
    assert line.startswith("step 10/100  loss 2.5000  lr 1.000e-03  1,234 tok/s  eta ")


def test_plot_cli(tmp_path):
    run_dir = tmp_path / "run"
    train(load_config(write_tiny_config(tmp_path, steps=4, eval_every=2, save_every=4)), run_dir, show_progress=False)
    (run_dir / "curves.png").unlink()
    out = subprocess.run([sys.executable, "-m", "mlxt", "plot", str(run_dir)], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert (run_dir / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    missing = subprocess.run([sys.executable, "-m", "mlxt", "plot", str(tmp_path / "nope")],
                             capture_output=True, text=True)
    assert missing.returncode == 2 and "metrics.jsonl: not found" in missing.stderr
    nested = tmp_path / "plots" / "new" / "curves.png"  # -o into folders that do not exist yet
    made = subprocess.run([sys.executable, "-m", "mlxt", "plot", str(run_dir), "-o", str(nested)],
                          capture_output=True, text=True)
    assert made.returncode == 0, made.stderr
    assert nested.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    (tmp_path / "file").write_text("x")
    blocked = subprocess.run([sys.executable, "-m", "mlxt", "plot", str(run_dir), "-o", str(tmp_path / "file" / "c.png")],
                             capture_output=True, text=True)
    assert blocked.returncode == 2 and "cannot write the plot" in blocked.stderr
    assert "Traceback" not in blocked.stderr and (tmp_path / "file").read_text() == "x"


def test_eta_respects_time_limit():
    stream = io.StringIO()
    progress = Progress(total=10**6, initial=0, stream=stream, time_limit=120.0)
    progress.start -= 10.0  # 10 steps took 10 s: a million steps would take days
    progress.update(10, 2.5, 1e-3, 1234.0)
    eta = stream.getvalue().strip().split("eta ")[1]
    assert eta in ("01:50", "01:49")
