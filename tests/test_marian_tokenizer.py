"""The SentencePiece tokenizer of converted Marian models against Hugging Face's MarianTokenizer."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("sentencepiece")
pytest.importorskip("transformers")
pytestmark = pytest.mark.filterwarnings("ignore:Recommended. pip install sacremoses")

from marian_tiny import SOURCE_SENTENCES, TARGET_SENTENCES, marian_vocab, train_spm  # noqa: E402

from mlxt.data.tokenizers.sentencepiece import SentencePieceTokenizer, split_language_code  # noqa: E402
from mlxt.data.tokenizers import load_tokenizer  # noqa: E402
from mlxt.errors import MlxtError  # noqa: E402

TEXTS = [
    "Hello world.", "The quick brown fox, the lazy dog!", "  extra   spaces  ", "", "zebra xylophone 123",
    ">>fra<< Tom asked", ">>unknown<<Where is it?", "ünïcödé ≠ ascii", "a</s>b",
]


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("spm")
    proto = train_spm(SOURCE_SENTENCES, 44)
    (root / "source.spm").write_bytes(proto)
    (root / "target.spm").write_bytes(proto)
    vocab = marian_vocab(proto)
    vocab[">>fra<<"] = len(vocab)  # a language code token, as multilingual opus-mt models have
    (root / "vocab.json").write_text(json.dumps(vocab))
    return root


@pytest.fixture(scope="module")
def hf(files):
    from transformers import MarianTokenizer

    return MarianTokenizer(str(files / "source.spm"), str(files / "target.spm"), str(files / "vocab.json"))


@pytest.fixture(scope="module")
def ours(files):
    return SentencePieceTokenizer.from_files(files / "source.spm", files / "vocab.json")


@pytest.mark.parametrize("text", [t for t in TEXTS if "</s>" not in t])
def test_encode_matches_marian_tokenizer(ours, hf, text):
    ids = ours.encode(text)
    assert ids + [ours.eos_id] == hf(text).input_ids  # HF appends eos; mlxt's convention does it later
    assert ours.decode(ids) == hf.decode(ids, skip_special_tokens=True)


def test_unknown_pieces_and_specials(ours, hf):
    ids = ours.encode("zebra Ωψ")
    assert ours.unk_id in ids  # characters never seen in training
    assert ours.special_ids == {ours.pad_id, ours.eos_id, ours.unk_id}
    assert ours.bos_id == ours.pad_id  # Marian's decoder starts from <pad>
    with_specials = [ours.pad_id] + ids + [ours.eos_id, ours.pad_id]
    assert ours.decode(with_specials) == hf.decode(with_specials, skip_special_tokens=True)
    assert ours.vocab_size == len(hf.get_vocab())


def test_shared_vocabulary_with_two_sentencepiece_models(tmp_path):
    """opus-mt-en-de's layout: source.spm and target.spm differ, one vocab.json holds both piece
    sets; target ids are detokenized as MarianTokenizer does (with the source model)."""
    from transformers import MarianTokenizer

    from mlxt.convert.marian import marian_tokenizers
    from mlxt.model import ModelConfig

    source, target = train_spm(SOURCE_SENTENCES, 44), train_spm(TARGET_SENTENCES, 60)
    vocab = marian_vocab(source, target)
    (tmp_path / "source.spm").write_bytes(source)
    (tmp_path / "target.spm").write_bytes(target)
    (tmp_path / "vocab.json").write_text(json.dumps(vocab))
    hf = MarianTokenizer(str(tmp_path / "source.spm"), str(tmp_path / "target.spm"), str(tmp_path / "vocab.json"))
    pad = vocab["<pad>"]
    config = ModelConfig(vocab_size=len(vocab), pad_id=pad, bos_id=pad, eos_id=0, decoder_start_id=pad)
    toks = marian_tokenizers(tmp_path, config)
    assert toks["src"] is not toks["tgt"]
    for src_text, tgt_text in zip(SOURCE_SENTENCES, TARGET_SENTENCES):
        assert toks["src"].encode(src_text) + [0] == hf(src_text).input_ids
        labels = hf(text_target=tgt_text).input_ids
        assert toks["tgt"].encode(tgt_text) + [0] == labels
        assert toks["tgt"].decode(labels) == hf.decode(labels, skip_special_tokens=True)
        assert toks["tgt"].decode(labels) == tgt_text


def test_language_code_split():
    assert split_language_code(">>fra<< Bonjour") == ([">>fra<<"], " Bonjour")
    assert split_language_code(">>fra Bonjour") == ([], ">>fra Bonjour")
    assert split_language_code("Bonjour >>fra<<") == ([], "Bonjour >>fra<<")


def test_save_load_round_trip(ours, tmp_path):
    ours.save(tmp_path / "tok.json")
    loaded = load_tokenizer(tmp_path / "tok.json")
    assert isinstance(loaded, SentencePieceTokenizer) and loaded == ours
    for text in TEXTS:
        assert loaded.encode(text) == ours.encode(text)


def test_separate_detokenizer_is_kept(files, tmp_path):
    other = train_spm(["completely different words here", "nothing alike at all"] * 3, 30)
    tok = SentencePieceTokenizer((files / "source.spm").read_bytes(), json.loads((files / "vocab.json").read_text()),
                                 detokenizer=other)
    tok.save(tmp_path / "t.json")
    assert load_tokenizer(tmp_path / "t.json").detokenizer_proto == other


def test_errors_name_the_problem(files, tmp_path):
    vocab = json.loads((files / "vocab.json").read_text())
    del vocab["<unk>"]
    with pytest.raises(MlxtError, match="<unk>"):
        SentencePieceTokenizer((files / "source.spm").read_bytes(), vocab)
    with pytest.raises(MlxtError, match="not a valid SentencePiece model"):
        SentencePieceTokenizer(b"not a model", json.loads((files / "vocab.json").read_text()))
    (tmp_path / "bad.json").write_text(json.dumps({"type": "sentencepiece", "model": "!!", "vocab": {}}))
    with pytest.raises(MlxtError, match="bad.json"):
        load_tokenizer(tmp_path / "bad.json")
    (tmp_path / "vocab.json").write_text("[1, 2]")
    with pytest.raises(MlxtError, match="vocab.json"):
        SentencePieceTokenizer.from_files(files / "source.spm", tmp_path / "vocab.json")
    with pytest.raises(MlxtError, match="lone surrogate"):
        SentencePieceTokenizer.from_files(files / "source.spm", files / "vocab.json").encode("a\ud800b")
