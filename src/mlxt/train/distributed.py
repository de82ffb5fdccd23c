"""Data-parallel training over `mx.distributed` (ring over TCP, MPI, NCCL on CUDA).

A run started by ``mlx.launch -n N --backend ring -- python -m mlxt train ...`` (or ``mlxt train
--workers N``) has N processes. Each builds the same model, reads a disjoint shard of every
global batch (``PreparedData.batches(..., rank=, world_size=)``) and runs the same compiled step,
in which `reducer` sums the token-summed losses, the target counts and the gradients over the
ranks (`nn.average_gradients`), so the update is the single-process update over the global batch:
``sum_r grad_r / sum_r count_r``. The config's batch settings describe the global batch and its
LR is used as is, whatever N is. Only rank 0 writes the run directory.

Everything that decides control flow (stop flags, validation loss) is reduced over the ranks,
so all ranks take the same branches and meet at the same collectives.

Failure: a rank whose peer dies sees the ring socket close and MLX raise; `lost_peer` turns
that into a `DistributedError`. A peer that hangs (or an unreachable host) would block the
collective forever, holding the Python GIL, so the watchdog is a separate small process: the
trainer writes a heartbeat line to its pipe at every step boundary; after ``timeout`` seconds
without one it prints a clear error and terminates the rank. Checkpoints are written atomically,
so the last one on disk stays intact whatever happens.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import mlx.core as mx
import mlx.nn as nn
import numpy as np
from mlx.utils import tree_map

from mlxt.errors import MlxtError

# Variables by which the MLX launchers (mlx.launch, mpirun) tell a process it is one of many.
LAUNCH_ENV = ("MLX_RANK", "MLX_HOSTFILE", "MLX_WORLD_SIZE", "OMPI_COMM_WORLD_SIZE", "PMI_SIZE")
BACKENDS = ("any", "ring", "mpi", "nccl", "jaccl")


class DistributedError(MlxtError):
    """A rank died, hung or could not connect; the other ranks stop with this error."""


def launched() -> bool:
    """True when a distributed launcher started this process."""
    return any(os.environ.get(name) for name in LAUNCH_ENV)


class Distributed:
    """The process group of one run (a single process when ``group`` is None) and the helpers
    the trainer calls; every method is a no-op returning its input for a single process."""

    def __init__(self, group=None, watchdog: Watchdog | None = None):
        self.group = group
        self.rank = group.rank() if group is not None else 0
        self.size = group.size() if group is not None else 1
        self._watchdog = watchdog

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def active(self) -> bool:
        return self.size > 1

    # -- inside the compiled step ------------------------------------------------------------------
    def reducer(self):
        """``reduce(grads, loss, count) -> (grads, loss, count)`` summed over ranks, or None.

        One `nn.average_gradients` call carries the gradients and the (loss, count) pair; it
        returns means, so both are scaled back to sums (exact for a power-of-two world size).
        """
        if not self.active:
            return None
        group, n = self.group, float(self.size)

        def reduce(grads, loss, count):
            tree = {"grads": grads, "sums": mx.stack([loss.astype(mx.float32), count.astype(mx.float32)])}
            tree = nn.average_gradients(tree, group=group)
            sums = tree["sums"] * n
            return tree_map(lambda g: g * n, tree["grads"]), sums[0], sums[1]

        return reduce

    # -- on the host -------------------------------------------------------------------------------
    def sum(self, values: list[float]) -> list[float]:
        """Element-wise sum of ``values`` over the ranks (float32: exact for counts below 2**24)."""
        if not self.active:
            return list(values)
        out = mx.distributed.all_sum(mx.array(np.asarray(values, dtype=np.float32)), group=self.group)
        return [float(v) for v in np.array(out)]

    def any(self, *flags: bool) -> tuple[bool, ...]:
        """Each flag OR-ed over the ranks, so every rank takes the same branch."""
        if not self.active:
            return tuple(bool(f) for f in flags)
        return tuple(v > 0 for v in self.sum([float(bool(f)) for f in flags]))

    def broadcast(self, tree):
        """``tree`` (of arrays) as rank 0 has it, on every rank (all_sum with zeros elsewhere)."""
        if not self.active:
            return tree
        keep = self.is_main

        def one(x):
            x = x if keep else mx.zeros_like(x)
            return mx.distributed.all_sum(x, group=self.group)

        out = tree_map(one, tree)
        mx.eval(out)
        return out

    def gather(self, values: list[int]) -> list[list[int]]:
        """Every rank's ``values`` (small non-negative integers, e.g. an RNG key), by rank."""
        if not self.active:
            return [list(values)]
        mine = mx.array(np.asarray(values, dtype=np.uint32)[None])
        out = np.array(mx.distributed.all_gather(mine, group=self.group))
        return [[int(v) for v in row] for row in out]

    def check_same(self, value: int, what: str) -> None:
        """Raise on every rank unless all ranks hold the same integer ``value``."""
        if not self.active:
            return
        values = [row[0] for row in self.gather([value])]
        if len(set(values)) > 1:
            raise DistributedError(f"ranks disagree on the {what}: {values} (by rank); every rank must see "
                                   "the same run directory, config and data")

    # -- failure handling --------------------------------------------------------------------------
    def beat(self, note: str) -> None:
        """Heartbeat: this rank made progress (``note`` says where it is, for the timeout message)."""
        if self._watchdog is not None:
            self._watchdog.beat(note)

    def pause(self, note: str) -> None:
        """Local work that waits for no other rank (e.g. preparing data): no timeout until the
        next `beat`."""
        if self._watchdog is not None:
            self._watchdog.beat(Watchdog.PAUSE + note)

    def close(self) -> None:
        if self._watchdog is not None:
            self._watchdog.close()
            self._watchdog = None


