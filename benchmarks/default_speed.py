"""Speed of the shipped default: start-up, load, first answer, and formulas/s on known and new formulas of each type.

    python benchmarks/default_speed.py --data data/mp_all.npz --n 1000

This script is a fresh process, so its first figures are what a user waits for: seconds to import xrdzoo, to load
the default weight (its parts joined) and to give the first answer (which builds the member's index of every
template), and to simulate the first batch large enough for the compiled kernel (numba's start-up, once per
process; xrdzoo.xrd.simulate.COMPILED_FROM cells of BaTiO3). Then formulas/s in this one process (top 1, batches of
1,000 as `xrdzoo predict --from-file` sends them), per formula type, on
- known formulas: a seeded sample of the dataset's formulas (the default holds every structure, so each answers with
  its own, simulated);
- new formulas: a seeded sample of charge-balanced compositions (at most 16 atoms) of random element pools that no
  structure of the dataset has (each answers as the member is set to: the peaks its ranker's first K candidates
  agree on, or the first substituted template).
Then all of them shuffled together, as shipped and, for a member that answers by consensus, with ``consensus`` 1:
the median of ``--passes`` passes (the machine's speed wanders between them).
"""

from __future__ import annotations

import argparse
import time

START = time.perf_counter()

import numpy as np  # noqa: E402

import xrdzoo  # noqa: E402

IMPORTED = time.perf_counter()

from common import markdown_table, start_compiled_kernel, write_results  # noqa: E402
from xrdzoo.data import load_dataset  # noqa: E402
from xrdzoo.formulas import formula_of  # noqa: E402
from xrdzoo.predictors.template import TYPES  # noqa: E402
from xrdzoo.screening import Pool  # noqa: E402
from xrdzoo.xrd.simulate import COMPILED_FROM  # noqa: E402

COMMON = ("Li", "Na", "K", "Mg", "Ca", "Sr", "Ba", "Y", "La", "Ti", "Zr", "V", "Nb", "Cr", "Mo", "Mn", "Fe", "Co",
          "Ni", "Cu", "Zn", "Al", "Ga", "In", "Si", "Ge", "Sn", "Pb", "Bi", "O", "S", "Se", "F", "Cl", "Br", "N", "P")


def new_formulas(known: set, n: int, rng: np.random.Generator) -> dict[str, list[str]]:
    """Up to ``n`` charge-balanced compositions per type that are not in ``known`` (reduced formulas)."""
    found: dict[str, list[str]] = {name: [] for name in TYPES}
    while any(len(v) < n for v in found.values()):
        pool = Pool(tuple(rng.choice(COMMON, 6, replace=False)), max_elements=5, max_atoms=16, charge_balanced=True)
        for system in pool.systems():
            kind = TYPES[min(len(system), 5) - 2]
            fresh = [f for f in pool.formulas(system) if formula_of(f) not in known]
            found[kind] += [str(f) for f in rng.permutation(fresh)[:3]]  # a few per system: many systems
    return {kind: formulas[:n] for kind, formulas in found.items()}


def rate(model, formulas: list[str]) -> float:
    """Formulas per second answering ``formulas`` in batches of 1,000."""
    start = time.perf_counter()
    for i in range(0, len(formulas), 1000):
        model.answer(formulas[i : i + 1000])
    return len(formulas) / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, help="the dataset of every formula type the default was built from")
    parser.add_argument("--n", type=int, default=1000, help="formulas per type and kind (known, new)")
    parser.add_argument("--model", default=xrdzoo.DEFAULT_MODEL)
    parser.add_argument("--passes", type=int, default=3, help="passes over the mixed formulas (their median is shown)")
    args = parser.parse_args()

    loading = time.perf_counter()
    model = xrdzoo.load(args.model)
    loaded = time.perf_counter()
    model.answer(["BaTiO3"])
    answered = time.perf_counter()
    startup = {"import s": IMPORTED - START, "load s": loaded - loading, "first answer s": answered - loaded,
               "first compiled batch s": start_compiled_kernel(model)}
    print(startup, flush=True)

    data = load_dataset(args.data)
    rng = np.random.default_rng(0)
    names = sorted(set(data.formulas))
    by_type = {kind: [f for f in names if TYPES[min(len(formula_of(f).numbers), 5) - 2] == kind] for kind in TYPES}
    known = {kind: [str(f) for f in rng.permutation(formulas)[: args.n]] for kind, formulas in by_type.items()}
    new = new_formulas({formula_of(f) for f in names}, args.n, rng)
    rows = []
    for kind in TYPES:
        row = {"type": kind, "known formulas": len(known[kind]), "known formulas/s": rate(model, known[kind]),
               "new formulas": len(new[kind]), "new formulas/s": rate(model, new[kind])}
        print(row, flush=True)
        rows.append(row)
    mixed = [f for kind in TYPES for f in known[kind] + new[kind]]
    mixed = [str(f) for f in rng.permutation(mixed)]
    shipped = getattr(model, "consensus", 1)
    overall = []
    for consensus in dict.fromkeys([shipped, 1]):  # and, for a consensus member, the ranker's first alone
        model.consensus = consensus
        passes = [rate(model, mixed) for _ in range(args.passes)]  # the machine's speed wanders between passes
        overall.append({"consensus": consensus, "formulas": len(mixed), "formulas/s": float(np.median(passes)),
                        "passes": ", ".join(f"{p:.0f}" for p in passes)})
    model.consensus = shipped
    print(overall, flush=True)

    markdown = "\n\n".join([
        "## Speed of the shipped default",
        f"`{args.model}` in one fresh process on this machine: seconds to import xrdzoo, to load the weight (its parts "
        "joined), to the first answer (building the index of every template), and to simulate the first batch of "
        f"{COMPILED_FROM} cells, which goes through the compiled kernel (numba's start-up, once per process):",
        markdown_table([startup]),
        f"Formulas per second in the same process (top 1, batches of 1,000), per type: known formulas (a seeded sample "
        f"of `{args.data}`'s formulas: each answers with its own structure, simulated) and new ones (charge-balanced "
        "compositions of random element pools, at most 16 atoms, that no structure of the dataset has: each answers "
        "as the member is set to: by the consensus of its ranked templates, or the first of them). Mixed: all of "
        "them, shuffled together, as shipped and, for a member that answers by consensus, with `consensus` 1 (the "
        f"ranker's first alone): the median of {args.passes} passes, each pass's figure beside it.",
        markdown_table(rows),
        markdown_table(overall),
    ])
    write_results("default_speed", {"startup": startup, "rows": rows, "mixed": overall}, markdown)


if __name__ == "__main__":
    main()
