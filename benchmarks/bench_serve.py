"""Load on `mlxt serve`: concurrent clients sending single real sentences to ``/translate``.

A server (``python -m mlxt serve``, a separate process) runs a seq2seq run: ``--run RUN_DIR``,
or by default a random-weight character model (speed does not depend on what was learned).
The sentences are the German side of the Tatoeba test split (``../shared/data/tatoeba-deu-eng``,
read and split by the library, as training splits it), or a built-in list when that is absent.

Modes:

* default: one client at a time, then 8, 32 and 128 concurrent clients, then one client again;
  requests/s against the mean of the two one-client runs, p50/p99 latency, sentences per
  search, failures;
* ``--overload``: more clients than the server's queue, all at once: the refused ones get 503
  fast, every accepted one completes;
* ``--soak MINUTES``: 32 clients for that long; the server's resident memory at start and end.

    .venv/bin/python benchmarks/bench_serve.py [--run RUN_DIR] [--overload] [--soak MINUTES]
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import common

REPO = Path(__file__).resolve().parents[1]
FALLBACK = ["Ich habe Hunger.", "Wo ist der Bahnhof?", "Das Wetter ist heute schön.", "Er liest ein Buch.",
            "Wir gehen morgen ins Kino.", "Kannst du mir helfen?", "Sie wohnt in Berlin.", "Tom lacht.",
            "Der Hund schläft unter dem Tisch.", "Ich verstehe das nicht."]
CLIENTS = (1, 8, 32, 128)


def sentences() -> tuple[list[str], str]:
    """German test sentences and where they came from."""
    from mlxt.data.readers import read_tatoeba_zip
    from mlxt.data.splits import split_pairs

    path = Path(os.environ.get("MLXT_SHARED_DATA", REPO.parent / "shared" / "data")) / "tatoeba-deu-eng" / "deu-eng.zip"
    if not path.exists():
        return FALLBACK, "built-in sentences"
    test = split_pairs(read_tatoeba_zip(path), 2000, 2000, 1234)["test"]
    return [de for _, de in test], f"Tatoeba deu-eng test split ({len(test)} pairs)"


def random_run(texts: list[str], where: Path) -> str:
    """A random-weight character seq2seq run (de -> en) in ``where``."""
    import mlx.core as mx

    from mlxt.data.tokenizers import CharTokenizer
    from mlxt.model import ModelConfig, build_model
    from mlxt.train.rundir import write_inference_run

    tok = CharTokenizer.train(texts)
    config = ModelConfig(kind="seq2seq", vocab_size=tok.vocab_size, d_model=128, num_heads=4, num_encoder_layers=2,
                         num_decoder_layers=2, d_ff=512, dropout=0.0, max_len=160)
    mx.random.seed(0)
    model = build_model(config)
    mx.eval(model.parameters())
    write_inference_run(where, model, config, {"src": tok, "tgt": tok},
                        {"decode": {"beam_size": 1, "max_len_a": 1.0, "max_len_b": 5}})
    return f"{where}:de-en"


class Server:
    def __init__(self, spec: str, *flags: str):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
        self.proc = subprocess.Popen([sys.executable, "-m", "mlxt", "serve", spec, "--port", str(self.port), "-q",
                                      *flags], env=env, stderr=subprocess.PIPE, text=True)
        line = self.proc.stderr.readline()
        if "serving" not in line:
            raise SystemExit(f"the server did not start: {line}{self.proc.stderr.read()}")

    def batches(self) -> tuple[float, float]:
        """(sentences decoded, searches run) so far, from ``/metrics``."""
        import httpx

        found = {}
        for line in httpx.get(self.url + "/metrics").text.splitlines():
            if line.startswith(("mlxt_batch_size_sum", "mlxt_batch_size_count")):
                name, value = line.split()
                found[name] = float(value)
        return found.get("mlxt_batch_size_sum", 0.0), found.get("mlxt_batch_size_count", 0.0)

    def rss_mb(self) -> float:
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        return float("nan")

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=60)


def load(url: str, texts: list[str], clients: int, requests: int | None = None, seconds: float | None = None) -> dict:
    """``clients`` threads, each with its own keep-alive connection (the standard library's
    `http.client`, light on the CPU the server shares), sending one sentence at a time until
    ``requests`` are sent in all (or ``seconds`` pass)."""
    import http.client
    import json
    import threading
    from urllib.parse import urlsplit

    host, port = urlsplit(url).hostname, urlsplit(url).port
    lock = threading.Lock()
    latencies, fail_latency, statuses = [], [], {}
    sent = [0]
    stop_at = time.perf_counter() + seconds if seconds else None
    go = threading.Barrier(clients + 1)

    def take() -> str | None:
        with lock:
            if (requests is not None and sent[0] >= requests) or (stop_at and time.perf_counter() >= stop_at):
                return None
            sent[0] += 1
            return texts[sent[0] % len(texts)]

    def client():
        conn = http.client.HTTPConnection(host, port, timeout=300)
        go.wait()
        while (text := take()) is not None:
            body = json.dumps({"q": text, "source": "de", "target": "en"})
            start = time.perf_counter()
            try:
                conn.request("POST", "/translate", body, {"Content-Type": "application/json"})
                response = conn.getresponse()
                response.read()
                status = response.status
            except (OSError, http.client.HTTPException):
                status = -1
                conn.close()
                conn = http.client.HTTPConnection(host, port, timeout=300)
            elapsed = time.perf_counter() - start
            with lock:
                statuses[status] = statuses.get(status, 0) + 1
                (latencies if status == 200 else fail_latency).append(elapsed)
        conn.close()

    threads = [threading.Thread(target=client, daemon=True) for _ in range(clients)]
    for t in threads:
        t.start()
    go.wait()
    start = time.perf_counter()
    for t in threads:
        t.join()
    wall = time.perf_counter() - start
    latencies.sort()
    fail_latency.sort()

    def pct(values, q):
        return values[min(len(values) - 1, int(q * len(values)))] * 1000 if values else float("nan")

    return {"ok": len(latencies), "failed": sum(n for s, n in statuses.items() if s != 200), "statuses": statuses,
            "rps": len(latencies) / wall, "p50": pct(latencies, 0.5), "p99": pct(latencies, 0.99),
            "fail_p99": pct(fail_latency, 0.99), "wall": wall}


def run(spec: str | None = None, texts: list[str] | None = None) -> tuple[list, list, dict]:
    """The default mode's table (for ``run_all.py``)."""
    texts, source = (texts, "given") if texts else sentences()
    with tempfile.TemporaryDirectory() as tmp:
        spec = spec or random_run(texts, Path(tmp) / "run")
        server = Server(spec, "--max-queue", "256")
        try:
            load(server.url, texts, 4, 8)  # warm up
            per_client = 2 if common.quick() else 6
            results = []
            for clients in (*CLIENTS, 1):  # one client first and last: the machine's load drifts
                before = server.batches()
                result = load(server.url, texts, clients, max(32, clients * per_client))
                after = server.batches()
                result["mean_batch"] = (after[0] - before[0]) / max(after[1] - before[1], 1)
                results.append((clients, result))
            base = (results[0][1]["rps"] + results[-1][1]["rps"]) / 2
            rows = [[clients, r["ok"] + r["failed"], f"{r['rps']:.1f}", f"{r['rps'] / base:.2f}x", f"{r['p50']:.0f}",
                     f"{r['p99']:.0f}", f"{r['mean_batch']:.1f}", r["failed"]] for clients, r in results]
        finally:
            server.stop()
    headers = ["clients", "requests", "req/s", "vs 1 client (mean of both)", "p50 ms", "p99 ms", "mean batch",
               "failed"]
    return headers, rows, {"source": source}


