"""The native kernels as built and loaded: status and `mlxt info`, the MLXT_KERNELS switch,
the fallback (one warning, MLX's ops) when the extension cannot be used, and bitwise equal
results from every instruction-set variant (MLXT_KERNELS_ISA)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import warnings

import mlx.core as mx
import numpy as np
import pytest

from kernel_utils import native_kernels  # noqa: F401
from mlxt import kernels
from mlxt.cli import main

PROBE = """
import hashlib, sys
import mlxt, mlx.core as mx, numpy as np
from mlxt import kernels
assert kernels.use_native(), kernels.status()
rng = np.random.default_rng(0)
x = mx.array(rng.standard_normal((37, 133)).astype(np.float32) * 4)
w, b = mx.array(rng.standard_normal(133).astype(np.float32)), mx.array(rng.standard_normal(133).astype(np.float32))
t = mx.array(rng.integers(0, 133, 37).astype(np.int32))
outs = [kernels.layer_norm(x, w, b, 1e-5), kernels.softmax(x.reshape(1, 37, 133), "causal"),
        kernels.gelu(x), kernels.gelu_tanh(x), kernels.silu(x), kernels.cross_entropy(x, t, 0.1),
        mx.grad(lambda a: (kernels.layer_norm(a, w, b, 1e-5) * x).sum())(x),
        mx.grad(lambda a: (kernels.softmax(a, None) * x).sum())(x),
        mx.grad(lambda a: (kernels.gelu(a) * x).sum())(x),
        mx.grad(lambda a: kernels.cross_entropy(a, t, 0.1).sum())(x),
        kernels._lib.dropout(x, mx.array(np.array([1, 2], dtype=np.uint32)), 0.3),
        *kernels.adamw(x, x * 0.5, x * 0.1, x * x, mx.array([0.99, 0.9, 0.1, 0.98, 0.02, 0.01, 1.3, 1e-8])),
        kernels._lib.packed_linear(x, kernels.pack_weight(mx.concatenate([x, x])[:70] * 0.5), b[:70], 70),
        kernels._lib.packed_linear(mx.concatenate([x] * 5, axis=1), kernels.pack_weight(mx.concatenate([x] * 5, axis=1)), None, 37)]
mx.eval(outs)
outs += list(kernels.top_k(np.array(x), 7)) + list(kernels.log_norm(np.array(x)))
print(kernels.status()["isa"], hashlib.sha256(b"".join(np.array(o).tobytes() for o in outs)).hexdigest())
"""


def probe(isa: str | None) -> tuple[str, str]:
    env = dict(os.environ)
    env.pop("MLXT_KERNELS_ISA", None)
    if isa:
        env["MLXT_KERNELS_ISA"] = isa
    out = subprocess.run([sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, check=True)
    isa_used, digest = out.stdout.split()
    return isa_used, digest


def test_status_lists_the_active_kernels():
    st = kernels.status()
    assert st["active"] and st["reason"] is None
    assert st["isa"] in ("avx512", "avx2", "generic")
    assert st["threads"] >= 1
    assert set(st["kernels"]) == set(kernels.KERNELS)


def test_info_reports_the_kernels(capsys, monkeypatch):
    assert main(["info", "--no-bench", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["kernels"]["active"] and "layer_norm" in info["kernels"]["kernels"]
    assert main(["info", "--no-bench"]) == 0
    assert "kernels         native (" in capsys.readouterr().out
    monkeypatch.setenv("MLXT_KERNELS", "0")
    assert main(["info", "--no-bench"]) == 0
    assert "kernels         off, MLX's ops (disabled by MLXT_KERNELS=0)" in capsys.readouterr().out


def test_every_instruction_set_gives_the_same_bits():
    default_isa, default = probe(None)
    generic_isa, generic = probe("generic")
    assert generic_isa == "generic"
    assert generic == default, f"{default_isa} and generic kernels differ"


@pytest.mark.parametrize("breakage", ["not importable", "other mlx version"])
def test_falls_back_with_one_warning(breakage, monkeypatch):
    monkeypatch.setattr(kernels, "_lib", None)
    monkeypatch.setattr(kernels, "_reason", None)
    monkeypatch.setattr(kernels, "_warned", False)
    if breakage == "not importable":
        monkeypatch.setitem(sys.modules, "mlxt.kernels._ext", None)
    else:
        monkeypatch.setattr(mx, "__version__", "0.0.1")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert not kernels.use_native() and not kernels.use_native()
    assert len(caught) == 1 and issubclass(caught[0].category, kernels.KernelsWarning)
    message = str(caught[0].message)
    assert "\n" not in message and message.startswith("mlxt: native CPU kernels unavailable: ")
    assert ("not built or not loadable" if breakage == "not importable" else "mlx 0.0.1") in message
    status = kernels.status()
    assert not status["active"] and status["reason"] in message
    x = mx.array(np.linspace(-3, 3, 12, dtype=np.float32).reshape(3, 4))
    w, b = mx.ones((4,)), mx.zeros((4,))
    assert np.array_equal(np.array(kernels.layer_norm(x, w, b, 1e-5)), np.array(mx.fast.layer_norm(x, w, b, 1e-5)))
    monkeypatch.undo()
    kernels._reason = None  # reload for the next tests
    assert kernels.use_native()



def test_training_step_is_bitwise_equal_across_kernel_thread_counts():
    """A whole training step of a small LM (every kernel, forward and backward, and AdamW's)."""
    from mlx.utils import tree_flatten

    from mlxt.model import ModelConfig, build_model
    from mlxt.train.adamw import AdamW
    from mlxt.train.step import TrainStep

    # large enough that every kernel splits its rows into several tasks
    config = ModelConfig(kind="lm", vocab_size=600, d_model=64, num_heads=2, num_encoder_layers=0,
                         num_decoder_layers=2, d_ff=256, dropout=0.1, activation="gelu", norm_first=True,
                         positional="learned", max_len=32, tie_output=True)
    rng = np.random.default_rng(0)
    batch = {"inputs": rng.integers(1, 600, (32, 32)).astype(np.int32),
             "targets": rng.integers(0, 600, (32, 32)).astype(np.int32)}
    results = []
    for threads in (1, 3):
        kernels.set_num_threads(threads)
        mx.random.seed(0)
        model = build_model(config)
        step = TrainStep(model, AdamW(learning_rate=1e-2), smoothing=0.1, clip_norm=1.0, compile=False)
        for _ in range(2):
            loss, count, norm = step([batch])
            mx.eval(loss, step.state)
        results.append(b"".join(np.array(v).tobytes() for _, v in tree_flatten(model.parameters())))
    assert results[0] == results[1]
