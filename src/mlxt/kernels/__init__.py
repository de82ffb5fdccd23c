"""mlxt's native CPU kernels: MLX primitives written in C++ (``csrc/``), vectorised (AVX-512,
AVX2+FMA or baseline, chosen at run time) and multi-threaded over rows.

MLX's CPU backend runs elementwise ops, reductions, softmax and layer norm on one thread with
scalar code on x86-64; in a small model's training step that work costs more than the matrix
products (docs/performance.md). These kernels do each such operation, forward and backward, in
one pass over the data: attention over whole sequences (scores, masked softmax and mixing per
(batch, head) in the projections' layout, and its backward pass: `attention`), layer norm over
the last axis, the attention softmax (with a boolean or causal mask), the exact and tanh GELU and SiLU, and the label-smoothed cross-entropy over
the vocabulary, dropout (its mask a hash of each element's index and a key from MLX's random
state), the AdamW update of a parameter and its moments; for decoding, the linear layers'
matrix product against a weight packed once into panels (`pack_weight`, `packed_linear`: see
`mlxt.model.packed`) and one query's attention over a key/value cache (`cached_attention`); and, for beam search's host step, the top k and the log-softmax
normaliser of each row of a numpy array.
Each row is computed by one thread and partial sums across rows are added in a fixed order, so
results are bitwise the same for any thread count.

`use_native()` is the one switch the model and the loss consult: true on the CPU device when
the extension loaded, unless ``MLXT_KERNELS=0``. The functions below fall back to MLX's own
ops whenever it is false (or the dtype is not float32). Threads: ``MLXT_NUM_THREADS``, else the
CPU count; `set_num_threads` changes it at run time.

The extension is built by the normal install against the MLX in the build environment; it is
used only if that is the MLX version running now. When it cannot be used mlxt warns once and
runs on MLX's ops; `status()` (and ``mlxt info``) say why.
"""

from __future__ import annotations

import importlib
import os
import warnings

KERNELS = ("gemm", "attention", "layer_norm", "softmax", "gelu", "gelu_tanh", "silu", "cross_entropy", "dropout", "adamw", "top_k",
           "log_norm", "packed_linear", "cached_attention")
PANEL = 64  # output columns per panel of a packed weight (kernels.h, kPanel)
_ACTIVATION_KIND = {"gelu": 0, "gelu_tanh": 1, "silu": 2}


class KernelsWarning(RuntimeWarning):
    """The native kernels could not be loaded; mlxt uses MLX's ops instead."""


_lib = None
_reason: str | None = None  # None: not tried yet
_warned = False
_gemm_routed: bool | None = None  # whether MLX's float32 products go to the kernels' sgemm
_gemm_reason = ""


def _load():
    global _lib, _reason
    if _reason is not None:
        return _lib
    _reason = ""
    import mlx.core as mx

    try:
        ext = importlib.import_module("mlxt.kernels._ext")
    except ImportError as e:
        _reason = f"extension not built or not loadable ({e})"
        return None
    built = ext.built_mlx_version()
    running = mx.__version__.split(".dev")[0].split("+")[0]
    if built != running:
        _reason = f"built against mlx {built} but mlx {running} is running (reinstall mlxt)"
        return None
    try:  # the array type must be shared with mlx.core (same nanobind ABI and domain)
        ext.activation(mx.zeros((1,), mx.float32), 0)
    except TypeError as e:
        _reason = f"extension does not accept mlx arrays ({e})"
        return None
    _lib = ext
    _route_gemm()
    return ext


def _disabled() -> bool:
    return os.environ.get("MLXT_KERNELS", "1").strip().lower() in ("0", "off", "false", "no")


