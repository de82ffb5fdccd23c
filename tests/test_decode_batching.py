"""Length-sorted batching of translations (`length_batches`, ``--max-tokens-per-batch``) and the
progress line of ``mlxt translate --input``."""

from __future__ import annotations

import io

import numpy as np
import pytest

from decode_models import tiny_seq2seq
from mlxt.decode.progress import TranslationProgress
from mlxt.decode.translate import length_batches, translate_ids


def random_sources(seed: int, count: int) -> list[list[int]]:
    rng = np.random.default_rng(seed)
    return [rng.integers(4, 20, size=int(n)).tolist() + [2] if n else [] for n in rng.integers(0, 15, size=count)]


@pytest.mark.parametrize("batch_size,max_tokens", [(4, None), (32, 30), (3, 12), (8, 1)])
def test_batches_cover_every_sentence_once_within_the_limits(batch_size, max_tokens):
    sources = random_sources(0, 40)
    batches = length_batches(sources, batch_size, max_tokens)
    flat = [i for b in batches for i in b]
    assert sorted(flat) == [i for i, s in enumerate(sources) if s]
    assert [len(sources[i]) for i in flat] == sorted((len(s) for s in sources if s), reverse=True)
    for b in batches:
        width = max(len(sources[i]) for i in b)
        assert len(b) <= batch_size
        assert max_tokens is None or len(b) == 1 or len(b) * width <= max_tokens


def test_token_budget_does_not_change_translations():
    model = tiny_seq2seq(seed=5)
    sources = random_sources(1, 12)
    for beam in (1, 3):
        plain = translate_ids(model, sources, beam, batch_size=32, max_len=8)
        counted = []
        budget = translate_ids(model, sources, beam, batch_size=32, max_tokens=20, max_len=8,
                               progress=counted.append)
        assert [[h.tokens for h in x] for x in plain] == [[h.tokens for h in x] for x in budget]
        assert sum(counted) == len(sources) and len(counted) > 2  # one call per batch, then the empty lines


class FakeClock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


class Terminal(io.StringIO):
    def isatty(self):
        return True


def test_progress_on_a_log_file_only_after_a_while():
    clock, out = FakeClock(), io.StringIO()
    progress = TranslationProgress(100, out, after=2.0, every=10.0, clock=clock)
    progress.update(10)
    clock.now = 1.0
    progress.update(10)
    assert out.getvalue() == ""  # a short job prints nothing
    clock.now = 4.0
    progress.update(20)
    clock.now = 5.0
    progress.update(10)  # within `every` of the last line
    progress.close()
    lines = out.getvalue().splitlines()
    assert lines == ["translate: 40/100 sentences, 10.0 sentences/s, 00:06 left",
                     "translate: 50/100 sentences, 10.0 sentences/s, 00:05 left"]


def test_progress_on_a_terminal_redraws_one_line_and_can_be_off():
    clock, out = FakeClock(), Terminal()
    progress = TranslationProgress(4, out, clock=clock)
    for step in range(4):
        clock.now = 0.5 * (step + 1)
        progress.update(1)
    progress.close()
    text = out.getvalue()
    assert text.count("\r") == 4 and text.rstrip(" \n").endswith("4/4 sentences, 2.0 sentences/s") and "\n" not in text[:-1]
    quiet = Terminal()
    off = TranslationProgress(4, quiet, enabled=False)
    off.update(4)
    off.close()
    assert quiet.getvalue() == ""


def test_a_bad_token_budget_is_a_one_line_error(tmp_path, capsys):
    from mlxt.cli import main

    assert main(["translate", str(tmp_path), "x", "--max-tokens-per-batch", "0"]) == 2
    err = capsys.readouterr().err
    assert err == ("mlxt: error: mlxt translate: --max-tokens-per-batch 0: expected a positive integer "
                   "(see mlxt translate --help)\n")
