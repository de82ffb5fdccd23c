"""Read and write the small TOML files mlxt uses (a run's ``config.toml``).

Reading uses `tomllib` (``tomli`` on Python 3.10). Writing needs only what a config holds: one level
of tables whose values are strings, numbers, booleans and lists of those. ``None`` values are left
out (TOML has no null; every ``None`` in an mlxt config is the field's default).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

from mlxt.errors import MlxtError


def read_toml(path: str | Path) -> dict:
    path = Path(path)
    try:
        with open(path, "rb") as f:
            return tomllib.load(f)
    except FileNotFoundError:
        raise MlxtError(f"{path}: config file not found") from None
    except tomllib.TOMLDecodeError as exc:
        raise MlxtError(f"{path}: invalid TOML ({exc})") from None


def toml_value(value) -> str:
    """One TOML literal for a Python value."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)  # a JSON string is a TOML basic string
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(toml_value(v) for v in value if v is not None) + "]"
    raise TypeError(f"cannot write {type(value).__name__} {value!r} as TOML")


def dumps_toml(data: dict) -> str:
    """TOML text for ``{section: {key: value}}`` (plus top-level scalars, written first)."""
    lines = []
    tables = {k: v for k, v in data.items() if isinstance(v, dict)}
    for key, value in data.items():
        if not isinstance(value, dict) and value is not None:
            lines.append(f"{key} = {toml_value(value)}")
    for name, table in tables.items():
        if lines:
            lines.append("")
        lines.append(f"[{name}]")
        for key, value in table.items():
            if value is None:
                continue
            if isinstance(value, dict):
                raise TypeError(f"nested table {name}.{key} is not supported")
            lines.append(f"{key} = {toml_value(value)}")
    return "\n".join(lines) + "\n"


def write_toml(path: str | Path, data: dict) -> None:
    Path(path).write_text(dumps_toml(data))
