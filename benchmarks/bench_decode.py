"""Autoregressive decoding tokens/s: with and without the KV cache, greedy against beam 5.

The seq2seq model of `bench_train` (random weights: speed does not depend on what was learned)
translates a batch of sources; end-of-sentence is banned so every output has exactly
``max_len`` tokens and the runs do the same work. "no cache" re-runs the decoder over the whole
prefix at every step (what decoding costs without `mlxt.decode.cache`). The baby GPT generates
from a short prompt, one sequence, with and without the cache. The models are packed for
inference (`mlxt.model.pack_for_inference`), as `load_run(..., inference=True)` gives them to
``mlxt translate`` and ``mlxt generate``.

Long generation (`long_generation`): the CLI's path -- `generate_tokens` plus streaming
detokenization -- for 1,000 to 20,000 tokens with a char-level LM of rotary positions and a
256-token context (past it, the sliding window of `generate_tokens`), so the time per token
should stay flat; next to it, what decoding the whole text again at every token (the previous
``mlxt generate``) would cost per token.

    .venv/bin/python benchmarks/bench_decode.py
"""

from __future__ import annotations

import common

import mlx.core as mx
import numpy as np

import time

from mlxt.data.tokenizers import CharTokenizer
from mlxt.decode import beam_search, generate_tokens, greedy, make_cache
from mlxt.decode.detokenize import StreamingDetokenizer
from mlxt.model import ModelConfig, build_model, pack_for_inference

BATCH, SRC_LEN, OUT_LEN = 8, 24, 48
PROMPT_LEN, GEN_LEN = 8, 56


def uncached_greedy(model, src, steps: int, banned) -> np.ndarray:
    """Greedy decoding that recomputes the decoder over the full prefix at every step."""
    cfg = model.config
    src_mask = model.source_mask(src)
    memory = model.encode(src, src_mask)
    penalty = mx.zeros((cfg.vocab_size,)).at[mx.array(banned)].add(-1e9)
    tokens = mx.full((src.shape[0], 1), cfg.start_id, dtype=mx.int32)
    for _ in range(steps):
        logits = model.decode(tokens, memory, src_mask)[:, -1, :] + penalty
        nxt = mx.argmax(logits, axis=-1).astype(mx.int32)
        tokens = mx.concatenate([tokens, nxt[:, None]], axis=1)
        mx.eval(tokens)
    return np.array(tokens[:, 1:])


def lm_generate(model, prompt: mx.array, steps: int, cached: bool) -> np.ndarray:
    """Greedy continuation of ``prompt (1, L)``, with a `KVCache` or re-reading the prefix."""
    cache = make_cache(model, capacity=prompt.shape[1] + steps) if cached else None
    tokens, feed = prompt, prompt
    for _ in range(steps):
        logits = model(feed, cache=cache)[:, -1, :]
        nxt = mx.argmax(logits, axis=-1).astype(mx.int32)[:, None]
        tokens = mx.concatenate([tokens, nxt], axis=1)
        feed = nxt if cached else tokens
        mx.eval(tokens)
    return np.array(tokens[:, prompt.shape[1]:])


LONG_LM = ModelConfig(kind="lm", vocab_size=65, d_model=128, num_heads=4, num_encoder_layers=0,
                      num_decoder_layers=4, d_ff=512, dropout=0.0, activation="gelu", norm_first=True,
                      positional="rope", max_len=256, scale_embedding=False, tie_output=True,
                      attention_bias=False, ffn_bias=False)


