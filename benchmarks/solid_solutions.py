"""Solid solutions: do predicted 50:50 solid solutions sit between their end members, and how many fractional
formulas get a parent?

    python benchmarks/solid_solutions.py --training-split data/mp_all.npz \
        --pairs binary=../shared/data/mp_binary_structures.csv.gz --model binary=template_learned.mp_all \
        --pairs ternary=../shared/data/mp_ternary_structures.csv.gz --model ternary=template_learned.mp_all \
        --pairs quaternary=../shared/data/mp_quaternary_structures.csv.gz --model quaternary=template_learned.mp_all

``--model`` is a template member (weight name or checkpoint) per set. With ``--training-split`` each keeps only the
templates of that dataset's training split (as ``benchmarks/templates.py --by-type`` does): the shipped default holds
every structure, and so would know both end members of every pair.

Pairs: in each CSV (one structure per formula by the dataset rule), two formulas of one formula type, space group
and cell size that differ in one element with the same count (KCl/KBr, CaTiO3/CdTiO3), the two elements
substitutes for one another (``xrdzoo.predictors.solid_solution.substitutes``: both anions or both not, close in
element properties): isostructural end members, a seeded sample of ``--n`` pairs. The exchanged element's count must be odd, so that the 50:50 formula stays
fractional as written (K1Cl0.5Br0.5; a 50:50 Li2O/Na2O is LiNaO, an ordered compound). Each 50:50 formula is
predicted by the set's ``--model`` (a template member: weight name or checkpoint); from its mixed cell:

- main peaks between: the prediction's five strongest peaks (pymatgen's simulator on the Niggli-reduced mixed
  cell, each peak by its first hkl), each against the same hkl in each end member's known structure (its
  Niggli-reduced lattice); a peak counts if the end members' positions differ by at least 0.05 degrees, and lies
  between if strictly inside them (0.01 degree margin);
- Vegard: the volume per atom against the mean of the end members' (Vegard's line at 50:50, in volume; exact by
  construction where the model holds both end members' structures, so also given over the pairs where it does
  not), and the
  cube root of that ratio (the lattice length error); where the predicted cell and both end members' cells have the
  same number of sites, the Niggli-reduced lattice lengths against the end members' mean.

The baseline is retrieval, the nearest training formula of the type: here one end member's structure as it is (by
symmetry either one: its volume error is the same; its peaks are one end, never strictly between).

Parents: a seeded sample of ``--n`` formulas of each CSV made fractional by putting a share x (0.05 .. 0.5) of
one element's count in place of a neighbour of its periodic-table group (one row up or down); how many get a parent,
how many of those recover the original formula type with the two elements on one site, and how many the set's model
answers from a template of the parent's type.
"""

from __future__ import annotations

import argparse
import random
import warnings
from collections import defaultdict
from pathlib import Path

import numpy as np
from pymatgen.core import Composition, Element, Lattice, Structure
from tqdm import tqdm

import xrdzoo
from accuracy import label, pairs
from common import markdown_table, training_templates, write_results
from xrdzoo.data import BuildReport, _csv_candidates, _offer, _read_structure, load_dataset
from xrdzoo.formulas import formula_of
from xrdzoo.predictors.solid_solution import (SolidSolutionError, is_fractional, mixed_cells, parent_of,
                                              substituted, substitutes)
from xrdzoo.xrd.pattern import WAVELENGTH
from xrdzoo.xrd.simulate import reflections

SHARES = (0.05, 0.1, 0.2, 0.3, 0.5)
MAIN_PEAKS, MIN_MOVE, MARGIN = 5, 0.05, 0.01


def isostructural_pairs(candidates: dict, n: int, seed: int) -> list[tuple[str, str, str, str]]:
    """(A, B, exchanged element of A, of B) for a seeded sample of n isostructural pairs (see the docstring)."""
    buckets = defaultdict(list)
    for formula, c in candidates.items():
        amounts = Composition(formula).get_el_amt_dict()
        key = (Composition(formula).anonymized_formula, c.spacegroup, c.nsites)
        for element, count in amounts.items():
            if int(count) % 2:
                rest = tuple(sorted((e, a) for e, a in amounts.items() if e != element))
                buckets[key, rest, count].append((formula, element))
    found = sorted((a, b, x, y) for members in buckets.values() for i, (a, x) in enumerate(members)
                   for b, y in members[i + 1:] if substitutes(x, y))
    return random.Random(seed).sample(found, min(n, len(found)))


