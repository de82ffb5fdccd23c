"""The `mlxt` command line: parses arguments and calls the library.

Each sub-command lives in its own module in this package and exposes ``register(subparsers)``,
which adds its parser and sets ``func`` to a function taking the parsed ``args`` and returning
an exit status. User mistakes raise `MlxtError` and end as one line on stderr with status 2.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import warnings

from mlxt.errors import MlxtError, warning_line

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


class _Parser(argparse.ArgumentParser):
    """argparse with its mistakes as one ``mlxt: error:`` line (status 2), like every other."""

    def error(self, message: str):
        if message.startswith("argument ") and ": --" in message:  # a number_flag message names the flag
            message = message.split(": ", 1)[1]
        print(f"mlxt: error: {self.prog}: {message} (see {self.prog} --help)", file=sys.stderr)
        raise SystemExit(2)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="mlxt", description="Transformers in MLX.")
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


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """`warnings.showwarning` of the CLI: one ``mlxt: warning:`` line, no source path."""
    print(warning_line(message), file=file or sys.stderr)


def main(argv: list[str] | None = None) -> int:
    """Run one command; returns its exit status (0 done, 2 a user mistake, 130 interrupted, 1 a bug).

    The error boundary: `MlxtError` is the message the library chose. An `OSError` or a
    `UnicodeError` that escaped the library concerns a path or a file of the user's (permissions, a
    full disk, a symlink loop, a NUL in a path) and is also one line, naming the file. Anything else
    is a bug in mlxt: one line ``mlxt: internal error: ...`` with the exception, status 1, and the
    traceback only with ``MLXT_DEBUG=1``.
    """
    previous = warnings.showwarning
    warnings.showwarning = _show_warning
    try:
        return _main(argv)
    finally:
        warnings.showwarning = previous


def _main(argv: list[str] | None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help (0) or a bad flag (2, printed by _Parser.error)
        return exc.code if isinstance(exc.code, int) else 2
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except MlxtError as exc:
        return _error(str(exc))
    except KeyboardInterrupt:
        print("mlxt: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0
    except OSError as exc:
        where = exc.filename if exc.filename is not None else "a file"
        return _error(f"{where}: {exc.strerror or exc}")
    except UnicodeError as exc:
        return _error(f"not valid UTF-8/Unicode text ({exc})")
    except ValueError as exc:
        if "null byte" in str(exc) or "null character" in str(exc):
            return _error(f"a path contains a NUL character ({exc})")
        return _internal(exc)
    except MemoryError:
        return _error("out of memory; try smaller sizes ([model] d_model, [data] max_tokens or batch_size)")
    except RecursionError as exc:
        return _internal(exc)
    except Exception as exc:  # noqa: BLE001  (the boundary: no traceback for users)
        return _internal(exc)


def _error(message: str) -> int:
    print(f"mlxt: error: {' '.join(message.splitlines())}", file=sys.stderr)
    return 2


def _internal(exc: BaseException) -> int:
    if os.environ.get("MLXT_DEBUG"):
        raise exc
    reason = " ".join(str(exc).split())[:300] or "no message"
    print(f"mlxt: internal error: {type(exc).__name__}: {reason} (a bug in mlxt; please report it with the "
          "command line; MLXT_DEBUG=1 shows the traceback)", file=sys.stderr)
    return 1
