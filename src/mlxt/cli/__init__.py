"""The `mlxt` command line: parses arguments and calls the library.

Each sub-command lives in its own module in this package and exposes ``register(subparsers)``,
which adds its parser and sets ``func`` to a function taking the parsed ``args`` and returning
an exit status. User mistakes raise `MlxtError` and end as one line on stderr with status 2.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from mlxt.errors import MlxtError

# Sub-command modules, in the order `mlxt --help` lists them.
COMMANDS = [
    "info",
    "data",
    "train",
    "evaluate",
    "translate",
    "generate",
    "average",
    "plot",
    "convert",
    "serve",
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mlxt", description="Transformers in MLX.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        try:
            module = importlib.import_module(f"mlxt.cli.{name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"mlxt.cli.{name}":
                continue  # command not part of this build
            raise
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except MlxtError as exc:
        print(f"mlxt: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("mlxt: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0
