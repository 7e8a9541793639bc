"""Alloys and elements: does the default put a one-site solid solution (Fe0.3Ni0.7), or a single element (Si), on
the lattice it is known to have?

    python benchmarks/alloys.py

The default holds no structures of single elements. A formula whose elements all share one site answers first on its
host's reference structure from ASE's table where each of its elements has one (a single element: its own), then
with its elements' ordered compounds, the mixture on every site, and a single element with its compounds with one
substitute element, the element on every site, where those sites form a simple lattice (docs/zoo.md, "Doped
compounds and solid solutions"). For each formula below, each of its first ``--top`` answers is scored against the
simple lattices (fcc, bcc, hcp, diamond), each simulated over a scan of its lattice parameter: the lattice whose best
peak F1 is highest is the one the answer's peaks read as. The lattice each has is textbook metallurgy at room
temperature (alloys: disordered substitutional solid solutions, Cu-Ni, Ag-Au, Ni-rich Fe-Ni and Ni-Cr fcc; Fe-rich
Fe-Cr and Mo-W bcc; Ti- and Mg-rich with Al hcp; Si-Ge diamond; more held out; elements: those of the four
lattices, hcp ones of near-ideal c/a, as the scan assumes, and more of them held out from the choice of the
elements' rule).

With ``--rockjock`` (powdR's ``data/rockjock.rda``, as ``benchmarks/identify_measured.py`` takes it) the measured
RockJock standards of single elements (graphite, iron, sulphur, silver; the manifest's ``elements``) are scored too:
each of the first ``--top`` answers as ``xrdzoo compare`` scores a candidate against a measurement.

    python benchmarks/alloys.py --rockjock ../powdR/data/rockjock.rda
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from pymatgen.core import Lattice, Structure

import xrdzoo
from common import markdown_table, write_results
from identify_measured import MEASURED, measurements
from xrdzoo.identify import Scorer
from xrdzoo.metrics import peak_scores
from xrdzoo.xrd.pattern import Pattern
from xrdzoo.xrd.simulate import simulate_cells

KNOWN = {"Cu0.5Ni0.5": "fcc", "Au0.5Ag0.5": "fcc", "Fe0.3Ni0.7": "fcc", "Ni0.8Cr0.2": "fcc", "Cu0.7Zn0.3": "fcc",
         "Ca0.5Sr0.5": "fcc", "Fe0.9Cr0.1": "bcc", "Mo0.5W0.5": "bcc", "Ti0.9Al0.1": "hcp", "Mg0.9Al0.1": "hcp",
         "Si0.5Ge0.5": "diamond"}
# elements at room temperature: lattice and textbook lattice parameters (A; a, and c for hcp)
ELEMENTS = {"Cu": ("fcc", 3.615), "Ag": ("fcc", 4.086), "Au": ("fcc", 4.078), "Ni": ("fcc", 3.524),
            "Al": ("fcc", 4.050), "Pt": ("fcc", 3.924), "Pd": ("fcc", 3.891), "Pb": ("fcc", 4.950),
            "Rh": ("fcc", 3.803), "Ir": ("fcc", 3.839), "Ca": ("fcc", 5.588), "Sr": ("fcc", 6.085),
            "Fe": ("bcc", 2.866), "Cr": ("bcc", 2.885), "Mo": ("bcc", 3.147), "W": ("bcc", 3.165), "V": ("bcc", 3.030),
            "Nb": ("bcc", 3.300), "Ta": ("bcc", 3.303), "Li": ("bcc", 3.510), "Na": ("bcc", 4.291),
            "K": ("bcc", 5.328), "Rb": ("bcc", 5.585), "Cs": ("bcc", 6.141), "Ba": ("bcc", 5.028),
            "Mg": ("hcp", 3.209, 5.211), "Be": ("hcp", 2.286, 3.584), "Sc": ("hcp", 3.309, 5.273),
            "Ti": ("hcp", 2.951, 4.686), "Co": ("hcp", 2.507, 4.069), "Y": ("hcp", 3.647, 5.731),
            "Zr": ("hcp", 3.232, 5.147), "Ru": ("hcp", 2.706, 4.282), "Hf": ("hcp", 3.196, 5.051),
            "Re": ("hcp", 2.761, 4.456), "Os": ("hcp", 2.734, 4.317), "Si": ("diamond", 5.431),
            "Ge": ("diamond", 5.658)}
# more elements of those lattices, added after the elements' rule was last chosen (on ELEMENTS), to check it on
# elements it was not chosen on: fcc Ce (gamma), Yb and Th, bcc Eu, hcp heavy lanthanides, Tc and Tl
HELD_OUT = {"Ce": ("fcc", 5.161), "Yb": ("fcc", 5.485), "Th": ("fcc", 5.084), "Eu": ("bcc", 4.581),
            "Gd": ("hcp", 3.636, 5.783), "Tb": ("hcp", 3.601, 5.694), "Dy": ("hcp", 3.593, 5.654),
            "Ho": ("hcp", 3.578, 5.618), "Er": ("hcp", 3.559, 5.585), "Tm": ("hcp", 3.538, 5.554),
            "Lu": ("hcp", 3.505, 5.549), "Tc": ("hcp", 2.735, 4.388), "Tl": ("hcp", 3.456, 5.525)}
# more disordered solid solutions, added when alloys were put on their host's reference lattice (2026-12-04), to check
# that rule where the host's lattice is not the alloy's too: fcc Invar Fe0.65Ni0.35 and Co0.6Ni0.4 (hosts bcc, hcp)
HELD_OUT_ALLOYS = {"Cu0.9Al0.1": "fcc", "Pd0.5Ag0.5": "fcc", "Au0.5Pd0.5": "fcc", "Ni0.7Co0.3": "fcc",
                   "Fe0.65Ni0.35": "fcc", "Co0.6Ni0.4": "fcc", "Nb0.5Ta0.5": "bcc", "V0.5Cr0.5": "bcc",
                   "Mo0.5Nb0.5": "bcc", "Fe0.7Co0.3": "bcc", "Ti0.5Zr0.5": "hcp", "Co0.8Ru0.2": "hcp",
                   "Zr0.9Hf0.1": "hcp"}
KINDS = ("alloy", "alloy, held out", "element", "element, held out")
# space group, sites, atoms per conventional cell, the alloys' scan of lattice parameters (A)
LATTICES = {"fcc": ("Fm-3m", [[0, 0, 0]], 4, np.arange(3.3, 6.2, 0.005)),
            "bcc": ("Im-3m", [[0, 0, 0]], 2, np.arange(2.6, 4.6, 0.005)),
            "hcp": ("P6_3/mmc", [[1 / 3, 2 / 3, 0.25]], 2, np.arange(2.5, 3.8, 0.005)),  # ideal c/a
            "diamond": ("Fd-3m", [[0, 0, 0]], 8, np.arange(5.0, 6.2, 0.005))}
VOLUME_SCAN = np.linspace(0.92, 1.08, 81)  # an element's lattices: volume per atom within 8 % of its own


def volume_per_atom(lattice: str, a: float, c: float | None = None) -> float:
    """The volume per atom (A^3) of a simple lattice of edge ``a`` (and ``c``, hcp)."""
    cell = np.sqrt(3) / 2 * a * a * c if lattice == "hcp" else a ** 3
    return cell / LATTICES[lattice][2]


def simple_patterns(volume: float | None = None) -> dict[str, np.ndarray]:
    """Each simple lattice's patterns over a scan of its lattice parameter (one element: the peak positions and
    their order of strength are the lattice's): the alloys' scan, or where ``volume`` (per atom) is given, the
    parameters that give volumes per atom within 8 % of it."""
    patterns = {}
    for name, (group, sites, atoms, edges) in LATTICES.items():
        unit = Structure.from_spacegroup(group, Lattice.hexagonal(1, np.sqrt(8 / 3)) if name == "hcp" else
                                         Lattice.cubic(1), ["Cu"], sites)  # edge 1, scaled to each a of the scan
        if volume is not None:
            edges = np.cbrt(volume * VOLUME_SCAN * atoms / unit.volume)
        patterns[name] = simulate_cells([(unit.lattice.matrix * a, unit.frac_coords, unit.atomic_numbers)
                                         for a in edges])
    return patterns


def measured_elements(model, rockjock: Path, top: int) -> list[dict]:
    """Each measured standard of a single element with the score (Pearson r after the shift and strain that fit best,
    as ``xrdzoo compare`` ranks by) of each of the model's first ``top`` answers for its element."""
    scorer, rows = Scorer(), []
    for entry, measured in measurements(json.loads((MEASURED / "manifest.json").read_text()), rockjock, "elements"):
        candidates = model.answer([entry["formula"]], top=top).ranked()[0]
        predicted = Pattern.from_frame(np.array([c.pattern for c in candidates])).at_wavelength(measured.wavelength)
        scores = scorer.score(scorer.window(measured, predicted.span), predicted).scores
        rows += [{"standard": entry["name"], "formula": entry["formula"], "space group it has": entry["space_group"],
                  "answer": rank, "space group": c.spacegroup, "source": c.source, "score": float(score),
                  "how": c.how} for rank, (c, score) in enumerate(zip(candidates, scores), 1)]
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=xrdzoo.DEFAULT_MODEL)
    parser.add_argument("--top", type=int, default=2, help="answers per formula scored")
    parser.add_argument("--rockjock", type=Path, default=None, help="powdR's data/rockjock.rda (see the manifest)")
    args = parser.parse_args()
    alloy_lattices = simple_patterns()
    model = xrdzoo.load(args.model)
    rows = []
    elements = {**ELEMENTS, **HELD_OUT}
    for kind, known_of in zip(KINDS, [KNOWN, HELD_OUT_ALLOYS, *({e: lattice for e, (lattice, *_) in group.items()}
                                                                for group in (ELEMENTS, HELD_OUT))]):
        for (formula, known), candidates in zip(known_of.items(), model.answer(list(known_of), top=args.top).ranked()):
            simple = simple_patterns(volume_per_atom(*elements[formula])) if kind.startswith("element") else \
                alloy_lattices
            for rank, candidate in enumerate(candidates, 1):
                f1 = {name: float(peak_scores(np.repeat(candidate.pattern[None], len(p), 0), p)[2].max())
                      for name, p in simple.items()}
                reads_as = max(f1, key=f1.get)
                rows.append({"kind": kind, "formula": formula, "lattice it has": known, "answer": rank,
                             "space group": candidate.spacegroup, "reads as": reads_as, "peak F1 there": f1[reads_as],
                             "peak F1 on its own": f1[known], "how": candidate.how})
    summary = []
    for kind in KINDS:
        for rank in range(1, args.top + 1):
            answers = [r for r in rows if r["kind"] == kind and r["answer"] == rank]
            summary.append({"kind": kind, "answer": rank, "formulas": len(answers),
                            "on the lattice it has": sum(r["reads as"] == r["lattice it has"] for r in answers),
                            "mean peak F1 on its own lattice": float(np.mean([r["peak F1 on its own"]
                                                                              for r in answers]))})
    measured = measured_elements(model, args.rockjock, args.top) if args.rockjock else []
    columns = ["formula", "lattice it has", "answer", "space group", "reads as", "peak F1 there", "peak F1 on its own"]
    markdown = "\n\n".join([
        "## Alloys",
        f"`{args.model}` on alloys and elements whose lattice is known (alloys: disordered substitutional solid "
        "solutions at room temperature): each of the first answers scored against the simple lattices, each "
        "simulated over a scan of its lattice parameter (an element's: volumes per atom within 8 % of its own, from "
        "textbook lattice parameters). Reads as: the lattice of the highest peak F1 (beside it, the F1 on the "
        "formula's own lattice). Where ASE's table has every element, the first answer is on the host's reference "
        "structure (an element's own) and the second the first made on compounds. Elements: first answers only (all "
        "in the JSON). Held out: alloys added when alloys were put on their host's lattice, elements added after "
        "the rule that chooses an element's compounds was last chosen.",
        markdown_table(summary),
        *(markdown_table([r for r in rows if r["kind"] == kind], columns) for kind in KINDS[:2]),
        *(markdown_table([r for r in rows if r["kind"] == kind and r["answer"] == 1], columns) for kind in KINDS[2:]),
        *(["Measured RockJock standards of single elements: each answer's score against the measurement (Pearson r "
           "at the best shift and strain, as `xrdzoo compare` ranks).",
           markdown_table(measured, ["standard", "formula", "space group it has", "answer", "space group", "source",
                                     "score"])] if measured else []),
    ])
    write_results("alloys", {"summary": summary, "rows": rows, "measured": measured}, markdown)


if __name__ == "__main__":
    main()
