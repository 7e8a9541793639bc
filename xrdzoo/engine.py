"""Running partitions of work in order: in this process, or on Dask (a local cluster, or one already running).

Dask (`distributed`) was chosen over Ray by measurement (docs/benchmarks.md, "Distributed engines"): Ray runs
tiny tasks faster, but xrdzoo's partitions take seconds each, where that difference vanishes, while Dask starts a
local cluster faster, holds a fraction of Ray's memory idle and is pure Python. Its scheduler runs a task whose
worker died again on another worker. Nothing of Dask is imported unless a cluster is asked for.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from functools import lru_cache

from xrdzoo.errors import InputError, XRDZooError

WINDOW = 3  # partitions in flight per worker thread: the workers stay busy while the oldest result is collected

Run = Callable[[Callable, Iterable], Iterator]


class EngineError(XRDZooError):
    """A cluster that cannot be started or reached."""


@contextmanager
def engine(workers: int = 0, scheduler: str | None = None) -> Iterator[Run]:
    """``run(function, tasks)``, yielding ``function(task)`` for each task in order, for the length of the block: in
    this process (``workers`` 0 and no ``scheduler``: the default), on a local Dask cluster of ``workers``
    single-threaded processes, or on the cluster whose scheduler is at ``scheduler`` (e.g. tcp://host:8786). On
    Dask, ``function`` and the tasks must pickle, and a task whose worker dies runs again on another (up to the
    scheduler's ``distributed.scheduler.allowed-failures``, 3 by default)."""
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 0:
        raise EngineError(f"--workers must be a whole number of 0 (this process) or more, got {workers!r}")
    if not workers and not scheduler:
        yield lambda function, tasks: map(function, tasks)
        return
    from distributed import Client, LocalCluster

    if scheduler:
        try:
            client = Client(scheduler, timeout="20s")
        except (OSError, TimeoutError) as error:
            raise EngineError(f"cannot reach the Dask scheduler at {scheduler}: {error}") from None
        with client:
            yield lambda function, tasks: _in_order(client, function, tasks)
        return
    with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None) as cluster, \
            Client(cluster) as client:
        yield lambda function, tasks: _in_order(client, function, tasks)


def _in_order(client, function: Callable, tasks: Iterable) -> Iterator:
    """``function(task)`` for each task, in order, computed on the client's cluster with a bounded window of tasks in
    flight (the tasks are read lazily, so a generator of millions never sits in memory)."""
    tasks = iter(tasks)
    pending = deque()

    def submit() -> None:
        for task in tasks:
            pending.append(client.submit(function, task, pure=False))
            return

    for _ in range(WINDOW * max(1, sum(client.nthreads().values()))):
        submit()
    while pending:
        future = pending.popleft()
        result = future.result()
        future.release()
        submit()
        yield result


def loadable(model, workers: int = 0, scheduler: str | None = None) -> None:
    """Refuse, in one line, a zoo member object for a cluster: its workers load the model by name or path."""
    if not isinstance(model, str) and (workers or scheduler):
        raise InputError("a cluster's workers load the model themselves: give its weight name or checkpoint path")


def member(model):
    """The zoo member ``model`` is: itself, or the one its weight name or checkpoint path names, loaded once per
    process (a Dask worker loads it at its first task and keeps it for the next)."""
    return _load(model) if isinstance(model, str) else model


@lru_cache(maxsize=4)
def _load(name_or_path: str):
    from xrdzoo import hub

    return hub.load_member(name_or_path)
