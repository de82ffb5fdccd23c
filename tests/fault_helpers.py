"""Helpers of the reliability tests: run the ``mlxt`` CLI as a user would, check that a failure is
clean, and fingerprint files so a test can prove nothing was damaged.

A clean failure: non-zero exit status, exactly one line on stderr (``mlxt: error: ...``) that
names what is wrong, and no Python traceback anywhere in the output.
"""

from __future__ import annotations

import hashlib
import os
import random
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

# A tiny German -> English corpus from 8 word pairs: character tokenizer, trains in seconds.
_DE = "haus katze hund baum auto buch tisch stuhl".split()
_EN = "house cat dog tree car book table chair".split()

SEQ2SEQ_CONFIG = """\
[model]
kind = "seq2seq"
d_model = 16
num_heads = 2
num_encoder_layers = 1
num_decoder_layers = 1
d_ff = 32
dropout = 0.0
max_len = 64

[data]
path = "{corpus}"
tokenizer = "char"
max_len = 48
max_tokens = 512
valid_size = 20
test_size = 20

[train]
steps = {steps}
lr = 1e-3
warmup_steps = 2
eval_every = 3
eval_batches = 1
bleu_samples = 0
save_every = 3
keep_last = 0
log_every = 1
seed = 1
compile = false
"""

LM_CONFIG = """\
[model]
kind = "lm"
d_model = 16
num_heads = 2
num_decoder_layers = 1
d_ff = 32
dropout = 0.0
positional = "learned"
max_len = 32

[data]
path = "{corpus}"
tokenizer = "char"
batch_size = 4
block_size = 16

[train]
steps = {steps}
lr = 1e-3
warmup_steps = 2
eval_every = 3
eval_batches = 1
save_every = 3
keep_last = 0
log_every = 1
seed = 1
compile = false
"""


def tsv_lines(n: int = 300, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    lines = []
    for _ in range(n):
        idx = [rng.randrange(len(_DE)) for _ in range(rng.randint(1, 4))]
        lines.append(" ".join(_DE[i] for i in idx) + "\t" + " ".join(_EN[i] for i in idx))
    return lines


def write_seq2seq_setup(directory: Path, steps: int = 6, corpus_lines: list[str] | None = None) -> Path:
    """``directory/corpus.tsv`` and ``directory/tiny.toml``; returns the config path."""
    directory.mkdir(parents=True, exist_ok=True)
    corpus = directory / "corpus.tsv"
    corpus.write_text("\n".join(tsv_lines() if corpus_lines is None else corpus_lines) + "\n", encoding="utf-8")
    config = directory / "tiny.toml"
    config.write_text(SEQ2SEQ_CONFIG.format(corpus=corpus, steps=steps))
    return config


def write_lm_setup(directory: Path, steps: int = 6) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    corpus = directory / "text.txt"
    corpus.write_text("\n".join(line.replace("\t", " ") for line in tsv_lines(120, seed=1)) + "\n")
    config = directory / "lm.toml"
    config.write_text(LM_CONFIG.format(corpus=corpus, steps=steps))
    return config


def cli_env(cache: Path, pythonpath: Path | None = None, **extra: str) -> dict:
    """The environment of a CLI run: the checkout's sources first, a private data cache."""
    env = dict(os.environ)
    paths = [str(pythonpath)] if pythonpath else []
    env["PYTHONPATH"] = os.pathsep.join(paths + [str(REPO / "src"), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env["MLXT_CACHE"] = str(cache)
    env.pop("MLXT_DATA_MIRROR", None)
    env.update(extra)
    return env


def mlxt_argv(*args) -> list[str]:
    return [sys.executable, "-m", "mlxt", *map(str, args)]


def run_mlxt(*args, cwd: Path, env: dict | None = None, input: str | None = None,
             timeout: float = 120.0) -> subprocess.CompletedProcess:
    env = env if env is not None else cli_env(Path(cwd) / ".mlxt-cache")
    return subprocess.run(mlxt_argv(*args), cwd=cwd, env=env, input=input, capture_output=True, text=True,
                          timeout=timeout)


def assert_clean_failure(result: subprocess.CompletedProcess, *fragments: str, status: int = 2) -> str:
    """Exit ``status``, one ``mlxt: error:`` line on stderr containing every fragment, no traceback.
    Returns the message."""
    output = result.stdout + result.stderr
    assert "Traceback" not in output, output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode == status, (result.returncode, output)
    assert len(lines) == 1, f"expected one line on stderr, got {len(lines)}:\n{result.stderr}"
    message = lines[0]
    assert message.startswith("mlxt: error: "), message
    for fragment in fragments:
        assert fragment in message, f"{fragment!r} not in {message!r}"
    return message


def assert_clean_success(result: subprocess.CompletedProcess) -> None:
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "Traceback" not in output, output


def fingerprint(*paths: Path, skip: tuple[str, ...] = (".lock",)) -> dict[str, str]:
    """sha256 of every file (and the target of every symlink) under ``paths``; ``skip`` names
    files that are not user data (the lock file holds the pid of its last holder)."""
    out = {}
    for root in map(Path, paths):
        items = [root] if not root.is_dir() else sorted(root.rglob("*"))
        for p in items:
            if p.name in skip:
                continue
            key = str(p)
            if p.is_symlink():
                out[key] = "-> " + os.readlink(p)
            elif p.is_file():
                out[key] = hashlib.sha256(p.read_bytes()).hexdigest()
            elif p.is_dir():
                out[key] = "dir"
    return out


def copy_run(run: Path, destination: Path) -> Path:
    """A private copy of a trained run directory (symlinks kept as links)."""
    shutil.copytree(run, destination, symlinks=True)
    return destination
