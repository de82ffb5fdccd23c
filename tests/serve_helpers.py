"""Tiny runs and a live server on 127.0.0.1 for the serving tests.

`tiny_runs` trains a character-level seq2seq run (English words -> upper case, recorded as
``en`` -> ``de`` in its ``[data]``) and a character-level language model once per test
session (under pytest's base temporary directory); `LiveServer` runs `mlxt.serve` in a thread
on a free port.
"""

from __future__ import annotations

import random
import socket
import threading
import time
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
eval_every = {steps}
save_every = {steps}
log_every = 10
compile = false
bleu_samples = 0
"""


def tiny_runs(tmp_path_factory) -> Path:
    """The directory holding ``s2s/`` and ``lm/`` (trained on first use in this session)."""
    from mlxt.cli import main

    root = tmp_path_factory.getbasetemp() / "serve_runs"
    if (root / "lm" / "checkpoints" / "best").exists():
        return root
    root.mkdir(exist_ok=True)
    rnd = random.Random(0)
    lines = []
    for _ in range(300):
        s = " ".join(rnd.choice(WORDS) for _ in range(rnd.randint(1, 5)))
        lines.append(f"{s}\t{s.upper()}\n")
    (root / "pairs.tsv").write_text("".join(lines))
    (root / "text.txt").write_text("".join(l.split("\t")[0] + ".\n" for l in lines))
    (root / "s2s.toml").write_text(
        f'[model]\nkind = "seq2seq"\nnum_encoder_layers = 1\n{MODEL}\n[data]\npath = "{root}/pairs.tsv"\n'
        'format = "tsv"\ntokenizer = "char"\nsrc_lang = "en"\ntgt_lang = "de"\nvalid_size = 10\ntest_size = 10\n'
        'max_len = 40\nmax_tokens = 1024\n' + TRAIN.format(steps=200))  # enough to read the page's output
    (root / "lm.toml").write_text(
        f'[model]\nkind = "lm"\npositional = "learned"\n{MODEL}\n[data]\npath = "{root}/text.txt"\n'
        'format = "text"\ntokenizer = "char"\nvalid_size = 0.1\nbatch_size = 4\nblock_size = 32\n' + TRAIN.format(steps=30))
    for name in ("s2s", "lm"):
        assert main(["train", "--config", str(root / f"{name}.toml"), "--run-dir", str(root / name), "-q"]) == 0
    return root


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LiveServer:
    """`mlxt.serve.serve` in a background thread; ``url`` once it answers ``/health``."""

    def __init__(self, specs: list[str], limits=None, api_keys: str | None = None):
        from mlxt.serve import Limits, build_state

        self.state = build_state([str(s) for s in specs], limits or Limits(), api_keys)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._thread = None

    def __enter__(self) -> "LiveServer":
        import uvicorn

        from mlxt.serve.app import create_app

        config = uvicorn.Config(create_app(self.state), host="127.0.0.1", port=self.port, log_level="warning",
                                access_log=False, lifespan="off")
        self.server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self.server.run, daemon=True)
        self._thread.start()
        deadline = time.time() + 30
        while not self.server.started:
            if time.time() > deadline or not self._thread.is_alive():
                raise RuntimeError("the test server did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self._thread.join(timeout=30)
        self.state.batcher.close()


REPO_SRC = str(Path(__file__).resolve().parents[1] / "src")
