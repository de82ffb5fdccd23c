"""MarianMT conversion: tiny random Hugging Face models, converted and compared with `transformers`
(PyTorch CPU, fp32) on the same token ids."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import mlx.core as mx
import numpy as np
import pytest

pytest.importorskip("sentencepiece")
torch = pytest.importorskip("torch")
pytest.importorskip("transformers")
pytestmark = pytest.mark.filterwarnings("ignore:Recommended. pip install sacremoses")

from marian_tiny import load_hf, save_tiny_marian  # noqa: E402

from mlxt.cli import main as cli_main  # noqa: E402
from mlxt.convert import convert  # noqa: E402
from mlxt.convert.marian import model_config  # noqa: E402
from mlxt.decode.cache import make_cache  # noqa: E402
from mlxt.errors import MlxtError  # noqa: E402
from mlxt.train.rundir import load_run  # noqa: E402

SENTENCES = ["Hello world.", "The lazy dog asked for green tea.", "Where is Tom?"]
VARIANTS = {
    "shared": {},
    "separate-vocabs": {"separate_vocabs": True, "seed": 1},
    "untied-gelu": {"tie": False, "activation": "gelu", "seed": 2, "heads": 2},
}


@pytest.fixture(scope="module", params=sorted(VARIANTS))
def converted(request, tmp_path_factory):
    """(HF model, HF tokenizer, mlxt LoadedRun) for one tiny variant."""
    root = tmp_path_factory.mktemp(f"marian-{request.param}")
    hf_dir = save_tiny_marian(root / "hf", **VARIANTS[request.param])
    convert(hf_dir, root / "run")
    hf_model, hf_tok = load_hf(hf_dir)
    return hf_model, hf_tok, load_run(root / "run")


def _batch(hf_tok, run):
    """The same right-padded source ids for both: mlxt's tokenizer + eos, and HF's tokenizer."""
    tok = run.tokenizers["src"]
    rows = [tok.encode(s) + [tok.eos_id] for s in SENTENCES]
    assert rows == [hf_tok(s).input_ids for s in SENTENCES]
    width = max(map(len, rows))
    ids = np.full((len(rows), width), run.config.pad_id, dtype=np.int64)
    for i, r in enumerate(rows):
        ids[i, : len(r)] = r
    return ids


def test_config_maps_marian_options(converted):
    hf_model, _, run = converted
    hf, cfg = hf_model.config, run.config
    assert (cfg.activation, cfg.sinusoidal_layout, cfg.norm_first, cfg.use_final_norm) == ("silu" if
            hf.activation_function == "swish" else hf.activation_function, "concat", False, False)
    # One table only where transformers ties them (untied models read separate encoder/decoder tables).
    assert cfg.share_embeddings == (hf.share_encoder_decoder_embeddings and hf.tie_word_embeddings)
    assert (cfg.source_vocab_size, cfg.vocab_size) == (hf.vocab_size, hf.decoder_vocab_size)
    assert (cfg.pad_id, cfg.eos_id, cfg.start_id) == (hf.pad_token_id, hf.eos_token_id, hf.decoder_start_token_id)
    assert cfg.tie_output == hf.tie_word_embeddings and cfg.logits_bias and cfg.scale_embedding


def test_encoder_output_equals_transformers(converted):
    hf_model, hf_tok, run = converted
    ids = _batch(hf_tok, run)
    mask = ids != run.config.pad_id
    with torch.no_grad():
        ref = hf_model.get_encoder()(
            input_ids=torch.tensor(ids), attention_mask=torch.tensor(mask.astype(np.int64))
        ).last_hidden_state.numpy()
    ours = np.array(run.model.encode(mx.array(ids.astype(np.int32))))
    real = mask[..., None].repeat(ref.shape[-1], -1)
    np.testing.assert_allclose(ours[real], ref[real], rtol=1e-4, atol=1e-4)


def test_decoder_logits_equal_transformers(converted):
    hf_model, hf_tok, run = converted
    ids = _batch(hf_tok, run)
    rng = np.random.default_rng(0)
    tgt = rng.integers(2, run.config.vocab_size - 1, size=(ids.shape[0], 7))
    tgt[:, 0] = run.config.start_id
    with torch.no_grad():
        ref = hf_model(
            input_ids=torch.tensor(ids), attention_mask=torch.tensor((ids != run.config.pad_id).astype(np.int64)),
            decoder_input_ids=torch.tensor(tgt),
        ).logits.numpy()
    ours = np.array(run.model(mx.array(ids.astype(np.int32)), mx.array(tgt.astype(np.int32))))
    assert ours.shape == ref.shape
    np.testing.assert_allclose(ours, ref, rtol=1e-4, atol=1e-4)
    # Step by step with the KV cache (positions offset by the cache length) gives the same logits.
    src = mx.array(ids.astype(np.int32))
    memory, cache = run.model.encode(src), make_cache(run.model)
    steps = [run.model.decode(mx.array(tgt[:, t : t + 1].astype(np.int32)), memory, run.model.source_mask(src),
                              cache=cache) for t in range(tgt.shape[1])]
    np.testing.assert_allclose(np.array(mx.concatenate(steps, axis=1)), ref, rtol=1e-4, atol=1e-4)


def test_tokenizer_round_trip_matches_marian_tokenizer(converted):
    hf_model, hf_tok, run = converted
    tgt = run.tokenizers["tgt"]
    rng = np.random.default_rng(1)
    for _ in range(5):
        ids = rng.integers(0, tgt.vocab_size, size=12).tolist() + [tgt.eos_id, tgt.pad_id]
        assert tgt.decode(ids) == hf_tok.decode(ids, skip_special_tokens=True)


def test_converted_run_translates_without_torch_or_transformers(converted):
    """`mlxt translate` in a fresh interpreter where importing torch/transformers fails."""
    _, _, run = converted
    script = f"""
