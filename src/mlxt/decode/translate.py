"""Translating text: encode, batch, search, decode back to text.

Sentences are sorted by length and decoded in batches (less padding), then put back in input
order. Bad input does not stop a file: an empty line gives an empty translation, a line longer
than the model's positions is truncated with a warning on stderr, and characters the tokenizer
does not know become its unknown token.
"""

from __future__ import annotations

import sys

import mlx.core as mx
import numpy as np

from mlxt.decode.beam import Hypothesis, beam_search_nbest
from mlxt.decode.buffers import step_buffers
from mlxt.decode.greedy import greedy
from mlxt.errors import MlxtError


def warn(message: str) -> None:
    print(f"mlxt: warning: {message}", file=sys.stderr)


def encode_sources(texts: list[str], tokenizer, eos_id: int, max_len: int, lowercase: bool = False,
                   first: int = 1) -> list[list[int]]:
    """``tokenizer.encode(text) + [eos]`` per text, at most ``max_len`` ids (truncated with a
    warning that numbers the inputs from ``first``); an empty (or blank) text gives ``[]``."""
    out = []
    for i, text in enumerate(texts, start=first):
        text = text.lower() if lowercase else text
        if not text.strip():
            out.append([])
            continue
        try:
            ids = tokenizer.encode(text)
        except MlxtError as exc:  # text the tokenizer refuses (lone surrogates): say which input
            raise MlxtError(f"input {i}: {exc}") from None
        if len(ids) + 1 > max_len:
            warn(f"input {i}: {len(ids)} tokens, more than the model's {max_len - 1}; truncated")
            ids = ids[: max_len - 1]
        out.append(ids + [eos_id])
    return out


def pad_batch(rows: list[list[int]], pad_id: int) -> mx.array:
    width = max(len(r) for r in rows)
    arr = np.full((len(rows), width), pad_id, dtype=np.int32)
    for i, r in enumerate(rows):
        arr[i, : len(r)] = r
    return mx.array(arr)


def length_batches(sources: list[list[int]], batch_size: int = 32, max_tokens: int | None = None) -> list[list[int]]:
    """Indices of the non-empty ``sources``, longest first, in batches of at most ``batch_size``
    sentences and (when set) ``max_tokens`` padded source tokens (a longer sentence alone still
    makes a batch). Sorting by length keeps the padding, and so the wasted work, small."""
    order = sorted((i for i, s in enumerate(sources) if s), key=lambda i: -len(sources[i]))
    out: list[list[int]] = []
    for i in order:
        width = len(sources[out[-1][0]]) if out else 0  # the longest: the batch's first
        if out and len(out[-1]) < batch_size and (max_tokens is None or (len(out[-1]) + 1) * width <= max_tokens):
            out[-1].append(i)
        else:
            out.append([i])
    return out


def translate_ids(model, sources: list[list[int]], beam_size: int = 5, n_best: int = 1, batch_size: int = 32,
                  max_tokens: int | None = None, progress=None, **options) -> list[list[Hypothesis]]:
    """N-best hypotheses per encoded source (``[]`` for an empty source), in input order. The
    sources are decoded in `length_batches` of ``batch_size`` sentences / ``max_tokens`` padded
    source tokens; ``progress(count)`` (optional) is called after each batch. ``beam_size == 1``
    with ``n_best == 1`` runs `greedy` (whose hypotheses carry no score, NaN); ``options`` go
    to the search."""
    results: list[list[Hypothesis]] = [[] for _ in sources]
    with step_buffers(batch_size * max(beam_size, 1), model.config.vocab_size):
        for chunk in length_batches(sources, batch_size, max_tokens):
            src = pad_batch([sources[i] for i in chunk], model.config.pad_id)
            if beam_size == 1 and n_best == 1:
                greedy_options = {k: v for k, v in options.items() if k not in ("length_penalty", "penalty",
                                                                                  "early_stopping", "candidates")}
                tokens = greedy(model, src, **greedy_options)
                hyps = [[Hypothesis(t, float("nan"), float("nan"), True)] for t in tokens]
            else:
                hyps = beam_search_nbest(model, src, beam_size, n_best=n_best, **options)
            for i, h in zip(chunk, hyps):
                results[i] = h
            if progress is not None:
                progress(len(chunk))
    if progress is not None and len(results) > sum(map(bool, sources)):
        progress(len(results) - sum(map(bool, sources)))  # the empty ones
    return results


def translate(model, tokenizers: dict, texts: list[str], beam_size: int = 5, batch_size: int = 32,
              lowercase: bool = False, **options) -> list[str]:
    """One detokenized translation per text (see `translate_ids` for the options)."""
    sources = encode_sources(texts, tokenizers["src"], model.config.eos_id, model.config.max_len, lowercase)
    hyps = translate_ids(model, sources, beam_size, 1, batch_size, **options)
    return [tokenizers["tgt"].decode(h[0].tokens) if h else "" for h in hyps]
