"""Reliability catalogue, paths: no command empties, truncates or overwrites a file or folder of the
user's. ``--overwrite`` replaces only a run directory, an output is never one of the inputs (by
inode: symlinks and hard links too), outputs are renamed into place only when complete, and any
path that cannot be one (a NUL, a directory, a symlink loop) is one line. See docs/reliability.md.
"""

from __future__ import annotations

import os
import subprocess

import pytest

from fault_helpers import (assert_clean_failure, assert_clean_success, cli_env, fingerprint, mlxt_argv, run_mlxt,
                           write_lm_setup, write_seq2seq_setup)


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("paths")
    env = cli_env(root / "cache")
    config = write_seq2seq_setup(root / "seq2seq")
    assert_clean_success(run_mlxt("train", "--config", config, "--run-dir", root / "seq2seq" / "run", "-q",
                                  cwd=root, env=env))
    return {"env": env, "root": root, "run": root / "seq2seq" / "run"}


def test_overwrite_refuses_a_folder_that_is_not_a_run(tmp_path):
    """``--run-dir . --overwrite`` in the folder holding the config and the corpus deletes nothing."""
    config = write_lm_setup(tmp_path)
    (tmp_path / "notes.txt").write_text("my notes\n")
    before = fingerprint(tmp_path)
    result = run_mlxt("train", "--config", config.name, "--run-dir", ".", "--overwrite", "-q", cwd=tmp_path,
                      env=cli_env(tmp_path.parent / f"{tmp_path.name}-cache"))
    assert_clean_failure(result, "not an mlxt run directory", "--overwrite")
    assert fingerprint(tmp_path) == before


def test_overwrite_refuses_a_run_holding_a_file_of_the_user(tmp_path, trained):
    """A run directory into which the user put a file of their own is not emptied either."""
    import shutil

    run = shutil.copytree(trained["run"], tmp_path / "run", symlinks=True)
    (run / "translations.txt").write_text("kept\n")
    before = fingerprint(run)
    config = write_seq2seq_setup(tmp_path / "new")
    result = run_mlxt("train", "--config", config, "--run-dir", run, "--overwrite", "-q", cwd=tmp_path,
                      env=trained["env"])
    assert_clean_failure(result, "translations.txt", "not an mlxt run directory")
    assert fingerprint(run) == before


@pytest.mark.parametrize("how", ["same_path", "symlink", "hardlink"])
def test_translate_output_that_is_the_input_is_refused(tmp_path, trained, how):
    source = tmp_path / "in.txt"
    source.write_text("haus\nkatze\n")
    output = {"same_path": source, "symlink": tmp_path / "link.txt", "hardlink": tmp_path / "hard.txt"}[how]
    if how == "symlink":
        output.symlink_to(source)
    elif how == "hardlink":
        os.link(source, output)
    before = fingerprint(tmp_path)
    result = run_mlxt("translate", trained["run"], "--input", source, "--output", output, "--beam", "1",
                      cwd=tmp_path, env=trained["env"])
    assert_clean_failure(result, "--output", "same file as the input")
    assert fingerprint(tmp_path) == before


def test_translate_output_into_the_run_is_refused(trained):
    run = trained["run"]
    before = fingerprint(run)
    result = run_mlxt("translate", run, "haus", "--output", run / "config.toml", "--beam", "1",
                      cwd=trained["root"], env=trained["env"])
    assert_clean_failure(result, "--output", "part of the run directory")
    assert fingerprint(run) == before


def test_translate_output_is_replaced_only_when_complete(tmp_path, trained):
    """A failure after some lines were translated leaves the earlier output file as it was."""
    output = tmp_path / "out.txt"
    output.write_text("earlier translations\n")
    good = b"haus\n" * 20  # more than one chunk (16 lines with --batch-size 1) before the bad line
    result = subprocess.run(mlxt_argv("translate", trained["run"], "--beam", "1", "--batch-size", "1",
                                      "--output", output), cwd=tmp_path, env=trained["env"],
                            input=good + b"caf\xe9\n", capture_output=True)
    assert result.returncode == 2, result.stderr
    assert b"Traceback" not in result.stderr
    assert output.read_text() == "earlier translations\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.txt"]  # no temporary left behind


def test_average_refuses_a_folder_of_the_user(tmp_path, trained):
    """``mlxt average -o DIR`` where DIR holds the user's own config.toml and tokenizer/."""
    out = tmp_path / "mine"
    (out / "tokenizer").mkdir(parents=True)
    (out / "tokenizer" / "shared.json").write_text('{"type": "char", "mine": true}\n')
    (out / "config.toml").write_text("[model]\nkind = \"seq2seq\"\n# my settings\n")
    before = fingerprint(out, trained["run"])
    result = run_mlxt("average", trained["run"], "--last", "1", "-o", out, cwd=tmp_path, env=trained["env"])
    assert_clean_failure(result, str(out), "--output")
    assert fingerprint(out, trained["run"]) == before


def test_average_into_a_new_directory_works(tmp_path, trained):
    out = tmp_path / "avg"
    assert_clean_success(run_mlxt("average", trained["run"], "--last", "1", "-o", out, cwd=tmp_path,
                                  env=trained["env"]))
    assert_clean_success(run_mlxt("translate", out, "haus", "--beam", "1", cwd=tmp_path, env=trained["env"]))


@pytest.mark.parametrize("case", ["nul", "directory", "symlink_loop", "empty"])
def test_impossible_paths_are_one_line(tmp_path, trained, case):
    loop = tmp_path / "loop"
    if case == "symlink_loop":
        loop.symlink_to(loop)
    path = {"nul": "in\x00.txt", "directory": str(tmp_path), "symlink_loop": str(loop), "empty": ""}[case]
    if case == "nul":  # a NUL cannot pass through exec, so this one runs in-process
        from mlxt.cli import main

        assert main(["translate", str(trained["run"]), "--input", path]) == 2
        return
    before = fingerprint(tmp_path)
    result = run_mlxt("translate", trained["run"], "--input", path, "--beam", "1", cwd=tmp_path,
                      env=trained["env"])
    assert_clean_failure(result, "--input" if case in ("empty",) else str(path))
    assert fingerprint(tmp_path) == before


def test_convert_refuses_a_folder_of_the_user(tmp_path, trained):
    out = tmp_path / "mine"
    (out / "tokenizer").mkdir(parents=True)
    (out / "config.toml").write_text("# my settings\n")
    before = fingerprint(out)
    result = run_mlxt("convert", tmp_path / "hf-model", out, cwd=tmp_path, env=trained["env"])
    assert_clean_failure(result, str(out), "OUT_DIR")
    assert fingerprint(out) == before


def test_data_prepare_out_into_a_run_is_refused(trained):
    """``mlxt data prepare --out RUN/tokenizer`` would replace the tokenizer the run's model was trained with."""
    run = trained["run"]
    before = fingerprint(run)
    corpus = trained["root"] / "seq2seq" / "corpus.tsv"
    result = run_mlxt("data", "prepare", "--path", corpus, "--kind", "seq2seq", "--max-len", "20",
                      "--out", run / "tokenizer", cwd=trained["root"], env=trained["env"])
    assert_clean_failure(result, "--out", "part of the run directory")
    assert fingerprint(run) == before
