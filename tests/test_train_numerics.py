"""Training numerics against independent references: label-smoothed loss vs PyTorch, schedules vs
closed forms, clipping vs numpy, gradient accumulation vs one full batch."""

from __future__ import annotations

import math

import mlx.core as mx
import mlx.nn as nn
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from mlx.utils import tree_flatten

from mlxt.model import ModelConfig, build_model
from mlxt.train.config import TrainConfig
from mlxt.train.losses import label_smoothed_cross_entropy, squared_error
from mlxt.train.schedules import make_schedule
from mlxt.train.step import TrainStep, batch_loss, make_optimizer, to_mx


@pytest.mark.parametrize("smoothing", [0.0, 0.1, 0.3])
def test_label_smoothed_loss_matches_torch(rng, smoothing):
    logits = rng.standard_normal((3, 7, 11)).astype(np.float32) * 3
    targets = rng.integers(1, 11, (3, 7)).astype(np.int32)
    targets[0, 4:] = 0  # padding
    targets[2, 1:] = 0
    total, count = label_smoothed_cross_entropy(mx.array(logits), mx.array(targets), smoothing, pad_id=0)
    ref = F.cross_entropy(torch.tensor(logits).reshape(-1, 11), torch.tensor(targets, dtype=torch.long).reshape(-1),
                          label_smoothing=smoothing, ignore_index=0, reduction="sum")
    assert count.item() == int((targets != 0).sum())
    np.testing.assert_allclose(total.item(), ref.item(), rtol=1e-5)


@pytest.mark.parametrize("smoothing", [0.0, 0.1])
def test_label_smoothed_loss_gradient_matches_torch(rng, smoothing):
    """The hand-written gradient (softmax - smoothed one-hot) equals PyTorch autograd."""
    logits = rng.standard_normal((2, 9, 13)).astype(np.float32) * 3
    targets = rng.integers(1, 13, (2, 9)).astype(np.int32)
    targets[1, 5:] = 0
    weights = rng.standard_normal((2, 9, 13)).astype(np.float32)  # a non-trivial upstream graph

    def mlx_loss(x):
        return label_smoothed_cross_entropy(x * mx.array(weights), mx.array(targets), smoothing)[0]

    grad = mx.grad(mlx_loss)(mx.array(logits))
    x = torch.tensor(logits, requires_grad=True)
    F.cross_entropy((x * torch.tensor(weights)).reshape(-1, 13), torch.tensor(targets, dtype=torch.long).reshape(-1),
                    label_smoothing=smoothing, ignore_index=0, reduction="sum").backward()
    np.testing.assert_allclose(np.array(grad), x.grad.numpy(), rtol=1e-5, atol=1e-6)


def test_squared_error(rng):
    a, b = rng.standard_normal((2, 5, 3)).astype(np.float32), rng.standard_normal((2, 5, 3)).astype(np.float32)
    total, count = squared_error(mx.array(a), mx.array(b))
    np.testing.assert_allclose(total.item(), ((a - b) ** 2).sum(), rtol=1e-5)
    assert count.item() == 30


def _at(schedule, step: int) -> float:
    return schedule(mx.array(step)).item()


def test_schedules_closed_form():
    lr, warmup, total, min_lr = 2e-3, 10, 50, 1e-4
    noam = make_schedule("noam", lr, warmup)
    cosine = make_schedule("cosine", lr, warmup, total, min_lr)
    const = make_schedule("constant", lr, warmup)
    for step in [0, 3, 9, 10, 17, 49, 80]:
        n = step + 1  # MLX passes the count of updates already done
        assert _at(noam, step) == pytest.approx(lr * min(n / warmup, math.sqrt(warmup / n)), rel=1e-6)
        if n < warmup:
            expected = lr * n / warmup
        else:
            p = min((n - warmup) / (total - warmup), 1.0)
            expected = min_lr + 0.5 * (lr - min_lr) * (1 + math.cos(math.pi * p))
        assert _at(cosine, step) == pytest.approx(expected, rel=1e-5)
        assert _at(const, step) == pytest.approx(lr * min(n / warmup, 1.0), rel=1e-6)
    assert _at(noam, warmup - 1) == pytest.approx(lr)  # the peak is lr, at the end of warmup
    assert _at(cosine, total + 10) == pytest.approx(min_lr)


def _seq2seq(dropout=0.0) -> nn.Module:
    config = ModelConfig(kind="seq2seq", vocab_size=23, d_model=16, num_heads=2, num_encoder_layers=1,
                         num_decoder_layers=1, d_ff=32, dropout=dropout)
    return build_model(config)


def _batch(rng, rows: int, pad_from: list[int]) -> dict:
    src = rng.integers(4, 23, (rows, 6)).astype(np.int32)
    tgt = rng.integers(4, 23, (rows, 7)).astype(np.int32)
    for r, cut in enumerate(pad_from):
        tgt[r, cut:] = 0
        src[r, max(cut - 1, 1):] = 0
    tgt_in = np.concatenate([np.ones((rows, 1), np.int32), tgt[:, :-1]], axis=1)
    return {"src": src, "tgt_in": tgt_in, "tgt_out": tgt}


