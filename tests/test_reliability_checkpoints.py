"""Reliability catalogue, checkpoints and run directories: a damaged, foreign or too new run fails
with one line naming the file (and tensor or field), for decoding (``mlxt translate``) and for
``mlxt train --resume``, and the run directory is left exactly as it was.

One tiny seq2seq run and one tiny lm run are trained per module; each test damages a private copy.
See docs/reliability.md for the whole catalogue.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import load_file, save_file

from fault_helpers import (assert_clean_failure, assert_clean_success, cli_env, copy_run, fingerprint, run_mlxt,
                           write_lm_setup, write_seq2seq_setup)

BEST = Path("checkpoints") / "step-00000006"


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> dict:
    """``{"seq2seq": run, "lm": run, "env": env}``, each trained 6 steps (checkpoints 3 and 6)."""
    root = tmp_path_factory.mktemp("trained")
    env = cli_env(root / "cache")
    runs = {"env": env}
    for kind, setup in (("seq2seq", write_seq2seq_setup), ("lm", write_lm_setup)):
        config = setup(root / kind)
        result = run_mlxt("train", "--config", config, "--run-dir", root / kind / "run", "-q", cwd=root, env=env)
        assert_clean_success(result)
        runs[kind] = root / kind / "run"
    return runs


@pytest.fixture
def run(trained, tmp_path) -> Path:
    """A private copy of the seq2seq run, to damage."""
    return copy_run(trained["seq2seq"], tmp_path / "run")


def _fails_cleanly(trained, run: Path, argv: tuple, *fragments: str) -> str:
    before = fingerprint(run)
    result = run_mlxt(*argv, cwd=run.parent, env=trained["env"], input="haus katze\n")
    message = assert_clean_failure(result, *fragments)
    assert fingerprint(run) == before, "the run directory was changed"
    return message


def _translate(run: Path, *extra) -> tuple:
    return ("translate", run, "--beam", "1", *extra)


def _resume(run: Path) -> tuple:
    return ("train", "--resume", run, "-q", "--set", "train.steps=9")


BOTH = pytest.mark.parametrize("command", ["translate", "resume"])


def _argv(command: str, run: Path) -> tuple:
    return _translate(run, "--checkpoint", "last") if command == "translate" else _resume(run)


@BOTH
def test_missing_weights_file(trained, run, command):
    (run / BEST / "model.safetensors").unlink()
    _fails_cleanly(trained, run, _argv(command, run), "step-00000006/model.safetensors", "missing")


@BOTH
def test_truncated_safetensors(trained, run, command):
    path = run / BEST / "model.safetensors"
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    _fails_cleanly(trained, run, _argv(command, run), "step-00000006/model.safetensors", "cannot read")


@BOTH
def test_tensor_of_the_wrong_shape(trained, run, command):
    path = run / BEST / "model.safetensors"
    tensors = load_file(str(path))
    name = next(k for k in sorted(tensors) if k.endswith("weight") and tensors[k].ndim == 2)
    tensors[name] = np.zeros((tensors[name].shape[0] + 1, tensors[name].shape[1]), tensors[name].dtype)
    save_file(tensors, str(path))
    _fails_cleanly(trained, run, _argv(command, run), "model.safetensors", f"'{name}'", "shape", "expects")


@BOTH
def test_missing_tensor(trained, run, command):
    path = run / BEST / "model.safetensors"
    tensors = load_file(str(path))
    name = sorted(tensors)[0]
    del tensors[name]
    save_file(tensors, str(path))
    _fails_cleanly(trained, run, _argv(command, run), "model.safetensors", "missing tensor", f"'{name}'")


@BOTH
def test_newer_format_version(trained, run, command):
    path = run / BEST / "state.json"
    state = json.loads(path.read_text())
    state["format_version"] = 99
    path.write_text(json.dumps(state))
    _fails_cleanly(trained, run, _argv(command, run), "state.json", "format_version 99", "newer", "upgrade mlxt")


@BOTH
def test_corrupt_state_json(trained, run, command):
    (run / BEST / "state.json").write_text('{"format_version": 1, "step": ')
    _fails_cleanly(trained, run, _argv(command, run), "step-00000006/state.json", "not valid JSON")


def test_missing_model_config(trained, run):
    (run / BEST / "config.json").unlink()
    _fails_cleanly(trained, run, _translate(run, "--checkpoint", "last"), "config.json", "not found")


def test_checkpoint_of_another_model_kind_in_the_run(trained, run):
    """An lm checkpoint copied into a seq2seq run: decoding and resuming refuse it."""
    copy_run(trained["lm"] / BEST, run / "checkpoints" / "step-00000009")
    _fails_cleanly(trained, run, _translate(run, "--checkpoint", "last"), "lm")
    _fails_cleanly(trained, run, _resume(run), "step-00000009", "lm", "seq2seq")


def test_translate_with_an_lm_run(trained, tmp_path):
    lm = copy_run(trained["lm"], tmp_path / "lm")
    _fails_cleanly(trained, lm, _translate(lm), "holds a lm model", "translate needs seq2seq")


def test_generate_with_a_seq2seq_run(trained, run):
    _fails_cleanly(trained, run, ("generate", run, "--max-tokens", "3"), "holds a seq2seq model", "generate needs")


def _bigger_tokenizer(run: Path) -> None:
    """Replace the run's tokenizer by one with more characters than the model has rows."""
    from mlxt.data.tokenizers import CharTokenizer

    path = run / "tokenizer" / "shared.json"
    assert path.exists()
    CharTokenizer.train(["".join(chr(c) for c in range(0x100, 0x300))]).save(path)