import builtins, sys
real_import = builtins.__import__
def guarded(name, *args, **kwargs):
    if name.split('.')[0] in ('torch', 'transformers'):
        raise ImportError('blocked: ' + name)
    return real_import(name, *args, **kwargs)
builtins.__import__ = guarded
from mlxt.cli import main
status = main(['translate', {str(run.path)!r}, 'Hello world.', 'Where is Tom?', '--beam', '2', '--max-len', '6'])
assert not any(m.split('.')[0] in ('torch', 'transformers') for m in sys.modules)
sys.exit(status)
"""
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert len(result.stdout.splitlines()) == 2


def test_cli_convert_and_errors(tmp_path, capsys):
    hf_dir = save_tiny_marian(tmp_path / "hf", seed=3)
    assert cli_main(["convert", str(hf_dir), str(tmp_path / "run")]) == 0
    assert "converted" in capsys.readouterr().out
    assert (tmp_path / "run" / "original" / "source.spm").read_bytes() == (hf_dir / "source.spm").read_bytes()
    run = load_run(tmp_path / "run")
    assert run.run_config["convert"]["format"] == "marian"
    # Converting into a run directory that already holds checkpoints is refused.
    assert cli_main(["convert", str(hf_dir), str(tmp_path / "run")]) == 2
    # A missing tokenizer file is named.
    broken = tmp_path / "broken"
    shutil.copytree(hf_dir, broken)
    (broken / "target.spm").unlink()
    with pytest.raises(MlxtError, match="target.spm"):
        convert(broken, tmp_path / "run2")
    # Not a Marian model.
    cfg = json.loads((hf_dir / "config.json").read_text())
    with pytest.raises(MlxtError, match="model_type"):
        model_config({**cfg, "model_type": "bart"})
    with pytest.raises(MlxtError, match="activation_function"):
        model_config({**cfg, "activation_function": "gelu_new"})
    # A tensor the converter does not know is an error, not silently dropped.
    (tmp_path / "extra").mkdir()
    for f in hf_dir.iterdir():
        shutil.copy(f, tmp_path / "extra" / f.name)
    weights = dict(mx.load(str(hf_dir / "model.safetensors")))
    weights["model.encoder.layernorm_embedding.weight"] = mx.ones((cfg["d_model"],))
    mx.save_safetensors(str(tmp_path / "extra" / "model.safetensors"), weights)
    with pytest.raises(MlxtError, match="layernorm_embedding"):
        convert(tmp_path / "extra", tmp_path / "run3")


def test_pytorch_bin_checkpoint(tmp_path):
    """A checkpoint with only pytorch_model.bin converts to the same weights (read weights_only)."""
    hf_dir = save_tiny_marian(tmp_path / "hf", seed=4)
    bin_dir = tmp_path / "bin"
    shutil.copytree(hf_dir, bin_dir)
    (bin_dir / "model.safetensors").unlink()
    state = {k: torch.from_numpy(np.array(v)) for k, v in mx.load(str(hf_dir / "model.safetensors")).items()}
    # Older checkpoints also hold the fixed position tables (checked, then dropped).
    hf_model, _ = load_hf(hf_dir)
    for side in ("encoder", "decoder"):
        table = getattr(hf_model.model, side).embed_positions.weight.detach().clone()
        state[f"model.{side}.embed_positions.weight"] = table
    torch.save(state, bin_dir / "pytorch_model.bin")
    a, b = load_run(convert(hf_dir, tmp_path / "a")), load_run(convert(bin_dir, tmp_path / "b"))
    from mlx.utils import tree_flatten

    pa, pb = dict(tree_flatten(a.model.parameters())), dict(tree_flatten(b.model.parameters()))
    assert pa.keys() == pb.keys()
    for k in pa:
        assert mx.array_equal(pa[k], pb[k]), k
    # A position table of another layout (interleaved sin/cos) is refused.
    table = state["model.encoder.embed_positions.weight"]
    state["model.encoder.embed_positions.weight"] = torch.stack(table.chunk(2, dim=1), dim=2).reshape(table.shape)
    torch.save(state, bin_dir / "pytorch_model.bin")
    with pytest.raises(MlxtError, match="embed_positions"):
        convert(bin_dir, tmp_path / "c")


def test_hub_download_failure_is_one_clear_error(tmp_path, monkeypatch):
    """Offline (or an unknown id): the download error becomes an `MlxtError` naming the model."""
    huggingface_hub = pytest.importorskip("huggingface_hub")

    def offline(repo_id, **kwargs):
        raise huggingface_hub.errors.LocalEntryNotFoundError("cannot reach the Hub and nothing is cached")

    monkeypatch.setattr(huggingface_hub, "snapshot_download", offline)
    with pytest.raises(MlxtError, match="no-such-org/model.*Hugging Face Hub failed.*LocalEntryNotFoundError"):
        convert("no-such-org/model", tmp_path / "run")
    assert cli_main(["convert", "no-such-org/model", str(tmp_path / "run")]) == 2
