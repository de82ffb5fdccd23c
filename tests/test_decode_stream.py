"""Streaming detokenization (`StreamingDetokenizer`, used by ``mlxt generate``) prints exactly the
text that decoding the whole id list again at every token printed, for the tokenizers an lm run
can have (characters, byte-level BPE), including multi-byte characters split across tokens."""

from __future__ import annotations

import pytest
from hypothesis import given, settings, strategies as st

from mlxt.data.tokenizers import BPETokenizer, CharTokenizer
from mlxt.decode.detokenize import StreamingDetokenizer

TEXTS = ["the cat sat on the mat, said the dog.", "Grüße aus Köln — naïve café, 東京 und 🙂 emoji!",
         "line one\nline two\n\tindented", "das Haus ist schön; die Häuser sind schöner."] * 3
BPE = BPETokenizer.train(TEXTS, vocab_size=300)
CHAR = CharTokenizer.train(TEXTS)


def quadratic_stream(tokenizer, ids: list[int]) -> list[str]:
    """The pieces the previous ``mlxt generate`` printed: decode every prefix, print what settled."""
    pieces, shown = [], ""
    for n in range(1, len(ids) + 1):
        stable = tokenizer.decode(ids[:n]).rstrip("\ufffd")
        if len(stable) > len(shown) and stable.startswith(shown):
            pieces.append(stable[len(shown):])
            shown = stable
    text = tokenizer.decode(ids)
    pieces.append(text[len(shown):] if text.startswith(shown) else "")
    return pieces


def streamed(tokenizer, ids: list[int], window: int) -> list[str]:
    stream = StreamingDetokenizer(tokenizer, window)
    pieces = [p for p in (stream.add(i) for i in ids) if p]
    return pieces + [stream.finish()]


@pytest.mark.parametrize("tokenizer", [BPE, CHAR], ids=["bpe", "char"])
@pytest.mark.parametrize("window", [2, 5, 16])
@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_same_text_as_decoding_every_prefix(tokenizer, window, data):
    ids = data.draw(st.lists(st.integers(0, tokenizer.vocab_size - 1), max_size=80))
    assert streamed(tokenizer, ids, window) == quadratic_stream(tokenizer, ids)


@pytest.mark.parametrize("tokenizer", [BPE, CHAR], ids=["bpe", "char"])
def test_real_text_round_trips_and_window_stays_short(tokenizer):
    text = " ".join(TEXTS)
    ids = tokenizer.encode(text)
    stream = StreamingDetokenizer(tokenizer, window=8)
    out, longest = [], 0
    for i in ids:
        out.append(stream.add(i))
        longest = max(longest, len(stream.ids))
    out.append(stream.finish())
    assert "".join(out) == tokenizer.decode(ids) == text
    assert longest <= 8 + 4  # the window restarts: each step decodes a few tokens, not the whole text


def test_bytes_of_one_character_split_over_tokens():
    """A 4-byte emoji as four single-byte BPE tokens: nothing is printed until it is whole."""
    table = _byte_table()
    ids = [BPE._model.token_to_id(table[b]) + 4 for b in "🙂".encode()]
    assert BPE.decode(ids) == "🙂"
    stream = StreamingDetokenizer(BPE, window=2)
    assert [stream.add(i) for i in ids] == ["", "", "", "🙂"]
    assert stream.add(BPE.encode("!")[0]) == "!"
    assert stream.finish() == ""


def _byte_table() -> dict[int, str]:
    """GPT-2's byte -> printable character table (the alphabet byte-level BPE stores)."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs, n = bs[:], 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, map(chr, cs)))
