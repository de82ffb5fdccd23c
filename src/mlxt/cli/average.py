"""``mlxt average RUN_DIR --last N [-o OUT]``: average the weights of the last N checkpoints."""

from __future__ import annotations

from mlxt.schema import number_flag


def register(subparsers) -> None:
    p = subparsers.add_parser("average", help="average the weights of a run's last N checkpoints")
    p.add_argument("run_dir", help="run directory")
    p.add_argument("--last", type=number_flag("--last", int, 1, 10**6),
                   default=5, help="how many of the newest checkpoints (default 5)")
    p.add_argument("-o", "--output", help="write a new run directory here instead of "
                                          "RUN_DIR/checkpoints/avg-last-N")
    p.set_defaults(func=run)


def run(args) -> int:
    from mlxt.train.average import average_run

    path = average_run(args.run_dir, args.last, args.output)
    print(f"averaged the last {args.last} checkpoints of {args.run_dir} -> {path}")
    return 0