def _route_gemm() -> None:
    """Send MLX's float32 matrix products (its ``cblas_sgemm`` calls, through the BLAS shim of
    `mlxt._blas`) to the kernels' product, or back to OpenBLAS (``MLXT_KERNELS=0``,
    ``MLXT_GEMM=openblas``). The kernels' product runs on the same thread pool as the other
    kernels; OpenBLAS's own threads, spinning between calls, would compete with that pool for
    the cores (docs/performance.md)."""
    global _gemm_routed, _gemm_reason
    if _lib is None:
        return
    on, reason = True, ""
    if _disabled():
        on, reason = False, "kernels off"
    elif os.environ.get("MLXT_GEMM", "mlxt").strip().lower() == "openblas":
        on, reason = False, "MLXT_GEMM=openblas"
    elif _lib.isa() == "generic":
        on, reason = False, "no vectorised build for this CPU"
    if on == _gemm_routed:
        _gemm_reason = reason
        return
    from mlxt import _blas

    blas = _blas.state()
    if not blas.set_sgemm(_lib.sgemm_address() if on else None):
        on, reason = False, f"MLX's products do not go through mlxt's BLAS shim (BLAS: {blas.source})"
    _gemm_routed, _gemm_reason = on, reason


def use_native() -> bool:
    """Whether mlxt runs its native kernels (CPU device, extension loaded, MLXT_KERNELS != 0)."""
    global _warned
    _route_gemm()
    if _disabled():
        return False
    import mlx.core as mx

    if mx.default_device() != mx.cpu:
        return False
    if _load() is None:
        if not _warned:
            _warned = True
            warnings.warn(f"mlxt: native CPU kernels unavailable: {_reason}; using MLX's ops",
                          KernelsWarning, stacklevel=2)
        return False
    return True


def status() -> dict:
    """What `mlxt info` reports: active, why not, instruction set, threads, kernels."""
    ext = _load()
    _route_gemm()
    active = ext is not None and not _disabled()
    import mlx.core as mx

    on_cpu = mx.default_device() == mx.cpu
    reason = _reason or ("disabled by MLXT_KERNELS=0" if _disabled() else
                         "" if on_cpu else "the default device is not the CPU")
    return {
        "active": bool(active and on_cpu),
        "reason": reason or None,
        "isa": ext.isa() if ext is not None else None,
        "threads": ext.num_threads() if ext is not None else None,
        "kernels": [k for k in KERNELS if k != "gemm" or _gemm_routed] if active and on_cpu else [],
        "gemm": ("mlxt" if _gemm_routed else f"OpenBLAS ({_gemm_reason or 'kernels off'})") if ext is not None else None,
        "library": getattr(ext, "__file__", None),
    }


def set_num_threads(n: int) -> None:
    """Threads the kernels use from now on (results do not depend on it)."""
    if _load() is not None:
        _lib.set_num_threads(int(n))


def num_threads() -> int | None:
    return _lib.num_threads() if _load() is not None else None


def _native_f32(*arrays) -> bool:
    import mlx.core as mx

    return use_native() and all(a.dtype == mx.float32 for a in arrays)


def layer_norm(x, weight, bias, eps: float):
    """``(x - mean) / sqrt(var + eps) * weight + bias`` over the last axis."""
    import mlx.core as mx

    if _native_f32(x, weight, bias):
        return _lib.layer_norm(x, weight, bias, float(eps))
    return mx.fast.layer_norm(x, weight, bias, eps)


def softmax(scores, mask=None):
    """Softmax over the last axis of float32 ``scores (..., Lq, Lk)``; ``mask`` is None, a
    boolean array broadcastable to the scores (True = keep) or ``"causal"`` (query i sees keys
    up to i + Lk - Lq). A row with nothing kept comes out uniform, as MLX's masked softmax.
    Native only: callers check `use_native()` first."""
    if isinstance(mask, str):
        return _lib.softmax(scores, None, True, scores.shape[-1] - scores.shape[-2])
    return _lib.softmax(scores, mask)


def attention(q, k, v, scale: float, mask=None):
    """``softmax(scale q k^T) v`` in the projections' layout: float32 ``q (B, Lq, H, D)``, ``k``,
    ``v`` ``(B, Lk, H, D)`` -> ``(B, Lq, H, D)``, differentiable in q, k and v. ``mask``: None, a
    boolean array broadcastable to ``(B, H, Lq, Lk)`` (True = keep) or ``"causal"`` (query i sees
    keys up to i + Lk - Lq); a row with nothing kept attends uniformly. Native only, for head
    sizes D that are a multiple of 16 (`attention_supported`)."""
    if isinstance(mask, str):
        return _lib.attention(q, k, v, float(scale), None, True, k.shape[1] - q.shape[1])
    return _lib.attention(q, k, v, float(scale), mask)


