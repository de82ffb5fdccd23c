"""Tiny runs and a live server on 127.0.0.1 for the serving tests.

`tiny_runs` trains a character-level seq2seq run (English words -> upper case, recorded as
``en`` -> ``de`` in its ``[data]``) and a character-level language model once per test
session (under pytest's base temporary directory); `LiveServer` runs `mlxt.serve` in a thread
on a free port.
"""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path


def tiny_runs(tmp_path_factory) -> Path:
    """The directory holding ``s2s/`` and ``lm/`` (trained on first use in this session)."""
    from tiny_runs import train_tiny_runs

    root = tmp_path_factory.getbasetemp() / "serve_runs"
    if (root / "lm" / "checkpoints" / "best").exists():
        return root
    root.mkdir(exist_ok=True)
    # 200 seq2seq steps: enough to read the web page's output
    return train_tiny_runs(root, s2s_steps=200, lm_steps=30, bleu_samples=0,
                           s2s_data='src_lang = "en"\ntgt_lang = "de"\n')


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
