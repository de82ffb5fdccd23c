"""Translation speed: mlxt against Hugging Face transformers and CTranslate2, same model, same ids.

The model has opus-mt-en-de's exact architecture (MarianMT: d_model 512, 6+6 post-norm layers,
8 heads, d_ff 2048, a 58,101-token vocabulary shared by encoder, decoder and output, sinusoidal
positions, SiLU) with random weights (speed does not depend on what was learned), built with
``MarianConfig`` and saved with ``save_pretrained``; ``--model DIR`` uses a real opus-mt
directory instead. It is converted with ``mlxt convert`` and ``ct2-transformers-converter`` and
every engine gets the same source token ids: English sentences from the Tatoeba test split
(``../shared/data/tatoeba-deu-eng``, through mlxt's reader and split; a built-in text when it is
absent), tokenized by a SentencePiece model trained on the training split (random weights) or
the model's own. Every output has exactly ``--length`` tokens (end-of-sentence is not allowed
before that), so all engines do the same work. Each engine runs in its own process (so its peak
RSS is its own) with the same thread count, on the same batches (sorted by length):
beam 4 and greedy at batch 32, and batch-1 beam-4 latency. mlxt's and transformers' greedy
outputs must be identical (printed).

    .venv/bin/python benchmarks/bench_translate.py [--quick] [--threads 1 2] [--model DIR]

Needs ``ctranslate2`` (``make bench`` installs it; it is not a dependency of mlxt).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
VENV_BIN = Path(sys.executable).parent
VOCAB, PAD, EOS = 58101, 58100, 0
FALLBACK = ("The cat sat on the mat. I would like a cup of tea, please. Where is the station? "
            "Tom didn't know what to say. We have to leave early tomorrow morning. It is raining again. "
            "She reads a book every week. Can you help me with my homework? The museum is closed on Mondays. "
            "My brother lives in a small town near the sea.").split(". ")
ENGINES = ("mlxt", "transformers", "ctranslate2")


# -- preparation (the parent process) --------------------------------------------------------------
def english_sentences(count: int) -> tuple[list[str], list[str], str]:
    """``(test sentences, training sentences, where they come from)``."""
    from mlxt.data.readers import read_tatoeba_zip
    from mlxt.data.splits import dedup_pairs, split_pairs

    archive = ROOT.parent / "shared" / "data" / "tatoeba-deu-eng" / "deu-eng.zip"
    if not archive.is_file():
        text = (FALLBACK * (count // len(FALLBACK) + 1))[:count]
        return text, FALLBACK * 50, "built-in text (the Tatoeba archive was not found)"
    splits = split_pairs(dedup_pairs(read_tatoeba_zip(archive)), 1000, 2000, 1234)  # configs/tatoeba-en-de.toml
    return [en for en, _ in splits["test"][:count]], [en for en, _ in splits["train"][:30000]], \
        f"Tatoeba eng-deu test split, first {count} English sentences"


def build_random_marian(directory: Path, train_text: list[str]) -> None:
    """opus-mt-en-de's architecture, random weights, a SentencePiece tokenizer, `save_pretrained`."""
    import io

    import sentencepiece
    import torch
    from transformers import MarianConfig, MarianMTModel

    directory.mkdir(parents=True, exist_ok=True)
    buf = io.BytesIO()
    sentencepiece.SentencePieceTrainer.train(
        sentence_iterator=iter(train_text), model_writer=buf, vocab_size=8000, model_type="unigram",
        character_coverage=1.0, hard_vocab_limit=False, minloglevel=2, num_threads=1)
    proto = buf.getvalue()
    (directory / "source.spm").write_bytes(proto)
    (directory / "target.spm").write_bytes(proto)
    sp = sentencepiece.SentencePieceProcessor(model_proto=proto)
    vocab = {"</s>": EOS, "<unk>": 1}
    for i in range(sp.get_piece_size()):
        if sp.id_to_piece(i) not in vocab and sp.id_to_piece(i) != "<s>":
            vocab[sp.id_to_piece(i)] = len(vocab)
    while len(vocab) < PAD:  # opus-mt-en-de's vocabulary size
        vocab[f"<extra_{len(vocab)}>"] = len(vocab)
    vocab["<pad>"] = PAD
    (directory / "vocab.json").write_text(json.dumps(vocab))
    config = MarianConfig(vocab_size=VOCAB, decoder_vocab_size=VOCAB, d_model=512, encoder_layers=6,
                          decoder_layers=6, encoder_attention_heads=8, decoder_attention_heads=8,
                          encoder_ffn_dim=2048, decoder_ffn_dim=2048, max_position_embeddings=512,
                          activation_function="swish", scale_embedding=True, pad_token_id=PAD, eos_token_id=EOS,
                          decoder_start_token_id=PAD, forced_eos_token_id=EOS, share_encoder_decoder_embeddings=True,
                          tie_word_embeddings=True)
    torch.manual_seed(0)
    model = MarianMTModel(config).eval()
    with torch.no_grad():  # peaked output distributions, so near-ties do not decide the greedy check
        model.model.shared.weight.normal_(0.0, 0.6)
        model.model.shared.weight[PAD] = 0.0  # as trained Marian models (CTranslate2 relies on it)
    model.save_pretrained(directory)


