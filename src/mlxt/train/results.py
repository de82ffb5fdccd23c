"""What `mlxt.train.trainer.train` returns, and the ways it ends early by raising."""

from __future__ import annotations

import signal
from dataclasses import dataclass, field
from pathlib import Path

from mlxt.errors import MlxtError
from mlxt.train.signals import exit_status


class NonFiniteLoss(MlxtError):
    """Training produced a NaN/inf loss or gradient norm."""


class TrainingInterrupted(Exception):
    """SIGINT or SIGTERM: a checkpoint was saved; the CLI exits with `exit_status` (130, 143)."""

    def __init__(self, message: str, checkpoint: Path | None, signum: int = signal.SIGINT):
        super().__init__(message)
        self.checkpoint, self.signum = checkpoint, signum

    @property
    def exit_status(self) -> int:
        return exit_status(self.signum)


@dataclass
class TrainResult:
    run_dir: Path
    step: int
    status: str  # "finished", "early_stopped", "epochs_done" or "stopped_at_time_limit"
    metrics: dict = field(default_factory=dict)
    best_step: int | None = None
    best_valid_loss: float | None = None
    samples: list = field(default_factory=list)  # seq2seq: (source, reference, hypothesis)
    summary: str = ""  # how the run ended, in words: "finished at step 2,000", ...
