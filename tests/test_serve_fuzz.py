"""Random request bodies against a live server: every answer is a JSON answer with a status a
client can act on (never 500 for what the client sent)."""

from __future__ import annotations

import json

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from serve_helpers import LiveServer, tiny_runs

SCALARS = st.one_of(st.none(), st.booleans(), st.integers(-10**20, 10**20), st.floats(allow_nan=True),
                    st.text(max_size=30), st.sampled_from(["en", "de", "auto", "html", "text", "lm", "s2s"]))
VALUES = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
                      max_leaves=8)
TRANSLATE_KEYS = ["q", "source", "target", "format", "alternatives", "api_key"]
COMPLETION_KEYS = ["model", "prompt", "max_tokens", "temperature", "top_p", "top_k", "seed", "stop", "stream", "n"]
ANSWERS = {200, 400, 404, 413}


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    from mlxt.serve import Limits

    runs = tiny_runs(tmp_path_factory)
    with LiveServer([runs / "s2s", runs / "lm"], Limits(max_tokens=20, max_item_chars=60, max_body=2000)) as live:
        yield live


def check(response: httpx.Response) -> None:
    assert response.status_code in ANSWERS, response.text
    body = response.json() if not response.text.startswith("data:") else None
    if response.status_code != 200:
        assert body["error"]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=st.dictionaries(st.sampled_from(TRANSLATE_KEYS), VALUES, max_size=6))
def test_translate_bodies(server, body):
    check(httpx.post(server.url + "/translate", content=json.dumps(body), timeout=60,
                     headers={"content-type": "application/json"}))


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=st.dictionaries(st.sampled_from(COMPLETION_KEYS), VALUES, max_size=8))
def test_completion_bodies(server, body):
    check(httpx.post(server.url + "/v1/completions", content=json.dumps(body), timeout=60,
                     headers={"content-type": "application/json"}))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(raw=st.binary(max_size=300), kind=st.sampled_from(["application/json", "application/x-www-form-urlencoded",
                                                         "multipart/form-data; boundary=x", "text/plain", ""]))
def test_raw_bytes(server, raw, kind):
    check(httpx.post(server.url + "/translate", content=raw, headers={"content-type": kind}, timeout=60))


def test_deep_nesting_is_a_400(server):
    r = httpx.post(server.url + "/translate", content="[" * 1900, headers={"content-type": "application/json"})
    assert r.status_code == 400 and "Invalid JSON" in r.json()["error"]