def prepare(args) -> tuple[Path, str]:
    """The work directory with ``hf/``, ``mlxt/``, ``ct2/`` and ``sources.json``."""
    work = Path(args.work)
    hf = Path(args.model) if args.model else work / "hf"
    test, train, where = english_sentences(args.sentences)
    if not args.model and not (hf / "config.json").is_file():
        build_random_marian(hf, train)
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"))
    if not (work / "mlxt" / "config.toml").is_file():
        subprocess.run([sys.executable, "-m", "mlxt", "convert", str(hf), str(work / "mlxt")], check=True, env=env)
    if not (work / "ct2" / "model.bin").is_file():
        subprocess.run([str(VENV_BIN / "ct2-transformers-converter"), "--model", str(hf), "--output_dir",
                        str(work / "ct2"), "--force"], check=True, env=env, stdout=subprocess.DEVNULL)
    import sentencepiece

    sp = sentencepiece.SentencePieceProcessor(model_file=str(hf / "source.spm"))
    vocab = json.loads((hf / "vocab.json").read_text())
    ids = [[vocab.get(p, 1) for p in sp.encode(s, out_type=str)][:200] + [EOS] for s in test]
    tokens = {i: t for t, i in vocab.items()}
    (work / "sources.json").write_text(json.dumps({"ids": ids, "tokens": [[tokens[i] for i in row] for row in ids]}))
    return work, where


# -- one engine (a child process) ------------------------------------------------------------------
def batches(rows: list, size: int) -> list[list[int]]:
    """Row indices sorted by length (longest first), in batches of ``size``: the same for all."""
    order = sorted(range(len(rows)), key=lambda i: -len(rows[i]))
    return [order[i : i + size] for i in range(0, len(order), size)]


def engine_mlxt(work: Path, threads: int, quantize: int):
    import mlxt  # noqa: F401  (first: BLAS routing)
    import mlx.core as mx
    import mlx.nn as nn

    from mlxt.decode.translate import translate_ids
    from mlxt.train.rundir import load_run

    model = load_run(work / "mlxt", inference=not quantize).model  # packed linears (quantized: MLX's)
    if quantize:
        nn.quantize(model, group_size=64, bits=quantize)
    mx.eval(model.parameters())

    def run(ids, beam, length):
        hyps = translate_ids(model, ids, beam, 1, len(ids), max_len=length, min_len=length, length_penalty=1.0,
                             penalty="plain", early_stopping=False, banned_ids=(PAD,))
        return [h[0].tokens for h in hyps]
    return run


def engine_transformers(work: Path, threads: int, quantize: int):
    import torch
    from transformers import MarianMTModel

    torch.set_num_threads(threads)
    model = MarianMTModel.from_pretrained(work / "hf-model").eval()

    def run(ids, beam, length):
        width = max(map(len, ids))
        x = torch.full((len(ids), width), PAD, dtype=torch.long)
        for i, row in enumerate(ids):
            x[i, : len(row)] = torch.tensor(row)
        with torch.inference_mode():
            out = model.generate(input_ids=x, attention_mask=x != PAD, num_beams=beam, do_sample=False,
                                 max_new_tokens=length, min_new_tokens=length, bad_words_ids=[[PAD]],
                                 forced_eos_token_id=None, length_penalty=1.0, early_stopping=False)
        return [row[1:].tolist() for row in out]
    return run


def engine_ctranslate2(work: Path, threads: int, quantize: int):
    import ctranslate2

    translator = ctranslate2.Translator(str(work / "ct2"), device="cpu", compute_type="float32",
                                        intra_threads=threads, inter_threads=1)
    sources = json.loads((work / "sources.json").read_text())
    lookup = {tuple(i): t for i, t in zip(sources["ids"], sources["tokens"])}
    vocab = json.loads((work / "hf-model" / "vocab.json").read_text())

    def run(ids, beam, length):
        results = translator.translate_batch([lookup[tuple(r)] for r in ids], beam_size=beam, max_batch_size=len(ids),
                                             max_decoding_length=length, min_decoding_length=length,
                                             length_penalty=1.0, return_scores=False)
        return [[vocab[t] for t in r.hypotheses[0]] for r in results]
    return run


def worker(args) -> int:
    """Time one engine on every setting; print one JSON line."""
    work = Path(args.work)
    ids = json.loads((work / "sources.json").read_text())["ids"]
    run = globals()[f"engine_{args.engine}"](work, args.threads, args.quantize)
    report = {}
    settings = [("beam4-batch32", 4, 32, ids), ("greedy-batch32", 1, 32, ids),
                ("beam4-batch1", 4, 1, ids[: args.latency_sentences])]
    for name, beam, size, rows in settings:
        groups = batches(rows, size)
        run([rows[i] for i in groups[0]][: min(size, 4)], beam, args.length)  # warm-up
        out: list = [None] * len(rows)
        start = time.perf_counter()
        for group in groups:
            for i, tokens in zip(group, run([rows[i] for i in group], beam, args.length)):
                out[i] = tokens
        seconds = time.perf_counter() - start
        report[name] = {"seconds": seconds, "sentences": len(rows), "tokens": sum(map(len, out)),
                        "outputs": out if name == "greedy-batch32" else None}
    report["peak_rss_mb"] = peak_rss_mb()
    print(json.dumps(report))
    return 0


