"""Reliability catalogue, fuzzing with hypothesis: any Unicode text goes through the data pipeline
(reading, splitting, tokenizing, bucketing, batching) and either comes out intact or is refused
with an `MlxtError`; nothing else is ever raised.

The tokenizers themselves (any string: round trip or clear error) are fuzzed in
``tests/test_data_tokenizers.py`` (``test_bpe_round_trips_any_unicode_text``,
``test_any_string_round_trips_or_fails_clearly``); this module fuzzes what is built on them.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mlxt.data.batching import Seq2SeqBatches, TokenizedPairs
from mlxt.data.buckets import bucket_sizes
from mlxt.data.config import DataConfig
from mlxt.data.prepare import prepare_data
from mlxt.data.tokenizers import BPETokenizer, CharTokenizer
from mlxt.errors import MlxtError

FUZZ = settings(max_examples=60, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])

# Sentences: any characters, surrogates included (they cannot be written as UTF-8 and must be refused).
ANY_TEXT = st.text(alphabet=st.characters(blacklist_categories=()), max_size=30)
# One corpus line: no line breaks (every Unicode line separator splits lines in some reader) and no tab.
LINE = st.text(alphabet=st.characters(blacklist_characters="\t\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"),
               max_size=30)


def _write_bytes(path: Path, text: str) -> None:
    """``text`` as UTF-8; a lone surrogate becomes invalid UTF-8 bytes on disk, as a broken file would."""
    path.write_bytes(text.encode("utf-8", errors="surrogatepass"))


@FUZZ
@given(pairs=st.lists(st.tuples(LINE, LINE), min_size=0, max_size=40), max_len=st.integers(2, 24),
       overlong=st.sampled_from(["truncate", "reject"]), joint=st.booleans())
def test_any_tsv_corpus_prepares_or_fails_clearly(tmp_path, pairs, max_len, overlong, joint):
    corpus = tmp_path / "fuzz.tsv"
    _write_bytes(corpus, "".join(f"{s}\t{t}\n" for s, t in pairs))
    config = DataConfig(path=str(corpus), tokenizer="char", max_len=max_len, overlong=overlong, max_tokens=256,
                        valid_size=1, test_size=1, joint_vocab=joint, seed=3)
    try:
        data = prepare_data(config, "seq2seq", use_cache=False)
    except MlxtError as exc:
        assert "\n" not in str(exc)
        return
    toks = data.tokenizers
    seen = 0
    for batch in data.batches("train", shuffle=False):
        b, ls = batch["src"].shape
        assert b * (ls + batch["tgt_in"].shape[1]) <= config.max_tokens
        for row_src, row_out in zip(batch["src"], batch["tgt_out"]):
            assert 2 in row_src and 2 in row_out  # every row ends with eos, then padding
            n, m = int(np.argmax(row_src == 2)), int(np.argmax(row_out == 2))
            assert not row_src[n + 1:].any() and not row_out[m + 1:].any()
            assert n + 1 <= max_len and m + 1 <= max_len  # source + eos; target + eos (or bos + target)
            seen += 1
    assert seen == len(data.texts["train"])
    for src, tgt in data.texts["train"]:  # the kept texts are what the batches hold, encodable
        assert toks["src"].decode(toks["src"].encode(src)) == src or overlong == "truncate"
        assert toks["tgt"].decode(toks["tgt"].encode(tgt)) == tgt or overlong == "truncate"


@FUZZ
@given(text=st.text(max_size=400), block=st.integers(1, 16), batch=st.integers(1, 4))
def test_any_lm_text_prepares_or_fails_clearly(tmp_path, text, block, batch):
    corpus = tmp_path / "fuzz.txt"
    _write_bytes(corpus, text)
    config = DataConfig(path=str(corpus), tokenizer="char", block_size=block, batch_size=batch, seed=1)
    try:
        data = prepare_data(config, "lm", use_cache=False)
        batches = data.batches("train", seed=1, shuffle=True)
        for _, got in zip(range(3), batches):
            assert got["inputs"].shape == got["targets"].shape == (batch, block)
            assert (got["inputs"][:, 1:] == got["targets"][:, :-1]).all()  # targets are the next tokens
    except MlxtError as exc:
        assert "\n" not in str(exc)


BPE = BPETokenizer.train(["haus katze hund baum auto buch 日本語 🙂 ünïcödé"] * 10, vocab_size=300)


@FUZZ
@given(pairs=st.lists(st.tuples(ANY_TEXT, ANY_TEXT), min_size=1, max_size=30),
       max_tokens=st.integers(64, 400), joint=st.booleans(), use_char=st.booleans())
def test_batches_of_any_text_hold_every_example_once_intact(pairs, max_tokens, joint, use_char):
    """Encode arbitrary text (refusing what is not valid Unicode), batch it, and read every example
    back out of the padded batches: nothing lost, duplicated, cut or reordered within a row."""
    tok = CharTokenizer.train(["x"] + [s + t for s, t in pairs]) if use_char else BPE
    src, tgt = [], []
    for s, t in pairs:
        try:
            a, b = tok.encode(s)[:20], tok.encode(t)[:20]
        except MlxtError as exc:
            assert "not valid Unicode" in str(exc)
            continue
        src.append(np.array(a, np.int32))
        tgt.append(np.array(b, np.int32))
    data = TokenizedPairs(src, tgt)
    it = Seq2SeqBatches(data, max_tokens=max_tokens, sizes=bucket_sizes(24), seed=0, shuffle=False,
                        joint_buckets=joint)
    found = []
    for planned in it._current_plan():
        batch = it._make_batch(planned)
        for r, i in enumerate(it.example_ids(planned)):
            n = len(data.src[i])
            assert list(batch["src"][r, :n + 1]) == list(data.src[i]) + [2]
            m = len(data.tgt[i])
            assert list(batch["tgt_in"][r, :m + 1]) == [1] + list(data.tgt[i])
            assert list(batch["tgt_out"][r, :m + 1]) == list(data.tgt[i]) + [2]
            found.append(int(i))
    assert sorted(found) == list(range(len(data)))
