"""Reliability catalogue, runtime faults of ``mlxt train``: NaN loss, disk full and SIGKILL while a
checkpoint is written, Ctrl-C, a second process on the same run directory, resuming something that
is not a run. Each runs the CLI in a subprocess; the earlier checkpoints must survive and resume.

Faults inside the writer are injected from the outside: a ``sitecustomize.py`` put first on the
child's PYTHONPATH wraps `mlxt.train.checkpoint._fsync_file` so that writing one chosen checkpoint
raises ``OSError(ENOSPC)`` or SIGKILLs the process (after its files were written, before the
rename that publishes it). The library itself has no test hooks. See docs/reliability.md.
"""

from __future__ import annotations

import json
import math
import signal
import subprocess
import time
from pathlib import Path

import pytest
from safetensors.numpy import load_file

from train_helpers import wait_for
from fault_helpers import (assert_clean_failure, assert_clean_success, cli_env, fingerprint, mlxt_argv, run_mlxt,
                           write_seq2seq_setup)

FAULT_HOOK = '''\
"""Test-only fault injection (see tests/test_reliability_runtime.py)."""
import os

_mode, _step = os.environ.get("RELIABILITY_FAULT"), os.environ.get("RELIABILITY_FAULT_STEP")
if _mode:
    import errno
    import signal

    from mlxt.train import checkpoint as _ckpt

    _fsync_file = _ckpt._fsync_file
    _target = ".tmp-" + _ckpt.step_name(int(_step)) + "-"

    def _faulty_fsync_file(path):
        if _target in str(path):
            if _mode == "enospc":
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
            os.kill(os.getpid(), signal.SIGKILL)
        return _fsync_file(path)

    _ckpt._fsync_file = _faulty_fsync_file
'''


@pytest.fixture
def setup(tmp_path) -> dict:
    config = write_seq2seq_setup(tmp_path)
    hooks = tmp_path / "hooks"
    hooks.mkdir()
    (hooks / "sitecustomize.py").write_text(FAULT_HOOK)
    return {"config": config, "run": tmp_path / "run", "cache": tmp_path / "cache", "hooks": hooks, "cwd": tmp_path}


def _env(setup: dict, fault: str | None = None, step: int = 6) -> dict:
    if fault is None:
        return cli_env(setup["cache"])
    return cli_env(setup["cache"], setup["hooks"], RELIABILITY_FAULT=fault, RELIABILITY_FAULT_STEP=str(step))


def _train(setup: dict, *extra, env=None) -> subprocess.CompletedProcess:
    return run_mlxt("train", "--config", setup["config"], "--run-dir", setup["run"], "-q", *extra,
                    cwd=setup["cwd"], env=env or _env(setup))


def _checkpoints(run: Path) -> list[str]:
    """The visible entries of ``run/checkpoints`` (a writer killed mid-write leaves a hidden
    ``.tmp-*`` folder, which nothing reads and the next run removes)."""
    root = run / "checkpoints"
    return sorted(p.name for p in root.iterdir() if not p.name.startswith(".")) if root.is_dir() else []


def _all_finite(checkpoint: Path) -> bool:
    return all(math.isfinite(float(abs(v).max())) for v in load_file(str(checkpoint / "model.safetensors")).values())


def test_nan_loss_stops_before_saving_it(setup):
    result = _train(setup, "--set", "train.lr=1e30", "--set", "train.clip_norm=0.0")
    assert_clean_failure(result, "non-finite loss", "step", "last good checkpoint", "lr")
    root = setup["run"] / "checkpoints"
    for name in _checkpoints(setup["run"]):
        if name.startswith("step-"):
            assert _all_finite(root / name), f"{name} holds non-finite weights"


def test_nan_loss_on_resume_keeps_the_run(setup):
    assert_clean_success(_train(setup))
    run = setup["run"]
    before = fingerprint(run / "checkpoints", run / "tokenizer", run / "config.toml")
    result = run_mlxt("train", "--resume", run, "-q", "--set", "train.steps=12", "--set", "train.lr=1e30",
                      "--set", "train.clip_norm=0.0", cwd=setup["cwd"], env=_env(setup))
    assert_clean_failure(result, "non-finite loss", "last good checkpoint: step-00000006")
    assert fingerprint(run / "checkpoints", run / "tokenizer", run / "config.toml") == before