def peak_rss_mb() -> float:
    """This process's peak resident memory (``VmHWM``: unlike ``ru_maxrss`` it does not start
    from the parent's peak after ``fork``/``exec``)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# -- the comparison (the parent process) -----------------------------------------------------------
def spawn(args, work: Path, engine: str, threads: int, quantize: int = 0) -> dict:
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"), MLXT_NUM_THREADS=str(threads),
               OPENBLAS_NUM_THREADS=str(threads), OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    cmd = [sys.executable, __file__, "--worker", engine, "--threads", str(threads), "--work", str(work),
           "--length", str(args.length), "--latency-sentences", str(args.latency_sentences),
           "--quantize", str(quantize)]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"{engine} ({threads} threads) failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def run(argv=None) -> tuple[str, list[str], list[list], dict]:
    args = parse(argv)
    import common  # noqa: F401  (the parent only: children import just their engine)

    work, where = prepare(args)
    link = work / "hf-model"  # the engines read the Hugging Face files from one place
    if link.is_symlink() or link.exists():
        link.unlink()
    link.symlink_to((Path(args.model) if args.model else work / "hf").resolve())
    rows, checks = [], {}
    for threads in args.threads:
        results = {e: spawn(args, work, e, threads) for e in ENGINES}
        for bits in args.quantize:
            results[f"mlxt q{bits}"] = spawn(args, work, "mlxt", threads, bits)
        greedy = {e: results[e]["greedy-batch32"]["outputs"] for e in ENGINES}
        checks[threads] = {f"mlxt == {e} (greedy, sentences)": f"{sum(a == b for a, b in zip(greedy['mlxt'], greedy[e]))}"
                           f"/{len(greedy['mlxt'])}" for e in ("transformers", "ctranslate2")}
        for setting in ("beam4-batch32", "greedy-batch32", "beam4-batch1"):
            base = {e: results[e][setting]["tokens"] / results[e][setting]["seconds"] for e in results}
            for engine, r in results.items():
                s = r[setting]
                tps = s["tokens"] / s["seconds"]
                rows.append([threads, setting, engine, tps, s["sentences"] / s["seconds"],
                             1e3 * s["seconds"] / s["sentences"], r["peak_rss_mb"],
                             tps / base["transformers"], tps / base["ctranslate2"]])
    headers = ["threads", "setting", "engine", "target tok/s", "sent/s", "ms/sentence", "peak RSS MB",
               "x transformers", "x CTranslate2"]
    title = (f"Translation: opus-mt-en-de architecture ({'weights from ' + args.model if args.model else 'random weights'}), "
             f"{args.sentences} sentences ({where}; batch-1 rows: first {args.latency_sentences}), "
             f"{args.length} target tokens each")
    return title, headers, rows, checks


def parse(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="fewer sentences (also MLXT_BENCH_QUICK=1)")
    p.add_argument("--sentences", type=int, help="source sentences (default 500, quick 64)")
    p.add_argument("--length", type=int, default=24, help="target tokens per sentence (default 24)")
    p.add_argument("--latency-sentences", type=int, help="sentences of the batch-1 rows (default 40, quick 8)")
    p.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    p.add_argument("--quantize", type=int, nargs="*", default=[], help="also mlxt with nn.quantize at these bits")
    p.add_argument("--model", help="a real MarianMT directory (e.g. opus-mt-en-de) instead of random weights")
    p.add_argument("--work", help="where the converted models go (default $MLXT_CACHE/bench-translate)")
    p.add_argument("--worker", choices=ENGINES, help=argparse.SUPPRESS)
    args, _ = p.parse_known_args(argv)
    quick = args.quick or os.environ.get("MLXT_BENCH_QUICK", "") not in ("", "0")
    args.sentences = args.sentences or (64 if quick else 500)
    args.latency_sentences = args.latency_sentences or (8 if quick else 40)
    cache = Path(os.environ.get("MLXT_CACHE", Path.home() / ".cache" / "mlxt"))
    name = "bench-translate" + ("-" + Path(args.model).name if args.model else "")
    args.work = args.work or str(cache / name)
    if args.worker:
        args.engine = args.worker
        args.threads = args.threads[0]
        args.quantize = args.quantize[0] if args.quantize else 0
    return args


def main(argv=None) -> int:
    args = parse(argv)
    if args.worker:
        return worker(args)
    import common

    print(common.machine())
    title, headers, rows, checks = run(argv)
    print(title)
    print(common.table(headers, rows))
    for threads, check in checks.items():
        print(f"{threads} thread(s): " + ", ".join(f"{k}: {v}" for k, v in check.items()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
