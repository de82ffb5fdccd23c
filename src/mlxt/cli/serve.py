"""`mlxt serve RUN_DIR[:SRC-TGT] ...`: serve translators and language models over HTTP."""

from __future__ import annotations


def register(subparsers) -> None:
    from mlxt.serve.limits import Limits

    d = Limits()
    p = subparsers.add_parser(
        "serve", help="serve runs over HTTP (LibreTranslate API, OpenAI-style completions, web page)",
        description="Serve translators (one per language pair: RUN_DIR, or RUN_DIR:SRC-TGT when the run's "
                    "config names no languages) and language models. See docs/serve.md.")
    p.add_argument("runs", nargs="+", metavar="RUN_DIR[:SRC-TGT]")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=int, default=5000, help="port (default 5000; 0 picks a free one)")
    p.add_argument("--checkpoint", default="best", help="best (default), last, a step number or step-N")
    p.add_argument("--api-keys", metavar="FILE", help="require one of these keys (one per line) on every request")
    p.add_argument("--rate-limit", type=int, default=d.rate_limit, metavar="N",
                   help="requests per minute per key (or client address); 0: no limit (default)")
    p.add_argument("--max-chars", type=int, default=d.max_chars, help=f"characters per request (default {d.max_chars})")
    p.add_argument("--max-item-chars", type=int, default=d.max_item_chars,
                   help=f"characters per text of a request (default {d.max_item_chars})")
    p.add_argument("--max-items", type=int, default=d.max_items, help=f"texts per request (default {d.max_items})")
    p.add_argument("--max-batch", type=int, default=d.max_batch,
                   help=f"sentences decoded together (default {d.max_batch})")
    p.add_argument("--batch-tokens", type=int, default=d.batch_tokens,
                   help=f"padded source tokens decoded together (default {d.batch_tokens})")
    p.add_argument("--max-queue", type=int, default=d.max_queue,
                   help=f"requests held (waiting or decoding) before answering 503 (default {d.max_queue})")
    p.add_argument("--timeout", type=float, default=d.timeout, help=f"seconds per request (default {d.timeout:g})")
    p.add_argument("--max-body", type=int, default=d.max_body, metavar="BYTES",
                   help=f"request body size limit (default {d.max_body})")
    p.add_argument("--max-tokens", type=int, default=d.max_tokens,
                   help=f"most tokens one completion may ask for (default {d.max_tokens})")
    p.add_argument("--quiet", "-q", action="store_true", help="no access log")
    p.set_defaults(func=run)


def run(args) -> int:
    import gc

    from mlxt.errors import MlxtError

    try:
        from mlxt.serve.server import build_state, serve
    except ModuleNotFoundError as exc:
        if (exc.name or "").split(".")[0] not in ("starlette", "uvicorn", "multipart", "python_multipart", "anyio"):
            raise
        raise MlxtError(f"mlxt serve needs the serve extra ({exc.name} is not installed): "
                        "pip install 'mlxt[serve]'") from None
    from mlxt.serve.limits import Limits

    if not 0 <= args.port <= 65535:
        raise MlxtError(f"--port: expected 0..65535, got {args.port}")
    limits = Limits(max_chars=args.max_chars, max_item_chars=args.max_item_chars, max_items=args.max_items,
                    max_batch=args.max_batch, batch_tokens=args.batch_tokens, max_queue=args.max_queue,
                    timeout=args.timeout, max_body=args.max_body, max_tokens=args.max_tokens,
                    rate_limit=args.rate_limit)
    state = build_state(args.runs, limits, args.api_keys, args.checkpoint)
    serve(state, args.host, args.port, args.quiet)
    del state
    gc.collect()  # free the models' arrays here, on the main thread, before the interpreter shuts down
    return 0
