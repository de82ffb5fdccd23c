"""Search options stored with a run: the ``[decode]`` section of ``config.toml``.

A run may record how it is best decoded (a converted Marian model, for instance, records the
options from `hf_beam_options` so that ``mlxt translate`` matches Hugging Face by default).
`decode_options` checks the section and fills in the defaults; command-line flags override it.
"""

from __future__ import annotations

from mlxt.errors import MlxtError

DEFAULTS = {"beam_size": 5, "length_penalty": 0.6, "penalty": "gnmt", "max_len_a": 1.5, "max_len_b": 10,
            "max_len": None, "min_len": 0, "early_stopping": False, "banned_ids": None, "forced_eos": False,
            "candidates": "topk"}

CHOICES = {"penalty": ("gnmt", "plain"), "candidates": ("topk", "all"), "early_stopping": (True, False, "never")}
NUMBERS = {"beam_size": int, "length_penalty": float, "max_len_a": float, "max_len_b": int, "max_len": int,
           "min_len": int}


def decode_options(section: dict, where: str = "[decode]") -> dict:
    """``DEFAULTS`` updated with ``section`` after checking every key and value."""
    options = dict(DEFAULTS)
    for key, value in (section or {}).items():
        if key not in DEFAULTS:
            raise MlxtError(f"{where}: unknown option {key!r} (expected one of {', '.join(DEFAULTS)})")
        if key in CHOICES and not any(value == c and type(value) is type(c) for c in CHOICES[key]):
            raise MlxtError(f"{where}: {key} = {value!r}, expected one of {CHOICES[key]}")
        if key in NUMBERS and value is not None:
            if isinstance(value, bool) or not isinstance(value, (int, float)) or \
                    (NUMBERS[key] is int and not isinstance(value, int)):
                raise MlxtError(f"{where}: {key} = {value!r}, expected {'an integer' if NUMBERS[key] is int else 'a number'}")
        if key == "forced_eos" and not isinstance(value, bool):
            raise MlxtError(f"{where}: forced_eos = {value!r}, expected true or false")
        if key == "banned_ids":
            if not isinstance(value, (list, tuple)) or not all(isinstance(i, int) for i in value):
                raise MlxtError(f"{where}: banned_ids = {value!r}, expected a list of token ids")
            value = tuple(value)
        options[key] = value
    return options
