"""mlxt's native CPU kernels against mlxt's pure-MLX code for the same operation, forward and
backward together (the AdamW row: one optimizer update), compiled, at the shapes of
bench_train's models; then decoding's kernels, forward only, at the shapes of a beam-4,
batch-32 step of opus-mt-en-de's architecture (bench_translate): the linear layers against
packed weights (MLX: its BLAS matmul) and the one-query attention over a cache (MLX: mlxt's
attention on the cache's slice). The two alternate in rounds in the same process and the table
gives medians and the ratio.

    .venv/bin/python benchmarks/bench_kernels.py     (MLXT_NUM_THREADS=N: kernel and BLAS threads)
"""

from __future__ import annotations

import os
import sys
import time

import common

import mlx.core as mx
import numpy as np

from mlxt import kernels
from mlxt.model.attention import scaled_dot_product_attention
from mlxt.model.dropout import Dropout
from mlxt.train.adamw import AdamW
from mlxt.train.losses import label_smoothed_cross_entropy

# the seq2seq d256 3+3 model's matrices (8000-token embeddings and output, attention, FFN)
ADAMW_SHAPES = [(8000, 256)] * 2 + [(256, 1024), (1024, 256)] * 6 + [(256, 256)] * 24 + [(256,)] * 30


def causal_attention(a):
    """Self-attention of ``(B, L, heads, d_head)`` as `MultiHeadAttention` does it: the native
    kernel on that layout, or (kernels off) MLX's ops on the heads transposed and back."""
    if kernels.attention_supported(a.shape[-1], a.dtype, "causal"):
        return kernels.attention(a, a, a, 32 ** -0.5, "causal")
    heads = a.transpose(0, 2, 1, 3)
    return scaled_dot_product_attention(heads, heads, heads, 32 ** -0.5, "causal").transpose(0, 2, 1, 3)


def cases():
    """name -> (function of one array whose gradient is taken, input); all float32."""
    mx.random.seed(0)
    x = mx.random.normal((12 * 64, 128))
    w, b = mx.random.normal((128,)), mx.random.normal((128,))
    q = mx.random.normal((12, 64, 4, 32))  # (B, L, heads, d_head): the projections' layout
    h = mx.random.normal((12 * 64, 512))
    logits = mx.random.normal((32, 32, 8000))
    targets = mx.random.randint(1, 8000, (32, 32))
    g = mx.random.normal(x.shape)
    gq = mx.random.normal(q.shape)
    gh = mx.random.normal(h.shape)
    drop = Dropout(0.1)
    # evaluated now: a lazy array captured by a compiled function is recomputed at every call
    mx.eval(x, w, b, q, h, logits, targets, g, gq, gh)
    return {
        "layer norm (768, 128)": (lambda a: (kernels.layer_norm(a, w, b, 1e-5) * g).sum(), x),
        "causal attention (12, 4, 64, 64)": (lambda a: (causal_attention(a) * gq).sum(), q),
        "GELU (768, 512)": (lambda a: (kernels.gelu(a) * gh).sum(), h),
        "dropout p=0.1 (768, 512)": (lambda a: (drop(a) * gh).sum(), h),
        "label-smoothed CE (1024, 8000)": (lambda a: label_smoothed_cross_entropy(a, targets, 0.1)[0], logits),
    }


def decode_cases():
    """name -> {native: fn(None)}: decoding's kernels and MLX's way of doing the same."""
    mx.random.seed(2)
    out = {}
    for rows, k, n, what in [(128, 512, 58101, "output projection"), (32, 512, 58101, "output projection"),
                             (4, 512, 58101, "output projection"), (128, 512, 2048, "FFN in"),
                             (128, 2048, 512, "FFN out"), (128, 512, 512, "attention projection")]:
        x, w, b = mx.random.normal((rows, k)), mx.random.normal((n, k)) * 0.05, mx.random.normal((n,))
        packed = kernels.pack_weight(w)
        mx.eval(x, w, b, packed)
        out[f"{what} ({rows}, {k}) x ({n}, {k})"] = {
            True: lambda _, x=x, p=packed, b=b, n=n: kernels.packed_linear(x, p, b, n),
            False: lambda _, x=x, w=w, b=b: x @ w.T + b}
    q = mx.random.normal((128, 8, 1, 64))
    keys, values = mx.random.normal((128, 8, 24, 64)), mx.random.normal((128, 8, 24, 64))
    mx.eval(q, keys, values)
    out["attention, 1 query over 12 cached (128, 8, 64)"] = {
        True: lambda _: kernels.cached_attention(q, keys, values, 12, None, None, 0.125),
        False: lambda _: scaled_dot_product_attention(q, keys[:, :, :12], values[:, :, :12], 0.125)}
    return out


