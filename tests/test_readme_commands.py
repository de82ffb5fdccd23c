"""The README's commands, checked so that they keep working as written.

Every ``mlxt`` command in the README's shell blocks must parse with the real argument parser,
name config files that exist and load (with its ``--set`` overrides), read no data from outside
the repository, and average no more checkpoints than its config keeps. The Workflow block is
then run for real, in order, in a scratch directory: each ``mlxt train`` line as written plus
overrides that make its model and data tiny (a few seconds), every other line verbatim, except
the one that needs the network (``mlxt data prepare tinyshakespeare``), which is only parsed.
"""

from __future__ import annotations

import re
import shlex
import subprocess
from pathlib import Path

import pytest

from mlxt.cli import build_parser, main
from mlxt.train.config import load_config

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"
NEEDS_NETWORK = {("data", "prepare")}
RESULTS_NOTE = 'add `--set data.source=""` to download each corpus once'

TINY_MODEL = ["model.d_model=16", "model.num_heads=2", "model.d_ff=32", "model.max_len=64"]
TINY_TRAIN = ["train.save_every=2", "train.eval_every=2", "train.log_every=1", "train.compile=false",
              "train.bleu_samples=2", "train.max_minutes=0", "train.schedule_unit=steps",
              "train.warmup_fraction=0", "train.warmup_steps=1"]
WORDS = "ich du wir haben sehen gehen das haus der hund ein buch jetzt hier".split()


def shell_blocks(text: str) -> dict[str, list[str]]:
    """``{heading: [command line, ...]}`` for the ```bash / ```sh blocks under each ## heading."""
    blocks: dict[str, list[str]] = {}
    heading = ""
    for match in re.finditer(r"^## ([^\n]+)$|^```(?:bash|sh)\n(.*?)^```", text, re.M | re.S):
        if match.group(1):
            heading = match.group(1).strip()
        else:
            lines = [l.strip() for l in match.group(2).splitlines()]
            blocks.setdefault(heading, []).extend(l for l in lines if l and not l.startswith("#"))
    return blocks


def mlxt_argv(line: str) -> tuple[list[str], str | None] | None:
    """The argv of an ``mlxt ...`` command line (also ``VAR=x mlxt``, ``.venv/bin/python -m mlxt``,
    ``mlx.launch ... -- python -m mlxt``) and its ``> FILE`` redirection; None for other lines."""
    words = shlex.split(line, comments=True)
    redirect = None
    if ">" in words:
        at = words.index(">")
        words, redirect = words[:at], words[at + 1]
    for i, w in enumerate(words):
        if w in ("mlxt", ".venv/bin/mlxt"):
            return words[i + 1:], redirect
        if w == "-m" and i + 1 < len(words) and words[i + 1] == "mlxt":
            return words[i + 2:], redirect
    return None


def option(argv: list[str], name: str) -> list[str]:
    return [argv[i + 1] for i, w in enumerate(argv[:-1]) if w == name]


BLOCKS = shell_blocks(README.read_text(encoding="utf-8"))
WORKFLOW = next(lines for heading, lines in BLOCKS.items() if heading.startswith("Workflow"))
COMMANDS = [(heading, line) for heading, lines in BLOCKS.items() for line in lines if mlxt_argv(line)]


def test_the_readme_has_the_blocks_we_check():
    assert len(WORKFLOW) >= 12 and len(COMMANDS) >= 25
    assert shlex.split(WORKFLOW[0], comments=True) == ["source", ".venv/bin/activate"]  # `mlxt` is on PATH there
    makefile = (REPO / "Makefile").read_text()
    assert re.search(r"^VENV\s*\?=\s*\.venv$", makefile, re.M) and re.search(r"^demo: \$\(BASE\)", makefile, re.M)


