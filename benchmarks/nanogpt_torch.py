"""PyTorch eager reference of nanoGPT's CPU recipe on tiny Shakespeare, for a side-by-side run
with ``mlxt train --config configs/shakespeare-nanogpt.toml``.

Follows nanoGPT's ``train.py`` with ``config/train_shakespeare_char.py`` and its README's CPU
settings: character vocabulary of ``input.txt`` (65), first 90% train / last 10% val, 4 layers,
4 heads, 128 dims, block 64, batch 12, 2000 iterations, AdamW lr 1e-3 with 100 warmup iterations
and cosine decay to 1e-4 at 2000, betas (0.9, 0.99), weight decay 0.1 on matrices only, gradient
clip 1.0, dropout 0, normal(0.02) init with scaled residual projections. The model is
`torch_models.TorchGPT` (bias-free linears, exact GELU, learned positions, tied output).

Only the training loop and one final validation estimate are timed: nanoGPT's ``estimate_loss``
(mean over ``eval_iters = 200`` random val batches), with the same offsets that
`nanogpt_val.py` uses for an mlxt run, plus the loss over the whole validation text.

    .venv/bin/python benchmarks/nanogpt_torch.py [--iters 2000] [--out runs/nanogpt-torch.json]
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from nanogpt_val import consecutive_blocks, estimate_offsets, gather, shakespeare_path, split_text
from torch_models import TorchGPT

BLOCK, BATCH, LAYERS, HEADS, DIM = 64, 12, 4, 4, 128
LR, MIN_LR, WARMUP, DECAY_ITERS = 1e-3, 1e-4, 100, 2000


def learning_rate(it: int) -> float:
    """nanoGPT's ``get_lr``: linear warmup, cosine decay to ``MIN_LR`` at ``DECAY_ITERS``."""
    if it < WARMUP:
        return LR * (it + 1) / (WARMUP + 1)
    if it > DECAY_ITERS:
        return MIN_LR
    ratio = (it - WARMUP) / (DECAY_ITERS - WARMUP)
    return MIN_LR + 0.5 * (1.0 + math.cos(math.pi * ratio)) * (LR - MIN_LR)


def nanogpt_init(model: TorchGPT) -> None:
    """normal(0, 0.02) for linears and embeddings; residual projections std 0.02 / sqrt(2 * layers)."""
    for name, p in model.named_parameters():
        if p.dim() == 2:
            std = 0.02 / math.sqrt(2 * LAYERS) if name.endswith(("proj.weight", "fc_out.weight")) else 0.02
            nn.init.normal_(p, 0.0, std)


def optimizer(model: nn.Module) -> torch.optim.AdamW:
    decay = [p for p in model.parameters() if p.dim() >= 2]
    rest = [p for p in model.parameters() if p.dim() < 2]
    groups = [{"params": decay, "weight_decay": 0.1}, {"params": rest, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=LR, betas=(0.9, 0.99))


@torch.no_grad()
def validation(model: TorchGPT, val: np.ndarray, eval_iters: int) -> dict:
    model.eval()

    def loss(starts: np.ndarray) -> float:
        x, y = gather(val, starts, BLOCK)
        logits = model(torch.from_numpy(x).long())
        return F.cross_entropy(logits.flatten(0, 1), torch.from_numpy(y).long().flatten()).item()

    est = [loss(row) for row in estimate_offsets(len(val), BLOCK, BATCH, eval_iters)]
    starts = consecutive_blocks(len(val), BLOCK)
    full = [loss(starts[i:i + 64]) * len(starts[i:i + 64]) for i in range(0, len(starts), 64)]
    model.train()
    return {"val_loss_estimate": float(np.mean(est)), "eval_iters": eval_iters,
            "val_loss_full": float(np.sum(full) / len(starts))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iters", type=int, default=2000)
    parser.add_argument("--eval-iters", type=int, default=200)
    parser.add_argument("--seed", type=int, default=1337)
    parser.add_argument("--out", default="")
    args = parser.parse_args()
    t_start = time.time()
    torch.manual_seed(args.seed)
    text = shakespeare_path().read_text(encoding="utf-8")
    chars = sorted(set(text))
    index = {c: i for i, c in enumerate(chars)}
    train_text, val_text = split_text(text)
    train = np.array([index[c] for c in train_text], dtype=np.int64)
    val = np.array([index[c] for c in val_text], dtype=np.int64)

    model = TorchGPT(len(chars), DIM, HEADS, LAYERS, 4 * DIM, BLOCK)
    nanogpt_init(model)
    opt = optimizer(model)
    model.train()
    t0 = time.time()
    for it in range(args.iters):
        for group in opt.param_groups:
            group["lr"] = learning_rate(it)
        ix = torch.randint(len(train) - BLOCK, (BATCH,))
        x = torch.stack([torch.from_numpy(train[i:i + BLOCK]) for i in ix])
        y = torch.stack([torch.from_numpy(train[i + 1:i + 1 + BLOCK]) for i in ix])
        loss = F.cross_entropy(model(x).flatten(0, 1), y.flatten())
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        if it % 100 == 0 or it == args.iters - 1:
            print(f"iter {it}: loss {loss.item():.4f}, {time.time() - t0:.1f} s", flush=True)
    train_s = time.time() - t0
    t1 = time.time()
    result = validation(model, val, args.eval_iters)
    result.update(framework="torch " + torch.__version__, threads=torch.get_num_threads(), iters=args.iters,
                  train_seconds=round(train_s, 2), eval_seconds=round(time.time() - t1, 2),
                  total_seconds=round(time.time() - t_start, 2))
    print(json.dumps(result))
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
