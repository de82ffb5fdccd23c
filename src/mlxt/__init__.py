"""mlxt: Transformers in MLX.

Importing mlxt first routes MLX to an optimized BLAS on Linux CPU (see `mlxt._blas`), which must
happen before `mlx.core` is loaded.
"""

from mlxt import _blas

_blas.activate()

from mlxt.errors import MlxtError  # noqa: E402
from mlxt.model import (  # noqa: E402
    ModelConfig,
    MultiHeadAttention,
    RegressionTransformer,
    SelfAttention,
    Transformer,
    TransformerLM,
    build_model,
    positional_encoding,
)

__version__ = "0.1.0"

__all__ = [
    "MlxtError", "ModelConfig", "build_model", "Transformer", "TransformerLM",
    "RegressionTransformer", "MultiHeadAttention", "SelfAttention", "positional_encoding",
]
