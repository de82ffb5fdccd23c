"""Hugging Face MarianMT (opus-mt) -> mlxt: configuration, weights and tokenizers.

A MarianMT model is the paper's post-norm encoder-decoder Transformer with a few choices that
mlxt expresses as ordinary `ModelConfig` options (checked against ``modeling_marian.py``):

- SiLU ("swish") feed-forward activation -> ``activation="silu"``;
- fixed sinusoidal positions with all sines before all cosines, starting at position 0 for both
  encoder and decoder (offset by the cache length while decoding) -> ``sinusoidal_layout="concat"``;
- token embeddings times sqrt(d_model) when ``scale_embedding`` -> ``scale_embedding``;
- no LayerNorm on the embeddings and none after the last layer -> ``final_norm=False``;
- LayerNorm eps 1e-5, attention scaled by head_dim ** -0.5 (mlxt's defaults);
- one embedding table for encoder, decoder and output projection (``share_encoder_decoder_embeddings``
  and ``tie_word_embeddings``) -> ``share_embeddings``/``tie_output``; with separate vocabularies
  the encoder table has ``vocab_size`` rows and the decoder ``decoder_vocab_size`` ->
  ``src_vocab_size``/``vocab_size``;
- a ``final_logits_bias`` added to the logits -> ``logits_bias``;
- decoding starts from ``decoder_start_token_id`` (the pad token) -> ``decoder_start_id``.

Keys that a checkpoint leaves out take `MarianConfig`'s defaults, as in `transformers`.
"""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path

import mlx.core as mx
from mlx.utils import tree_flatten

from mlxt.convert.hf_checkpoint import locate, read_json, read_tensors
from mlxt.data.tokenizers.sentencepiece import SentencePieceTokenizer, read_vocab
from mlxt.errors import MlxtError
from mlxt.model import ModelConfig, build_model
from mlxt.model.positional import sinusoidal_table

# `transformers.MarianConfig` defaults, used for keys a config.json does not set.
MARIAN_DEFAULTS = {
    "vocab_size": 58101, "decoder_vocab_size": None, "max_position_embeddings": 1024,
    "encoder_layers": 12, "encoder_ffn_dim": 4096, "encoder_attention_heads": 16,
    "decoder_layers": 12, "decoder_ffn_dim": 4096, "decoder_attention_heads": 16,
    "activation_function": "gelu", "d_model": 1024, "dropout": 0.1,
    "decoder_start_token_id": 58100, "scale_embedding": False, "pad_token_id": 58100,
    "eos_token_id": 0, "share_encoder_decoder_embeddings": True, "tie_word_embeddings": True,
}
ACTIVATIONS = {"swish": "silu", "silu": "silu", "gelu": "gelu", "relu": "relu"}

# Hugging Face layer sub-module names -> mlxt ones.
ENCODER_LAYER = {
    "self_attn.q_proj": "self_attn.query_proj", "self_attn.k_proj": "self_attn.key_proj",
    "self_attn.v_proj": "self_attn.value_proj", "self_attn.out_proj": "self_attn.out_proj",
    "self_attn_layer_norm": "norm1", "fc1": "ff.linear1", "fc2": "ff.linear2", "final_layer_norm": "norm2",
}
DECODER_LAYER = {
    **{k: v for k, v in ENCODER_LAYER.items() if k != "final_layer_norm"},
    "encoder_attn.q_proj": "cross_attn.query_proj", "encoder_attn.k_proj": "cross_attn.key_proj",
    "encoder_attn.v_proj": "cross_attn.value_proj", "encoder_attn.out_proj": "cross_attn.out_proj",
    "encoder_attn_layer_norm": "norm2", "final_layer_norm": "norm3",
}
TOKENIZER_FILES = ("source.spm", "target.spm", "vocab.json", "target_vocab.json", "tokenizer_config.json")
ORIGINAL_FILES = ("config.json", "generation_config.json") + TOKENIZER_FILES


# -- configuration -------------------------------------------------------------------------------
def _value(hf: dict, key: str, kind: type, where: str):
    value = hf.get(key, MARIAN_DEFAULTS.get(key))
    if kind is int and isinstance(value, list) and len(value) == 1:
        value = value[0]  # eos_token_id may be a one-element list
    ok = isinstance(value, kind) and not (kind is not bool and isinstance(value, bool))
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        value, ok = float(value), True
    if not ok:
        raise MlxtError(f"{where}: '{key}' expected {kind.__name__}, got {value!r}")
    return value


