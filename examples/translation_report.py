"""Score a trained translation run on its held-out test split and keep every translation.

Does what ``mlxt evaluate RUN --split test --beam 5`` does (the same split rebuilt from the run's
``[data]`` section, `mlxt.decode.translate.translate`, sacrebleu BLEU and chrF), and also writes
all hypotheses (one per line, in test-split order) and a Markdown table of example translations
picked by line number: lines 1, 1 + k, 1 + 2k, ... (``--examples`` of them, evenly spaced), so
they are neither chosen by hand nor only the good ones.

    .venv/bin/python examples/translation_report.py runs/tatoeba-en-de --checkpoint avg-last-5 \
        --out docs/results/tatoeba-en-de
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import mlxt  # noqa: F401  (first: routes MLX to the fast BLAS before mlx.core loads)
from mlxt.decode.translate import translate
from mlxt.evaluate.run import prepare_split, score_translations
from mlxt.train.rundir import load_run


def cell(text: str) -> str:
    return text.replace("|", "\\|")


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run_dir")
    parser.add_argument("--checkpoint", default="best")
    parser.add_argument("--split", default="test")
    parser.add_argument("--beam", type=int, default=5)
    parser.add_argument("--length-penalty", type=float, default=0.6)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--examples", type=int, default=10)
    parser.add_argument("--out", required=True, help="folder for scores.json, hypotheses.txt, examples.md")
    args = parser.parse_args(argv)

    run = load_run(args.run_dir, args.checkpoint, inference=True)
    pairs = prepare_split(run, args.split).texts[args.split]
    sources, references = [s for s, _ in pairs], [t for _, t in pairs]
    t0 = time.time()
    hyps = translate(run.model, run.tokenizers, sources, beam_size=args.beam, batch_size=args.batch_size,
                     length_penalty=args.length_penalty)
    seconds = time.time() - t0
    scores = {"run": str(run.path), "checkpoint": run.checkpoint.name, "split": args.split,
              "sentences": len(pairs), "beam_size": args.beam, "length_penalty": args.length_penalty,
              **score_translations(hyps, references), "decode_seconds": round(seconds, 1)}
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "scores.json").write_text(json.dumps(scores, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    (out / "hypotheses.txt").write_text("\n".join(hyps) + "\n", encoding="utf-8")
    step = max(1, len(pairs) // args.examples)
    rows = ["| line | source | reference | mlxt (beam %d) | sentence BLEU |" % args.beam, "|---|---|---|---|---|"]
    import sacrebleu

    for i in range(0, step * args.examples, step):
        s, r, h = sources[i], references[i], hyps[i]
        sb = sacrebleu.sentence_bleu(h, [r]).score
        rows.append(f"| {i + 1} | {cell(s)} | {cell(r)} | {cell(h)} | {sb:.1f} |")
    (out / "examples.md").write_text("\n".join(rows) + "\n", encoding="utf-8")
    print(json.dumps(scores, indent=1, ensure_ascii=False))
    return scores


if __name__ == "__main__":
    main()
