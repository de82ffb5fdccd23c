"""Reading request bodies: size-limited, UTF-8 checked, JSON or form-encoded (as LibreTranslate
takes them), with a clear `HTTPError` for every malformed body."""

from __future__ import annotations

import json
from urllib.parse import parse_qsl


class HTTPError(Exception):
    """An answer other than 200: ``status`` and a one-line ``message`` for the client."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status, self.message = status, message


async def read_body(request, max_body: int) -> bytes:
    """The raw body, refused with 413 past ``max_body`` bytes (before reading, when the
    Content-Length says so)."""
    length = request.headers.get("content-length")
    if length is not None:
        if not length.isdigit():
            raise HTTPError(400, f"Invalid request: Content-Length {length!r} is not a number")
        if int(length) > max_body:
            raise HTTPError(413, f"Invalid request: body of {length} bytes is over the limit of {max_body}")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > max_body:
            raise HTTPError(413, f"Invalid request: body over the limit of {max_body} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def decode_utf8(body: bytes) -> str:
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise HTTPError(400, f"Invalid request: the body is not UTF-8 ({exc.reason} at byte {exc.start})") from None


async def read_fields(request, max_body: int) -> tuple[dict, bool]:
    """``(fields, is_json)``: a JSON object, or the fields of a form (a field given several
    times, ``q=a&q=b``, becomes a list)."""
    body = await read_body(request, max_body)
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind == "multipart/form-data":
        request._body = body  # let Starlette parse the form from the bytes already read
        try:
            form = await request.form()
        except Exception as exc:  # noqa: BLE001 -- python-multipart's errors vary by version
            raise HTTPError(400, f"Invalid request: malformed multipart form ({exc})") from None
        fields: dict = {}
        for key, value in form.multi_items():
            if not isinstance(value, str):
                raise HTTPError(400, f"Invalid request: field {key!r} is a file; send text")
            _add(fields, key, value)
        return fields, False
    text = decode_utf8(body)
    if kind == "application/json" or (not kind and text.lstrip().startswith("{")):
        if not text.strip():
            raise HTTPError(400, "Invalid request: empty JSON body")
        try:
            value = json.loads(text)
        except json.JSONDecodeError as exc:
            raise HTTPError(400, f"Invalid JSON format: {exc.msg} at line {exc.lineno} column {exc.colno}") from None
        except RecursionError:
            raise HTTPError(400, "Invalid JSON format: nested too deeply") from None
        if not isinstance(value, dict):
            raise HTTPError(400, f"Invalid JSON format: expected an object, got {type(value).__name__}")
        return value, True
    fields = {}
    for key, value in parse_qsl(text, keep_blank_values=True):
        _add(fields, key, value)
    return fields, False


def _add(fields: dict, key: str, value: str) -> None:
    if key.endswith("[]"):
        key = key[:-2]
        fields.setdefault(key, [])
    if key in fields:
        old = fields[key]
        fields[key] = (old if isinstance(old, list) else [old]) + [value]
    else:
        fields[key] = value


def text_field(fields: dict, name: str, default=None, choices=None):
    value = fields.get(name, default)
    if value is None:
        return default
    if not isinstance(value, str):
        raise HTTPError(400, f"Invalid request: {name} must be a string, got {_type(value)}")
    if choices is not None and value not in choices:
        raise HTTPError(400, f"Invalid request: {name} = {value!r}, expected one of {', '.join(choices)}")
    return value


def int_field(fields: dict, name: str, default: int | None, low: int | None = None, high: int | None = None):
    return _number(fields, name, default, int, low, high)


def float_field(fields: dict, name: str, default: float | None, low: float | None = None, high: float | None = None):
    return _number(fields, name, default, float, low, high)


def _number(fields, name, default, kind, low, high):
    value = fields.get(name, default)
    if value is None:
        return default
    if isinstance(value, str):  # form fields are text
        try:
            value = kind(value)
        except ValueError:
            raise HTTPError(400, f"Invalid request: {name} = {value!r}, expected {_kind(kind)}") from None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or (kind is int and not isinstance(value, int)):
        if not (kind is int and isinstance(value, float) and value.is_integer()):
            raise HTTPError(400, f"Invalid request: {name} must be {_kind(kind)}, got {_type(value)}")
        value = int(value)
    if value != value or (low is not None and value < low) or (high is not None and value > high):
        where = f"{low if low is not None else '-inf'}..{high if high is not None else 'inf'}"
        raise HTTPError(400, f"Invalid request: {name} = {value!r}, expected a number in {where}")
    return kind(value)


def _kind(kind) -> str:
    return "an integer" if kind is int else "a number"


def _type(value) -> str:
    return {str: "a string", list: "a list", dict: "an object", bool: "a boolean", type(None): "null"}.get(
        type(value), "a number" if isinstance(value, (int, float)) else type(value).__name__)