@pytest.mark.parametrize("heading,line", COMMANDS, ids=[line[:60] for _, line in COMMANDS])
def test_command_parses_and_its_files_exist(heading, line):
    argv, _ = mlxt_argv(line)
    try:
        args = build_parser().parse_args(argv)
    except SystemExit:
        pytest.fail(f"README ({heading}): `{line}` does not parse")
    assert getattr(args, "func", None), line
    for config in option(argv, "--config"):
        assert (REPO / config).is_file(), f"README ({heading}): {config} does not exist"
        cfg = load_config(REPO / config, option(argv, "--set"))  # --set keys and values are valid
        source = getattr(cfg.data, "source", "")
        outside = any(p.startswith("..") for p in (source, *[s.split("=", 1)[1] for s in option(argv, "--set")]))
        # only the Results may use the local copies, and the README says how to do without them there
        assert not outside or (heading == "Results" and RESULTS_NOTE in README.read_text(encoding="utf-8")), (
            f"README ({heading}): `{line}` reads data from outside the repository, which a fresh clone lacks")
    if argv[0] == "average":  # `--last N` no more than the run's config keeps
        name = Path(argv[1]).name
        keep = load_config(REPO / "configs" / f"{name}.toml").train.keep_last
        assert keep == 0 or int(option(argv, "--last")[0]) <= keep, f"README: `{line}`: {name} keeps {keep}"


def tiny_overrides(config: str, data_dir: Path) -> list[str]:
    kind = load_config(REPO / config).kind
    if kind == "seq2seq":
        data = [f"data.path={data_dir / 'pairs.tsv'}", "data.format=tsv", "data.tokenizer=char",
                "data.valid_size=6", "data.test_size=6", "data.max_len=32", "data.max_tokens=512",
                "data.overlong=truncate", "model.num_encoder_layers=1", "model.num_decoder_layers=1"]
    else:
        data = [f"data.path={data_dir / 'text.txt'}", "data.format=text", "data.batch_size=4",
                "data.block_size=32", "model.num_decoder_layers=1"]
    keep = load_config(REPO / config).train.keep_last
    steps = 2 * (keep + 1)  # enough checkpoints for `mlxt average --last keep_last`
    sets = ['data.corpus=""', *data, *TINY_MODEL, *TINY_TRAIN, f"train.steps={steps}"]
    return [w for s in sets for w in ("--set", s)]


def test_workflow_block_runs_as_written(tmp_path, monkeypatch, capsys):
    import random

    rnd = random.Random(0)
    lines = [" ".join(rnd.choice(WORDS) for _ in range(rnd.randint(1, 5))) for _ in range(120)]
    (tmp_path / "pairs.tsv").write_text("".join(f"{s}.\t{s.upper()}.\n" for s in lines), encoding="utf-8")
    (tmp_path / "text.txt").write_text("ROMEO:\n" + "".join(f"{s}.\n" for s in lines), encoding="utf-8")
    work = tmp_path / "clone"
    work.mkdir()
    (work / "configs").symlink_to(REPO / "configs")
    monkeypatch.chdir(work)
    ran = []
    for line in WORKFLOW:
        parsed = mlxt_argv(line)
        if parsed is None:
            if line.startswith("printf "):
                subprocess.run(["bash", "-c", line], cwd=work, check=True)
            continue
        argv, redirect = parsed
        if tuple(argv[:2]) in NEEDS_NETWORK:
            continue
        if argv[0] == "train" and "--config" in argv:
            argv = argv + tiny_overrides(option(argv, "--config")[0], tmp_path) + ["-q"]
        if argv[0] == "train" and "--resume" in argv:
            argv = argv + ["--set", "train.steps=12", "-q"]  # a few more tiny steps, whatever the README asks
        status = main(argv)
        out = capsys.readouterr()
        assert status == 0, f"README Workflow: `{line}` exited {status}: {out.err[-500:]}"
        if redirect:
            (work / redirect).write_text(out.out, encoding="utf-8")
        ran.append(argv[0])
    assert {"train", "evaluate", "translate", "generate", "average", "plot"} <= set(ran)
    assert len((work / "file.en").read_text(encoding="utf-8").splitlines()) == 2  # one line per input line
    assert (work / "attention.png").is_file() and (work / "runs/translate-tatoeba-de-en/curves.png").is_file()
    for line in WORKFLOW:
        argv, _ = mlxt_argv(line) or ([""], None)
        if argv[0] == "average":
            assert (work / argv[1] / "checkpoints" / f"avg-last-{option(argv, '--last')[0]}").is_dir()