class _Capture:
    """Stands in for the optimizer: records the gradients the step would apply."""

    def __init__(self):
        self.state = {}

    def update(self, model, grads):
        self.grads = grads


def test_clipping_matches_numpy(rng):
    mx.random.seed(1)
    model = _seq2seq()
    batch = _batch(rng, 4, [7, 5, 3, 6])
    ref_fn = nn.value_and_grad(model, lambda b: (lambda s, n: s / n)(*batch_loss(model, b, 0.1)))
    _, ref = ref_fn(to_mx(batch))
    ref = {k: np.array(v) for k, v in tree_flatten(ref)}
    norm_ref = math.sqrt(sum(float((g.astype(np.float64) ** 2).sum()) for g in ref.values()))
    clip = norm_ref / 3  # make sure clipping is active
    capture = _Capture()
    _, _, norm = TrainStep(model, capture, 0.1, clip_norm=clip, compile=False)([batch])
    assert norm.item() == pytest.approx(norm_ref, rel=1e-5)
    for k, g in tree_flatten(capture.grads):
        np.testing.assert_allclose(np.array(g), ref[k] * clip / norm_ref, rtol=1e-4, atol=1e-7)
    clipped = math.sqrt(sum(float((np.array(g, np.float64) ** 2).sum()) for _, g in tree_flatten(capture.grads)))
    assert clipped == pytest.approx(clip, rel=1e-5)


def test_accumulation_equals_full_batch(rng):
    """Two half-batches with different token counts == one full batch (per-token normalisation):
    same summed loss, token count, gradient norm and clipped gradients handed to the optimizer."""
    full = _batch(rng, 6, [7, 2, 3, 7, 6, 4])
    halves = [{k: v[:3] for k, v in full.items()}, {k: v[3:] for k, v in full.items()}]
    results = []
    for micro in ([full], halves):
        mx.random.seed(5)
        model = _seq2seq()
        mx.eval(model.parameters())
        capture = _Capture()
        loss, count, norm = TrainStep(model, capture, smoothing=0.1, clip_norm=0.5, compile=False)(micro)
        results.append((loss.item(), count.item(), norm.item(), dict(tree_flatten(capture.grads))))
    (l1, c1, n1, g1), (l2, c2, n2, g2) = results
    assert c1 == c2 == int((full["tgt_out"] != 0).sum())
    assert l1 == pytest.approx(l2, rel=1e-5) and n1 == pytest.approx(n2, rel=1e-5)
    for k in g1:
        np.testing.assert_allclose(np.array(g1[k]), np.array(g2[k]), rtol=1e-4, atol=1e-7)
    # The halves hold different numbers of target tokens, so averaging per-half means would differ.
    counts = [int((h["tgt_out"] != 0).sum()) for h in halves]
    assert counts[0] != counts[1]


def test_accumulated_training_runs_compiled(rng):
    """The accumulation path also runs compiled and matches its eager run step for step."""
    full = _batch(rng, 6, [7, 2, 3, 7, 6, 4])
    halves = [{k: v[:3] for k, v in full.items()}, {k: v[3:] for k, v in full.items()}]
    out = []
    for compiled in (False, True):
        mx.random.seed(5)
        model = _seq2seq(dropout=0.1)
        mx.eval(model.parameters())
        model.train()
        opt = make_optimizer(TrainConfig(), make_schedule("constant", 1e-3))
        opt.init(model.trainable_parameters())
        step = TrainStep(model, opt, 0.1, 1.0, compile=compiled)
        losses = []
        for _ in range(3):
            loss, _, _ = step(halves)
            mx.eval(step.state, loss)
            losses.append(loss.item())
        out.append(losses)
    np.testing.assert_allclose(out[0], out[1], rtol=1e-5)
    assert out[0][2] < out[0][0]  # it learns


def test_compiled_step_matches_eager(rng):
    """The compiled step (with dropout) gives the same numbers as the plain one."""
    batch = _batch(rng, 4, [7, 5, 3, 6])
    out = []
    for compiled in (False, True):
        mx.random.seed(9)
        model = _seq2seq(dropout=0.2)
        mx.eval(model.parameters())
        model.train()
        opt = make_optimizer(TrainConfig(), make_schedule("noam", 1e-3, 4))
        opt.init(model.trainable_parameters())
        step = TrainStep(model, opt, 0.1, 1.0, compile=compiled)
        losses = []
        for _ in range(3):
            loss, _, _ = step([batch])
            mx.eval(step.state, loss)
            losses.append(loss.item())
        out.append(losses)
    np.testing.assert_allclose(out[0], out[1], rtol=1e-5)
