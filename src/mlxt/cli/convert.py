"""`mlxt convert SRC OUT_DIR`: a Hugging Face MarianMT checkpoint -> an mlxt run directory."""

from __future__ import annotations


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "convert",
        help="convert a Hugging Face MarianMT (opus-mt) model into an mlxt run directory",
        description="Convert a Hugging Face MarianMT model (a local directory with config.json, or a Hub "
        "id such as Helsinki-NLP/opus-mt-en-de when the network allows) into an mlxt run directory "
        "that `mlxt translate` and `mlxt evaluate` use.",
    )
    p.add_argument("src", metavar="SRC", help="local Hugging Face model directory or Hub model id")
    p.add_argument("out_dir", metavar="OUT_DIR", help="run directory to create")
    p.set_defaults(func=run)


def run(args) -> int:
    from mlxt import guard
    from mlxt.convert import convert

    guard.check_new_run_dir(args.out_dir, "OUT_DIR")
    out = convert(args.src, args.out_dir)
    print(f"converted {args.src} -> {out}")
    return 0
