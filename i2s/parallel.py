"""One parallel map for the experiment grids, on local processes or a dask.distributed cluster.

The engine comes from the params `parallel` section:

    parallel: {backend: local, n_jobs: 2}                      # local processes (joblib/loky); n_jobs 1 runs in-process
    parallel: {backend: dask, scheduler: "tcp://host:8786"}    # a running dask.distributed scheduler

A dask scheduler is how a cluster is reached: dask-jobqueue (SLURM, PBS, ...) or dask-kubernetes start the
workers and print its address. Results come back in input order and do not depend on the engine: every task
runs with single-threaded BLAS, so the parallelism is the engine's and the arithmetic is the same everywhere.
"""
from __future__ import annotations

import tempfile
from pathlib import Path

import joblib
from threadpoolctl import threadpool_limits
from tqdm.auto import tqdm

BACKENDS = ("local", "dask")
DEFAULT = {"backend": "local", "n_jobs": 2}


class _Task:
    """fn(item, **shared) with BLAS held to `threads` threads (picklable when fn is)."""

    def __init__(self, fn, threads):
        self.fn, self.threads = fn, threads

    def __call__(self, item, **shared):
        with threadpool_limits(self.threads):
            return self.fn(item, **shared)


def engine(backend: str = "local", n_jobs: int = 2, scheduler: str = "") -> dict:
    """The `backend` argument of pmap from the params `parallel` section's values."""
    if backend not in BACKENDS:
        raise ValueError(f"parallel.backend must be one of {BACKENDS}, not {backend!r}")
    return {"backend": "dask", "scheduler": scheduler} if backend == "dask" else {"backend": "local", "n_jobs": n_jobs}


def pmap(fn, items, backend=None, desc=None, shared=None, threads_per_task=1):
    """[fn(item, **shared) for item in items] on the engine `backend` names; results in input order.

    `shared` holds large read-only inputs (arrays, frames) sent to each worker once rather than per item:
    memory-mapped from a temporary file for local processes, scattered to every worker on dask.
    """
    backend = dict(DEFAULT if backend is None else backend)
    kind = backend.pop("backend", "local")
    items, shared = list(items), dict(shared or {})
    task = _Task(fn, threads_per_task)
    bar = tqdm(total=len(items), desc=desc, disable=desc is None, mininterval=2)
    try:
        if kind == "local":
            return _local(task, items, shared, bar, **backend)
        if kind == "dask":
            return _dask(task, items, shared, bar, **backend)
        raise ValueError(f"parallel backend must be one of {BACKENDS}, not {kind!r}")
    finally:
        bar.close()


def _local(task, items, shared, bar, n_jobs=2):
    if n_jobs == 1:
        out = []
        for item in items:
            out.append(task(item, **shared))
            bar.update()
        return out
    with tempfile.TemporaryDirectory(prefix="pmap-") as tmp:
        # workers map the dumped arrays instead of receiving a pickled copy with every item
        path = Path(tmp) / "shared.joblib"
        joblib.dump(shared, path)
        shared = joblib.load(path, mmap_mode="r")
        out = []
        for result in joblib.Parallel(n_jobs=n_jobs, return_as="generator")(
                joblib.delayed(task)(item, **shared) for item in items):
            out.append(result)
            bar.update()
        return out


def _dask(task, items, shared, bar, scheduler=None):
    from distributed import Client, as_completed
    if not scheduler:
        raise ValueError("the dask backend needs a scheduler address, e.g. tcp://host:8786")
    with Client(scheduler) as client:
        remote = {k: client.scatter(v, broadcast=True) for k, v in shared.items()}
        futures = client.map(task, items, pure=False, **remote)
        for _ in as_completed(futures):
            bar.update()
        return client.gather(futures)
