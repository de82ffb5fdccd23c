"""`mlxt translate RUN_DIR`: translate sentences (arguments, --input FILE or stdin), one per line."""

from __future__ import annotations

import contextlib
import sys

from mlxt import guard
from mlxt.schema import number_flag

MAX_BEAM = 1024  # wider beams only exhaust memory
MAX_BATCH = 65536


def add_search_args(p) -> None:
    """Search flags; unset ones fall back to the run's ``[decode]`` section, then the defaults."""
    p.add_argument("--beam", type=number_flag("--beam", int, 1, MAX_BEAM,
                                              expected=f"a positive integer (at most {MAX_BEAM})"),
                   help="beam size; 1 is greedy (default 5)")
    p.add_argument("--length-penalty", type=number_flag("--length-penalty", float, -10, 10),  # len**alpha overflows
                   metavar="ALPHA", help="length-penalty exponent (default 0.6)")
    p.add_argument("--penalty", choices=("gnmt", "plain"), help="gnmt: ((5+len)/6)^alpha, plain: len^alpha (default gnmt)")
    p.add_argument("--max-len-a", type=number_flag("--max-len-a", float, 0.0, 1e6),
                   help="max output = a * source tokens + b (default a=1.5)")
    p.add_argument("--max-len-b", type=number_flag("--max-len-b", int, 0, 10**9), help="(default b=10)")
    p.add_argument("--max-len", type=number_flag("--max-len", int, 1, 10**9),
                   help="a fixed max output length instead of a * len + b")
    p.add_argument("--batch-size", type=number_flag("--batch-size", int, 1, MAX_BATCH,
                                                    expected=f"a positive integer (at most {MAX_BATCH})"),
                   default=32, help="sentences decoded together (default 32)")
    p.add_argument("--checkpoint", default="best", help="best (default), last, a step number or step-N")


def search_options(args, loaded) -> tuple[int, dict]:
    """``(beam size, search options)``: defaults, then the run's ``[decode]`` section, then flags."""
    from mlxt.decode.options import decode_options
    from mlxt.errors import MlxtError

    if args.batch_size < 1:
        raise MlxtError(f"--batch-size: expected a positive integer, got {args.batch_size}")
    flags = {"beam_size": args.beam, "length_penalty": args.length_penalty, "penalty": args.penalty,
             "max_len_a": args.max_len_a, "max_len_b": args.max_len_b, "max_len": args.max_len}
    options = decode_options(loaded.run_config.get("decode", {}), f"{loaded.path}/config.toml [decode]")
    options.update({k: v for k, v in flags.items() if v is not None})
    if options["beam_size"] < 1:
        raise MlxtError(f"--beam: expected a positive integer, got {options['beam_size']}")
    return options.pop("beam_size"), options


def register(subparsers) -> None:
    p = subparsers.add_parser("translate", help="translate text with a trained seq2seq run",
                              description="Translate sentences given as arguments, in --input FILE, or on "
                                          "stdin; prints one translation per input line.")
    p.add_argument("run_dir", metavar="RUN_DIR")
    p.add_argument("sentences", nargs="*", help="sentences to translate (else --input or stdin)")
    p.add_argument("--input", "-i", help="file with one sentence per line ('-' for stdin)")
    p.add_argument("--output", "-o", help="write translations here instead of stdout")
    p.add_argument("--n-best", type=number_flag("--n-best", int, 1, MAX_BEAM), default=1, metavar="N",
                   help="print the N best as 'INDEX ||| TRANSLATION ||| SCORE' lines")
    add_search_args(p)
    p.add_argument("--max-tokens-per-batch", type=number_flag("--max-tokens-per-batch", int, 1), metavar="N",
                   help="also cap a batch at N padded source tokens (sentences are sorted by length)")
    p.add_argument("--no-progress", action="store_true", help="no progress line on stderr for --input files")
    p.add_argument("--plot-attention", metavar="PNG", help="draw the cross-attention map of one sentence")
    p.add_argument("--sentence", type=number_flag("--sentence", int, 1),
                   default=1, help="which input (1-based) to plot (default 1)")
    p.add_argument("--layer", type=number_flag("--layer", int),
                   help="plot this decoder layer (default: mean over layers)")
    p.add_argument("--head", type=number_flag("--head", int), help="plot this head (default: mean over heads)")
    p.set_defaults(func=run)


def input_chunks(args, size: int):
    """Lists of input lines: the arguments, the file, or stdin (line by line when it is a
    terminal, so each sentence is answered as it is typed; else in chunks of ``size``)."""
    from mlxt.errors import MlxtError

    if args.sentences and args.input is not None:
        raise MlxtError("give sentences as arguments or --input FILE, not both")
    if args.sentences:
        yield list(args.sentences)
        return
    if args.input is not None and args.input != "-":
        from mlxt.data.readers import read_input_lines

        lines = read_input_lines(args.input)
        args.input_total = len(lines)  # for the progress line
        for i in range(0, len(lines), size):
            yield lines[i : i + size]
        return
    size = 1 if sys.stdin.isatty() else size
    if hasattr(sys.stdin, "reconfigure"):  # split at "\n" only, as files are (not at a lone "\r")
        sys.stdin.reconfigure(newline="\n")
    chunk, number = [], 0
    try:
        for number, line in enumerate(sys.stdin, 1):
            chunk.append(line.rstrip("\r\n"))
            if len(chunk) == size:
                yield chunk
                chunk = []
    except UnicodeDecodeError as exc:
        raise MlxtError(f"<stdin>:{number + 1}: not UTF-8 text ({exc.reason})") from None
    if chunk:
        yield chunk


