"""Evaluating a trained run on one split of its own data.

The split's texts are rebuilt from the run's saved ``[data]`` config with
`mlxt.data.prepare.prepare_data` (deterministic and cached, so it is the split the run was
trained and validated against). Seq2seq: translate every source and score BLEU, chrF (with
sacrebleu signatures) and exact match, plus the teacher-forced loss and perplexity; lm: loss and
perplexity. The report is a small JSON file in the run directory.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from mlxt import guard
from mlxt.errors import MlxtError
from mlxt.evaluate.metrics import bleu, chrf, exact_match, perplexity


def prepare_split(run, split: str):
    """The run's `PreparedData` and a check that it has ``split``."""
    from mlxt.data.config import DataConfig
    from mlxt.data.prepare import prepare_data
    from mlxt.schema import from_dict

    section = run.run_config.get("data")
    if not section:
        raise MlxtError(f"{run.path}/config.toml: no [data] section, so there is no split to evaluate on")
    prepared = prepare_data(from_dict(DataConfig, section, "[data]"), run.config.kind)
    if not same_tokenizers(prepared.tokenizers, run.tokenizers):
        raise MlxtError(f"{run.path}/tokenizer: the corpus or [data] changed since this run was trained (the data "
                        "prepared now gives another tokenizer), so its splits are not the ones the run held out; "
                        "evaluate with the original corpus, or translate your own test set with `mlxt translate`")
    if split not in prepared.texts:
        raise MlxtError(f"--split {split}: this run's data has the splits {', '.join(prepared.splits)}")
    return prepared


def same_tokenizers(a: dict, b: dict) -> bool:
    """Whether two ``{"src", "tgt"}`` / ``{"text"}`` tokenizer sets are the same (as saved)."""
    return a.keys() == b.keys() and all(a[k].to_dict() == b[k].to_dict() for k in a)


def teacher_forced_loss(model, prepared, split: str) -> dict:
    from mlxt.train.evaluation import validation_loss

    out = validation_loss(model, prepared.batches(split, shuffle=False))
    if not out:
        return {}
    return {"loss": out["valid_loss"], "perplexity": perplexity(out["valid_loss"])}


def score_translations(hypotheses: list[str], references: list[str]) -> dict:
    """Corpus BLEU and chrF (sacrebleu, with their signatures) and exact match, in percent."""
    b, c = bleu(hypotheses, references), chrf(hypotheses, references)
    return {"bleu": b["score"], "bleu_signature": b["signature"],
            "chrf": c["score"], "chrf_signature": c["signature"],
            "exact_match": exact_match(hypotheses, references)}


def evaluate_run(run, split: str = "test", beam_size: int = 5, batch_size: int = 32, limit: int | None = None,
                 **search) -> dict:
    """Metrics of ``run`` (a `LoadedRun`) on ``split`` as a JSON-able dict."""
    kind = run.config.kind
    if kind not in ("seq2seq", "lm"):
        raise MlxtError(f"{run.path}: evaluate handles seq2seq and lm runs, this one is {kind}")
    prepared = prepare_split(run, split)
    report = {"run": str(run.path), "checkpoint": run.checkpoint.name, "split": split, "kind": kind}
    started = time.perf_counter()
    if kind == "seq2seq":
        from mlxt.decode.translate import translate

        pairs = prepared.texts[split][:limit] if limit else prepared.texts[split]
        sources, references = [s for s, _ in pairs], [t for _, t in pairs]
        hypotheses = translate(run.model, run.tokenizers, sources, beam_size=beam_size, batch_size=batch_size,
                               **search)
        report.update({
            "sentences": len(pairs), "beam_size": beam_size,
            **score_translations(hypotheses, references),
            "examples": [{"source": s, "reference": r, "hypothesis": h}
                         for s, r, h in list(zip(sources, references, hypotheses))[:5]],
        })
    report.update(teacher_forced_loss(run.model, prepared, split))
    report["seconds"] = round(time.perf_counter() - started, 2)
    return report


def write_report(run, report: dict, path: str | Path | None = None) -> Path:
    path = Path(path) if path else Path(run.path) / f"eval-{report['split']}-{report['checkpoint']}.json"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise MlxtError(f"{path}: cannot write the report ({exc.strerror or exc})") from None
    with guard.atomic_output(path, "the report") as f:
        f.write(json.dumps(report, indent=2, ensure_ascii=False) + "\n")
    return path
