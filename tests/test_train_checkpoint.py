"""Checkpoints and run directories: round trip, atomic writes, pruning, `load_run` checks, the lock."""

from __future__ import annotations

import json

import mlx.core as mx
import numpy as np
import pytest
from mlx.utils import tree_flatten

from mlxt.data.tokenizers import CharTokenizer
from mlxt.errors import MlxtError
from mlxt.model import ModelConfig, build_model
from mlxt.train import checkpoint as ckpt
from mlxt.train.config import TrainConfig
from mlxt.train.lock import RunLock
from mlxt.train.rundir import load_run, write_inference_run
from mlxt.train.schedules import make_schedule
from mlxt.train.step import TrainStep, make_optimizer

CHARS = "abcdefghij .?"


def _trained(rng):
    mx.random.seed(0)
    config = ModelConfig(kind="seq2seq", vocab_size=4 + len(CHARS), d_model=16, num_heads=2,
                         num_encoder_layers=1, num_decoder_layers=1, d_ff=32, dropout=0.1)
    model = build_model(config)
    opt = make_optimizer(TrainConfig(), make_schedule("noam", 1e-3, 4))
    opt.init(model.trainable_parameters())
    step = TrainStep(model, opt, 0.1, 1.0, compile=False)
    src = rng.integers(4, config.vocab_size, (3, 5)).astype(np.int32)
    batch = {"src": src, "tgt_in": src, "tgt_out": src}
    for _ in range(2):
        mx.eval(step([batch]), step.state)
    return config, model, opt


def test_checkpoint_round_trip(tmp_path, rng):
    config, model, opt = _trained(rng)
    path = ckpt.write_checkpoint(tmp_path, 7, model, config, {"epoch": 1, "data": {"position": 3}}, opt)
    assert path.name == "step-00000007"
    assert sorted(p.name for p in path.iterdir()) == sorted(
        [ckpt.MODEL_FILE, ckpt.OPTIMIZER_FILE, ckpt.STATE_FILE, ckpt.CONFIG_FILE])
    state = ckpt.read_state(path)
    assert state["step"] == 7 and state["data"] == {"position": 3} and state["format_version"] == ckpt.FORMAT_VERSION
    assert ModelConfig.load(path / ckpt.CONFIG_FILE) == config
    restored = build_model(config)
    ckpt.load_weights_checked(restored, path / ckpt.MODEL_FILE)
    for (k, a), (k2, b) in zip(tree_flatten(model.parameters()), tree_flatten(restored.parameters())):
        assert k == k2 and np.array_equal(np.array(a), np.array(b))
    saved = dict(tree_flatten(ckpt.read_optimizer_state(path)))
    original = dict(tree_flatten(opt.state))
    assert saved.keys() == original.keys() and "step" in saved
    for k in original:
        assert np.array_equal(np.array(saved[k]), np.array(original[k])), k
    assert int(saved["step"].item()) == 2


