"""Tokenizers: round trips (property tests), specials, save/load through the type registry,
deterministic ids, clear errors."""

import json
import subprocess
import sys

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mlxt.data.tokenizers import (
    BPETokenizer,
    CharTokenizer,
    Tokenizer,
    load_tokenizer,
    register_tokenizer,
)
from mlxt.errors import MlxtError

TRAIN = [
    "The quick brown fox jumps over the lazy dog.",
    "Der schnelle braune Fuchs springt über den faulen Hund.",
    "Ça va très bien, merci ! Œuvre, naïve, façade.",
    "日本語のテキストも少し。 Emoji 🙂 and tabs\tand\nnewlines.",
] * 20

BPE = BPETokenizer.train(TRAIN, vocab_size=400)
CHAR = CharTokenizer.train(TRAIN)
PROPERTY = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@PROPERTY
@given(st.text())
def test_bpe_round_trips_any_unicode_text(text):
    ids = BPE.encode(text)
    assert all(4 <= i < BPE.vocab_size for i in ids)  # byte-level: never unk, never a special
    assert BPE.decode(ids) == text


@PROPERTY
@given(st.text(alphabet=sorted(set("".join(TRAIN)))))
def test_char_round_trips_covered_text(text):
    assert CHAR.decode(CHAR.encode(text)) == text


@PROPERTY
@given(st.text(alphabet=st.one_of(st.characters(), st.sampled_from(["\ud800", "\udc80", "\udfff"]))))
def test_any_string_round_trips_or_fails_clearly(text):
    for tok in (BPE, CHAR):
        try:
            ids = tok.encode(text)
        except MlxtError as exc:
            assert "not valid Unicode" in str(exc)
            with pytest.raises(UnicodeEncodeError):
                text.encode("utf-8")
            continue
        decoded = tok.decode(ids)
        if tok is BPE or CHAR.covers(text):
            assert decoded == text


def test_char_unknown_is_unk_and_decode_drops_specials():
    ids = CHAR.encode("a€b")  # no euro sign in the training text
    assert ids[1] == CHAR.unk_id
    assert CHAR.decode([CHAR.bos_id] + ids + [CHAR.eos_id, CHAR.pad_id]) == "ab"


def test_special_ids_are_fixed():
    for tok in (BPE, CHAR):
        assert (tok.pad_id, tok.bos_id, tok.eos_id, tok.unk_id) == (0, 1, 2, 3)
    assert BPE.vocab_size == 400


def test_special_token_text_is_ordinary_text():
    ids = BPE.encode("<pad></s><s><unk>")
    assert min(ids) >= 4 and BPE.decode(ids) == "<pad></s><s><unk>"


@pytest.mark.parametrize("tok", [BPE, CHAR], ids=["bpe", "char"])
def test_save_load_dispatches_on_type(tmp_path, tok):
    path = tmp_path / "tok.json"
    tok.save(path)
    data = json.loads(path.read_text(encoding="utf-8"))
    assert data["type"] == tok.type_name
    loaded = load_tokenizer(path)
    assert type(loaded) is type(tok) and loaded == tok
    text = "Über den Hund 🙂"
    assert loaded.encode(text) == tok.encode(text)
    assert type(tok).load(path) == tok


def test_load_errors(tmp_path):
    p = tmp_path / "t.json"
    with pytest.raises(MlxtError, match="tokenizer file not found"):
        load_tokenizer(p)
    p.write_text('{"chars": []}')
    with pytest.raises(MlxtError, match='no "type" field'):
        load_tokenizer(p)
    p.write_text('{"type": "wordpiece"}')
    with pytest.raises(MlxtError, match="unknown tokenizer type 'wordpiece'; known: .*bpe.*char"):
        load_tokenizer(p)
    p.write_text("not json")
    with pytest.raises(MlxtError, match="not a tokenizer JSON"):
        load_tokenizer(p)
    CHAR.save(p)
    with pytest.raises(MlxtError, match="expected 'bpe'"):
        BPETokenizer.load(p)


def test_registry_accepts_other_kinds(tmp_path):
    class Upper(Tokenizer):
        type_name = "test-upper"
        vocab_size = 30

        def encode(self, text):
            return [4 + ord(c) - 65 for c in text]

        def decode(self, ids):
            return "".join(chr(i - 4 + 65) for i in ids if i >= 4)

        def to_dict(self):
            return {"type": self.type_name}

        @classmethod
        def from_dict(cls, data, where="tokenizer"):
            return cls()

    register_tokenizer("test-upper", Upper)
    Upper().save(tmp_path / "u.json")
    assert load_tokenizer(tmp_path / "u.json").decode([4, 5, 6]) == "ABC"


def test_vocab_size_too_small():
    with pytest.raises(MlxtError, match="vocab_size = 100: too small.*at least 260"):
        BPETokenizer.train(TRAIN, vocab_size=100)


def test_bpe_ids_are_deterministic_across_processes():
    code = ("import json,sys; from mlxt.data.tokenizers import BPETokenizer; "
            "t=BPETokenizer.train(json.loads(sys.argv[1]), vocab_size=400); print(json.dumps(t.to_dict()))")
    runs = [subprocess.run([sys.executable, "-c", code, json.dumps(TRAIN)], capture_output=True, text=True,
                           check=True).stdout for _ in range(2)]
    assert runs[0] == runs[1] == json.dumps(BPE.to_dict()) + "\n"


def test_bpe_learns_merges():
    # a frequent word becomes few tokens, far fewer than its bytes
    assert len(BPE.encode("The quick brown fox")) < len("The quick brown fox".encode()) / 2
