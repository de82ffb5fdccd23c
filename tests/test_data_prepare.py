"""prepare_data on user files: splits, tokenizers, batches, the prepared cache, and errors."""

import numpy as np
import pytest

from mlxt.data import DataConfig, load_tokenizers, prepare_data
from mlxt.errors import MlxtError
from mlxt.schema import from_dict

WORDS = "the a dog cat house tree runs sees big small red green blue old new".split()
WÖRTER = "der ein Hund Katze Haus Baum läuft sieht groß klein rot grün blau alt neu".split()


def _corpus(tmp_path, n=400):
    rng = np.random.default_rng(0)
    src, tgt = [], []
    for _ in range(n):
        idx = rng.integers(0, len(WORDS), size=rng.integers(2, 9))
        src.append(" ".join(WORDS[i] for i in idx))
        tgt.append(" ".join(WÖRTER[i] for i in idx))
    (tmp_path / "train.en").write_text("\n".join(src) + "\n", encoding="utf-8")
    (tmp_path / "train.de").write_text("\n".join(tgt) + "\n", encoding="utf-8")
    return src, tgt


def _config(tmp_path, **kw):
    base = dict(src_path=str(tmp_path / "train.en"), tgt_path=str(tmp_path / "train.de"), vocab_size=300,
                valid_size=20, test_size=20, max_tokens=512, max_len=32)
    return DataConfig(**{**base, **kw})


def test_seq2seq_from_aligned_files(tmp_path):
    src, tgt = _corpus(tmp_path)
    p = prepare_data(_config(tmp_path), "seq2seq", cache_dir=tmp_path / "cache")
    assert p.tokenizers["src"] is p.tokenizers["tgt"]  # joint vocabulary
    assert set(p.texts) == {"train", "valid", "test"}
    all_pairs = set(zip(src, tgt))
    for split, pairs in p.texts.items():
        assert set(pairs) <= all_pairs
    assert not {s for s, _ in p.texts["test"]} & {s for s, _ in p.texts["train"]}
    tok = p.tokenizers["src"]
    decoded = [(tok.decode(a), tok.decode(b)) for batch in p.batches("valid")
               for a, b in zip(batch["src"], batch["tgt_out"])]
    assert sorted(decoded) == sorted(p.texts["valid"])  # every example once, text intact
    train = p.batches("train")
    assert train.shuffle and next(train)["src"].dtype == np.int32


def test_cache_is_reused_and_invalidated(tmp_path):
    _corpus(tmp_path)
    cfg = _config(tmp_path)
    first = prepare_data(cfg, "seq2seq", cache_dir=tmp_path / "cache")
    second = prepare_data(cfg, "seq2seq", cache_dir=tmp_path / "cache")
    assert not first.from_cache and second.from_cache and first.cache_path == second.cache_path
    assert second.texts == first.texts
    assert second.tokenizers["src"] == first.tokenizers["src"]
    for a, b in zip(first.batches("train"), second.batches("train")):
        for k in a:
            np.testing.assert_array_equal(a[k], b[k])
        break
    # batch settings do not change the prepared data; tokenizer settings do
    assert prepare_data(_config(tmp_path, max_tokens=1024), "seq2seq", cache_dir=tmp_path / "cache").from_cache
    assert not prepare_data(_config(tmp_path, vocab_size=310), "seq2seq", cache_dir=tmp_path / "cache").from_cache
    (tmp_path / "train.de").write_text((tmp_path / "train.de").read_text(encoding="utf-8").replace("Hund", "Hunde"),
                                       encoding="utf-8")
    changed = prepare_data(cfg, "seq2seq", cache_dir=tmp_path / "cache")
    assert not changed.from_cache


def test_separate_vocabularies_and_tokenizer_files(tmp_path):
    _corpus(tmp_path)
    p = prepare_data(_config(tmp_path, joint_vocab=False, tokenizer="char"), "seq2seq", use_cache=False)
    assert p.tokenizers["src"] is not p.tokenizers["tgt"]
    assert "ä" in p.tokenizers["tgt"].chars and "ä" not in p.tokenizers["src"].chars
    p.save_tokenizers(tmp_path / "tok")
    assert sorted(f.name for f in (tmp_path / "tok").iterdir()) == ["src.json", "tgt.json"]
    back = load_tokenizers(tmp_path / "tok")
    assert back["src"] == p.tokenizers["src"] and back["tgt"] == p.tokenizers["tgt"]
    joint = prepare_data(_config(tmp_path), "seq2seq", use_cache=False)
    joint.save_tokenizers(tmp_path / "joint")
    back = load_tokenizers(tmp_path / "joint")
    assert back["src"] is back["tgt"] and back["src"] == joint.tokenizers["src"]


