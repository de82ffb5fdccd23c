"""LibreTranslate's API: ``POST /translate``, ``GET /languages``, ``POST /detect``.

``/translate`` takes ``q`` (a text or a list of texts), ``source``, ``target``, ``format``
(``text`` or ``html``), ``alternatives`` (how many other translations to return besides the
best: the next hypotheses of the beam's n-best list, the beam widened to hold them) and
``api_key``, as JSON or a form, and answers ``{"translatedText": ...}`` (a list for a list).
A text of several lines is translated line by line. ``source: "auto"`` takes the only served
source language that translates into ``target`` (and reports it as ``detectedLanguage``), or
answers 400 when there are several: mlxt does not guess languages.
"""

from __future__ import annotations

import asyncio

from starlette.responses import JSONResponse

from mlxt.data.readers import split_lines
from mlxt.decode.translate import encode_sources
from mlxt.errors import MlxtError
from mlxt.serve.batcher import Closed, QueueFull
from mlxt.serve.bodies import HTTPError, int_field, read_fields, text_field
from mlxt.serve.html_text import rebuild, text_runs
from mlxt.serve.languages import language_list, language_name
from mlxt.serve.state import admit


async def languages(request) -> JSONResponse:
    return JSONResponse(language_list(request.app.state.serve.pairs))


async def detect(request) -> JSONResponse:
    """No language identification: the served source languages, equally likely."""
    state = request.app.state.serve
    fields, _ = await read_fields(request, state.limits.max_body)
    admit(state, request, fields)
    texts(fields, state.limits, True)
    sources = sorted({s for s, _ in state.pairs})
    return JSONResponse([{"confidence": round(100.0 / len(sources), 2), "language": s} for s in sources])


def texts(fields: dict, limits, is_json: bool) -> tuple[list[str], bool]:
    """``(texts, is_list)`` from ``q``, after the count and size limits."""
    q = fields.get("q")
    if q is None or q == "" or q == []:
        raise HTTPError(400, "Invalid request: missing q parameter")
    is_list = isinstance(q, list)
    items = q if is_list else [q]
    for i, item in enumerate(items):
        if not isinstance(item, str):
            where = f"q[{i}]" if is_list else "q"
            raise HTTPError(400, f"Invalid request: {where} must be a string, got {type(item).__name__}")
    if not is_json:  # as LibreTranslate: count characters with UNIX line ends
        items = ["\n".join(split_lines(item)) for item in items]  # CRLF only: U+2028 stays text
    if len(items) > limits.max_items:
        raise HTTPError(400, f"Invalid request: {len(items)} texts, more than the limit of {limits.max_items}")
    for i, item in enumerate(items):
        if len(item) > limits.max_item_chars:
            where = f"q[{i}]" if is_list else "q"
            raise HTTPError(400, f"Invalid request: {where} has {len(item)} characters, over the limit of "
                                 f"{limits.max_item_chars}")
    total = sum(len(item) for item in items)
    if total > limits.max_chars:
        raise HTTPError(400, f"Invalid request: request ({total}) exceeds text limit ({limits.max_chars})")
    return items, is_list


def pick_translator(state, source: str, target: str):
    """``(served model, detected source or None)``."""
    detected = None
    if source == "auto":
        sources = sorted(s for s, t in state.pairs if t == target)
        if not sources:
            raise HTTPError(400, f"{target} is not supported as a target language")
        if len(sources) > 1:
            raise HTTPError(400, f"source auto: several languages translate into {target} ({', '.join(sources)}) "
                                 "and this server does not detect languages; give source")
        source = detected = sources[0]
    if (source, target) in state.pairs:
        return state.pairs[(source, target)], detected
    if not any(s == source for s, _ in state.pairs):
        raise HTTPError(400, f"{source} is not supported")
    raise HTTPError(400, f"{language_name(target)} ({target}) is not available as a target language from "
                         f"{language_name(source)} ({source})")


def segments(text: str, fmt: str) -> list[str]:
    return text_runs(text) if fmt == "html" else text.split("\n")


def assemble(text: str, fmt: str, pieces: list[str]) -> str:
    return rebuild(text, pieces) if fmt == "html" else "\n".join(pieces)


async def translate(request) -> JSONResponse:
    state = request.app.state.serve
    state.translating += 1
    try:
        return await answer(state, request)
    finally:
        state.translating -= 1


async def answer(state, request) -> JSONResponse:
    limits = state.limits
    fields, is_json = await read_fields(request, limits.max_body)
    admit(state, request, fields)
    items, is_list = texts(fields, limits, is_json)
    source = text_field(fields, "source")
    target = text_field(fields, "target")
    for name, value in (("source", source), ("target", target)):
        if not value:
            raise HTTPError(400, f"Invalid request: missing {name} parameter")
    fmt = text_field(fields, "format", "text") or "text"
    if fmt not in ("text", "html"):
        raise HTTPError(400, f"{fmt} format is not supported (expected text or html)")
    alternatives = int_field(fields, "alternatives", 0, 0, limits.max_alternatives)
    served, detected = pick_translator(state, source, target)

    cut = [segments(item, fmt) for item in items]
    flat = [piece for pieces in cut for piece in pieces]
    cfg = served.model.config
    try:
        sources = encode_sources(flat, served.tokenizers["src"], cfg.eos_id, cfg.max_len, served.lowercase)
    except MlxtError as exc:
        raise HTTPError(400, f"Invalid request: {exc}") from None
    n_best = 1 + alternatives
    hyps = await run_job(state, lambda: state.batcher.submit_translate(
        served, sources, max(served.beam_size, n_best), n_best, limits.timeout))

    decode = served.tokenizers["tgt"].decode
    best, others, at = [], [], 0
    for item, pieces in zip(items, cut):
        found = hyps[at : at + len(pieces)]
        at += len(pieces)
        best.append(assemble(item, fmt, [decode(h[0].tokens) if h else "" for h in found]))
        alts = []
        for j in range(1, n_best):
            if all(len(h) > j for h in found if h) and any(len(h) > j for h in found):
                alts.append(assemble(item, fmt, [decode(h[j].tokens) if h else "" for h in found]))
        others.append(alts)
    body: dict = {"translatedText": best if is_list else best[0]}
    if alternatives:
        body["alternatives"] = others if is_list else others[0]
    if detected:
        guess = {"confidence": 100.0, "language": detected}
        body["detectedLanguage"] = [guess] * len(items) if is_list else guess
    return JSONResponse(body)


async def run_job(state, submit):
    """Queue a job (503 when full or shutting down) and wait for it (504 past the timeout)."""
    try:
        future = submit()
    except QueueFull as exc:
        raise HTTPError(503, str(exc)) from None
    except Closed as exc:
        raise HTTPError(503, str(exc)) from None
    try:
        return await asyncio.wait_for(asyncio.wrap_future(future), state.limits.timeout)
    except (asyncio.TimeoutError, TimeoutError):
        future.cancel()
        raise HTTPError(504, f"the request took longer than the server's {state.limits.timeout:g} s limit") from None
    except asyncio.CancelledError:
        future.cancel()
        raise
    except Exception as exc:  # noqa: BLE001 -- a failed decode fails this request only
        raise HTTPError(500, f"Cannot translate text: {type(exc).__name__}: {exc}") from None
