"""OpenAI-style completions for language-model runs: ``POST /v1/completions`` and
``GET /v1/models``.

A request takes ``model`` (a served language model's name; may be left out when only one is
served), ``prompt`` (a string, or a list holding one), ``max_tokens`` (default 16),
``temperature`` (default 1; 0 is greedy), ``top_p``, ``top_k`` (0: off), ``seed``, ``stop``
(a string or up to 4) and ``stream`` (server-sent events, ``data: [DONE]`` last). The text
stops at a stop sequence (not included; ``finish_reason: "stop"``), at end-of-sentence
(``"stop"``) or after ``max_tokens`` (``"length"``). Errors are OpenAI's
``{"error": {"message", "type", "param", "code"}}``.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid

from starlette.responses import JSONResponse, StreamingResponse

from mlxt.decode.sampling import generate_tokens
from mlxt.errors import MlxtError
from mlxt.serve.batcher import Closed, QueueFull
from mlxt.serve.bodies import HTTPError, float_field, int_field, read_fields
from mlxt.serve.state import admit

CREATED = int(time.time())


async def models(request) -> JSONResponse:
    names = request.app.state.serve.lms
    return JSONResponse({"object": "list", "data": [
        {"id": name, "object": "model", "created": CREATED, "owned_by": "mlxt"} for name in names]})


class TextStream:
    """Turns generated token ids into text pieces, holding back an unfinished multi-byte
    character and anything that may be the start of a stop sequence."""

    def __init__(self, tokenizer, stops: list[str]):
        self.tokenizer, self.stops = tokenizer, stops
        self.hold = max((len(s) for s in stops), default=1) - 1
        self.ids: list[int] = []
        self.sent = ""
        self.stopped = False

    def _cut(self, text: str) -> str | None:
        found = [text.find(s) for s in self.stops if s in text]
        return text[: min(found)] if found else None

    def add(self, token: int) -> str:
        """The new text that can be sent after ``token`` ('' when none); sets ``stopped``."""
        self.ids.append(token)
        text = self.tokenizer.decode(self.ids).rstrip("\ufffd")
        cut = self._cut(text)
        if cut is not None:
            self.stopped = True
            return self._send(cut)
        return self._send(text[: len(text) - self._open_prefix(text)])

    def _open_prefix(self, text: str) -> int:
        """Length of the longest end of ``text`` that begins a stop sequence."""
        for n in range(min(self.hold, len(text)), 0, -1):
            if any(s.startswith(text[-n:]) for s in self.stops):
                return n
        return 0

    def finish(self) -> str:
        if self.stopped:
            return ""
        text = self.tokenizer.decode(self.ids)
        cut = self._cut(text)
        if cut is not None:
            self.stopped = True
        return self._send(text if cut is None else cut)

    def _send(self, text: str) -> str:
        if len(text) <= len(self.sent) or not text.startswith(self.sent):
            return ""
        piece, self.sent = text[len(self.sent):], text
        return piece


def parse(fields: dict, state) -> dict:
    name = fields.get("model")
    if name in (None, "") and len(state.lms) == 1:
        name = next(iter(state.lms))
    if not isinstance(name, str) or name not in state.lms:
        served = ", ".join(state.lms) or "none"
        raise HTTPError(404, f"The model {name!r} does not exist (served language models: {served})")
    prompt = fields.get("prompt", "")
    if isinstance(prompt, list) and len(prompt) == 1 and isinstance(prompt[0], str):
        prompt = prompt[0]
    if not isinstance(prompt, str):
        raise HTTPError(400, "Invalid request: prompt must be a string (or a list of one string)")
    if len(prompt) > state.limits.max_chars:
        raise HTTPError(400, f"Invalid request: prompt has {len(prompt)} characters, over the limit of "
                             f"{state.limits.max_chars}")
    stop = fields.get("stop")
    stops = [] if stop is None else [stop] if isinstance(stop, str) else stop
    if not isinstance(stops, list) or len(stops) > 4 or not all(isinstance(s, str) and s for s in stops):
        raise HTTPError(400, "Invalid request: stop must be a non-empty string or a list of up to 4")
    stream = fields.get("stream", False)
    if not isinstance(stream, bool):
        raise HTTPError(400, "Invalid request: stream must be true or false")
    if int_field(fields, "n", 1, 1, 1) != 1:
        raise HTTPError(400, "Invalid request: n must be 1")
    seed = fields.get("seed")
    return {
        "served": state.lms[name], "prompt": prompt, "stops": stops, "stream": stream,
        "max_tokens": int_field(fields, "max_tokens", 16, 0, state.limits.max_tokens),
        "temperature": float_field(fields, "temperature", 1.0, 0.0, 2.0),
        "top_p": float_field(fields, "top_p", 1.0, 1e-9, 1.0),
        "top_k": int_field(fields, "top_k", 0, 0, None),
        "seed": None if seed is None else int_field(fields, "seed", None, 0, 2**63 - 1),
    }


async def completions(request):
    state = request.app.state.serve
    fields, is_json = await read_fields(request, state.limits.max_body)
    if not is_json:
        raise HTTPError(400, "Invalid request: send a JSON object (Content-Type: application/json)")
    admit(state, request, fields)
    p = parse(fields, state)
    served = p["served"]
    tokenizer = served.tokenizers["text"]
    try:
        prompt_ids = tokenizer.encode(p["prompt"].lower() if served.lowercase else p["prompt"])
    except MlxtError as exc:
        raise HTTPError(400, f"Invalid request: prompt: {exc}") from None

    loop = asyncio.get_running_loop()
    queue: asyncio.Queue = asyncio.Queue()
    text = TextStream(tokenizer, p["stops"])

    def on_token(token: int) -> bool:  # in the model thread
        piece = text.add(token)
        if piece:
            loop.call_soon_threadsafe(queue.put_nowait, piece)
        return not text.stopped

    def start():
        return generate_tokens(served.model, prompt_ids, p["max_tokens"], p["temperature"], p["top_k"],
                               p["top_p"], p["seed"])

    try:
        future = state.batcher.submit_generate(served, start, on_token, state.limits.timeout)
    except (QueueFull, Closed) as exc:
        raise HTTPError(503, str(exc)) from None
    future.add_done_callback(lambda _f: loop.call_soon_threadsafe(queue.put_nowait, None))
    deadline = loop.time() + state.limits.timeout
    meta = {"id": f"cmpl-{uuid.uuid4().hex}", "object": "text_completion", "created": int(time.time()),
            "model": served.name}

    def outcome() -> tuple[str, str]:
        """The last text and the finish reason, once the generation ended."""
        if future.exception() is not None:
            exc = future.exception()
            raise HTTPError(504 if isinstance(exc, TimeoutError) else 500, f"generation failed: {exc}")
        last = text.finish()
        return last, "stop" if text.stopped or future.result() < p["max_tokens"] else "length"

    async def pieces():
        while True:
            left = deadline - loop.time()
            try:
                piece = await asyncio.wait_for(queue.get(), max(left, 0.001))
            except (asyncio.TimeoutError, TimeoutError):
                future.cancel()
                raise HTTPError(504, f"the request took longer than the server's {state.limits.timeout:g} s limit") from None
            if piece is None:
                return
            yield piece

    def usage():
        n = len(text.ids)
        return {"prompt_tokens": len(prompt_ids), "completion_tokens": n, "total_tokens": len(prompt_ids) + n}

    def choice(piece: str, reason):
        return {"text": piece, "index": 0, "logprobs": None, "finish_reason": reason}

    if not p["stream"]:
        try:
            parts = [piece async for piece in pieces()]
        finally:
            future.cancel()
        last, reason = outcome()
        return JSONResponse({**meta, "choices": [choice("".join(parts) + last, reason)], "usage": usage()})

    async def events():
        try:
            async for piece in pieces():
                yield f"data: {json.dumps({**meta, 'choices': [choice(piece, None)]})}\n\n"
            last, reason = outcome()
            yield f"data: {json.dumps({**meta, 'choices': [choice(last, reason)], 'usage': usage()})}\n\n"
            yield "data: [DONE]\n\n"
        except HTTPError as exc:
            error = {"message": exc.message, "type": "server_error", "param": None, "code": exc.status}
            yield f"data: {json.dumps({'error': error})}\n\n"
        finally:
            future.cancel()

    return StreamingResponse(events(), media_type="text/event-stream", headers={"Cache-Control": "no-cache"})
