"""`mlxt data list`, `mlxt data fetch NAME` and `mlxt data prepare NAME`: built-in corpora,
their files, and data preparation."""

from __future__ import annotations

import argparse
import json

from mlxt.errors import MlxtError
from mlxt.schema import number_flag


def _list(args: argparse.Namespace) -> int:
    from mlxt.data.corpora import CORPORA

    rows = []
    for c in CORPORA.values():
        ok, detail = c.availability()
        rows.append((c.name, c.kind, "yes" if ok else "no", c.description, detail))
    width = max(len(r[0]) for r in rows)
    print(f"{'name':<{width}}  {'kind':<7}  ready  description")
    for name, kind, ok, description, detail in rows:
        print(f"{name:<{width}}  {kind:<7}  {ok:<5}  {description}")
        print(f"{'':<{width}}  {'':<7}         {detail}")
    return 0


def _fetch(args: argparse.Namespace) -> int:
    """Download a built-in corpus's files once (sha256-checked, into the cache), or check that a
    local corpus is installed; print where its files are. Scripts use it to learn, before
    training, whether a corpus can be had here."""
    from mlxt.data import DataConfig
    from mlxt.data.corpora import get_corpus

    corpus = get_corpus(args.name)
    for path in corpus.files(DataConfig(corpus=args.name, source=args.source or "")):
        print(path)
    return 0


def _prepare(args: argparse.Namespace) -> int:
    from mlxt.data import DataConfig, prepare_data
    from mlxt.data.corpora import get_corpus

    settings = {k: v for k, v in {
        "corpus": args.name or "", "source": args.source, "path": args.path, "src_path": args.src_path,
        "tgt_path": args.tgt_path, "format": args.format, "src_lang": args.src_lang, "tgt_lang": args.tgt_lang,
        "tokenizer": args.tokenizer, "vocab_size": args.vocab_size, "max_len": args.max_len, "seed": args.seed,
    }.items() if v is not None}
    if args.out is not None:
        from mlxt import guard

        out = guard.check_not_in_run(args.out, "--out")
        if out.exists() and not out.is_dir():
            raise MlxtError(f"--out {out}: is a file, expected a directory for the tokenizer files")
    config = DataConfig(**settings)
    kind = args.kind or (get_corpus(args.name).kind if args.name else None)
    if kind is None:
        raise MlxtError("--kind: give lm or seq2seq for your own files")
    prepared = prepare_data(config, kind, cache_dir=args.cache_dir, use_cache=not args.no_cache)
    if args.out:
        prepared.save_tokenizers(args.out)
    report = {
        "corpus": args.name or args.path or args.src_path, "kind": kind,
        "tokenizer": {k: f"{t.type_name} vocab_size={t.vocab_size}" for k, t in prepared.tokenizers.items()},
        "splits": prepared.stats, "cache": str(prepared.cache_path) if prepared.cache_path else None,
        "reused_cache": prepared.from_cache,
    }
    if args.json:
        print(json.dumps(report, indent=1, ensure_ascii=False))
        return 0
    print(f"{report['corpus']} ({kind})")
    for side, desc in report["tokenizer"].items():
        print(f"  tokenizer {side}: {desc}")
    for split, stats in prepared.stats.items():
        print(f"  {split:<5}  " + "  ".join(f"{k}={v}" for k, v in stats.items()))
    example = prepared.texts["train"][0] if kind == "seq2seq" else prepared.texts["train"][:80]
    print(f"  first training example: {example!r}")
    print(f"  cache: {report['cache']} ({'reused' if prepared.from_cache else 'prepared now'})")
    return 0


def register(subparsers) -> None:
    parser = subparsers.add_parser("data", help="list built-in corpora, prepare data")
    sub = parser.add_subparsers(dest="data_command", metavar="ACTION", required=True)
    p = sub.add_parser("list", help="built-in corpora and whether they are ready offline")
    p.set_defaults(func=_list)
    p = sub.add_parser("fetch", help="download a built-in corpus once (sha256-checked); print its files")
    p.add_argument("name", help="built-in corpus (see `mlxt data list`)")
    p.add_argument("--source", help="local path, file:// or URL to read it from instead of its home")
    p.set_defaults(func=_fetch)
    p = sub.add_parser("prepare", help="read, split, tokenize and cache a corpus; print its statistics")
    p.add_argument("name", nargs="?", help="built-in corpus (see `mlxt data list`); omit to use --path/--src-path")
    p.add_argument("--source", help="local path, file:// or URL to read a downloadable corpus from")
    p.add_argument("--path", help="your own file: plain text (lm), TSV or Tatoeba .zip (seq2seq)")
    p.add_argument("--src-path", help="your own aligned source file (with --tgt-path)")
    p.add_argument("--tgt-path", help="your own aligned target file")
    p.add_argument("--format", choices=["auto", "text", "aligned", "tsv", "tatoeba"])
    p.add_argument("--kind", choices=["lm", "seq2seq"], help="needed for your own files")
    p.add_argument("--src-lang")
    p.add_argument("--tgt-lang")
    p.add_argument("--tokenizer", choices=["char", "bpe"])
    p.add_argument("--vocab-size", type=number_flag("--vocab-size", int, 1, 2**31 - 1))
    p.add_argument("--max-len", type=number_flag("--max-len", int, 1, 2**31 - 1))
    p.add_argument("--seed", type=number_flag("--seed", int, 0, 2**63 - 1))
    p.add_argument("--cache-dir", help="prepared-data cache (default $MLXT_CACHE/prepared or ~/.cache/mlxt/prepared)")
    p.add_argument("--no-cache", action="store_true", help="prepare afresh and store nothing")
    p.add_argument("--out", help="also write the tokenizer JSON files to this directory")
    p.add_argument("--json", action="store_true", help="print the statistics as JSON")
    p.set_defaults(func=_prepare)
