"""Tiny MarianMT models for the Marian tests, built offline: a SentencePiece model trained on a few
sentences, a ``vocab.json`` in Marian's layout (``</s>`` = 0, ``<unk>`` = 1, pieces, ``<pad>``
last) and a `transformers` MarianMTModel with every weight drawn at random, saved with
``save_pretrained`` exactly as Hugging Face checkpoints are."""

from __future__ import annotations

import io
import json
from pathlib import Path

SOURCE_SENTENCES = [
    "Hello world.", "The quick brown fox jumps over the lazy dog.", "I am a small frog.",
    "Tom asked his teacher for advice.", "Where is the train station?", "We like green tea and apples.",
]
TARGET_SENTENCES = [
    "Hallo Welt.", "Der schnelle braune Fuchs springt über den faulen Hund.", "Ich bin ein kleiner Frosch.",
    "Tom bat seinen Lehrer um Rat.", "Wo ist der Bahnhof?", "Wir mögen grünen Tee und Äpfel.",
]


def train_spm(sentences: list[str], vocab_size: int) -> bytes:
    import sentencepiece

    buf = io.BytesIO()
    sentencepiece.SentencePieceTrainer.train(
        sentence_iterator=iter(sentences * 4), model_writer=buf, vocab_size=vocab_size, model_type="unigram",
        character_coverage=1.0, hard_vocab_limit=False, minloglevel=2, num_threads=1,
    )
    return buf.getvalue()


def marian_vocab(*protos: bytes) -> dict[str, int]:
    """``</s>``, ``<unk>``, the pieces of the given SentencePiece models, then ``<pad>``."""
    import sentencepiece

    vocab = {"</s>": 0, "<unk>": 1}
    for proto in protos:
        sp = sentencepiece.SentencePieceProcessor(model_proto=proto)
        for i in range(sp.get_piece_size()):
            piece = sp.id_to_piece(i)
            if piece not in vocab and piece not in ("<s>",):
                vocab[piece] = len(vocab)
    vocab["<pad>"] = len(vocab)
    return vocab


def save_tiny_marian(directory: Path, separate_vocabs: bool = False, seed: int = 0, d_model: int = 16,
                     layers: int = 2, heads: int = 4, ffn: int = 32, activation: str = "swish",
                     tie: bool = True, weight_std: float = 0.5, embed_std: float = 0.6,
                     eos_bias: float | None = None, train_steps: int = 0) -> Path:
    """Write a tiny random MarianMT checkpoint with its tokenizer files into ``directory``.

    ``eos_bias``: the final logits bias of ``</s>``; raising it makes translations end at
    different lengths instead of always running to the length limit.
    ``train_steps``: then fit the random model to the sentence pairs for a few Adam steps. Purely
    random models repeat one token until the length limit; a briefly trained one ends its
    outputs at different lengths and leaves beam search real choices, so searches are tested.
    """
    import torch
    from transformers import MarianConfig, MarianMTModel

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    source = train_spm(SOURCE_SENTENCES, 44)
    target = train_spm(TARGET_SENTENCES, 60) if separate_vocabs else source
    (directory / "source.spm").write_bytes(source)
    (directory / "target.spm").write_bytes(target)
    if separate_vocabs:
        src_vocab, tgt_vocab = marian_vocab(source), marian_vocab(target)
        # The decoder's pad must have the id config.json gives it: put it at the source pad id.
        tgt_vocab = _with_pad_at(tgt_vocab, src_vocab["<pad>"])
        (directory / "target_vocab.json").write_text(json.dumps(tgt_vocab))
        (directory / "tokenizer_config.json").write_text(json.dumps({"separate_vocabs": True}))
    else:
        src_vocab = tgt_vocab = marian_vocab(source)
    (directory / "vocab.json").write_text(json.dumps(src_vocab))

    pad = src_vocab["<pad>"]
    config = MarianConfig(
        vocab_size=len(src_vocab), decoder_vocab_size=max(tgt_vocab.values()) + 1,
        share_encoder_decoder_embeddings=not separate_vocabs, tie_word_embeddings=tie,
        d_model=d_model, encoder_layers=layers, decoder_layers=layers, encoder_attention_heads=heads,
        decoder_attention_heads=heads, encoder_ffn_dim=ffn, decoder_ffn_dim=ffn, max_position_embeddings=64,
        activation_function=activation, scale_embedding=True, pad_token_id=pad, eos_token_id=0,
        decoder_start_token_id=pad, forced_eos_token_id=0,
    )
    torch.manual_seed(seed)
    model = MarianMTModel(config).eval()
    with torch.no_grad():  # every weight random (zero biases would hide swapped names)
        for name, p in model.named_parameters():
            if "layer_norm" in name:
                p.copy_((1.0 if name.endswith("weight") else 0.0) + (0.2 if name.endswith("weight") else 0.1)
                        * torch.randn_like(p))
            elif "shared" in name or "embed_tokens" in name:
                p.copy_(embed_std * torch.randn_like(p))
            else:
                p.copy_(weight_std * torch.randn_like(p))
        model.final_logits_bias.copy_(0.5 * torch.randn_like(model.final_logits_bias))
        if eos_bias is not None:
            model.final_logits_bias[0, config.eos_token_id] = eos_bias
    if train_steps:
        _fit(model, directory, train_steps)
    model.save_pretrained(directory)
    return directory


def _fit(model, directory: Path, steps: int) -> None:
    import torch

    tok = load_hf_tokenizer(directory)
    batch = tok(SOURCE_SENTENCES, text_target=TARGET_SENTENCES, padding=True, return_tensors="pt")
    labels = batch["labels"].masked_fill(batch["labels"] == model.config.pad_token_id, -100)
    model.train()
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    for _ in range(steps):
        optimizer.zero_grad()
        loss = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], labels=labels).loss
        loss.backward()
        optimizer.step()
    model.eval()


def _with_pad_at(vocab: dict[str, int], pad: int) -> dict[str, int]:
    """The same pieces renumbered so that ``<pad>`` has id ``pad`` (pieces continue after it)."""
    pieces = [p for p, _ in sorted(vocab.items(), key=lambda kv: kv[1]) if p != "<pad>"]
    pieces += [f"<extra_{i}>" for i in range(len(pieces), pad)]
    ordered = pieces[:pad] + ["<pad>"] + pieces[pad:]
    return {p: i for i, p in enumerate(ordered)}


def load_hf(directory: Path):
    """The saved model and its `MarianTokenizer`, as `transformers` loads them."""
    from transformers import MarianMTModel

    return MarianMTModel.from_pretrained(directory).eval(), load_hf_tokenizer(directory)


def load_hf_tokenizer(directory: Path):
    from transformers import MarianTokenizer

    kwargs = {"separate_vocabs": True} if (Path(directory) / "target_vocab.json").exists() else {}
    tok = MarianTokenizer(
        str(Path(directory) / "source.spm"), str(Path(directory) / "target.spm"), str(Path(directory) / "vocab.json"),
        target_vocab_file=str(Path(directory) / "target_vocab.json") if kwargs else None, **kwargs,
    )
    return tok