def format_lines(hyps, tokenizer, n_best: int, first: int) -> str:
    lines = []
    for i, nbest in enumerate(hyps, start=first):
        if n_best == 1:
            lines.append(tokenizer.decode(nbest[0].tokens) if nbest else "")
        else:
            lines += [f"{i} ||| {tokenizer.decode(h.tokens)} ||| {h.score:.4f}" for h in nbest] or [f"{i} |||  ||| "]
    return "".join(line + "\n" for line in lines)


def run(args) -> int:
    from mlxt.decode.progress import TranslationProgress
    from mlxt.decode.translate import encode_sources, translate_ids
    from mlxt.errors import MlxtError
    from mlxt.train.rundir import load_run

    if args.max_tokens_per_batch is not None and args.max_tokens_per_batch < 1:
        raise MlxtError(f"--max-tokens-per-batch: expected a positive integer, got {args.max_tokens_per_batch}")
    loaded = load_run(args.run_dir, args.checkpoint, inference=True)
    if loaded.config.kind != "seq2seq":
        raise MlxtError(f"{args.run_dir}: holds a {loaded.config.kind} model; translate needs seq2seq "
                        "(use `mlxt generate` for lm runs)")
    beam, options = search_options(args, loaded)
    if args.n_best < 1 or args.n_best > beam:
        raise MlxtError(f"--n-best: expected 1..beam size ({beam}), got {args.n_best}")
    model, toks = loaded.model, loaded.tokenizers
    lowercase = bool(loaded.run_config.get("data", {}).get("lowercase", False))
    if args.plot_attention:
        guard.check_output_file(args.plot_attention, "--plot-attention", inputs=(args.input,),
                                runs=(args.run_dir,), what="the attention map", suffixes=guard.IMAGE_SUFFIXES)
    if args.output:  # written to a temporary file, renamed into place once every line is translated
        path = guard.check_output_file(args.output, "--output", inputs=(args.input,), runs=(args.run_dir,),
                                       what="the translations")
        output = guard.atomic_output(path, "the translations")
    else:
        output = contextlib.nullcontext(sys.stdout)
    sources, hyps = [], []
    progress = None
    with output as out, contextlib.ExitStack() as cleanup:
        for texts in input_chunks(args, 16 * args.batch_size):
            if progress is None:  # a file given with --input: its size is known once it is read
                progress = TranslationProgress(getattr(args, "input_total", None),
                                               enabled=bool(args.input) and args.input != "-" and not args.no_progress)
                cleanup.callback(progress.close)
            chunk = encode_sources(texts, toks["src"], model.config.eos_id, model.config.max_len, lowercase,
                                   first=len(sources) + 1)
            found = translate_ids(model, chunk, beam, args.n_best, args.batch_size, args.max_tokens_per_batch,
                                  progress.update, **options)
            out.write(format_lines(found, toks["tgt"], args.n_best, len(sources)))
            out.flush()
            sources += chunk
            hyps += found
    if args.plot_attention:
        plot(args, loaded, sources, hyps)
    return 0


def plot(args, loaded, sources, hyps) -> None:
    import mlx.core as mx

    from mlxt.decode.attention_maps import cross_attention, select_map
    from mlxt.decode.attention_plot import plot_attention, token_labels
    from mlxt.errors import MlxtError

    index = args.sentence - 1
    if not 0 <= index < len(sources):
        raise MlxtError(f"--sentence {args.sentence}: there are {len(sources)} inputs")
    if not sources[index]:
        raise MlxtError(f"--sentence {args.sentence}: the input is empty, nothing to plot")
    model, toks = loaded.model, loaded.tokenizers
    tokens = hyps[index][0].tokens if hyps[index] else []
    weights = cross_attention(model, mx.array([sources[index]]), tokens)
    try:
        matrix = select_map(weights, args.layer, args.head)
    except IndexError as exc:
        raise MlxtError(f"--layer/--head: {exc}") from None
    eos = model.config.eos_id
    where = ("mean over layers" if args.layer is None else f"layer {args.layer}") + ", " + \
            ("mean over heads" if args.head is None else f"head {args.head}")
    path = plot_attention(matrix, token_labels(toks["src"], sources[index], eos),
                          token_labels(toks["tgt"], tokens + [eos], eos), args.plot_attention,
                          f"cross-attention ({where})")
    print(f"mlxt: attention map written to {path}", file=sys.stderr)
