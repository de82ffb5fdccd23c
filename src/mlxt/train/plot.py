"""``curves.png``: training/validation loss and learning rate against step, from metrics.jsonl."""

from __future__ import annotations

from pathlib import Path

from mlxt.errors import MlxtError
from mlxt.train.metrics import read_metrics


def plot_curves(run_dir: str | Path, out: str | Path | None = None) -> Path:
    run_dir = Path(run_dir)
    path = run_dir / "metrics.jsonl"
    if not path.exists():
        raise MlxtError(f"{path}: not found (is {run_dir} a run directory?)")
    records = read_metrics(path)
    train = [r for r in records if r.get("split") == "train" and isinstance(r.get("loss"), (int, float))]
    valid = [r for r in records if r.get("split") == "valid" and isinstance(r.get("valid_loss"), (int, float))]
    if not train and not valid:
        raise MlxtError(f"{path}: no loss records to plot")

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax_loss, ax_lr) = plt.subplots(2, 1, figsize=(8, 7), sharex=True,
                                         gridspec_kw={"height_ratios": [3, 1.4]})
    if train:
        ax_loss.plot([r["step"] for r in train], [r["loss"] for r in train], label="train loss", lw=1)
    if valid:
        ax_loss.plot([r["step"] for r in valid], [r["valid_loss"] for r in valid], "o-", label="valid loss", lw=1.5)
        bleu = [r for r in valid if isinstance(r.get("bleu"), (int, float))]
        if bleu:
            ax_bleu = ax_loss.twinx()
            ax_bleu.plot([r["step"] for r in bleu], [r["bleu"] for r in bleu], "s--", color="tab:green",
                         label="valid BLEU", lw=1)
            ax_bleu.set_ylabel("BLEU")
            ax_bleu.legend(loc="upper center")
    ax_loss.set_ylabel("loss")
    ax_loss.set_title(run_dir.resolve().name)
    ax_loss.grid(alpha=0.3)
    ax_loss.legend(loc="upper right")
    lr = [r for r in train if isinstance(r.get("lr"), (int, float))]
    ax_lr.plot([r["step"] for r in lr], [r["lr"] for r in lr], color="tab:red", lw=1)
    ax_lr.set_ylabel("learning rate")
    ax_lr.set_xlabel("step")
    ax_lr.grid(alpha=0.3)
    fig.tight_layout()
    out = Path(out) if out else run_dir / "curves.png"
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(out, dpi=110)
    except OSError as e:
        raise MlxtError(f"{out}: cannot write the plot ({e.strerror or e})") from None
    finally:
        plt.close(fig)
    return out
