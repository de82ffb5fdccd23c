"""End-to-end training of the token model kinds on small local files, through `prepare_data`:
seq2seq (with validation BLEU) and lm, then loading the run for decoding."""

from __future__ import annotations

import json

import numpy as np
import pytest

from mlxt.train.config import load_config
from mlxt.train.metrics import read_metrics
from mlxt.train.rundir import load_run
from mlxt.train.trainer import train

WORDS = ["one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten"]


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("MLXT_CACHE", str(tmp_path / "cache"))


def _write(path, text):
    path.write_text(text)
    return path


def test_seq2seq_run_with_bleu(tmp_path):
    rng = np.random.default_rng(0)
    lines = []
    for _ in range(300):
        words = list(rng.choice(WORDS, rng.integers(2, 6)))
        lines.append(" ".join(words) + "\t" + " ".join(reversed(words)))
    tsv = _write(tmp_path / "pairs.tsv", "\n".join(lines) + "\n")
    config = _write(tmp_path / "rev.toml", f"""
[model]
kind = "seq2seq"
d_model = 32
num_heads = 2
num_encoder_layers = 1
num_decoder_layers = 1
d_ff = 64
dropout = 0.0
max_len = 64
share_embeddings = true

[data]
path = "{tsv}"
format = "tsv"
tokenizer = "char"
vocab_size = 64
valid_size = 20
test_size = 20
max_len = 40
max_tokens = 1024

[train]
steps = 30
lr = 3e-3
schedule = "constant"
warmup_steps = 5
eval_every = 15
bleu_samples = 10
save_every = 15
log_every = 5
compile = false
""")
    result = train(load_config(config), tmp_path / "run", show_progress=False)
    records = read_metrics(tmp_path / "run" / "metrics.jsonl")
    valid = [r for r in records if r["split"] == "valid"]
    assert [r["step"] for r in valid] == [15, 30]
    assert all(0.0 <= r["bleu"] <= 100.0 and r["valid_ppl"] > 1.0 for r in valid)
    train_losses = [r["loss"] for r in records if r["split"] == "train"]
    assert train_losses[-1] < train_losses[0]
    assert len(result.samples) == 10 and all(len(s) == 3 for s in result.samples)
    run = load_run(tmp_path / "run")
    assert run.config.vocab_size == run.tokenizers["tgt"].vocab_size  # filled from the tokenizer
    saved = json.loads((tmp_path / "run" / "checkpoints" / "best" / "state.json").read_text())
    assert saved["step"] == result.best_step and saved["data"]["position"] > 0


def test_lm_run(tmp_path):
    text = _write(tmp_path / "text.txt", "to be or not to be, that is the question.\n" * 200)
    config = _write(tmp_path / "lm.toml", f"""
[model]
kind = "lm"
d_model = 32
num_heads = 2
num_decoder_layers = 1
d_ff = 64
dropout = 0.0
positional = "learned"
norm_first = true
max_len = 32

[data]
path = "{text}"
tokenizer = "char"
vocab_size = 64
valid_size = 0.1
batch_size = 4
block_size = 32

[train]
steps = 40
lr = 3e-3
schedule = "cosine"
min_lr = 1e-4
label_smoothing = 0.0
eval_every = 20
eval_batches = 2
save_every = 20
log_every = 10
compile = false
""")
    train(load_config(config), tmp_path / "run", show_progress=False)
    records = read_metrics(tmp_path / "run" / "metrics.jsonl")
    valid = [r for r in records if r["split"] == "valid"]
    assert len(valid) == 2 and valid[-1]["valid_loss"] < valid[0]["valid_loss"]
    assert valid[-1]["valid_ppl"] == pytest.approx(np.exp(valid[-1]["valid_loss"]))
    run = load_run(tmp_path / "run")
    assert run.config.kind == "lm" and "text" in run.tokenizers
    assert (tmp_path / "run" / "tokenizer" / "tokenizer.json").exists()
