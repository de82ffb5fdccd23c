"""The run directories a server answers with: translators (one per language pair) and
language models, each loaded once and named.

A translator's language pair is taken, in this order, from:

1. the command line, ``RUN_DIR:SRC-TGT`` (``runs/de-en:de-en``);
2. the run's ``[data]`` section, ``src_lang`` and ``tgt_lang`` when both are set;
3. a built-in corpus with known languages (``corpus = "tatoeba-deu-eng"``: English -> German,
   turned round by a single ``src_lang`` or ``tgt_lang``);
4. a converted Marian model whose source is named ``opus-mt-SRC-TGT``.

A translator with none of these is refused with a message asking for ``RUN_DIR:SRC-TGT``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from mlxt.errors import MlxtError

LANGUAGE_CODE = re.compile(r"^[a-z]{2,3}([_-][A-Za-z0-9]{2,8})?$")
OPUS_NAME = re.compile(r"opus-mt-([a-z]{2,3})-([a-z]{2,3})(?:$|[^a-z])")


@dataclass
class ServedModel:
    """One loaded run: ``kind`` is ``seq2seq`` or ``lm``; ``pair`` is ``(source, target)`` for
    a translator; ``search`` holds the beam size and search options of its ``[decode]``
    section (as `mlxt translate` uses them)."""

    name: str
    kind: str
    loaded: object
    pair: tuple[str, str] | None = None
    beam_size: int = 5
    search: dict = field(default_factory=dict)
    lowercase: bool = False

    @property
    def model(self):
        return self.loaded.model

    @property
    def tokenizers(self) -> dict:
        return self.loaded.tokenizers


def split_spec(spec: str) -> tuple[str, tuple[str, str] | None]:
    """``RUN_DIR`` or ``RUN_DIR:SRC-TGT`` -> ``(RUN_DIR, pair or None)``."""
    head, sep, tail = spec.rpartition(":")
    if not sep or not head or "/" in tail or Path(spec).is_dir():
        return spec, None
    parts = tail.split("-")
    if len(parts) != 2 or not all(LANGUAGE_CODE.match(p) for p in parts):
        raise MlxtError(f"{spec}: expected RUN_DIR:SRC-TGT with language codes such as de-en, got {tail!r}")
    return head, (parts[0], parts[1])


def languages_of(run_config: dict, where: str) -> tuple[str, str] | None:
    """The language pair a run's config records (see the module docstring), or None."""
    data = run_config.get("data", {}) or {}
    src, tgt = str(data.get("src_lang", "") or ""), str(data.get("tgt_lang", "") or "")
    if src and tgt:
        return src, tgt
    corpus = data.get("corpus", "")
    if corpus:
        from mlxt.data.corpora import CORPORA

        known = getattr(CORPORA.get(corpus), "languages", None)
        if known:
            if (src and src == known[1]) or (tgt and tgt == known[0]):
                return known[1], known[0]
            return tuple(known)
    source = str((run_config.get("convert", {}) or {}).get("source", ""))
    found = OPUS_NAME.search(Path(source).name) if source else None
    if found:
        return found.group(1), found.group(2)
    return None


def load_served(spec: str, checkpoint: str = "best") -> ServedModel:
    """Load ``RUN_DIR[:SRC-TGT]`` for serving."""
    from mlxt.decode.options import decode_options
    from mlxt.train.rundir import load_run

    import mlx.core as mx

    path, pair = split_spec(spec)
    loaded = load_run(path, checkpoint, inference=True)
    mx.eval(loaded.model.parameters())  # nothing lazy left for the model thread to evaluate
    kind = loaded.config.kind
    name = Path(path).resolve().name
    lowercase = bool(loaded.run_config.get("data", {}).get("lowercase", False))
    if kind == "lm":
        if pair:
            raise MlxtError(f"{spec}: holds a language model; a language pair is only for translators")
        return ServedModel(name, kind, loaded, lowercase=lowercase)
    if kind != "seq2seq":
        raise MlxtError(f"{path}: holds a {kind} model; mlxt serve serves translators and language models")
    pair = pair or languages_of(loaded.run_config, f"{path}/config.toml")
    if pair is None:
        raise MlxtError(f"{path}: its config.toml names no languages ([data] src_lang/tgt_lang); "
                        f"give them as {path}:SRC-TGT, e.g. {path}:de-en")
    if pair[0] == pair[1]:
        raise MlxtError(f"{spec}: source and target language are both {pair[0]!r}")
    options = decode_options(loaded.run_config.get("decode", {}), f"{path}/config.toml [decode]")
    beam = options.pop("beam_size")
    return ServedModel(f"{name}:{pair[0]}-{pair[1]}", kind, loaded, pair, beam, options, lowercase)


def load_all(specs: list[str], checkpoint: str = "best") -> list[ServedModel]:
    """Load every ``RUN_DIR[:SRC-TGT]``; refuses two translators for one pair and two
    language models of one name."""
    if not specs:
        raise MlxtError("give at least one RUN_DIR to serve")
    served, pairs, names = [], {}, {}
    for spec in specs:
        item = load_served(spec, checkpoint)
        if item.pair:
            if item.pair in pairs:
                raise MlxtError(f"{spec}: {item.pair[0]}-{item.pair[1]} is already served by {pairs[item.pair]}")
            pairs[item.pair] = spec
        elif item.name in names:
            raise MlxtError(f"{spec}: a language model named {item.name!r} is already served ({names[item.name]})")
        else:
            names[item.name] = spec
        served.append(item)
    return served
