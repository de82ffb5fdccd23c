"""Reliability catalogue, decoding: odd but legal input succeeds (exit 0, one output line per input
line, at most a one-line warning), and bad decoding arguments or files fail with one line.

One tiny seq2seq run and one tiny lm run are trained per module. See docs/reliability.md.
"""

from __future__ import annotations

import subprocess

import pytest

from fault_helpers import (assert_clean_failure, assert_clean_success, cli_env, fingerprint, mlxt_argv, run_mlxt,
                           write_lm_setup, write_seq2seq_setup)

OUT_OF_VOCABULARY = "日本語 ☃ \U0001f642 Ωmega"  # none of these characters is in the tiny corpus


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("decoding")
    env = cli_env(root / "cache")
    runs = {"env": env, "root": root}
    for kind, setup in (("seq2seq", write_seq2seq_setup), ("lm", write_lm_setup)):
        config = setup(root / kind)
        assert_clean_success(run_mlxt("train", "--config", config, "--run-dir", root / kind / "run", "-q",
                                      cwd=root, env=env))
        runs[kind] = root / kind / "run"
    return runs


def _translate(trained, *args, input: str | None = None):
    run = trained["seq2seq"]
    before = fingerprint(run)
    result = run_mlxt("translate", run, *args, "--beam", "2", cwd=trained["root"], env=trained["env"], input=input)
    assert fingerprint(run) == before  # decoding never writes into the run
    return result


def _warnings(result) -> list[str]:
    return [line for line in result.stderr.splitlines() if line.strip()]


def test_empty_and_blank_input_lines(trained):
    result = _translate(trained, input="haus\n\n   \nkatze\n")
    assert_clean_success(result)
    lines = result.stdout.split("\n")[:-1]
    assert len(lines) == 4 and lines[1] == "" and lines[2] == ""  # one output line per input line
    assert _warnings(result) == []


def test_input_longer_than_the_model_maximum(trained):
    long = "haus katze " * 40  # 440 characters; the model takes 64 positions
    result = _translate(trained, input=f"hund\n{long}\nbaum\n")
    assert_clean_success(result)
    assert len(result.stdout.split("\n")[:-1]) == 3
    warnings = _warnings(result)
    assert len(warnings) == 1 and "input 2" in warnings[0] and "truncated" in warnings[0], result.stderr


def test_characters_outside_the_vocabulary(trained):
    result = _translate(trained, OUT_OF_VOCABULARY, "haus " + OUT_OF_VOCABULARY)
    assert_clean_success(result)
    assert len(result.stdout.split("\n")[:-1]) == 2
    assert "Traceback" not in result.stderr


def test_invalid_utf8_on_stdin_names_the_input(trained):
    """Bytes that are not UTF-8 on stdin: refused in one line that says which input."""
    run = trained["seq2seq"]
    result = subprocess.run(mlxt_argv("translate", run, "--beam", "1"), cwd=trained["root"], env=trained["env"],
                            input=b"haus\ncaf\xe9\n", capture_output=True)
    result = subprocess.CompletedProcess(result.args, result.returncode, result.stdout.decode(),
                                         result.stderr.decode(errors="replace"))
    message = assert_clean_failure(result)
    # strict stdin decoding names the line; surrogate-escaping stdin (C/POSIX locales) names the input
    assert "<stdin>:2: not UTF-8" in message or "input 2: " in message and "not valid Unicode" in message, message


def test_generate_with_out_of_vocabulary_and_overlong_prompt(trained):
    run = trained["lm"]
    before = fingerprint(run)
    prompt = OUT_OF_VOCABULARY + " haus" * 30  # longer than the lm's 32 positions
    result = run_mlxt("generate", run, "--prompt", prompt, "--max-tokens", "40", "--seed", "1",
                      cwd=trained["root"], env=trained["env"])
    assert_clean_success(result)
    assert result.stdout.startswith(prompt) and len(result.stdout) > len(prompt)
    assert fingerprint(run) == before


def test_generate_with_an_empty_prompt(trained):
    result = run_mlxt("generate", trained["lm"], "--prompt", "", "--max-tokens", "10", "--seed", "1",
                      cwd=trained["root"], env=trained["env"])
    assert_clean_success(result)


def test_input_file_missing(trained, tmp_path):
    result = _translate(trained, "--input", tmp_path / "absent.txt")
    assert_clean_failure(result, "absent.txt", "not found")


def test_input_file_not_utf8(trained, tmp_path):
    path = tmp_path / "latin1.txt"
    path.write_bytes(b"haus\ncaf\xe9\n")
    result = _translate(trained, "--input", path)
    assert_clean_failure(result, "latin1.txt", "UTF-8")


def test_output_into_a_missing_directory(trained, tmp_path):
    target = tmp_path / "no" / "such" / "dir" / "out.txt"
    result = _translate(trained, "haus", "--output", target)
    assert_clean_failure(result, str(target))


def test_output_file_of_the_user_is_replaced_only_on_request(trained, tmp_path):
    """``--output`` names the file to write: writing it is the request; the input file is never touched."""
    source = tmp_path / "in.txt"
    source.write_text("haus\nkatze\n")
    before = fingerprint(source)
    result = _translate(trained, "--input", source, "--output", tmp_path / "out.txt")
    assert_clean_success(result)
    assert fingerprint(source) == before
    assert len((tmp_path / "out.txt").read_text().split("\n")[:-1]) == 2


@pytest.mark.parametrize("args, fragments", [
    (("--beam", "0"), ("--beam", "positive")),
    (("--batch-size", "0"), ("--batch-size", "positive")),
    (("--beam", "2", "--n-best", "5"), ("--n-best", "beam size")),
])
def test_bad_search_arguments(trained, args, fragments):
    result = run_mlxt("translate", trained["seq2seq"], "haus", *args, cwd=trained["root"], env=trained["env"])
    assert_clean_failure(result, *fragments)


@pytest.mark.parametrize("args, fragments", [
    (("--top-p", "0"), ("--top-p", "(0, 1]")),
    (("--temperature", "-1"), ("--temperature", ">= 0")),
    (("--max-tokens", "-3"), ("--max-tokens", ">= 0")),
])
def test_bad_sampling_arguments(trained, args, fragments):
    result = run_mlxt("generate", trained["lm"], "--prompt", "a", *args, cwd=trained["root"], env=trained["env"])
    assert_clean_failure(result, *fragments)


def test_evaluate_an_unknown_split(trained):
    run = trained["seq2seq"]
    before = fingerprint(run)
    result = run_mlxt("evaluate", run, "--split", "dev", "--beam", "1", cwd=trained["root"], env=trained["env"])
    assert_clean_failure(result, "--split dev", "train, valid, test")
    assert fingerprint(run) == before
