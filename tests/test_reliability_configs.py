"""Reliability catalogue, configs: a mistake in a training TOML or a ``--set`` override fails with one
line naming the key (or file and line) and what was expected, before anything is written.

Every case also passes ``--overwrite`` onto an existing run directory, which must survive intact:
a config is checked completely before any existing run is deleted. See docs/reliability.md.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from fault_helpers import assert_clean_failure, fingerprint, run_mlxt, write_seq2seq_setup

CASES = {
    # name: (--set overrides, fragments the one-line message must hold)
    "unknown_key": (["model.d_modle=16"], ["unknown key", "d_modle", "valid keys", "d_model"]),
    "unknown_section": (["optim.lr=1"], ["unknown section", "optim", "model, data, train"]),
    "wrong_type": (['train.steps="ten"'], ["steps", "expected an integer", "'ten'"]),
    "wrong_type_bool": (["train.compile=3"], ["compile", "expected true or false"]),
    "negative_size": (["data.max_tokens=-5"], ["max_tokens", "-5", "positive integer"]),
    "zero_size": (["model.d_model=0"], ["d_model", "positive integer", "0"]),
    "zero_steps": (["train.steps=0"], ["[train] steps", "positive integer"]),
    "heads_do_not_divide_d_model": (["model.num_heads=3"], ["d_model", "16", "not divisible", "num_heads=3"]),
    "unknown_model_kind": (['model.kind="gpt"'], ["kind", "'gpt'", "seq2seq", "lm"]),
    "unknown_schedule": (['train.schedule="linear-ish"'], ["schedule", "linear-ish", "expected one of"]),
    "shared_embeddings_with_different_vocabularies": (
        ["model.share_embeddings=true", "data.joint_vocab=false"], ["share_embeddings", "equal vocabularies"]),
    "model_max_len_shorter_than_data": (["model.max_len=8", 'model.positional="learned"'],
                                        ["[model] max_len = 8", "[data] max_len = 48"]),
    "malformed_override": (["train.steps"], ["--set", "section.key=value"]),
    "min_lr_above_lr": (["train.min_lr=1.0"], ["min_lr", "[0, lr="]),
    # ids outside the vocabulary read past the embedding table (a segfault in the first BLEU sample)
    "decoder_start_outside_the_vocabulary": (["model.decoder_start_id=100000", "train.bleu_samples=2"],
                                             ["model.decoder_start_id", "100000", "vocab_size="]),
    "eos_outside_the_vocabulary": (["model.eos_id=-1"], ["model.eos_id", "-1", "vocab_size="]),
    # a learned-position table of 10^9 rows cannot be allocated (a segfault)
    "learned_positions_too_large": (['model.positional="learned"', "model.max_len=1000000000"],
                                    ["model.max_len = 1000000000", "2^31"]),
    "weights_larger_than_memory": (["model.d_model=4096", "model.d_ff=16384", "model.num_encoder_layers=1000",
                                    "model.num_decoder_layers=1000"],  # 1.5 TiB of float32 weights
                                   ["model.", "GiB", "memory"]),
    "nan_number": (["train.lr=nan"], ["[train].lr", "finite number", "nan"]),
    "infinite_number": (["model.dropout=inf"], ["[model].dropout", "finite number", "inf"]),
    "integer_wider_than_64_bits": (["train.steps=100000000000000000000"], ["[train].steps", "64 bits"]),
}


@pytest.fixture
def existing_run(tmp_path) -> Path:
    """A run directory with user data in it (contents need not be a real run for this check)."""
    run = tmp_path / "existing"
    (run / "checkpoints" / "step-00000003").mkdir(parents=True)
    (run / "checkpoints" / "step-00000003" / "model.safetensors").write_bytes(b"weights that took a week")
    (run / "metrics.jsonl").write_text('{"split": "train", "step": 3, "loss": 1.0}\n')
    (run / "config.toml").write_text("[model]\nkind = \"seq2seq\"\n")
    return run


@pytest.mark.parametrize("name", sorted(CASES))
def test_bad_config_value(tmp_path, existing_run, name):
    overrides, fragments = CASES[name]
    config = write_seq2seq_setup(tmp_path)
    before = fingerprint(existing_run, config, tmp_path / "corpus.tsv")
    argv = ["train", "--config", config, "--run-dir", existing_run, "--overwrite", "-q"]
    for text in overrides:
        argv += ["--set", text]
    result = run_mlxt(*argv, cwd=tmp_path)
    assert_clean_failure(result, *fragments)
    assert fingerprint(existing_run, config, tmp_path / "corpus.tsv") == before


def test_unknown_key_in_the_file(tmp_path, existing_run):
    config = write_seq2seq_setup(tmp_path)
    config.write_text(config.read_text().replace("warmup_steps = 2", "warmup_step = 2"))
    before = fingerprint(existing_run)
    result = run_mlxt("train", "--config", config, "--run-dir", existing_run, "--overwrite", "-q", cwd=tmp_path)
    assert_clean_failure(result, "unknown key", "warmup_step", "warmup_steps")
    assert fingerprint(existing_run) == before


def test_toml_syntax_error_names_file_and_line(tmp_path, existing_run):
    config = write_seq2seq_setup(tmp_path)
    lines = config.read_text().split("\n")
    lines[4] = "d_model = = 16"  # line 5
    config.write_text("\n".join(lines))
    before = fingerprint(existing_run)
    result = run_mlxt("train", "--config", config, "--run-dir", existing_run, "--overwrite", "-q", cwd=tmp_path)
    assert_clean_failure(result, str(config), "invalid TOML", "line 5")
    assert fingerprint(existing_run) == before


def test_missing_config_file(tmp_path):
    result = run_mlxt("train", "--config", tmp_path / "nope.toml", "-q", cwd=tmp_path)
    assert_clean_failure(result, "nope.toml", "not found")
    assert not (tmp_path / "runs").exists()


def test_existing_run_directory_is_not_replaced_without_overwrite(tmp_path, existing_run):
    config = write_seq2seq_setup(tmp_path)
    before = fingerprint(existing_run)
    result = run_mlxt("train", "--config", config, "--run-dir", existing_run, "-q", cwd=tmp_path)
    assert_clean_failure(result, str(existing_run), "already exists", "--resume", "--overwrite")
    assert fingerprint(existing_run) == before


def test_config_and_resume_together(tmp_path, existing_run):
    config = write_seq2seq_setup(tmp_path)
    before = fingerprint(existing_run)
    result = run_mlxt("train", "--config", config, "--resume", existing_run, "-q", cwd=tmp_path)
    assert_clean_failure(result, "either --config", "--resume")
    assert fingerprint(existing_run) == before
