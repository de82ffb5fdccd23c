"""Reliability catalogue, corpora: bad training text fails with one line naming the file (and line),
through ``mlxt train`` in a subprocess, and leaves the user's files as they were.

See docs/reliability.md for the whole catalogue.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from fault_helpers import assert_clean_failure, fingerprint, run_mlxt, tsv_lines, write_seq2seq_setup


def _train_fails(tmp_path: Path, *fragments: str, extra: tuple = ()) -> str:
    """Run ``mlxt train`` on ``tmp_path/tiny.toml``; the failure must be clean and touch no input."""
    before = fingerprint(*(p for p in tmp_path.iterdir() if p.name != "run"))
    result = run_mlxt("train", "--config", tmp_path / "tiny.toml", "--run-dir", tmp_path / "run", "-q", *extra,
                      cwd=tmp_path)
    message = assert_clean_failure(result, *fragments)
    assert fingerprint(*(p for p in tmp_path.iterdir() if p.name not in ("run", ".mlxt-cache"))) == \
        {k: v for k, v in before.items() if ".mlxt-cache" not in k}
    assert not (tmp_path / "run" / "checkpoints").exists()  # nothing half-trained left behind
    return message


def _set_data(tmp_path: Path, **values: str) -> None:
    config = tmp_path / "tiny.toml"
    text = config.read_text()
    head, rest = text.split("[data]\n", 1)
    lines = [line for line in rest.split("\n") if line.split(" = ")[0] not in values]
    extra = [f"{key} = {value}" for key, value in values.items()]
    config.write_text(head + "[data]\n" + "\n".join(extra + lines))


def test_missing_corpus_file(tmp_path):
    write_seq2seq_setup(tmp_path)
    missing = tmp_path / "no-such.tsv"
    _set_data(tmp_path, path=f'"{missing}"')
    _train_fails(tmp_path, str(missing), "not found")


def test_empty_corpus_file(tmp_path):
    write_seq2seq_setup(tmp_path)
    (tmp_path / "corpus.tsv").write_text("")
    _train_fails(tmp_path, "corpus.tsv", "empty")


def test_directory_instead_of_corpus_file(tmp_path):
    write_seq2seq_setup(tmp_path)
    folder = tmp_path / "folder"
    folder.mkdir()
    _set_data(tmp_path, path=f'"{folder}"')
    _train_fails(tmp_path, str(folder), "directory")


def test_invalid_utf8_names_the_line(tmp_path):
    write_seq2seq_setup(tmp_path)
    corpus = tmp_path / "corpus.tsv"
    data = corpus.read_bytes().split(b"\n")
    data[41] = b"caf\xe9\tcoffee"  # Latin-1, not UTF-8, on line 42
    corpus.write_bytes(b"\n".join(data))
    _train_fails(tmp_path, "corpus.tsv:42:", "invalid UTF-8")


def test_aligned_files_of_different_lengths(tmp_path):
    write_seq2seq_setup(tmp_path)
    pairs = [line.split("\t") for line in tsv_lines()]
    (tmp_path / "train.de").write_text("\n".join(p[0] for p in pairs) + "\n")
    (tmp_path / "train.en").write_text("\n".join(p[1] for p in pairs[:-5]) + "\n")
    _set_data(tmp_path, path='""', src_path=f'"{tmp_path / "train.de"}"', tgt_path=f'"{tmp_path / "train.en"}"')
    _train_fails(tmp_path, "train.en:296:", "differ in length", "300", "295")


def test_tsv_line_without_tab(tmp_path):
    lines = tsv_lines()
    lines[6] = lines[6].replace("\t", " ")
    write_seq2seq_setup(tmp_path, corpus_lines=lines)
    _train_fails(tmp_path, "corpus.tsv:7:", "expected source<TAB>target")


def test_every_sentence_longer_than_max_len(tmp_path):
    write_seq2seq_setup(tmp_path)
    _set_data(tmp_path, overlong='"reject"')
    _train_fails(tmp_path, "[data] max_len", "longer", extra=("--set", "data.max_len=4"))


def test_one_line_corpus(tmp_path):
    write_seq2seq_setup(tmp_path, corpus_lines=["haus\thouse"])
    _train_fails(tmp_path, "too few examples")


def test_gzip_corpus_that_is_not_gzip(tmp_path):
    write_seq2seq_setup(tmp_path)
    fake = tmp_path / "corpus.tsv.gz"
    fake.write_text("haus\thouse\n")
    _set_data(tmp_path, path=f'"{fake}"', format='"tsv"')
    _train_fails(tmp_path, str(fake), "gzip")


def test_lm_text_shorter_than_one_block(tmp_path):
    from fault_helpers import write_lm_setup

    config = write_lm_setup(tmp_path)
    (tmp_path / "text.txt").write_text("a short text\n" * 3)
    before = fingerprint(tmp_path / "text.txt", config)
    result = run_mlxt("train", "--config", config, "--run-dir", tmp_path / "run", "-q",
                      "--set", "data.block_size=30", "--set", "model.max_len=32", cwd=tmp_path)
    assert_clean_failure(result, "block_size")
    assert fingerprint(tmp_path / "text.txt", config) == before


@pytest.mark.parametrize("argv, fragments", [
    (("data", "prepare", "--kind", "seq2seq", "--path", "{tmp}/absent.tsv", "--no-cache"), ("absent.tsv", "not found")),
    (("data", "prepare", "--kind", "seq2seq", "--path", "{tmp}", "--no-cache"), ("directory",)),
])
def test_data_prepare_cli_reports_bad_paths(tmp_path, argv, fragments):
    result = run_mlxt(*(a.format(tmp=tmp_path) for a in argv), cwd=tmp_path)
    assert_clean_failure(result, *fragments)
