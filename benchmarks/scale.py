"""Screening at scale: formulas/s of a generated element pool against Dask workers, memory per worker, first result.

    python benchmarks/scale.py --elements-pool Li,Mn,Ti,O,F,Na,Fe,Co --workers 1 2

For each number of workers, a local Dask cluster of that many single-threaded processes is started (timed), and
``xrdzoo.screening.screen`` predicts every composition of the pool (``--max-elements``, ``--max-atoms``,
``--charge-balanced`` as `xrdzoo predict --elements-pool` takes them: generation included) into a Parquet file
through the cluster's address. Reported: formulas, seconds (cluster start to the written output), formulas/s, the
seconds to the first finished partition from the cluster's start (its start, the model's load in a worker, one
partition), the CPU seconds the workers and this process (the client: writing parts, the output) spent, and each
worker's peak resident memory. The machine's load average is recorded beside each run, since a shared machine's other
work takes cores from the workers: formulas per worker CPU second is the rate that other work does not change.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from common import markdown_table, write_results
from xrdzoo import DEFAULT_MODEL
from xrdzoo.screening import Pool, screen


def peak_rss_mib() -> float:
    """This process's peak resident memory (Linux VmHWM), MiB."""
    status = Path("/proc/self/status").read_text()
    return int(next(line for line in status.splitlines() if line.startswith("VmHWM")).split()[1]) / 1024


def run(model: str, pool: Pool, workers: int, output: Path) -> dict:
    """One screen of the pool on a fresh local cluster of ``workers`` processes."""
    from distributed import Client, LocalCluster

    load = os.getloadavg()[0]
    start = time.perf_counter()
    with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None) as cluster, \
            Client(cluster) as client:
        started = time.perf_counter() - start
        cpu = sum(client.run(time.process_time).values()), time.process_time()
        result = screen(model, pool, output, scheduler=cluster.scheduler_address)
        worker_cpu = sum(client.run(time.process_time).values()) - cpu[0]
        memory = sorted(client.run(peak_rss_mib).values())
    seconds = time.perf_counter() - start
    formulas = result.predicted + result.failed
    return {"workers": workers, "formulas": formulas, "errors": result.failed, "seconds": seconds,
            "formulas/s": formulas / seconds, "cluster start s": started, "first result s": started + result.first,
            "worker CPU s": worker_cpu, "formulas per worker CPU s": formulas / worker_cpu,
            "client CPU s": time.process_time() - cpu[1], "peak MiB per worker": max(memory), "load before": load,
            "load after": os.getloadavg()[0]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--elements-pool", default="Li,Mn,Ti,O,F,Na,Fe,Co", help="the pool, comma-separated")
    parser.add_argument("--max-elements", type=int, default=4)
    parser.add_argument("--max-atoms", type=int, default=16)
    parser.add_argument("--any-charge", action="store_true", help="keep compositions that cannot be balanced too")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--model", default=DEFAULT_MODEL)
    parser.add_argument("--name", default="scale", help="the results' name (a second run keeps the first's)")
    args = parser.parse_args()

    pool = Pool(tuple(args.elements_pool.split(",")), args.max_elements, args.max_atoms, not args.any_charge)
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        for workers in args.workers:
            rows.append(run(args.model, pool, workers, Path(folder) / f"screen{workers}.parquet"))
            print(rows[-1], flush=True)
    base = rows[0]
    for row in rows:
        row["speed-up"] = row["formulas/s"] / base["formulas/s"]
    million, cpu_rate = rows[-1]["formulas/s"], rows[-1]["formulas per worker CPU s"]
    text = (f"## Screening at scale ({base['formulas']:,} formulas)\n\n`{args.model}` on every {'charge-balanced ' * pool.charge_balanced}"
            f"composition of up to {pool.max_elements} elements of the pool {'-'.join(pool.elements)} (at most "
            f"{pool.max_atoms} atoms: {base['formulas']:,} formulas, generation included) through a local Dask "
            "cluster, into Parquet. Seconds run from the cluster's start to the written output; the first result is "
            "the first finished partition, from the cluster's start; the load average is the machine's (other "
            "work on it takes cores from the workers; formulas per worker CPU second does not depend on it).\n\n"
            + markdown_table(rows, ["workers", "formulas", "errors", "seconds", "formulas/s", "speed-up",
                                    "cluster start s", "first result s", "worker CPU s", "formulas per worker CPU s",
                                    "client CPU s", "peak MiB per worker", "load before", "load after"])
            + (f"\n\nAt the last row's rate one million formulas take {1e6 / million / 3600:.1f} hours; at its "
               f"formulas per worker CPU second, {1e6 / cpu_rate / 3600 / rows[-1]['workers']:.1f} hours on "
               f"{rows[-1]['workers']} cores of its own (projections from this measurement, not a measured run)."
               if base["formulas"] < 1e6 else ""))
    write_results(args.name, {"model": args.model, "pool": list(pool.elements), "max_elements": pool.max_elements,
                            "max_atoms": pool.max_atoms, "charge_balanced": pool.charge_balanced, "rows": rows}, text)


if __name__ == "__main__":
    main()