def between(predicted: Structure, a: Structure, b: Structure) -> tuple[int, int]:
    """(main peaks that lie between the end members', main peaks whose end-member positions differ): each of the
    prediction's strongest reflections, by its hkl in the Niggli-reduced cell, against the same hkl of each end
    member's Niggli-reduced cell."""
    reduced = predicted.get_reduced_structure()
    peaks = reflections(reduced, "pymatgen")
    two_theta, intensities, labels = peaks.two_theta, peaks.intensities, peaks.hkls
    ends = [s.lattice.get_niggli_reduced_lattice() for s in (a, b)]
    inside = counted = 0
    for i in np.argsort(-intensities)[:MAIN_PEAKS]:
        hkl = tuple(int(n) for n in labels[i].split(")")[0].strip("( ").split())
        hkl = (hkl[0], hkl[1], hkl[3]) if len(hkl) == 4 else hkl  # pymatgen labels hexagonal cells h k i l
        sines = [WAVELENGTH / (2 * lattice.d_hkl(hkl)) for lattice in ends]
        if max(sines) >= 1:
            continue
        pa, pb = (np.degrees(2 * np.arcsin(sine)) for sine in sines)
        if abs(pa - pb) >= MIN_MOVE:
            counted += 1
            inside += bool(min(pa, pb) + MARGIN < two_theta[i] < max(pa, pb) - MARGIN)
    return inside, counted


def niggli_lengths(lattice: Lattice) -> np.ndarray:
    return np.array(lattice.get_niggli_reduced_lattice().abc)


def score_pair(model, a: str, b: str, x: str, y: str, structures: dict) -> dict | None:
    formula = substituted(a, x, y, 0.5)
    try:
        parent = parent_of(formula)
    except SolidSolutionError:
        return {"pair": f"{a}/{b}", "formula": formula, "template": False}
    cell = mixed_cells(model, parent)[0]
    if cell.row is None:
        return {"pair": f"{a}/{b}", "formula": formula, "template": False}
    predicted = cell.structure()
    sa, sb = structures[a], structures[b]
    per_atom = [s.volume / len(s) for s in (predicted, sa, sb)]
    vegard = (per_atom[1] + per_atom[2]) / 2
    inside, counted = between(predicted, sa, sb)
    baseline_inside, baseline_counted = between(sa, sa, sb)
    known = sum(0 in model.templates.nearest(formula_of(f))[1][:1] for f in (a, b))
    result = {"pair": f"{a}/{b}", "formula": formula, "template": True, "known": int(known), "inside": inside,
              "counted": counted, "baseline_inside": baseline_inside, "baseline_counted": baseline_counted,
              "volume_error": float(abs(per_atom[0] / vegard - 1)),
              "baseline_volume_error": float(abs(per_atom[1] / vegard - 1))}
    if len(predicted) == len(sa) == len(sb):
        mean = (niggli_lengths(sa.lattice) + niggli_lengths(sb.lattice)) / 2
        result["length_error"] = float(np.abs(niggli_lengths(predicted.lattice) / mean - 1).mean())
        result["baseline_length_error"] = float(np.abs(niggli_lengths(sa.lattice) / mean - 1).mean())
    return result


def fractional_sample(formulas: list[str], n: int, seed: int) -> list[tuple[str, str, str, str]]:
    """(fractional formula, original, element, substitute) for n formulas made fractional (see the docstring)."""
    rng, out = random.Random(seed), []
    for formula in rng.sample(formulas, len(formulas)):
        if len(out) == n:
            break
        amounts = Composition(formula).get_el_amt_dict()
        x = rng.choice(sorted(amounts))
        element = Element(x)
        neighbours = [e for e in (element.Z - 8, element.Z + 8, element.Z - 18, element.Z + 18, element.Z - 32,
                                  element.Z + 32) if 1 <= e <= 94 and Element.from_Z(e).group == element.group
                      and abs(Element.from_Z(e).row - element.row) == 1 and Element.from_Z(e).symbol not in amounts]
        if not neighbours:
            continue
        y = Element.from_Z(rng.choice(neighbours)).symbol
        text = substituted(formula, x, y, rng.choice(SHARES))
        if is_fractional(text):
            out.append((text, formula, x, y))
    return out


