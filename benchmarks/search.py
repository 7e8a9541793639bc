"""`xrdzoo identify --elements-pool` against identify's one-system run, on the identification benchmark's cases.

    python benchmarks/search.py --n 3 --pool-size 6 --workers 2

For the first ``--n`` cases of benchmarks/identify.py (the same seeded test-split ternaries, measured-looking the same
way), the pool is the case's three elements and ``--pool-size`` - 3 more drawn (seeded) from common elements; every
charge-balanced composition of up to ``--max-elements`` elements of it is ranked through a local Dask cluster of
``--workers`` processes (started once, timed apart), and the true formula's rank and score are compared with the
one-system ranking of its own chemical system (as `xrdzoo identify --elements` ranks it, in this process).
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np

import xrdzoo
from common import SHARED_CSV, markdown_table, write_results
from identify import measurement, sample, system
from xrdzoo.formulas import DEFAULT_MAX_ATOMS, compositions
from xrdzoo.identify import Scorer, rank
from xrdzoo.screening import Pool
from xrdzoo.search import search

COMMON = ("O", "F", "S", "N", "Cl", "Li", "Na", "K", "Mg", "Ca", "Sr", "Ba", "Al", "Si", "Ti", "Mn", "Fe", "Co",
          "Ni", "Cu", "Zn")


def same_ranking(pooled: list, alone: list) -> bool:
    """Whether two lists of matches name the same formulas in the same order with the same scores, to 1e-12."""
    return ([m.formula for m in pooled] == [m.formula for m in alone]
            and np.allclose([m.score for m in pooled], [m.score for m in alone], rtol=0, atol=1e-12))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=3, help="cases")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--pool-size", type=int, default=6)
    parser.add_argument("--max-elements", type=int, default=4)
    parser.add_argument("--max-atoms", type=int, default=DEFAULT_MAX_ATOMS)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--model", default=xrdzoo.DEFAULT_MODEL)
    args = parser.parse_args()
    from distributed import Client, LocalCluster

    model = xrdzoo.load(args.model)
    formulas, info = sample(SHARED_CSV, args.n, args.seed, args.max_atoms, model)
    rng = np.random.default_rng(args.seed)  # as benchmarks/identify.py draws the measurements
    scorer, rows = Scorer(), []
    start = time.perf_counter()
    with LocalCluster(n_workers=args.workers, threads_per_worker=1, processes=True, dashboard_address=None) as \
            cluster, Client(cluster) as client:
        started = time.perf_counter() - start
        for formula in formulas:
            measured = measurement(info["structures"][formula][1], rng, 0.3)
            elements = system(formula)
            extra = np.random.default_rng([args.seed, len(rows)]).permutation([e for e in COMMON if e not in elements])
            pool = Pool(elements + tuple(extra[: args.pool_size - len(elements)]), args.max_elements, args.max_atoms,
                        charge_balanced=True)
            alone = rank(measured, compositions(list(elements), args.max_atoms, charge_balanced=True), model,
                         scorer=scorer)
            tick, cpu = time.perf_counter(), sum(client.run(time.process_time).values())
            pooled = search(measured, pool, args.model, scorer=scorer, scheduler=cluster.scheduler_address)
            seconds = time.perf_counter() - tick
            cpu = sum(client.run(time.process_time).values()) - cpu
            own = [m for m in pooled.matches if system(m.formula) == elements]
            rows.append({"formula": formula, "pool": "-".join(pool.elements), "systems": len(list(pool.systems())),
                         "candidates": len(pooled.matches) + len(pooled.skipped),
                         "rank in its system": alone.rank_of(formula), "rank in the pool": pooled.rank_of(formula),
                         "system's order and scores kept": same_ranking(own, alone.matches),
                         "pool seconds": seconds, "worker CPU s": cpu, "load": os.getloadavg()[0]})
            print(rows[-1], flush=True)
    text = (f"## Identification over an element pool\n\n`xrdzoo identify --elements-pool` (`{args.model}`, "
            f"charge-balanced, up to {args.max_elements} elements and {args.max_atoms} atoms) on the first {args.n} "
            f"cases of the identification benchmark (seed {args.seed}): each case's three elements and "
            f"{args.pool_size - 3} more drawn from common elements, ranked on a local Dask cluster of {args.workers} "
            f"workers (started once in {started:.0f} s, not counted; the first case includes the model's load in "
            "each worker). Rank in its system: identify's one-system run; \"system's order and scores kept\" says "
            "whether the pool's ranking holds the true system's candidates in the same order with the same scores "
            "(to 1e-12: the workers' BLAS runs on one thread, this process's on more, which can change a score's "
            "last bit). "
            f"Worker CPU s: the CPU seconds the {args.workers} workers spent on the pool (on {args.workers} cores of "
            "their own the pool takes about that divided by the workers); load: the machine's load average after "
            "the case (other work on a shared machine takes cores from the workers).\n\n"
            + markdown_table(rows))
    write_results("search", {"settings": vars(args), "cluster_start_seconds": started, "rows": rows}, text)


if __name__ == "__main__":
    main()
