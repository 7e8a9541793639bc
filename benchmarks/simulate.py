"""Speed and agreement of the fast XRD simulator against pymatgen's XRDCalculator on Materials Project structures.

Both simulators run through ``xrdzoo.xrd.simulate.simulate`` on the same structures, one structure at a time and
interleaved (so a change in machine load hits both alike), in this one process (no pool for either; BLAS held to
one thread for both). Agreement: peak positions (fast vs pymatgen) and the Pearson r of the binned patterns.

    python benchmarks/simulate.py --n 500
"""

from __future__ import annotations

import argparse
import csv
import gzip
import os
import random
import sys
import time
import warnings
from collections import Counter
from importlib.metadata import version
from pathlib import Path

import numpy as np
from tqdm import tqdm

from common import machine, write_results
from xrdzoo.xrd.simulate import SimulationError, reflections, simulate

REPO = Path(__file__).resolve().parents[1]
DEFAULT_CSV = REPO.parent / "shared" / "data" / "mp_ternary_structures.csv.gz"


def load_sample(path: Path, n: int, seed: int):
    """A seeded random sample of ``n`` structures from the shared CSV: (material ids, structures)."""
    from pymatgen.core import Structure

    if not path.is_file():
        sys.exit(f"no structure CSV at {path}; pass --csv")
    csv.field_size_limit(sys.maxsize)
    with gzip.open(path, "rt") as rows:
        rows = list(csv.DictReader(rows))
    sample = random.Random(seed).sample(rows, min(n, len(rows)))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pymatgen's CIF parser warns about rounded coordinates
        structures = [Structure.from_str(row["cif"], fmt="cif") for row in tqdm(sample, desc="reading CIFs")]
    return [row["material_id"] for row in sample], structures


def usable(ids, structures):
    """The structures the simulators take, and the others counted by reason."""
    keep, skipped = [], Counter()
    for material_id, structure in zip(ids, structures):
        try:
            reflections(structure, "fast")
            keep.append((material_id, structure))
        except SimulationError as error:
            skipped[error.reason] += 1
    return keep, dict(skipped)


def position_difference(fast_x: np.ndarray, ref_x: np.ndarray) -> float:
    """Largest distance (degrees) from a peak of either list to the nearest peak of the other."""
    distance = np.abs(fast_x[:, None] - ref_x[None, :])
    return float(max(distance.min(axis=0).max(), distance.min(axis=1).max()))


def host() -> dict:
    """The machine (common.machine) plus what matters for this benchmark: load and pymatgen's version."""
    return {**machine(), "load_average_1min": os.getloadavg()[0], "numpy": np.__version__,
            "pymatgen": version("pymatgen"), "xrdzoo": version("xrdzoo")}


def run(csv_path: Path, n: int, seed: int) -> dict:
    host_info = host()  # before the work, so the load average is other processes'
    ids, structures = load_sample(csv_path, n, seed)
    kept, skipped = usable(ids, structures)
    simulators = ("pymatgen", "fast")
    for name in simulators:  # warm up: imports, caches
        simulate([kept[0][1]], name)
    seconds = {name: np.zeros(len(kept)) for name in simulators}
    patterns = {name: [] for name in simulators}
    for i, (_, structure) in enumerate(tqdm(kept, desc="timing pymatgen and fast")):
        for name in simulators:
            start = time.perf_counter()
            patterns[name].append(simulate([structure], name)[0])
            seconds[name][i] = time.perf_counter() - start
    pearson = np.array([np.corrcoef(f, p)[0, 1] for f, p in zip(patterns["fast"], patterns["pymatgen"])])
    shift, count_mismatch = [], 0
    for _, structure in tqdm(kept, desc="comparing peak lists"):
        fast_x = reflections(structure, "fast").two_theta
        ref_x = reflections(structure, "pymatgen").two_theta
        count_mismatch += len(fast_x) != len(ref_x)
        shift.append(position_difference(fast_x, ref_x))
    rate = {name: len(kept) / seconds[name].sum() for name in simulators}
    worst = int(np.argmin(pearson))
    return {
        "csv": str(csv_path), "n_requested": n, "seed": seed, "n_structures": len(kept), "skipped": skipped,
        "median_sites": float(np.median([len(s) for _, s in kept])),
        "processes": 1, "blas_threads": 1,
        "structures_per_s": rate,
        "median_ms": {name: 1e3 * float(np.median(seconds[name])) for name in simulators},
        "speedup": rate["fast"] / rate["pymatgen"],
        "max_peak_position_diff_deg": max(shift),
        "peak_count_mismatches": count_mismatch,
        "pearson_min": float(pearson.min()), "pearson_median": float(np.median(pearson)),
        "pearson_below_0.999": int((pearson < 0.999).sum()), "worst_material_id": kept[worst][0],
        "machine": host_info,
    }


def markdown(result: dict) -> str:
    rate, ms, m = result["structures_per_s"], result["median_ms"], result["machine"]
    return "\n".join([
        f"XRD simulation of {result['n_structures']} MP ternary structures (seed {result['seed']}, median "
        f"{result['median_sites']:.0f} sites), one process, BLAS 1 thread; {m['cpu']}, {m['cores']} cores, load average "
        f"{m['load_average_1min']:.1f} at the start",
        "",
        "| simulator | structures/s | median ms/structure |",
        "|---|---|---|",
        f"| pymatgen {m['pymatgen']} | {rate['pymatgen']:.1f} | {ms['pymatgen']:.2f} |",
        f"| xrdzoo fast | {rate['fast']:.1f} | {ms['fast']:.3f} |",
        "",
        f"speed-up: **{result['speedup']:.1f}x**",
        "",
        "| agreement (fast vs pymatgen) | value |",
        "|---|---|",
        f"| max peak-position difference (deg) | {result['max_peak_position_diff_deg']:.2e} |",
        f"| structures whose peak counts differ | {result['peak_count_mismatches']} |",
        f"| Pearson r of binned patterns, min / median | {result['pearson_min']:.6f} / "
        f"{result['pearson_median']:.6f} |",
        f"| patterns with r < 0.999 | {result['pearson_below_0.999']} |",
        f"| skipped structures | {result['skipped'] or 'none'} |",
    ])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=500, help="structures to sample (default 500)")
    parser.add_argument("--csv", type=Path, default=DEFAULT_CSV, help="the shared MP structures CSV")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    result = run(args.csv, args.n, args.seed)
    write_results("simulate", result, "## XRD simulation: fast simulator against pymatgen\n\n" + markdown(result))

if __name__ == "__main__":
    main()
