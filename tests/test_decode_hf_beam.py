"""`beam_search` with `hf_beam_options` reproduces Hugging Face ``generate(num_beams=...)``.

Both searches run over the same toy "model": its next-token logits are a random table indexed
by position and the last two tokens (so hypotheses differ in score and length). Hugging Face
sees it as a decoder-only `PreTrainedModel` prompted with the start token; mlxt sees it as a
seq2seq model whose decoder history lives in the `KVCache` (so beam reordering is exercised).
"""

from __future__ import annotations

import mlx.core as mx
import numpy as np
import pytest

from mlxt import ModelConfig
from mlxt.decode import beam_search_nbest, hf_beam_options

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

V, POSITIONS = 8, 12


class TableConfig(transformers.PretrainedConfig):
    model_type = "mlxt-table"

    def __init__(self, vocab_size=V, **kwargs):
        super().__init__(**kwargs)
        self.vocab_size = vocab_size


class TorchTable(transformers.PreTrainedModel, transformers.GenerationMixin):
    config_class = TableConfig

    def __init__(self, config, table):
        super().__init__(config)
        self.table = torch.nn.Parameter(torch.tensor(table), requires_grad=False)

    def forward(self, input_ids, **kwargs):
        B, L = input_ids.shape
        prev2 = torch.cat([torch.zeros((B, 1), dtype=input_ids.dtype), input_ids[:, :-1]], 1)
        pos = torch.arange(L)[None].expand(B, L) % POSITIONS
        return transformers.modeling_outputs.CausalLMOutput(logits=self.table[pos, prev2, input_ids])


class MlxTable:
    """The same table behind the `Transformer` methods that the searches use."""

    def __init__(self, table):
        self.table = mx.array(table)
        self.config = ModelConfig(kind="seq2seq", vocab_size=V, d_model=2, num_heads=1, num_encoder_layers=1,
                                  num_decoder_layers=1, d_ff=2, max_len=64)

    def source_mask(self, src):
        return src != self.config.pad_id

    def encode(self, src, src_mask=None):
        return mx.zeros((src.shape[0], src.shape[1], 1))

    def decode(self, tokens, memory, src_mask=None, cache=None):
        N = tokens.shape[0]
        kv = tokens.astype(mx.float32).reshape(N, 1, 1, 1)
        history, _ = cache[0].self_attn.update_and_fetch(kv, kv)
        L = history.shape[2]
        prev2 = history[:, 0, -2, 0].astype(mx.int32) if L > 1 else mx.zeros((N,), mx.int32)
        rows = self.table[(L - 1) % POSITIONS]
        return rows[prev2, tokens[:, -1]][:, None, :]


SETTINGS = [
    dict(num_beams=1, max_length=10),
    dict(num_beams=3, max_length=10),
    dict(num_beams=4, max_length=12, length_penalty=2.0),
    dict(num_beams=4, max_length=12, length_penalty=0.5, early_stopping=True),
    dict(num_beams=3, max_length=12, length_penalty=1.5, early_stopping="never"),
    dict(num_beams=3, max_length=9, forced_eos_token_id=2),
    dict(num_beams=4, max_length=11, min_length=5, forced_eos_token_id=2, length_penalty=-0.5),
]


@pytest.mark.parametrize("settings", SETTINGS)
def test_matches_transformers_generate(settings):
    gen = dict(settings, bad_words_ids=[[0], [1]])
    for seed in range(4):
        rng = np.random.default_rng(seed)
        table = (rng.normal(size=(POSITIONS, V, V, V)) * 2.0).astype(np.float32)
        table[..., 2] += rng.normal() * 2  # vary how eager the table is to end
        hf_model = TorchTable(TableConfig(pad_token_id=0, eos_token_id=2, bos_token_id=1), table).eval()
        k = gen["num_beams"]
        out = hf_model.generate(torch.tensor([[1]]), do_sample=False, use_cache=False, num_return_sequences=k,
                                output_scores=True, return_dict_in_generate=True, **gen)
        expected = []
        for row in out.sequences[:, 1:].tolist():
            expected.append(row[: row.index(2)] if 2 in row else row)
        options = hf_beam_options(gen)
        hyps = beam_search_nbest(MlxTable(table), mx.array([[5, 2]]), n_best=k, **options)[0]
        assert [h.tokens for h in hyps] == expected, (seed, settings)
        if k > 1:
            np.testing.assert_allclose([h.score for h in hyps], out.sequences_scores.numpy(), atol=1e-4)
