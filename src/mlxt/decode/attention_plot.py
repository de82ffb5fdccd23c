"""Drawing a cross-attention map (target tokens down, source tokens across) to a PNG."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def token_labels(tokenizer, ids: list[int], eos_id: int) -> list[str]:
    """A readable label per token id (spaces shown as ``␣``, end-of-sentence as ``</s>``)."""
    labels = []
    for i in ids:
        if i == eos_id:
            labels.append("</s>")
            continue
        text = tokenizer.decode([i])
        labels.append(text.replace(" ", "␣") if text else f"<{i}>")
    return labels


def plot_attention(weights: np.ndarray, src_labels: list[str], tgt_labels: list[str], path: str | Path,
                   title: str = "cross-attention") -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows, cols = weights.shape
    fig, ax = plt.subplots(figsize=(max(5.5, 0.35 * cols + 2), max(3.5, 0.35 * rows + 1.5)))
    image = ax.imshow(weights, cmap="viridis", aspect="auto", vmin=0.0, vmax=float(max(weights.max(), 1e-9)))
    ax.set_xticks(np.arange(cols), labels=src_labels, rotation=90, fontsize=8)
    ax.set_yticks(np.arange(rows), labels=tgt_labels, fontsize=8)
    ax.set_xlabel("source")
    ax.set_ylabel("target")
    ax.set_title(title, fontsize=9)
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