def overload(spec: str, texts: list[str], queue: int = 16) -> str:
    server = Server(spec, "--max-queue", str(queue))
    try:
        load(server.url, texts, 4, 8)
        clients = queue * 8
        result = load(server.url, texts, clients, clients)
    finally:
        server.stop()
    return (f"overload: {clients} clients at once against --max-queue {queue}: {result['ok']} accepted and "
            f"answered 200, statuses {result['statuses']}; refused answered with p99 {result['fail_p99']:.0f} ms, "
            f"accepted p99 {result['p99']:.0f} ms")


def soak(spec: str, texts: list[str], minutes: float) -> str:
    """32 clients for ``minutes``; the server's RSS after a warm-up, then at every fifth of the run."""
    import threading

    server = Server(spec, "--max-queue", "256")
    try:
        load(server.url, texts, 32, 256)  # warm up: MLX's buffer cache fills with the batch shapes
        samples = [server.rss_mb()]
        done = threading.Event()

        def sample():
            while not done.wait(minutes * 12):
                samples.append(server.rss_mb())

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        result = load(server.url, texts, 32, seconds=minutes * 60)
        done.set()
        sampler.join()
        samples.append(server.rss_mb())
    finally:
        server.stop()
    return (f"soak: 32 clients for {minutes:g} min: {result['ok']} ok, {result['failed']} failed, "
            f"{result['rps']:.1f} req/s; server RSS (MB) after warm-up, every fifth, at the end: "
            f"{' '.join(f'{m:.0f}' for m in samples)}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", help="serve this RUN_DIR[:SRC-TGT] (German sources) instead of a random model")
    parser.add_argument("--overload", action="store_true", help="more clients than the queue holds")
    parser.add_argument("--soak", type=float, metavar="MINUTES", help="32 clients for this long; RSS start/end")
    args = parser.parse_args()
    texts, source = sentences()
    print(f"Machine: {common.machine()}\nSentences: {source}", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        spec = args.run or random_run(texts, Path(tmp) / "run")
        if args.overload:
            print(overload(spec, texts))
        elif args.soak:
            print(soak(spec, texts, args.soak))
        else:
            headers, rows, _ = run(spec, texts)
            print(common.table(headers, rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
