"""Beam-search options that reproduce Hugging Face ``model.generate(num_beams=...)``.

`hf_beam_options` maps a ``generation_config.json`` (as a dict) to keyword arguments of
`beam_search` / `beam_search_nbest`:

- ``num_beams`` -> ``beam_size``; ``length_penalty`` (default 1.0) with ``penalty="plain"``
  (``score / generated_len ** alpha``, end-of-sentence counted);
- ``max_length`` counts the decoder-start token, so at most ``max_length - 1`` tokens are
  generated (``max_new_tokens`` wins when given); ``min_length`` likewise blocks
  end-of-sentence while fewer than ``min_length - 1`` tokens exist;
- ``early_stopping`` (default False), single-token ``bad_words_ids`` -> ``banned_ids``,
  ``forced_eos_token_id`` -> ``forced_eos``; the n-best pool takes only finished hypotheses
  among the best ``num_beams`` extensions (``candidates="topk"``).
"""

from __future__ import annotations


def hf_beam_options(generation_config: dict, num_beams: int | None = None) -> dict:
    gc = generation_config
    beams = num_beams if num_beams is not None else int(gc.get("num_beams") or 1)
    if gc.get("max_new_tokens") is not None:
        max_len = int(gc["max_new_tokens"])
    else:
        max_len = int(gc.get("max_length") or 20) - 1
    bad = gc.get("bad_words_ids") or []
    return {
        "beam_size": beams,
        "length_penalty": float(gc.get("length_penalty", 1.0)),
        "penalty": "plain",
        "max_len": max_len,
        "min_len": max(0, int(gc.get("min_length") or 0) - 1),
        "early_stopping": gc.get("early_stopping", False),
        "banned_ids": tuple(ids[0] for ids in bad if len(ids) == 1),
        "forced_eos": gc.get("forced_eos_token_id") is not None,
        "candidates": "topk",
    }