def test_disk_full_while_writing_a_checkpoint(setup):
    result = _train(setup, env=_env(setup, "enospc", step=6))
    assert_clean_failure(result, "step-00000006", "No space left on device")
    run = setup["run"]
    assert _checkpoints(run) == ["best", "step-00000003"]  # no partial step-6, no hidden leftovers
    assert not list((run / "checkpoints").glob(".tmp-*"))
    assert_clean_success(run_mlxt("translate", run, "haus", "--beam", "1", cwd=setup["cwd"], env=_env(setup)))
    resumed = run_mlxt("train", "--resume", run, "-q", cwd=setup["cwd"], env=_env(setup))
    assert_clean_success(resumed)
    assert "step-00000006" in _checkpoints(run)


def test_sigkill_while_writing_a_checkpoint(setup):
    killed = _train(setup, env=_env(setup, "sigkill", step=6))
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    run = setup["run"]
    assert _checkpoints(run) == ["best", "step-00000003"]  # the half-written one is not visible
    assert len(list((run / "checkpoints").glob(".tmp-step-00000006-*"))) == 1
    step3 = fingerprint(run / "checkpoints" / "step-00000003")
    assert_clean_success(run_mlxt("translate", run, "haus", "--beam", "1", cwd=setup["cwd"], env=_env(setup)))
    resumed = run_mlxt("train", "--resume", run, "-q", cwd=setup["cwd"], env=_env(setup))
    assert_clean_success(resumed)
    assert "training finished at step 6" in resumed.stdout
    assert _checkpoints(run) == ["best", "step-00000003", "step-00000006"]
    assert not list((run / "checkpoints").glob(".tmp-*"))  # the leftover was cleaned on resume
    assert fingerprint(run / "checkpoints" / "step-00000003") == step3


def _logged_steps(run: Path) -> int:
    path = run / "metrics.jsonl"
    if not path.exists():
        return 0
    steps = [json.loads(line)["step"] for line in path.read_text().splitlines() if line.endswith("}")]
    return max(steps, default=0)


