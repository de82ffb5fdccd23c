"""The training loop: data, model, compiled step, evaluation, checkpoints, resume.

`train` runs a `RunConfig` in a run directory (see `mlxt.train.rundir`). Everything that decides
the next step's numbers -- weights, optimizer state (including its update counter, hence the
learning rate), the data iterator position and the MLX random key (dropout) -- is saved in every
checkpoint, so ``resume=True`` continues exactly where the checkpoint left off: a run killed at
any moment and resumed logs the same losses, step for step, as one that was never stopped.

Host synchronisation happens at step boundaries only: each step is evaluated asynchronously
(``mx.async_eval``) while the host prepares the next, and the one before it is waited for; losses
are read back to the host at log, evaluation and save steps. A non-finite loss or gradient norm stops training before
anything is saved, so the last checkpoint on disk is always a good one.
"""

from __future__ import annotations

import math
import shutil
import signal
import time
from pathlib import Path

import mlx.core as mx
import numpy as np

from mlxt.errors import MlxtError
from mlxt.model import build_model
from mlxt.train import checkpoint as ckpt
from mlxt.train import rundir
from mlxt.train.config import RunConfig
from mlxt.train.distributed import Distributed, lost_peer
from mlxt.train.evaluation import evaluate
from mlxt.train.intervals import Clock, Interval
from mlxt.train.lock import RunLock
from mlxt.train.metrics import MetricsLog
from mlxt.train.progress import Progress
from mlxt.train.resumable import check_resumable
from mlxt.train.results import NonFiniteLoss, TrainingInterrupted, TrainResult
from mlxt.train.schedules import BudgetFraction, make_schedule, make_time_schedule
from mlxt.train.signals import StopSignals, signal_name
from mlxt.train.step import TrainStep, make_optimizer
from mlxt.train.setup import model_config_for, prepare, rng_state, same_tokenizers, set_rng_state, targets
from mlxt.train.stopping import EARLY, SIGNAL, Stop, describe, due_after_step, stop_after_step
from mlxt.train.tomlio import write_toml


def _start_run_dir(run_dir: Path, overwrite: bool) -> None:
    # A directory holding only a lock file is what a run that failed before writing anything leaves.
    from mlxt import guard

    if run_dir.exists() and not run_dir.is_dir():
        raise MlxtError(f"{run_dir}: cannot create the run directory (a file of that name exists)")
    if not guard.is_empty_dir(run_dir):
        if not overwrite:
            raise MlxtError(
                f"{run_dir}: run directory already exists; continue it with `mlxt train --resume {run_dir}`, "
                f"pick another with --set train.run_dir=DIR, or pass --overwrite to delete it")
        guard.check_replaceable_dir(run_dir, "--overwrite")  # never empties a folder of the user's
        with RunLock(run_dir):  # refuses if a process is training there
            pass
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise MlxtError(f"{run_dir}: cannot create the run directory ({exc.strerror or exc})") from None


def _clear_old_run(run_dir: Path) -> None:
    """``--overwrite``: delete an earlier run's files, only once the new run's config and data have
    been checked (a mistake in them must not cost the old run); the held lock file stays."""
    from mlxt import guard

    guard.check_replaceable_dir(run_dir, "--overwrite")  # checked again: files may have appeared since
    for p in run_dir.iterdir():
        if p.name == rundir.LOCK:
            continue
        if p.is_dir() and not p.is_symlink():
            shutil.rmtree(p)
        else:
            p.unlink()


