"""mlxt's native AdamW update: bitwise against MLX's `optim.AdamW` (bias-corrected), close to
PyTorch's `torch.optim.AdamW`, the same for every thread count, inside a compiled train step,
with buffers reused or not, and MLX's path off the kernels; checkpoints see MLX's state.
The train step's whole update (divide by the token count, clip the global norm, AdamW on every
parameter: `AdamW.update_clipped`) against MLX's ops and PyTorch's `clip_grad_norm_` + AdamW."""

from __future__ import annotations

import mlx.core as mx
import mlx.nn as nn
import mlx.optimizers as optim
import numpy as np
import pytest
from mlx.utils import tree_flatten, tree_map

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
    hyper, one = mx.zeros((8,)), mx.array(1.0)
    with pytest.raises(ValueError, match="parameter's shape"):
        kernels._lib.adamw([a], [mx.zeros((5,))], [a], [a], hyper, one, one, 0.0)
    with pytest.raises(ValueError, match="same length"):
        kernels._lib.adamw([a, a], [a], [a, a], [a, a], hyper, one, one, 0.0)
    with pytest.raises(ValueError, match="no parameters"):
        kernels._lib.adamw([], [], [], [], hyper, one, one, 0.0)
    with pytest.raises(ValueError, match="hyper must have shape"):
        kernels._lib.adamw([a], [a], [a], [a], mx.zeros((7,)), one, one, 0.0)
    with pytest.raises(ValueError, match="float32"):
        kernels._lib.adamw([a.astype(mx.float16)], [a], [a], [a], hyper, one, one, 0.0)
    with pytest.raises(ValueError, match="max_norm"):
        kernels._lib.adamw([a], [a], [a], [a], hyper, one, one, -1.0)
    with pytest.raises(ValueError, match="count must be a single number"):
        kernels._lib.adamw([a], [a], [a], [a], hyper, a, one, 0.0)
    with pytest.raises(ValueError, match="float32"):
        kernels._lib.grad_norm([a.astype(mx.float16)], one)


# ---- the train step's update: normalise, clip, AdamW -------------------------------------

class Net(nn.Module):
    """Enough parameters for several update nodes (`kernels.ADAMW_GROUP`), with products whose
    weight gradients come out transposed and parameters that are split into several chunks."""

    def __init__(self):
        super().__init__()
        self.layers = [nn.Linear(24, 40), nn.Linear(40, 40, bias=False), *[nn.Linear(40, 40) for _ in range(5)],
                       nn.Linear(40, 200 * 90)]
        self.norm = nn.LayerNorm(40)

    def __call__(self, x):
        for layer in self.layers[:-1]:
            x = nn.gelu(self.norm(layer(x)))
        return self.layers[-1](x)


def gradient_batches(steps, seed=0):
    rng = np.random.default_rng(seed)
    return [(mx.array(rng.standard_normal((6, 24)).astype(np.float32)),
             mx.array(rng.standard_normal((6, 200 * 90)).astype(np.float32)), float(rng.integers(1, 50)))
            for _ in range(steps)]


def mlx_ops_update(opt, model, grads, count, max_norm):
    """The same update done by MLX's ops (`mlxt.train.step`'s path off the kernels)."""
    grads = tree_map(lambda g: g / mx.maximum(count, 1.0), grads)
    if max_norm > 0:
        grads, norm = optim.clip_grad_norm(grads, max_norm)
    else:
        norm = mx.sqrt(sum(mx.sum(g * g) for _, g in tree_flatten(grads)))
    opt.update(model, grads)
    return norm


def train(update, max_norm, steps=4, compile=False):
    """``steps`` updates of a fresh `Net` with the gradients of its initial parameters at a few
    batches (fixed gradients, so the two paths' results are not fed back through the model)."""
    mx.random.seed(3)
    model = Net()
    loss_and_grad = nn.value_and_grad(model, lambda x, y: mx.sum((model(x) - y) ** 2))
    batches = [(loss_and_grad(x, y)[1], mx.array(count)) for x, y, count in gradient_batches(steps)]
    opt = AdamW(1e-2, betas=(0.9, 0.98), eps=1e-9, weight_decay=0.05)
    state = [model.state, opt.state]

    def step(grads, count):
        return update(opt, model, grads, count, max_norm)

    if compile:
        step = mx.compile(step, inputs=state, outputs=state)
    norms = []
    for grads, count in batches:
        norms.append(step(grads, count))
        mx.eval(norms[-1], state)
    return [float(n) for n in norms], {k: np.array(v) for k, v in tree_flatten(model.parameters())}, opt


def fused_update(opt, model, grads, count, max_norm):
    norm = opt.update_clipped(model, grads, count, max_norm)
    assert norm is not None, "the native update did not run"
    return norm


def test_update_clipped_without_clipping_is_bitwise_mlx_ops():
    norms, params, opt = train(fused_update, 0.0)
    ref_norms, ref_params, ref_opt = train(mlx_ops_update, 0.0)
    np.testing.assert_allclose(norms, ref_norms, rtol=1e-5)
    for k in params:
        assert params[k].tobytes() == ref_params[k].tobytes(), k
    assert int(opt.state["step"]) == int(ref_opt.state["step"]) == 4


