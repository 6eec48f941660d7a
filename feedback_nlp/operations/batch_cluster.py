"""The Ray side of batch scoring: which cluster, how many CPUs each part gets, where Ray's logs go.

Why these choices:
- A local cluster is started by the command unless `--address` names one (`auto`: the cluster
  this node joined with `ray start`; `ray://host:10001`: Ray Client); `address="local"` is
  explicit so a cluster another user started on a shared machine is never joined by accident.
- Reads and writes are small tasks at `TASK_CPUS` (0.25) CPU each, and the actors share what is
  left: with 2 CPUs, 2 actors at the default 1 CPU each leave nothing for the read tasks and the
  job waits forever (Ray's resource accounting, not a bug of ours); at (2 - 0.5) / 2 = 0.75 CPU
  each, reads and writes always fit. Torch threads per actor = its CPUs rounded up.
- stderr carries errors only (cli/main.py): Ray logs from Python and from its C++ core, so
  `stderr_into_stdout` moves file descriptor 2 itself while the job runs, unless stderr is a
  terminal (where the progress bar is drawn).
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import sys
from dataclasses import dataclass
from typing import Any, Callable, Iterator

from feedback_nlp.core.errors import UserError

TASK_CPUS = 0.25  # each read and write task
RESERVED_CPUS = 2 * TASK_CPUS  # one read and one write task always fit beside the actors


class ClusterError(UserError, ValueError):
    pass


@dataclass(frozen=True)
class ActorResources:
    actors: int
    cpus: float  # per actor
    gpus: float  # per actor
    threads: int  # torch threads per actor


PROBE_TIMEOUT_S = 5.0


def probe(address: str) -> None:
    """Fail fast on a HOST:PORT (or ray://HOST:PORT) where nothing listens.

    Why: Ray's client retries a missing head for minutes, logging warnings, before it gives up;
    a mistyped --address should be one error line in seconds. `local` and `auto` are Ray's own."""
    import socket

    target = address.removeprefix("ray://")
    if address in ("local", "auto") or ":" not in target:
        return
    host, _, port = target.rpartition(":")
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=PROBE_TIMEOUT_S):
            pass
    except ValueError:
        raise ClusterError(f"--address {address}: expected local, auto, HOST:PORT or ray://HOST:PORT") from None
    except OSError as e:
        raise ClusterError(f"--address {address}: no Ray cluster answers there ({e.strerror or e})") from None


def connect(address: str) -> bool:
    """Start (`local`) or join a Ray cluster; False when this process was already connected
    (a test's shared cluster, a notebook), which the job then leaves running."""
    import ray

    if ray.is_initialized():
        return False
    probe(address)
    kwargs: dict[str, Any] = dict(include_dashboard=False, log_to_driver=False, logging_level=logging.WARNING)
    try:
        ray.init(address=address, **kwargs)
    except (ConnectionError, ValueError, RuntimeError) as e:
        raise ClusterError(f"--address {address}: cannot connect to a Ray cluster ({e})") from None
    return True


@contextlib.contextmanager
def stderr_into_stdout() -> Iterator[None]:
    """File descriptor 2 -> 1 while Ray runs in this process, unless stderr is a terminal.

    Ray's core (C++) logs its own notices on the driver's stderr (e.g. "constructor arguments in
    the object store" for every actor pool), which no Python handler reaches; a pipeline must
    see stderr empty on success (cli/main.py). Exceptions raised inside are printed after the
    block, on the real stderr. On a terminal nothing moves: the progress bar lives there."""
    if sys.stderr.isatty():
        yield
        return
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(2)
    os.dup2(1, 2)
    try:
        yield
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)


def configure_data() -> None:
    """Ray Data draws its progress bar on a terminal and otherwise logs progress lines every few
    seconds: a cluster job's log shows how far it got."""
    from ray.data import DataContext

    DataContext.get_current().enable_progress_bars = True


@contextlib.contextmanager
def block_bytes(target: float) -> Iterator[None]:
    """Datasets made inside get blocks of about `target` bytes (DataContext is sealed into a
    dataset when it is made).

    Why: Ray merges a read task's output into blocks of up to 128 MB, so one input file would be
    one block, one actor call on one actor, and nothing would reach the writer before it ended
    (no streaming, no parallelism, a retry redoes the file). Sized to one actor call's records,
    a block is the unit of work, of retry and of progress. (`repartition(target_num_rows_per_block)`
    would do it by rows, but as a 1-CPU task that starves beside the actors on 2 CPUs.)"""
    from ray.data import DataContext

    ctx = DataContext.get_current()
    before = ctx.target_max_block_size
    ctx.target_max_block_size = max(4096, int(target))
    try:
        yield
    finally:
        ctx.target_max_block_size = before


def plan_resources(
    actors: int, cpus: float | None, gpus: float, started_here: bool, warn: Callable[[str], None]
) -> ActorResources:
    """Per-actor resources that fit the cluster with room for reads and writes; an impossible
    request is an error on a cluster this command started, a warning on a joined one (which may
    autoscale)."""
    import ray

    total = ray.cluster_resources()
    have_cpus, have_gpus = float(total.get("CPU", 0)), float(total.get("GPU", 0))
    if cpus is None:  # a GPU actor needs one CPU to feed it; CPU actors share the CPUs, in quarters
        cpus = 1.0 if gpus else max(TASK_CPUS, math.floor((have_cpus - RESERVED_CPUS) / actors * 4) / 4)
    problems = []
    if actors * cpus + RESERVED_CPUS > have_cpus:
        problems.append(
            f"{actors} actor(s) x {cpus:g} CPU + {RESERVED_CPUS:g} CPU for reads and writes is more than "
            f"the cluster's {have_cpus:g} CPU (reads would wait forever); lower --cpus-per-actor or --actors"
        )
    if gpus and actors * gpus > have_gpus:
        problems.append(f"{actors} actor(s) x {gpus:g} GPU is more than the cluster's {have_gpus:g} GPU")
    for problem in problems:
        if started_here:
            raise ClusterError(problem)
        warn(f"warning: {problem} (waiting for the cluster to grow)")
    return ActorResources(actors, cpus, gpus, max(1, math.ceil(cpus)))
