"""A converted MarianMT run served as it is: the language pair read from its ``opus-mt-SRC-TGT``
name, the search options of its ``[decode]`` section, the same translations as `mlxt translate`."""

from __future__ import annotations

import httpx
import pytest
from serve_helpers import LiveServer

pytest.importorskip("transformers")
pytest.importorskip("sentencepiece")

from marian_tiny import save_tiny_marian  # noqa: E402

from mlxt.cli import main  # noqa: E402
from mlxt.convert import convert  # noqa: E402

SENTENCES = ["Hello world.", "Where is Tom?"]


def test_converted_marian_run(tmp_path, capsys):
    hf_dir = save_tiny_marian(tmp_path / "opus-mt-en-de")
    convert(hf_dir, tmp_path / "run")
    capsys.readouterr()
    assert main(["translate", str(tmp_path / "run"), *SENTENCES]) == 0
    expected = capsys.readouterr().out.splitlines()
    with LiveServer([tmp_path / "run"]) as server:
        assert httpx.get(server.url + "/languages").json() == [
            {"code": "de", "name": "German", "targets": []}, {"code": "en", "name": "English", "targets": ["de"]}]
        r = httpx.post(server.url + "/translate", json={"q": SENTENCES, "source": "en", "target": "de"}, timeout=120)
        assert r.status_code == 200 and r.json()["translatedText"] == expected