def test_overlong_truncate_or_reject(tmp_path):
    _corpus(tmp_path)
    cut = prepare_data(_config(tmp_path, tokenizer="char", max_len=12), "seq2seq", use_cache=False)
    assert cut.stats["train"]["truncated"] > 0
    assert max(len(a) for a in cut.arrays["train"].src) == 11
    dropped = prepare_data(_config(tmp_path, tokenizer="char", max_len=12, overlong="reject"), "seq2seq",
                           use_cache=False)
    assert dropped.stats["train"]["dropped_overlong"] == cut.stats["train"]["truncated"]
    assert all(len(s) + 1 <= 12 and len(t) + 1 <= 12 for s, t in dropped.texts["train"])
    with pytest.raises(MlxtError, match="every training sentence is longer"):
        prepare_data(_config(tmp_path, tokenizer="char", max_len=2, overlong="reject"), "seq2seq", use_cache=False)


def test_lm_from_text_file(tmp_path):
    text = "ROMEO:\nBut soft, what light through yonder window breaks?\n\n" * 50
    (tmp_path / "play.txt").write_text(text, encoding="utf-8")
    cfg = DataConfig(path=str(tmp_path / "play.txt"), tokenizer="char", batch_size=3, block_size=16)
    p = prepare_data(cfg, "lm", use_cache=False)
    assert p.texts["train"] + p.texts["valid"] == text
    assert len(p.texts["valid"]) == len(text) - int(len(text) * 0.9)
    tok = p.tokenizers["text"]
    np.testing.assert_array_equal(p.arrays["train"], tok.encode(p.texts["train"]))
    batch = next(p.batches("train"))
    assert batch["inputs"].shape == (3, 16)
    assert tok.decode(batch["inputs"][0]) in text


def test_lm_given_valid_file_keeps_all_training_text(tmp_path):
    (tmp_path / "train.txt").write_text("abcdefghij" * 20, encoding="utf-8")
    (tmp_path / "valid.txt").write_text("jihgfedcba" * 5, encoding="utf-8")
    cfg = DataConfig(path=str(tmp_path / "train.txt"), valid_path=str(tmp_path / "valid.txt"), tokenizer="char",
                     test_size=0.2)
    p = prepare_data(cfg, "lm", use_cache=False)
    assert p.texts["valid"] == "jihgfedcba" * 5
    assert p.texts["train"] + p.texts["test"] == "abcdefghij" * 20 and len(p.texts["test"]) == 40


def test_tsv_with_given_valid_file(tmp_path):
    (tmp_path / "train.tsv").write_text("".join(f"s{i}\tt{i}\n" for i in range(100)), encoding="utf-8")
    (tmp_path / "valid.tsv").write_text("va\tvb\n", encoding="utf-8")
    cfg = DataConfig(path=str(tmp_path / "train.tsv"), valid_path=str(tmp_path / "valid.tsv"), tokenizer="char",
                     test_size=10)
    p = prepare_data(cfg, "seq2seq", use_cache=False)
    assert p.texts["valid"] == [("va", "vb")] and len(p.texts["test"]) == 10 and len(p.texts["train"]) == 90


def test_config_from_toml_dict_and_errors(tmp_path):
    cfg = from_dict(DataConfig, {"corpus": "shakespeare", "tokenizer": "char", "buckets": [16, 32]}, "[data]")
    assert cfg.buckets == [16, 32]
    with pytest.raises(MlxtError, match="unknown key '\\[data\\].vocab'"):
        from_dict(DataConfig, {"vocab": 3}, "[data]")
    with pytest.raises(MlxtError, match="tokenizer = 'word'"):
        DataConfig(tokenizer="word")
    with pytest.raises(MlxtError, match="buckets"):
        DataConfig(buckets=[32, 16])
    with pytest.raises(MlxtError, match="unknown corpus 'nope'"):
        prepare_data(DataConfig(corpus="nope"), "lm")
    with pytest.raises(MlxtError, match="no data given"):
        prepare_data(DataConfig(), "lm")
    with pytest.raises(MlxtError, match="vocab_size = 4: too small"):
        _corpus(tmp_path)
        prepare_data(_config(tmp_path, tokenizer="char", vocab_size=4), "seq2seq", use_cache=False)
    with pytest.raises(MlxtError, match="is lm data, not seq2seq"):
        prepare_data(DataConfig(corpus="pydoc-topics"), "seq2seq")
