"""Training throughput, mlxt (compiled MLX step) against plain PyTorch eager, same run:

(a) seq2seq: d_model 256, 4 heads, 3+3 layers, ff 1024, shared vocabulary 8000, batch 32 x 32;
(b) nanoGPT's CPU "baby GPT": 4 layers, 4 heads, 128 dims, block 64, batch 12, vocabulary 65.

mlxt runs with its native CPU kernels (`mlxt.kernels`) and, in a second row, with
``MLXT_KERNELS=0``. Reports target tokens/s, ms/step, MFU (model matmul FLOPs per second over the fp32 matmul peak
MLX reaches in this run) and the mlxt/torch ratio. PyTorch runs in a worker process (two
frameworks' thread pools spinning in one process would slow each other down); the two alternate
in rounds so a busy machine slows both alike, and ms/step is the median over all timed steps.
"CPU ms/step" is the CPU time the process spent per step (all its threads): on a shared, busy
machine it shows the work done better than wall time, most of all with one thread each
(``MLXT_NUM_THREADS=1``; spinning BLAS/OpenMP threads count as CPU time). mlxt's steps run as its
trainer runs them: each evaluated asynchronously while the next one's graph is built. The first
compiled MLX step JIT-builds C++ (tens of seconds, cached under $TMPDIR/mlx), which is not timed.

    .venv/bin/python benchmarks/bench_train.py
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass

import common

import mlx.core as mx
import numpy as np

from mlxt import kernels
from mlxt.model import ModelConfig, attention, build_model
from mlxt.train.adamw import AdamW
from mlxt.train.step import TrainStep


@dataclass
class Case:
    name: str
    config: ModelConfig
    batch: int
    src_len: int  # 0 for a decoder-only model
    tgt_len: int
    lr: float
    betas: tuple
    weight_decay: float
    smoothing: float


SEQ2SEQ = Case(
    "seq2seq d256 3+3 (32x32)",
    ModelConfig(kind="seq2seq", vocab_size=8000, d_model=256, num_heads=4, num_encoder_layers=3,
                num_decoder_layers=3, d_ff=1024, dropout=0.1, share_embeddings=True, tie_output=True),
    batch=32, src_len=32, tgt_len=32, lr=5e-4, betas=(0.9, 0.98), weight_decay=0.01, smoothing=0.1,
)
BABY_GPT = Case(
    "baby GPT 4L 128d (12x64)",
    ModelConfig(kind="lm", vocab_size=65, d_model=128, num_heads=4, num_encoder_layers=0,
                num_decoder_layers=4, d_ff=512, dropout=0.0, activation="gelu", norm_first=True,
                positional="learned", max_len=64, scale_embedding=False, tie_output=True,
                attention_bias=False, ffn_bias=False),
    batch=12, src_len=0, tgt_len=64, lr=1e-3, betas=(0.9, 0.99), weight_decay=0.1, smoothing=0.0,
)
CASES = (SEQ2SEQ, BABY_GPT)


def forward_flops(case: Case) -> float:
    """Matmul FLOPs of one forward pass (projections, attention scores and mixing, output)."""
    c, B, S, T = case.config, case.batch, case.src_len, case.tgt_len
    d, ff, V = c.d_model, c.d_ff, c.vocab_size
    proj = lambda n, rows: 2 * B * rows * d * d * n  # noqa: E731  n projections d -> d
    attn = lambda q, k: 2 * 2 * B * q * k * d  # noqa: E731  scores and weighted sum
    ffn = lambda rows: 2 * 2 * B * rows * d * ff  # noqa: E731
    total = 2 * B * T * d * V  # output projection
    for _ in range(c.num_encoder_layers if c.kind == "seq2seq" else 0):
        total += proj(4, S) + attn(S, S) + ffn(S)
    for _ in range(c.num_decoder_layers):
        total += proj(4, T) + attn(T, T) + ffn(T)
        if c.kind == "seq2seq":
            total += proj(2, T) + proj(2, S) + attn(T, S)
    return float(total)


def make_batches(case: Case, count: int, seed: int = 0) -> list[dict]:
    """Random token batches (ids >= 4, so no padding, no special tokens)."""
    rng = np.random.default_rng(seed)
    V = case.config.vocab_size
    ids = lambda L: rng.integers(4, V, size=(case.batch, L), dtype=np.int32)  # noqa: E731
    if case.config.kind == "seq2seq":
        return [{"src": ids(case.src_len), "tgt_in": ids(case.tgt_len), "tgt_out": ids(case.tgt_len)}
                for _ in range(count)]
    return [{"inputs": ids(case.tgt_len), "targets": ids(case.tgt_len)} for _ in range(count)]


@contextmanager
def attention_function(fn):
    """Run the model with ``fn`` as its attention (`MultiHeadAttention` looks it up per call)."""
    saved = attention.scaled_dot_product_attention
    attention.scaled_dot_product_attention = fn or saved
    try:
        yield
    finally:
        attention.scaled_dot_product_attention = saved


@contextmanager
def kernels_enabled(on: bool):
    """Run with mlxt's native kernels on or off (`mlxt.kernels.use_native`, read while tracing).

    `use_native` also routes MLX's float32 products (to the kernels' product, or to OpenBLAS
    with the kernels off); a compiled step calls it only while tracing, so it is called here on
    every switch: otherwise the runner traced last would choose the products of both."""
    saved = os.environ.get("MLXT_KERNELS")
    os.environ["MLXT_KERNELS"] = "1" if on else "0"
    kernels.use_native()
    try:
        yield
    finally:
        if saved is None:
            del os.environ["MLXT_KERNELS"]
        else:
            os.environ["MLXT_KERNELS"] = saved
        kernels.use_native()


class MlxRunner:
    def __init__(self, case: Case, compile: bool = True, attend=None, native: bool = True):
        self.attend, self.native = attend, native
        mx.random.seed(0)
        self.model = build_model(case.config)
        self.model.train()
        opt = AdamW(learning_rate=case.lr, betas=case.betas, eps=1e-9 if case.smoothing else 1e-8,
                    weight_decay=case.weight_decay)
        self.step = TrainStep(self.model, opt, smoothing=case.smoothing, clip_norm=1.0, compile=compile)
        self.running = None

    def __call__(self, batch: dict) -> None:
        """One step, as `mlxt.train.Trainer` runs it: evaluated asynchronously, then the step
        before it waited for (in steady state a call takes one step's time)."""
        with attention_function(self.attend), kernels_enabled(self.native):
            loss, count, norm = self.step([batch])
            mx.async_eval(loss, count, norm, self.step.state)
            if self.running is not None:
                mx.eval(self.running)
            self.running = norm

    def finish(self) -> None:
        if self.running is not None:
            mx.eval(self.running)
        self.running = None


class TorchRunner:
    def __init__(self, case: Case):
        torch = common.import_torch()
        import torch.nn.functional as F

        from torch_models import TorchGPT, TorchSeq2Seq

        torch.manual_seed(0)
        c = case.config
        if c.kind == "seq2seq":
            self.model = TorchSeq2Seq(c.vocab_size, c.d_model, c.num_heads, c.num_encoder_layers,
                                      c.num_decoder_layers, c.d_ff, c.dropout)
        else:
            self.model = TorchGPT(c.vocab_size, c.d_model, c.num_heads, c.num_decoder_layers, c.d_ff, c.max_len)
        self.model.train()
        self.opt = torch.optim.AdamW(self.model.parameters(), lr=case.lr, betas=case.betas,
                                     eps=1e-9 if case.smoothing else 1e-8, weight_decay=case.weight_decay)
        self.case, self.torch, self.F = case, torch, F

    def __call__(self, batch: dict) -> float:
        torch, F = self.torch, self.F
        if self.case.config.kind == "seq2seq":
            logits = self.model(torch.from_numpy(batch["src"]).long(), torch.from_numpy(batch["tgt_in"]).long())
            labels = torch.from_numpy(batch["tgt_out"]).long()
        else:
            logits = self.model(torch.from_numpy(batch["inputs"]).long())
            labels = torch.from_numpy(batch["targets"]).long()
        loss = F.cross_entropy(logits.flatten(0, 1), labels.flatten(), ignore_index=0,
                               label_smoothing=self.case.smoothing, reduction="sum")
        count = (labels != 0).sum()
        self.opt.zero_grad(set_to_none=True)
        (loss / count).backward()
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), 1.0)
        self.opt.step()
        return loss.item() / count.item()