def score_parent(model, text: str, original: str, x: str, y: str) -> dict:
    try:
        parent = parent_of(text)
    except SolidSolutionError:
        return {"formula": text, "parent": False, "recovered": False, "template": False}
    shared = any({Element(x).Z, Element(y).Z} <= set(s.numbers) for s in parent.sites)
    kind = sorted(s.count for s in parent.sites)
    original_kind = sorted(int(a) for a in Composition(original).reduced_composition.get_el_amt_dict().values())
    how = model.answer([text]).how[0]
    return {"formula": text, "parent": True, "recovered": bool(shared and kind == original_kind),
            "template": how.startswith("solid solution on the parent")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", action="append", required=True, help="SET=structure CSV (repeatable)")
    parser.add_argument("--model", action="append", required=True, help="SET=template member (repeatable)")
    parser.add_argument("--n", type=int, default=300, help="pairs, and fractional formulas, per set")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--training-split", type=Path, help="dataset whose training split's templates each model keeps")
    args = parser.parse_args()
    models = dict(pairs(args.model, "--model"))
    data = load_dataset(args.training_split) if args.training_split else None

    pair_rows, parent_rows, results = [], [], {}
    for set_name, path in pairs(args.pairs, "--pairs"):
        model, name = xrdzoo.load(models[set_name]), label(models[set_name])
        if data is not None:
            model, name = training_templates(model, data), f"{name} (training split)"
        candidates = {}  # formula: its ground state's row, by the dataset selection rule
        _csv_candidates(Path(path), None, BuildReport(Path(path)), False, candidates, _offer)
        sample = isostructural_pairs(candidates, args.n, args.seed)
        structures = {}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # pymatgen's CIF parser warns about rounded coordinates
            for formula in sorted({f for a, b, _, _ in sample for f in (a, b)}):
                structures[formula] = _read_structure(candidates[formula].structure)[0]
        scored = [score_pair(model, a, b, x, y, structures) for a, b, x, y in tqdm(sample, desc=f"{set_name} pairs")
                  if structures[a] is not None and structures[b] is not None]
        done = [s for s in scored if s["template"]]
        lengths = [s for s in done if "length_error" in s]
        unknown = [s["volume_error"] for s in done if s["known"] < 2]
        row = {"set": set_name, "model": name, "pairs": len(scored),
               "from a template": len(done) / max(len(scored), 1),
               "main peaks between": sum(s["inside"] for s in done) / max(sum(s["counted"] for s in done), 1),
               "retrieval main peaks between": sum(s["baseline_inside"] for s in done) / max(
                   sum(s["baseline_counted"] for s in done), 1),
               "pairs all between": float(np.mean([s["inside"] == s["counted"] for s in done])),
               "volume error": float(np.median([s["volume_error"] for s in done])),
               "pairs, an end member unknown": len(unknown),
               "volume error, an end member unknown": float(np.median(unknown)) if unknown else None,
               "retrieval volume error": float(np.median([s["baseline_volume_error"] for s in done])),
               "length error": float(np.median([s["length_error"] for s in lengths])) if lengths else None,
               "retrieval length error": (float(np.median([s["baseline_length_error"] for s in lengths]))
                                          if lengths else None),
               "pairs with lengths": len(lengths)}
        pair_rows.append(row)
        print(row, flush=True)

        made = fractional_sample(sorted(candidates), args.n, args.seed)
        parents = [score_parent(model, *item) for item in tqdm(made, desc=f"{set_name} parents")]
        parent_row = {"set": set_name, "model": name, "formulas": len(parents),
                      "get a parent": float(np.mean([p["parent"] for p in parents])),
                      "original type and site recovered": float(np.mean([p["recovered"] for p in parents])),
                      "answered from a parent template": float(np.mean([p["template"] for p in parents]))}
        parent_rows.append(parent_row)
        print(parent_row, flush=True)
        results[set_name] = {"pairs": row, "parents": parent_row}  # no per-formula rows: they come from ../shared

    markdown = "\n\n".join([
        "## Solid solutions",
        "Isostructural end-member pairs of the shared data, their 50:50 solid solution predicted on a parent's mixed "
        "site (`benchmarks/solid_solutions.py` says how each figure is measured). *Main peaks between*: share of the "
        "prediction's five strongest peaks strictly between the end members' (peaks that move 0.05 degrees or more); "
        "*volume error*: median relative distance of the volume per atom from Vegard's line (the end members' mean; "
        "0 by construction where the model knows both end members, hence also given over the pairs where one is "
        "unknown to it); "
        "*length error*: the same for the Niggli-reduced lattice lengths (pairs whose cells have equal sizes); "
        "retrieval copies one end member's structure.",
        markdown_table(pair_rows),
        "Fractional formulas made from the shared formulas by putting a share of one element in place of a "
        "neighbour of its group: how many get a parent, recover the original type with both elements on one site, "
        "and are answered from a template of the parent's type.",
        markdown_table(parent_rows)])
    write_results("solid_solutions", {"sets": results}, markdown)


if __name__ == "__main__":
    main()
