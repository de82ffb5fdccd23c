"""`ModelConfig`: the one description from which every mlxt model is built.

It is saved beside the weights as ``config.json`` (under the ``"model"`` key of a run's config),
so a checkpoint always says what architecture it holds.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, fields
from pathlib import Path

from mlxt.errors import MlxtError
from mlxt.schema import from_dict, to_dict

KINDS = ("seq2seq", "lm", "regression")
ACTIVATIONS = ("relu", "gelu", "silu")
POSITIONALS = ("sinusoidal", "learned", "rope", "none")
SINUSOIDAL_LAYOUTS = ("interleaved", "concat")


def _memory_bytes() -> int:
    """Physical memory of this machine (0 when the system does not say)."""
    import os

    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return 0


@dataclass
class ModelConfig:
    """Architecture of an mlxt model.

    kind: ``seq2seq`` (encoder-decoder `Transformer`), ``lm`` (decoder-only `TransformerLM`,
        whose depth is ``num_decoder_layers``) or ``regression`` (`RegressionTransformer` over
        real-valued features).
    vocab_size: target vocabulary (seq2seq) or the vocabulary (lm).
    src_vocab_size: source vocabulary for seq2seq; 0 means "same as vocab_size".
    input_dim / output_dim: feature sizes of the regression model.
    positional: ``sinusoidal`` (the paper), ``learned`` (a trained table of ``max_len`` rows),
        ``rope`` (rotary, applied to queries and keys of self-attention) or ``none``.
    sinusoidal_layout: ``interleaved`` (sin on even, cos on odd dimensions, as in the paper) or
        ``concat`` (all sines then all cosines, as Marian and fairseq lay them out).
    norm_first: pre-norm layers (``x + f(norm(x))``) instead of the paper's post-norm.
    final_norm: a LayerNorm after the last encoder/decoder layer; ``None`` means "when pre-norm".
    scale_embedding: multiply token embeddings by sqrt(d_model), as the paper does.
    share_embeddings: one embedding table for source and target (needs equal vocabularies).
    tie_output: the output projection reuses the target embedding matrix.
    logits_bias: a bias vector added to the output logits (Marian's ``final_logits_bias``).
    causal: regression only: the encoder sees only the past (forecasting).
    decoder_start_id: first token fed to the decoder; ``None`` means ``bos_id``.
    """

    kind: str = "seq2seq"
    vocab_size: int = 0
    src_vocab_size: int = 0
    input_dim: int = 0
    output_dim: int = 1
    d_model: int = 512
    num_heads: int = 8
    num_encoder_layers: int = 6
    num_decoder_layers: int = 6
    d_ff: int = 2048
    dropout: float = 0.1
    activation: str = "relu"
    norm_first: bool = False
    final_norm: bool | None = None
    layer_norm_eps: float = 1e-5
    positional: str = "sinusoidal"
    sinusoidal_layout: str = "interleaved"
    max_len: int = 512
    rope_base: float = 10000.0
    scale_embedding: bool = True
    share_embeddings: bool = False
    tie_output: bool = False
    attention_bias: bool = True
    ffn_bias: bool = True
    logits_bias: bool = False
    causal: bool = False
    pad_id: int = 0
    bos_id: int = 1
    eos_id: int = 2
    decoder_start_id: int | None = None

    def __post_init__(self) -> None:
        self.validate()

    # -- derived values -------------------------------------------------------------------
    @property
    def head_dim(self) -> int:
        return self.d_model // self.num_heads

    @property
    def source_vocab_size(self) -> int:
        return self.src_vocab_size or self.vocab_size

    @property
    def use_final_norm(self) -> bool:
        return self.norm_first if self.final_norm is None else self.final_norm

    @property
    def start_id(self) -> int:
        return self.bos_id if self.decoder_start_id is None else self.decoder_start_id

    # -- checks ---------------------------------------------------------------------------
    def validate(self) -> None:
        def bad(field: str, expected: str) -> MlxtError:
            return MlxtError(f"model.{field}: expected {expected}, got {getattr(self, field)!r}")

        if self.kind not in KINDS:
            raise bad("kind", "one of " + ", ".join(KINDS))
        if self.activation not in ACTIVATIONS:
            raise bad("activation", "one of " + ", ".join(ACTIVATIONS))
        if self.positional not in POSITIONALS:
            raise bad("positional", "one of " + ", ".join(POSITIONALS))
        if self.sinusoidal_layout not in SINUSOIDAL_LAYOUTS:
            raise bad("sinusoidal_layout", "one of " + ", ".join(SINUSOIDAL_LAYOUTS))
        for name in ("d_model", "num_heads", "d_ff", "max_len"):
            if getattr(self, name) <= 0:
                raise bad(name, "a positive integer")
        for name in ("num_encoder_layers", "num_decoder_layers", "src_vocab_size"):
            if getattr(self, name) < 0:
                raise bad(name, "an integer >= 0")
        if not 0.0 <= self.dropout < 1.0:
            raise bad("dropout", "a number in [0, 1)")
        if self.layer_norm_eps <= 0:
            raise bad("layer_norm_eps", "a positive number")
        if self.d_model % self.num_heads:
            raise MlxtError(
                f"model.d_model: {self.d_model} is not divisible by model.num_heads={self.num_heads}"
            )
        if self.positional == "rope" and self.head_dim % 2:
            raise MlxtError(f"model.positional: rope needs an even head size, got {self.head_dim}")
        if self.positional == "sinusoidal" and self.d_model % 2:
            raise bad("d_model", "an even number for sinusoidal positions")
        if self.kind in ("seq2seq", "lm"):
            if self.vocab_size <= 0:
                raise bad("vocab_size", f"a positive integer for a {self.kind} model")
            ids = ["pad_id", "bos_id", "eos_id"] + (["decoder_start_id"] if self.decoder_start_id is not None else [])
            for name in ids:  # an id outside the embedding would read past its table
                value = getattr(self, name)
                if not 0 <= value < self.vocab_size:
                    raise bad(name, f"an id in [0, vocab_size={self.vocab_size})")
            if self.kind == "seq2seq":  # the source side is padded and ended with the same ids
                for name in ("pad_id", "eos_id"):
                    if getattr(self, name) >= self.source_vocab_size:
                        raise bad(name, f"an id in [0, src_vocab_size={self.source_vocab_size})")
        if self.kind == "seq2seq":
            if self.num_encoder_layers <= 0 or self.num_decoder_layers <= 0:
                raise MlxtError("model: a seq2seq model needs num_encoder_layers and num_decoder_layers >= 1")
            if self.share_embeddings and self.source_vocab_size != self.vocab_size:
                raise MlxtError(
                    f"model.share_embeddings: needs equal vocabularies, got src_vocab_size="
                    f"{self.src_vocab_size} and vocab_size={self.vocab_size}"
                )
        if self.kind == "lm" and self.num_decoder_layers <= 0:
            raise bad("num_decoder_layers", "a positive integer for an lm model")
        if self.kind == "regression":
            if self.input_dim <= 0:
                raise bad("input_dim", "a positive integer for a regression model")
            if self.output_dim <= 0:
                raise bad("output_dim", "a positive integer for a regression model")
            if self.num_encoder_layers <= 0:
                raise bad("num_encoder_layers", "a positive integer for a regression model")
            if self.tie_output or self.share_embeddings:
                raise MlxtError("model: a regression model has no token embeddings to share or tie")

        self._check_sizes()

    def largest_tensors(self) -> dict[str, int]:
        """Elements of the largest weight each size key decides (embeddings, position table,
        feed-forward, attention), for the memory check before anything is allocated."""
        d, vocab = self.d_model, max(self.vocab_size, self.source_vocab_size, self.input_dim, self.output_dim)
        sizes = {"d_model": 4 * d * d, "d_ff": d * self.d_ff, "vocab_size": vocab * d}
        if self.positional == "learned":
            sizes["max_len"] = self.max_len * d
        return sizes

    def parameter_estimate(self) -> int:
        """About how many parameters the model has (within a few per cent: norms and biases aside)."""
        d = self.d_model
        layer = 4 * d * d + 2 * d * self.d_ff
        layers = self.num_encoder_layers + (self.num_decoder_layers if self.kind != "regression" else 0)
        total = layers * layer + (self.num_decoder_layers * 4 * d * d if self.kind == "seq2seq" else 0)
        if self.kind == "regression":
            total += (self.input_dim + self.output_dim) * d
        else:
            embeddings = 1 if self.share_embeddings or self.kind == "lm" else 2
            total += embeddings * self.source_vocab_size * d + (0 if self.tie_output else self.vocab_size * d)
        if self.positional == "learned":
            total += self.max_len * d * (2 if self.kind == "seq2seq" else 1)
        return total

    def _check_sizes(self) -> None:
        """Refuse sizes whose weights cannot exist: one tensor past MLX's 2^31 elements, or float32
        weights larger than this machine's memory (MLX would crash allocating them)."""
        for key, elements in self.largest_tensors().items():
            if elements >= 2**31:
                raise MlxtError(f"model.{key} = {getattr(self, key)}: a weight of {elements:,} elements "
                                f"(with d_model={self.d_model}) is larger than MLX supports (2^31)")
        need, have = 4 * self.parameter_estimate(), _memory_bytes()
        if have and need > have:
            key = max(self.largest_tensors().items(), key=lambda kv: kv[1])[0]
            raise MlxtError(f"model.{key} = {getattr(self, key)}: the weights alone need {need / 2**30:.1f} GiB, "
                            f"more than this machine's {have / 2**30:.1f} GiB of memory")

    # -- (de)serialisation ----------------------------------------------------------------
    @classmethod
    def from_dict(cls, data: dict, where: str = "model") -> "ModelConfig":
        return from_dict(cls, data, where)

    def to_dict(self) -> dict:
        return to_dict(self)

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), indent=2) + "\n")

    @classmethod
    def load(cls, path: str | Path) -> "ModelConfig":
        path = Path(path)
        try:
            data = json.loads(path.read_text())
        except FileNotFoundError:
            raise MlxtError(f"{path}: model config not found") from None
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise MlxtError(f"{path}: not a valid JSON model config ({exc})") from None
        return cls.from_dict(data, where=str(path))

    @classmethod
    def field_names(cls) -> list[str]:
        return [f.name for f in fields(cls)]
