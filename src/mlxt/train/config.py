"""The training TOML: ``[model]``, ``[data]`` and ``[train]`` sections, with ``--set`` overrides.

Each section is checked against its dataclass by `mlxt.schema.from_dict`, so an unknown key or a
wrong type is a one-line `MlxtError` naming the key and listing the valid ones. ``[data]`` is a
`mlxt.data.config.DataConfig` for text models and a `SeriesConfig` (synthetic series) for
``kind = "regression"``. Vocabulary sizes in ``[model]`` are filled in from the tokenizers
trained on the data, so a config need not state them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from mlxt.errors import MlxtError
from mlxt.model import ModelConfig
from mlxt.schema import from_dict, to_dict
from mlxt.data.series import SeriesConfig
from mlxt.train.schedules import SCHEDULES, UNITS
from mlxt.train.tomlio import read_toml, tomllib

SECTIONS = ("model", "data", "train")


@dataclass
class TrainConfig:
    """The ``[train]`` section.

    steps: optimizer updates to run (each of ``grad_accumulation`` batches); with ``epochs > 0``
        training also stops when the training data iterator finishes that many epochs.
    lr / schedule / warmup_steps / min_lr: peak learning rate and its schedule
        (see `mlxt.train.schedules`).
    weight_decay / betas / eps: AdamW (with bias correction).
    label_smoothing: for token models; clip_norm: global gradient-norm clip (0 = off).
    eval_every / eval_batches (0 = the whole validation split) / bleu_samples (seq2seq, 0 = off).
    save_every / keep_last: checkpoint interval and how many recent checkpoints to keep (0 = all;
        the best one is always kept). early_stopping: stop after this many evaluations without
        a better validation loss (0 = never).
    max_minutes: stop (with evaluation and checkpoint) after this much wall time in this process
        (0 = no limit); for demos and fixed compute budgets.
    schedule_unit: ``"steps"`` (default): warmup and decay follow the update counter over
        ``steps``. ``"time"``: they follow the fraction of the ``max_minutes`` budget trained so
        far, so the run ends at ``min_lr`` whatever the machine's speed; the budget then counts
        training time over all resumes, and ``steps`` is only a ceiling.
    warmup_fraction: with ``schedule_unit = "time"``, the warmup as a fraction of the budget
        (``warmup_steps`` must then be 0). schedule_counts_eval: with ``"time"``, count
        evaluation and checkpoint time in the budget too (default: training time only).
    compile: run the step through `mx.compile`. log_every: metrics/log interval in steps.
    out_dir / run_dir: the run directory is ``run_dir`` if set, else ``out_dir/<config name>``.
    dist_timeout: data-parallel runs (see `mlxt.train.distributed`): seconds a rank may go without
        progress (waiting for the others at a step, evaluation or checkpoint) before it stops
        with an error; 0 = wait forever.
    """

    steps: int = 1000
    epochs: int = 0
    lr: float = 1e-3
    schedule: str = "noam"
    warmup_steps: int = 0
    min_lr: float = 0.0
    weight_decay: float = 0.0
    betas: list[float] = field(default_factory=lambda: [0.9, 0.98])
    eps: float = 1e-9
    label_smoothing: float = 0.1
    clip_norm: float = 1.0
    grad_accumulation: int = 1
    eval_every: int = 500
    eval_batches: int = 0
    bleu_samples: int = 100
    save_every: int = 500
    keep_last: int = 3
    early_stopping: int = 0
    max_minutes: float = 0.0
    schedule_unit: str = "steps"
    warmup_fraction: float = 0.0
    schedule_counts_eval: bool = False
    seed: int = 0
    compile: bool = True
    log_every: int = 50
    out_dir: str = "runs"
    run_dir: str = ""
    dist_timeout: float = 600.0

    def __post_init__(self) -> None:
        def bad(key: str, expected: str) -> MlxtError:
            return MlxtError(f"[train] {key} = {getattr(self, key)!r}: expected {expected}")

        if self.schedule not in SCHEDULES:
            raise bad("schedule", "one of " + ", ".join(SCHEDULES))
        for key in ("steps", "grad_accumulation", "eval_every", "save_every", "log_every"):
            if getattr(self, key) <= 0:
                raise bad(key, "a positive integer")
        for key in ("epochs", "warmup_steps", "eval_batches", "bleu_samples", "keep_last", "early_stopping"):
            if getattr(self, key) < 0:
                raise bad(key, "an integer >= 0")
        if self.lr <= 0:
            raise bad("lr", "a positive number")
        if self.min_lr < 0 or self.min_lr > self.lr:
            raise bad("min_lr", f"a number in [0, lr={self.lr}]")
        if len(self.betas) != 2 or not all(0 <= b < 1 for b in self.betas):
            raise bad("betas", "two numbers in [0, 1)")
        if not 0 <= self.label_smoothing < 1:
            raise bad("label_smoothing", "a number in [0, 1)")
        if self.max_minutes < 0:
            raise bad("max_minutes", "a number >= 0")
        self._check_schedule_unit(bad)
        if self.dist_timeout < 0:
            raise bad("dist_timeout", "a number of seconds >= 0")
        if self.clip_norm < 0 or self.weight_decay < 0 or self.eps <= 0:
            raise MlxtError("[train] clip_norm and weight_decay must be >= 0 and eps > 0")

    def _check_schedule_unit(self, bad) -> None:
        if self.schedule_unit not in UNITS:
            raise bad("schedule_unit", "one of " + ", ".join(f'"{u}"' for u in UNITS))
        if not 0 <= self.warmup_fraction < 1:
            raise bad("warmup_fraction", "a number in [0, 1)")
        if self.schedule_unit == "steps":
            if self.warmup_fraction:
                raise bad("warmup_fraction", 'schedule_unit = "time" (with steps, use warmup_steps)')
            return
        if self.max_minutes <= 0:
            raise MlxtError('[train] schedule_unit = "time": needs max_minutes > 0 (the time budget '
                            "the schedule follows)")
        if self.warmup_steps:
            raise MlxtError('[train] warmup_steps = {}: with schedule_unit = "time" the warmup is '
                            "warmup_fraction (a fraction of max_minutes); set warmup_steps = 0"
                            .format(self.warmup_steps))
        if self.schedule == "noam" and self.warmup_fraction <= 0:
            raise MlxtError('[train] schedule = "noam" with schedule_unit = "time": needs warmup_fraction > 0')


@dataclass
class RunConfig:
    """A parsed training config: the raw ``[model]`` table (vocabulary sizes are filled later),
    the data and train sections as dataclasses, and where it came from."""

    model: dict
    data: object
    train: TrainConfig
    name: str = "run"

    @property
    def kind(self) -> str:
        return self.model.get("kind", "seq2seq")

    def model_config(self, **fill) -> ModelConfig:
        """The `ModelConfig`, with ``fill`` (e.g. vocabulary sizes) taking the place of unset keys."""
        values = dict(self.model)
        for key, value in fill.items():
            if not values.get(key):
                values[key] = value
        return from_dict(ModelConfig, values, "[model]")

    def to_dict(self, model: ModelConfig | None = None) -> dict:
        return {
            "model": model.to_dict() if model is not None else dict(self.model),
            "data": to_dict(self.data),
            "train": to_dict(self.train),
        }

    def run_dir(self) -> Path:
        return Path(self.train.run_dir) if self.train.run_dir else Path(self.train.out_dir) / self.name


def parse_override(text: str) -> tuple[str, str, object]:
    """``section.key=value`` -> (section, key, value); the value is a TOML literal when it parses
    as one (``3``, ``1e-3``, ``true``, ``[1, 2]``, ``"x"``), else the plain string."""
    if "=" not in text:
        raise MlxtError(f"--set {text!r}: expected section.key=value")
    dotted, raw = text.split("=", 1)
    dotted = dotted.strip()
    if "." not in dotted:
        raise MlxtError(f"--set {text!r}: expected section.key=value with section one of {', '.join(SECTIONS)}")
    section, key = dotted.split(".", 1)
    if section not in SECTIONS:
        raise MlxtError(f"--set {text!r}: unknown section '{section}'; valid sections: {', '.join(SECTIONS)}")
    raw = raw.strip()
    try:
        value = tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw
    return section, key, value


def check_model_section(model: dict) -> None:
    """Key and type check of ``[model]`` before the vocabulary sizes are known."""
    probe = dict(model)
    if probe.get("kind", "seq2seq") in ("seq2seq", "lm") and not probe.get("vocab_size"):
        # just wide enough for the given ids, so the size checks see only sizes the user chose
        ids = [probe.get(k) for k in ("pad_id", "bos_id", "eos_id", "decoder_start_id")]
        probe["vocab_size"] = max([2] + [i for i in ids if type(i) is int and 0 <= i < 1 << 31]) + 1
    if probe.get("kind") == "regression":
        probe["input_dim"] = probe.get("input_dim") or 1
    from_dict(ModelConfig, probe, "[model]")


def config_from_dict(raw: dict, name: str = "run", where: str = "config") -> RunConfig:
    for section in raw:
        if section not in SECTIONS:
            raise MlxtError(f"{where}: unknown section [{section}]; valid sections: {', '.join(SECTIONS)}")
        if not isinstance(raw[section], dict):
            raise MlxtError(f"{where}: '{section}' must be a table [{section}]")
    model = dict(raw.get("model", {}))
    check_model_section(model)
    if model.get("kind", "seq2seq") == "regression":
        data = from_dict(SeriesConfig, raw.get("data", {}), "[data]")
    else:
        from mlxt.data.config import DataConfig

        data = from_dict(DataConfig, raw.get("data", {}), "[data]")
    train = from_dict(TrainConfig, raw.get("train", {}), "[train]")
    return RunConfig(model, data, train, name)


def load_config(path: str | Path, overrides: list[str] = ()) -> RunConfig:
    """Read a training TOML and apply ``--set section.key=value`` overrides."""
    path = Path(path)
    raw = read_toml(path)
    for text in overrides:
        section, key, value = parse_override(text)
        raw.setdefault(section, {})[key] = value
    return config_from_dict(raw, name=path.stem, where=str(path))
