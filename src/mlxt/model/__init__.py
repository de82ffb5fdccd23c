"""Model code: every block a small `nn.Module`, every model built from one `ModelConfig`."""

from mlxt.model.attention import MultiHeadAttention, SelfAttention
from mlxt.model.config import ModelConfig
from mlxt.model.feedforward import FeedForward
from mlxt.model.layers import DecoderLayer, EncoderLayer
from mlxt.model.lm import TransformerLM
from mlxt.model.masks import causal_mask, key_mask, padding_mask
from mlxt.model.packed import PackedEmbedding, PackedLinear, pack_for_inference
from mlxt.model.positional import LearnedPositions, SinusoidalPositions, positional_encoding, sinusoidal_table
from mlxt.model.regression import RegressionTransformer
from mlxt.model.transformer import Decoder, Encoder, TokenEmbedding, Transformer

MODEL_CLASSES = {"seq2seq": Transformer, "lm": TransformerLM, "regression": RegressionTransformer}


def build_model(config: ModelConfig):
    """The model that ``config.kind`` names, freshly initialised."""
    return MODEL_CLASSES[config.kind](config)


__all__ = [
    "ModelConfig", "build_model", "MultiHeadAttention", "SelfAttention", "FeedForward",
    "EncoderLayer", "DecoderLayer", "Encoder", "Decoder", "Transformer", "TransformerLM",
    "RegressionTransformer", "TokenEmbedding", "positional_encoding", "sinusoidal_table",
    "SinusoidalPositions", "LearnedPositions", "causal_mask", "key_mask", "padding_mask",
    "pack_for_inference", "PackedLinear", "PackedEmbedding",
]
