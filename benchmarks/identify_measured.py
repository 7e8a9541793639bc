"""How often `xrdzoo identify` names the composition of real measured powder patterns, and how fast.

The patterns are listed in ``benchmarks/data/measured/manifest.json`` with their source (repository, commit, path,
sha256), licence, radiation, true formula and space group (``benchmarks/data/measured/README.md``): single-phase
measurements of binary, ternary and quaternary compounds. Those whose licence allows it are shipped as ``.xy``
beside the manifest; the RockJock reference patterns (USGS, distributed in the GPL-2 powdR package) are read from
the user's copy of powdR's ``data/rockjock.rda`` (``--rockjock``, checked against its sha256; reading it needs the
``rdata`` package of the ``dev`` extra).

Each pattern is identified as ``xrdzoo identify FILE --elements <its elements> --charge-balanced --candidates K``
does: every charge-balanced composition of its chemical system with at most ``--max-atoms`` atoms (with
``--all-known`` also every larger one the model holds a structure of within 0.025 eV/atom of the hull, as
``identify --all-known``), ranked by the model's first K candidates per composition, for each ``--candidates K``.
The default model holds every Materials Project structure of the shared data, so most true phases are known to it:
the pattern is identified twice, by the model as shipped, and by the same model with every structure of the true
formula taken out (``hidden``: its polymorphs are neither known answers nor templates, so the
truth must be predicted from other compositions' templates, the case of a compound never measured). A pattern is
"known to the model" when the model as shipped holds a structure of its formula. The truth counts as found at the
first rank whose formula is the true formula. ``--end-to-end`` also times the command line itself (start-up
included) on a ternary and a quaternary file.

    python benchmarks/identify_measured.py --rockjock ../powdR/data/rockjock.rda --candidates 1 --candidates 5
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

from common import ROOT, FirstK, markdown_table, write_results
import xrdzoo
from xrdzoo.formulas import DEFAULT_MAX_ATOMS
from xrdzoo.identify import (ALL_KNOWN, DEFAULT_CANDIDATES, NONE_FITS, STABLE_ABOVE_HULL, Scorer, candidate_formulas,
                              rank)
from xrdzoo.measured import read_measurement
from xrdzoo.xrd.pattern import Pattern
from xrdzoo.xrd.profiles import wavelength

MEASURED = ROOT / "benchmarks" / "data" / "measured"
TYPES = {2: "binary", 3: "ternary", 4: "quaternary"}
TYPES_ALL = ",".join(TYPES.values())


def _composition(formula: str):
    from pymatgen.core import Composition

    return Composition(formula)


def truth(formula: str) -> tuple[str, list[str]]:
    """The reduced formula identify prints and the elements in the order the formula writes them."""
    composition = _composition(formula)
    return composition.reduced_formula, [e.symbol for e in composition.elements]


def measurements(manifest: dict, rockjock: Path | None, group: str = "patterns") -> list[tuple[dict, Pattern]]:
    """Each entry of the manifest's ``group`` (``patterns``: compounds; ``elements``: single elements) with its
    measured pattern (Cu K-alpha); RockJock entries only when ``rockjock`` is given and its sha256 is the manifest's."""
    cu = wavelength("CuKa")
    library = None
    if rockjock is not None:
        expected = manifest["sources"]["rockjock"]["sha256"]
        if hashlib.sha256(rockjock.read_bytes()).hexdigest() != expected:
            sys.exit(f"{rockjock} is not the rockjock.rda of the manifest (sha256 {expected})")
        import rdata

        library = rdata.read_rda(str(rockjock))["rockjock"]
    found = []
    for entry in manifest[group]:
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


def hidden(member, formula: str):
    """The template member without any structure of ``formula`` (its known structures and templates alike), and
    how many were taken out."""
    from xrdzoo.formulas import formula_of

    own = member.templates.find(formula_of(formula))
    return member.take(np.setdiff1d(np.arange(len(member.templates)), own)), len(own)


def first_rank(ranking, formula: str) -> int | None:
    """1-based rank of the first candidate with this formula, from any source."""
    return next((i for i, m in enumerate(ranking.matches, 1) if m.formula == formula), None)


def identify_case(measured, candidates: list[str], member, formula: str, k: int, shortlist: int | None,
                  scorer: Scorer) -> dict:
    """Rank, seconds, best answers and the truth's best candidate of one identification."""
    start = time.perf_counter()
    ranking = rank(measured, candidates, member, scorer=scorer, candidates=k, shortlist=shortlist)
    seconds = time.perf_counter() - start
    found = first_rank(ranking, formula)
    return {"rank": found, "is_candidate": formula in candidates, "seconds": seconds,
            "best_score": ranking.matches[0].score,
            "truth_score": ranking.matches[found - 1].score if found else None,
            "truth_source": ranking.matches[found - 1].source if found else None,
            "top3": [f"{m.formula} ({m.score:.3f})" for m in ranking.matches[:3]]}


