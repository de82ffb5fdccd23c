"""The training loop: data, model, compiled step, evaluation, checkpoints, resume.

`train` runs a `RunConfig` in a run directory (see `mlxt.train.rundir`). Everything that decides
the next step's numbers -- weights, optimizer state (including its update counter, hence the
learning rate), the data iterator position and the MLX random key (dropout) -- is saved in every
checkpoint, so ``resume=True`` continues exactly where the checkpoint left off: a run killed at
any moment and resumed logs the same losses, step for step, as one that was never stopped.

Host synchronisation happens at step boundaries only (``mx.eval``); losses are read back to the
host at log, evaluation and save steps. A non-finite loss or gradient norm stops training before
anything is saved, so the last checkpoint on disk is always a good one.
"""

from __future__ import annotations

import math
import shutil
import signal
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import mlx.core as mx
import numpy as np

from mlxt.errors import MlxtError
from mlxt.model import ModelConfig, build_model
from mlxt.train import checkpoint as ckpt
from mlxt.train import rundir
from mlxt.train.config import RunConfig
from mlxt.train.distributed import Distributed, lost_peer
from mlxt.train.evaluation import sample_bleu, validation_loss
from mlxt.train.lock import RunLock
from mlxt.train.metrics import MetricsLog
from mlxt.train.progress import Progress
from mlxt.train.schedules import make_schedule
from mlxt.train.step import TrainStep, make_optimizer
from mlxt.train.tomlio import write_toml


class NonFiniteLoss(MlxtError):
    """Training produced a NaN/inf loss or gradient norm."""


class TrainingInterrupted(Exception):
    """SIGINT: a checkpoint was saved; the CLI exits with status 130."""

    def __init__(self, message: str, checkpoint: Path | None):
        super().__init__(message)
        self.checkpoint = checkpoint


@dataclass
class TrainResult:
    run_dir: Path
    step: int
    status: str  # "finished", "early_stopped", "epochs_done" or "stopped_at_time_limit"
    metrics: dict = field(default_factory=dict)
    best_step: int | None = None
    best_valid_loss: float | None = None
    samples: list = field(default_factory=list)  # seq2seq: (source, reference, hypothesis)


# -- setup helpers ---------------------------------------------------------------------------------
def prepare(config: RunConfig):
    """The data object for ``config`` (`PreparedData`, or `SeriesData` for regression)."""
    if config.kind == "regression":
        from mlxt.train.regression_data import SeriesData

        return SeriesData(config.data)
    from mlxt.data.prepare import prepare_data

    return prepare_data(config.data, config.kind)


def model_config_for(config: RunConfig, data) -> ModelConfig:
    """``[model]`` with the sizes the data decides (vocabularies, feature sizes) filled in."""
    toks = data.tokenizers
    if config.kind == "seq2seq":
        fill = {"vocab_size": toks["tgt"].vocab_size}
        if toks["src"] is not toks["tgt"]:
            fill["src_vocab_size"] = toks["src"].vocab_size
        needed, what = config.data.max_len, "[data] max_len"
    elif config.kind == "lm":
        fill = {"vocab_size": toks["text"].vocab_size}
        needed, what = config.data.block_size, "[data] block_size"
    else:
        fill = {"input_dim": config.data.channels, "output_dim": config.data.channels}
        needed, what = config.data.window, "[data] window"
    model_config = config.model_config(**fill)
    rundir.check_vocabularies(model_config, toks, "[model] vocab_size")
    if model_config.positional in ("learned", "sinusoidal") and model_config.max_len < needed:
        raise MlxtError(f"[model] max_len = {model_config.max_len} is shorter than {what} = {needed}")
    return model_config


