"""Text generation with a `TransformerLM`: sample (or take the argmax of) one token at a time,
yielding each as soon as it is chosen, so a caller can stream it to the terminal.

The prompt is fed once to fill the `KVCache`; every later step feeds one token. When the context
reaches the model's ``max_len`` positions, the cache is rebuilt from the last half of the
context (a sliding window), so generation can run longer than the trained block size, whatever
the positions (learned, sinusoidal, rotary): the rebuilt context takes positions ``0 ..
max_len // 2 - 1`` again, so the model never sees a position it was not trained on, and each new
token attends to between ``max_len // 2`` and ``max_len`` previous tokens. The cost per token is
therefore bounded (one prompt-sized forward every ``max_len // 2`` tokens, amortised), and a long
generation takes time linear in its length.
"""

from __future__ import annotations

from collections.abc import Iterator

import mlx.core as mx

from mlxt.decode.cache import make_cache
from mlxt.decode.pick import KeyStream, pick_tokens


def generate_tokens(model, prompt_ids: list[int], max_tokens: int, temperature: float = 1.0, top_k: int = 0,
                    top_p: float = 1.0, seed: int | None = None, stop_at_eos: bool = True) -> Iterator[int]:
    """Yield up to ``max_tokens`` new token ids after ``prompt_ids`` (the start token when
    empty). ``temperature == 0`` is greedy. Stops after end-of-sentence when ``stop_at_eos``
    (the end-of-sentence id is not yielded). The same ``seed`` gives the same tokens."""
    cfg = model.config
    context = list(prompt_ids) or [cfg.bos_id]
    window = cfg.max_len
    if len(context) > window:
        context = context[-window:]
    keys = KeyStream(seed)
    cache = make_cache(model, capacity=window)
    logits = model(mx.array([context], dtype=mx.int32), cache=cache)[:, -1, :]
    for _ in range(max_tokens):
        token = pick_tokens(logits.astype(mx.float32), temperature, top_k, top_p, keys.next())
        token_id = int(token.item())
        if stop_at_eos and token_id == cfg.eos_id:
            return
        yield token_id
        context.append(token_id)
        if len(context) > 2 * window:  # only the last window // 2 tokens are ever fed again
            context = context[-window:]
        if cache[0].offset >= window:
            context = context[-(window // 2):]
            cache = make_cache(model, capacity=window)
            logits = model(mx.array([context], dtype=mx.int32), cache=cache)[:, -1, :]
        else:
            logits = model(mx.array([[token_id]], dtype=mx.int32), cache=cache)[:, -1, :]


def sample(model, prompt_ids: list[int], max_tokens: int, temperature: float = 1.0, top_k: int = 0,
           top_p: float = 1.0, seed: int | None = None, stop_at_eos: bool = True) -> list[int]:
    """The tokens of `generate_tokens`, as a list."""
    return list(generate_tokens(model, prompt_ids, max_tokens, temperature, top_k, top_p, seed, stop_at_eos))
