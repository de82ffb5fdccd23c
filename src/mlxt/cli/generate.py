"""`mlxt generate RUN_DIR --prompt TEXT`: sample text from a trained lm run, streamed to stdout."""

from __future__ import annotations

import sys


def register(subparsers) -> None:
    p = subparsers.add_parser("generate", help="generate text with a trained lm run",
                              description="Continue --prompt with sampled tokens, printed as they are produced.")
    p.add_argument("run_dir", metavar="RUN_DIR")
    p.add_argument("--prompt", default="", help="text to continue (default: start from scratch)")
    p.add_argument("--max-tokens", type=int, default=500, help="tokens to generate (default 500)")
    p.add_argument("--temperature", type=float, default=0.8, help="0 is greedy (default 0.8)")
    p.add_argument("--top-k", type=int, default=0, help="sample among the k most likely tokens (0: all)")
    p.add_argument("--top-p", type=float, default=1.0, help="nucleus sampling mass (1.0: off)")
    p.add_argument("--seed", type=int, help="random seed, for reproducible output")
    p.add_argument("--checkpoint", default="best", help="best (default), last, a step number or step-N")
    p.set_defaults(func=run)


def run(args) -> int:
    from mlxt.decode.detokenize import StreamingDetokenizer
    from mlxt.decode.sampling import generate_tokens
    from mlxt.errors import MlxtError
    from mlxt.train.rundir import load_run

    if args.max_tokens < 0:
        raise MlxtError(f"--max-tokens: expected >= 0, got {args.max_tokens}")
    if args.temperature < 0:
        raise MlxtError(f"--temperature: expected >= 0, got {args.temperature}")
    if not 0.0 < args.top_p <= 1.0:
        raise MlxtError(f"--top-p: expected a number in (0, 1], got {args.top_p}")
    if args.top_k < 0:
        raise MlxtError(f"--top-k: expected >= 0, got {args.top_k}")
    loaded = load_run(args.run_dir, args.checkpoint)
    if loaded.config.kind != "lm":
        raise MlxtError(f"{args.run_dir}: holds a {loaded.config.kind} model; generate needs an lm run "
                        "(use `mlxt translate` for seq2seq runs)")
    tokenizer = loaded.tokenizers["text"]
    prompt = args.prompt.lower() if loaded.run_config.get("data", {}).get("lowercase") else args.prompt
    out = sys.stdout
    out.write(args.prompt)
    out.flush()
    stream = StreamingDetokenizer(tokenizer)
    for token in generate_tokens(loaded.model, tokenizer.encode(prompt), args.max_tokens, args.temperature,
                                 args.top_k, args.top_p, args.seed):
        text = stream.add(token)
        if text:
            out.write(text)
            out.flush()
    out.write(stream.finish() + "\n")
    out.flush()
    return 0
