"""`mlxt evaluate`: the split it picks by default, and its progress bar, on tiny trained runs."""

from __future__ import annotations

import json
import random

import pytest

from mlxt.cli import main

WORDS = "the cat dog sees a big small red house tree runs walks".split()
MODEL = 'd_model = 32\nnum_heads = 2\nnum_decoder_layers = 1\nd_ff = 64\ndropout = 0.0\nmax_len = 48\n'
TRAIN = ('[train]\nsteps = 10\nlr = 3e-3\nschedule = "constant"\neval_every = 10\nsave_every = 10\n'
         'log_every = 10\ncompile = false\nbleu_samples = 0\n')


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("evaluate_run")
    rnd = random.Random(1)
    lines = [" ".join(rnd.choice(WORDS) for _ in range(rnd.randint(1, 6))) for _ in range(300)]
    (root / "pairs.tsv").write_text("".join(f"{s}\t{s.upper()}\n" for s in lines))
    (root / "text.txt").write_text("".join(f"{s}.\n" for s in lines))
    (root / "s2s.toml").write_text(
        f'[model]\nkind = "seq2seq"\nnum_encoder_layers = 1\n{MODEL}\n[data]\npath = "{root}/pairs.tsv"\n'
        'format = "tsv"\ntokenizer = "char"\nvalid_size = 10\ntest_size = 40\nmax_len = 40\nmax_tokens = 1024\n'
        + TRAIN)
    (root / "lm.toml").write_text(  # an lm cuts train and valid only: no test split
        f'[model]\nkind = "lm"\npositional = "learned"\n{MODEL}\n[data]\npath = "{root}/text.txt"\n'
        'format = "text"\ntokenizer = "char"\nvalid_size = 0.1\nbatch_size = 4\nblock_size = 32\n' + TRAIN)
    for name in ("s2s", "lm"):
        assert main(["train", "--config", str(root / f"{name}.toml"), "--run-dir", str(root / name), "-q"]) == 0
    return root


def report_of(out: str) -> dict:
    return json.loads(open(out.strip().splitlines()[-1].split("report written to ")[1]).read())


def test_lm_run_defaults_to_valid_and_says_so(runs, capsys):
    assert main(["evaluate", str(runs / "lm")]) == 0
    out = capsys.readouterr().out
    assert report_of(out)["split"] == "valid"
    assert "split        valid  (default: this run's data has no test split)" in out.splitlines()
    assert main(["evaluate", str(runs / "lm"), "--split", "test"]) == 2  # asked for: refused, naming the splits
    assert "--split test: this run's data has the splits train, valid" in capsys.readouterr().err


def test_seq2seq_run_defaults_to_test(runs, capsys):
    assert main(["evaluate", str(runs / "s2s"), "--beam", "1", "--limit", "7"]) == 0
    out = capsys.readouterr().out
    assert report_of(out)["split"] == "test" and report_of(out)["sentences"] == 7
    assert "split        test (7 sentences)  (default: the run's test split)" in out.splitlines()
    assert main(["evaluate", str(runs / "s2s"), "--split", "valid", "--beam", "1"]) == 0
    out = capsys.readouterr().out
    assert "split        valid (10 sentences)" in out.splitlines() and "default" not in out


def test_batched_translation_with_progress_matches_one_call(runs):
    """Cutting the sentences into batches for the bar gives the translations of one `translate` call
    (batches of 8 over 40-odd sentences of different lengths, beam 2)."""
    from mlxt.decode.translate import translate
    from mlxt.evaluate.run import prepare_split, translate_with_progress
    from mlxt.train.rundir import load_run

    run = load_run(runs / "s2s")
    sources = [s for s, _ in prepare_split(run, "test").texts["test"]]
    assert len(sources) >= 40 and len({len(s) for s in sources}) > 5
    expected = translate(run.model, run.tokenizers, sources, beam_size=2, batch_size=8)
    got = translate_with_progress(run.model, run.tokenizers, sources, 2, 8, "translating test")
    assert got == expected


def test_progress_bar_goes_to_stderr(runs, capsys, monkeypatch):
    import mlxt.evaluate.run as evaluate_run

    monkeypatch.setattr(evaluate_run, "PROGRESS_DELAY_S", 0.0)
    assert main(["evaluate", str(runs / "s2s"), "--beam", "1", "--batch-size", "4"]) == 0
    captured = capsys.readouterr()
    sentences = report_of(captured.out)["sentences"]
    assert "translating test" in captured.err and "loss on test" in captured.err
    assert f"| 0/{sentences} [" in captured.err  # counts sentences (tqdm may skip drawing the last update)
    assert "translating" not in captured.out
    monkeypatch.setattr(evaluate_run, "PROGRESS_DELAY_S", 60.0)  # a quick pass prints no bar
    assert main(["evaluate", str(runs / "s2s"), "--beam", "1", "--limit", "3"]) == 0
    assert "translating" not in capsys.readouterr().err
