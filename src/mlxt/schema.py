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
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise MlxtError(f"{where}: expected a number, got {type(value).__name__} {value!r}")
        return float(value)
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise MlxtError(f"{where}: expected an integer, got {type(value).__name__} {value!r}")
        return value
    if tp is bool:
        if not isinstance(value, bool):
            raise MlxtError(f"{where}: expected true or false, got {type(value).__name__} {value!r}")
        return value
    if tp is str:
        if not isinstance(value, str):
            raise MlxtError(f"{where}: expected a string, got {type(value).__name__} {value!r}")
        return value
    return value


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
    try:
        return cls(**kwargs)
    except TypeError as exc:  # a required field is missing
        raise MlxtError(f"{where or cls.__name__}: {exc}") from None


def to_dict(obj: Any) -> dict:
    """Plain-dict form of a dataclass (for JSON and TOML)."""
    return dataclasses.asdict(obj)
