"""Beam search for the encoder-decoder `Transformer`: all sentences and all beams of a batch
advance together as ``(B * beam, ...)`` arrays; the only Python loop is over time steps. The
model runs in MLX; the per-step bookkeeping (log-softmax, top candidates, n-best pools) runs on
the host in numpy, vectorised over sentences and beams, after the one sync per step that reads
the logits (numpy's exp is an order of magnitude faster than MLX's CPU kernels at this size,
and the stopping test needs the values on the host anyway). Cutting each row to its best
candidates uses mlxt's native top-k kernel when it is loaded (about 50x numpy's partition at a
58k vocabulary), numpy's partition otherwise.

Each step, for every sentence:
1. every live beam is extended by every token: ``score = beam score + log p(token)``;
2. the best ``2 * beam`` extensions are kept (so that ``beam`` of them can continue even if
   some end the sentence);
3. extensions that end the sentence (end-of-sentence, or the length limit) are offered to the
   sentence's n-best list with score ``sum log p / penalty(length)``; with ``candidates="topk"``
   only those among the best ``beam`` extensions are (Hugging Face, fairseq); with
   ``candidates="all"`` every live beam's end-of-sentence extension is (never worse, and the
   search is exhaustive once the beam holds every prefix);
4. the best ``beam`` extensions that did not end continue; the self-attention caches follow
   their parents through `LayerCache.reorder`.

A sentence stops when its n-best list is full and (``early_stopping``): ``True`` -- at once;
``False`` -- the best live beam, scored at its current length, cannot beat the worst finished
one; ``"never"`` -- not even at the length limit (exact for non-negative ``alpha``). These are
the rules of Hugging Face ``generate(num_beams=...)``: with ``penalty="plain"``, a fixed
``max_len`` and the matching ``banned_ids``/``min_len``/``forced_eos``, the results are the
same (see `hf_beam_options`). The length counts generated tokens including end-of-sentence.
"""

from __future__ import annotations

from dataclasses import dataclass

import mlx.core as mx
import numpy as np

from mlxt import kernels
from mlxt.decode.cache import make_cache
from mlxt.decode.limits import target_limits
from mlxt.decode.rules import TokenRules, default_banned_ids, length_penalty as penalty_fn

EARLY_STOPPING = (True, False, "never")


@dataclass
class Hypothesis:
    """One finished translation: ``tokens`` (no start/end token), ``score`` (length-normalised),
    ``logprob`` (summed log-probability, end-of-sentence included), ``ended`` (it produced
    end-of-sentence rather than hitting the length limit)."""

    tokens: list[int]
    score: float
    logprob: float
    ended: bool


def beam_search(model, src: mx.array, beam_size: int = 5, **options) -> list[list[int]]:
    """The best translation of each sentence of ``src (B, Ls)`` as a token list (see
    `beam_search_nbest` for the options)."""
    return [hyps[0].tokens if hyps else [] for hyps in beam_search_nbest(model, src, beam_size, n_best=1, **options)]


