"""Reliability catalogue, the command line under fuzzing (hypothesis).

Random values for every flag and every config key (``--set section.key=value``: NaN, infinities,
negative, zero, huge, strings, empty, lists, odd paths) of every command, on one tiny seq2seq and
one tiny lm run made per module. Each invocation must

- exit with status 0 or 2 (1 is an internal error, a negative status a signal),
- print no Python traceback,
- change no file outside the run it was given (a private copy when the command may write into
  it) or the output it named (hashed before and after).

Most invocations call `mlxt.cli.main` in-process (fast); a sample runs ``python -m mlxt`` in a
subprocess, where a segfault shows as a signal. The default profile stays under a minute; the
``slow`` profile runs 1,000 invocations (see docs/reliability.md).
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fault_helpers import assert_clean_success, cli_env, fingerprint, mlxt_argv, run_mlxt, write_lm_setup, \
    write_seq2seq_setup
from mlxt.cli import main
from mlxt.data.config import DataConfig
from mlxt.model import ModelConfig
from mlxt.train.config import TrainConfig

# Numbers and strings a user might type (or a script might pass) where a number is expected.
NUMBER_TEXTS = ["nan", "-nan", "inf", "-inf", "-1", "0", "1", "2", "3", "0.5", "-0.5", "1e30", "1e-30",
                "10000000000", "100000000000000000000", "9223372036854775808", "", "abc", "1_0", "0x10", " 2 "]
# TOML literals (and non-literals, taken as strings) for --set.
SET_VALUES = ["nan", "inf", "-inf", "-1", "0", "1", "2", "0.5", "1e30", "-1e30", "1e-30", "10000000000",
              "100000000000000000000", "true", "false", '""', '"abc"', "abc", "", "[]", "[1, 2]", "[0.5]",
              "{a = 1}", '"char"', '"bpe"', '"learned"', '"rope"', '"lm"', '"regression"', '"\\u0000"']
# max_minutes bounds every training below (0.05 min); a fuzzed value would lift that bound.
UNFUZZED_KEYS = {("train", "max_minutes")}
CONFIG_KEYS = sorted(
    (section, f.name)
    for section, cls in (("model", ModelConfig), ("data", DataConfig), ("train", TrainConfig))
    for f in dataclasses.fields(cls) if (section, f.name) not in UNFUZZED_KEYS
)
FIELD_TYPES = {
    (section, f.name): str(f.type)
    for section, cls in (("model", ModelConfig), ("data", DataConfig), ("train", TrainConfig))
    for f in dataclasses.fields(cls)
}
# Values of the declared type (half the draws): they pass the type check and probe the ranges.
TYPED_VALUES = {
    "int": ["-1", "0", "1", "2", "3", "7", "64", "4096", "10000000000", "4611686018427387904"],
    "float": ["-1.0", "0.0", "1e-30", "0.5", "0.999", "1.0", "2.0", "1e30", "nan", "inf"],
    "bool": ["true", "false"],
    "bool | None": ["true", "false"],
    "int | None": ["-1", "0", "1", "3", "100000", "10000000000"],
    "str": ['""', '"abc"', '"auto"', '"char"', '"bpe"', '"learned"', '"rope"', '"none"', '"lm"', '"seq2seq"',
            '"regression"', '"truncate"', '"reject"', '"cosine"', '"gelu"'],
    "list[int]": ["[]", "[1]", "[0]", "[8, 4]", "[8, 16, 64]", "[-1]"],
    "list[float]": ["[]", "[0.9, 0.98]", "[1.0, 0.5]", "[nan, 0.9]", "[0.5]"],
}
PATH_KINDS = ["missing", "directory", "file", "input", "run", "through_file", "loop", "empty", "new", "dash"]

SLOW = os.environ.get("MLXT_FUZZ_EXAMPLES")  # override of the example count, for experiments
LOG = os.environ.get("MLXT_FUZZ_LOG")  # append "status argv last-line" of every invocation here


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("cli-fuzz")
    env = cli_env(root / "cache")
    box = root / "box"  # everything a command could damage lives here and is hashed
    seq2seq = write_seq2seq_setup(box / "seq2seq", steps=3)
    lm = write_lm_setup(box / "lm", steps=3)
    for config, run in ((seq2seq, box / "seq2seq" / "run"), (lm, box / "lm" / "run")):
        assert_clean_success(run_mlxt("train", "--config", config, "--run-dir", run, "-q", cwd=root, env=env))
    (box / "dir").mkdir()
    (box / "file.txt").write_text("a file of the user's\n")
    (box / "input.txt").write_text("haus\nkatze hund\n\n")
    (box / "loop").symlink_to(box / "loop")
    shutil.copytree(box, root / "pristine", symlinks=True)
    return {"root": root, "box": box, "pristine": root / "pristine", "env": env, "seq2seq": box / "seq2seq" / "run", "lm": box / "lm" / "run",
            "seq2seq_config": seq2seq, "lm_config": lm, "scratch": root / "scratch"}


def _path(world: dict, kind: str, run: Path, name: str) -> str:
    box = world["box"]
    return {
        "missing": str(box / "missing" / name), "directory": str(box / "dir"), "file": str(box / "file.txt"),
        "input": str(box / "input.txt"), "run": str(run), "through_file": str(box / "file.txt" / name),
        "loop": str(box / "loop"), "empty": "", "new": str(world["scratch"] / name), "dash": "-",
    }[kind]


@st.composite
def invocations(draw, world: dict):
    """``(argv, run copy or None, outputs it may write)`` for one random command line."""
    command = draw(st.sampled_from(["train", "resume", "evaluate", "translate", "generate", "average", "plot",
                                    "data", "info", "convert"]))
    number = lambda: draw(st.sampled_from(NUMBER_TEXTS))  # noqa: E731
    maybe = lambda: draw(st.booleans())  # noqa: E731
    scratch = world["scratch"]
    kind = draw(st.sampled_from(["seq2seq", "lm"]))
    copy = scratch / "run" if command in ("resume", "evaluate", "average", "plot") else None
    run = copy or world[kind]
    outputs: list[str] = []
    argv: list[str]

    def output(flag: str, name: str) -> None:
        target = _path(world, draw(st.sampled_from(PATH_KINDS)), run, name)
        argv.extend([flag, target])
        outputs.append(target)

    def sets(section_keys=CONFIG_KEYS) -> None:
        for section, key in draw(st.lists(st.sampled_from(section_keys), max_size=2)):
            typed = TYPED_VALUES.get(FIELD_TYPES[section, key], SET_VALUES)
            value = draw(st.sampled_from(typed) if draw(st.booleans()) else st.sampled_from(SET_VALUES))
            argv.extend(["--set", f"{section}.{key}={value}"])

    if command == "train":
        config = world[f"{kind}_config"]
        target = scratch / "new-run"
        argv = ["train", "--config", str(config), "--run-dir", str(target), "-q", "--set", "train.max_minutes=0.05"]
        outputs.append(str(target))
        sets()
        if maybe():  # valid counts above 1 would start real worker processes
            argv += ["--workers", draw(st.sampled_from([t for t in NUMBER_TEXTS if t not in ("2", "3", " 2 ", "1_0")]))]
    elif command == "resume":
        argv = ["train", "--resume", str(copy), "-q", "--set", "train.max_minutes=0.05"]
        sets()
    elif command in ("evaluate", "translate"):
        argv = [command, str(run)]
        if command == "translate":
            if maybe():
                argv += ["--input", _path(world, draw(st.sampled_from(PATH_KINDS)), run, "in.txt")]
            else:
                argv += draw(st.lists(st.sampled_from(["haus", "", "katze hund", "\u2028x\x0c", "日本"]),
                                      min_size=1, max_size=3))
        else:
            argv += ["--split", draw(st.sampled_from(["test", "valid", "train", "dev", ""]))]
        for flag in draw(st.lists(st.sampled_from(["--beam", "--length-penalty", "--max-len-a", "--max-len-b",
                                                   "--max-len", "--batch-size", "--n-best", "--limit"]),
                                  max_size=3, unique=True)):
            if flag == "--limit" and command == "translate":
                continue
            argv += [flag, number()]
        if maybe():
            argv += ["--checkpoint", draw(st.sampled_from(["best", "last", "0", "3", "999", "-1", "step-3", "", "x"]))]
        if maybe():
            output("--output", "out.txt")
    elif command == "generate":
        argv = ["generate", str(run), "--prompt", draw(st.sampled_from(["", "haus", "\x00", "日本", "a" * 100]))]
        for flag in draw(st.lists(st.sampled_from(["--max-tokens", "--temperature", "--top-k", "--top-p", "--seed"]),
                                  max_size=3, unique=True)):
            argv += [flag, number()]
        argv += [] if "--max-tokens" in argv else ["--max-tokens", "5"]
    elif command == "average":
        argv = ["average", str(copy), "--last", number()]
        if maybe():
            output("-o", "avg")
    elif command == "plot":
        argv = ["plot", str(copy)]
        if maybe():
            output("-o", "curves.png")
    elif command == "data":
        corpus = draw(st.sampled_from(PATH_KINDS + ["corpus"] * 4))
        path = str(world[f"{kind}_config"].parent / ("corpus.tsv" if kind == "seq2seq" else "text.txt")) \
            if corpus == "corpus" else _path(world, corpus, run, "corpus")
        argv = ["data", "prepare", "--kind", kind, "--path", path] + (["--no-cache"] if maybe() else [])
        for flag in draw(st.lists(st.sampled_from(["--vocab-size", "--max-len", "--seed"]), max_size=2, unique=True)):
            argv += [flag, number()]
        if maybe():
            argv += ["--tokenizer", draw(st.sampled_from(["char", "bpe"]))]
        if maybe():
            output("--out", "tokenizers")
    elif command == "info":
        argv = ["info", "--no-bench", "--size", number()] + (["--json"] if maybe() else [])
    else:
        argv = ["convert", _path(world, draw(st.sampled_from(PATH_KINDS)), run, "hf")]
        output_kind = draw(st.sampled_from(["new", "directory", "file", "run"]))
        target = _path(world, output_kind, run, "converted")
        argv.append(target)
        outputs.append(target)
    return argv, (kind if copy else None), outputs


def _allowed(path: str, allowed: list[Path]) -> bool:
    p = Path(path)
    return any(p == a or a in p.parents for a in allowed)


def _prepare(world: dict, kind_of_copy: str | None) -> None:
    scratch = world["scratch"]
    if scratch.exists():
        shutil.rmtree(scratch)
    scratch.mkdir()
    if kind_of_copy:
        shutil.copytree(world[kind_of_copy], scratch / "run", symlinks=True)


def _check(world: dict, argv: list[str], outputs: list[str], before: dict, status: int, output: str) -> None:
    assert "Traceback" not in output, (argv, output)
    assert status in (0, 2), (argv, status, output)
    allowed = [Path(o) for o in outputs if o and o != "-"]
    after = fingerprint(world["box"])
    if after == before:
        return
    changed = {p for p in set(before) | set(after) if before.get(p) != after.get(p)}
    # a folder created for a named output (evaluate --output a/b/report.json) is part of that output
    created = {p for p in changed if p not in before and any(Path(p) in a.parents for a in allowed)}
    damaged = sorted(p for p in changed - created if not _allowed(p, allowed))
    shutil.rmtree(world["box"])  # the next invocation sees the box as it was
    shutil.copytree(world["pristine"], world["box"], symlinks=True)
    assert not damaged, (argv, damaged)


def _in_process(world: dict, argv: list[str]) -> tuple[int, str]:
    out, err = io.StringIO(), io.StringIO()
    cwd, stdin = os.getcwd(), sys.stdin
    os.chdir(world["scratch"])
    sys.stdin = io.StringIO("haus\n")
    saved = os.environ.get("MLXT_CACHE")
    os.environ["MLXT_CACHE"] = world["env"]["MLXT_CACHE"]
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            status = main(argv)
    finally:
        os.chdir(cwd)
        sys.stdin = stdin
        if saved is None:
            os.environ.pop("MLXT_CACHE", None)
        else:
            os.environ["MLXT_CACHE"] = saved
    return status, out.getvalue() + err.getvalue()


def _subprocess(world: dict, argv: list[str]) -> tuple[int, str]:
    argv = [a.replace("\x00", "") for a in argv]  # exec cannot pass a NUL (tested in-process)
    done = subprocess.run(mlxt_argv(*argv), cwd=world["scratch"], env=world["env"], input="haus\n",
                          capture_output=True, text=True, timeout=300)
    return done.returncode, done.stdout + done.stderr


def _fuzz(world: dict, examples: int, runner) -> None:
    @settings(max_examples=int(SLOW or examples), deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    @given(data=st.data())
    def check(data):
        argv, copy_kind, outputs = data.draw(invocations(world))
        _prepare(world, copy_kind)
        before = fingerprint(world["box"])
        status, output = runner(world, argv)
        if LOG:
            with open(LOG, "a", encoding="utf-8") as f:
                f.write(f"{status} {argv!r} {output.strip().splitlines()[-1:]!r}\n")
        _check(world, argv, outputs + ([str(world["scratch"])]), before, status, output)

    check()


def test_cli_fuzz_in_process(world):
    _fuzz(world, 60, _in_process)


def test_cli_fuzz_subprocess(world):
    _fuzz(world, 6, _subprocess)


@pytest.mark.slow
def test_cli_fuzz_long_in_process(world):
    _fuzz(world, 900, _in_process)


@pytest.mark.slow
def test_cli_fuzz_long_subprocess(world):
    _fuzz(world, 100, _subprocess)