def _same_tokenizers(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(a[k].to_dict() == b[k].to_dict() for k in a)


def _targets(batch: dict) -> int:
    if "tgt_out" in batch:
        return int(np.count_nonzero(batch["tgt_out"]))
    return int(batch["targets"].size)


def _rng_state() -> list[int]:
    return [int(v) for v in np.array(mx.random.state[0]).tolist()]


def _set_rng_state(key: list[int]) -> None:
    # MLX has no setter for the global key, but seed(s) sets it to key(s) = [s >> 32, s & 0xffffffff].
    mx.random.seed((int(key[0]) << 32) | int(key[1]))


class _SigintFlag:
    """Turns the first Ctrl-C into a flag checked at the next step boundary."""

    def __init__(self):
        self.raised = False
        self._previous = None

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def _handle(self, signum, frame):
        if self.raised:  # second Ctrl-C: stop at once
            raise KeyboardInterrupt
        self.raised = True

    def __exit__(self, *exc):
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)


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

    def _setup(self) -> None:
        cfg, t = self.config, self.config.train
        mx.random.seed(t.seed)
        self.dist.pause("preparing data")  # local work: the timeout is for waiting on other ranks
        self.data = prepare(cfg)
        self.dist.beat("data prepared")
        self.model_config = model_config_for(cfg, self.data)
        self.model = build_model(self.model_config)
        mx.eval(self.model.parameters())
        self.schedule = make_schedule(t.schedule, t.lr, t.warmup_steps, t.steps, t.min_lr)
        self.optimizer = make_optimizer(t, self.schedule)
        self.optimizer.init(self.model.trainable_parameters())
        self.train_iter = self.data.batches("train", seed=t.seed, shuffle=True, rank=self.rank,
                                            world_size=self.world_size)
        self.step, self.best_loss, self.best_step, self.bad_evals = 0, math.inf, None, 0
        self.checkpoints = self.run_dir / rundir.CHECKPOINTS
        self.metrics = MetricsLog(self.run_dir / rundir.METRICS)
        self.last_saved: Path | None = None
        self._rng_ranks: list | None = None  # every rank's RNG key (distributed runs)
        self.last_metrics: dict = {}
        self.elapsed = 0.0

    def _write_new_run(self) -> None:
        if not self.is_main:
            return
        _clear_old_run(self.run_dir)
        write_toml(self.run_dir / rundir.CONFIG_TOML, self.config.to_dict(self.model_config))
        rundir.save_tokenizers(self.data.tokenizers, self.run_dir / rundir.TOKENIZER_DIR)
        self.metrics.path.write_text("")

    def _restore(self) -> None:
        path = ckpt.latest_checkpoint(self.checkpoints)
        if path is None:
            raise MlxtError(f"{self.run_dir}: no checkpoint to resume from")
        if self.is_main:
            ckpt.remove_temporaries(self.checkpoints)
        saved = rundir.load_tokenizers(self.run_dir / rundir.TOKENIZER_DIR)
        if not _same_tokenizers(saved, self.data.tokenizers):
            raise MlxtError(f"{self.run_dir / rundir.TOKENIZER_DIR}: the prepared data's tokenizer differs from "
                            "the run's (was the corpus or [data] changed?); cannot resume exactly")
        state = ckpt.read_state(path)
        kind = ModelConfig.load(path / ckpt.CONFIG_FILE).kind
        if kind != self.model_config.kind:
            raise MlxtError(f"{path}: holds a {kind} model, this run trains a {self.model_config.kind} model")
        ckpt.load_weights_checked(self.model, path / ckpt.MODEL_FILE)
        self.optimizer.state = ckpt.read_optimizer_state(path)
        self.optimizer.init(self.model.trainable_parameters())
        mx.eval(self.model.parameters(), self.optimizer.state)
        self.train_iter.load_state_dict(state["data"])
        _set_rng_state(state["rng"])
        self._rng_ranks = state.get("rng_ranks")
        self.step = int(state["step"])
        best = state.get("best_valid_loss")
        self.best_loss = math.inf if best is None else float(best)
        self.best_step = state.get("best_step")
        self.bad_evals = int(state.get("bad_evals", 0))
        self.elapsed = float(state.get("elapsed", 0.0))
        self.last_metrics = state.get("metrics", {})
        self.last_saved = path
        if self.is_main:
            self.metrics.truncate_after(self.step)
        self.log(f"resuming {self.run_dir} from {path.name}")

    def _state(self) -> dict:
        return {
            "epoch": int(getattr(self.train_iter, "epoch", 0)),
            "data": self.train_iter.state_dict(),
            "rng": _rng_state(),
            **({"rng_ranks": self._rng_ranks} if self.dist.active else {}),
            "best_valid_loss": None if math.isinf(self.best_loss) else self.best_loss,
            "best_step": self.best_step,
            "bad_evals": self.bad_evals,
            "elapsed": self.elapsed,
            "metrics": self.last_metrics,
            "config": self.config.to_dict(self.model_config),
        }

    def _save(self, best: bool = False) -> Path:
        path = ckpt.step_name(self.step)
        self.dist.beat(f"saving at step {self.step}")
        if self.dist.active:  # a collective: every rank saves at the same steps
            self._rng_ranks = self.dist.gather(_rng_state())
        if self.is_main:
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
            _set_rng_state(keys[self.rank])
        elif self.rank > 0:
            _set_rng_state(np.array(mx.random.split(mx.random.state[0], self.world_size)[self.rank]).tolist())
        self._rng_ranks = self.dist.gather(_rng_state())

    def _check_finite(self, health: mx.array, since: int) -> None:
        if not math.isfinite(health.item()):
            where = f"step {self.step}" if since + 1 >= self.step else f"steps {since + 1}-{self.step}"
            last = self.last_saved.name if self.last_saved else "none"
            raise NonFiniteLoss(f"non-finite loss or gradient at {where}; training stopped "
                                f"(last good checkpoint: {last}; try a lower [train] lr or clip_norm)")

    def _evaluate(self) -> dict:
        t = self.config.train
        self.model.eval()
        try:
            self.dist.beat(f"evaluating at step {self.step}")
            valid = self.data.batches("valid", seed=t.seed, shuffle=False, rank=self.rank, world_size=self.world_size)
            result = validation_loss(self.model, valid, t.eval_batches, reduce=self.dist.sum)
            samples = []
            if self.is_main and self.config.kind == "seq2seq" and t.bleu_samples and self.data.texts.get("valid"):
                pairs = list(self.data.texts["valid"][: t.bleu_samples])
                result["bleu"], samples = sample_bleu(self.model, self.data.tokenizers, pairs,
                                                      self.config.data.max_len)
        finally:
            self.model.train()
        self.samples = samples
        return result

    def _run(self) -> TrainResult:
        t = self.config.train
        self._setup()
        if self.resume:
            self._restore()
        else:
            self._write_new_run()
        self._sync_ranks()
        stepper = TrainStep(self.model, self.optimizer, t.label_smoothing if self.config.kind != "regression" else 0.0,
                            t.clip_norm, t.compile, self.dist.reducer())
        self.samples = []
        self.model.train()
        progress = Progress(t.steps, self.step, self.show_progress, time_limit=60.0 * t.max_minutes)
        status = "finished"
        interval_loss = interval_count = health = mx.array(0.0)
        interval_start, interval_tokens, interval_t0 = self.step, 0, time.time()
        run_t0, elapsed0 = time.time(), self.elapsed
        try:
            with _SigintFlag() as sigint:
                while self.step < t.steps:
                    micro = [next(self.train_iter) for _ in range(t.grad_accumulation)]
                    loss, count, norm = stepper(micro)
                    self.step += 1
                    interval_loss, interval_count = interval_loss + loss, interval_count + count
                    health = health + 0.0 * loss + 0.0 * norm  # NaN/inf anywhere makes it non-finite
                    mx.eval(stepper.state, interval_loss, interval_count, health, norm)
                    self.dist.beat(f"step {self.step}")
                    interval_tokens += sum(_targets(b) for b in micro)
                    self.elapsed = elapsed0 + time.time() - run_t0
                    time_up = t.max_minutes > 0 and time.time() - run_t0 >= 60.0 * t.max_minutes
                    interrupted = sigint.raised  # read once: a Ctrl-C may land anywhere in the step
                    if self.dist.active:  # every rank takes the same branches below
                        interrupted, time_up = self.dist.any(interrupted, time_up)
                    last = self.step == t.steps or time_up
                    epochs_done = t.epochs and getattr(self.train_iter, "epoch", 0) >= t.epochs

                    if self.step % t.log_every == 0 or last or interrupted or epochs_done:
                        self._check_finite(health, interval_start)
                        seconds = max(time.time() - interval_t0, 1e-9)
                        if self.dist.active:
                            interval_tokens = self.dist.sum([interval_tokens])[0]
                        record = {
                            "split": "train", "step": self.step,
                            "epoch": int(getattr(self.train_iter, "epoch", 0)),
                            "loss": interval_loss.item() / max(interval_count.item(), 1.0),
                            "lr": self.optimizer.learning_rate.item(), "grad_norm": norm.item(),
                            "tokens_per_s": interval_tokens / seconds, "elapsed": round(self.elapsed, 3),
                        }
                        self.last_metrics = record
                        if self.is_main:
                            self.metrics.append(record)
                        progress.update(self.step, record["loss"], record["lr"], record["tokens_per_s"])
                        interval_loss = interval_count = mx.array(0.0)
                        interval_start, interval_tokens, interval_t0 = self.step, 0, time.time()

                    improved = stop_early = False
                    if self.step % t.eval_every == 0 or last or epochs_done:
                        self._check_finite(health, interval_start)
                        result = self._evaluate()
                        if result:
                            improved = result["valid_loss"] < self.best_loss
                            if improved:
                                self.best_loss, self.best_step, self.bad_evals = result["valid_loss"], self.step, 0
                            else:
                                self.bad_evals += 1
                                stop_early = bool(t.early_stopping) and self.bad_evals >= t.early_stopping
                            record = {"split": "valid", "step": self.step, **result}
                            if self.is_main:
                                self.metrics.append(record)
                            progress.write("step {}: {}".format(self.step, "  ".join(
                                f"{k} {v:.4f}" for k, v in result.items())))

                    if self.step % t.save_every == 0 or last or improved or stop_early or interrupted or epochs_done:
                        self._check_finite(health, interval_start)
                        self._save(best=improved)
                    if interrupted:
                        raise TrainingInterrupted(
                            f"interrupted at step {self.step}; checkpoint saved; continue with "
                            f"`mlxt train --resume {self.run_dir}`", self.last_saved)
                    if stop_early:
                        status = "early_stopped"
                        progress.write(f"early stopping: no better validation loss in {self.bad_evals} evaluations")
                        break
                    if epochs_done:
                        status = "epochs_done"
                        break
                    if time_up:
                        status = "stopped_at_time_limit"
                        break
        finally:
            progress.close()
        if self.is_main and self.last_saved is not None and ckpt.best_checkpoint(self.checkpoints) is None:
            ckpt.set_best(self.checkpoints, self.last_saved)
        if self.is_main:
            try:
                from mlxt.train.plot import plot_curves

                plot_curves(self.run_dir)
            except MlxtError:
                pass
        return TrainResult(self.run_dir, self.step, status, self.last_metrics, self.best_step,
                           None if math.isinf(self.best_loss) else self.best_loss, self.samples)


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
