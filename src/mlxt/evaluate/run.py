"""Evaluating a trained run on one split of its own data.

The split's texts are rebuilt from the run's saved ``[data]`` config with
`mlxt.data.prepare.prepare_data` (deterministic and cached, so it is the split the run was
trained and validated against). Seq2seq: translate every source and score BLEU, chrF (with
sacrebleu signatures) and exact match, plus the teacher-forced loss and perplexity; lm: loss and
perplexity. The report is a small JSON file in the run directory.

Without a split named, the test split is used when the run's data has one and the validation
split otherwise (language models cut only train and valid by default). Translating and the
teacher-forced pass show a progress bar on stderr (tqdm) when they take more than a moment.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from mlxt import guard
from mlxt.errors import MlxtError
from mlxt.evaluate.metrics import bleu, chrf, exact_match, perplexity

PROGRESS_DELAY_S = 2.0  # a bar appears only once a pass has taken this long


def default_split(splits) -> str:
    """``test`` when the data has it, else ``valid`` (else the first split there is)."""
    for name in ("test", "valid"):
        if name in splits:
            return name
    return next(iter(splits))


def progress(total: int, desc: str, unit: str):
    """A tqdm bar on stderr that appears only after `PROGRESS_DELAY_S` (quick passes print nothing)."""
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit=unit, file=sys.stderr, delay=PROGRESS_DELAY_S, leave=False,
                dynamic_ncols=True)


def prepare_split(run, split: str):
    """The run's `PreparedData` and a check that it has ``split``."""
    from mlxt.data.config import DataConfig
    from mlxt.data.prepare import prepare_data
    from mlxt.schema import from_dict
    from mlxt.train.setup import same_tokenizers

    section = run.run_config.get("data")
    if not section:
        raise MlxtError(f"{run.path}/config.toml: no [data] section, so there is no split to evaluate on")
    prepared = prepare_data(from_dict(DataConfig, section, "[data]"), run.config.kind)
    if not same_tokenizers(prepared.tokenizers, run.tokenizers):
        raise MlxtError(f"{run.path}/tokenizer: the corpus or [data] changed since this run was trained (the data "
                        "prepared now gives another tokenizer), so its splits are not the ones the run held out; "
                        "evaluate with the original corpus, or translate your own test set with `mlxt translate`")
    if split is not None and split not in prepared.texts:
        raise MlxtError(f"--split {split}: this run's data has the splits {', '.join(prepared.splits)}")
    return prepared



def teacher_forced_loss(model, prepared, split: str) -> dict:
    from mlxt.train.evaluation import validation_loss

    batches = prepared.batches(split, shuffle=False)
    with progress(len(batches), f"loss on {split}", "batch") as bar:
        out = validation_loss(model, counted(batches, bar))
    if not out:
        return {}
    return {"loss": out["valid_loss"], "perplexity": perplexity(out["valid_loss"])}


def counted(items, bar):
    for item in items:
        yield item
        bar.update(1)


def translate_with_progress(model, tokenizers: dict, texts: list[str], beam_size: int, batch_size: int,
                            desc: str, **search) -> list[str]:
    """`mlxt.decode.translate.translate` in batches, with a progress bar counting sentences.

    The sentences are ordered by length before being cut into batches, as `translate` itself
    does, so the batches (and hence the translations) are the same as one call over all texts."""
    from mlxt.decode.translate import encode_sources, translate_ids

    sources = encode_sources(texts, tokenizers["src"], model.config.eos_id, model.config.max_len)
    order = sorted(range(len(sources)), key=lambda i: -len(sources[i]))
    out = [""] * len(texts)
    with progress(len(texts), desc, "sentence") as bar:
        for start in range(0, len(order), batch_size):
            chunk = order[start : start + batch_size]
            hyps = translate_ids(model, [sources[i] for i in chunk], beam_size, 1, batch_size, **search)
            for i, h in zip(chunk, hyps):
                out[i] = tokenizers["tgt"].decode(h[0].tokens) if h else ""
            bar.update(len(chunk))
    return out


def score_translations(hypotheses: list[str], references: list[str]) -> dict:
    """Corpus BLEU and chrF (sacrebleu, with their signatures) and exact match, in percent."""
    b, c = bleu(hypotheses, references), chrf(hypotheses, references)
    return {"bleu": b["score"], "bleu_signature": b["signature"],
            "chrf": c["score"], "chrf_signature": c["signature"],
            "exact_match": exact_match(hypotheses, references)}


def evaluate_run(run, split: str | None = None, beam_size: int = 5, batch_size: int = 32,
                 limit: int | None = None, **search) -> dict:
    """Metrics of ``run`` (a `LoadedRun`) on ``split`` as a JSON-able dict; ``split=None``
    means `default_split` of the run's data (the report's ``split`` says which)."""
    kind = run.config.kind
    if kind not in ("seq2seq", "lm"):
        raise MlxtError(f"{run.path}: evaluate handles seq2seq and lm runs, this one is {kind}")
    prepared = prepare_split(run, split)
    split = split or default_split(prepared.splits)
    report = {"run": str(run.path), "checkpoint": run.checkpoint.name, "split": split, "kind": kind}
    started = time.perf_counter()
    if kind == "seq2seq":
        pairs = prepared.texts[split][:limit] if limit else prepared.texts[split]
        sources, references = [s for s, _ in pairs], [t for _, t in pairs]
        hypotheses = translate_with_progress(run.model, run.tokenizers, sources, beam_size, batch_size,
                                             f"translating {split}", **search)
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