def self_attention(qkv, scale: float, mask=None):
    """`attention` for self-attention whose q, k and v come from one projection: float32
    ``qkv (B, L, 3, H, D)`` -> ``(B, L, H, D)``, differentiable in qkv. Its gradient is one array
    in qkv's layout, so the projection's backward pass is one product for all three. ``mask``
    as for `attention` (``"causal"``: query i sees keys up to i). Native only."""
    if isinstance(mask, str):
        return _lib.attention_qkv(qkv, float(scale), None, True, 0)
    return _lib.attention_qkv(qkv, float(scale), mask)


def attention_supported(head_dim: int, dtype, mask=None) -> bool:
    """Whether `attention` takes these inputs: the kernels are on, float32, a head size that is
    a multiple of 16, and no mask, ``"causal"`` or a boolean mask."""
    import mlx.core as mx

    return (use_native() and dtype == mx.float32 and head_dim % 16 == 0 and
            (mask is None or isinstance(mask, str) or mask.dtype == mx.bool_))


def _activation(name: str, x, fallback):
    if _native_f32(x):
        return _lib.activation(x, _ACTIVATION_KIND[name])
    return fallback(x)


def gelu(x):
    """Exact (erf) GELU."""
    import mlx.nn as nn

    return _activation("gelu", x, nn.gelu)


def gelu_tanh(x):
    """The tanh approximation of GELU (``nn.gelu_approx``)."""
    import mlx.nn as nn

    return _activation("gelu_tanh", x, nn.gelu_approx)


def silu(x):
    import mlx.nn as nn

    return _activation("silu", x, nn.silu)


def dropout(x, p: float):
    """Inverted dropout of float32 ``x``: each element zeroed with probability ``p`` (in
    [0, 1)), the others scaled by ``1 / (1 - p)``. The mask is a hash of the element's index and
    a 64-bit key drawn here from MLX's random state (so `mx.random.seed` and the random state a
    compiled step carries decide it), and the backward pass recomputes it. Native only:
    callers check `use_native()` first (`mlxt.model.dropout.Dropout`)."""
    import mlx.core as mx

    # four 16-bit draws (exact: `randint` goes through a float32 uniform) make the two words
    halves = mx.random.randint(0, 1 << 16, (2, 2), dtype=mx.uint32)
    key = halves[:, 0] | (halves[:, 1] << 16)
    return _lib.dropout(x, key, float(p))


def adamw(p, g, m, v, hyper):
    """One AdamW step of float32 ``p`` with gradient ``g`` and moments ``m``, ``v``: returns
    ``(p', m', v')``; ``hyper`` is float32 ``[1 - lr wd, b1, 1 - b1, b2, 1 - b2, lr / (1 - b1^t),
    1 / sqrt(1 - b2^t), eps]``. Native only (`mlxt.train.adamw.AdamW` checks `use_native()`)."""
    import mlx.core as mx

    one = mx.array(1.0, mx.float32)
    return tuple(_lib.adamw([p], [g], [m], [v], hyper, one, one, 0.0))


ADAMW_GROUP = 8  # parameters per AdamW node (a node's n outputs cost MLX O(n^2) bookkeeping)


def adamw_group(params, grads, ms, vs, hyper, count=1.0, max_norm: float = 0.0):
    """One AdamW step of lists of float32 parameters, gradients and moments: the gradients are
    divided by ``max(count, 1)`` and, when ``max_norm > 0``, scaled by ``min(max_norm / (norm +
    1e-6), 1)`` where ``norm`` is their global L2 norm (as `mlx.optimizers.clip_grad_norm`).
    Returns ``(params', ms', vs', norm)``: one norm node and one update node per
    `ADAMW_GROUP` parameters. Native only."""
    import mlx.core as mx

    count = count if isinstance(count, mx.array) else mx.array(count, mx.float32)
    norm = _lib.grad_norm(list(grads), count)
    new_p, new_m, new_v = [], [], []
    for i in range(0, len(params), ADAMW_GROUP):
        part = slice(i, i + ADAMW_GROUP)
        out = _lib.adamw(list(params[part]), list(grads[part]), list(ms[part]), list(vs[part]), hyper, count, norm,
                         float(max_norm))
        n = len(out) // 3
        new_p += out[:n]
        new_m += out[n:2 * n]
        new_v += out[2 * n:]
    return new_p, new_m, new_v, norm