def model_config(hf: dict, where: str = "config.json") -> ModelConfig:
    """The `ModelConfig` of a MarianMT ``config.json`` (as a dict)."""
    if hf.get("model_type") != "marian":
        raise MlxtError(f"{where}: 'model_type' expected \"marian\", got {hf.get('model_type')!r}")
    get = lambda key, kind=int: _value(hf, key, kind, where)  # noqa: E731
    for enc, dec in (("encoder_attention_heads", "decoder_attention_heads"), ("encoder_ffn_dim", "decoder_ffn_dim")):
        if get(enc) != get(dec):
            raise MlxtError(f"{where}: '{enc}'={get(enc)} differs from '{dec}'={get(dec)}; mlxt needs them equal")
    activation = get("activation_function", str)
    if activation not in ACTIVATIONS:
        raise MlxtError(f"{where}: 'activation_function' expected one of {', '.join(ACTIVATIONS)}, got {activation!r}")
    shared = get("share_encoder_decoder_embeddings", bool)
    vocab = get("vocab_size")
    decoder_vocab = hf.get("decoder_vocab_size") or vocab
    pad, start = get("pad_token_id"), get("decoder_start_token_id")
    return ModelConfig(
        kind="seq2seq",
        vocab_size=vocab if shared else int(decoder_vocab),
        src_vocab_size=0 if shared else vocab,
        d_model=get("d_model"),
        num_heads=get("encoder_attention_heads"),
        num_encoder_layers=get("encoder_layers"),
        num_decoder_layers=get("decoder_layers"),
        d_ff=get("encoder_ffn_dim"),
        dropout=get("dropout", float),
        activation=ACTIVATIONS[activation],
        norm_first=False,
        final_norm=False,
        layer_norm_eps=1e-5,
        positional="sinusoidal",
        sinusoidal_layout="concat",
        max_len=get("max_position_embeddings"),
        scale_embedding=get("scale_embedding", bool),
        share_embeddings=shared,
        tie_output=get("tie_word_embeddings", bool),
        logits_bias=True,
        pad_id=pad,
        bos_id=start,
        eos_id=get("eos_token_id"),
        decoder_start_id=start,
    )


GENERATION_KEYS = ("num_beams", "max_length", "max_new_tokens", "min_length", "length_penalty",
                   "early_stopping", "bad_words_ids", "forced_eos_token_id")


def decode_section(hf: dict, generation: dict | None) -> dict:
    """The run's ``[decode]`` section: the checkpoint's own search settings, translated by
    `hf_beam_options` so that ``mlxt translate`` searches as ``model.generate()`` does.

    As in `transformers`, ``generation_config.json`` wins; without one, the generation keys of
    ``config.json`` are used (older opus-mt checkpoints keep them there).
    """
    from mlxt.decode.hf_options import hf_beam_options

    source = generation if generation is not None else {k: hf[k] for k in GENERATION_KEYS if k in hf}
    options = hf_beam_options(source)
    options["banned_ids"] = list(options["banned_ids"])
    return options


# -- weights ---------------------------------------------------------------------------------------
def _layer_names(prefix: str, mlxt_prefix: str, count: int, table: dict) -> dict[str, str]:
    names = {}
    for i in range(count):
        for hf_name, name in table.items():
            for leaf in ("weight", "bias"):
                names[f"{prefix}.layers.{i}.{hf_name}.{leaf}"] = f"{mlxt_prefix}.layers.{i}.{name}.{leaf}"
    return names


def _check_positions(tensors: dict, config: ModelConfig, where: str) -> None:
    """Old checkpoints store the fixed position table; it must be the one mlxt computes."""
    for key in ("model.encoder.embed_positions.weight", "model.decoder.embed_positions.weight"):
        if key in tensors:
            table = tensors[key].astype(mx.float32)
            ours = sinusoidal_table(mx.arange(table.shape[0]), config.d_model, "concat")
            if table.shape != ours.shape or mx.abs(table - ours).max().item() > 1e-2:
                raise MlxtError(f"{where}: '{key}' is not the sinusoidal (sin then cos) table MarianMT uses")


def map_weights(tensors: dict[str, mx.array], config: ModelConfig,
                where: str = "checkpoint") -> tuple[ModelConfig, dict[str, mx.array]]:
    """Hugging Face MarianMTModel tensors -> mlxt `Transformer` parameters (by dotted name).

    Returns the config too: without ``tie_word_embeddings`` `transformers` ties nothing, so
    encoder and decoder read their own tables even when ``share_encoder_decoder_embeddings`` is
    set; they stay one mlxt table only when the checkpoint's two tables are identical.
    """
    tensors = dict(tensors)
    _check_positions(tensors, config, where)
    names = {
        **_layer_names("model.encoder", "encoder", config.num_encoder_layers, ENCODER_LAYER),
        **_layer_names("model.decoder", "decoder", config.num_decoder_layers, DECODER_LAYER),
    }
    out = {}
    for hf_name, name in names.items():
        if hf_name not in tensors:
            raise MlxtError(f"{where}: missing tensor '{hf_name}'")
        out[name] = tensors.pop(hf_name)

    def first(*keys):
        for key in keys:
            if key in tensors:
                return tensors[key]
        raise MlxtError(f"{where}: missing tensor '{keys[0]}'")

    enc, dec, shared = "model.encoder.embed_tokens.weight", "model.decoder.embed_tokens.weight", "model.shared.weight"
    if config.tie_output:  # `transformers` ties the output, decoder (and encoder when shared) tables
        if config.share_embeddings:
            out["embed.embedding.weight"] = first(shared, enc, dec)
        else:
            out["src_embed.embedding.weight"], out["tgt_embed.embedding.weight"] = first(enc), first(dec)
    else:  # no ties at all: each module reads its own table, the shared one is a fallback
        source, target = first(enc, shared), first(dec, shared)
        if config.share_embeddings and mx.array_equal(source, target):
            out["embed.embedding.weight"] = source
        else:
            config = replace(config, share_embeddings=False, src_vocab_size=config.source_vocab_size)
            out["src_embed.embedding.weight"], out["tgt_embed.embedding.weight"] = source, target
        out["out_proj.weight"] = first("lm_head.weight")
    bias = tensors.get("final_logits_bias")
    out["final_logits_bias"] = bias.reshape(-1) if bias is not None else mx.zeros((config.vocab_size,))

    known = {
        "model.shared.weight", "model.encoder.embed_tokens.weight", "model.decoder.embed_tokens.weight",
        "lm_head.weight", "final_logits_bias", "model.encoder.embed_positions.weight",
        "model.decoder.embed_positions.weight",
    }
    unknown = sorted(set(tensors) - known)
    if unknown:
        raise MlxtError(
            f"{where}: unexpected tensor '{unknown[0]}' ({len(unknown)} unexpected in all); not a MarianMT checkpoint?"
        )
    return config, out


