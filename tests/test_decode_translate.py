"""Translating text: order, empty lines, overlong lines, unknown characters, batching."""

from __future__ import annotations

import mlx.core as mx
import numpy as np

from decode_models import tiny_seq2seq
from mlxt.data.tokenizers import CharTokenizer
from mlxt.decode import beam_search
from mlxt.decode.translate import encode_sources, translate, translate_ids


def setup():
    tok = CharTokenizer.train(["the cat sees a dog", "THE CAT SEES A DOG"])
    model = tiny_seq2seq(seed=3, vocab=tok.vocab_size, max_len=24)
    return model, {"src": tok, "tgt": tok}


def test_empty_lines_give_empty_translations_in_order():
    model, toks = setup()
    texts = ["the cat", "", "a dog sees the cat", "   ", "cat"]
    out = translate(model, toks, texts, beam_size=3, batch_size=2)
    assert len(out) == 5 and out[1] == "" and out[3] == ""
    alone = [translate(model, toks, [t], beam_size=3)[0] for t in texts]
    assert out == alone  # sorting by length and batching do not change any translation


def test_overlong_input_is_truncated_with_a_warning(capsys):
    model, toks = setup()
    long_text = "the cat sees a dog " * 5
    ids = encode_sources([long_text], toks["src"], model.config.eos_id, model.config.max_len)[0]
    assert len(ids) == model.config.max_len and ids[-1] == model.config.eos_id
    assert "input 1" in capsys.readouterr().err
    out = translate(model, toks, [long_text], beam_size=2)
    assert isinstance(out[0], str)


def test_unknown_characters_become_unk():
    model, toks = setup()
    ids = encode_sources(["the ☃ cat"], toks["src"], model.config.eos_id, model.config.max_len)[0]
    assert toks["src"].unk_id in ids
    assert isinstance(translate(model, toks, ["the ☃ cat"], beam_size=2)[0], str)


def test_translate_ids_matches_beam_search():
    model, toks = setup()
    sources = encode_sources(["the cat", "a dog"], toks["src"], model.config.eos_id, model.config.max_len)
    hyps = translate_ids(model, sources, beam_size=4, n_best=2)
    for s, h in zip(sources, hyps):
        assert len(h) == 2
        assert h[0].tokens == beam_search(model, mx.array([s]), beam_size=4)[0]
    assert [h[0].tokens for h in translate_ids(model, sources, beam_size=1)] == \
           [h[0].tokens for h in translate_ids(model, sources, beam_size=1, n_best=1, batch_size=1)]
    assert np.isfinite(hyps[0][0].score)


def test_decode_section_options():
    import pytest

    from mlxt.decode import hf_beam_options
    from mlxt.decode.options import DEFAULTS, decode_options
    from mlxt.errors import MlxtError

    assert decode_options({}) == DEFAULTS
    hf = hf_beam_options({"num_beams": 4, "max_length": 512, "bad_words_ids": [[7]], "forced_eos_token_id": 0})
    opts = decode_options({**hf, "banned_ids": list(hf["banned_ids"])})
    assert opts["banned_ids"] == (7,) and opts["penalty"] == "plain" and opts["max_len"] == 511
    for bad in ({"beam": 4}, {"penalty": "linear"}, {"early_stopping": "yes"}, {"beam_size": 2.5},
                {"forced_eos": 1}, {"banned_ids": "0"}):
        with pytest.raises(MlxtError):
            decode_options(bad)
