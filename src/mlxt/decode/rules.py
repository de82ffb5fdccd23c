"""Rules applied to next-token log-probabilities before a search picks tokens.

- ``banned_ids``: never generated (by default the padding and decoder-start tokens, which no
  target sentence contains; Hugging Face's Marian does the same with ``bad_words_ids=[[pad]]``).
- ``min_len``: end-of-sentence is not allowed before ``min_len`` tokens have been produced.
- ``forced_eos``: at the last allowed step only end-of-sentence may follow, with log-probability
  0 (as Hugging Face's ``forced_eos_token_id`` does). Without it a hypothesis that reaches the
  length limit simply ends there, unfinished.

Masked entries become ``-inf``; the remaining log-probabilities are not renormalised. The
rules work on `mx.array` scores (`apply`) and on numpy scores (`apply_np`, for beam search,
whose bookkeeping runs on the host).
"""

from __future__ import annotations

from dataclasses import dataclass

import mlx.core as mx
import numpy as np


@dataclass
class TokenRules:
    vocab_size: int
    eos_id: int
    banned_ids: tuple[int, ...] = ()
    min_len: int = 0
    forced_eos: bool = False

    def __post_init__(self) -> None:
        keep = np.ones(self.vocab_size, dtype=bool)
        for i in self.banned_ids:
            if 0 <= i < self.vocab_size:
                keep[i] = False
        self._banned_np = ~keep if not keep.all() else None
        self._banned = mx.array(self._banned_np) if self._banned_np is not None else None
        self._is_eos = mx.arange(self.vocab_size) == self.eos_id

    def apply(self, logprobs: mx.array, step: int, limits: mx.array | None = None) -> mx.array:
        """``logprobs (N, V)`` for generating token number ``step`` (1-based); ``limits (N,)``
        is each row's most generated tokens (for ``forced_eos``)."""
        neg_inf = mx.array(-float("inf"), dtype=logprobs.dtype)
        if self._banned is not None:
            logprobs = mx.where(self._banned, neg_inf, logprobs)
        if step <= self.min_len:
            logprobs = mx.where(self._is_eos, neg_inf, logprobs)
        if self.forced_eos and limits is not None:
            forced = mx.where(self._is_eos, mx.array(0.0, logprobs.dtype), neg_inf)
            logprobs = mx.where((limits == step)[:, None], forced, logprobs)
        return logprobs

    def apply_np(self, logprobs: np.ndarray, step: int, limits: np.ndarray | None = None) -> np.ndarray:
        """`apply` for numpy scores (modified in place and returned)."""
        if self._banned_np is not None:
            logprobs[:, self._banned_np] = -np.inf
        if step <= self.min_len:
            logprobs[:, self.eos_id] = -np.inf
        if self.forced_eos and limits is not None:
            rows = limits == step
            if rows.any():
                logprobs[rows] = -np.inf
                logprobs[rows, self.eos_id] = 0.0
        return logprobs


def default_banned_ids(config) -> tuple[int, ...]:
    """Padding and the decoder-start token, unless either is also end-of-sentence."""
    return tuple(sorted({config.pad_id, config.start_id} - {config.eos_id}))


def length_penalty(length, alpha: float, kind: str = "gnmt"):
    """The divisor of a hypothesis' summed log-probability at ``length`` generated tokens
    (end-of-sentence included): ``gnmt`` ``((5 + len) / 6) ** alpha`` (Wu et al. 2016) or
    ``plain`` ``len ** alpha`` (Hugging Face, fairseq). Works on numbers and arrays."""
    if kind == "gnmt":
        return ((5.0 + length) / 6.0) ** alpha
    if kind == "plain":
        return length ** alpha
    raise ValueError(f"length penalty kind must be 'gnmt' or 'plain', got {kind!r}")
