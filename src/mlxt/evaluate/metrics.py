"""Translation and language-model metrics.

BLEU and chrF come from sacrebleu with their signatures (which record tokenization, smoothing
and version, so scores can be compared across papers); exact match is the share of hypotheses
equal to their reference after stripping surrounding whitespace; perplexity is ``exp`` of the
mean per-token negative log-likelihood.
"""

from __future__ import annotations

import math


def bleu(hypotheses: list[str], references: list[str]) -> dict:
    import sacrebleu

    metric = sacrebleu.metrics.BLEU()
    result = metric.corpus_score(hypotheses, [references])
    return {"score": result.score, "signature": str(metric.get_signature()), "text": str(result)}


def chrf(hypotheses: list[str], references: list[str]) -> dict:
    import sacrebleu

    metric = sacrebleu.metrics.CHRF()
    result = metric.corpus_score(hypotheses, [references])
    return {"score": result.score, "signature": str(metric.get_signature()), "text": str(result)}


def exact_match(hypotheses: list[str], references: list[str]) -> float:
    """Percentage (0-100) of hypotheses identical to their reference."""
    if len(hypotheses) != len(references):
        raise ValueError(f"{len(hypotheses)} hypotheses but {len(references)} references")
    if not references:
        return 0.0
    same = sum(h.strip() == r.strip() for h, r in zip(hypotheses, references))
    return 100.0 * same / len(references)


def perplexity(mean_loss: float) -> float:
    """``exp(mean negative log-likelihood)`` (capped to stay finite)."""
    return math.exp(min(mean_loss, 700.0))
