"""How often `xrdzoo identify` names the composition of real measured powder patterns, and how fast.

The patterns are listed in ``benchmarks/data/measured/manifest.json`` with their source (repository, commit, path,
sha256), licence, radiation, true formula and space group (``benchmarks/data/measured/README.md``): single-phase
measurements of binary, ternary and quaternary compounds. Those whose licence allows it are shipped as ``.xy``
beside the manifest; the RockJock reference patterns (USGS, distributed in the GPL-2 powdR package) are read from
the user's copy of powdR's ``data/rockjock.rda`` (``--rockjock``, checked against its sha256; reading it needs the
``rdata`` package of the ``dev`` extra).

Each pattern is identified as ``xrdzoo identify FILE --elements <its elements> --charge-balanced`` does: every
charge-balanced composition of its chemical system with at most ``--max-atoms`` atoms, ranked by the default model's
predictions, and again with the Materials Project structures of that system from the shared CSVs as known phases
(``--structures``; all rows of the system's formula type, one structure per formula by the dataset rule: the
search-match baseline a user with the Materials Project has). The truth counts as found at the first rank whose
formula is the true formula, from either source. A pattern is "known to the templates" when its formula is a
training-split ternary of the shared CSV (the template member holds that structure); otherwise "unknown".

    python benchmarks/identify_measured.py --rockjock ../powdR/data/rockjock.rda
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from pathlib import Path

import numpy as np
from tqdm import tqdm

from common import ROOT, SHARED_CSV, markdown_table, write_results
import xrdzoo
from xrdzoo.data import split_of, structures_of
from xrdzoo.formulas import DEFAULT_MAX_ATOMS, compositions
from xrdzoo.identify import Scorer, rank
from xrdzoo.measured import read_measurement
from xrdzoo.xrd.pattern import Pattern
from xrdzoo.xrd.profiles import wavelength

MEASURED = ROOT / "benchmarks" / "data" / "measured"
TYPES = {2: "binary", 3: "ternary", 4: "quaternary"}


def _composition(formula: str):
    from pymatgen.core import Composition

    return Composition(formula)


def truth(formula: str) -> tuple[str, list[str]]:
    """The reduced formula identify prints and the elements in the order the formula writes them."""
    composition = _composition(formula)
    return composition.reduced_formula, [e.symbol for e in composition.elements]


def measurements(manifest: dict, rockjock: Path | None) -> list[tuple[dict, Pattern]]:
    """Each manifest entry with its measured pattern (Cu K-alpha); RockJock entries only when ``rockjock`` is given
    and its sha256 is the manifest's."""
    cu = wavelength("CuKa")
    library = None
    if rockjock is not None:
        expected = manifest["sources"]["rockjock"]["sha256"]
        if hashlib.sha256(rockjock.read_bytes()).hexdigest() != expected:
            sys.exit(f"{rockjock} is not the rockjock.rda of the manifest (sha256 {expected})")
        import rdata

        library = rdata.read_rda(str(rockjock))["rockjock"]
    found = []
    for entry in manifest["patterns"]:
        if entry["source"] == "rockjock":
            if library is None:
                continue
            two_theta = np.asarray(library["tth"], float)
            counts = np.asarray(library["xrd"][entry["entry"]], float)
            found.append((entry, Pattern(two_theta, counts, cu, span=(float(two_theta[0]), float(two_theta[-1])))))
        else:
            path = MEASURED / entry["entry"]
            if hashlib.sha256(path.read_bytes()).hexdigest() != entry["sha256"]:
                sys.exit(f"{path} does not match its sha256 in the manifest")
            found.append((entry, read_measurement(path, cu)))
    return found


def known_phases(cases: list[dict]) -> dict[tuple[str, ...], dict]:
    """{sorted elements: {formula: (id, Structure)}} of the Materials Project structures of each case's system."""
    systems = {tuple(sorted(c["elements"])) for c in cases}
    found = {s: {} for s in systems}
    for n in sorted({len(s) for s in systems}):
        path = SHARED_CSV.with_name(f"mp_{TYPES[n]}_structures.csv.gz")
        keep = lambda f: tuple(sorted(e.symbol for e in _composition(f).elements)) in systems  # noqa: E731
        for formula, item in structures_of(path, keep).items():
            found[tuple(sorted(e.symbol for e in _composition(formula).elements))][formula] = item
    return found


def first_rank(ranking, formula: str) -> int | None:
    """1-based rank of the first candidate with this formula, from any source."""
    return next((i for i, m in enumerate(ranking.matches, 1) if m.formula == formula), None)


