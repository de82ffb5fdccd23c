"""Small configs shared by the training tests: a tiny regression run on the synthetic series
(fast, no tokenizer, no network) written as a TOML file."""

from __future__ import annotations

import time
from pathlib import Path

TINY_REGRESSION = """
[model]
kind = "regression"
d_model = 16
num_heads = 2
num_encoder_layers = 1
num_decoder_layers = 0
d_ff = 32
dropout = 0.1
causal = true
max_len = 16

[data]
corpus = "synthetic-sines"
length = 3000
window = 16
batch_size = 8
valid_size = 0.2
seed = 7

[train]
steps = {steps}
lr = 3e-3
schedule = "cosine"
warmup_steps = 5
min_lr = 1e-4
eval_every = {eval_every}
eval_batches = 2
save_every = {save_every}
keep_last = {keep_last}
log_every = 1
seed = 3
compile = false
"""


def write_tiny_config(directory: Path, steps: int = 20, eval_every: int = 10, save_every: int = 5,
                      keep_last: int = 0) -> Path:
    path = Path(directory) / "tiny.toml"
    path.write_text(TINY_REGRESSION.format(steps=steps, eval_every=eval_every, save_every=save_every,
                                           keep_last=keep_last))
    return path


def train_losses(metrics_path: Path) -> dict[int, float]:
    import json

    out = {}
    for line in Path(metrics_path).read_text().splitlines():
        record = json.loads(line)
        if record["split"] == "train":
            out[record["step"]] = record["loss"]
    return out


def wait_for(proc, condition, timeout: float = 60.0, poll: float = 0.005) -> bool:
    """Poll ``condition()`` until it holds (True), ``proc`` exits or ``timeout`` passes (False)."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        if condition():
            return True
        if proc.poll() is not None:
            return False
        time.sleep(poll)
    return False