def run(args, found: list[tuple[dict, Pattern]]) -> dict:
    start = time.perf_counter()
    model = xrdzoo.load(args.model)
    load_seconds = time.perf_counter() - start
    chosen = {f"--candidates {k}" + (f" --shortlist {n}" if n else ""): (k, n or None)
              for k in sorted(set(args.candidates), reverse=True) for n in args.shortlist}
    cases = []
    for entry, measured in tqdm(found, desc="identifying"):
        formula, elements = truth(entry["formula"])
        without, taken = hidden(model, formula)
        members = {"as shipped": model, "hidden": without}
        candidates = {mode: candidate_formulas(elements, args.max_atoms, True, m if args.all_known else None)
                      for mode, m in members.items()}
        case = {"name": entry["name"], "source": entry["source"], "formula": formula, "elements": elements,
                "type": TYPES.get(len(elements), f"{len(elements)} elements"),
                "candidates": len(candidates["as shipped"]), "known": "known" if taken else "unknown", "results": {}}
        most, scorer = max(k for k, _ in chosen.values()), Scorer()
        first = {mode: FirstK(m, most) for mode, m in members.items()}
        for label, (k, n) in chosen.items():
            case["results"][label] = {mode: identify_case(measured, candidates[mode], first[mode], formula, k, n,
                                                          scorer) for mode in members}
        cases.append(case)
    return {"settings": {"model": args.model, "max_atoms": args.max_atoms, "all_known": args.all_known,
                         "rockjock": str(args.rockjock),
                         "settings": chosen}, "model_load_seconds": load_seconds, "cases": cases}


def end_to_end(found: dict, max_atoms: int, all_known: bool) -> list[dict]:
    """Seconds of the whole ``xrdzoo identify FILE --elements ... --charge-balanced`` command (a new process), twice
    in a row on a ternary and a quaternary pattern: with an empty answers cache (the model loaded, every candidate
    predicted), then with the system's answers cached."""
    import os
    import subprocess
    import tempfile

    from xrdzoo.measured import write_xy

    rows = []
    with tempfile.TemporaryDirectory() as folder:
        for name in ("LiMnO2 (XRD-AutoAnalyzer example)", "diopside"):
            if name not in found:
                continue
            formula, elements = truth(found[name][0]["formula"])
            path = write_xy(Path(folder) / "scan.xy", found[name][1], name)
            command = [sys.executable, "-m", "xrdzoo", "identify", str(path), "--elements", ",".join(elements),
                       "--charge-balanced", "--max-atoms", str(max_atoms), f"--{'' if all_known else 'no-'}all-known"]
            environment = {**os.environ, "XRDZOO_HOME": str(Path(folder) / name)}  # a cache of its own, empty
            for cache in ("empty", "the system's answers"):
                start = time.perf_counter()
                subprocess.run(command, check=True, capture_output=True, env=environment)
                rows.append({"pattern": name, "system": "-".join(elements), "type": TYPES[len(elements)],
                             "answers cache": cache, "seconds": time.perf_counter() - start})
    return rows