def test_tokenizer_vocabulary_mismatch_for_decoding(trained, run):
    _bigger_tokenizer(run)
    _fails_cleanly(trained, run, _translate(run), "tokenizer", "tokens but the model's vocabulary has")


def test_tokenizer_mismatch_on_resume(trained, run):
    _bigger_tokenizer(run)
    _fails_cleanly(trained, run, _resume(run), "tokenizer")


def test_missing_tokenizer_files(trained, run):
    for p in (run / "tokenizer").iterdir():
        p.unlink()
    _fails_cleanly(trained, run, _translate(run), "tokenizer", "no tokenizer files")


def test_checkpoint_that_does_not_exist(trained, run):
    _fails_cleanly(trained, run, _translate(run, "--checkpoint", "999"), "step-00000999", "not found")


def test_translate_a_directory_that_is_not_a_run(trained, tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    (folder / "cat.jpg").write_bytes(b"\xff\xd8\xff")
    _fails_cleanly(trained, folder, _translate(folder), str(folder), "not a run directory")


def test_missing_optimizer_state_on_resume(trained, run):
    (run / BEST / "optimizer.safetensors").unlink()
    _fails_cleanly(trained, run, _resume(run), "optimizer.safetensors", "missing")


def test_truncated_optimizer_state_on_resume(trained, run):
    path = run / BEST / "optimizer.safetensors"
    path.write_bytes(path.read_bytes()[:100])
    _fails_cleanly(trained, run, _resume(run), "optimizer.safetensors", "cannot read")


def test_corrupt_run_config_on_resume(trained, run):
    path = run / "config.toml"
    path.write_text(path.read_text().replace("[train]", "[train\n"))
    _fails_cleanly(trained, run, _resume(run), "config.toml", "invalid TOML")


def test_average_more_checkpoints_than_kept(trained, run):
    _fails_cleanly(trained, run, ("average", run, "--last", "10"), "last 10 checkpoints", "there are 2", "keep_last")


def test_average_a_directory_without_checkpoints(trained, tmp_path):
    folder = tmp_path / "empty-run"
    folder.mkdir()
    _fails_cleanly(trained, folder, ("average", folder), "no checkpoints to average")


def test_plot_a_directory_without_metrics(trained, tmp_path):
    folder = tmp_path / "not-a-run"
    folder.mkdir()
    _fails_cleanly(trained, folder, ("plot", folder), "metrics.jsonl", "not found")


def test_convert_a_directory_that_is_not_a_hugging_face_model(trained, tmp_path):
    folder = tmp_path / "downloads"
    folder.mkdir()
    (folder / "model.bin").write_bytes(b"\x00" * 16)
    out = tmp_path / "converted"
    _fails_cleanly(trained, folder, ("convert", folder, out), "not a Hugging Face model directory", "config.json")
    assert not out.exists()


def test_corrupt_tokenizer_json(trained, run):
    (run / "tokenizer" / "shared.json").write_text('{"type": "char", "vocab')
    _fails_cleanly(trained, run, _translate(run), "tokenizer/shared.json", "not a tokenizer JSON file")


def test_tokenizer_of_an_unknown_type(trained, run):
    (run / "tokenizer" / "shared.json").write_text('{"type": "wordpiece"}')
    _fails_cleanly(trained, run, _translate(run), "shared.json", "unknown tokenizer type 'wordpiece'", "char")


def test_model_config_with_a_key_this_version_does_not_know(trained, run):
    path = run / BEST / "config.json"
    config = json.loads(path.read_text())
    config["flash_attention"] = True  # as a newer mlxt might write
    path.write_text(json.dumps(config))
    _fails_cleanly(trained, run, _translate(run, "--checkpoint", "last"), "config.json", "unknown key",
                   "flash_attention")


def test_best_pointing_at_a_deleted_checkpoint_falls_back(trained, run):
    """``best`` dangling (its checkpoint deleted by hand): decoding uses the newest one instead."""
    target = (run / "checkpoints" / "best").resolve()
    for f in target.iterdir():
        f.unlink()
    target.rmdir()
    assert (run / "checkpoints" / "best").is_symlink() and not (run / "checkpoints" / "best").exists()
    before = fingerprint(run)
    result = run_mlxt("translate", run, "haus", "--beam", "1", cwd=run.parent, env=trained["env"])
    assert_clean_success(result)
    assert len(result.stdout.split("\n")[:-1]) == 1
    assert fingerprint(run) == before
