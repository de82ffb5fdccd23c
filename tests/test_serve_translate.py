"""`mlxt serve`'s LibreTranslate API on a live server: the unchanged `libretranslatepy` client,
JSON and form bodies, lists, alternatives, html, ``source: auto``, batching that gives the same
translations as `mlxt translate`, and clear 400s for malformed requests."""

from __future__ import annotations

import concurrent.futures
import json
import threading
import time

import httpx
import pytest
from serve_helpers import LiveServer, tiny_runs

from mlxt.cli import main

SENTENCES = ["the cat", "a big red house", "dog runs", "the small tree walks", "sees", "a cat sees the dog",
             "red", "the house runs", "big big dog", "walks a tree", "the", "small cat runs"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    return tiny_runs(tmp_path_factory)


@pytest.fixture(scope="module")
def server(runs):
    from mlxt.serve import Limits

    with LiveServer([runs / "s2s", f"{runs / 's2s'}:de-fr", runs / "lm"],
                    Limits(max_chars=400, max_item_chars=100, max_items=20, max_body=4000)) as live:
        yield live


def post(server, body=None, **kw):
    if body is not None:
        kw["json"] = body
    return httpx.post(server.url + "/translate", timeout=60, **kw)


def cli_translations(runs, capsys, sentences, beam=None):
    args = ["translate", str(runs / "s2s"), *sentences] + (["--beam", str(beam)] if beam else [])
    capsys.readouterr()
    assert main(args) == 0
    return capsys.readouterr().out.split("\n")[: len(sentences)]


def test_libretranslatepy_client(server, runs, capsys):
    from libretranslatepy import LibreTranslateAPI

    client = LibreTranslateAPI(server.url)
    langs = client.languages()
    assert {"code": "en", "name": "English", "targets": ["de"]} in langs
    assert {"code": "de", "name": "German", "targets": ["fr"]} in langs
    assert client.translate("the cat", "en", "de") == cli_translations(runs, capsys, ["the cat"])[0]


def test_concurrent_requests_are_batched_and_match_mlxt_translate(server, runs, capsys):
    expected = cli_translations(runs, capsys, SENTENCES)
    before = server.state.metrics.batches.sum, server.state.metrics.batches.total
    # Hold the model thread until every request is queued, so they are decoded together.
    gate, real = threading.Event(), server.state.batcher.translate_fn

    def held(*args, **kw):
        gate.wait(30)
        return real(*args, **kw)

    server.state.batcher.translate_fn = held
    try:
        with concurrent.futures.ThreadPoolExecutor(len(SENTENCES)) as pool:
            futures = [pool.submit(post, server, {"q": s, "source": "en", "target": "de"}) for s in SENTENCES]
            deadline = time.time() + 30
            while server.state.batcher.depth < len(SENTENCES) and time.time() < deadline:
                time.sleep(0.01)
            gate.set()
            answers = [f.result() for f in futures]
    finally:
        server.state.batcher.translate_fn = real
    assert [a.status_code for a in answers] == [200] * len(SENTENCES)
    assert [a.json()["translatedText"] for a in answers] == expected
    sentences = server.state.metrics.batches.sum - before[0]
    searches = server.state.metrics.batches.total - before[1]
    assert sentences == len(SENTENCES) and searches < len(SENTENCES)  # several requests per search


def test_list_alternatives_and_multiline(server, runs, capsys):
    r = post(server, {"q": ["the cat", "red tree\ndog runs", ""], "source": "en", "target": "de",
                      "alternatives": 2})
    assert r.status_code == 200, r.text
    body = r.json()
    best = cli_translations(runs, capsys, ["the cat", "red tree", "dog runs"])
    assert body["translatedText"] == [best[0], f"{best[1]}\n{best[2]}", ""]
    assert len(body["alternatives"]) == 3 and len(body["alternatives"][0]) == 2
    assert best[0] not in body["alternatives"][0] and len(set(body["alternatives"][0])) == 2


def test_form_body_auto_source_and_html(server, runs, capsys):
    r = post(server, data={"q": "the cat", "source": "auto", "target": "de"})
    assert r.status_code == 200
    assert r.json() == {"translatedText": cli_translations(runs, capsys, ["the cat"])[0],
                        "detectedLanguage": {"confidence": 100.0, "language": "en"}}
    r = post(server, {"q": '<p class="x">the cat &amp; <b>dog</b></p>', "source": "en", "target": "de",
                      "format": "html"})
    parts = cli_translations(runs, capsys, ["the cat &", "dog"])
    assert r.json()["translatedText"] == f'<p class="x">{parts[0].replace("&", "&amp;")} <b>{parts[1]}</b></p>'


def test_form_body_line_ends(server, runs, capsys):
    """A form's CRLF line ends become \\n, as LibreTranslate counts them; a U+2028 stays inside its line
    (one line, one translation), as in every other reader of user lines."""
    r = post(server, data={"q": "red tree\r\ndog runs", "source": "en", "target": "de"})
    best = cli_translations(runs, capsys, ["red tree", "dog runs", "the cat\u2028dog"])
    assert r.status_code == 200 and r.json()["translatedText"] == f"{best[0]}\n{best[1]}"
    r = post(server, data={"q": "the cat\u2028dog", "source": "en", "target": "de"})
    assert r.status_code == 200 and r.json()["translatedText"] == best[2]


@pytest.mark.parametrize("body, status, message", [
    ({"source": "en", "target": "de"}, 400, "missing q"),
    ({"q": "", "source": "en", "target": "de"}, 400, "missing q"),
    ({"q": [], "source": "en", "target": "de"}, 400, "missing q"),
    ({"q": 5, "source": "en", "target": "de"}, 400, "q must be a string"),
    ({"q": ["a", 3], "source": "en", "target": "de"}, 400, "q[1] must be a string"),
    ({"q": "a", "target": "de"}, 400, "missing source"),
    ({"q": "a", "source": "en", "target": ["de"]}, 400, "target must be a string"),
    ({"q": "a", "source": "xx", "target": "de"}, 400, "xx is not supported"),
    ({"q": "a", "source": "en", "target": "fr"}, 400, "not available as a target language from English"),
    ({"q": "a", "source": "auto", "target": "xx"}, 400, "not supported"),
    ({"q": "a", "source": "en", "target": "de", "format": "pdf"}, 400, "pdf format is not supported"),
    ({"q": "a", "source": "en", "target": "de", "alternatives": 9}, 400, "alternatives"),
    ({"q": "a", "source": "en", "target": "de", "alternatives": "two"}, 400, "alternatives"),
    ({"q": "x" * 101, "source": "en", "target": "de"}, 400, "over the limit of 100"),
    ({"q": ["x" * 90] * 5, "source": "en", "target": "de"}, 400, "exceeds text limit (400)"),
    ({"q": ["a"] * 21, "source": "en", "target": "de"}, 400, "more than the limit of 20"),
    ({"q": "\ud800", "source": "en", "target": "de"}, 400, "input 1"),
])
def test_bad_requests_are_400_with_a_message(server, body, status, message):
    r = post(server, content=json.dumps(body).encode(), headers={"content-type": "application/json"})
    assert r.status_code == status, r.text
    assert message in r.json()["error"]


@pytest.mark.parametrize("content, kind, status, message", [
    (b'{"q": "a", ', "application/json", 400, "Invalid JSON"),
    (b'["a"]', "application/json", 400, "expected an object"),
    (b"", "application/json", 400, "empty JSON"),
    (b"q=\xff\xfe&source=en&target=de", "application/x-www-form-urlencoded", 400, "not UTF-8"),
    (b'{"q": "caf\xe9"}', "application/json", 400, "not UTF-8"),
    (b"q=" + b"a" * 5000, "application/x-www-form-urlencoded", 413, "over the limit"),
])
def test_malformed_bodies(server, content, kind, status, message):
    r = post(server, content=content, headers={"content-type": kind})
    assert r.status_code == status and message in r.json()["error"]


def test_languages_health_metrics_and_unknown_paths(server):
    assert httpx.get(server.url + "/health").json()["status"] == "ok"
    assert httpx.get(server.url + "/nowhere").status_code == 404
    assert httpx.get(server.url + "/translate").status_code == 405
    post(server, {"q": "a", "source": "en", "target": "de"})
    text = httpx.get(server.url + "/metrics").text
    assert 'mlxt_requests_total{path="/translate",status="200"}' in text
    assert "mlxt_queue_depth 0" in text and "mlxt_batch_size_count" in text
    assert 'mlxt_request_seconds_bucket{path="/translate",le="+Inf"}' in text