def run(args) -> dict:
    manifest = json.loads((MEASURED / "manifest.json").read_text())
    found = measurements(manifest, args.rockjock)
    print(f"{len(found)} of {len(manifest['patterns'])} manifest patterns available", file=sys.stderr)
    start = time.perf_counter()
    model = xrdzoo.load(args.model)
    load_seconds = time.perf_counter() - start
    cases = []
    for entry, _ in found:
        formula, elements = truth(entry["formula"])
        ternary_train = len(elements) == 3 and split_of(formula) == "train"
        cases.append({"name": entry["name"], "source": entry["source"], "formula": formula, "elements": elements,
                      "type": TYPES.get(len(elements), f"{len(elements)} elements"),
                      "templates": "known" if ternary_train and formula in args.ternary_formulas else "unknown"})
    known = known_phases(cases)
    scorer = Scorer()
    for case, (_, measured) in zip(tqdm(cases, desc="identifying"), found):
        start = time.perf_counter()
        candidates = compositions(case["elements"], args.max_atoms, charge_balanced=True)
        predicted = rank(measured, candidates, model, scorer=scorer)
        case["seconds"] = time.perf_counter() - start
        system = known[tuple(sorted(case["elements"]))]
        start = time.perf_counter()
        both = rank(measured, candidates, model, system, scorer)
        case.update({"candidates": len(candidates), "is_candidate": case["formula"] in candidates,
                     "known_structures": len(system), "truth_in_known": case["formula"] in system,
                     "rank": first_rank(predicted, case["formula"]), "rank_with_known": first_rank(both, case["formula"]),
                     "seconds_with_known": time.perf_counter() - start,
                     "top3": [m.formula for m in predicted.matches[:3]],
                     "top3_with_known": [f"{m.formula} ({m.source})" for m in both.matches[:3]]})
    return {"settings": {"model": args.model, "max_atoms": args.max_atoms, "rockjock": str(args.rockjock)},
            "model_load_seconds": load_seconds, "cases": cases}


def summary(cases: list[dict]) -> list[dict]:
    """Top-1, top-5, median rank and seconds per group (a truth that is no candidate counts as missed)."""
    groups = [("all", lambda c: True)]
    groups += [(t, lambda c, t=t: c["type"] == t) for t in TYPES.values()]
    groups += [(f"{k} to the templates", lambda c, k=k: c["templates"] == k) for k in ("known", "unknown")]
    rows = []
    for label, keep in groups:
        part = [c for c in cases if keep(c)]
        if not part:
            continue
        for mode, key, seconds in (("predicted", "rank", "seconds"),
                                   ("predicted + known", "rank_with_known", "seconds_with_known")):
            ranks = np.array([c[key] or 10**6 for c in part])
            rows.append({"group": label, "candidates": mode, "n": len(part),
                         "truth not a candidate": sum(not c["is_candidate"] for c in part),
                         "top-1": float(np.mean(ranks == 1)), "top-5": float(np.mean(ranks <= 5)),
                         "median rank": float(np.median(ranks)) if np.median(ranks) < 10**6 else None,
                         "s / identification": float(np.mean([c[seconds] for c in part]))})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rockjock", type=Path, default=None, help="powdR's data/rockjock.rda (see the manifest)")
    parser.add_argument("--model", default=xrdzoo.DEFAULT_MODEL)
    parser.add_argument("--max-atoms", type=int, default=DEFAULT_MAX_ATOMS)
    args = parser.parse_args()
    if not SHARED_CSV.is_file():
        sys.exit(f"no structure CSV at {SHARED_CSV}")
    import csv
    import gzip

    csv.field_size_limit(2**31 - 1)
    with gzip.open(SHARED_CSV, "rt") as rows:
        args.ternary_formulas = {row["formula"] for row in csv.DictReader(rows)}
    result = run(args)
    rows = summary(result["cases"])
    per_case = [{"pattern": c["name"], "formula": c["formula"], "type": c["type"], "templates": c["templates"],
                 "candidates": c["candidates"], "rank": c["rank"], "rank with known": c["rank_with_known"],
                 "best (with known)": ", ".join(c["top3_with_known"][:1])} for c in result["cases"]]
    markdown = ("## Identification of measured patterns\n\n"
                f"`xrdzoo identify --charge-balanced --max-atoms {args.max_atoms}` with `{args.model}` on "
                f"{len(result['cases'])} public single-phase measurements (Cu K-alpha; sources, licences and space "
                "groups in `benchmarks/data/measured/README.md`). Rank of the true formula among the "
                "charge-balanced compositions of its chemical system, by predicted patterns only and with the "
                "Materials Project structures of the system from the shared CSVs as known phases. A truth that is "
                "not a candidate (more atoms than the limit, or not charge-balanced by pymatgen's guesses) counts "
                "as missed. Seconds per identification: enumerating, predicting, scoring (with known phases: "
                "plus simulating and scoring them), the model loaded once "
                f"({result['model_load_seconds']:.1f} s, not counted).\n\n"
                + markdown_table(rows) + "\n\nPer pattern:\n\n" + markdown_table(per_case))
    write_results("identify_measured", {**result, "summary": rows}, markdown)


if __name__ == "__main__":
    main()
