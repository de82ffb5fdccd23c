"""What every request handler of a server shares, and the checks made before any work:
draining, API key, rate limit."""

from __future__ import annotations

from dataclasses import dataclass, field

from mlxt.serve.batcher import Batcher
from mlxt.serve.bodies import HTTPError
from mlxt.serve.limits import Limits, RateLimiter
from mlxt.serve.metrics import Metrics


@dataclass
class ServeState:
    served: list
    limits: Limits
    batcher: Batcher
    metrics: Metrics
    api_keys: frozenset | None = None
    rate: RateLimiter = None
    draining: bool = False
    in_flight: int = 0
    translating: int = 0  # /translate requests inside their handler (read by the model thread)
    pairs: dict = field(default_factory=dict)
    lms: dict = field(default_factory=dict)

    def __post_init__(self):
        self.rate = self.rate or RateLimiter(self.limits.rate_limit)
        self.pairs = {m.pair: m for m in self.served if m.pair}
        self.lms = {m.name: m for m in self.served if m.kind == "lm"}
        self.batcher.expected = lambda: self.translating


def request_key(request, fields: dict) -> str | None:
    key = fields.get("api_key")
    if key is not None and not isinstance(key, str):
        raise HTTPError(400, "Invalid request: api_key must be a string")
    if not key:
        auth = request.headers.get("authorization", "")
        if auth.lower().startswith("bearer "):
            key = auth[7:].strip()
    return key or None


def admit(state: ServeState, request, fields: dict) -> None:
    """403 without a valid key (when keys are required), 429 past the rate limit."""
    key = request_key(request, fields)
    if state.api_keys is not None:
        if key is None:
            raise HTTPError(403, "Please contact the server operator to get an API key (api_key is required)")
        if key not in state.api_keys:
            raise HTTPError(403, "Invalid API key")
    client = f"key:{key}" if key and state.api_keys is not None else f"ip:{request.client.host if request.client else '-'}"
    if not state.rate.allow(client):
        raise HTTPError(429, f"Slowdown: more than {state.limits.rate_limit} requests per minute")