def long_generation(lengths=None) -> tuple[list[str], list[list]]:
    """ms per generated token at each length: model + streaming text, and re-decoding the text."""
    lengths = lengths or ((1000, 4000) if common.quick() else (1000, 5000, 20000))
    mx.random.seed(0)
    lm = build_model(LONG_LM)
    lm.eval()
    pack_for_inference(lm)
    tokenizer = CharTokenizer.train(["".join(chr(c) for c in range(0x21, 0x21 + LONG_LM.vocab_size - 4))])
    rows = []
    for n in lengths:
        stream = StreamingDetokenizer(tokenizer)
        start = time.perf_counter()
        ids = []
        for token in generate_tokens(lm, [4, 5, 6], n, temperature=1.0, seed=0, stop_at_eos=False):
            ids.append(token)
            stream.add(token)
        stream.finish()
        seconds = time.perf_counter() - start
        redecode = float("nan")
        if n <= 5000:  # decoding every prefix again: O(n^2), too slow to wait for beyond this
            start = time.perf_counter()
            for k in range(1, n + 1):
                tokenizer.decode(ids[:k])
            redecode = time.perf_counter() - start
        rows.append([n, 1e3 * seconds / n, 1e3 * redecode / n])
    return ["generated tokens", "ms/token (generate + streamed text)", "ms/token to re-decode all text"], rows


def run() -> tuple[list[str], list[list], dict]:
    from bench_train import BABY_GPT, SEQ2SEQ

    repeats = 1 if common.quick() else 3
    mx.random.seed(0)
    rng = np.random.default_rng(0)
    model = build_model(SEQ2SEQ.config)
    model.eval()
    pack_for_inference(model)
    cfg = model.config
    src = rng.integers(4, cfg.vocab_size, size=(BATCH, SRC_LEN), dtype=np.int32)
    src[:, -1] = cfg.eos_id
    src = mx.array(src)
    banned = [cfg.pad_id, cfg.start_id, cfg.eos_id]
    rows = []
    out = {}

    def timed(name, fn, tokens):
        seconds = common.median_time(lambda: out.__setitem__(name, fn()), repeats)
        rows.append([name, tokens, tokens / seconds, 1e3 * seconds])

    n = BATCH * OUT_LEN
    timed("seq2seq greedy, KV cache", lambda: greedy(model, src, max_len=OUT_LEN, banned_ids=banned), n)
    timed("seq2seq greedy, no cache", lambda: uncached_greedy(model, src, OUT_LEN, banned), n)
    timed("seq2seq beam 5, KV cache",
          lambda: beam_search(model, src, beam_size=5, max_len=OUT_LEN, banned_ids=banned), n)
    same = np.array_equal(np.array(out["seq2seq greedy, KV cache"]), out["seq2seq greedy, no cache"])

    lm = build_model(BABY_GPT.config)
    lm.eval()
    pack_for_inference(lm)
    prompt = mx.array(rng.integers(4, lm.config.vocab_size, size=(1, PROMPT_LEN), dtype=np.int32))
    timed("baby GPT greedy, KV cache", lambda: lm_generate(lm, prompt, GEN_LEN, True), GEN_LEN)
    timed("baby GPT greedy, no cache", lambda: lm_generate(lm, prompt, GEN_LEN, False), GEN_LEN)
    same_lm = np.array_equal(out["baby GPT greedy, KV cache"], out["baby GPT greedy, no cache"])
    headers = ["decoding", "output tokens", "tokens/s", "ms total"]
    return headers, rows, {"cache_matches_no_cache": bool(same and same_lm)}


if __name__ == "__main__":
    print(common.machine())
    print(f"seq2seq: batch {BATCH}, source {SRC_LEN} tokens, {OUT_LEN} output tokens each; "
          f"baby GPT: prompt {PROMPT_LEN}, {GEN_LEN} new tokens, batch 1")
    headers, rows, extra = run()
    print(common.table(headers, rows))
    print(f"cached and uncached greedy outputs identical: {extra['cache_matches_no_cache']}")
    print(f"\nLong generation: char LM d{LONG_LM.d_model} {LONG_LM.num_decoder_layers}L, rotary positions, "
          f"{LONG_LM.max_len}-token context (sliding window), sampled, batch 1")
    print(common.table(*long_generation()))