def test_failed_write_leaves_previous_checkpoint(tmp_path, rng, monkeypatch):
    config, model, opt = _trained(rng)
    first = ckpt.write_checkpoint(tmp_path, 1, model, config, {"epoch": 0}, opt)
    before = {p.name: p.read_bytes() for p in first.iterdir()}

    def broken(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(ckpt.mx, "save_safetensors", broken)  # the optimizer file fails mid-write
    with pytest.raises(MlxtError, match="disk full"):  # one line for the CLI, not a traceback
        ckpt.write_checkpoint(tmp_path, 2, model, config, {"epoch": 0}, opt)
    assert [p.name for p in tmp_path.iterdir()] == ["step-00000001"]  # no partial step-2, no temp dir
    assert {p.name: p.read_bytes() for p in first.iterdir()} == before
    assert ckpt.latest_checkpoint(tmp_path) == first


def test_prune_keeps_best_and_last(tmp_path, rng):
    config, model, opt = _trained(rng)
    paths = [ckpt.write_checkpoint(tmp_path, s, model, config, {}, None) for s in (1, 2, 3, 4, 5)]
    ckpt.set_best(tmp_path, paths[1])
    ckpt.prune(tmp_path, keep_last=2)
    assert [s for s, _ in ckpt.list_checkpoints(tmp_path)] == [2, 4, 5]
    assert ckpt.best_checkpoint(tmp_path) == paths[1].resolve()
    (tmp_path / ".tmp-step-00000006-1").mkdir()
    ckpt.remove_temporaries(tmp_path)
    assert not list(tmp_path.glob(".tmp-*"))


def _inference_run(tmp_path, rng):
    config, model, _ = _trained(rng)
    tok = CharTokenizer.train([CHARS])
    out = write_inference_run(tmp_path / "run", model, config, {"src": tok, "tgt": tok})
    return out, config, model


def test_inference_run_round_trip(tmp_path, rng):
    out, config, model = _inference_run(tmp_path, rng)
    assert (out / "tokenizer" / "shared.json").exists() and (out / "config.toml").exists()
    run = load_run(out)
    assert run.config == config and run.checkpoint.name == "step-00000000"
    assert run.tokenizers["src"] is run.tokenizers["tgt"] and run.tokenizers["src"].encode("abc") == [7, 8, 9]
    assert run.run_config["model"]["d_model"] == 16
    assert not run.model.training
    model.eval()
    src = mx.array([[4, 5, 6, 2]])
    tgt = mx.array([[1, 7, 8]])
    np.testing.assert_array_equal(np.array(run.model(src, tgt)), np.array(model(src, tgt)))
    with pytest.raises(MlxtError, match="already holds checkpoints"):
        write_inference_run(out, model, config, run.tokenizers)


def test_load_run_errors(tmp_path, rng):
    out, config, _ = _inference_run(tmp_path, rng)
    step = out / "checkpoints" / "step-00000000"
    weights = mx.load(str(step / ckpt.MODEL_FILE))

    name = "decoder.layers.0.cross_attn.query_proj.weight"
    assert name in weights
    mx.save_safetensors(str(step / ckpt.MODEL_FILE), {k: v for k, v in weights.items() if k != name})
    with pytest.raises(MlxtError, match=f"missing tensor '{name}'"):
        load_run(out)

    bad = dict(weights)
    bad["out_proj.weight"] = mx.zeros((3, 16))
    mx.save_safetensors(str(step / ckpt.MODEL_FILE), bad)
    with pytest.raises(MlxtError, match=r"tensor 'out_proj.weight' has shape \(3, 16\)"):
        load_run(out)
    mx.save_safetensors(str(step / ckpt.MODEL_FILE), weights)
    load_run(out)

    state = json.loads((step / ckpt.STATE_FILE).read_text())
    (step / ckpt.STATE_FILE).write_text(json.dumps({**state, "format_version": 99}))
    with pytest.raises(MlxtError, match="format_version 99 is newer"):
        load_run(out)
    (step / ckpt.STATE_FILE).write_text(json.dumps(state))

    CharTokenizer.train([CHARS + "klmnop"]).save(out / "tokenizer" / "shared.json")
    with pytest.raises(MlxtError, match="tokenizer has 23 tokens but the model's vocabulary has 17"):
        load_run(out)

    (out / "tokenizer" / "shared.json").unlink()
    with pytest.raises(MlxtError, match="no tokenizer files"):
        load_run(out)
    with pytest.raises(MlxtError, match="not found"):
        load_run(tmp_path / "nowhere")
    with pytest.raises(MlxtError, match="checkpoint not found"):
        load_run(out, checkpoint=5)


def test_lock_refuses_second_holder(tmp_path):
    with RunLock(tmp_path):
        with pytest.raises(MlxtError, match="already in use by a training process"):
            RunLock(tmp_path).acquire()
    with RunLock(tmp_path):  # released: can be taken again
        pass


def test_average_last_checkpoints(tmp_path):
    from mlxt.train.average import average_run
    from mlxt.train.config import load_config
    from mlxt.train.trainer import train
    from train_helpers import write_tiny_config

    run_dir = tmp_path / "run"
    train(load_config(write_tiny_config(tmp_path, steps=9, eval_every=9, save_every=3)), run_dir, show_progress=False)
    steps = [p for _, p in ckpt.list_checkpoints(run_dir / "checkpoints")]
    assert [p.name for p in steps] == ["step-00000003", "step-00000006", "step-00000009"]
    weights = [mx.load(str(p / ckpt.MODEL_FILE)) for p in steps[1:]]
    path = average_run(run_dir, 2)
    assert path.name == "avg-last-2"
    run = load_run(run_dir, "avg-last-2")
    for name, value in tree_flatten(run.model.parameters()):
        expected = (np.array(weights[0][name]) + np.array(weights[1][name])) / 2
        np.testing.assert_allclose(np.array(value), expected, rtol=1e-6, atol=1e-7)
    out = average_run(run_dir, 3, tmp_path / "averaged")
    assert load_run(out).checkpoint.name == "step-00000000"
    assert ckpt.latest_checkpoint(run_dir / "checkpoints").name == "step-00000009"  # resume unaffected
    with pytest.raises(MlxtError, match="asked for the last 4 checkpoints but there are 3"):
        average_run(run_dir, 4)
    import subprocess
    import sys

    cli = subprocess.run([sys.executable, "-m", "mlxt", "average", str(run_dir), "--last", "3"],
                         capture_output=True, text=True)
    assert cli.returncode == 0, cli.stderr
    assert "avg-last-3" in cli.stdout and (run_dir / "checkpoints" / "avg-last-3" / "model.safetensors").exists()
