"""Every benchmark in one run (``make bench``): matmul, training throughput, native kernels, decoding,
translation speed against transformers and CTranslate2, serving.

    .venv/bin/python benchmarks/run_all.py [--out results.md]

Environment: ``MLXT_NUM_THREADS=N`` gives OpenBLAS and PyTorch N threads each (use 1 on a
busy machine: multi-threaded BLAS degrades badly when cores are oversubscribed);
``MLXT_BENCH_QUICK=1`` runs fewer steps.
"""

from __future__ import annotations

import argparse
import sys
import time

import common

import bench_decode
import bench_kernels
import bench_matmul
import bench_serve
import bench_sgemm
import bench_train
import bench_translate


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", help="also write the tables (markdown) to this file")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    sections = [f"Machine: {common.machine()}", f"Command: {' '.join(['benchmarks/run_all.py', *(argv or sys.argv[1:])])}"]

    def show(text: str) -> None:
        print(text + "\n", flush=True)
        sections.append(text)

    show("\n".join(sections))
    headers, rows, extra = bench_matmul.run()
    show(common.table(headers, rows))
    peak = extra["peak_gflops"]
    headers, rows, _ = bench_train.run(peak)
    show(f"MFU against the fp32 matmul peak of this run (MLX 1024^3): {peak:.0f} GFLOP/s\n\n"
         + common.table(headers, rows))
    show("MLX's float32 products: mlxt's GEMM against OpenBLAS (one process each)\n\n"
         + common.table(*bench_sgemm.run()))
    headers, rows, extra = bench_kernels.run()
    st = extra["kernels"]
    show((f"Native kernels ({st['isa']}, {st['threads']} threads) against pure MLX"
          if st["active"] else f"Native kernels off ({st['reason']})") + "\n\n" + common.table(headers, rows))
    headers, rows, extra = bench_decode.run()
    show(f"Decoding: seq2seq batch {bench_decode.BATCH}, {bench_decode.OUT_LEN} output tokens each; "
         f"baby GPT batch 1, {bench_decode.GEN_LEN} new tokens (cached == uncached outputs: "
         f"{extra['cache_matches_no_cache']})\n\n" + common.table(headers, rows))
    show(f"Long generation (`mlxt generate`'s path), char LM with rotary positions and a "
         f"{bench_decode.LONG_LM.max_len}-token sliding window\n\n" + common.table(*bench_decode.long_generation()))
    # The quick run (64 sentences); the full one is `benchmarks/bench_translate.py` alone.
    title, headers, rows, checks = bench_translate.run(["--quick"])
    show(title + "\n\n" + common.table(headers, rows) + "\n\n" + "\n".join(
        f"{t} thread(s): " + ", ".join(f"{k}: {v}" for k, v in c.items()) for t, c in checks.items()))
    headers, rows, extra = bench_serve.run()
    show(f"Serving: `mlxt serve` under concurrent clients, one sentence per request ({extra['source']}; "
         "random-weight character model, greedy)\n\n" + common.table(headers, rows))
    show(f"Total benchmark time: {time.perf_counter() - start:.0f} s; "
         f"load average at the end: {open('/proc/loadavg').read().split()[0]}")
    if args.out:
        with open(args.out, "w") as f:
            f.write("\n\n".join(sections[2:]) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