def adamw_update(native: bool):
    """A compiled AdamW update of ADAMW_SHAPES (the optimizer state in and out, as in the
    train step), with the kernels on or off while it is traced."""
    os.environ["MLXT_KERNELS"] = "1" if native else "0"
    mx.random.seed(1)
    params = {f"p{i}": mx.random.normal(s) for i, s in enumerate(ADAMW_SHAPES)}
    grads = {k: mx.random.normal(v.shape) * 1e-2 for k, v in params.items()}
    opt = AdamW(1e-3, betas=(0.9, 0.98), eps=1e-9, weight_decay=0.01)
    opt.init(params)
    mx.eval(params, grads, opt.state)
    fn = mx.compile(lambda _: opt.apply_gradients(grads, params), inputs=[opt.state], outputs=[opt.state])
    mx.eval(fn(None), opt.state)
    os.environ.pop("MLXT_KERNELS")
    return fn


def timed(fn, x, steps):
    out = []
    for _ in range(steps):
        start, cpu = time.perf_counter(), time.process_time()
        mx.eval(fn(x))
        out.append([time.perf_counter() - start, time.process_time() - cpu])
    return out


def compare(name, fns, x, rounds, steps) -> list:
    """One table row: fns[True] (native) and fns[False] (pure MLX) alternating in rounds, medians."""
    times = {True: [], False: []}
    for _ in range(rounds):
        for native in (True, False):
            times[native] += timed(fns[native], x, steps)
    (on, on_cpu), (off, off_cpu) = (np.median(np.array(times[k]), axis=0) * 1e3 for k in (True, False))
    return [name, on, off, on_cpu, off_cpu, f"{off / on:.2f}x", f"{off_cpu / on_cpu:.2f}x"]


HEADERS = ["operation (forward + backward; decoding: forward)", "native ms", "pure MLX ms", "native CPU ms", "pure MLX CPU ms",
           "speed-up", "speed-up (CPU time)"]


def run() -> tuple[list[str], list[list], dict]:
    rounds, steps = (3, 5) if common.quick() else (5, 10)
    rows = []
    for name, (loss, x) in cases().items():
        fns = {}
        for native in (True, False):
            os.environ["MLXT_KERNELS"] = "1" if native else "0"
            # the random state in and out, as in the train step (dropout draws from it)
            fns[native] = mx.compile(mx.value_and_grad(loss), inputs=[mx.random.state], outputs=[mx.random.state])
            mx.eval(fns[native](x))  # trace with the switch set, and warm up
        os.environ.pop("MLXT_KERNELS")
        rows.append(compare(name, fns, x, rounds, steps))
    count = sum(int(np.prod(s)) for s in ADAMW_SHAPES) / 1e6
    fns = {native: adamw_update(native) for native in (True, False)}
    rows.append(compare(f"AdamW update ({count:.1f}M parameters)", fns, None, rounds, steps))
    for name, fns in decode_cases().items():
        rows.append(compare(f"decoding: {name}", fns, None, rounds, steps))
    return HEADERS, rows, {"kernels": kernels.status()}


if __name__ == "__main__":
    print(common.machine())
    headers, rows, extra = run()
    st = extra["kernels"]
    print(f"native kernels: {st['isa']}, {st['threads']} threads" if st["active"] else f"native kernels off: {st['reason']}")
    print(common.table(headers, rows))
    sys.exit(0)