def top_k(x, k: int):
    """``(values, indices)``, ``(rows, k)`` each, of the k largest of each row of a float32
    numpy array ``(rows, len)``, best first (ties: lower index first; NaN ranks lowest), or
    None when the native kernels are off (the caller then partitions with numpy). It works on
    host arrays, so it is used whatever MLX's default device is (beam search's host step)."""
    import numpy as np

    if _disabled() or _load() is None or x.dtype != np.float32 or x.ndim != 2 or not 1 <= k <= x.shape[1]:
        return None
    return _lib.top_k(np.ascontiguousarray(x), int(k))


def log_norm(x):
    """``(top, log_norm)``, ``(rows, 1)`` each, of a float32 numpy array ``(rows, len)``: each
    row's max and ``log(sum(exp(x - max)))``, so ``log_softmax(x) = (x - top) - log_norm``; or
    None when the native kernels are off (the caller then uses numpy). Host arrays, like
    `top_k`: beam search's host step."""
    import numpy as np

    if _disabled() or _load() is None or x.dtype != np.float32 or x.ndim != 2 or x.shape[1] < 1:
        return None
    return _lib.log_norm(np.ascontiguousarray(x))


def cross_entropy(logits, targets, smoothing: float):
    """Per-position label-smoothed cross-entropy of float32 ``logits (..., V)``, native only
    (see `mlxt.train.losses`, which checks `use_native()`)."""
    return _lib.cross_entropy(logits, targets, float(smoothing))


def packs_weights() -> bool:
    """Whether `mlxt.model.pack_for_inference` packs: the native kernels are on and vectorised
    (the portable build of the product is slower than MLX's BLAS matmul)."""
    return use_native() and _lib.isa() != "generic"


def cached_attention(q, keys, values, length: int, rows, mask, scale: float):
    """Decoding's attention: float32 ``q (B, H, 1, D)`` over the first ``length`` positions of
    the caches ``keys``, ``values`` ``(Bk, H, cap, D)``; ``rows`` (int32 ``(B, >= length)`` or
    None) names the batch row holding each position of row b's history; ``mask`` (bool
    ``(B, length)``, True = keep, or None). Returns ``(B, H, 1, D)``. Native only (callers check
    `use_native()`); no gradient."""
    return _lib.cached_attention(q, keys, values, int(length), rows, mask, float(scale))


def pack_weight(w):
    """A weight ``w (n, k)`` in the layout of `packed_linear`: ``(ceil(n / 64), k, 64)`` with
    ``packed[p, kk, j] = w[64 p + j, kk]`` and zeros past ``n``. Native only (`packs_weights`)."""
    if _load() is None:
        raise RuntimeError(f"mlxt: native CPU kernels unavailable: {_reason}")
    return _lib.pack_weight(w)


def packed_linear(x, packed, bias, n: int):
    """``x (..., k) @ w.T + bias -> (..., n)`` for ``packed = pack_weight(w)``; ``bias`` ``(n,)``
    or None. Native when the kernels are on; otherwise (another device, ``MLXT_KERNELS=0`` after
    packing) the same product with MLX's ops. No gradient: the packed layers are for inference."""
    import mlx.core as mx

    if _native_f32(x, packed) and (bias is None or bias.dtype == mx.float32):
        return _lib.packed_linear(x, packed, bias, int(n))
    panels, k, width = packed.shape
    out = (x.reshape(-1, k) @ packed.transpose(1, 0, 2).reshape(k, panels * width))[:, :n]
    out = out.reshape(*x.shape[:-1], n)
    return out if bias is None else out + bias

