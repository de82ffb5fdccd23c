"""SIGTERM stops like Ctrl-C (checkpoint, one line, exit 143) and resumes; a second signal never
leaves a broken checkpoint; leftovers of an interrupted prune or link update are never read and
are cleaned on the next start. Real processes and real signals."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from mlxt.train import checkpoint as ckpt
from mlxt.train.config import load_config
from mlxt.train.rundir import load_run
from mlxt.train.signals import StopRequested, StopSignals
from mlxt.train.trainer import train
from fault_helpers import assert_clean_success, cli_env, mlxt_argv, run_mlxt
from train_helpers import wait_for, write_tiny_config
from test_train_resume import _last_step


def _long_run(tmp_path: Path, *extra: str) -> tuple[subprocess.Popen, Path, dict]:
    config = write_tiny_config(tmp_path, steps=100000, eval_every=100000, save_every=100000)
    run_dir, env = tmp_path / "run", cli_env(tmp_path / "cache")
    proc = subprocess.Popen(mlxt_argv("train", "--config", config, "--run-dir", run_dir, "-q", *extra),
                            cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    return proc, run_dir, env


def _stop(proc: subprocess.Popen, *signals: int, gap: float = 0.0) -> tuple[str, str]:
    try:
        for i, signum in enumerate(signals):
            if i:
                time.sleep(gap)
            proc.send_signal(signum)
        return proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def _complete_checkpoints(run_dir: Path) -> list[int]:
    root = run_dir / "checkpoints"
    steps = []
    for p in root.iterdir():
        if p.name.startswith("step-"):
            assert (p / ckpt.MODEL_FILE).exists() and (p / ckpt.STATE_FILE).exists(), sorted(os.listdir(p))
            steps.append(int(ckpt.read_state(p)["step"]))
    return sorted(steps)


def test_sigterm_saves_a_checkpoint_and_resumes(tmp_path):
    proc, run_dir, env = _long_run(tmp_path)
    assert wait_for(proc, lambda: _last_step(run_dir) >= 3), proc.communicate()
    out, err = _stop(proc, signal.SIGTERM)
    assert proc.returncode == 143, err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in out + err, err
    assert lines[0].startswith("mlxt: stopped by SIGTERM at step ") and "checkpoint saved" in lines[0]
    assert f"mlxt train --resume {run_dir}" in lines[0]
    step = int(lines[0].split("at step ")[1].split(";")[0])
    assert ckpt.latest_checkpoint(run_dir / "checkpoints").name == ckpt.step_name(step)
    resumed = run_mlxt("train", "--resume", run_dir, "-q", "--set", f"train.steps={step + 2}", cwd=tmp_path, env=env)
    assert_clean_success(resumed)
    assert f"training finished at step {step + 2}" in resumed.stdout


def test_a_second_signal_never_leaves_a_broken_checkpoint(tmp_path):
    """Two SIGTERMs in quick succession with a checkpoint every step and pruning on: whichever
    moment the second lands in, every step-* directory is complete and the run resumes."""
    proc, run_dir, env = _long_run(tmp_path, "--set", "train.save_every=1", "--set", "train.keep_last=2")
    assert wait_for(proc, lambda: _last_step(run_dir) >= 4), proc.communicate()
    out, err = _stop(proc, signal.SIGTERM, signal.SIGTERM, gap=0.02)
    # 143 with one line; or killed by the default SIGTERM if the second came after training had
    # ended and the handlers were restored (nothing was being written then)
    assert proc.returncode in (143, -signal.SIGTERM), err
    assert "Traceback" not in out + err and len([x for x in err.splitlines() if x.strip()]) <= 1, err
    steps = _complete_checkpoints(run_dir)
    assert 1 <= len(steps) <= 3, steps  # keep_last = 2, plus the best one
    resumed = run_mlxt("train", "--resume", run_dir, "-q", "--set", f"train.steps={steps[-1] + 1}",
                       cwd=tmp_path, env=env)
    assert_clean_success(resumed)


def test_second_signal_waits_for_the_deferred_section():
    previous = signal.getsignal(signal.SIGTERM)
    with StopSignals() as signals:
        with pytest.raises(StopRequested) as stopped:
            with signals.deferred():
                os.kill(os.getpid(), signal.SIGTERM)
                os.kill(os.getpid(), signal.SIGINT)
                finished = True  # the section ran to its end despite the second signal
        assert finished and signals.received == signal.SIGTERM and stopped.value.signum == signal.SIGINT
    assert signal.getsignal(signal.SIGTERM) is previous


def test_an_interrupted_prune_leaves_no_half_deleted_checkpoint(tmp_path, monkeypatch):
    run_dir = tmp_path / "run"
    train(load_config(write_tiny_config(tmp_path, steps=6, eval_every=100, save_every=2)), run_dir,
          show_progress=False)
    root = run_dir / "checkpoints"
    real_rmtree = ckpt.shutil.rmtree

    def stopped_midway(path, *args, **kwargs):  # deletes one file, then the process "dies"
        victim = Path(path)
        (victim / ckpt.MODEL_FILE).unlink()
        raise KeyboardInterrupt

    monkeypatch.setattr(ckpt.shutil, "rmtree", stopped_midway)
    with pytest.raises(KeyboardInterrupt):
        ckpt.prune(root, keep_last=1)
    monkeypatch.setattr(ckpt.shutil, "rmtree", real_rmtree)
    leftovers = [p.name for p in root.iterdir() if p.name.startswith(".tmp-pruned-")]
    assert len(leftovers) == 1, sorted(os.listdir(root))
    assert [s for s, _ in ckpt.list_checkpoints(root)] == [4, 6]


def test_leftovers_are_never_read_and_cleaned_on_resume(tmp_path):
    config = load_config(write_tiny_config(tmp_path, steps=4, eval_every=100, save_every=2))
    run_dir = tmp_path / "run"
    train(config, run_dir, show_progress=False)
    root = run_dir / "checkpoints"
    # a half-pruned checkpoint that claims a later step, a temporary best link, a half-written one
    half = root / ".tmp-pruned-step-00000900-12345"
    half.mkdir()
    (half / ckpt.STATE_FILE).write_text('{"format_version": 1, "step": 900}')
    os.symlink("step-00000002", root / ".tmp-best-12345")
    (root / ".tmp-step-00000950-12345").mkdir()
    assert ckpt.latest_checkpoint(root).name == "step-00000004"
    assert load_run(run_dir, "last").checkpoint.name == "step-00000004"
    result = train(load_config(write_tiny_config(tmp_path, steps=6, eval_every=100, save_every=2)), run_dir,
                   resume=True, show_progress=False)
    assert result.step == 6
    assert not [p.name for p in root.iterdir() if p.name.startswith(".tmp-")]
    assert ckpt.best_checkpoint(root) is not None and ckpt.best_checkpoint(root).name.startswith("step-")


def _two_rank_run(tmp_path: Path, via_workers: bool):
    config = write_tiny_config(tmp_path, steps=100000, eval_every=100000, save_every=100000)
    run_dir = tmp_path / "run"
    env = {k: v for k, v in cli_env(tmp_path / "cache").items() if k not in ("MLX_RANK", "MLX_HOSTFILE")}
    argv = ["train", "-c", str(config), "--run-dir", str(run_dir), "-q"]
    if via_workers:
        procs = [subprocess.Popen(mlxt_argv(*argv, "--workers", "2"), env=env, stderr=subprocess.PIPE, text=True)]
    else:
        from mlxt.train.distributed import spawn_workers

        procs = spawn_workers(2, argv, tmp_path, env=env)
    assert wait_for(procs[0], lambda: _last_step(run_dir) >= 3), "the 2-rank run did not start"
    return procs, run_dir


@pytest.mark.parametrize("who", ["one rank", "the --workers launcher"])
def test_sigterm_stops_every_rank_at_the_same_step(tmp_path, who, capfd):
    procs, run_dir = _two_rank_run(tmp_path, via_workers=who != "one rank")
    try:
        os.kill(procs[-1].pid, signal.SIGTERM)  # rank 1, or the process that started both ranks
        codes = [p.wait(timeout=60) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    err = capfd.readouterr().err + "".join(p.stderr.read() for p in procs if p.stderr)
    assert set(codes) == {143}, (codes, err)
    assert "lost the connection" not in err and "no progress" not in err and "Traceback" not in err, err
    line = next(x for x in err.splitlines() if x.startswith("mlxt: stopped by SIGTERM at step "))
    step = int(line.split("at step ")[1].split(";")[0])
    assert ckpt.latest_checkpoint(run_dir / "checkpoints").name == ckpt.step_name(step)
