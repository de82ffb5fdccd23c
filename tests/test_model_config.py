"""`ModelConfig` validation: a user mistake raises `MlxtError` naming the field."""

from __future__ import annotations

import json

import pytest

from mlxt import MlxtError, ModelConfig, build_model
from mlxt.model import RegressionTransformer, Transformer, TransformerLM

SMALL = dict(vocab_size=20, d_model=16, num_heads=2, d_ff=32, num_encoder_layers=1, num_decoder_layers=1)


def small(**overrides) -> dict:
    return {**SMALL, **overrides}


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        (dict(d_model=30, num_heads=4), "d_model"),
        (dict(d_model=0), "d_model"),
        (dict(d_model=-8), "d_model"),
        (dict(num_heads=0), "num_heads"),
        (dict(d_ff=0), "d_ff"),
        (dict(max_len=0), "max_len"),
        (dict(vocab_size=0), "vocab_size"),
        (dict(num_encoder_layers=-1), "num_encoder_layers"),
        (dict(num_decoder_layers=0), "num_decoder_layers"),
        (dict(src_vocab_size=-3), "src_vocab_size"),
        (dict(kind="gpt"), "kind"),
        (dict(activation="tanh"), "activation"),
        (dict(positional="alibi"), "positional"),
        (dict(sinusoidal_layout="blocks"), "sinusoidal_layout"),
        (dict(dropout=1.0), "dropout"),
        (dict(layer_norm_eps=0.0), "layer_norm_eps"),
        (dict(share_embeddings=True, src_vocab_size=30), "share_embeddings"),
        (dict(pad_id=20), "pad_id"),
        (dict(kind="lm", num_decoder_layers=0), "num_decoder_layers"),
        (dict(kind="regression", vocab_size=0, input_dim=0), "input_dim"),
        (dict(kind="regression", vocab_size=0, input_dim=4, output_dim=0), "output_dim"),
        (dict(kind="regression", vocab_size=0, input_dim=4, tie_output=True), "tie"),
        (dict(positional="rope", d_model=12, num_heads=4), "positional"),
    ],
)
def test_invalid_config_names_the_field(overrides, field):
    with pytest.raises(MlxtError) as info:
        ModelConfig(**small(**overrides))
    message = str(info.value)
    assert field in message
    assert "\n" not in message


def test_not_divisible_message_gives_both_numbers():
    with pytest.raises(MlxtError, match=r"model\.d_model: 30 is not divisible by model\.num_heads=4"):
        ModelConfig(**small(d_model=30, num_heads=4))


def test_shared_embeddings_with_equal_vocabularies_build_one_table():
    model = build_model(ModelConfig(**small(share_embeddings=True, src_vocab_size=20, tie_output=True)))
    assert model.source_embedding is model.target_embedding
    assert "out_proj" not in model


@pytest.mark.parametrize(
    ("kind", "cls", "extra"),
    [("seq2seq", Transformer, {}), ("lm", TransformerLM, {}),
     ("regression", RegressionTransformer, dict(vocab_size=0, input_dim=4))],
)
def test_build_model_picks_the_class_of_the_kind(kind, cls, extra):
    assert type(build_model(ModelConfig(**small(kind=kind, **extra)))) is cls


def test_json_round_trip(tmp_path):
    config = ModelConfig(**small(norm_first=True, positional="rope", decoder_start_id=5, final_norm=False))
    path = tmp_path / "config.json"
    config.save(path)
    assert json.loads(path.read_text())["positional"] == "rope"
    assert ModelConfig.load(path) == config


def test_load_reports_unknown_keys_and_bad_json(tmp_path):
    path = tmp_path / "config.json"
    path.write_text(json.dumps({**SMALL, "d_modle": 16}))
    with pytest.raises(MlxtError, match="d_modle"):
        ModelConfig.load(path)
    path.write_text("{not json")
    with pytest.raises(MlxtError, match="config.json"):
        ModelConfig.load(path)
    with pytest.raises(MlxtError, match="not found"):
        ModelConfig.load(tmp_path / "missing.json")
    path.write_text(json.dumps({**SMALL, "d_model": "big"}))
    with pytest.raises(MlxtError, match="d_model"):
        ModelConfig.load(path)