def test_second_process_is_refused_and_ctrl_c_saves_and_resumes(setup):
    """A long run holds the lock: a second ``--resume`` and an ``--overwrite`` of the same directory
    are refused without touching it; then Ctrl-C saves a checkpoint, exits 130, and resumes."""
    run, env = setup["run"], _env(setup)
    long_run = ["--set", "train.steps=1000000", "--set", "train.save_every=100000", "--set", "train.eval_every=100000",
                "--set", "train.keep_last=2"]
    proc = subprocess.Popen(mlxt_argv("train", "--config", setup["config"], "--run-dir", run, "-q", *long_run),
                            cwd=setup["cwd"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert wait_for(proc, lambda: _logged_steps(run) >= 2), proc.communicate()
        before = fingerprint(run / "config.toml", run / "tokenizer")
        second = run_mlxt("train", "--resume", run, "-q", cwd=setup["cwd"], env=env)
        assert_clean_failure(second, str(run), "already in use by a training process", str(proc.pid))
        third = _train(setup, "--overwrite", *long_run)
        assert_clean_failure(third, str(run), "already in use by a training process")
        assert fingerprint(run / "config.toml", run / "tokenizer") == before
        assert proc.poll() is None, "the first run must keep going"
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130, err
    assert "Traceback" not in out + err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and "interrupted at step" in lines[0] and "--resume" in lines[0], err
    step = int(lines[0].split("interrupted at step ")[1].split(";")[0])
    assert (run / "checkpoints" / f"step-{step:08d}" / "model.safetensors").exists()
    resumed = run_mlxt("train", "--resume", run, "-q", "--set", f"train.steps={step + 2}", cwd=setup["cwd"], env=env)
    assert_clean_success(resumed)
    assert f"training finished at step {step + 2}" in resumed.stdout


def test_resume_from_a_directory_that_is_not_a_run(setup):
    folder = setup["cwd"] / "holiday-photos"
    folder.mkdir()
    (folder / "beach.jpg").write_bytes(b"\xff\xd8\xff\xe0")
    before = fingerprint(folder)
    result = run_mlxt("train", "--resume", folder, "-q", cwd=setup["cwd"], env=_env(setup))
    assert_clean_failure(result, str(folder), "not a run directory", "config.toml")
    assert fingerprint(folder) == before
    assert sorted(p.name for p in folder.iterdir()) == ["beach.jpg"]  # no lock file or anything else


def test_resume_from_a_path_that_does_not_exist(setup):
    missing = setup["cwd"] / "no-such-run"
    result = run_mlxt("train", "--resume", missing, "-q", cwd=setup["cwd"], env=_env(setup))
    assert_clean_failure(result, str(missing), "not a run directory")
    assert not missing.exists()


def test_resume_a_run_killed_before_its_first_checkpoint(setup):
    assert_clean_success(_train(setup))
    run = setup["run"]
    for p in (run / "checkpoints").iterdir():
        if p.is_symlink():
            p.unlink()
        else:
            for f in p.iterdir():
                f.unlink()
            p.rmdir()
    before = fingerprint(run)
    result = run_mlxt("train", "--resume", run, "-q", cwd=setup["cwd"], env=_env(setup))
    assert_clean_failure(result, str(run), "no checkpoint to resume from")
    assert fingerprint(run) == before


def test_run_directory_path_through_a_file(setup):
    blocker = setup["cwd"] / "notes.txt"
    blocker.write_text("my notes\n")
    result = run_mlxt("train", "--config", setup["config"], "--run-dir", blocker / "run", "-q",
                      cwd=setup["cwd"], env=_env(setup))
    assert_clean_failure(result, "notes.txt")
    assert blocker.read_text() == "my notes\n"


def test_a_failed_start_does_not_block_the_retry(setup):
    """A new run that fails before writing anything (here: a corpus error) leaves nothing that makes
    the corrected command refuse with 'already exists'."""
    corpus = setup["cwd"] / "corpus.tsv"
    good = corpus.read_text()
    corpus.write_text("no tab here\n")
    assert_clean_failure(_train(setup), "corpus.tsv:1:")
    corpus.write_text(good)
    assert_clean_success(_train(setup))


def test_torn_metrics_line_from_a_killed_writer(setup):
    """A run killed while appending to metrics.jsonl leaves half a line: resume skips it."""
    assert_clean_success(_train(setup))
    run = setup["run"]
    with open(run / "metrics.jsonl", "a") as f:
        f.write('{"split": "train", "step": 7, "lo')
    resumed = run_mlxt("train", "--resume", run, "-q", "--set", "train.steps=8", cwd=setup["cwd"], env=_env(setup))
    assert_clean_success(resumed)
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    steps = [r["step"] for r in records if r["split"] == "train"]
    assert steps == list(range(1, 9))
    assert_clean_success(run_mlxt("plot", run, cwd=setup["cwd"], env=_env(setup)))


def test_corrupt_prepared_data_cache_is_prepared_again(setup):
    """A damaged entry of the prepared-data cache is not trusted: the corpus is read again, and
    the entry is replaced by a good one."""
    assert_clean_success(_train(setup))
    arrays = list(setup["cache"].rglob("arrays.safetensors"))
    assert len(arrays) == 1
    arrays[0].write_bytes(arrays[0].read_bytes()[:64])
    corpus = fingerprint(setup["cwd"] / "corpus.tsv")
    again = run_mlxt("train", "--config", setup["config"], "--run-dir", setup["cwd"] / "run2", "-q",
                     cwd=setup["cwd"], env=_env(setup))
    assert_clean_success(again)
    assert fingerprint(setup["cwd"] / "corpus.tsv") == corpus
    first = json.loads((setup["run"] / "metrics.jsonl").read_text().splitlines()[0])
    second = json.loads((setup["cwd"] / "run2" / "metrics.jsonl").read_text().splitlines()[0])
    assert first["loss"] == second["loss"]  # the same data as before the damage
    replaced = list(setup["cache"].rglob("arrays.safetensors"))
    assert [p.parent for p in replaced] == [arrays[0].parent]
    assert replaced[0].stat().st_size > 64 and not [p for p in arrays[0].parent.parent.iterdir() if p.name.startswith(".")]
