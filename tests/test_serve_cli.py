"""`mlxt serve` as a command: one-line errors for a user's mistakes, and a graceful SIGTERM
(requests in flight finish, new ones get 503, exit status 0)."""

from __future__ import annotations

import concurrent.futures
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time

import httpx
import pytest
from serve_helpers import REPO_SRC, free_port, tiny_runs

from mlxt.cli import main


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    return tiny_runs(tmp_path_factory)


def test_user_mistakes_are_one_line_errors(runs, tmp_path, capsys):
    assert main(["serve", str(tmp_path / "missing")]) == 2
    assert "run directory not found" in capsys.readouterr().err
    bare = tmp_path / "bare"
    shutil.copytree(runs / "s2s", bare, symlinks=True)
    config = (bare / "config.toml").read_text()
    (bare / "config.toml").write_text(config.replace('src_lang = "en"', 'src_lang = ""'))
    assert main(["serve", str(bare)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"give them as {bare}:SRC-TGT" in err
    assert main(["serve", str(runs / "s2s"), f"{bare}:en-de"]) == 2
    assert "en-de is already served" in capsys.readouterr().err
    assert main(["serve", f"{runs / 'lm'}:en-de"]) == 2
    assert "only for translators" in capsys.readouterr().err
    assert main(["serve", str(runs / "s2s"), "--api-keys", str(tmp_path / "nokeys")]) == 2
    assert "API key file not found" in capsys.readouterr().err
    assert main(["serve", str(runs / "s2s"), "--max-batch", "0"]) == 2
    assert "--max-batch" in capsys.readouterr().err
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        assert main(["serve", str(runs / "s2s"), "--port", str(port)]) == 2
        assert "cannot listen there" in capsys.readouterr().err


def test_sigterm_drains_then_exits_cleanly(runs):
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {**os.environ, "PYTHONPATH": REPO_SRC, "MLXT_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "mlxt", "serve", str(runs / "s2s"), str(runs / "lm"),
                             "--port", str(port), "--max-tokens", "3000"],
                            env=env, stderr=subprocess.PIPE, text=True)
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(proc.stderr), daemon=True)  # never lets the pipe fill
    try:
        assert "serving en-de, lm on" in proc.stderr.readline()
        reader.start()
        deadline = time.time() + 60
        while time.time() < deadline:
            try:
                if httpx.get(url + "/health").status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.05)
        body = {"prompt": "the", "max_tokens": 3000, "temperature": 1.0, "seed": 1}
        with concurrent.futures.ThreadPoolExecutor(6) as pool:
            running = [pool.submit(httpx.post, url + "/v1/completions", json={**body, "seed": i}, timeout=120)
                       for i in range(6)]
            deadline = time.time() + 60
            while True:  # all six accepted (a sampled end of text may finish one early), some still running
                depth = int(re.search(r"^mlxt_queue_depth (\d+)$", httpx.get(url + "/metrics").text, re.M).group(1))
                done = sum(f.done() for f in running)
                if depth >= 1 and depth + done >= 6:
                    break
                assert done < 6, "the completions ended too soon for this test"
                assert time.time() < deadline, "the completions were not all accepted"
                time.sleep(0.01)
            proc.send_signal(signal.SIGTERM)
            while httpx.get(url + "/health").status_code != 503:
                assert time.time() < deadline + 60, "the server did not start draining"
                time.sleep(0.01)
            refused = httpx.post(url + "/translate", json={"q": "the cat", "source": "en", "target": "de"})
            assert refused.status_code == 503 and refused.json()["error"] == "the server is shutting down"
            answers = [f.result() for f in running]
        assert [a.status_code for a in answers] == [200] * 6
        assert all(a.json()["choices"][0]["text"] for a in answers)
        assert proc.wait(timeout=60) == 0, "".join(lines)
        reader.join(timeout=10)
        rest = "".join(lines)
        assert '"POST /v1/completions" 200' in rest and "mlxt: server stopped" in rest
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_the_web_page_is_package_data(repo_root):
    import fnmatch
    import tomllib

    patterns = tomllib.loads((repo_root / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["mlxt.serve"]
    static = repo_root / "src" / "mlxt" / "serve" / "static"
    files = [p.relative_to(static.parent).as_posix() for p in static.iterdir()]
    assert {"static/index.html", "static/app.js", "static/style.css"} <= set(files)
    assert all(any(fnmatch.fnmatch(f, pattern) for pattern in patterns) for f in files)
