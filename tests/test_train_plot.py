"""curves.png: a short last logging window is drawn apart, and the legend covers no data."""

from __future__ import annotations

import json

import matplotlib

matplotlib.use("Agg")

from mlxt.cli import main
from mlxt.train.plot import draw_curves, loss_windows, split_partial


def records(last_step=1195, log_every=25):
    steps = list(range(log_every, last_step, log_every)) + [last_step]
    train = [{"split": "train", "step": s, "loss": 8.0 - s / 300, "lr": 1e-3} for s in steps]
    valid = [{"split": "valid", "step": s, "valid_loss": 6.0 - s / 400, "bleu": s / 100} for s in (400, 800, last_step)]
    return train, valid


def test_the_short_last_window_is_partial():
    train, _ = records()
    assert loss_windows(train)[:2] == [25, 25] and loss_windows(train)[-1] == 20
    full, partial = split_partial(train)
    assert [r["step"] for r in partial] == [1195] and full[-1]["step"] == 1175 and len(full) == len(train) - 1
    exact, _ = records(last_step=1200)  # the run stopped on a log step: nothing is partial
    assert split_partial(exact)[1] == []
    resumed = train[:10] + train[5:]  # steps logged again after a resume count as full windows
    assert [r["step"] for r in split_partial(resumed)[1]] == [1195]


def test_legend_sits_outside_the_axes():
    train, valid = records()
    fig = draw_curves(train, valid, "run")
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    ax_loss = fig.axes[0]
    legend = ax_loss.get_legend()
    labels = [t.get_text() for t in legend.get_texts()]
    assert labels == ["train loss", "train loss, partial window (fewer steps)", "valid loss", "valid BLEU (right axis)"]
    box, axes_box = legend.get_window_extent(renderer), ax_loss.get_window_extent(renderer)
    assert box.y0 >= axes_box.y1 - 1  # above the plotting area, not on it
    assert not any(ax.get_legend() for ax in fig.axes[1:])
    partial_line = ax_loss.get_lines()[1]
    assert list(partial_line.get_xdata()) == [1195] and partial_line.get_linestyle() == "None"
    matplotlib.pyplot.close(fig)


def test_plot_command_draws_the_run(tmp_path):
    train, valid = records()
    (tmp_path / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in train + valid))
    assert main(["plot", str(tmp_path)]) == 0
    assert (tmp_path / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
