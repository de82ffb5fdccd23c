"""Build dataclasses from plain dicts (TOML, JSON) with one-line errors.

Every config in mlxt is a dataclass; `from_dict` checks that each key exists and each value has
the declared type, so a typo in a config file names the key and lists the valid ones instead of
failing later with a traceback.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from typing import Any, TypeVar

from mlxt.errors import MlxtError

T = TypeVar("T")


def _type_name(tp: Any) -> str:
    if tp is type(None):
        return "none"
    return getattr(tp, "__name__", str(tp))


def _check_value(value: Any, tp: Any, where: str) -> Any:
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        options = typing.get_args(tp)
        for option in options:
            try:
                return _check_value(value, option, where)
            except MlxtError:
                continue
        names = " or ".join(_type_name(o) for o in options)
        raise MlxtError(f"{where}: expected {names}, got {type(value).__name__} {value!r}")
    if origin in (list, tuple):
        (item_tp, *_) = typing.get_args(tp) or (Any,)
        if not isinstance(value, (list, tuple)):
            raise MlxtError(f"{where}: expected a list, got {type(value).__name__} {value!r}")
        return [_check_value(v, item_tp, f"{where}[{i}]") for i, v in enumerate(value)]
    if origin is dict or tp is dict:
        if not isinstance(value, dict):
            raise MlxtError(f"{where}: expected a table, got {type(value).__name__} {value!r}")
        return dict(value)
    if tp is Any:
        return value
    if tp is type(None):
        if value is not None:
            raise MlxtError(f"{where}: expected none, got {value!r}")
        return None
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise MlxtError(f"{where}: expected a table, got {type(value).__name__} {value!r}")
        return from_dict(tp, value, where)
    if tp is float:
        return check_number(value, where, float)
    if tp is int:
        return check_number(value, where, int)
    if tp is bool:
        if not isinstance(value, bool):
            raise MlxtError(f"{where}: expected true or false, got {type(value).__name__} {value!r}")
        return value
    if tp is str:
        if not isinstance(value, str):
            raise MlxtError(f"{where}: expected a string, got {type(value).__name__} {value!r}")
        return value
    return value


INT_LIMIT = 2**63  # integers are stored as int64 (TOML, numpy, MLX); anything wider is a mistake


# Ranges that hold for a key of this name in every config (numpy and MLX take only these seeds).
NAMED_RANGES = {"seed": (0, INT_LIMIT - 1)}


def _range_text(kind: type, low, high, low_open: bool) -> str:
    noun = "an integer" if kind is int else "a number"
    if low is not None and high is not None:
        return f"{noun} in {'(' if low_open else '['}{low}, {high}]"
    if low is not None:
        if kind is int and low == 1:
            return "a positive integer"
        return f"{noun} {'>' if low_open else '>='} {low}"
    if high is not None:
        return f"{noun} <= {high}"
    return "a finite number" if kind is float else noun


def check_number(value: Any, where: str, kind: type = int, low=None, high=None, low_open: bool = False):
    """``value`` as ``kind`` (int or float), or a one-line `MlxtError` naming ``where``.

    The one numeric validator: configs (`from_dict`) and command-line flags (`number_flag`) use it.
    A bool is not a number; a float must be finite (NaN and infinity mean nothing in any mlxt
    setting); an integer must fit in int64; ``low``/``high`` bound it (``low_open``: ``> low``).
    """
    expected = _range_text(kind, low, high, low_open)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or (kind is int and not isinstance(value, int)):
        noun = "an integer" if kind is int else "a number"
        raise MlxtError(f"{where}: expected {noun}, got {type(value).__name__} {value!r}")
    if kind is float:
        if isinstance(value, int) and abs(value) >= 2**1023:
            raise MlxtError(f"{where}: expected {expected}, got {value!r}")
        value = float(value)
        if value != value or value in (float("inf"), float("-inf")):
            raise MlxtError(f"{where}: expected {expected}, got {value!r}")
    elif not -INT_LIMIT <= value < INT_LIMIT:
        raise MlxtError(f"{where}: expected {expected} that fits in 64 bits, got {value!r}")
    if (low is not None and (value <= low if low_open else value < low)) or (high is not None and value > high):
        raise MlxtError(f"{where}: expected {expected}, got {value!r}")
    return value


def number_flag(flag: str, kind: type = int, low=None, high=None, low_open: bool = False, expected: str = ""):
    """An argparse ``type=`` for a numeric flag: parses the text and checks it with `check_number`,
    so a bad value is one line such as ``--beam 0: expected an integer in [1, 1024]``."""
    import argparse

    def parse(text: str):
        try:
            value = int(text.strip()) if kind is int else float(text)
        except (ValueError, OverflowError):
            value = text
        try:
            return check_number(value, f"{flag} {text}", kind, low, high, low_open)
        except MlxtError:
            wanted = expected or _range_text(kind, low, high, low_open)
            raise argparse.ArgumentTypeError(f"{flag} {text}: expected {wanted}") from None

    parse.__name__ = "integer" if kind is int else "number"
    return parse


def from_dict(cls: type[T], data: dict, where: str = "") -> T:
    """Instantiate dataclass ``cls`` from ``data``, checking keys and types.

    ``where`` prefixes error messages (for example ``"config.toml [model]"``).
    """
    if not isinstance(data, dict):
        raise MlxtError(f"{where or cls.__name__}: expected a table, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    kwargs = {}
    for key, value in data.items():
        name = f"{where}.{key}" if where else key
        if key not in fields:
            valid = ", ".join(sorted(fields))
            raise MlxtError(f"unknown key '{name}'; valid keys: {valid}")
        kwargs[key] = _check_value(value, hints[key], name)
        if key in NAMED_RANGES and isinstance(kwargs[key], int) and not isinstance(kwargs[key], bool):
            check_number(kwargs[key], name, int, *NAMED_RANGES[key])
    try:
        return cls(**kwargs)
    except TypeError as exc:  # a required field is missing
        raise MlxtError(f"{where or cls.__name__}: {exc}") from None


def to_dict(obj: Any) -> dict:
    """Plain-dict form of a dataclass (for JSON and TOML)."""
    return dataclasses.asdict(obj)
