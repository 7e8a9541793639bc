"""Which distributed engine runs xrdzoo's screens and searches: Dask (`distributed`) against Ray, measured.

    python benchmarks/engines.py --tasks 2000

Each engine runs in a fresh process: the seconds to import it, to start a local cluster of 2 single-threaded worker
processes (what `--workers 2` starts), the rate of small tasks (a partition's round trip without its work: the
engine's own cost per task), and the resident memory of every process of the idle cluster (driver included). An
engine that is not installed is left out and named: Ray is not a dependency of xrdzoo, so measuring it takes a
`pip install ray` first (the figures on the page were taken so, and Ray uninstalled after).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time

WORKERS = 2


def _echo(x):
    return x


def measure(engine: str, tasks: int) -> dict:
    """One engine, in this process: import, start, task rate, cluster memory."""
    import psutil

    start = time.perf_counter()
    if engine == "dask":
        from distributed import Client, LocalCluster
    else:
        import ray
    imported = time.perf_counter()
    if engine == "dask":
        client = Client(LocalCluster(n_workers=WORKERS, threads_per_worker=1, processes=True,
                                     dashboard_address=None))
        run = lambda items: client.gather(client.map(_echo, items, pure=False))  # noqa: E731
    else:
        ray.init(num_cpus=WORKERS, include_dashboard=False, logging_level="ERROR")
        echo = ray.remote(num_cpus=1)(_echo)
        run = lambda items: ray.get([echo.remote(i) for i in items])  # noqa: E731
    run(list(range(WORKERS * 4)))  # the workers are up and have run a task
    started = time.perf_counter()
    assert run(list(range(tasks))) == list(range(tasks))
    ran = time.perf_counter()
    me = psutil.Process()
    rss = sum(p.memory_info().rss for p in [me, *me.children(recursive=True)] if p.is_running())
    if engine == "dask":
        client.close()
    else:
        ray.shutdown()
    return {"engine": engine, "import s": imported - start, "start s": started - imported,
            "tasks/s": tasks / (ran - started), "cluster MiB": rss / 2**20}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=2000, help="small tasks timed per engine")
    parser.add_argument("--one", help=argparse.SUPPRESS)  # internal: measure this engine in this process
    args = parser.parse_args()
    if args.one:
        print(json.dumps(measure(args.one, args.tasks)))
        return

    from importlib.util import find_spec

    from common import markdown_table, write_results

    rows, missing = [], []
    for engine, module in (("dask", "distributed"), ("ray", "ray")):
        if find_spec(module) is None:
            missing.append(engine)
            continue
        out = subprocess.run([sys.executable, __file__, "--one", engine, "--tasks", str(args.tasks)],
                             capture_output=True, text=True, check=True)
        rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
        print(rows[-1], flush=True)
    text = (f"## Distributed engines\n\nA local cluster of {WORKERS} single-threaded worker processes per engine, "
            f"each in a fresh process: import and start seconds, the rate of {args.tasks:,} small tasks (the "
            "engine's own cost per partition), and the resident memory of all the idle cluster's processes.\n\n"
            + markdown_table(rows, ["engine", "import s", "start s", "tasks/s", "cluster MiB"])
            + (f"\n\nNot installed, so not measured: {', '.join(missing)}." if missing else ""))
    write_results("engines", {"workers": WORKERS, "tasks": args.tasks, "rows": rows, "missing": missing}, text)


if __name__ == "__main__":
    main()