def beam_search_nbest(model, src: mx.array, beam_size: int = 5, n_best: int | None = None,
                      length_penalty: float = 0.6, penalty: str = "gnmt", max_len: int | None = None,
                      max_len_a: float = 1.5, max_len_b: int = 10, min_len: int = 0, early_stopping=False,
                      banned_ids=None, forced_eos: bool = False, candidates: str = "topk",
                      src_mask: mx.array | None = None) -> list[list[Hypothesis]]:
    """The ``n_best`` (default ``beam_size``) best hypotheses of each sentence, best first.

    ``src``: ``(B, Ls)`` ids with end-of-sentence appended, right-padded. ``length_penalty``:
    the exponent ``alpha`` of ``penalty`` (``gnmt`` ``((5+len)/6)^alpha`` or ``plain``
    ``len^alpha``). ``max_len`` (fixed) or ``max_len_a * src_len + max_len_b``: most generated
    tokens. ``min_len``: fewest tokens before end-of-sentence. ``banned_ids``: never generated
    (default pad and decoder-start). ``forced_eos``: the last allowed token must be
    end-of-sentence.
    """
    if beam_size < 1:
        raise ValueError(f"beam_size must be >= 1, got {beam_size}")
    if early_stopping not in EARLY_STOPPING:
        raise ValueError(f"early_stopping must be True, False or 'never', got {early_stopping!r}")
    if candidates not in ("topk", "all"):
        raise ValueError(f"candidates must be 'topk' or 'all', got {candidates!r}")
    penalty_fn(1, length_penalty, penalty)  # validates the kind
    cfg = model.config
    k, V, B = beam_size, cfg.vocab_size, src.shape[0]
    n_best = k if n_best is None else min(n_best, k)
    src_mask = model.source_mask(src) if src_mask is None else src_mask
    limits_np = target_limits(src_mask, cfg.max_len, max_len_a, max_len_b, max_len)
    steps = int(limits_np.max())
    rules = TokenRules(V, cfg.eos_id, default_banned_ids(cfg) if banned_ids is None else tuple(banned_ids),
                       min_len, forced_eos)

    # The first step runs one row per sentence (its k beams all start from the same token) and
    # the caches then grow to k rows per sentence; the memory is read only at that step.
    memory = model.encode(src, src_mask)
    mask_rep = mx.repeat(src_mask, k, axis=0)
    cache = make_cache(model, capacity=steps)
    K2 = min(2 * k, k * V)
    top_ranks = np.arange(K2) < k
    base = (np.arange(B) * k)[:, None]
    limits_rep = np.repeat(limits_np, k)
    if early_stopping == "never" and length_penalty > 0:
        bound_penalty = penalty_fn(limits_np.astype(np.float64), length_penalty, penalty)
    else:
        bound_penalty = None

    run_scores = np.full((B, k), -np.inf, dtype=np.float32)
    run_scores[:, 0] = 0.0
    run_seqs = np.zeros((B, k, steps), dtype=np.int32)
    pool = _Pool(B, k, steps)
    done = np.zeros(B, dtype=bool)
    tokens = mx.full((B, 1), cfg.start_id, dtype=mx.int32)

    for t in range(1, steps + 1):
        logits = model.decode(tokens, memory, src_mask if t == 1 else mask_rep, cache=cache)[:, -1, :]
        # a view of MLX's buffer, not a copy (the rules then write into it: nothing else reads it)
        host = np.asarray(logits.astype(mx.float32))
        scorer = _StepScores(np.repeat(host, k, axis=0) if t == 1 and k > 1 else host, rules, t, limits_rep,
                             cfg.eos_id)
        idx, vals = scorer.best(run_scores, K2)
        parent, token = idx // V, (idx % V).astype(np.int32)
        cand_seqs = np.take_along_axis(run_seqs, parent[:, :, None], axis=1)
        cand_seqs[:, :, t - 1] = token
        is_eos = token == cfg.eos_id
        at_limit = (limits_np <= t)[:, None]
        pen = penalty_fn(float(t), length_penalty, penalty)

        # Hypotheses that end at this step, offered to the n-best pool.
        if candidates == "topk":
            ending = (is_eos | at_limit) & top_ranks[None, :]
            f_logp, f_seqs, f_eos = vals, cand_seqs, is_eos
        else:
            eos_seqs = run_seqs.copy()
            eos_seqs[:, :, t - 1] = cfg.eos_id
            eos_logp = run_scores + scorer.eos_logprobs().reshape(B, k)
            ending = np.concatenate([at_limit & ~is_eos, np.ones((B, k), bool)], axis=1)
            f_logp = np.concatenate([vals, eos_logp], axis=1)
            f_seqs = np.concatenate([cand_seqs, eos_seqs], axis=1)
            f_eos = np.concatenate([is_eos, np.ones((B, k), bool)], axis=1)
        ending &= ~done[:, None] & (f_logp > -np.inf)
        pool.offer(np.where(ending, f_logp / pen, -np.inf), f_logp, f_seqs, t, f_eos)

        # The best extensions that did not end continue.
        keys = np.where(is_eos | at_limit, -np.inf, vals)
        sel = np.argsort(-keys, axis=-1, kind="stable")[:, :k]
        run_scores = np.take_along_axis(keys, sel, axis=-1)
        run_seqs = np.take_along_axis(cand_seqs, sel[:, :, None], axis=1)
        parents = np.take_along_axis(parent, sel, axis=-1)

        best = run_scores[:, 0]
        full = np.all(pool.scores > -np.inf, axis=1)
        if early_stopping is True:
            satisfied = full
        else:
            with np.errstate(invalid="ignore"):
                bound = best / (bound_penalty if bound_penalty is not None else pen)
            satisfied = full & (bound <= pool.scores[:, -1])
        done |= satisfied | (limits_np <= t) | (best == -np.inf)
        if done.all():
            break
        tokens = mx.array(run_seqs[:, :, t - 1].reshape(B * k, 1))
        flat_parents = (base + parents).reshape(-1).astype(np.int32)
        if t == 1:  # from one row per sentence to k: every cache, cross-attention's included
            index = mx.array(flat_parents // k)
            for layer in cache:
                layer.reorder(index, static=True)
        else:
            index = mx.array(flat_parents)
            for layer in cache:
                layer.reorder(index, static=False)
    return pool.hypotheses(n_best, cfg.eos_id)


class _StepScores:
    """One step's next-token log-probabilities, ``log_softmax(logits)`` with the `TokenRules`
    applied, without writing them out for the whole vocabulary.

    Adding a beam's score shifts all of its row by one constant, so a sentence's best ``K2``
    extensions are among the best ``K2`` tokens of each of its beams: the rows are cut to those
    first (one partition of the raw logits), and only they are normalised and compared. Each
    row's max and ``log(sum(exp(x - max)))`` come from one native pass (`mlxt.kernels.log_norm`,
    numpy's when the kernels are off); the candidates are then normalised with the same float32
    operations as a full log-softmax with that normaliser (``(x - max) - log_norm``), so they are
    bit-for-bit what it gives.
    This halves the host's share of a beam step at a 58k vocabulary (see docs/performance.md).
    """

    def __init__(self, logits: np.ndarray, rules: TokenRules, step: int, limits: np.ndarray, eos_id: int):
        self.logits, self.eos_id = logits, eos_id
        native = kernels.log_norm(logits)  # one vectorised, multi-threaded pass per row
        if native is not None:
            self.top, self.log_norm = native
        else:
            self.top = logits.max(axis=-1, keepdims=True)
            work = np.subtract(logits, self.top)
            np.exp(work, out=work)
            self.log_norm = np.log(work.sum(axis=-1, keepdims=True))
            del work
        # The rules on the raw logits: -inf stays -inf after normalising; forced rows are set below.
        self.forced = (limits == step) if rules.forced_eos else None
        rules.apply_np(logits, step, limits)

    def _logprobs(self, raw: np.ndarray, tokens: np.ndarray) -> np.ndarray:
        out = (raw - self.top) - self.log_norm
        if self.forced is not None and self.forced.any():  # only end-of-sentence, with log p = 0
            rows = self.forced
            out[rows] = np.where(tokens[rows] == self.eos_id, np.float32(0.0), np.float32(-np.inf))
        return out

    def best(self, run_scores: np.ndarray, K2: int) -> tuple[np.ndarray, np.ndarray]:
        """``(idx, vals)``, ``(B, K2)`` each, best first: ``idx = parent * V + token`` and
        ``vals = run_score[parent] + log p(token)``, the best of each sentence's ``k * V``."""
        B, k = run_scores.shape
        N, V = self.logits.shape
        kk = min(K2, V)
        native = kernels.top_k(self.logits, kk) if kk < V else None
        if native is not None:  # one vectorised, multi-threaded pass per row (mlxt.kernels)
            raw, tokens = native
        elif kk < V:
            tokens = np.argpartition(self.logits, V - kk, axis=-1)[:, V - kk:]
            raw = np.take_along_axis(self.logits, tokens, axis=-1)
        else:
            tokens = np.broadcast_to(np.arange(V), (N, V))
            raw = self.logits
        total = (run_scores.reshape(N, 1) + self._logprobs(raw, tokens)).reshape(B, k * kk)
        flat = (tokens + (np.arange(N) % k)[:, None] * V).reshape(B, k * kk)
        pick = np.argpartition(-total, K2 - 1, axis=-1)[:, :K2] if K2 < k * kk else np.broadcast_to(
            np.arange(k * kk), (B, k * kk))
        vals = np.take_along_axis(total, pick, axis=-1)
        order = np.argsort(-vals, axis=-1, kind="stable")
        return np.take_along_axis(np.take_along_axis(flat, pick, axis=-1), order, axis=-1), \
            np.take_along_axis(vals, order, axis=-1)

    def eos_logprobs(self) -> np.ndarray:
        """``(N,)`` log-probability of end-of-sentence in every row."""
        raw = self.logits[:, self.eos_id : self.eos_id + 1]
        return self._logprobs(raw, np.full(raw.shape, self.eos_id))[:, 0]


class _Pool:
    """Each sentence's ``k`` best finished hypotheses so far, sorted best first."""

    def __init__(self, B: int, k: int, steps: int):
        self.k = k
        self.scores = np.full((B, k), -np.inf, dtype=np.float32)
        self.logp = np.zeros((B, k), dtype=np.float32)
        self.seqs = np.zeros((B, k, steps), dtype=np.int32)
        self.length = np.zeros((B, k), dtype=np.int32)
        self.ended = np.zeros((B, k), dtype=bool)

    def offer(self, scores, logp, seqs, length: int, ended) -> None:
        merged = np.concatenate([self.scores, scores], axis=1)
        top = np.argsort(-merged, axis=-1, kind="stable")[:, : self.k]

        def pick(old, new):
            both = np.concatenate([old, new], axis=1)
            return np.take_along_axis(both, top if both.ndim == 2 else top[:, :, None], axis=1)

        self.scores = np.take_along_axis(merged, top, axis=1)
        self.logp = pick(self.logp, logp)
        self.seqs = pick(self.seqs, seqs)
        self.length = pick(self.length, np.full(scores.shape, length, dtype=np.int32))
        self.ended = pick(self.ended, ended)

    def hypotheses(self, n_best: int, eos_id: int) -> list[list[Hypothesis]]:
        out = []
        for b in range(self.scores.shape[0]):
            hyps = []
            for j in range(min(n_best, self.k)):
                if not np.isfinite(self.scores[b, j]):
                    break
                toks = self.seqs[b, j, : self.length[b, j]].tolist()
                if self.ended[b, j] and toks and toks[-1] == eos_id:
                    toks = toks[:-1]
                hyps.append(Hypothesis(toks, float(self.scores[b, j]), float(self.logp[b, j]), bool(self.ended[b, j])))
            out.append(hyps)
        return out