def summary(cases: list[dict]) -> list[dict]:
    """Top-1, top-5, median rank and seconds per setting, model and group (a truth that is no candidate counts as
    missed)."""
    groups = [("all", lambda c: True)]
    groups += [(t, lambda c, t=t: c["type"] == t) for t in TYPES.values()]
    groups += [(f"{k} to the model", lambda c, k=k: c["known"] == k) for k in ("known", "unknown")]
    rows = []
    for label in cases[0]["results"]:
        for mode in ("as shipped", "hidden"):
            for group, keep in groups:
                part = [c["results"][label][mode] for c in cases if keep(c)]
                if not part or (mode == "hidden" and group == "unknown to the model"):
                    continue
                ranks = np.array([c["rank"] or 10**6 for c in part])
                fits = np.array([c["best_score"] >= NONE_FITS for c in part])
                rows.append({"setting": label, "model": mode, "group": group, "n": len(part),
                             "truth not a candidate": sum(not c["is_candidate"] for c in part),
                             "top-1": float(np.mean(ranks == 1)), "top-5": float(np.mean(ranks <= 5)),
                             "none fits": float(np.mean(~fits)),
                             "top-1 where one fits": float(np.mean(ranks[fits] == 1)) if fits.any() else None,
                             "median rank": float(np.median(ranks)) if np.median(ranks) < 10**6 else None,
                             "s / identification": float(np.mean([c["seconds"] for c in part]))})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rockjock", type=Path, default=None, help="powdR's data/rockjock.rda (see the manifest)")
    parser.add_argument("--model", default=xrdzoo.DEFAULT_MODEL)
    parser.add_argument("--max-atoms", type=int, default=DEFAULT_MAX_ATOMS)
    parser.add_argument("--candidates", type=int, action="append", default=None,
                        help="candidates per composition the score takes (repeatable; default: identify's)")
    parser.add_argument("--shortlist", type=int, action="append", default=None,
                        help="compositions scored again by all their candidates (repeatable; 0: every one; "
                             "default: identify's)")
    parser.add_argument("--types", default=TYPES_ALL, help="formula types to identify")
    parser.add_argument("--name", default="identify_measured", help="results name (JSON and docs section)")
    parser.add_argument("--end-to-end", action="store_true", help="also time the command line, start-up included")
    parser.add_argument("--all-known", action=argparse.BooleanOptionalAction, default=ALL_KNOWN,
                        help="as identify --all-known: larger stable formulas the model knows too")
    args = parser.parse_args()
    args.candidates = args.candidates or [DEFAULT_CANDIDATES]
    args.shortlist = args.shortlist or [0]
    manifest = json.loads((MEASURED / "manifest.json").read_text())
    found = [(e, m) for e, m in measurements(manifest, args.rockjock)
             if TYPES.get(len(truth(e["formula"])[1])) in args.types.split(",")]
    print(f"{len(found)} of {len(manifest['patterns'])} manifest patterns available", file=sys.stderr)
    result = run(args, found)
    rows = summary(result["cases"])
    timed = end_to_end({e["name"]: (e, m) for e, m in found}, args.max_atoms, args.all_known) if args.end_to_end else []
    last = list(result["cases"][0]["results"])[-1]
    per_case = [{"pattern": c["name"], "formula": c["formula"], "type": c["type"], "known": c["known"],
                 "candidates": c["candidates"], "rank": c["results"][last]["as shipped"]["rank"],
                 "matched": c["results"][last]["as shipped"]["truth_source"],
                 "rank hidden": c["results"][last]["hidden"]["rank"],
                 "best hidden": c["results"][last]["hidden"]["top3"][0]} for c in result["cases"]]
    setting = [args.types.replace(",", ", ")] if args.types != TYPES_ALL else []
    setting += [f"--candidates {k}" for k in args.candidates] + [f"--shortlist {n}" for n in args.shortlist if n]
    setting += ["--all-known"] * args.all_known
    title = "" if args.name == "identify_measured" else f" ({', '.join(setting)})"
    markdown = (f"## Identification of measured patterns{title}\n\n"
                f"`xrdzoo identify --charge-balanced --max-atoms {args.max_atoms} --candidates K"
                f"{' --all-known' if args.all_known else ''}` with "
                f"`{args.model}` on {len(result['cases'])} public single-phase measurements (Cu K-alpha; sources, "
                "licences and space groups in `benchmarks/data/measured/README.md`). Rank of the true formula among "
                "the charge-balanced compositions of its chemical system (at most the atom limit"
                + (f", or known to the model within {STABLE_ABOVE_HULL} eV/atom of the hull" if args.all_known else "")
                + "), for each setting (`--candidates K`: a "
                "composition scores by the best of its first K candidates, known polymorphs then templates; with "
                "`--shortlist N` only the N best compositions by their first candidate are scored by all K), by the model as shipped (which holds every Materials Project "
                "structure, so most true phases are known to it) and by the same model with every structure of the "
                "true formula taken out (`hidden`: the truth must be predicted from templates of other compositions). "
                "A truth that is not a candidate (more atoms than the limit"
                + (" and unknown to the model" if args.all_known else "") + ", or not charge-balanced by pymatgen's "
                "guesses) counts as missed. Seconds per identification: enumerating, predicting, scoring (the first "
                "setting predicts with the most candidates; the others reuse its answers and only score), the "
                f"model loaded once ({result['model_load_seconds']:.1f} s, not counted).\n\n"
                + markdown_table(rows)
                + (("\n\nThe whole command, `xrdzoo identify FILE --elements ... --charge-balanced` in a new process "
                    "(start-up, enumerating, scoring; with an empty answers cache also loading the model and "
                    "predicting), run twice in a row:\n\n"
                    + markdown_table(timed)) if timed else "")
                + f"\n\nPer pattern ({last}):\n\n" + markdown_table(per_case))
    write_results(args.name, {**result, "summary": rows, "end_to_end": timed}, markdown)


if __name__ == "__main__":
    main()
