"""Reliability catalogue, files mlxt reads back and data it cannot learn from: a damaged
``state.json`` or ``metrics.jsonl``, a prepared-data cache entry made by another run, compressed
corpora damaged in the middle, corpora that leave nothing to train on, and evaluation of a run
whose corpus changed since training. See docs/reliability.md.
"""

from __future__ import annotations

import gzip
import io
import json
import zipfile

import pytest

from fault_helpers import (assert_clean_failure, assert_clean_success, cli_env, copy_run, fingerprint, run_mlxt,
                           tsv_lines, write_seq2seq_setup)


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("readback")
    env = cli_env(root / "cache")
    config = write_seq2seq_setup(root / "seq2seq", steps=3)
    assert_clean_success(run_mlxt("train", "--config", config, "--run-dir", root / "run", "-q", cwd=root, env=env))
    return {"root": root, "env": env, "run": root / "run", "config": config}


def _state(run):
    return run / "checkpoints" / "step-00000003" / "state.json"


@pytest.mark.parametrize("content, fragment", [
    ("[]", "expected a JSON object, got list"),
    ('{"format_version": 1, "step": "three"}', "'step' has the wrong type"),
    ('{"format_version": 1, "step": 3, "rng": [1]}', "'rng' is not a random key"),
])
def test_state_json_of_the_wrong_shape(tmp_path, trained, content, fragment):
    run = copy_run(trained["run"], tmp_path / "run")
    _state(run).write_text(content)
    before = fingerprint(run)
    for argv in (("translate", run, "haus", "--beam", "1"), ("train", "--resume", run, "-q")):
        assert_clean_failure(run_mlxt(*argv, cwd=tmp_path, env=trained["env"]), str(_state(run)), fragment)
    assert fingerprint(run) == before


def test_state_json_without_the_training_state(tmp_path, trained):
    """An inference-only state (no data position) cannot be resumed: one line, not a KeyError."""
    run = copy_run(trained["run"], tmp_path / "run")
    _state(run).write_text('{"format_version": 1, "step": 3}')
    before = fingerprint(run)
    result = run_mlxt("train", "--resume", run, "-q", cwd=tmp_path, env=trained["env"])
    assert_clean_failure(result, str(_state(run)), "no 'data' entry")
    assert fingerprint(run) == before


@pytest.mark.parametrize("line, fragment", [
    ("[1, 2]", "not a metrics record"),
    ('{"split": "train", "step": "x"}', "not a metrics record"),
    ("{not json", "not a JSON record"),
])
def test_damaged_metrics_line_in_the_middle(tmp_path, trained, line, fragment):
    run = copy_run(trained["run"], tmp_path / "run")
    lines = (run / "metrics.jsonl").read_text().split("\n")
    lines.insert(1, line)
    (run / "metrics.jsonl").write_text("\n".join(lines))
    before = fingerprint(run)
    for argv in (("plot", run), ("train", "--resume", run, "-q", "--set", "train.steps=4")):
        assert_clean_failure(run_mlxt(*argv, cwd=tmp_path, env=trained["env"]), "metrics.jsonl:2", fragment)
    assert fingerprint(run) == before


def test_cache_entry_of_other_settings_is_not_used(tmp_path, trained):
    """A prepared-data entry whose recorded settings differ (copied from elsewhere, or a key
    collision) is prepared again instead of being trusted."""
    cache = tmp_path / "cache"
    env = cli_env(cache)
    config = write_seq2seq_setup(tmp_path / "data", steps=3)
    argv = ("data", "prepare", "--path", tmp_path / "data" / "corpus.tsv", "--kind", "seq2seq", "--json")
    first = json.loads(run_mlxt(*argv, cwd=tmp_path, env=env).stdout)
    entry = next((cache / "prepared").iterdir())
    meta = json.loads((entry / "meta.json").read_text())
    meta["settings"]["max_len"] = 7
    (entry / "meta.json").write_text(json.dumps(meta))
    second = json.loads(run_mlxt(*argv, cwd=tmp_path, env=env).stdout)
    assert first["reused_cache"] is False and second["reused_cache"] is False
    assert second["splits"] == first["splits"]
    assert config.exists()


