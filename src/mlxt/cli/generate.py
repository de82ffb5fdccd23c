"""`mlxt generate RUN_DIR --prompt TEXT`: sample text from a trained lm run, streamed to stdout."""

from __future__ import annotations

import sys

from mlxt.schema import number_flag

MAX_TOKENS = 1_000_000


def register(subparsers) -> None:
    p = subparsers.add_parser("generate", help="generate text with a trained lm run",
                              description="Continue --prompt with sampled tokens, printed as they are produced.")
    p.add_argument("run_dir", metavar="RUN_DIR")
    p.add_argument("--prompt", default="", help="text to continue (default: start from scratch)")
    p.add_argument("--max-tokens", type=number_flag("--max-tokens", int, 0, MAX_TOKENS,
                                                    expected=f"an integer >= 0 (at most {MAX_TOKENS})"),
                   default=500, help="tokens to generate (default 500)")
    p.add_argument("--temperature", type=number_flag("--temperature", float, 0.0, 1e6,
                                                     expected="a number >= 0 (at most 1e6)"),
                   default=0.8, help="0 is greedy (default 0.8)")
    p.add_argument("--top-k", type=number_flag("--top-k", int, 0, expected="an integer >= 0"),
                   default=0, help="sample among the k most likely tokens (0: all)")
    p.add_argument("--top-p", type=number_flag("--top-p", float, 0, 1, low_open=True),
                   default=1.0, help="nucleus sampling mass (1.0: off)")
    p.add_argument("--seed", type=number_flag("--seed", int, 0, 2**63 - 1), help="random seed, for reproducible output")
    p.add_argument("--checkpoint", default="best", help="best (default), last, a step number or step-N")
    p.set_defaults(func=run)


def run(args) -> int:
    from mlxt.decode.detokenize import StreamingDetokenizer
    from mlxt.decode.sampling import generate_tokens
    from mlxt.errors import MlxtError
    from mlxt.train.rundir import load_run

    loaded = load_run(args.run_dir, args.checkpoint, inference=True)
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