# -- the loop --------------------------------------------------------------------------------------
class Trainer:
    def __init__(self, config: RunConfig, run_dir: Path, resume: bool = False, show_progress: bool = True,
                 dist: Distributed | None = None, log=None, overwrite: bool = False):
        self.config, self.run_dir, self.resume, self.overwrite = config, Path(run_dir), resume, overwrite
        self.dist = dist or Distributed()  # see mlxt.train.distributed: data-parallel ranks
        self.rank, self.world_size, self.is_main = self.dist.rank, self.dist.size, self.dist.is_main
        self.show_progress = show_progress and self.is_main
        self.log = log or (lambda msg: None)

    # The public entry point ----------------------------------------------------------------------
    def run(self) -> TrainResult:
        lock = RunLock(self.run_dir) if self.is_main else None
        if self.is_main:
            if not self.resume:
                _start_run_dir(self.run_dir, self.overwrite)
            lock.acquire()
        try:
            return self._run()
        except RuntimeError as exc:  # a collective failed: a peer rank went away
            error = lost_peer(exc, self.dist, f"last checkpoint: {getattr(self, 'last_saved', None) or 'none'}")
            if error is None:
                raise
            raise error from None
        finally:
            if lock is not None:
                lock.release()

    def _run(self) -> TrainResult:
        """Step, log, evaluate, save, stop?"""
        stepper, progress, interval, stop = self._start(), self._progress(), Interval(self.step), None
        try:
            with StopSignals() as self.signals:
                while stop is None:
                    norm = self._train_step(stepper, interval)
                    stop = self._stop_after_step()
                    due = due_after_step(self.step, self.config.train, stop)
                    if due.log or due.evaluate or due.save:
                        self._check_finite(interval)  # before anything is logged or saved
                    if due.log:
                        self._log(interval, norm, progress)
                    improved = False
                    if due.evaluate:
                        improved, stop = self._evaluate_and_track(progress, stop)
                    if due.save or improved or stop is not None:
                        self._save(best=improved)
        finally:
            progress.close()
        return self._finish(stop)

    # What the loop is made of ---------------------------------------------------------------------
    def _start(self) -> TrainStep:
        t = self.config.train
        resume_from = self._resume_point() if self.resume else None  # checked before any data work
        self._setup()
        if resume_from is not None:
            self._restore(resume_from)
        else:
            self._write_new_run()
        self._sync_ranks()
        self.clock = Clock(self.train_seconds, t.schedule_counts_eval)
        self.samples, self.t0, self.elapsed0 = [], time.time(), self.elapsed
        self.model.train()
        self._running = None  # the step in flight (its gradient norm), see _train_step
        return TrainStep(self.model, self.optimizer, t.label_smoothing if self.config.kind != "regression" else 0.0,
                         t.clip_norm, t.compile, self.dist.reducer())

    def _train_step(self, stepper: TrainStep, interval: Interval) -> mx.array:
        t = self.config.train
        micro = [next(self.train_iter) for _ in range(t.grad_accumulation)]
        if t.schedule_unit == "time":
            self.budget.set(self.train_seconds / (60.0 * t.max_minutes))
        loss, count, norm = stepper(micro)
        self.step += 1
        # This step runs while the host gets the next one ready (its batch, the stop checks, its
        # graph); waiting for the step before keeps at most two in flight.
        mx.async_eval(stepper.state, norm, *interval.add(loss, count, norm, sum(targets(b) for b in micro)))
        if self._running is not None:
            mx.eval(self._running)
        self._running = norm
        self.dist.beat(f"step {self.step}")
        return norm

    def _stop_after_step(self) -> Stop | None:
        """Every rank decides the same: the signal flags, the time limit and rank 0's training
        clock are agreed on in one collective."""
        t = self.config.train
        self.elapsed = self.elapsed0 + time.time() - self.t0
        signum, seconds = self.signals.received, self.clock.seconds()  # read once: a signal may land anywhere
        wall_up = t.max_minutes > 0 and self.elapsed - self.elapsed0 >= 60.0 * t.max_minutes
        if self.dist.active:
            sigint, sigterm, wall_up, seconds = self.dist.sum([
                signum == signal.SIGINT, signum == signal.SIGTERM, wall_up, seconds if self.is_main else 0.0])
            signum = signal.SIGINT if sigint else signal.SIGTERM if sigterm else None
        self.train_seconds = seconds
        time_up = self._limit_seconds() >= 60.0 * t.max_minutes if t.schedule_unit == "time" else bool(wall_up)
        epochs_done = bool(t.epochs) and getattr(self.train_iter, "epoch", 0) >= t.epochs
        return stop_after_step(self.step, t.steps, signum, epochs_done, time_up)

    def _limit_seconds(self) -> float:
        """What the time limit counts: training time over all resumes with a time schedule,
        else this process's wall time."""
        return self.train_seconds if self.config.train.schedule_unit == "time" else self.elapsed - self.elapsed0

    def _check_finite(self, interval: Interval) -> None:
        if not interval.finite():
            last = self.last_saved.name if self.last_saved else "none"
            raise NonFiniteLoss(f"non-finite loss or gradient at {interval.where(self.step)}; training stopped "
                                f"(last good checkpoint: {last}; try a lower [train] lr or clip_norm)")

    def _log(self, interval: Interval, norm: mx.array, progress: Progress) -> None:
        tokens = self.dist.sum([interval.tokens])[0] if self.dist.active else interval.tokens
        record = {
            "split": "train", "step": self.step, "epoch": int(getattr(self.train_iter, "epoch", 0)),
            "loss": interval.mean_loss(), "lr": self.optimizer.learning_rate.item(), "grad_norm": norm.item(),
            "tokens_per_s": tokens / interval.seconds(), "elapsed": round(self.elapsed, 3),
        }
        self.last_metrics = record
        if self.is_main:
            self.metrics.append(record)
        progress.update(self.step, record["loss"], record["lr"], record["tokens_per_s"], seconds=self._limit_seconds())
        interval.reset(self.step)

    def _evaluate_and_track(self, progress: Progress, stop: Stop | None) -> tuple[bool, Stop | None]:
        """Evaluate; returns (a new best validation loss?, the stop, now early stopping too)."""
        t = self.config.train
        with self.clock.paused():
            result, self.samples = evaluate(self.model, self.data, self.config, self.dist, self.step)
        if not result:
            return False, stop
        improved = result["valid_loss"] < self.best_loss
        if improved:
            self.best_loss, self.best_step, self.bad_evals = result["valid_loss"], self.step, 0
        else:
            self.bad_evals += 1
        if self.is_main:
            self.metrics.append({"split": "valid", "step": self.step, **result})
        progress.write("step {}: {}".format(self.step, "  ".join(f"{k} {v:.4f}" for k, v in result.items())))
        if not improved and t.early_stopping and self.bad_evals >= t.early_stopping:
            progress.write(f"early stopping: no better validation loss in {self.bad_evals} evaluations")
            return False, Stop(EARLY)
        return improved, stop

    def _progress(self) -> Progress:
        t = self.config.train
        return Progress(t.steps, self.step, self.show_progress, time_limit=60.0 * t.max_minutes,
                        time_done=self._limit_seconds() if t.schedule_unit == "time" else 0.0)

    def _finish(self, stop: Stop) -> TrainResult:
        t = self.config.train
        if stop.reason == SIGNAL:
            what = "interrupted" if stop.signum == signal.SIGINT else f"stopped by {signal_name(stop.signum)}"
            raise TrainingInterrupted(f"{what} at step {self.step}; checkpoint saved; continue with "
                                      f"`mlxt train --resume {self.run_dir}`", self.last_saved, stop.signum)
        if self.is_main and self.last_saved is not None and ckpt.best_checkpoint(self.checkpoints) is None:
            ckpt.set_best(self.checkpoints, self.last_saved)
        if self.is_main:
            try:
                from mlxt.train.plot import plot_curves

                plot_curves(self.run_dir)
            except MlxtError:
                pass
        summary = describe(stop.reason, self.step, steps=t.steps, max_minutes=t.max_minutes, epochs=t.epochs,
                           bad_evals=self.bad_evals)
        return TrainResult(self.run_dir, self.step, stop.reason, self.last_metrics, self.best_step,
                           None if math.isinf(self.best_loss) else self.best_loss, self.samples, summary)

    # Setup, state, checkpoints ----------------------------------------------------------------------
    def _setup(self) -> None:
        cfg, t = self.config, self.config.train
        mx.random.seed(t.seed)
        self.dist.pause("preparing data")  # local work: the timeout is for waiting on other ranks
        self.data = prepare(cfg)
        self.dist.beat("data prepared")
        self.model_config = model_config_for(cfg, self.data)
        self.model = build_model(self.model_config)
        mx.eval(self.model.parameters())
        self.budget = BudgetFraction()
        if t.schedule_unit == "time":
            schedule = make_time_schedule(t.schedule, t.lr, t.warmup_fraction, t.min_lr, self.budget)
        else:
            schedule = make_schedule(t.schedule, t.lr, t.warmup_steps, t.steps, t.min_lr)
        self.optimizer = make_optimizer(t, schedule)
        self.optimizer.init(self.model.trainable_parameters())
        self.train_iter = self.data.batches("train", seed=t.seed, shuffle=True, rank=self.rank,
                                            world_size=self.world_size)
        self.step, self.best_loss, self.best_step, self.bad_evals = 0, math.inf, None, 0
        self.checkpoints = self.run_dir / rundir.CHECKPOINTS
        self.metrics = MetricsLog(self.run_dir / rundir.METRICS)
        self.last_saved: Path | None = None
        self._rng_ranks: list | None = None  # every rank's RNG key (distributed runs)
        self.last_metrics: dict = {}
        self.elapsed = self.train_seconds = 0.0

    def _bind_budget(self) -> None:
        if self.config.train.schedule_unit == "time":
            self.budget.bind(self.optimizer)

    def _write_new_run(self) -> None:
        self._bind_budget()
        if not self.is_main:
            return
        _clear_old_run(self.run_dir)
        write_toml(self.run_dir / rundir.CONFIG_TOML, self.config.to_dict(self.model_config))
        rundir.save_tokenizers(self.data.tokenizers, self.run_dir / rundir.TOKENIZER_DIR)
        self.metrics.path.write_text("")

    def _resume_point(self) -> Path:
        """The checkpoint to resume, once leftovers of an interrupted write or prune are gone and
        the config is known to describe the same model and data."""
        checkpoints = self.run_dir / rundir.CHECKPOINTS
        if self.is_main:
            ckpt.remove_temporaries(checkpoints)
        path = ckpt.latest_checkpoint(checkpoints)
        if path is None:
            raise MlxtError(f"{self.run_dir}: no checkpoint to resume from")
        check_resumable(self.config, path, ckpt.read_state(path))
        return path

    def _restore(self, path: Path) -> None:
        saved = rundir.load_tokenizers(self.run_dir / rundir.TOKENIZER_DIR)
        if not same_tokenizers(saved, self.data.tokenizers):
            raise MlxtError(f"{self.run_dir / rundir.TOKENIZER_DIR}: the prepared data's tokenizer differs from "
                            "the run's (was the corpus or [data] changed?); cannot resume exactly")
        state = ckpt.read_state(path)
        ckpt.load_weights_checked(self.model, path / ckpt.MODEL_FILE)
        self.optimizer.state = ckpt.read_optimizer_state(path)
        self.optimizer.init(self.model.trainable_parameters())
        self._bind_budget()
        mx.eval(self.model.parameters(), self.optimizer.state)
        self.train_iter.load_state_dict(state["data"])
        set_rng_state(state["rng"])
        self._rng_ranks = state.get("rng_ranks")
        self.step = int(state["step"])
        best = state.get("best_valid_loss")
        self.best_loss = math.inf if best is None else float(best)
        self.best_step = state.get("best_step")
        self.bad_evals = int(state.get("bad_evals", 0))
        self.elapsed = float(state.get("elapsed", 0.0))
        self.train_seconds = float(state.get("train_seconds", 0.0))
        self.last_metrics = state.get("metrics", {})
        self.last_saved = path
        if self.is_main:
            self.metrics.truncate_after(self.step)
        self.log(f"resuming {self.run_dir} from {path.name}")

    def _state(self) -> dict:
        return {
            "epoch": int(getattr(self.train_iter, "epoch", 0)),
            "data": self.train_iter.state_dict(),
            "rng": rng_state(),
            **({"rng_ranks": self._rng_ranks} if self.dist.active else {}),
            "best_valid_loss": None if math.isinf(self.best_loss) else self.best_loss,
            "best_step": self.best_step,
            "bad_evals": self.bad_evals,
            "elapsed": self.elapsed,
            "train_seconds": self.train_seconds,
            "metrics": self.last_metrics,
            "config": self.config.to_dict(self.model_config),
        }

    def _save(self, best: bool = False) -> Path:
        path = ckpt.step_name(self.step)
        self.dist.beat(f"saving at step {self.step}")
        if self.dist.active:  # a collective: every rank saves at the same steps
            self._rng_ranks = self.dist.gather(rng_state())
        if self.is_main:
            with self.clock.paused(), self.signals.deferred():  # a second signal waits for the save
                if self.last_saved is None or self.last_saved.name != path:
                    self.last_saved = ckpt.write_checkpoint(self.checkpoints, self.step, self.model,
                                                            self.model_config, self._state(), self.optimizer)
                if best:
                    ckpt.set_best(self.checkpoints, self.last_saved)
                ckpt.prune(self.checkpoints, self.config.train.keep_last)
        return self.checkpoints / path

    def _sync_ranks(self) -> None:
        """All ranks start from rank 0's weights and optimizer state at the same step; each rank
        gets its own dropout stream (rank 0 keeps the single-process one), restored on resume."""
        if not self.dist.active:
            return
        self.dist.check_same(self.step, "step to start from")
        self.model.update(self.dist.broadcast(self.model.parameters()))
        self.optimizer.state = self.dist.broadcast(self.optimizer.state)
        keys = self._rng_ranks
        if keys and len(keys) == self.world_size:
            set_rng_state(keys[self.rank])
        elif self.rank > 0:
            set_rng_state(np.array(mx.random.split(mx.random.state[0], self.world_size)[self.rank]).tolist())
        self._rng_ranks = self.dist.gather(rng_state())


def train(config: RunConfig, run_dir: str | Path | None = None, resume: bool = False, overwrite: bool = False,
          show_progress: bool = True, log=None, **distributed) -> TrainResult:
    """Train ``config`` in ``run_dir`` (default: from the config); ``resume`` continues the newest
    checkpoint there exactly."""
    run_dir = Path(run_dir) if run_dir is not None else config.run_dir()
    if resume:
        if not (run_dir / rundir.CONFIG_TOML).exists():
            raise MlxtError(f"{run_dir}: not a run directory (no {rundir.CONFIG_TOML})")
    return Trainer(config, run_dir, resume, show_progress, log=log, overwrite=overwrite, **distributed).run()


def load_run_config(run_dir: str | Path, overrides: list[str] = ()) -> RunConfig:
    """The effective config saved in a run directory (for ``--resume``), with ``--set`` overrides."""
    from mlxt.train.config import load_config

    run_dir = Path(run_dir)
    if not (run_dir / rundir.CONFIG_TOML).exists():
        raise MlxtError(f"{run_dir}: not a run directory (no {rundir.CONFIG_TOML}); nothing to resume")
    config = load_config(run_dir / rundir.CONFIG_TOML, overrides)
    config.name = run_dir.name
    return config