def _gzip_damaged_in_the_middle(path) -> None:
    data = bytearray(gzip.compress(("\n".join(tsv_lines(2000)) + "\n").encode()))
    for i in range(len(data) // 2, len(data) // 2 + 16):
        data[i] ^= 0x55
    path.write_bytes(bytes(data))


def _zip_damaged_in_the_middle(path) -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("deu.txt", "".join(line + "\tCC-BY\n" for line in tsv_lines(2000)))
    data = bytearray(buffer.getvalue())
    for i in range(len(data) // 3, len(data) // 3 + 16):
        data[i] ^= 0x55
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("name, damage", [("corpus.tsv.gz", _gzip_damaged_in_the_middle),
                                          ("deu-eng.zip", _zip_damaged_in_the_middle)])
def test_compressed_corpus_damaged_in_the_middle(tmp_path, name, damage):
    path = tmp_path / name
    damage(path)
    result = run_mlxt("data", "prepare", "--path", path, "--kind", "seq2seq", "--no-cache", cwd=tmp_path,
                      env=cli_env(tmp_path / "cache"))
    assert_clean_failure(result, str(path), "damaged" if name.endswith(".zip") else "not a readable gzip file")


def test_max_len_that_leaves_no_room_for_a_token(tmp_path):
    """``[data] max_len = 1`` truncated every example to nothing and trained on it."""
    config = write_seq2seq_setup(tmp_path, steps=2)
    result = run_mlxt("train", "--config", config, "--run-dir", tmp_path / "run", "-q", "--set", "data.max_len=1",
                      cwd=tmp_path)
    assert_clean_failure(result, "[data] max_len = 1", "no room")
    assert not (tmp_path / "run" / "checkpoints").exists()


def test_a_vocabulary_of_one_character_warns(tmp_path):
    lines = [f"{'a' * n}\t{'a' * n}" for n in range(1, 80)]
    config = write_seq2seq_setup(tmp_path, steps=1, corpus_lines=lines)
    result = run_mlxt("train", "--config", config, "--run-dir", tmp_path / "run", "-q", cwd=tmp_path)
    assert_clean_success(result)
    warnings = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(warnings) == 1 and warnings[0].startswith("mlxt: warning: "), result.stderr
    assert "1 token besides the 4 special ones" in warnings[0]


def test_evaluate_after_the_corpus_changed(tmp_path, trained):
    """Evaluation re-prepares the run's data; if the corpus changed, it says so (as --resume does)."""
    run = copy_run(trained["run"], tmp_path / "run")
    corpus = tmp_path / "corpus.tsv"
    corpus.write_text("\n".join(line.upper() for line in tsv_lines()) + "\n")  # other characters, same size
    config = (run / "config.toml").read_text()
    (run / "config.toml").write_text(config.replace(str(trained["config"].parent / "corpus.tsv"), str(corpus)))
    before = fingerprint(run)
    result = run_mlxt("evaluate", run, "--beam", "1", cwd=tmp_path, env=trained["env"])
    assert_clean_failure(result, "corpus or [data] changed since this run was trained")
    assert fingerprint(run) == before


def test_every_target_empty(tmp_path):
    """A TSV whose target column is empty everywhere leaves nothing to learn from."""
    config = write_seq2seq_setup(tmp_path, steps=1, corpus_lines=[line.split("\t")[0] + "\t" for line in tsv_lines()])
    held_out = tmp_path / "held-out.tsv"
    held_out.write_text("haus\thouse\n")
    result = run_mlxt("train", "--config", config, "--run-dir", tmp_path / "run", "-q", "--set",
                      f'data.valid_path="{held_out}"', "--set", f'data.test_path="{held_out}"', cwd=tmp_path)
    assert_clean_failure(result, "corpus.tsv", "every training target is empty")
    assert not (tmp_path / "run" / "checkpoints").exists()
