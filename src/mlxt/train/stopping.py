"""Why training stops, decided once per step, and how that reads to a person.

`Stop.reason` is one of `REASONS`: the values of `TrainResult.status` (kept for the API), and
``SIGNAL``, which ends in `TrainingInterrupted` instead of a result. `describe` turns the end of
a run into the sentence ``mlxt train`` prints.
"""

from __future__ import annotations

from dataclasses import dataclass

from mlxt.train.signals import signal_name

FINISHED, EARLY, EPOCHS, TIME, SIGNAL = "finished", "early_stopped", "epochs_done", "stopped_at_time_limit", "signal"
REASONS = (FINISHED, EARLY, EPOCHS, TIME, SIGNAL)


@dataclass(frozen=True)
class Stop:
    """A decision to stop after the current step. ``signum``: the signal, for ``SIGNAL``."""

    reason: str
    signum: int | None = None

    @property
    def evaluates(self) -> bool:
        """A regular end evaluates the final weights; a signal asks to stop quickly (save only)."""
        return self.reason != SIGNAL


def stop_after_step(step: int, steps: int, signum: int | None, epochs_done: bool, time_up: bool) -> Stop | None:
    """The stop, if any, due after ``step`` (every rank must pass the same flags); a signal
    comes first, then the epoch limit, the time limit and the step count."""
    if signum is not None:
        return Stop(SIGNAL, signum)
    if epochs_done:
        return Stop(EPOCHS)
    if time_up:
        return Stop(TIME)
    if step >= steps:
        return Stop(FINISHED)
    return None


@dataclass(frozen=True)
class Due:
    """What a step boundary does besides training."""

    log: bool
    evaluate: bool
    save: bool


def due_after_step(step: int, train, stop: Stop | None) -> Due:
    """Log, evaluate and save at their intervals (``train``: the `TrainConfig`) and whenever the
    run stops; a signal skips the final evaluation."""
    final_eval = stop is not None and stop.evaluates
    return Due(log=step % train.log_every == 0 or stop is not None,
               evaluate=step % train.eval_every == 0 or final_eval,
               save=step % train.save_every == 0 or stop is not None)


def _minutes(minutes: float) -> str:
    text = f"{minutes:g}"
    return f"{text}-minute" if minutes != 1 else "1-minute"


def _steps(n: int) -> str:
    return f"{n:,} step" + ("" if n == 1 else "s")


def describe(reason: str, step: int, *, steps: int = 0, max_minutes: float = 0.0, epochs: int = 0,
             bad_evals: int = 0, signum: int | None = None) -> str:
    """E.g. "finished at step 2,000", "stopped at the 6-minute time limit after 1,251 steps"."""
    if reason == FINISHED:
        return f"finished at step {step:,}"
    if reason == TIME:
        return f"stopped at the {_minutes(max_minutes)} time limit after {_steps(step)}"
    if reason == EPOCHS:
        return f"finished {epochs} epoch{'' if epochs == 1 else 's'} after {_steps(step)}"
    if reason == EARLY:
        return (f"stopped early after {_steps(step)}: no better validation loss in {bad_evals} "
                f"evaluation{'' if bad_evals == 1 else 's'}")
    if reason == SIGNAL and signum is not None:
        return f"stopped by {signal_name(signum)} at step {step:,}"
    return f"stopped at step {step:,}"
