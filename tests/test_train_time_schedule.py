"""``schedule_unit = "time"``: warmup and decay follow the fraction of the ``max_minutes`` budget,
the run ends at ``min_lr``, the training time is carried over on resume, and it runs compiled."""

from __future__ import annotations

import json
import math

import mlx.core as mx
import numpy as np
import pytest
import torch

from mlxt.errors import MlxtError
from mlxt.train import intervals
from mlxt.train.config import load_config
from mlxt.train.metrics import read_metrics
from mlxt.train.schedules import lr_at_fraction
from mlxt.train.trainer import load_run_config, train
from train_helpers import write_tiny_config

LR, MIN_LR = 3e-3, 1e-4
TIME = ["train.schedule_unit=\"time\"", "train.warmup_steps=0", "train.warmup_fraction=0.1", "train.max_minutes=0.5"]


@pytest.fixture
def fake_clock(monkeypatch):
    """Every reading of the training clock advances it by 0.25 s: runs end by the budget,
    deterministically, whatever the machine's speed."""
    now = {"t": 0.0}

    def tick() -> float:
        now["t"] += 0.25
        return now["t"]

    monkeypatch.setattr(intervals, "monotonic", tick)
    return now


def _lr(name: str, f: float, warmup: float = 0.1) -> float:
    return lr_at_fraction(name, mx.array(f), LR, warmup, MIN_LR).item()


def test_cosine_follows_torch_after_a_linear_warmup():
    w, n = 0.1, 200
    assert _lr("cosine", 0.0) == 0.0 and _lr("cosine", w / 2) == pytest.approx(LR / 2, rel=1e-6)
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=LR)
    reference = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=n, eta_min=MIN_LR)
    for k in range(n + 1):
        ours = _lr("cosine", w + (1 - w) * k / n)
        assert ours == pytest.approx(reference.get_last_lr()[0], rel=1e-5, abs=1e-9), k
        opt.step()
        reference.step()
    assert _lr("cosine", 1.0) == pytest.approx(MIN_LR, rel=1e-6)


def test_noam_and_constant_shapes():
    w = 0.1
    fractions = np.linspace(w, 1.0, 50)
    noam = [_lr("noam", f) for f in fractions]
    assert noam[0] == pytest.approx(LR, rel=1e-6) and noam[-1] == pytest.approx(MIN_LR, rel=1e-5)
    assert all(a > b for a, b in zip(noam, noam[1:]))
    # the inverse square root shape: lr - min_lr is proportional to sqrt(w/f) - sqrt(w)
    f = 0.4
    expected = MIN_LR + (LR - MIN_LR) * (math.sqrt(w / f) - math.sqrt(w)) / (1 - math.sqrt(w))
    assert _lr("noam", f) == pytest.approx(expected, rel=1e-5)
    assert _lr("constant", 0.05) == pytest.approx(LR / 2, rel=1e-6) and _lr("constant", 0.7) == pytest.approx(LR)
    assert _lr("cosine", 1.7) == pytest.approx(MIN_LR, rel=1e-6)  # clipped past the budget


@pytest.mark.parametrize("overrides, fragment", [
    (["train.schedule_unit=\"time\""], "needs max_minutes > 0"),
    (["train.schedule_unit=\"time\"", "train.max_minutes=1", "train.warmup_steps=5"], "warmup_fraction"),
    (["train.warmup_fraction=0.1"], 'schedule_unit = "time"'),
    (["train.schedule_unit=\"time\"", "train.max_minutes=1", "train.warmup_steps=0", "train.schedule=\"noam\""],
     "needs warmup_fraction > 0"),
    (["train.schedule_unit=\"minutes\""], "schedule_unit"),
])
def test_config_errors(tmp_path, overrides, fragment):
    with pytest.raises(MlxtError, match="^\\[train\\]") as error:
        load_config(write_tiny_config(tmp_path), overrides)
    assert fragment in str(error.value) and "\n" not in str(error.value)


def _train_lrs(run_dir) -> list[float]:
    return [r["lr"] for r in read_metrics(run_dir / "metrics.jsonl") if r["split"] == "train"]


