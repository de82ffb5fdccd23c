"""Forecasting a time series with mlxt's `RegressionTransformer` (continuous inputs, causal).

The series is generated here through the library's ``synthetic-sines`` corpus: a sum of three
sines with random periods (8-200 steps), phases and amplitudes plus Gaussian noise (sd 0.05), 20,000
steps, the last 10% held out. The model (``configs/forecast-sines.toml``) reads windows of 64 past
values and predicts the next one at every position; `mlxt.train.trainer.train` trains it.

On the held-out part it reports, against the naive last-value forecast:
- one step ahead: every held-out value predicted from the 64 values before it;
- ``--horizon`` steps ahead: forecasts rolled out by feeding predictions back in, from every
  ``--stride``-th origin;
and the noise floor (noise variance: the error of a forecaster that knew the clean signal).
Writes a plot of a rolled-out forecast and the scores as JSON next to it.

    .venv/bin/python examples/forecast.py [--run-dir runs/forecast-sines] [--out docs/results]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import mlxt  # noqa: F401  (first: routes MLX to the fast BLAS before mlx.core loads)
import mlx.core as mx
import numpy as np

from mlxt.train.config import load_config
from mlxt.data.series import make_series
from mlxt.train.rundir import load_run
from mlxt.train.trainer import train

CONFIG = Path(__file__).resolve().parents[1] / "configs" / "forecast-sines.toml"


def one_step(model, series: np.ndarray, start: int, window: int, batch: int = 256) -> np.ndarray:
    """Next-value predictions for ``series[start:]``, each from the ``window`` values before it."""
    targets = np.arange(start, len(series))
    preds = []
    for i in range(0, len(targets), batch):
        t = targets[i:i + batch]
        x = series[t[:, None] - window + np.arange(window)[None, :]]
        preds.append(np.array(model(mx.array(x))[:, -1, :]))
    return np.concatenate(preds)


def roll_out(model, series: np.ndarray, origins: np.ndarray, window: int, horizon: int) -> np.ndarray:
    """(len(origins), horizon, C) forecasts, each step fed back as the newest input."""
    ctx = series[origins[:, None] - window + np.arange(window)[None, :]]
    out = []
    for _ in range(horizon):
        nxt = np.array(model(mx.array(ctx))[:, -1:, :])
        out.append(nxt)
        ctx = np.concatenate([ctx[:, 1:], nxt], axis=1)
    return np.concatenate(out, axis=1)


def plot(series, origin, forecast, horizon, window, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(9, 3.2))
    past = np.arange(origin - 2 * window, origin)
    future = np.arange(origin, origin + horizon)
    ax.plot(past, series[past, 0], color="0.3", lw=1, label="series (held out)")
    ax.plot(future, series[future, 0], color="0.3", lw=1, ls=":", label="actual")
    ax.plot(future, forecast[:, 0], color="C1", lw=1.5, label=f"mlxt forecast ({horizon} steps, rolled out)")
    ax.axhline(series[origin - 1, 0], color="C0", lw=1, ls="--", label="last value")
    ax.set_xlabel("step")
    ax.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", default=str(CONFIG))
    parser.add_argument("--run-dir", default="runs/forecast-sines")
    parser.add_argument("--out", default="", help="folder for forecast.png and forecast.json")
    parser.add_argument("--horizon", type=int, default=32)
    parser.add_argument("--stride", type=int, default=16)
    parser.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE")
    args = parser.parse_args(argv)

    config = load_config(args.config, args.set)
    t0 = time.time()
    train(config, args.run_dir, overwrite=True, show_progress=False)
    seconds = time.time() - t0
    model = load_run(args.run_dir, "best").model
    data = config.data
    series = make_series(data)
    start = int(len(series) * (1 - data.valid_size))  # first held-out step
    window = data.window

    pred = one_step(model, series, start, window)
    actual = series[start:]
    last = series[start - 1:-1]
    origins = np.arange(start, len(series) - args.horizon + 1, args.stride)
    rolled = roll_out(model, series, origins, window, args.horizon)
    future = series[origins[:, None] + np.arange(args.horizon)[None, :]]
    naive = np.repeat(series[origins - 1][:, None, :], args.horizon, axis=1)
    scores = {
        "train_seconds": round(seconds, 1),
        "steps": config.train.steps,
        "heldout_steps": int(len(actual)),
        "one_step_mse": float(np.mean((pred - actual) ** 2)),
        "one_step_mse_last_value": float(np.mean((last - actual) ** 2)),
        "noise_floor_mse": data.noise ** 2,
        "horizon": args.horizon,
        "origins": int(len(origins)),
        "horizon_mse": float(np.mean((rolled - future) ** 2)),
        "horizon_mse_last_value": float(np.mean((naive - future) ** 2)),
    }
    for key in ("one_step_mse", "horizon_mse"):
        scores[key.replace("mse", "ratio_to_last_value")] = scores[key] / scores[key + "_last_value"]
    print(json.dumps(scores, indent=1))
    if args.out:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        (out / "forecast.json").write_text(json.dumps(scores, indent=1) + "\n")
        i = len(origins) // 2
        plot(series, int(origins[i]), rolled[i], args.horizon, window, out / "forecast.png")
    return scores


if __name__ == "__main__":
    main()
