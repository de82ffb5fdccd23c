"""``mlxt train``: train a model from a TOML config, or resume a run exactly."""

from __future__ import annotations

import sys


def register(subparsers) -> None:
    p = subparsers.add_parser("train", help="train a model from a TOML config (or --resume a run)",
                              description="Train a seq2seq, lm or regression model from a TOML config "
                                          "with [model], [data] and [train] sections.")
    p.add_argument("--config", "-c", help="training config (TOML)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="SECTION.KEY=VALUE",
                   help="override a config value (TOML literal, else a string); repeatable")
    p.add_argument("--resume", metavar="RUN_DIR", help="continue the newest checkpoint of RUN_DIR exactly")
    p.add_argument("--run-dir", help="where to write the run (default: [train] run_dir, else out_dir/<config name>)")
    p.add_argument("--overwrite", action="store_true", help="delete an existing run directory first")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress output")
    p.set_defaults(func=run)


def run(args) -> int:
    from mlxt.errors import MlxtError
    from mlxt.train.config import load_config
    from mlxt.train.trainer import TrainingInterrupted, load_run_config, train

    if bool(args.config) == bool(args.resume):
        raise MlxtError("give either --config FILE (a new run) or --resume RUN_DIR")
    if args.resume:
        config, run_dir = load_run_config(args.resume, args.overrides), args.resume
    else:
        config, run_dir = load_config(args.config, args.overrides), args.run_dir

    def log(message: str) -> None:
        if not args.quiet:
            print(message, file=sys.stderr, flush=True)

    try:
        result = train(config, run_dir, resume=bool(args.resume), overwrite=args.overwrite,
                       show_progress=not args.quiet, log=log)
    except TrainingInterrupted as exc:
        print(f"mlxt: {exc}", file=sys.stderr)
        return 130
    best = ckpt_line = ""
    if result.best_valid_loss is not None:
        best = f"; best valid loss {result.best_valid_loss:.4f} at step {result.best_step}"
    print(f"training {result.status} at step {result.step}{best}")
    for source, reference, hypothesis in result.samples[:5]:
        print(f"  src: {source}\n  ref: {reference}\n  hyp: {hypothesis}")
    print(f"run directory: {result.run_dir}{ckpt_line}")
    return 0
