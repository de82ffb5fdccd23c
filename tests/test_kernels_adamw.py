"""mlxt's native AdamW update: bitwise against MLX's `optim.AdamW` (bias-corrected), close to
PyTorch's `torch.optim.AdamW`, the same for every thread count, inside a compiled train step,
with buffers reused or not, and MLX's path off the kernels; checkpoints see MLX's state."""

from __future__ import annotations

import mlx.core as mx
import mlx.nn as nn
import mlx.optimizers as optim
import numpy as np
import pytest
from mlx.utils import tree_flatten

from kernel_utils import assert_same_for_thread_counts, native_kernels  # noqa: F401
from mlxt import kernels
from mlxt.train.adamw import AdamW

SHAPES = [(1,), (15,), (17,), (3, 7, 33), (40000,), (256, 1024)]


def params_and_grads(shapes, seed=0, steps=3):
    rng = np.random.default_rng(seed)
    params = {f"p{i}": rng.standard_normal(s).astype(np.float32) for i, s in enumerate(shapes)}
    grads = [{k: (rng.standard_normal(v.shape) * 10.0 ** rng.uniform(-6, 1)).astype(np.float32)
              for k, v in params.items()} for _ in range(steps)]
    return params, grads


def run(opt, params, grads):
    p = {k: mx.array(v) for k, v in params.items()}
    for g in grads:
        p = opt.apply_gradients({k: mx.array(v) for k, v in g.items()}, p)
        mx.eval(p, opt.state)
    return {k: np.array(v) for k, v in p.items()}, opt


def schedule(step):
    return 1e-2 * mx.minimum(1.0, (step + 1) / 2.0)


@pytest.mark.parametrize("lr", [1e-3, schedule])
@pytest.mark.parametrize("wd", [0.0, 0.1])
def test_bitwise_equal_to_mlx_adamw(lr, wd):
    params, grads = params_and_grads(SHAPES)
    ours, opt = run(AdamW(lr, betas=(0.9, 0.98), eps=1e-9, weight_decay=wd), params, grads)
    theirs, ref = run(optim.AdamW(lr, betas=[0.9, 0.98], eps=1e-9, weight_decay=wd, bias_correction=True),
                      params, grads)
    for k in params:
        assert ours[k].tobytes() == theirs[k].tobytes(), k
        for moment in ("m", "v"):
            assert np.array(opt.state[k][moment]).tobytes() == np.array(ref.state[k][moment]).tobytes()
    assert int(opt.state["step"]) == len(grads)


def test_matches_torch_adamw():
    torch = pytest.importorskip("torch")
    params, grads = params_and_grads([(5, 33), (64,)], seed=1, steps=5)
    ours, _ = run(AdamW(3e-3, betas=(0.9, 0.99), eps=1e-8, weight_decay=0.1), params, grads)
    tp = [torch.tensor(v.copy(), requires_grad=True) for v in params.values()]
    topt = torch.optim.AdamW(tp, lr=3e-3, betas=(0.9, 0.99), eps=1e-8, weight_decay=0.1)
    for g in grads:
        for t, v in zip(tp, g.values()):
            t.grad = torch.tensor(v)
        topt.step()
    for k, t in zip(params, tp):
        np.testing.assert_allclose(ours[k], t.detach().numpy(), rtol=2e-6, atol=2e-7)


def test_same_for_every_thread_count():
    rng = np.random.default_rng(2)
    p, g, m = (mx.array(rng.standard_normal((300, 257)).astype(np.float32)) for _ in range(3))
    v = mx.array(rng.random((300, 257)).astype(np.float32))
    hyper = mx.array([0.999, 0.9, 0.1, 0.98, 0.02, 0.01, 1.2, 1e-8], mx.float32)
    assert_same_for_thread_counts(lambda: kernels.adamw(p, g, m, v, hyper))


def test_outputs_reuse_donated_buffers_and_inputs_survive_when_held():
    rng = np.random.default_rng(3)
    p0 = rng.standard_normal(4096).astype(np.float32)
    p, g, m, v = mx.array(p0), mx.array(p0 * 0.5), mx.zeros(4096), mx.zeros(4096)
    hyper = mx.array([1.0, 0.9, 0.1, 0.999, 0.001, 0.1, 31.6, 1e-8], mx.float32)
    new_p, new_m, new_v = kernels.adamw(p, g, m, v, hyper)
    mx.eval(new_p, new_m, new_v)
    # p, m and v are still held here, so they were not overwritten
    assert np.array_equal(np.array(p), p0) and not np.any(np.array(m)) and not np.any(np.array(v))
    assert not np.array_equal(np.array(new_p), p0)


def test_inside_a_compiled_train_step_and_off_the_kernels(monkeypatch):
    # the products stay on OpenBLAS both times, so only the optimizer update differs
    monkeypatch.setenv("MLXT_GEMM", "openblas")

    def train(native: bool):
        monkeypatch.setenv("MLXT_KERNELS", "1" if native else "0")
        mx.random.seed(0)
        model = nn.Sequential(nn.Linear(16, 32), nn.ReLU(), nn.Linear(32, 4))
        opt = AdamW(1e-2, betas=(0.9, 0.99), weight_decay=0.1)
        x, y = mx.random.normal((8, 16)), mx.random.normal((8, 4))
        loss_and_grad = nn.value_and_grad(model, lambda x, y: mx.mean((model(x) - y) ** 2))
        state = [model.state, opt.state]

        def step(x, y):
            loss, grads = loss_and_grad(x, y)
            opt.update(model, grads)
            return loss

        step = mx.compile(step, inputs=state, outputs=state)
        losses = []
        for _ in range(5):
            losses.append(step(x, y))
            mx.eval(state, losses[-1])
        return [float(l) for l in losses], dict(tree_flatten(model.parameters()))

    native_losses, native_params = train(True)
    mlx_losses, mlx_params = train(False)
    assert native_losses == mlx_losses and native_losses[-1] < native_losses[0]
    for k in native_params:
        assert np.array(native_params[k]).tobytes() == np.array(mlx_params[k]).tobytes(), k


def test_bad_arguments_are_refused():
    a = mx.zeros((4,))
    hyper = mx.zeros((8,))
    with pytest.raises(ValueError, match="same shape"):
        kernels._lib.adamw(a, mx.zeros((5,)), a, a, hyper)
    with pytest.raises(ValueError, match="hyper must have shape"):
        kernels._lib.adamw(a, a, a, a, mx.zeros((7,)))
    with pytest.raises(ValueError, match="float32"):
        kernels._lib.adamw(a.astype(mx.float16), a, a, a, hyper)
