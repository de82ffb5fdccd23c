"""Data-parallel training throughput: 1 process against N ranks (ring backend, localhost).

The same `mlxt train` run -- a baby-GPT-sized language model (4 layers, 128 dims, block 64) on a
generated text, global batch 16 x 64 tokens -- as one process and as ``mlxt train --workers N``
(N ranks on a local ring, as ``mlx.launch -n N --backend ring`` would start them). Each rank
computes 16 / N rows and the ranks all-reduce the gradients every step, so the global batch,
learning rate and updates are the same. Reports the global target tokens/s and ms/step (median
of the logged intervals after the first, which holds the JIT compile) and the speed-up.

On a machine with few cores (e.g. 2) expect no speed-up: the ranks share the cores that a
single process already uses (BLAS threads), and pay for the all-reduce. The point of the
comparison there is that distribution costs little; on several machines each rank has its own.

    .venv/bin/python benchmarks/bench_distributed.py [--workers 2] [--steps 60] [--no-compile]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import common

import numpy as np

CONFIG = """
[model]
kind = "lm"
d_model = 128
num_heads = 4
num_decoder_layers = 4
d_ff = 512
dropout = 0.0
activation = "gelu"
positional = "learned"
norm_first = true
max_len = 64

[data]
path = "{text}"
tokenizer = "char"
valid_size = 0.05
batch_size = 16
block_size = 64

[train]
steps = {steps}
lr = 1e-3
schedule = "cosine"
warmup_steps = 5
label_smoothing = 0.0
eval_every = {steps}
eval_batches = 1
save_every = {steps}
log_every = {log_every}
compile = {compile}
dist_timeout = 600
"""


def write_text(path: Path) -> None:
    rng = np.random.default_rng(0)
    words = ["".join(rng.choice(list("abcdefghijklmnopqrstuvwxyz"), rng.integers(2, 8))) for _ in range(300)]
    path.write_text("\n".join(" ".join(rng.choice(words, 14)) for _ in range(20000)))


def run(workers: int, config: Path, run_dir: Path, env: dict) -> dict:
    cmd = [sys.executable, "-m", "mlxt", "train", "-c", str(config), "--run-dir", str(run_dir), "-q",
           "--overwrite", "--workers", str(workers)]
    t0, cpu0 = time.time(), resource.getrusage(resource.RUSAGE_CHILDREN)
    done = subprocess.run(cmd, env=env, capture_output=True, text=True)
    wall, cpu1 = time.time() - t0, resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (cpu1.ru_utime - cpu0.ru_utime) + (cpu1.ru_stime - cpu0.ru_stime)  # all ranks, whole run
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({done.returncode}):\n{done.stderr[-2000:]}")
    records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    train = [r for r in records if r["split"] == "train"]
    timed = train[1:] or train  # the first interval holds the compile
    steps_per_interval = train[1]["step"] - train[0]["step"] if len(train) > 1 else train[0]["step"]
    tps = statistics.median(r["tokens_per_s"] for r in timed)
    tokens_per_step = 16 * 64
    return {"workers": workers, "tokens_per_s": tps, "ms_per_step": 1000.0 * tokens_per_step / tps,
            "final_loss": train[-1]["loss"], "wall_s": wall, "cpu_s": cpu, "interval": steps_per_interval}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--steps", type=int, default=20 if common.quick() else 60)
    parser.add_argument("--no-compile", action="store_true")
    args = parser.parse_args()
    log_every = max(1, args.steps // 6)
    with tempfile.TemporaryDirectory(prefix="mlxt-bench-dist-") as tmp:
        tmp = Path(tmp)
        write_text(tmp / "text.txt")
        config = tmp / "bench.toml"
        config.write_text(CONFIG.format(text=tmp / "text.txt", steps=args.steps, log_every=log_every,
                                        compile=str(not args.no_compile).lower()))
        env = dict(os.environ, MLXT_CACHE=str(tmp / "cache"))
        rows = [run(n, config, tmp / f"run-{n}", env) for n in (1, args.workers)]
    print(f"# data-parallel training, {os.cpu_count()} CPU cores, compile={not args.no_compile}, "
          f"{args.steps} steps, global batch 16 x 64 tokens (median of {log_every}-step intervals after the first)")
    print(f"{'ranks':>5} {'tokens/s':>10} {'ms/step':>9} {'final loss':>11} {'wall s':>7} {'CPU s':>7}")
    for r in rows:
        print(f"{r['workers']:>5} {r['tokens_per_s']:>10.0f} {r['ms_per_step']:>9.1f} {r['final_loss']:>11.4f} "
              f"{r['wall_s']:>7.1f} {r['cpu_s']:>7.1f}")
    print("(wall s and CPU s: whole runs including start-up, data preparation and compile; CPU s summed "
          "over ranks, which shows the cost of distribution on a busy machine)")
    print(f"speed-up {args.workers} ranks / 1: {rows[1]['tokens_per_s'] / rows[0]['tokens_per_s']:.2f}x "
          f"(same global batch; final losses agree to {abs(rows[1]['final_loss'] - rows[0]['final_loss']):.1e})")


if __name__ == "__main__":
    main()
