"""Decoding a converted MarianMT model gives the same token sequences as `transformers`
``model.generate`` (greedy, and beam search with beam 4, same length penalty and max length)."""

from __future__ import annotations

import json
import shutil

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
from mlxt.decode import beam_search, greedy, hf_beam_options  # noqa: E402
from mlxt.train.rundir import load_run  # noqa: E402

SENTENCES = [
    "Hello world.", "The quick brown fox jumps over the lazy dog.", "Tom asked for green tea.",
    "Where is the station?", "I am a frog.", "We like apples",
]
MAX_LENGTH = 14  # Hugging Face counts the decoder-start token: at most 13 generated tokens


# Seeds and end-of-sentence biases chosen so that, with these sentences, some outputs end early,
# some run to the length limit and beam search differs from greedy (checked in the tests).
VARIANTS = [{"seed": 16, "eos_bias": 3.0}, {"seed": 24, "eos_bias": 4.0, "separate_vocabs": True}]


@pytest.fixture(scope="module", params=VARIANTS, ids=["shared", "separate-vocabs"])
def models(request, tmp_path_factory):
    root = tmp_path_factory.mktemp("marian-gen")
    hf_dir = save_tiny_marian(root / "hf", **request.param)
    hf_model, hf_tok = load_hf(hf_dir)
    return hf_model, hf_tok, load_run(convert(hf_dir, root / "run"))


def _inputs(hf_tok, run):
    batch = hf_tok(SENTENCES, padding=True, return_tensors="pt")
    src = mx.array(batch["input_ids"].numpy().astype(np.int32))
    assert np.array_equal(np.array(run.model.source_mask(src)), batch["attention_mask"].numpy().astype(bool))
    return batch, src


def _hf_tokens(out, config) -> list[list[int]]:
    """Drop the decoder-start token, and everything from the first end-of-sentence on."""
    rows = []
    for row in out.tolist():
        row = row[1:]
        rows.append(row[: row.index(config.eos_id)] if config.eos_id in row else row)
    return rows


def _generation(config, **extra) -> dict:
    # What opus-mt checkpoints set: never generate <pad>, end with </s> at the length limit.
    return {"max_length": MAX_LENGTH, "bad_words_ids": [[config.pad_id]], "forced_eos_token_id": config.eos_id,
            **extra}


def test_greedy_equals_generate(models):
    hf_model, hf_tok, run = models
    batch, src = _inputs(hf_tok, run)
    with torch.no_grad():
        ref = hf_model.generate(**batch, num_beams=1, do_sample=False, **_generation(run.config))
    ours = greedy(run.model, src, max_len=MAX_LENGTH - 1, banned_ids=(run.config.pad_id,), forced_eos=True)
    expected = _hf_tokens(ref, run.config)
    assert ours == expected
    lengths = [len(t) for t in expected]
    assert min(lengths) < MAX_LENGTH - 2 and max(lengths) == MAX_LENGTH - 2, lengths  # both ways to stop


def test_beam_search_is_not_greedy_here(models):
    """Guards the power of the beam tests: on these models beam search changes some outputs."""
    hf_model, hf_tok, run = models
    batch, _ = _inputs(hf_tok, run)
    generation = _generation(run.config)
    with torch.no_grad():
        beam = hf_model.generate(**batch, do_sample=False, num_beams=4, **generation)
        greedy_out = hf_model.generate(**batch, do_sample=False, num_beams=1, **generation)
    assert _hf_tokens(beam, run.config) != _hf_tokens(greedy_out, run.config)


@pytest.mark.parametrize("length_penalty,early_stopping", [(1.0, False), (0.6, True), (2.0, False)])
def test_beam_search_equals_generate(models, length_penalty, early_stopping):
    hf_model, hf_tok, run = models
    batch, src = _inputs(hf_tok, run)
    generation = _generation(run.config, num_beams=4, length_penalty=length_penalty, early_stopping=early_stopping)
    with torch.no_grad():
        ref = hf_model.generate(**batch, do_sample=False, **generation)
    ours = beam_search(run.model, src, **hf_beam_options(generation))
    assert ours == _hf_tokens(ref, run.config)


def test_translate_cli_uses_checkpoint_generation_config(models, tmp_path, capsys):
    """With an opus-mt style generation_config.json, `mlxt translate` on the converted run prints
    exactly what ``generate()`` + ``batch_decode`` give (beam 4, the checkpoint's own settings)."""
    hf_model, hf_tok, run = models
    hf_dir = tmp_path / "hf"
    shutil.copytree(run.path.parent / "hf", hf_dir)
    generation = {"num_beams": 4, "length_penalty": 1.0, **_generation(run.config), "max_length": MAX_LENGTH,
                  "decoder_start_token_id": run.config.start_id, "pad_token_id": run.config.pad_id,
                  "eos_token_id": run.config.eos_id}
    (hf_dir / "generation_config.json").write_text(json.dumps(generation))
    convert(hf_dir, tmp_path / "run")
    assert load_run(tmp_path / "run").run_config["decode"]["beam_size"] == 4
    model = type(hf_model).from_pretrained(hf_dir).eval()
    batch, _ = _inputs(hf_tok, run)
    with torch.no_grad():
        expected = hf_tok.batch_decode(model.generate(**batch), skip_special_tokens=True)
    capsys.readouterr()
    assert cli_main(["translate", str(tmp_path / "run"), *SENTENCES]) == 0
    assert capsys.readouterr().out.splitlines() == expected
