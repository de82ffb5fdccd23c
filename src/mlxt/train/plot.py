"""``curves.png``: training/validation loss and learning rate against step, from metrics.jsonl.

Each training record holds the mean loss over the steps since the record before it: usually
``log_every`` steps, but fewer for the record written when a run stops (or is interrupted) between
two log steps. A mean over a handful of steps is noisier and, late in training, lower than its
neighbours (the loss is still falling and the window is short), which drew a sharp drop at the
end of the line. Those records are drawn as separate hollow markers instead, and named as partial
in the legend. The legend sits above the axes so that it never covers a curve.
"""

from __future__ import annotations

from pathlib import Path

from mlxt.errors import MlxtError
from mlxt.train.metrics import read_metrics


def loss_windows(train: list[dict]) -> list[int | None]:
    """Steps averaged by each training record: its step minus the previous record's (the first
    counts from step 0); None where the step does not increase (a run resumed from an earlier
    checkpoint logs those steps again)."""
    windows, previous = [], 0
    for r in train:
        windows.append(r["step"] - previous if r["step"] > previous else None)
        previous = r["step"]
    return windows


def split_partial(train: list[dict]) -> tuple[list[dict], list[dict]]:
    """(records over a full window, records over fewer steps than the usual window)."""
    windows = loss_windows(train)
    known = sorted(w for w in windows if w is not None)
    if len(known) < 3:
        return train, []
    usual = known[len(known) // 2]
    partial = [w is not None and w < usual for w in windows]
    return ([r for r, p in zip(train, partial) if not p], [r for r, p in zip(train, partial) if p])


def draw_curves(train: list[dict], valid: list[dict], title: str):
    """The figure: losses (and valid BLEU on a right axis) above, the learning rate below."""
    import matplotlib.pyplot as plt

    fig, (ax_loss, ax_lr) = plt.subplots(2, 1, figsize=(8, 7), sharex=True,
                                         gridspec_kw={"height_ratios": [3, 1.4]})
    lines = []
    full, partial = split_partial(train)
    if full:
        lines += ax_loss.plot([r["step"] for r in full], [r["loss"] for r in full], lw=1, color="tab:blue",
                              label="train loss")
    if partial:
        lines += ax_loss.plot([r["step"] for r in partial], [r["loss"] for r in partial], "o", mfc="none",
                              color="tab:blue", label="train loss, partial window (fewer steps)")
    if valid:
        lines += ax_loss.plot([r["step"] for r in valid], [r["valid_loss"] for r in valid], "o-", lw=1.5,
                              color="tab:orange", label="valid loss")
        bleu = [r for r in valid if isinstance(r.get("bleu"), (int, float))]
        if bleu:
            ax_bleu = ax_loss.twinx()
            lines += ax_bleu.plot([r["step"] for r in bleu], [r["bleu"] for r in bleu], "s--", color="tab:green",
                                  label="valid BLEU (right axis)", lw=1)
            ax_bleu.set_ylabel("BLEU")
    ax_loss.set_ylabel("loss")
    ax_loss.grid(alpha=0.3)
    ax_loss.legend(handles=lines, loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=min(len(lines), 4),
                   frameon=False, fontsize="small")
    fig.suptitle(title)
    lr = [r for r in train if isinstance(r.get("lr"), (int, float))]
    ax_lr.plot([r["step"] for r in lr], [r["lr"] for r in lr], color="tab:red", lw=1)
    ax_lr.set_ylabel("learning rate")
    ax_lr.set_xlabel("step")
    ax_lr.grid(alpha=0.3)
    fig.tight_layout()
    return fig


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

    fig = draw_curves(train, valid, run_dir.resolve().name)
    out = Path(out) if out else run_dir / "curves.png"
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(out, dpi=110, bbox_inches="tight")
    except OSError as e:
        raise MlxtError(f"{out}: cannot write the plot ({e.strerror or e})") from None
    finally:
        plt.close(fig)
    return out
