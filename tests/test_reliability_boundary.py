"""Reliability catalogue, the command line's edges: the error boundary of `mlxt.cli.main`, numeric
flags, one-line warnings, and user input split into lines at ``\\n`` only. See docs/reliability.md.
"""

from __future__ import annotations

import subprocess
import warnings

import pytest

from fault_helpers import assert_clean_failure, assert_clean_success, cli_env, mlxt_argv, run_mlxt, write_seq2seq_setup
from mlxt.cli import main


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    root = tmp_path_factory.mktemp("boundary")
    config = write_seq2seq_setup(root, steps=3)
    assert_clean_success(run_mlxt("train", "--config", config, "--run-dir", root / "run", "-q", cwd=root,
                                  env=cli_env(root / "cache")))
    return root / "run"


def test_input_lines_are_split_at_newline_only(tmp_path, run):
    """U+2028, form feed, vertical tab, NEL and a lone CR stay inside their line (str.splitlines
    split them, so the translations no longer lined up with the input)."""
    source = tmp_path / "in.txt"
    source.write_bytes("haus\u2028katze\nhund\x0cbaum\x0b\r\nauto\x85buch\rtisch\n\n".encode())
    result = run_mlxt("translate", run, "--input", source, "--beam", "1", cwd=tmp_path)
    assert_clean_success(result)
    assert len(result.stdout.split("\n")[:-1]) == 4  # four '\n' in the input: four translations
    piped = subprocess.run(mlxt_argv("translate", run, "--beam", "1"), cwd=tmp_path, env=cli_env(tmp_path / "c"),
                           input=source.read_bytes(), capture_output=True)  # stdin splits the same way
    assert piped.returncode == 0, piped.stderr
    assert piped.stdout.decode() == result.stdout


def _command(monkeypatch, body):
    """Make ``mlxt info`` run ``body`` (an injected fault)."""
    import mlxt.cli.info

    monkeypatch.setattr(mlxt.cli.info, "run", lambda args: body())


def test_an_internal_error_is_one_line_with_status_1(monkeypatch, capsys):
    def bug():
        raise RuntimeError("something mlxt got wrong\nover two lines")

    _command(monkeypatch, bug)
    monkeypatch.delenv("MLXT_DEBUG", raising=False)
    assert main(["info"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith("mlxt: internal error: RuntimeError: something mlxt got wrong over two lines"), err
    assert "report" in err and "MLXT_DEBUG=1" in err
    monkeypatch.setenv("MLXT_DEBUG", "1")
    with pytest.raises(RuntimeError):
        main(["info"])


@pytest.mark.parametrize("error, fragments", [
    (PermissionError(13, "Permission denied", "/data/corpus.tsv"), ["/data/corpus.tsv: Permission denied"]),
    (OSError(28, "No space left on device", "/runs/x/eval.json"), ["/runs/x/eval.json: No space left on device"]),
    (UnicodeDecodeError("utf-8", b"\xff", 0, 1, "invalid start byte"), ["not valid UTF-8"]),
    (ValueError("embedded null byte"), ["NUL character"]),
])
def test_os_errors_on_user_files_are_one_line_with_status_2(monkeypatch, capsys, error, fragments):
    def fault():
        raise error

    _command(monkeypatch, fault)
    assert main(["info"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("mlxt: error: "), err
    for fragment in fragments:
        assert fragment in err


def test_python_warnings_are_one_line(monkeypatch, capsys):
    def noisy():
        warnings.warn("a library had something to say", UserWarning)
        return 0

    _command(monkeypatch, noisy)
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        assert main(["info"]) == 0
    err = capsys.readouterr().err
    assert err == "mlxt: warning: a library had something to say\n", err


@pytest.mark.parametrize("argv, fragment", [
    (["translate", "RUN", "x", "--beam", "nan"], "--beam nan: expected a positive integer"),
    (["translate", "RUN", "x", "--length-penalty", "inf"], "--length-penalty inf: expected a number in [-10, 10]"),
    (["evaluate", "RUN", "--length-penalty", "1e30"], "--length-penalty 1e30: expected a number in [-10, 10]"),
    (["translate", "RUN", "x", "--max-len-a", "-1"], "--max-len-a -1: expected a number in [0.0, 1000000.0]"),
    (["translate", "RUN", "x", "--batch-size", "10000000000"], "--batch-size 10000000000: expected a positive"),
    (["evaluate", "RUN", "--limit", "0"], "--limit 0: expected a positive integer"),
    (["generate", "RUN", "--temperature", "nan"], "--temperature nan: expected a number >= 0"),
    (["generate", "RUN", "--top-k", "-1"], "--top-k -1: expected an integer >= 0"),
    (["generate", "RUN", "--top-p", "inf"], "--top-p inf: expected a number in (0, 1]"),
    (["generate", "RUN", "--seed", "-1"], "--seed -1: expected an integer in [0, "),
    (["generate", "RUN", "--max-tokens", "1e3"], "--max-tokens 1e3: expected an integer >= 0"),
    (["average", "RUN", "--last", "0"], "--last 0: expected an integer in [1, "),
    (["train", "-c", "x.toml", "--workers", "1e9"], "--workers 1e9: expected a positive number of processes"),
    (["info", "--size", "100000"], "--size 100000: expected a positive integer (at most 8192)"),
    (["data", "prepare", "--vocab-size", "-5"], "--vocab-size -5: expected an integer in [1, "),
    (["translate"], "the following arguments are required: RUN_DIR"),
])
def test_bad_flags_are_one_line(capsys, argv, fragment):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("mlxt: error: "), err
    assert fragment in err, err


def test_seed_settings_must_be_non_negative(tmp_path):
    config = write_seq2seq_setup(tmp_path, steps=1)
    for key in ("train.seed", "data.seed"):
        result = run_mlxt("train", "--config", config, "--run-dir", tmp_path / "run", "-q", "--set", f"{key}=-1",
                          cwd=tmp_path)
        assert_clean_failure(result, key.split(".")[1], "-1", "expected an integer in [0, ")
