"""Training configs: one-line errors for unknown keys, wrong types and bad --set overrides."""

from __future__ import annotations

import subprocess
import sys

import pytest

from mlxt.errors import MlxtError
from mlxt.train.config import TrainConfig, load_config, parse_override
from mlxt.train.tomlio import dumps_toml, tomllib
from train_helpers import write_tiny_config


def test_valid_config_and_overrides(tmp_path):
    path = write_tiny_config(tmp_path)
    cfg = load_config(path, ["train.lr=0.5", "train.betas=[0.8, 0.9]", "model.activation=gelu",
                             "train.compile=true"])
    assert cfg.train.lr == 0.5 and cfg.train.betas == [0.8, 0.9] and cfg.train.compile is True
    assert cfg.model["activation"] == "gelu"  # a bare word is taken as a string
    assert cfg.kind == "regression" and cfg.data.window == 16
    assert cfg.run_dir().name == "tiny"


def test_unknown_key_names_it_and_lists_valid(tmp_path):
    path = write_tiny_config(tmp_path)
    path.write_text(path.read_text().replace("seed = 3", "seed = 3\nlearning_rate = 1.0"))
    with pytest.raises(MlxtError) as err:
        load_config(path)
    msg = str(err.value)
    assert "learning_rate" in msg and "valid keys" in msg and "warmup_steps" in msg and "\n" not in msg


def test_unknown_model_key(tmp_path):
    with pytest.raises(MlxtError, match=r"unknown key '\[model\]\.dmodel'.*d_model"):
        load_config(write_tiny_config(tmp_path), ["model.dmodel=32"])


def test_wrong_type(tmp_path):
    with pytest.raises(MlxtError, match=r"\[train\]\.steps: expected an integer, got str"):
        load_config(write_tiny_config(tmp_path), ["train.steps=many"])
    with pytest.raises(MlxtError, match=r"\[train\]\.compile: expected true or false"):
        load_config(write_tiny_config(tmp_path), ["train.compile=1"])


def test_bad_values_and_sections(tmp_path):
    path = write_tiny_config(tmp_path)
    with pytest.raises(MlxtError, match="schedule.*noam"):
        load_config(path, ["train.schedule=linear"])
    with pytest.raises(MlxtError, match="unknown section 'optim'"):
        load_config(path, ["optim.lr=1"])
    with pytest.raises(MlxtError, match="expected section.key=value"):
        parse_override("train.lr")
    with pytest.raises(MlxtError, match="expected section.key=value"):
        parse_override("lr=3")
    path.write_text(path.read_text() + "\n[optimizer]\nlr = 1\n")
    with pytest.raises(MlxtError, match=r"unknown section \[optimizer\]; valid sections: model, data, train"):
        load_config(path)


def test_invalid_toml_names_file(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text("[train\nsteps = 3\n")
    with pytest.raises(MlxtError, match="bad.toml: invalid TOML"):
        load_config(path)


def test_override_literals():
    assert parse_override("train.lr=1e-4") == ("train", "lr", 1e-4)
    assert parse_override("data.src_lang=de") == ("data", "src_lang", "de")
    assert parse_override('data.path="a b.txt"') == ("data", "path", "a b.txt")
    assert parse_override("train.betas=[0.9, 0.99]") == ("train", "betas", [0.9, 0.99])


def test_toml_writer_round_trip():
    data = {"model": {"kind": "lm", "d_model": 64, "dropout": 0.1, "final_norm": None, "tie_output": True},
            "data": {"corpus": 'quote " and \\ and ü', "buckets": [8, 16]},
            "train": asdict_train()}
    back = tomllib.loads(dumps_toml(data))
    assert back["model"] == {k: v for k, v in data["model"].items() if v is not None}
    assert back["data"] == data["data"] and back["train"] == data["train"]


def asdict_train() -> dict:
    from dataclasses import asdict

    return asdict(TrainConfig())


def test_cli_bad_config_is_one_line(tmp_path):
    path = write_tiny_config(tmp_path)
    proc = subprocess.run([sys.executable, "-m", "mlxt", "train", "--config", str(path), "--set", "train.stepz=3"],
                          capture_output=True, text=True)
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0
    assert proc.stderr.startswith("mlxt: error: unknown key '[train].stepz'")


@pytest.mark.parametrize("name", ["translate-ding-de-en", "translate-tatoeba-de-en", "translate-tatoeba-en-de", "shakespeare-char",
                                  "regression-tutorial"])
def test_shipped_configs_parse(repo_root, name):
    cfg = load_config(repo_root / "configs" / f"{name}.toml")
    assert cfg.kind == {"translate": "seq2seq", "shakespeare": "lm", "regression": "regression"}[name.split("-")[0]]
    assert cfg.run_dir().name == name


def test_shakespeare_config_is_the_baby_gpt_recipe(repo_root):
    cfg = load_config(repo_root / "configs" / "shakespeare-char.toml")
    m, d, t = cfg.model, cfg.data, cfg.train
    assert (m["num_decoder_layers"], m["num_heads"], m["d_model"], m["dropout"]) == (4, 4, 128, 0.0)
    assert (m["norm_first"], m["activation"], m["positional"]) == (True, "gelu", "learned")
    assert (d.tokenizer, d.block_size, d.batch_size) == ("char", 64, 12)
    assert (t.steps, t.lr, t.schedule, t.min_lr) == (2000, 1e-3, "cosine", 1e-4)