def load_model(config: ModelConfig, weights: dict[str, mx.array], where: str = "checkpoint"):
    """Build the mlxt model and load ``weights``, checking every name and shape."""
    model = build_model(config)
    expected = dict(tree_flatten(model.parameters()))
    for name, value in weights.items():
        if name not in expected:
            raise MlxtError(f"{where}: no parameter '{name}' in the mlxt model")
        if tuple(value.shape) != tuple(expected[name].shape):
            raise MlxtError(
                f"{where}: '{name}' has shape {tuple(value.shape)}, the model expects {tuple(expected[name].shape)}"
            )
    missing = sorted(set(expected) - set(weights))
    if missing:
        raise MlxtError(f"{where}: no weights for '{missing[0]}'")
    model.load_weights(list(weights.items()), strict=True)
    mx.eval(model.parameters())
    model.eval()
    return model


# -- tokenizers ------------------------------------------------------------------------------------
def marian_tokenizers(directory: Path, config: ModelConfig) -> dict:
    """``{"src", "tgt"}`` SentencePiece tokenizers from Marian's tokenizer files.

    As in ``MarianTokenizer``: the target side uses ``target_vocab.json`` only when
    ``tokenizer_config.json`` says ``separate_vocabs``, and a shared vocabulary is detokenized with
    the source SentencePiece model.
    """
    for name in ("source.spm", "target.spm", "vocab.json"):
        if not (directory / name).is_file():
            raise MlxtError(f"{directory}: missing {name} (a MarianMT tokenizer file)")
    separate = bool(read_json(directory / "tokenizer_config.json", required=False).get("separate_vocabs", False))
    if separate and not (directory / "target_vocab.json").is_file():
        raise MlxtError(f"{directory}: tokenizer_config.json sets separate_vocabs but target_vocab.json is missing")
    source, target = (directory / "source.spm").read_bytes(), (directory / "target.spm").read_bytes()
    src_vocab = read_vocab(directory / "vocab.json")
    tgt_vocab = read_vocab(directory / "target_vocab.json") if separate else src_vocab
    src = SentencePieceTokenizer(source, src_vocab, None, config.start_id, where=str(directory / "source.spm"))
    if not separate and source == target:
        tgt = src
    else:
        tgt = SentencePieceTokenizer(
            target, tgt_vocab, target if separate else source, config.start_id, where=str(directory / "target.spm")
        )
    for side, tok in (("vocab.json", src), ("target_vocab.json" if separate else "vocab.json", tgt)):
        for token, ours, theirs in (("</s>", tok.eos_id, config.eos_id), ("<pad>", tok.pad_id, config.pad_id)):
            if ours != theirs:
                raise MlxtError(
                    f"{directory / side}: {token!r} has id {ours} but config.json says {theirs}"
                )
    return {"src": src, "tgt": tgt}


# -- the whole conversion ------------------------------------------------------------------------
def convert_marian(src: str | Path, out_dir: str | Path) -> Path:
    """Convert a MarianMT model (local directory or Hub id) into an mlxt run directory ``out_dir``."""
    from mlxt.train.rundir import write_inference_run

    directory = locate(str(src))
    hf = read_json(directory / "config.json")
    config = model_config(hf, str(directory / "config.json"))
    tokenizers = marian_tokenizers(directory, config)
    config, weights = map_weights(read_tensors(directory), config, str(directory))
    model = load_model(config, weights, str(directory))
    has_generation = (directory / "generation_config.json").is_file()
    generation = read_json(directory / "generation_config.json") if has_generation else None
    run_config = {"convert": {"source": str(src), "format": "marian"}, "decode": decode_section(hf, generation)}
    out = write_inference_run(out_dir, model, config, tokenizers, run_config)
    original = out / "original"
    original.mkdir(exist_ok=True)
    for name in ORIGINAL_FILES:
        if (directory / name).is_file():
            shutil.copyfile(directory / name, original / name)
    return out
