"""Limits and robustness of `mlxt serve`: API keys, the rate limit, a full queue, the request
timeout, a decode that crashes for one request only, and the pieces (key file, rate limiter,
html splitting, language pairs of a run) on their own."""

from __future__ import annotations

import concurrent.futures
import threading
import time

import httpx
import pytest
from serve_helpers import LiveServer, tiny_runs

from mlxt.errors import MlxtError
from mlxt.serve import Limits
from mlxt.serve.html_text import rebuild, text_runs
from mlxt.serve.limits import RateLimiter, read_api_keys
from mlxt.serve.models import languages_of, split_spec

BODY = {"q": "the cat", "source": "en", "target": "de"}


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    return tiny_runs(tmp_path_factory)


def translate(server, body=BODY, **kw):
    return httpx.post(server.url + "/translate", json=body, timeout=60, **kw)


class Held:
    """Wraps the batcher's decode so that it waits for ``release`` (and fails for sources
    holding ``poison``): a way to fill the queue and to crash one request on purpose."""

    def __init__(self, batcher, poison=None):
        self.batcher, self.real, self.poison = batcher, batcher.translate_fn, poison
        self.release = threading.Event()

    def __call__(self, model, sources, *args, **kw):
        self.release.wait(30)
        if self.poison is not None and any(self.poison in s for s in sources):
            raise RuntimeError("decode failed on purpose")
        return self.real(model, sources, *args, **kw)

    def __enter__(self):
        self.batcher.translate_fn = self
        return self

    def __exit__(self, *exc):
        self.release.set()
        self.batcher.translate_fn = self.real


def wait_depth(server, n):
    deadline = time.time() + 30
    while server.state.batcher.depth < n and time.time() < deadline:
        time.sleep(0.01)
    assert server.state.batcher.depth >= n


def test_api_keys_and_rate_limit(runs, tmp_path):
    keys = tmp_path / "keys.txt"
    keys.write_text("# team keys\nalpha\n\nbeta  # second\n")
    with LiveServer([runs / "s2s", runs / "lm"], Limits(rate_limit=2), str(keys)) as server:
        r = translate(server)
        assert r.status_code == 403 and "API key" in r.json()["error"]
        r = translate(server, {**BODY, "api_key": "gamma"})
        assert r.status_code == 403 and r.json()["error"] == "Invalid API key"
        assert translate(server, {**BODY, "api_key": "alpha"}).status_code == 200
        assert translate(server, headers={"authorization": "Bearer alpha"}).status_code == 200
        r = httpx.post(server.url + "/v1/completions", json={"prompt": "a", "max_tokens": 2},
                       headers={"authorization": "Bearer beta"})
        assert r.status_code == 200
        r = translate(server, {**BODY, "api_key": "alpha"})  # alpha's third request this minute
        assert r.status_code == 429 and r.json()["error"].startswith("Slowdown")
        assert translate(server, {**BODY, "api_key": "beta"}).status_code == 200  # per key
        assert httpx.get(server.url + "/languages").status_code == 200  # not limited


def test_full_queue_answers_503_and_accepted_requests_complete(runs):
    with LiveServer([runs / "s2s"], Limits(max_queue=3)) as server:
        with Held(server.state.batcher) as held, concurrent.futures.ThreadPoolExecutor(3) as pool:
            accepted = [pool.submit(translate, server) for _ in range(3)]
            wait_depth(server, 3)
            refused = translate(server)  # answered while the model thread is still held: at once
            assert refused.status_code == 503 and "busy" in refused.json()["error"]
            assert refused.headers["retry-after"] == "1" and not held.release.is_set()
            held.release.set()
            assert [f.result().status_code for f in accepted] == [200] * 3
        assert translate(server).status_code == 200


def test_timeout_answers_504_and_the_server_goes_on(runs):
    with LiveServer([runs / "s2s"], Limits(timeout=0.5)) as server:
        with Held(server.state.batcher):
            r = translate(server)
            assert r.status_code == 504 and "0.5 s" in r.json()["error"]
        assert translate(server).status_code == 200


def test_a_crashing_decode_fails_only_its_request(runs):
    with LiveServer([runs / "s2s"]) as server:
        tok = server.state.served[0].tokenizers["src"]
        poison = tok.encode("z")[0]  # 'z' occurs in no other sentence here
        with Held(server.state.batcher, poison) as held, concurrent.futures.ThreadPoolExecutor(4) as pool:
            good = [pool.submit(translate, server, {**BODY, "q": q}) for q in ("the cat", "a dog", "red tree")]
            bad = pool.submit(translate, server, {**BODY, "q": "zzz"})
            wait_depth(server, 4)
            held.release.set()
            assert [f.result().status_code for f in good] == [200] * 3
            r = bad.result()
            assert r.status_code == 500 and "decode failed on purpose" in r.json()["error"]
        assert translate(server).status_code == 200


def test_api_key_file_errors(tmp_path):
    with pytest.raises(MlxtError, match="not found"):
        read_api_keys(tmp_path / "none.txt")
    (tmp_path / "empty").write_text("# nothing\n\n")
    with pytest.raises(MlxtError, match="holds no API key"):
        read_api_keys(tmp_path / "empty")
    (tmp_path / "two").write_text("a b\n")
    with pytest.raises(MlxtError, match=r"two:1: expected one API key per line"):
        read_api_keys(tmp_path / "two")


def test_rate_limiter_window():
    now = [0.0]
    limiter = RateLimiter(2, clock=lambda: now[0])
    assert limiter.allow("a") and limiter.allow("a") and not limiter.allow("a") and limiter.allow("b")
    now[0] = 59.9
    assert not limiter.allow("a")
    now[0] = 60.0
    assert limiter.allow("a") and limiter.allow("a") and not limiter.allow("a")
    assert all(RateLimiter(0).allow("x") for _ in range(100))


def test_html_keeps_markup_and_escapes():
    fragment = '<div id="a"><p>Hello <i>big</i> world</p><script>var x = 1 < 2;</script> <!-- c --><br/>Bye &amp; so</div>'
    assert text_runs(fragment) == ["Hello", "big", "world", "Bye & so"]
    out = rebuild(fragment, ["H", "B", "W", "x < y"])
    assert out == '<div id="a"><p>H <i>B</i> W</p><script>var x = 1 &lt; 2;</script> <!-- c --><br/>x &lt; y</div>'


def test_language_pairs_of_runs(tmp_path):
    assert split_spec("runs/x:de-en") == ("runs/x", ("de", "en"))
    assert split_spec("runs/x") == ("runs/x", None)
    with pytest.raises(MlxtError, match="RUN_DIR:SRC-TGT"):
        split_spec("runs/x:german")
    assert languages_of({"data": {"src_lang": "fr", "tgt_lang": "en"}}, "c") == ("fr", "en")
    assert languages_of({"data": {"corpus": "tatoeba-deu-eng"}}, "c") == ("en", "de")
    assert languages_of({"data": {"corpus": "tatoeba-deu-eng", "src_lang": "de"}}, "c") == ("de", "en")
    assert languages_of({"convert": {"source": "/m/opus-mt-de-en"}}, "c") == ("de", "en")
    assert languages_of({"data": {"path": "pairs.tsv"}}, "c") is None


def test_limits_are_checked():
    with pytest.raises(MlxtError, match="--max-queue"):
        Limits(max_queue=0).check()
    with pytest.raises(MlxtError, match="--rate-limit"):
        Limits(rate_limit=-1).check()