def setup(backend: str = "any", timeout: float = 0.0) -> Distributed:
    """The run's process group: a single process unless a launcher started this one.

    The watchdog starts before connecting, since ring initialisation waits for every peer.
    """
    if not launched():
        return Distributed()
    if backend not in BACKENDS:
        raise MlxtError(f"distributed backend {backend!r}: expected one of {', '.join(BACKENDS)}")
    rank = int(os.environ.get("MLX_RANK", os.environ.get("OMPI_COMM_WORLD_RANK", "0")))
    watchdog = Watchdog(rank, timeout) if timeout > 0 else None
    if watchdog is not None:
        watchdog.beat("connecting to the other ranks")
    try:
        group = mx.distributed.init(strict=True, backend=backend)
    except RuntimeError as exc:
        if watchdog is not None:
            watchdog.close()
        raise DistributedError(f"rank {rank}: could not start the {backend} backend: {exc}") from None
    if watchdog is not None and group.size() == 1:
        watchdog.close()
        watchdog = None
    return Distributed(group, watchdog)


def lost_peer(exc: BaseException, dist: Distributed, where: str = "") -> DistributedError | None:
    """The clear error for a collective that failed because a peer went away, else None."""
    text = str(exc)
    if not dist.active or not isinstance(exc, RuntimeError):
        return None
    if not any(tag in text for tag in ("[ring]", "[mpi]", "[nccl]", "[jaccl]", "peer")):
        return None
    return DistributedError(f"rank {dist.rank}: lost the connection to another rank ({text.strip()})"
                            f"{'; ' + where if where else ''}; a rank died or was stopped, so this rank stops too")


# -- watchdog --------------------------------------------------------------------------------------
_WATCHDOG = r"""
import os, select, signal, sys, time
signal.signal(signal.SIGINT, signal.SIG_IGN)
pid, timeout, rank = int(sys.argv[1]), float(sys.argv[2]), sys.argv[3]
fd, note, buf, PAUSE = sys.stdin.fileno(), "starting", b"", "(paused) "
deadline = time.monotonic() + timeout
while True:
    left = deadline - time.monotonic()
    if left <= 0:
        sys.stderr.write(
            f"mlxt: error: rank {rank}: no progress for {timeout:g} s ({note}): another rank died, hung "
            f"or is unreachable; stopping this rank (raise [train] dist_timeout if a step, an evaluation "
            f"or a checkpoint legitimately takes longer)\n")
        sys.stderr.flush()
        try:
            os.kill(pid, signal.SIGTERM)
            for _ in range(50):
                time.sleep(0.1)
                os.kill(pid, 0)
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass
        sys.exit(0)
    ready, _, _ = select.select([fd], [], [], None if left == float("inf") else left)
    if ready:
        data = os.read(fd, 65536)
        if not data:
            sys.exit(0)
        lines = (buf + data).split(b"\n")
        buf = lines[-1]
        if len(lines) > 1:
            note = lines[-2].decode(errors="replace")
            paused = note.startswith(PAUSE)
            deadline = float("inf") if paused else time.monotonic() + timeout
"""


