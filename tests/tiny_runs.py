"""Tiny seq2seq and lm runs trained by `mlxt train` on a made-up corpus (upper-casing words), for the
tests that drive the decoding commands and the server."""

from __future__ import annotations

import random
from pathlib import Path

WORDS = "the cat dog sees a big small red house tree runs walks".split()

MODEL = """
d_model = 32
num_heads = 2
num_decoder_layers = 1
d_ff = 64
dropout = 0.0
max_len = 48
"""
TRAIN = """
[train]
steps = {steps}
lr = 3e-3
schedule = "constant"
eval_every = {every}
save_every = {every}
log_every = 10
compile = false
bleu_samples = {bleu_samples}
"""


def train_tiny_runs(root: Path, s2s_steps: int = 20, lm_steps: int = 20, every: int | None = None,
                    bleu_samples: int = 4, s2s_data: str = "") -> Path:
    """Writes ``pairs.tsv``, ``text.txt`` and their configs under ``root`` and trains ``root/s2s``
    and ``root/lm`` (``every``: evaluation and save interval, default each run's step count;
    ``s2s_data``: extra ``[data]`` lines of the seq2seq config)."""
    from mlxt.cli import main

    rnd = random.Random(0)
    lines = []
    for _ in range(300):
        s = " ".join(rnd.choice(WORDS) for _ in range(rnd.randint(1, 5)))
        lines.append(f"{s}\t{s.upper()}\n")
    (root / "pairs.tsv").write_text("".join(lines))
    (root / "text.txt").write_text("".join(l.split("\t")[0] + ".\n" for l in lines))

    def train(steps: int) -> str:
        return TRAIN.format(steps=steps, every=every or steps, bleu_samples=bleu_samples)

    (root / "s2s.toml").write_text(
        f'[model]\nkind = "seq2seq"\nnum_encoder_layers = 1\n{MODEL}\n[data]\npath = "{root}/pairs.tsv"\n'
        f'format = "tsv"\ntokenizer = "char"\n{s2s_data}valid_size = 10\ntest_size = 10\nmax_len = 40\n'
        'max_tokens = 1024\n' + train(s2s_steps))
    (root / "lm.toml").write_text(
        f'[model]\nkind = "lm"\npositional = "learned"\n{MODEL}\n[data]\npath = "{root}/text.txt"\n'
        'format = "text"\ntokenizer = "char"\nvalid_size = 0.1\nbatch_size = 4\nblock_size = 32\n' + train(lm_steps))
    for name in ("s2s", "lm"):
        assert main(["train", "--config", str(root / f"{name}.toml"), "--run-dir", str(root / name), "-q"]) == 0
    return root
