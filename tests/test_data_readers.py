"""Readers: plain text, aligned files (.gz), TSV, Tatoeba zip; every bad input is a one-line
MlxtError naming the file (and line)."""

import gzip
import zipfile

import pytest

from mlxt.data import readers
from mlxt.errors import MlxtError


def _one_line(exc: pytest.ExceptionInfo) -> str:
    message = str(exc.value)
    assert "\n" not in message
    return message


def test_text_normalises_line_endings_and_bom(tmp_path):
    p = tmp_path / "a.txt"
    p.write_bytes("\ufeffone\r\ntwo\rthree\nvier ü\n".encode())
    assert readers.read_text(p) == "one\ntwo\nthree\nvier ü\n"
    assert readers.read_lines(p) == ["one", "two", "three", "vier ü"]


def test_aligned_plain_and_gz(tmp_path):
    src, tgt = tmp_path / "train.en", tmp_path / "train.de.gz"
    src.write_text("Hello .\r\nGood day\n", encoding="utf-8")
    with gzip.open(tgt, "wb") as f:
        f.write("Hallo .\nGuten Tag\n".encode())
    assert readers.read_aligned(src, tgt) == [("Hello .", "Hallo ."), ("Good day", "Guten Tag")]


def test_tsv_ignores_extra_columns_and_blank_lines(tmp_path):
    p = tmp_path / "pairs.tsv"
    p.write_text("a\tb\tCC-BY x\n\nc\td\n", encoding="utf-8")
    assert readers.read_tsv(p) == [("a", "b"), ("c", "d")]


def test_tatoeba_zip_member(tmp_path):
    p = tmp_path / "deu-eng.zip"
    with zipfile.ZipFile(p, "w") as z:
        z.writestr("_about.txt", "about")
        z.writestr("deu.txt", "Hi.\tHallo!\tCC-BY 2.0 (France) Attribution: tatoeba.org\r\nRun!\tLauf!\tx\n")
    assert readers.read_tatoeba_zip(p) == [("Hi.", "Hallo!"), ("Run!", "Lauf!")]


def test_missing_file(tmp_path):
    with pytest.raises(MlxtError) as exc:
        readers.read_text(tmp_path / "nope.txt")
    assert "nope.txt: file not found" in _one_line(exc)


def test_directory_instead_of_file(tmp_path):
    with pytest.raises(MlxtError) as exc:
        readers.read_lines(tmp_path)
    assert "is a directory" in _one_line(exc)


@pytest.mark.parametrize("content", [b"", b"\n\n  \n"])
def test_empty_file(tmp_path, content):
    p = tmp_path / "empty.txt"
    p.write_bytes(content)
    with pytest.raises(MlxtError) as exc:
        readers.read_text(p)
    assert f"{p}: file is empty" in _one_line(exc)


def test_invalid_utf8_names_the_line(tmp_path):
    p = tmp_path / "bad.txt"
    p.write_bytes(b"fine\nalso fine\nbroken \xff here\n")
    with pytest.raises(MlxtError) as exc:
        readers.read_text(p)
    assert f"{p}:3: invalid UTF-8" in _one_line(exc)


def test_invalid_utf8_inside_zip(tmp_path):
    p = tmp_path / "x.zip"
    with zipfile.ZipFile(p, "w") as z:
        z.writestr("fra.txt", b"Go.\tVa !\n\xc3(\tbad\n")
    with pytest.raises(MlxtError) as exc:
        readers.read_tatoeba_zip(p)
    assert "fra.txt:2: invalid UTF-8" in _one_line(exc)


def test_aligned_different_lengths(tmp_path):
    a, b = tmp_path / "a.en", tmp_path / "a.de"
    a.write_text("1\n2\n3\n", encoding="utf-8")
    b.write_text("1\n2\n", encoding="utf-8")
    with pytest.raises(MlxtError) as exc:
        readers.read_aligned(a, b)
    message = _one_line(exc)
    assert f"{b}:3" in message and "3 lines" in message and "2)" in message


def test_tsv_line_without_tab(tmp_path):
    p = tmp_path / "p.tsv"
    p.write_text("a\tb\nno tab here\n", encoding="utf-8")
    with pytest.raises(MlxtError) as exc:
        readers.read_tsv(p)
    assert f"{p}:2: expected source<TAB>target" in _one_line(exc)


def test_not_a_zip_and_not_a_gzip(tmp_path):
    z = tmp_path / "x.zip"
    z.write_bytes(b"plain")
    with pytest.raises(MlxtError, match="not a zip archive"):
        readers.read_tatoeba_zip(z)
    g = tmp_path / "x.gz"
    g.write_bytes(b"plain")
    with pytest.raises(MlxtError, match="not a readable gzip"):
        readers.read_text(g)