@pytest.mark.parametrize("compile", [False, True])
def test_update_clipped_with_clipping_matches_mlx_ops(compile):
    # max_norm below every step's norm, so each update is clipped
    norms, params, _ = train(fused_update, 0.5, compile=compile)
    ref_norms, ref_params, _ = train(mlx_ops_update, 0.5)
    assert min(ref_norms) > 0.5
    np.testing.assert_allclose(norms, ref_norms, rtol=1e-5)
    for k in params:
        np.testing.assert_allclose(params[k], ref_params[k], rtol=1e-6, atol=1e-7, err_msg=k)


def test_update_clipped_matches_torch():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(5)
    shapes = [(7, 300), (300,), (40000,), (3, 5, 11), (1,)] * 3
    params = [rng.standard_normal(s).astype(np.float32) for s in shapes]
    steps = [([rng.standard_normal(s).astype(np.float32) * 3 for s in shapes], float(c)) for c in (5, 17, 1, 9)]
    ours = [mx.array(p) for p in params]
    model = nn.Module()
    model.params = ours
    opt = AdamW(3e-3, betas=(0.9, 0.99), eps=1e-8, weight_decay=0.1)
    tp = [torch.tensor(p.copy(), requires_grad=True) for p in params]
    topt = torch.optim.AdamW(tp, lr=3e-3, betas=(0.9, 0.99), eps=1e-8, weight_decay=0.1)
    for grads, count in steps:
        norm = opt.update_clipped(model, {"params": [mx.array(g) for g in grads]}, mx.array(count), 2.0)
        mx.eval(norm, model.parameters())
        for t, g in zip(tp, grads):
            t.grad = torch.tensor(g / max(count, 1.0))
        torch_norm = torch.nn.utils.clip_grad_norm_(tp, 2.0)
        topt.step()
        np.testing.assert_allclose(float(norm), float(torch_norm), rtol=1e-5)
    for p, t in zip(model.params, tp):
        np.testing.assert_allclose(np.array(p), t.detach().numpy(), rtol=1e-5, atol=1e-6)


def test_update_group_same_for_every_thread_count():
    rng = np.random.default_rng(6)
    shapes = [(300, 257), (5,), (17, 3), (70000,)] * 3
    p, g, m = ([mx.array(rng.standard_normal(s).astype(np.float32)) for s in shapes] for _ in range(3))
    v = [mx.array(rng.random(s).astype(np.float32)) for s in shapes]
    g = [x.T if x.ndim == 2 else x for x in g]  # transposed gradients are read through a copy
    g = [x.T for x in g]
    hyper = mx.array([0.999, 0.9, 0.1, 0.98, 0.02, 0.01, 1.2, 1e-8], mx.float32)

    def update():
        new_p, new_m, new_v, norm = kernels.adamw_group(p, g, m, v, hyper, mx.array(7.0), 0.3)
        return [*new_p, *new_m, *new_v, norm]

    assert_same_for_thread_counts(update)


def test_update_group_reads_strided_and_broadcast_inputs():
    rng = np.random.default_rng(7)
    base = mx.array(rng.standard_normal((64, 48)).astype(np.float32))
    p = [mx.array(rng.standard_normal((48, 32)).astype(np.float32)), mx.array(rng.standard_normal((16,)).astype(np.float32))]
    g = [base.T[:, ::2], base[3, ::3]]  # strided views
    m = [mx.zeros((48, 32)), mx.broadcast_to(mx.array(0.5), (16,))]
    v = [mx.ones((48, 32)), mx.full((16,), 0.25)]
    hyper = mx.array([0.999, 0.9, 0.1, 0.98, 0.02, 0.01, 1.2, 1e-8], mx.float32)
    dense = lambda xs: [mx.array(np.array(x)) for x in xs]  # noqa: E731
    got = kernels.adamw_group(p, g, m, v, hyper, mx.array(3.0), 0.0)
    want = kernels.adamw_group(dense(p), dense(g), dense(m), dense(v), hyper, mx.array(3.0), 0.0)
    for a, b in zip([*got[0], *got[1], *got[2]], [*want[0], *want[1], *want[2]]):
        assert np.array(a).tobytes() == np.array(b).tobytes()
    # a dense transposed gradient is summed in memory order, so the norm may differ in the last bit
    np.testing.assert_allclose(float(got[3]), float(want[3]), rtol=1e-6)
    expected = np.sqrt(sum(np.sum((np.array(x) / 3.0) ** 2) for x in g))
    np.testing.assert_allclose(float(got[3]), expected, rtol=1e-6)


def test_update_clipped_declines_off_the_kernels_and_the_train_step_falls_back(monkeypatch):
    monkeypatch.setenv("MLXT_KERNELS", "0")
    model = nn.Linear(3, 2)
    opt = AdamW(1e-2)
    assert opt.update_clipped(model, tree_map(mx.ones_like, model.trainable_parameters()), mx.array(2.0)) is None
    assert int(opt.state.get("step", 0)) == 0  # nothing was done
    from mlxt.train.step import normalise_clip_update

    before = np.array(model.weight)
    norm = normalise_clip_update(opt, model, tree_map(mx.ones_like, model.trainable_parameters()), mx.array(2.0), 1.0)
    np.testing.assert_allclose(float(norm), np.sqrt(8 * 0.25), rtol=1e-6)
    assert not np.array_equal(np.array(model.weight), before)
