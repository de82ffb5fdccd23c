"""``--resume`` refuses what would silently continue a different experiment: a changed [model]
or [data] (in config.toml or via --set), and --run-dir naming another directory. Train-only
settings may change."""

from __future__ import annotations

import pytest

from fault_helpers import assert_clean_failure, assert_clean_success, cli_env, fingerprint, run_mlxt
from mlxt.errors import MlxtError
from mlxt.train import checkpoint as ckpt
from mlxt.train.config import load_config
from mlxt.train.trainer import load_run_config, train
from train_helpers import write_tiny_config


@pytest.fixture
def run(tmp_path):
    run_dir = tmp_path / "run"
    train(load_config(write_tiny_config(tmp_path, steps=4, eval_every=100, save_every=2)), run_dir,
          show_progress=False)
    return run_dir


def _resume(run_dir, *overrides):
    return train(load_run_config(run_dir, list(overrides)), run_dir, resume=True, show_progress=False)


def test_changed_model_field_via_set_is_refused(run):
    before = fingerprint(run / "checkpoints", run / "metrics.jsonl")
    with pytest.raises(MlxtError, match=r"cannot resume with a changed model.*\[model\] num_heads: 2 -> 4"):
        _resume(run, "model.num_heads=4", "train.steps=6")
    assert fingerprint(run / "checkpoints", run / "metrics.jsonl") == before


def test_changed_model_field_in_config_toml_is_refused(run):
    toml = run / "config.toml"
    toml.write_text(toml.read_text().replace('activation = "relu"', 'activation = "gelu"'))
    with pytest.raises(MlxtError) as error:
        _resume(run, "train.steps=6")
    assert "[model] activation: 'relu' -> 'gelu'" in str(error.value)
    assert str(ckpt.latest_checkpoint(run / "checkpoints")) in str(error.value)


def test_changed_data_field_is_refused(run):
    with pytest.raises(MlxtError, match=r"\[data\] noise: .* -> 0\.5"):
        _resume(run, "data.noise=0.5", "train.steps=6")


def test_train_settings_may_change(run):
    result = _resume(run, "train.steps=6", "train.lr=1e-3", "train.min_lr=0.0", "train.eval_every=3")
    assert result.step == 6 and result.status == "finished"


def test_resume_with_run_dir_is_a_clean_error(run, tmp_path):
    other = tmp_path / "elsewhere"
    result = run_mlxt("train", "--resume", run, "--run-dir", other, "-q", cwd=tmp_path, env=cli_env(tmp_path / "c"))
    assert_clean_failure(result, "--run-dir", str(other), "--resume", str(run))
    assert not other.exists()
    assert ckpt.latest_checkpoint(run / "checkpoints").name == "step-00000004"


def test_cli_names_the_field(run, tmp_path):
    result = run_mlxt("train", "--resume", run, "-q", "--set", "model.num_heads=4", cwd=tmp_path,
                      env=cli_env(tmp_path / "c"))
    assert_clean_failure(result, "[model] num_heads: 2 -> 4")
    fine = run_mlxt("train", "--resume", run, "-q", "--set", "train.steps=5", cwd=tmp_path, env=cli_env(tmp_path / "c"))
    assert_clean_success(fine)
