"""Validation during training: loss and perplexity over the valid split, and for translation a
quick corpus BLEU (sacrebleu) of greedy translations of a fixed sample of valid sentences."""

from __future__ import annotations

import math

import mlx.core as mx
import numpy as np

from mlxt.train.step import batch_loss, to_mx


def validation_loss(model, batches, max_batches: int = 0, reduce=None) -> dict:
    """Per-target mean loss (no label smoothing) over one pass of ``batches``.

    ``reduce([total, count]) -> [total, count]`` sums the totals of data-parallel ranks, each of
    which evaluated its shard of the batches."""
    total, count = 0.0, 0.0
    for i, batch in enumerate(batches):
        if max_batches and i >= max_batches:
            break
        loss, n = batch_loss(model, to_mx(batch), 0.0)
        mx.eval(loss, n)
        total, count = total + loss.item(), count + n.item()
    if reduce is not None:
        total, count = reduce([total, count])
    if count == 0:
        return {}
    mean = total / count
    out = {"valid_loss": mean}
    if model.config.kind != "regression":
        out["valid_ppl"] = math.exp(min(mean, 700.0))
    return out


def _greedy_fallback(model, src: mx.array, max_len: int) -> list[list[int]]:
    """Plain greedy decoding without a cache (used when `mlxt.decode.greedy` is unavailable)."""
    cfg = model.config
    src_mask = model.source_mask(src)
    memory = model.encode(src, src_mask)
    tokens = mx.full((src.shape[0], 1), cfg.start_id, dtype=mx.int32)
    for _ in range(max_len):
        nxt = mx.argmax(model.decode(tokens, memory, src_mask)[:, -1, :], axis=-1).astype(mx.int32)
        tokens = mx.concatenate([tokens, nxt[:, None]], axis=1)
        if bool(mx.all(mx.any(tokens[:, 1:] == cfg.eos_id, axis=1)).item()):
            break
    out = []
    for row in np.array(tokens[:, 1:]).tolist():
        out.append(row[: row.index(cfg.eos_id)] if cfg.eos_id in row else row)
    return out


def translate_ids(model, sources: list[list[int]], max_len: int) -> list[list[int]]:
    """Greedy translations of already-encoded sources (eos appended)."""
    try:
        from mlxt.decode.greedy import greedy
    except ImportError:
        greedy = None
    width = max(len(s) for s in sources)
    src = np.full((len(sources), width), model.config.pad_id, dtype=np.int32)
    for i, s in enumerate(sources):
        src[i, : len(s)] = s
    src = mx.array(src)
    if greedy is None:
        return _greedy_fallback(model, src, max_len)
    return [list(map(int, ids)) for ids in greedy(model, src, max_len=max_len)]


def sample_bleu(model, tokenizers: dict, pairs: list[tuple[str, str]], max_len: int,
                batch_size: int = 32) -> tuple[float, list[tuple[str, str, str]]]:
    """BLEU of greedy translations of ``pairs`` and the (source, reference, hypothesis) triples."""
    import sacrebleu

    src_tok, tgt_tok = tokenizers["src"], tokenizers["tgt"]
    eos = model.config.eos_id
    hyps = []
    for i in range(0, len(pairs), batch_size):
        chunk = pairs[i : i + batch_size]
        sources = [src_tok.encode(s)[: max_len - 1] + [eos] for s, _ in chunk]
        hyps += [tgt_tok.decode(ids) for ids in translate_ids(model, sources, max_len)]
    refs = [t for _, t in pairs]
    score = sacrebleu.corpus_bleu(hyps, [refs]).score if pairs else 0.0
    return score, [(s, t, h) for (s, t), h in zip(pairs, hyps)]


def evaluate(model, data, config, dist, step: int) -> tuple[dict, list]:
    """The evaluation at a training step (``config``: the `RunConfig`; ``dist``: the ranks, which
    each score their shard): ``(validation metrics, BLEU samples)``; the model is left in
    training mode."""
    t = config.train
    model.eval()
    try:
        dist.beat(f"evaluating at step {step}")
        valid = data.batches("valid", seed=t.seed, shuffle=False, rank=dist.rank, world_size=dist.size)
        result = validation_loss(model, valid, t.eval_batches, reduce=dist.sum)
        samples = []
        if dist.is_main and config.kind == "seq2seq" and t.bleu_samples and data.texts.get("valid"):
            pairs = list(data.texts["valid"][: t.bleu_samples])
            result["bleu"], samples = sample_bleu(model, data.tokenizers, pairs, config.data.max_len)
    finally:
        model.train()
    return result, samples