class TorchWorker:
    """A `TorchRunner` in a child process: ``worker(batches)`` returns its step times."""

    def __init__(self, case_index: int):
        self.proc = subprocess.Popen([sys.executable, __file__, "--torch-worker", str(case_index)],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)

    def steps(self, indices: list[int]) -> list[float]:
        self.proc.stdin.write(json.dumps(indices) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError("the PyTorch benchmark worker died (see its error above)")
        return json.loads(line)

    def close(self) -> None:
        self.proc.stdin.close()
        self.proc.wait(timeout=60)


def torch_worker(case_index: int) -> None:
    """Child side of `TorchWorker`: read a JSON list of batch indices, answer with step times."""
    case = CASES[case_index]
    batches = make_batches(case, 4)
    runner = TorchRunner(case)
    for line in sys.stdin:
        times = time_steps(runner, [batches[i] for i in json.loads(line)])
        print(json.dumps(times), flush=True)


def time_steps(runner, batches: list[dict]) -> list[list[float]]:
    """[wall seconds, CPU seconds of this process (all its threads)] of each step. A pipelined
    runner's first call only starts its step and the last one also waits for its own (``finish``),
    so the times still add up to the whole; the median is one step's."""
    times = []
    for i, batch in enumerate(batches):
        start, cpu = time.perf_counter(), time.process_time()
        runner(batch)
        if i == len(batches) - 1 and hasattr(runner, "finish"):
            runner.finish()
        times.append([time.perf_counter() - start, time.process_time() - cpu])
    return times


def settle(seconds: float = 0.3) -> None:
    """Pause before timing the next runner: the one before may leave threads spinning for a
    while (OpenBLAS's with the kernels off, PyTorch's OpenMP pool), taking cores from it."""
    time.sleep(seconds)


def bench_case(case: Case, peak_gflops: float, rounds: int, steps: int, uncompiled: bool = True) -> list[list]:
    batches = make_batches(case, 4)
    runners = {"mlxt": MlxRunner(case)}
    runners["mlxt, kernels off"] = MlxRunner(case, native=False)
    if uncompiled:
        runners["mlxt (no compile)"] = MlxRunner(case, compile=False)
    worker = TorchWorker(CASES.index(case))
    times = {name: [] for name in [*runners, "torch eager"]}
    try:
        worker.steps([0, 1, 2])  # warm-up: compilation, allocator, thread pools
        for runner in runners.values():
            time_steps(runner, batches[:3])
        for r in range(rounds):
            order = [(r + i) % len(batches) for i in range(steps)]
            settle()
            times["torch eager"] += worker.steps(order)
            for name, runner in runners.items():
                settle()
                times[name] += time_steps(runner, [batches[i] for i in order])
    finally:
        worker.close()
    tokens = case.batch * case.tgt_len
    flops = 3.0 * forward_flops(case)
    median = {name: np.median(np.array(t), axis=0) * 1e3 for name, t in times.items()}  # [wall, cpu] ms
    torch_ms, torch_cpu = median["torch eager"]
    rows = []
    for name, (ms, cpu) in median.items():
        mfu = flops / (ms / 1e3) / (peak_gflops * 1e9)
        rows.append([case.name, name, tokens / (ms / 1e3), ms, cpu, f"{100 * mfu:.1f}%",
                     f"{torch_ms / ms:.2f}x", f"{torch_cpu / cpu:.2f}x"])
    return rows


HEADERS = ["training", "implementation", "tokens/s", "ms/step", "CPU ms/step", "MFU", "vs torch",
           "vs torch (CPU time)"]


def run(peak_gflops: float | None = None) -> tuple[list[str], list[list], dict]:
    from bench_matmul import peak_gflops as measure_peak

    peak = peak_gflops or measure_peak()
    rounds, steps = (2, 2) if common.quick() else (3, 4)
    rows = []
    for case in CASES:
        rows += bench_case(case, peak, rounds, steps)
    return HEADERS, rows, {"peak_gflops": peak}


if __name__ == "__main__":
    if sys.argv[1:2] == ["--torch-worker"]:
        torch_worker(int(sys.argv[2]))
        raise SystemExit(0)
    print(common.machine())
    headers, rows, extra = run()
    print(f"MFU against the fp32 matmul peak of this run: {extra['peak_gflops']:.0f} GFLOP/s")
    print(common.table(headers, rows))