def test_a_run_ends_annealed_at_min_lr(tmp_path, fake_clock):
    run_dir = tmp_path / "run"
    config = load_config(write_tiny_config(tmp_path, steps=100000, eval_every=20, save_every=20), TIME)
    result = train(config, run_dir, show_progress=False)
    assert result.status == "stopped_at_time_limit" and 10 < result.step < 100000
    assert "time limit" in result.summary and "0.5-minute" in result.summary
    lrs = _train_lrs(run_dir)
    peak = int(np.argmax(lrs))
    assert lrs[peak] == pytest.approx(LR, rel=0.05) and 0 < peak < len(lrs) // 4  # warmup: 10% of the time
    assert all(a >= b for a, b in zip(lrs[peak:], lrs[peak + 1:]))
    assert abs(lrs[-1] - MIN_LR) < 0.01 * (LR - MIN_LR), lrs[-5:]
    state = json.loads((run_dir / "checkpoints" / f"step-{result.step:08d}" / "state.json").read_text())
    assert 30.0 <= state["train_seconds"] < 32.0


def test_resume_carries_the_training_time(tmp_path, fake_clock):
    run_dir = tmp_path / "run"
    train(load_config(write_tiny_config(tmp_path, steps=8, eval_every=100, save_every=4), TIME), run_dir,
          show_progress=False)
    saved = json.loads((run_dir / "checkpoints" / "step-00000008" / "state.json").read_text())["train_seconds"]
    assert 0 < saved < 30
    result = train(load_run_config(run_dir, ["train.steps=100000"]), run_dir, resume=True, show_progress=False)
    assert result.status == "stopped_at_time_limit"
    records = {r["step"]: r for r in read_metrics(run_dir / "metrics.jsonl") if r["split"] == "train"}
    # step 9, the first after the resume, runs at the fraction the checkpoint had reached
    assert records[9]["lr"] == pytest.approx(_lr("cosine", saved / 30.0), rel=1e-5)
    assert records[9]["lr"] < records[8]["lr"] or saved / 30.0 < 0.1
    assert abs(records[result.step]["lr"] - MIN_LR) < 0.01 * (LR - MIN_LR)


def test_step_schedule_is_unchanged(tmp_path):
    """The default (steps) writes no schedule state and follows the update counter."""
    run_dir = tmp_path / "run"
    train(load_config(write_tiny_config(tmp_path, steps=12, eval_every=100, save_every=12)), run_dir,
          show_progress=False)
    from mlxt.train.schedules import make_schedule

    schedule = make_schedule("cosine", LR, 5, 12, MIN_LR)
    assert _train_lrs(run_dir) == pytest.approx([schedule(mx.array(n)).item() for n in range(12)], rel=1e-6)
    tensors = mx.load(str(run_dir / "checkpoints" / "step-00000012" / "optimizer.safetensors"))
    assert "schedule_progress" not in tensors


@pytest.mark.slow
def test_time_schedule_compiled_matches_uncompiled(tmp_path, monkeypatch):
    """Under mx.compile the fraction is an input of the compiled step: the learning rates (and
    losses) equal the uncompiled run's."""
    runs = {}
    for compiled in (False, True):
        now = {"t": 0.0}

        def tick(now=now) -> float:
            now["t"] += 0.25
            return now["t"]

        monkeypatch.setattr(intervals, "monotonic", tick)
        run_dir = tmp_path / f"run-{compiled}"
        config = load_config(write_tiny_config(tmp_path, steps=100000, eval_every=100000, save_every=100000),
                             TIME + [f"train.compile={str(compiled).lower()}", "model.dropout=0.0"])
        train(config, run_dir, show_progress=False)
        runs[compiled] = [r for r in read_metrics(run_dir / "metrics.jsonl") if r["split"] == "train"]
    assert [r["step"] for r in runs[True]] == [r["step"] for r in runs[False]]
    assert [r["lr"] for r in runs[True]] == pytest.approx([r["lr"] for r in runs[False]], rel=1e-6)
    assert [r["loss"] for r in runs[True]] == pytest.approx([r["loss"] for r in runs[False]], rel=1e-4)
    assert abs(runs[True][-1]["lr"] - MIN_LR) < 0.01 * (LR - MIN_LR)
