"""OpenAI-style completions on a live server, driven by the official `openai` client:
non-streaming and streaming give the text `generate_tokens` gives for the same settings."""

from __future__ import annotations

import httpx
import pytest
from serve_helpers import LiveServer, tiny_runs

from mlxt.decode.sampling import generate_tokens
from mlxt.serve.completions_api import TextStream
from mlxt.train.rundir import load_run


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    return tiny_runs(tmp_path_factory)


@pytest.fixture(scope="module")
def server(runs):
    from mlxt.serve import Limits

    with LiveServer([runs / "s2s", runs / "lm"], Limits(max_tokens=200)) as live:
        yield live


@pytest.fixture(scope="module")
def client(server):
    import openai

    return openai.OpenAI(base_url=server.url + "/v1", api_key="unused", max_retries=0)


def reference(runs, prompt, max_tokens, temperature, seed, top_k=0, top_p=1.0):
    loaded = load_run(runs / "lm")
    tok = loaded.tokenizers["text"]
    ids = list(generate_tokens(loaded.model, tok.encode(prompt), max_tokens, temperature, top_k, top_p, seed))
    return tok.decode(ids), len(ids)


def test_models_list(client):
    assert [m.id for m in client.models.list().data] == ["lm"]


def test_completion_matches_the_library(client, runs):
    text, n = reference(runs, "the ", 40, 0.9, 7, top_k=10)
    out = client.completions.create(model="lm", prompt="the ", max_tokens=40, temperature=0.9, seed=7,
                                    extra_body={"top_k": 10})
    assert out.choices[0].text == text
    assert out.choices[0].finish_reason == ("length" if n == 40 else "stop")
    assert out.usage.completion_tokens == n and out.usage.prompt_tokens == 4


def test_streaming_gives_the_same_text(client, runs):
    text, _ = reference(runs, "a", 60, 0.0, None)
    pieces, reasons = [], []
    for chunk in client.completions.create(model="lm", prompt="a", max_tokens=60, temperature=0, stream=True):
        pieces.append(chunk.choices[0].text)
        reasons.append(chunk.choices[0].finish_reason)
    assert "".join(pieces) == text and len(pieces) > 2
    assert reasons[-1] in ("stop", "length") and set(reasons[:-1]) == {None}


def test_stop_sequences(client, runs):
    text, _ = reference(runs, "the", 80, 0.0, None)
    stop = text[5:7]
    assert len(stop) == 2 and stop in text
    cut = text[: text.find(stop)]
    out = client.completions.create(model="lm", prompt="the", max_tokens=80, temperature=0, stop=[stop, "\x00"])
    assert out.choices[0].text == cut and out.choices[0].finish_reason == "stop"
    streamed = "".join(c.choices[0].text for c in client.completions.create(
        model="lm", prompt="the", max_tokens=80, temperature=0, stop=stop, stream=True))
    assert streamed == cut


def test_errors_are_openai_errors(client, server):
    import openai

    with pytest.raises(openai.NotFoundError, match="does not exist"):
        client.completions.create(model="nope", prompt="a", max_tokens=3)
    with pytest.raises(openai.BadRequestError, match="max_tokens"):
        client.completions.create(model="lm", prompt="a", max_tokens=201)
    with pytest.raises(openai.BadRequestError, match="temperature"):
        client.completions.create(model="lm", prompt="a", temperature=-1)
    r = httpx.post(server.url + "/v1/completions", json={"model": "lm", "prompt": 3})
    assert r.status_code == 400 and "prompt must be a string" in r.json()["error"]["message"]
    r = httpx.post(server.url + "/v1/completions", content=b"{bad", headers={"content-type": "application/json"})
    assert r.status_code == 400 and r.json()["error"]["type"] == "invalid_request_error"


class Chars:
    """A tokenizer whose ids are code points (for `TextStream` alone)."""

    def decode(self, ids):
        return "".join(map(chr, ids))


def test_text_stream_holds_back_a_possible_stop_start():
    stream = TextStream(Chars(), ["END"])
    sent = [stream.add(ord(c)) for c in "abcEN"]
    assert "".join(sent) == "abc" and not stream.stopped  # "EN" may start "END"
    assert stream.add(ord("X")) == "ENX"
    assert stream.add(ord("E")) + stream.add(ord("N")) + stream.add(ord("D")) == "" and stream.stopped
    assert stream.sent == "abcENX"
    tail = TextStream(Chars(), ["END"])
    assert "".join(tail.add(ord(c)) for c in "xyE") + tail.finish() == "xyE"
