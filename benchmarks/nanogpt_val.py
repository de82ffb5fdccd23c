"""nanoGPT's validation-loss estimate for an mlxt run on tiny Shakespeare, computed exactly as
`nanogpt_torch.py` computes it for the PyTorch reference: the last 10% of ``input.txt``
(nanoGPT's split), ``iters`` batches of 12 blocks of 64 characters at random offsets drawn by a
fixed numpy seed (the same offsets in both scripts), mean of the per-batch mean cross-entropies
(nanoGPT's ``estimate_loss`` with ``eval_iters = 200``). Also prints the loss over the whole
validation text in consecutive blocks.

    .venv/bin/python benchmarks/nanogpt_val.py runs/shakespeare-nanogpt [--checkpoint last]
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import numpy as np

DEFAULT_TEXT = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "tinyshakespeare" / "input.txt"


def shakespeare_path() -> Path:
    root = os.environ.get("MLXT_SHARED_DATA")
    return Path(root) / "tinyshakespeare" / "input.txt" if root else DEFAULT_TEXT


def split_text(text: str) -> tuple[str, str]:
    """nanoGPT's prepare.py: first 90% of the characters train, the rest validation."""
    n = len(text)
    return text[: int(n * 0.9)], text[int(n * 0.9):]


def estimate_offsets(length: int, block: int = 64, batch: int = 12, iters: int = 200, seed: int = 2000) -> np.ndarray:
    """(iters, batch) random start offsets, as nanoGPT's ``get_batch`` draws them."""
    return np.random.default_rng(seed).integers(0, length - block, size=(iters, batch))


def consecutive_blocks(length: int, block: int = 64) -> np.ndarray:
    """Starts of non-overlapping blocks covering the text (targets shifted by one)."""
    return np.arange(0, length - block - 1, block)


def gather(ids: np.ndarray, starts: np.ndarray, block: int = 64) -> tuple[np.ndarray, np.ndarray]:
    idx = starts[:, None] + np.arange(block)[None, :]
    return ids[idx], ids[idx + 1]


def evaluate_mlxt(run_dir: str, checkpoint: str, iters: int) -> dict:
    import mlxt  # noqa: F401  (first: routes MLX to the fast BLAS)
    import mlx.core as mx
    import mlx.nn as nn

    from mlxt.train.rundir import load_run

    run = load_run(run_dir, checkpoint)
    tok = run.tokenizers["text"]
    _, val = split_text(shakespeare_path().read_text(encoding="utf-8"))
    ids = np.array(tok.encode(val), dtype=np.int32)
    block = run.config.max_len

    def loss(starts: np.ndarray) -> float:
        x, y = gather(ids, starts, block)
        logits = run.model(mx.array(x))
        return nn.losses.cross_entropy(logits, mx.array(y), reduction="mean").item()

    est = [loss(row) for row in estimate_offsets(len(ids), block, 12, iters)]
    starts = consecutive_blocks(len(ids), block)
    full = [loss(starts[i:i + 64]) * len(starts[i:i + 64]) for i in range(0, len(starts), 64)]
    return {"val_loss_estimate": float(np.mean(est)), "eval_iters": iters,
            "val_loss_full": float(np.sum(full) / len(starts))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir")
    parser.add_argument("--checkpoint", default="last")
    parser.add_argument("--eval-iters", type=int, default=200)
    args = parser.parse_args()
    print(json.dumps(evaluate_mlxt(args.run_dir, args.checkpoint, args.eval_iters)))


if __name__ == "__main__":
    main()
