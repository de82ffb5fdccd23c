"""``mlxt plot RUN_DIR``: draw loss and learning-rate curves to RUN_DIR/curves.png."""

from __future__ import annotations


def register(subparsers) -> None:
    p = subparsers.add_parser("plot", help="draw loss and learning-rate curves of a run to PNG")
    p.add_argument("run_dir", help="run directory (with metrics.jsonl)")
    p.add_argument("-o", "--output", help="output PNG (default: RUN_DIR/curves.png)")
    p.set_defaults(func=run)


def run(args) -> int:
    from mlxt import guard
    from mlxt.train.plot import plot_curves

    if args.output:
        guard.check_output_file(args.output, "--output", runs=(args.run_dir,), what="the plot", parents=True,
                                suffixes=guard.IMAGE_SUFFIXES)
    print(plot_curves(args.run_dir, args.output))
    return 0
