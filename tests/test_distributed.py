"""Data-parallel training with `mx.distributed` (ring backend on localhost).

Two ranks must produce the single-process update over the same global batches; a rank that
dies or hangs must make the other one stop with a clear error within the timeout, leaving the
last checkpoint intact; a two-rank run resumes exactly (per-rank dropout streams included).
Models are tiny and compile is off (the g++ JIT would dominate), except in the compiled-step
test, which uses a one-layer model.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import mlx.core as mx
import numpy as np
import pytest

from mlxt.errors import MlxtError
from mlxt.train import checkpoint as ckpt
from mlxt.train.config import load_config
from mlxt.train.distributed import Distributed, lost_peer, spawn_workers, wait_workers
from mlxt.train.trainer import train

MLX_LAUNCH = Path(sys.executable).with_name("mlx.launch")
WORDS = "to be or not that is the question whether tis nobler in the mind to suffer slings".split()

LM_CONFIG = """
[model]
kind = "lm"
d_model = 32
num_heads = 2
num_decoder_layers = 1
d_ff = 64
dropout = {dropout}
positional = "learned"
norm_first = true
max_len = 32

[data]
path = "{text}"
tokenizer = "char"
vocab_size = 64
valid_size = 0.1
batch_size = 8
block_size = 32

[train]
steps = {steps}
lr = 3e-3
schedule = "cosine"
min_lr = 1e-4
# a large eps: parameters whose exact gradient is zero (the key bias) get float noise as
# gradient, which Adam with a tiny eps would blow up to +-lr and make the comparison meaningless
eps = 1e-4
label_smoothing = 0.0
grad_accumulation = {accumulation}
eval_every = {steps}
eval_batches = 2
save_every = {save_every}
keep_last = 0
log_every = 1
seed = 5
compile = false
dist_timeout = {timeout}
"""


def _config(tmp_path: Path, steps: int = 4, dropout: float = 0.0, accumulation: int = 1, save_every: int = 2,
            timeout: float = 60.0) -> Path:
    text = tmp_path / "text.txt"
    if not text.exists():
        rng = np.random.default_rng(0)
        text.write_text("\n".join(" ".join(rng.choice(WORDS, 12)) for _ in range(400)))
    path = tmp_path / "lm.toml"
    path.write_text(LM_CONFIG.format(text=text, steps=steps, dropout=dropout, accumulation=accumulation,
                                     save_every=save_every, timeout=timeout))
    return path


@pytest.fixture
def env(tmp_path, monkeypatch) -> dict:
    """The environment of spawned ranks: a private prepared-data cache, no launcher variables."""
    monkeypatch.setenv("MLXT_CACHE", str(tmp_path / "cache"))
    out = {k: v for k, v in os.environ.items() if k not in ("MLX_RANK", "MLX_HOSTFILE")}
    return out


def _weights(run: Path, step: int) -> dict:
    return {k: np.array(v) for k, v in mx.load(str(run / "checkpoints" / ckpt.step_name(step) /
                                                   ckpt.MODEL_FILE)).items()}


def _train_records(run: Path) -> list[dict]:
    return [r for r in map(json.loads, (run / "metrics.jsonl").read_text().splitlines()) if r["split"] == "train"]


def _two_free_ports() -> int:
    """A port p with p and p + 1 free (mlx.launch gives rank r the port p + r)."""
    for _ in range(50):
        with socket.socket() as a, socket.socket() as b:
            a.bind(("127.0.0.1", 0))
            port = a.getsockname()[1]
            try:
                b.bind(("127.0.0.1", port + 1))
            except OSError:
                continue
            return port
    raise RuntimeError("no two consecutive free ports")


def _launch(args: list[str], env: dict, timeout: float = 120.0) -> subprocess.CompletedProcess:
    """``mlx.launch -n 2 --backend ring -- python -m mlxt ARGS`` (the documented command)."""
    cmd = [str(MLX_LAUNCH), "-n", "2", "--backend", "ring", "--starting-port", str(_two_free_ports()),
           "--", sys.executable, "-m", "mlxt", *args]
    # mlx.launch forwards its stdin to the ranks and polls it; a silent open pipe keeps that poll
    # idle (at end of file, e.g. /dev/null, it keeps waking up)
    read_end, write_end = os.pipe()
    try:
        return subprocess.run(cmd, env=env, stdin=read_end, capture_output=True, text=True, timeout=timeout)
    finally:
        os.close(read_end)
        os.close(write_end)


# -- two ranks equal one process ----------------------------------------------------------------------
@pytest.mark.parametrize("accumulation", [1, 2])
def test_two_ranks_match_one_process(tmp_path, env, accumulation):
    config = _config(tmp_path, steps=4, accumulation=accumulation)
    single = train(load_config(config), tmp_path / "single", show_progress=False)
    assert single.step == 4
    done = _launch(["train", "-c", str(config), "--run-dir", str(tmp_path / "dist"), "-q"], env)
    assert "training finished at step 4" in done.stdout, done.stdout + done.stderr
    assert done.stdout.count("training finished") == 1  # only rank 0 reports

    one, two = _weights(tmp_path / "single", 4), _weights(tmp_path / "dist", 4)
    assert one.keys() == two.keys()
    for name in one:
        np.testing.assert_allclose(two[name], one[name], rtol=1e-5, atol=2e-6, err_msg=name)
    moved = _weights(tmp_path / "single", 2)  # the check is not vacuous: training changed them
    assert max(np.abs(one[k] - moved[k]).max() for k in one) > 1e-4

    # metrics: global loss (all_sum over ranks), written once (rank 0 only)
    a, b = _train_records(tmp_path / "single"), _train_records(tmp_path / "dist")
    assert [r["step"] for r in b] == [1, 2, 3, 4]
    for x, y in zip(a, b):
        assert y["loss"] == pytest.approx(x["loss"], rel=1e-5)
        assert y["grad_norm"] == pytest.approx(x["grad_norm"], rel=1e-4)
        assert y["lr"] == x["lr"]
    state = json.loads((tmp_path / "dist" / "checkpoints" / ckpt.step_name(4) / ckpt.STATE_FILE).read_text())
    assert state["data"]["world_size"] == 2 and len(state["rng_ranks"]) == 2


def test_two_rank_run_resumes_exactly_with_dropout(tmp_path, env):
    """Resuming a 2-rank run from its step-3 checkpoint reproduces step 6 bit for bit: weights,
    optimizer, data position and every rank's dropout stream come back."""
    config = _config(tmp_path, steps=6, dropout=0.2, save_every=3)
    run = tmp_path / "run"
    with tempfile.TemporaryDirectory() as tmp:
        status = wait_workers(spawn_workers(2, ["train", "-c", str(config), "--run-dir", str(run), "-q"], tmp,
                                            env=env), grace=30)
    assert status == 0
    first = _weights(run, 6)
    state = json.loads((run / "checkpoints" / ckpt.step_name(6) / ckpt.STATE_FILE).read_text())
    keys = state["rng_ranks"]
    assert keys[0] != keys[1]  # ranks draw different dropout masks
    (run / "checkpoints" / "best").unlink()
    shutil.rmtree(run / "checkpoints" / ckpt.step_name(6))
    done = subprocess.run([sys.executable, "-m", "mlxt", "train", "--workers", "2", "--resume", str(run), "-q"],
                          env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    again = _weights(run, 6)
    for name in first:
        np.testing.assert_array_equal(again[name], first[name], err_msg=name)
    resumed = json.loads((run / "checkpoints" / ckpt.step_name(6) / ckpt.STATE_FILE).read_text())
    assert resumed["rng_ranks"] == keys


# -- failures ------------------------------------------------------------------------------------------
def _start_long_run(tmp_path: Path, env: dict, timeout: float):
    config = _config(tmp_path, steps=100000, save_every=3, timeout=timeout)
    run = tmp_path / "run"
    procs = spawn_workers(2, ["train", "-c", str(config), "--run-dir", str(run), "-q"], tmp_path, env=env)
    deadline = time.time() + 60
    while not (run / "checkpoints" / ckpt.step_name(3)).exists():
        assert time.time() < deadline and all(p.poll() is None for p in procs), "the 2-rank run did not start"
        time.sleep(0.05)
    return procs, run


def _check_intact_checkpoint(run: Path) -> None:
    latest = ckpt.latest_checkpoint(run / "checkpoints")
    assert latest is not None and int(ckpt.read_state(latest)["step"]) >= 3
    weights = mx.load(str(latest / ckpt.MODEL_FILE))
    assert weights and all(np.isfinite(np.array(v)).all() for v in weights.values())


@pytest.mark.parametrize("how", ["killed", "hung"])
def test_other_rank_stops_with_an_error(tmp_path, env, how, capfd):
    """SIGKILL: the ring socket closes and rank 0 stops with a lost-connection error.
    SIGSTOP (a hung peer; sockets stay open): the watchdog stops rank 0 after dist_timeout.
    Either way the exit status is non-zero and the last checkpoint loads."""
    timeout = 6.0
    procs, run = _start_long_run(tmp_path, env, timeout)
    try:
        os.kill(procs[1].pid, signal.SIGKILL if how == "killed" else signal.SIGSTOP)
        t0 = time.time()
        code = procs[0].wait(timeout=timeout + 30)
        waited = time.time() - t0
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    err = capfd.readouterr().err
    assert code != 0
    if how == "killed":
        # usually at once (the socket closes); MLX's ring sometimes fails the pending transfer
        # without failing the waiting operation, and then the watchdog ends it
        lost = "rank 0: lost the connection to another rank" in err and "last checkpoint:" in err
        assert lost or f"rank 0: no progress for {timeout:g} s" in err, err
        assert waited < timeout + 15, waited
    else:
        assert timeout - 1 <= waited < timeout + 15, waited
        assert f"rank 0: no progress for {timeout:g} s" in err, err
    _check_intact_checkpoint(run)


def test_ctrl_c_stops_all_ranks_at_the_same_step(tmp_path, env, capfd):
    """Ctrl-C reaches every rank at a different moment of its step; the ranks agree on it, so
    rank 0 saves one checkpoint at the step where all stop, and none loses its peer."""
    procs, run = _start_long_run(tmp_path, env, 60.0)
    time.sleep(0.5)
    for p in procs:
        os.kill(p.pid, signal.SIGINT)
    codes = [p.wait(timeout=60) for p in procs]
    err = capfd.readouterr().err
    assert codes == [130, 130], err
    assert "lost the connection" not in err and "no progress" not in err
    line = next(x for x in err.splitlines() if x.startswith("mlxt: interrupted at step "))
    step = int(line.split("interrupted at step ")[1].split(";")[0])
    assert ckpt.latest_checkpoint(run / "checkpoints").name == ckpt.step_name(step)
    assert [r["step"] for r in _train_records(run)][-1] == step


# -- the compiled step -----------------------------------------------------------------------------
COMPILED_WORKER = """
import json, sys
from functools import partial
import mlx.core as mx, mlx.nn as nn, numpy as np
from mlxt.train.distributed import setup

dist = setup("ring", timeout=60)
x, y = np.load(sys.argv[1] + "/x.npy"), np.load(sys.argv[1] + "/y.npy")
rows = np.array_split(np.arange(len(x)), dist.size)[dist.rank]
model = nn.Linear(x.shape[1], y.shape[1])
model.update({"weight": mx.array(np.load(sys.argv[1] + "/w.npy")), "bias": mx.zeros(y.shape[1])})
reduce = dist.reducer()
lr = 0.1

def loss_fn(xb, yb):
    return mx.sum((model(xb) - yb) ** 2), mx.array(xb.shape[0] * yb.shape[1], mx.float32)

value_and_grad = nn.value_and_grad(model, loss_fn)

@partial(mx.compile, inputs=[model.state], outputs=[model.state])
def step(xb, yb):
    (loss, count), grads = value_and_grad(xb, yb)
    grads, loss, count = reduce(grads, loss, count)
    model.update({k: model[k] - lr * grads[k] / count for k in ("weight", "bias")})
    return loss, count

for _ in range(3):
    loss, count = step(mx.array(x[rows]), mx.array(y[rows]))
    mx.eval(loss, count, model.state)
if dist.is_main:
    np.save(sys.argv[1] + "/out.npy", np.array(model.weight))
    json.dump({"loss": loss.item(), "count": count.item()}, open(sys.argv[1] + "/out.json", "w"))
dist.close()
"""


def test_average_gradients_inside_mx_compile(tmp_path, env):
    """The reducer (nn.average_gradients of gradients, loss and count) inside `mx.compile` on
    two ranks gives the full-batch gradient descent of a numpy reference."""
    rng = np.random.default_rng(1)
    x, y, w = rng.normal(size=(6, 4)), rng.normal(size=(6, 3)), rng.normal(size=(3, 4))
    for name, a in (("x", x), ("y", y), ("w", w)):
        np.save(tmp_path / f"{name}.npy", a.astype(np.float32))
    (tmp_path / "worker.py").write_text(COMPILED_WORKER)
    with tempfile.TemporaryDirectory() as tmp:
        from mlxt.train.distributed import ring_hostfile

        hosts = ring_hostfile(2, tmp)
        procs = [subprocess.Popen([sys.executable, str(tmp_path / "worker.py"), str(tmp_path)],
                                  env=dict(env, MLX_HOSTFILE=str(hosts), MLX_RANK=str(r))) for r in range(2)]
        assert [p.wait(timeout=120) for p in procs] == [0, 0]
    ref, b = w.copy(), np.zeros(3)
    for _ in range(3):
        err = x @ ref.T + b - y
        loss = float((err ** 2).sum())
        ref, b = ref - 0.1 * 2 * err.T @ x / y.size, b - 0.1 * 2 * err.sum(0) / y.size
    out = json.loads((tmp_path / "out.json").read_text())
    assert out["count"] == y.size
    assert out["loss"] == pytest.approx(loss, rel=1e-5)
    np.testing.assert_allclose(np.load(tmp_path / "out.npy"), ref, rtol=1e-5, atol=1e-6)


# -- watchdog and sharding units --------------------------------------------------------------------
WATCHED = """
import sys, time
from mlxt.train.distributed import Watchdog
dog = Watchdog(rank=1, timeout=1.0)
dog.beat("step 7")
if sys.argv[1] == "pause":
    dog.beat(Watchdog.PAUSE + "preparing data")
time.sleep(2.5)
dog.beat("step 8")
dog.close()
print("survived")
"""


@pytest.mark.parametrize("mode", ["stall", "pause"])
def test_watchdog_stops_a_stalled_process_unless_paused(tmp_path, mode):
    script = tmp_path / "watched.py"
    script.write_text(WATCHED)
    done = subprocess.run([sys.executable, str(script), mode], capture_output=True, text=True, timeout=60)
    if mode == "stall":
        assert done.returncode == -signal.SIGTERM and "survived" not in done.stdout
        assert "rank 1: no progress for 1 s (step 7)" in done.stderr  # killed inside the 2.5 s stall
    else:
        assert done.returncode == 0 and "survived" in done.stdout, done.stderr


def test_regression_batches_shard_the_global_batch():
    from mlxt.data.series import SeriesConfig, SeriesData

    data = SeriesData(SeriesConfig(batch_size=6, length=2000, window=16))
    for shuffle in (True, False):
        whole = next(data.batches("train", seed=3, shuffle=shuffle))
        parts = [next(data.batches("train", seed=3, shuffle=shuffle, rank=r, world_size=2)) for r in range(2)]
        assert [len(p["inputs"]) for p in parts] == [3, 3]
        np.testing.assert_array_equal(np.concatenate([p["inputs"] for p in parts]), whole["inputs"])


# -- single-process behaviour and messages ------------------------------------------------------------
def test_single_process_helpers_are_identity():
    dist = Distributed()
    assert dist.rank == 0 and dist.size == 1 and dist.is_main and not dist.active
    assert dist.reducer() is None
    assert dist.sum([1.5, 2.0]) == [1.5, 2.0] and dist.any(True, False) == (True, False)
    tree = {"a": mx.ones(2)}
    assert dist.broadcast(tree) is tree and dist.gather([3, 4]) == [[3, 4]]
    dist.check_same(7, "step")
    dist.beat("nothing watches a single process")
    assert lost_peer(RuntimeError("[ring] connection to a peer was lost"), dist) is None


def test_lost_peer_message_only_for_collective_failures():
    class Group:  # rank 1 of 2, as mx.distributed.Group reports it
        def rank(self):
            return 1

        def size(self):
            return 2

    dist = Distributed(Group())
    error = lost_peer(RuntimeError("[ring] connection to a peer was lost"), dist, "last checkpoint: none")
    assert isinstance(error, MlxtError) and "rank 1: lost the connection" in str(error)
    assert lost_peer(RuntimeError("[matmul] shapes do not match"), dist) is None
    assert lost_peer(ValueError("[ring] x"), dist) is None


def test_config_and_cli_checks(tmp_path, env):
    config = _config(tmp_path)
    with pytest.raises(MlxtError, match=r"\[train\] dist_timeout = -1"):
        load_config(config, ["train.dist_timeout=-1"])
    done = subprocess.run([sys.executable, "-m", "mlxt", "train", "-c", str(config), "--workers", "0"], env=env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "--workers 0: expected a positive number" in done.stderr


# -- threads -------------------------------------------------------------------------------------------
@pytest.mark.parametrize("preset", [None, {"MLXT_NUM_THREADS": "3"}, {"OPENBLAS_NUM_THREADS": "3"}])
def test_local_ranks_split_the_cores_between_their_blas_threads(tmp_path, capfd, preset):
    """`--workers N` gives each rank cores // N BLAS threads, unless the user set a count."""
    env = {k: v for k, v in os.environ.items() if k not in ("MLXT_NUM_THREADS", "OPENBLAS_NUM_THREADS")}
    env.update(preset or {})
    procs = spawn_workers(2, ["info", "--json", "--no-bench"], tmp_path, env=env, quiet_workers=False)
    assert wait_workers(procs, grace=30) == 0
    out, reports, decoder = capfd.readouterr().out, [], json.JSONDecoder()
    while out.strip():  # the two ranks' JSON reports, one after the other
        report, end = decoder.raw_decode(out.lstrip())
        reports.append(report)
        out = out.lstrip()[end:]
    if preset is None:
        expected = max(1, (os.cpu_count() or 1) // 2)
        assert [r["threads"]["openblas"] for r in reports] == [expected, expected]
        assert [r["threads"]["MLXT_NUM_THREADS"] for r in reports] == [str(expected)] * 2
    elif "MLXT_NUM_THREADS" in preset:
        assert [r["threads"]["openblas"] for r in reports] == [3, 3]
    else:  # OpenBLAS reads its own variable; mlxt adds nothing
        assert [r["threads"]["MLXT_NUM_THREADS"] for r in reports] == [None, None]
        assert [r["threads"]["OPENBLAS_NUM_THREADS"] for r in reports] == ["3", "3"]
