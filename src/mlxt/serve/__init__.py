"""Serving runs over HTTP: LibreTranslate's translation API, OpenAI-style completions, a web
page, with batched decoding on one model thread (see docs/serve.md).

Needs the ``serve`` extra (Starlette, uvicorn, python-multipart).
"""

from mlxt.serve.limits import Limits
from mlxt.serve.models import ServedModel, load_all, load_served

__all__ = ["Limits", "ServedModel", "load_all", "load_served", "build_state", "create_app", "serve"]


def __getattr__(name):  # the HTTP stack is imported only when it is used
    if name in ("build_state", "serve"):
        from mlxt.serve import server

        return getattr(server, name)
    if name == "create_app":
        from mlxt.serve.app import create_app

        return create_app
    raise AttributeError(name)