class Watchdog:
    """A child process that terminates this one after ``timeout`` seconds without a heartbeat.

    A thread would not do: a collective waiting for a dead peer blocks inside MLX holding the
    GIL. The child exits by itself when this process ends (its pipe closes). A heartbeat line
    starting with ``PAUSE`` stops the clock until the next heartbeat.
    """

    PAUSE = "(paused) "

    def __init__(self, rank: int, timeout: float):
        self.proc = subprocess.Popen([sys.executable, "-S", "-c", _WATCHDOG, str(os.getpid()), str(timeout),
                                      str(rank)], stdin=subprocess.PIPE, stdout=subprocess.DEVNULL)

    def beat(self, note: str) -> None:
        try:
            self.proc.stdin.write((note.replace("\n", " ") + "\n").encode())
            self.proc.stdin.flush()
        except (BrokenPipeError, ValueError, OSError):
            pass

    def close(self) -> None:
        try:
            self.proc.stdin.close()
        except OSError:
            pass
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.proc.kill()


# -- launching several ranks on this machine -------------------------------------------------------
def free_ports(n: int) -> list[int]:
    """``n`` TCP ports on 127.0.0.1 that were free a moment ago."""
    socks, ports = [], []
    try:
        for _ in range(n):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.1", 0))
            socks.append(s)
            ports.append(s.getsockname()[1])
    finally:
        for s in socks:
            s.close()
    return ports


def ring_hostfile(n: int, directory: str | Path) -> Path:
    """A ring-backend hostfile for ``n`` ranks on 127.0.0.1 (what ``mlx.launch`` passes as
    ``MLX_HOSTFILE``): one ``["ip:port"]`` list per rank."""
    path = Path(directory) / "mlxt-ring-hosts.json"
    path.write_text(json.dumps([[f"127.0.0.1:{p}"] for p in free_ports(n)]))
    return path


def spawn_workers(n: int, argv: list[str], directory: str | Path, env: dict | None = None,
                  quiet_workers: bool = True) -> list[subprocess.Popen]:
    """Start ``python -m mlxt ARGV`` as ranks 0..n-1 of a local ring (environment as set by
    ``mlx.launch -n N --backend ring``). Ranks other than 0 print only errors.

    The ranks share this machine's cores, so unless the BLAS thread count is set
    (``MLXT_NUM_THREADS``/``OPENBLAS_NUM_THREADS``), each rank gets ``cores // n`` BLAS threads:
    ranks that each start one thread per core would oversubscribe it."""
    hostfile = ring_hostfile(n, directory)
    base = dict(os.environ if env is None else env)
    if not base.get("MLXT_NUM_THREADS") and not base.get("OPENBLAS_NUM_THREADS"):
        base["MLXT_NUM_THREADS"] = str(max(1, (os.cpu_count() or 1) // n))
    procs = []
    for rank in range(n):
        rank_env = dict(base, MLX_HOSTFILE=str(hostfile), MLX_RANK=str(rank))
        out = subprocess.DEVNULL if rank and quiet_workers else None
        procs.append(subprocess.Popen([sys.executable, "-m", "mlxt", *argv], env=rank_env, stdout=out))
    return procs


def wait_workers(procs: list[subprocess.Popen], grace: float) -> int:
    """Wait for all ranks; once one fails, give the others ``grace`` seconds to stop on their own
    (they notice the lost peer or time out), then terminate them. Returns the first failure's
    exit status (0 when all succeeded)."""
    status, failed_at = 0, None
    while True:
        try:
            codes = [p.poll() for p in procs]
            if all(c is not None for c in codes):
                break
            for c in codes:
                if c not in (None, 0) and status == 0:
                    status, failed_at = (c if c > 0 else 128 - c), time.monotonic()
            if failed_at is not None and time.monotonic() - failed_at > grace:
                for p in procs:
                    if p.poll() is None:
                        p.terminate()
            time.sleep(0.1)
        except KeyboardInterrupt:  # the ranks got the Ctrl-C too; they save and stop
            continue
    if status == 0:
        bad = [c for c in codes if c != 0]
        status = (bad[0] if bad[0] > 0 else 128 - bad[0]) if bad else 0
    return status


def run_workers(n: int, argv: list[str], grace: float = 60.0) -> int:
    """``mlxt train --workers N``: run ``mlxt ARGV`` as N local ranks and return an exit status; a
    SIGTERM sent to this process is passed on to the ranks."""
    from mlxt.train.signals import forwarding_sigterm

    if n < 1:
        raise MlxtError(f"--workers {n}: expected a positive number of processes")
    with tempfile.TemporaryDirectory(prefix="mlxt-ring-") as tmp:
        procs = spawn_workers(n, argv, tmp)
        with forwarding_sigterm(procs):
            return wait_workers(procs, grace)

