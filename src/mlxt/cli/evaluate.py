"""`mlxt evaluate RUN_DIR --split test`: BLEU/chrF/exact match (seq2seq) or loss/perplexity (lm)."""

from __future__ import annotations

from mlxt import guard
from mlxt.schema import number_flag
from mlxt.cli.translate import add_search_args, search_options


def register(subparsers) -> None:
    p = subparsers.add_parser("evaluate", help="score a trained run on a split of its data",
                              description="Seq2seq: BLEU and chrF (sacrebleu, with signatures), exact match, "
                                          "loss and perplexity; lm: loss and perplexity. Writes a JSON report.")
    p.add_argument("run_dir", metavar="RUN_DIR")
    p.add_argument("--split", help="train, valid or test (default: test when the run's data has a test "
                                   "split, else valid)")
    p.add_argument("--limit", type=number_flag("--limit", int, 1), help="translate only the first N sentences")
    p.add_argument("--output", "-o", help="report path (default RUN_DIR/eval-SPLIT-CHECKPOINT.json)")
    add_search_args(p)
    p.set_defaults(func=run)


def describe_split(report: dict, chosen: bool) -> str:
    """``test (200 sentences)``, plus why when the split was picked by default."""
    text = report["split"]
    if "sentences" in report:
        text += f" ({report['sentences']} sentences)"
    if chosen:
        text += ("  (default: the run's test split)" if report["split"] == "test"
                 else "  (default: this run's data has no test split)")
    return text


def run(args) -> int:
    from mlxt.evaluate.run import evaluate_run, write_report
    from mlxt.train.rundir import load_run

    if args.output:
        guard.check_output_file(args.output, "--output", runs=(args.run_dir,), what="the report", parents=True)
    loaded = load_run(args.run_dir, args.checkpoint, inference=True)
    beam, options = search_options(args, loaded)
    report = evaluate_run(loaded, args.split, beam, args.batch_size, args.limit, **options)
    print(f"{'split':12s} {describe_split(report, chosen=args.split is None)}")
    for key in ("bleu", "chrf", "exact_match", "loss", "perplexity"):
        if key in report:
            print(f"{key:12s} {report[key]:.4f}")
    for key in ("bleu_signature", "chrf_signature"):
        if key in report:
            print(f"{key:12s} {report[key]}")
    path = write_report(loaded, report, args.output)
    print(f"report written to {path}")
    return 0
