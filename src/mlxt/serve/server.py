"""Running a server: load the runs, start the model thread, listen with uvicorn.

On SIGTERM (or Ctrl-C) the server drains: new requests are answered 503 while the ones in
flight finish (for at most the request timeout), then it stops listening and exits with
status 0. A second signal stops it at once.
"""

from __future__ import annotations

import socket
import sys
import threading
import time

import uvicorn

from mlxt.errors import MlxtError
from mlxt.serve.app import create_app, setup_access_log
from mlxt.serve.batcher import Batcher
from mlxt.serve.limits import Limits, read_api_keys
from mlxt.serve.metrics import Metrics
from mlxt.serve.models import load_all
from mlxt.serve.state import ServeState


def build_state(specs: list[str], limits: Limits, api_keys: str | None = None, checkpoint: str = "best") -> ServeState:
    """Everything a server needs, with its model thread started."""
    limits.check()
    keys = read_api_keys(api_keys) if api_keys else None
    served = load_all(specs, checkpoint)
    metrics = Metrics()
    batcher = Batcher(limits.max_queue, limits.max_batch, limits.batch_tokens, metrics)
    batcher.start()
    return ServeState(served, limits, batcher, metrics, keys)


class DrainingServer(uvicorn.Server):
    def __init__(self, config, state: ServeState):
        super().__init__(config)
        self.state = state

    def handle_exit(self, sig, frame) -> None:
        if self.state.draining:
            return super().handle_exit(sig, frame)
        self.state.draining = True
        threading.Thread(target=self._drain, name="mlxt-drain", daemon=True).start()

    def _drain(self) -> None:
        deadline = time.monotonic() + self.state.limits.timeout
        while (self.state.in_flight > 0 or self.state.batcher.depth > 0) and time.monotonic() < deadline:
            time.sleep(0.02)
        self.should_exit = True


def listen(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise MlxtError(f"--host {host} --port {port}: cannot listen there ({exc.strerror})") from None
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def serve(state: ServeState, host: str = "127.0.0.1", port: int = 5000, quiet: bool = False) -> None:
    sock = listen(host, port)
    bound = sock.getsockname()[1]
    if not quiet:
        setup_access_log()
    names = ", ".join(f"{m.pair[0]}-{m.pair[1]}" if m.pair else m.name for m in state.served)
    print(f"mlxt: serving {names} on http://{host if ':' not in host else f'[{host}]'}:{bound}/", file=sys.stderr,
          flush=True)
    config = uvicorn.Config(create_app(state), log_level="warning", access_log=False, lifespan="off",
                            timeout_graceful_shutdown=max(1, int(state.limits.timeout)))
    server = DrainingServer(config, state)
    try:
        server.run(sockets=[sock])
    finally:
        state.batcher.close()
        sock.close()
    print("mlxt: server stopped", file=sys.stderr, flush=True)
