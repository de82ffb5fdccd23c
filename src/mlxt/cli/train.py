"""``mlxt train``: train a model from a TOML config, or resume a run exactly."""

from __future__ import annotations

import sys

from mlxt.schema import number_flag


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
    p.add_argument("--workers", type=number_flag("--workers", int, 1, 256,
                                                 expected="a positive number of processes (at most 256)"),
                   default=1, metavar="N",
                   help="data-parallel training in N processes on this machine (a local ring, like "
                        "`mlx.launch -n N --backend ring`); see docs/distributed.md")
    p.add_argument("--backend", default="any", help="mx.distributed backend when started by a launcher "
                                                    "(any, ring, mpi, nccl, jaccl; default: any)")
    p.set_defaults(func=run)


def run(args) -> int:
    from mlxt.errors import MlxtError
    from mlxt.train.config import load_config
    from mlxt.train.signals import StopRequested
    from mlxt.train.trainer import TrainingInterrupted, load_run_config, train

    if bool(args.config) == bool(args.resume):
        raise MlxtError("give either --config FILE (a new run) or --resume RUN_DIR")
    if args.resume and args.run_dir:
        raise MlxtError(f"--run-dir {args.run_dir}: --resume RUN_DIR already names the run directory "
                        f"(the run continues in {args.resume}); give one of them")
    if args.resume:
        config, run_dir = load_run_config(args.resume, args.overrides), args.resume
    else:
        config, run_dir = load_config(args.config, args.overrides), args.run_dir

    if args.workers != 1:
        from mlxt.train import distributed

        if distributed.launched():
            raise MlxtError("--workers: this process was started by a distributed launcher (mlx.launch, mpirun); "
                            "give the number of processes to the launcher only")
        return distributed.run_workers(args.workers, _rank_argv(args), grace=30.0)
    from mlxt.train.distributed import setup

    dist = setup(args.backend, config.train.dist_timeout)  # one process unless a launcher started us

    def log(message: str) -> None:
        if not args.quiet and dist.is_main:
            print(message, file=sys.stderr, flush=True)

    try:
        result = train(config, run_dir, resume=bool(args.resume), overwrite=args.overwrite,
                       show_progress=not args.quiet and dist.is_main, log=log, dist=dist)
    except TrainingInterrupted as exc:
        if dist.is_main:
            print(f"mlxt: {exc}", file=sys.stderr)
        return exc.exit_status
    except StopRequested as exc:  # a second signal: stopped at once (any checkpoint write completed)
        if dist.is_main:
            print(f"mlxt: stopped by a second {exc}; the newest complete checkpoint is kept", file=sys.stderr)
        return 128 + exc.signum
    finally:
        dist.close()
    if not dist.is_main:
        return 0
    best = ckpt_line = ""
    if result.best_valid_loss is not None:
        best = f"; best valid loss {result.best_valid_loss:.4f} at step {result.best_step}"
    print(f"training {result.summary}{best}")
    for source, reference, hypothesis in result.samples[:5]:
        print(f"  src: {source}\n  ref: {reference}\n  hyp: {hypothesis}")
    print(f"run directory: {result.run_dir}{ckpt_line}")
    return 0


def _rank_argv(args) -> list[str]:
    """The ``mlxt train`` command line of one rank under ``--workers``."""
    argv = ["train", *(["--config", args.config] if args.config else ["--resume", args.resume])]
    for text in args.overrides:
        argv += ["--set", text]
    argv += ["--run-dir", args.run_dir] if args.run_dir else []
    argv += ["--overwrite"] if args.overwrite else []
    argv += ["--quiet"] if args.quiet else []
    return argv + ["--backend", "ring"]
