"""The Starlette application: routes, error answers, the access log, ``/metrics``, ``/health``
and the web page.

Every error is a JSON answer with a one-line message: LibreTranslate's ``{"error": "..."}``,
or OpenAI's ``{"error": {"message": ...}}`` under ``/v1/``. While the server drains for a
shutdown, every new request is answered 503.
"""

from __future__ import annotations

import logging
import sys
import time
from pathlib import Path

from starlette.applications import Starlette
from starlette.responses import FileResponse, JSONResponse, PlainTextResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from mlxt.serve import completions_api, translate_api
from mlxt.serve.bodies import HTTPError
from mlxt.serve.state import ServeState

STATIC = Path(__file__).parent / "static"
access_log = logging.getLogger("mlxt.serve.access")


def error_response(path: str, status: int, message: str) -> JSONResponse:
    if path.startswith("/v1/"):
        kind = {400: "invalid_request_error", 403: "permission_error", 404: "invalid_request_error",
                429: "rate_limit_error"}.get(status, "server_error")
        code = "model_not_found" if status == 404 and "model" in message else None
        body = {"error": {"message": message, "type": kind, "param": None, "code": code}}
    else:
        body = {"error": message}
    headers = {"Retry-After": "1"} if status in (429, 503) else None
    return JSONResponse(body, status_code=status, headers=headers)


async def on_http_error(request, exc: HTTPError):
    return error_response(request.url.path, exc.status, exc.message)


async def on_starlette_error(request, exc):
    return error_response(request.url.path, exc.status_code, str(exc.detail))


async def on_crash(request, exc):
    logging.getLogger("mlxt.serve").exception("error answering %s", request.url.path)
    return error_response(request.url.path, 500, f"internal error: {type(exc).__name__}")


async def health(request) -> JSONResponse:
    state = request.app.state.serve
    status = "draining" if state.draining else "ok"
    return JSONResponse({"status": status, "translators": len(state.pairs), "language_models": len(state.lms),
                         "queue": state.batcher.depth}, status_code=503 if state.draining else 200)


async def metrics(request) -> PlainTextResponse:
    state = request.app.state.serve
    return PlainTextResponse(state.metrics.render(state.batcher.depth), media_type="text/plain; version=0.0.4")


async def index(request) -> FileResponse:
    return FileResponse(STATIC / "index.html", media_type="text/html")


async def settings(request) -> JSONResponse:
    """What the web page needs to know: limits and whether a key is asked for."""
    state = request.app.state.serve
    return JSONResponse({"charLimit": state.limits.max_chars, "itemCharLimit": state.limits.max_item_chars,
                         "keyRequired": state.api_keys is not None, "maxTokens": state.limits.max_tokens,
                         "alternativesLimit": state.limits.max_alternatives})


class Gate:
    """ASGI middleware: 503 while draining, the count of requests in flight, one access-log
    line and the metrics of every request."""

    def __init__(self, app, state: ServeState):
        self.app, self.state = app, state

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        path = scope["path"]
        started = time.perf_counter()
        status = {"code": 500}

        async def send_wrapped(message):
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            await send(message)

        self.state.in_flight += 1
        try:
            if self.state.draining and path not in ("/health", "/metrics"):
                response = error_response(path, 503, "the server is shutting down")
                await response(scope, receive, send_wrapped)
            else:
                await self.app(scope, receive, send_wrapped)
        finally:
            self.state.in_flight -= 1
            seconds = time.perf_counter() - started
            known = path if path in KNOWN_PATHS else "other"
            self.state.metrics.observe_request(known, status["code"], seconds)
            client = scope.get("client") or ("-", 0)
            access_log.info('%s "%s %s" %d %.1fms', client[0], scope["method"], path, status["code"], seconds * 1000)


KNOWN_PATHS = ("/", "/translate", "/languages", "/detect", "/health", "/metrics", "/frontend/settings",
               "/v1/completions", "/v1/models")


def create_app(state: ServeState) -> Starlette:
    routes = [
        Route("/", index),
        Route("/translate", translate_api.translate, methods=["POST"]),
        Route("/languages", translate_api.languages, methods=["GET"]),
        Route("/detect", translate_api.detect, methods=["POST"]),
        Route("/frontend/settings", settings),
        Route("/health", health),
        Route("/metrics", metrics),
        Route("/v1/completions", completions_api.completions, methods=["POST"]),
        Route("/v1/models", completions_api.models, methods=["GET"]),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
    ]
    from starlette.exceptions import HTTPException

    app = Starlette(routes=routes, exception_handlers={HTTPError: on_http_error, HTTPException: on_starlette_error,
                                                      Exception: on_crash})
    app.state.serve = state
    return Gate(app, state)


def setup_access_log(stream=sys.stderr) -> None:
    if not access_log.handlers:
        handler = logging.StreamHandler(stream)
        handler.setFormatter(logging.Formatter("%(asctime)s %(message)s", "%Y-%m-%dT%H:%M:%S"))
        access_log.addHandler(handler)
        access_log.setLevel(logging.INFO)
        access_log.propagate = False
