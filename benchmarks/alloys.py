"""Alloys: does the default put a one-site solid solution (Fe0.3Ni0.7) on the lattice the alloy is known to have?

    python benchmarks/alloys.py

The default holds no structures of single elements, so a formula whose elements all share one site answers with
its elements' ordered compounds, the mixture on every site (docs/zoo.md, "Doped compounds and solid solutions").
For each alloy below, each of its first ``--top`` answers is scored against the simple lattices (fcc, bcc, hcp,
diamond), each simulated over a scan of its lattice parameter: the lattice whose best peak F1 is highest is the one
the answer's peaks read as. The lattice each alloy has is textbook metallurgy (disordered substitutional solid
solutions at room temperature: Cu-Ni, Ag-Au, Ni-rich Fe-Ni and Ni-Cr fcc; Fe-rich Fe-Cr and Mo-W bcc; Ti- and
Mg-rich with Al hcp; Si-Ge diamond).
"""

from __future__ import annotations

import argparse

import numpy as np
from pymatgen.core import Lattice, Structure

import xrdzoo
from common import markdown_table, write_results
from xrdzoo.metrics import peak_scores
from xrdzoo.xrd.simulate import simulate_cells

KNOWN = {"Cu0.5Ni0.5": "fcc", "Au0.5Ag0.5": "fcc", "Fe0.3Ni0.7": "fcc", "Ni0.8Cr0.2": "fcc", "Cu0.7Zn0.3": "fcc",
         "Ca0.5Sr0.5": "fcc", "Fe0.9Cr0.1": "bcc", "Mo0.5W0.5": "bcc", "Ti0.9Al0.1": "hcp", "Mg0.9Al0.1": "hcp",
         "Si0.5Ge0.5": "diamond"}
LATTICES = {"fcc": ("Fm-3m", [[0, 0, 0]], np.arange(3.3, 6.2, 0.005)),
            "bcc": ("Im-3m", [[0, 0, 0]], np.arange(2.6, 4.6, 0.005)),
            "hcp": ("P6_3/mmc", [[1 / 3, 2 / 3, 0.25]], np.arange(2.5, 3.8, 0.005)),  # ideal c/a
            "diamond": ("Fd-3m", [[0, 0, 0]], np.arange(5.0, 6.2, 0.005))}


def simple_patterns() -> dict[str, np.ndarray]:
    """Each simple lattice's patterns over its scan of lattice parameters (one element: the peak positions and
    their order of strength are the lattice's)."""
    patterns = {}
    for name, (group, sites, edges) in LATTICES.items():
        unit = Structure.from_spacegroup(group, Lattice.hexagonal(1, np.sqrt(8 / 3)) if name == "hcp" else
                                         Lattice.cubic(1), ["Cu"], sites)  # edge 1, scaled to each a of the scan
        patterns[name] = simulate_cells([(unit.lattice.matrix * a, unit.frac_coords, unit.atomic_numbers)
                                         for a in edges])
    return patterns


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=xrdzoo.DEFAULT_MODEL)
    parser.add_argument("--top", type=int, default=2, help="answers per alloy scored")
    args = parser.parse_args()
    simple = simple_patterns()
    answers = xrdzoo.load(args.model).answer(list(KNOWN), top=args.top).ranked()
    rows = []
    for (formula, known), candidates in zip(KNOWN.items(), answers):
        for rank, candidate in enumerate(candidates, 1):
            f1 = {name: float(peak_scores(np.repeat(candidate.pattern[None], len(p), 0), p)[2].max())
                  for name, p in simple.items()}
            reads_as = max(f1, key=f1.get)
            rows.append({"alloy": formula, "lattice it has": known, "answer": rank, "space group": candidate.spacegroup,
                         "reads as": reads_as, "peak F1 there": f1[reads_as], "peak F1 on its own": f1[known],
                         "how": candidate.how})
    firsts = [r for r in rows if r["answer"] == 1]
    summary = {"alloys": len(firsts), "first answer on the lattice it has": sum(r["reads as"] == r["lattice it has"]
                                                                               for r in firsts)}
    markdown = "\n\n".join([
        "## Alloys",
        f"`{args.model}` on alloys whose lattice is known (disordered substitutional solid solutions at room "
        "temperature): each of the first answers scored against the simple lattices, each simulated over a scan of "
        "its lattice parameter. Reads as: the lattice of the highest peak F1 (beside it, the F1 on the alloy's own "
        "lattice).",
        markdown_table([summary]),
        markdown_table(rows, ["alloy", "lattice it has", "answer", "space group", "reads as", "peak F1 there",
                              "peak F1 on its own"]),
    ])
    write_results("alloys", {"summary": summary, "rows": rows}, markdown)


if __name__ == "__main__":
    main()
