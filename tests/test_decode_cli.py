"""`mlxt translate`, `mlxt generate` and `mlxt evaluate` on tiny runs trained by `mlxt train`."""

from __future__ import annotations

import io
import json

import pytest

from mlxt.cli import main
from tiny_runs import train_tiny_runs


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    return train_tiny_runs(tmp_path_factory.mktemp("decode_cli"))


def test_translate_arguments_nbest_and_plot(runs, capsys):
    png = runs / "att.png"
    assert main(["translate", str(runs / "s2s"), "the cat", "", "a red ☃ tree", "--beam", "3",
                 "--plot-attention", str(png), "--sentence", "3", "--layer", "0"]) == 0
    captured = capsys.readouterr()
    lines = captured.out.split("\n")
    assert len(lines) == 4 and lines[1] == "" and lines[3] == ""
    assert png.read_bytes()[:4] == b"\x89PNG" and "attention map written" in captured.err
    assert main(["translate", str(runs / "s2s"), "the dog", "--beam", "3", "--n-best", "2"]) == 0
    nbest = capsys.readouterr().out.splitlines()
    assert len(nbest) == 2 and all(l.startswith("0 ||| ") for l in nbest)
    scores = [float(l.rsplit("|||", 1)[1]) for l in nbest]
    assert scores[0] >= scores[1]


def test_translate_file_and_stdin_agree(runs, capsys, monkeypatch):
    (runs / "in.txt").write_text("the cat\nred tree\n")
    assert main(["translate", str(runs / "s2s"), "--input", str(runs / "in.txt"), "--beam", "1"]) == 0
    from_file = capsys.readouterr().out
    monkeypatch.setattr("sys.stdin", io.StringIO("the cat\nred tree\n"))
    assert main(["translate", str(runs / "s2s"), "--beam", "1"]) == 0
    assert capsys.readouterr().out == from_file and len(from_file.splitlines()) == 2


def test_translate_mistakes_exit_2(runs, capsys):
    assert main(["translate", str(runs / "lm"), "x"]) == 2
    assert "translate needs seq2seq" in capsys.readouterr().err
    assert main(["translate", str(runs / "missing"), "x"]) == 2
    assert main(["translate", str(runs / "s2s"), "--input", str(runs / "nope.txt")]) == 2
    assert main(["translate", str(runs / "s2s"), "x", "--plot-attention", str(runs / "p.png"), "--layer", "7"]) == 2
    assert "--layer" in capsys.readouterr().err


def test_generate_streams_reproducibly(runs, capsys):
    args = ["generate", str(runs / "lm"), "--prompt", "the ", "--max-tokens", "40", "--seed", "3"]
    assert main(args) == 0
    first = capsys.readouterr().out
    assert main(args) == 0
    assert capsys.readouterr().out == first and first.startswith("the ")
    assert main(["generate", str(runs / "s2s")]) == 2
    assert "generate needs an lm run" in capsys.readouterr().err
    assert main(["generate", str(runs / "lm"), "--top-p", "0"]) == 2


def test_evaluate_writes_reports(runs, capsys):
    assert main(["evaluate", str(runs / "s2s"), "--split", "test", "--beam", "2"]) == 0
    out = capsys.readouterr().out
    path = out.strip().splitlines()[-1].split("report written to ")[1]
    report = json.loads(open(path).read())
    assert report["sentences"] == 10 and "BLEU" not in report
    assert report["bleu_signature"].startswith("nrefs:1") and 0 <= report["chrf"] <= 100
    assert report["loss"] > 0 and report["perplexity"] > 1 and 0 <= report["exact_match"] <= 100
    out_path = runs / "lm-report.json"
    assert main(["evaluate", str(runs / "lm"), "--split", "valid", "-o", str(out_path)]) == 0
    lm = json.loads(out_path.read_text())
    assert lm["kind"] == "lm" and lm["perplexity"] > 1 and "bleu" not in lm
    assert main(["evaluate", str(runs / "lm"), "--split", "nosuch"]) == 2


def test_run_decode_section_sets_defaults(runs, capsys, tmp_path):
    import shutil

    run = tmp_path / "s2s"
    shutil.copytree(runs / "s2s", run)
    config = (run / "config.toml").read_text()
    (run / "config.toml").write_text(config + '\n[decode]\nbeam_size = 2\npenalty = "plain"\nlength_penalty = 1.0\n')
    assert main(["translate", str(run), "the cat", "--n-best", "2"]) == 0  # beam 2 from [decode]
    assert len(capsys.readouterr().out.splitlines()) == 2
    assert main(["translate", str(run), "the cat", "--n-best", "3"]) == 2  # more than the beam
    (run / "config.toml").write_text(config + "\n[decode]\nbeem_size = 2\n")
    assert main(["translate", str(run), "the cat"]) == 2
    assert "unknown option 'beem_size'" in capsys.readouterr().err


def test_foreign_or_mismatched_files_are_refused(runs, capsys, tmp_path):
    import shutil

    from mlxt.data.tokenizers import CharTokenizer

    bad_tok = tmp_path / "tok"
    shutil.copytree(runs / "s2s", bad_tok)
    CharTokenizer(list("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")).save(
        bad_tok / "tokenizer" / "shared.json")
    assert main(["translate", str(bad_tok), "the cat"]) == 2
    assert "tokenizer has" in capsys.readouterr().err
    swapped = tmp_path / "swapped"
    shutil.copytree(runs / "lm", swapped, symlinks=True)
    weights = next((runs / "s2s" / "checkpoints").glob("step-*")) / "model.safetensors"
    shutil.copy(weights, next((swapped / "checkpoints").glob("step-*")) / "model.safetensors")
    assert main(["generate", str(swapped), "--prompt", "the"]) == 2
    assert "model.safetensors" in capsys.readouterr().err
