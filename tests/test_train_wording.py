"""What a person reads: the end of a run in words, and the progress of a time-limited run."""

from __future__ import annotations

import io
import signal

from mlxt.cli import main
from mlxt.train.progress import Progress
from mlxt.train.stopping import EARLY, EPOCHS, FINISHED, SIGNAL, TIME, describe
from train_helpers import write_tiny_config


def test_describe_each_ending():
    assert describe(FINISHED, 2000, steps=2000) == "finished at step 2,000"
    assert describe(TIME, 1251, max_minutes=6) == "stopped at the 6-minute time limit after 1,251 steps"
    assert describe(TIME, 1, max_minutes=0.5) == "stopped at the 0.5-minute time limit after 1 step"
    assert describe(EARLY, 900, bad_evals=3) == ("stopped early after 900 steps: no better validation loss "
                                                 "in 3 evaluations")
    assert describe(EPOCHS, 58, epochs=1) == "finished 1 epoch after 58 steps"
    assert describe(SIGNAL, 812, signum=signal.SIGTERM) == "stopped by SIGTERM at step 812"


def test_cli_prints_the_ending_in_words(tmp_path, capsys):
    config = write_tiny_config(tmp_path, steps=100000, eval_every=100000, save_every=100000)
    status = main(["train", "-c", str(config), "--run-dir", str(tmp_path / "run"), "-q",
                   "--set", "train.max_minutes=0.0001"])
    out = capsys.readouterr().out
    assert status == 0
    first = out.splitlines()[0]
    assert first.startswith("training stopped at the 0.0001-minute time limit after "), out
    assert "stopped_at_time_limit" not in out


def test_time_limited_progress_shows_time_first():
    stream = io.StringIO()
    progress = Progress(total=100000, initial=0, stream=stream, time_limit=360.0)
    progress.start -= 130.0  # 1,251 steps in 130 s: the step ceiling is hours away, the time limit is not
    progress.update(1251, 2.5, 1e-3, 1234.0, seconds=130.0)
    line = stream.getvalue().strip()
    assert line.startswith("02:10/06:00  step 1,251  loss 2.5000"), line
    assert "/100000" not in line and line.endswith("eta 03:50"), line


def test_resumed_time_budget_starts_where_it_was():
    stream = io.StringIO()
    progress = Progress(total=100000, initial=500, stream=stream, time_limit=360.0, time_done=300.0)
    progress.update(501, 2.5, 1e-3, 1234.0)
    assert stream.getvalue().startswith("05:00/06:00  step 501"), stream.getvalue()


def test_time_limited_bar_fills_with_time():
    class Terminal(io.StringIO):
        def isatty(self):
            return True

    stream = Terminal()
    progress = Progress(total=100000, initial=0, stream=stream, time_limit=360.0)
    progress.update(10, 2.5, 1e-3, 1000.0, seconds=130.0)
    progress.close()
    shown = stream.getvalue().split("\r")[-1]
    assert shown.startswith("train:  36%|") and "| 02:10/06:00  step 10  loss 2.5000" in shown, shown
    assert "/100000" not in shown
