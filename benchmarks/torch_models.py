"""Plain PyTorch eager versions of the two benchmarked architectures, layer for layer the same
as the mlxt models they are compared with (same sizes, norms, activations, tied embeddings).

- `TorchSeq2Seq`: post-norm encoder-decoder (the paper), sinusoidal positions, one embedding
  table shared by source, target and output projection. Built from `torch.nn`'s
  `TransformerEncoderLayer`/`TransformerDecoderLayer` without final norms, like mlxt post-norm.
- `TorchGPT`: nanoGPT's model (pre-norm blocks, learned positions, exact GELU, bias-free
  linears, final LayerNorm, tied output), with `F.scaled_dot_product_attention`.
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F


def sinusoidal(length: int, d_model: int) -> torch.Tensor:
    """The paper's table, sin on even and cos on odd dimensions (mlxt's ``interleaved``)."""
    pos = torch.arange(length, dtype=torch.float32)[:, None]
    freqs = torch.exp(torch.arange(d_model // 2, dtype=torch.float32) * (-2.0 * math.log(10000.0) / d_model))
    angles = pos * freqs[None, :]
    return torch.stack([angles.sin(), angles.cos()], dim=-1).reshape(length, d_model)


class TorchSeq2Seq(nn.Module):
    def __init__(self, vocab: int, d_model: int, heads: int, enc_layers: int, dec_layers: int, d_ff: int,
                 dropout: float, max_len: int = 512, pad_id: int = 0):
        super().__init__()
        self.pad_id, self.scale = pad_id, math.sqrt(d_model)
        self.embed = nn.Embedding(vocab, d_model)
        self.register_buffer("positions", sinusoidal(max_len, d_model), persistent=False)
        self.dropout = nn.Dropout(dropout)
        enc = nn.TransformerEncoderLayer(d_model, heads, d_ff, dropout, batch_first=True)
        dec = nn.TransformerDecoderLayer(d_model, heads, d_ff, dropout, batch_first=True)
        self.encoder = nn.TransformerEncoder(enc, enc_layers, enable_nested_tensor=False)
        self.decoder = nn.TransformerDecoder(dec, dec_layers)

    def _embed(self, tokens):
        return self.dropout(self.embed(tokens) * self.scale + self.positions[: tokens.shape[1]])

    def forward(self, src, tgt):
        src_pad = src == self.pad_id
        memory = self.encoder(self._embed(src), src_key_padding_mask=src_pad)
        causal = nn.Transformer.generate_square_subsequent_mask(tgt.shape[1], dtype=torch.float32)
        x = self.decoder(self._embed(tgt), memory, tgt_mask=causal, tgt_is_causal=True,
                         memory_key_padding_mask=src_pad)
        return x @ self.embed.weight.T


class Block(nn.Module):
    def __init__(self, d_model: int, heads: int, d_ff: int):
        super().__init__()
        self.heads = heads
        self.ln1, self.ln2 = nn.LayerNorm(d_model), nn.LayerNorm(d_model)
        self.qkv = nn.Linear(d_model, 3 * d_model, bias=False)
        self.proj = nn.Linear(d_model, d_model, bias=False)
        self.fc = nn.Linear(d_model, d_ff, bias=False)
        self.fc_out = nn.Linear(d_ff, d_model, bias=False)

    def forward(self, x):
        B, T, C = x.shape
        q, k, v = self.qkv(self.ln1(x)).split(C, dim=2)
        q, k, v = (t.view(B, T, self.heads, C // self.heads).transpose(1, 2) for t in (q, k, v))
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        x = x + self.proj(y.transpose(1, 2).reshape(B, T, C))
        return x + self.fc_out(F.gelu(self.fc(self.ln2(x))))


class TorchGPT(nn.Module):
    def __init__(self, vocab: int, d_model: int, heads: int, layers: int, d_ff: int, block: int):
        super().__init__()
        self.tok = nn.Embedding(vocab, d_model)
        self.pos = nn.Embedding(block, d_model)
        self.blocks = nn.ModuleList(Block(d_model, heads, d_ff) for _ in range(layers))
        self.ln_f = nn.LayerNorm(d_model)

    def forward(self, tokens):
        x = self.tok(tokens) + self.pos(torch.arange(tokens.shape[1]))
        for block in self.blocks:
            x = block(x)
        return self.ln_f(x) @ self.tok.weight.T
