"""Evaluation: BLEU/chrF (sacrebleu), exact match, loss and perplexity of a run."""

from mlxt.evaluate.metrics import bleu, chrf, exact_match, perplexity

__all__ = ["bleu", "chrf", "exact_match", "perplexity"]
