"""How often `xrdzoo identify --phases N` names both phases of a two-phase mixture.

Seeded pairs of test-split ternaries (``xrdzoo.data.split_of``) of one chemical system from the shared Materials
Project CSV, both among identify's charge-balanced candidates of that system (at most ``--max-atoms`` atoms), their
structures chosen by the dataset rule. Each pair is mixed as a measurement would record it: the minor phase 10..50 %
of the integrated intensity, each phase strained by up to 0.3 % (its cell off by that much), Cu K-alpha with its
K-alpha1/2 doublet, pseudo-Voigt peaks with random Caglioti widths, a zero shift of up to 0.2 degrees, a background
and Poisson noise, 10..80 degrees in steps of 0.02 (``xrdzoo.measured.measured_looking``). The mixture is ranked as
``xrdzoo identify --charge-balanced --candidates K`` does and explained by ``--phases``: found when both true formulas
are among the phases it reports. The baseline is the single-phase ranking: both formulas among its first 3
distinct answers.

``--minor subsystem``: the minor phase is instead a test-split binary of a two-element subsystem of the major's
(BaTiO3 with TiO2: an impurity or unreacted precursor), a charge-balanced candidate of that subsystem, from the
shared binaries; only ``--subsystems`` (``identify --subsystems``) can find it. ``--subsystems`` ranks the
compositions of every subsystem too, for either kind of minor phase and for the controls.

``--controls``: also the single-phase measured patterns of ``benchmarks/identify_measured.py`` (its manifest's
``patterns``; with ``--rockjock``, RockJock's too) and, with ``--rockjock``, the RockJock standards of its ``held_out``
(never looked at while the mixture step was chosen), each identified in its own chemical system and explained by
``--phases``: how often a second or third phase is reported where the sample has one phase, and how often the first
phase is the truth.

    python benchmarks/mixtures.py --n 40 --controls --rockjock data/rockjock.rda
    python benchmarks/mixtures.py --n 40 --minor subsystem --subsystems --name mixtures_subsystem
"""

from __future__ import annotations

import argparse
import csv
import gzip
import itertools
import random
import sys
import time

import numpy as np
from tqdm import tqdm

from common import SHARED_CSV, FirstK, markdown_table, write_results
from identify import GRID, system
import xrdzoo
from xrdzoo.data import in_subset, split_of, structures_of
from xrdzoo.formulas import DEFAULT_MAX_ATOMS, compositions
from xrdzoo.identify import ALL_KNOWN, DEFAULT_CANDIDATES, Ranking, Scorer, candidate_formulas, rank
from xrdzoo.measured import measured_looking
from xrdzoo.mixtures import mixture_of
from xrdzoo.xrd.pattern import Pattern, two_theta_at
from xrdzoo.xrd.profiles import Profile, wavelength
from xrdzoo.xrd.simulate import SimulationError, reflections

BINARY_CSV = SHARED_CSV.with_name("mp_binary_structures.csv.gz")
CONTROLS = {"identification benchmark": "patterns", "held out": "held_out"}  # name: the manifest's group


def pairs(n: int, seed: int, max_atoms: int, minor: str = "same") -> list[tuple[str, str]]:
    """n seeded pairs of distinct test-split formulas, both charge-balanced candidates: two ternaries of one system
    (``minor`` "same"), or a ternary and a binary of one of its two-element subsystems ("subsystem")."""
    by_system = formulas_of_test_split(SHARED_CSV, "ternary")
    binaries = formulas_of_test_split(BINARY_CSV, "binary") if minor == "subsystem" else {}
    rng = random.Random(seed)
    systems = sorted(s for s, found in by_system.items() if len(found) > 1 or binaries)
    rng.shuffle(systems)
    chosen = []
    for elements in systems:
        candidates = set(compositions(list(elements), max_atoms, charge_balanced=True))
        eligible = [f for f in by_system[elements] if f in candidates]
        minors = []
        for part in itertools.combinations(elements, 2):
            allowed = set(compositions(list(part), max_atoms, charge_balanced=True)) if part in binaries else set()
            minors += [f for f in binaries.get(part, []) if f in allowed]
        if minor == "same" and len(eligible) > 1:
            chosen.append(tuple(rng.sample(eligible, 2)))
        elif minor == "subsystem" and eligible and minors:
            chosen.append((rng.choice(eligible), rng.choice(minors)))
        if len(chosen) == n:
            break
    return chosen


def formulas_of_test_split(path, kind: str) -> dict[tuple, list[str]]:
    """The test-split formulas of one formula type in a shared CSV, by chemical system."""
    csv.field_size_limit(2**31 - 1)
    with gzip.open(path, "rt") as rows:
        formulas = sorted({row["formula"] for row in csv.DictReader(rows)})
    by_system: dict[tuple, list[str]] = {}
    for formula in formulas:
        if in_subset(formula, kind) and split_of(formula) == "test":
            by_system.setdefault(system(formula), []).append(formula)
    return by_system


def mixture(structures: list, shares: list[float], rng: np.random.Generator) -> Pattern:
    """A measured-looking two-phase pattern (see the module docstring)."""
    line = wavelength("CuKa")
    two_theta, intensities = [], []
    for structure, share in zip(structures, shares):
        simulated = reflections(structure, "fast", line)
        positions, peaks = simulated.two_theta, simulated.intensities
        inside = (positions > GRID[0]) & (positions < GRID[-1])
        strained = Pattern(positions, peaks, line).d * (1 + rng.uniform(-0.003, 0.003))
        two_theta.append(two_theta_at(strained, line))
        intensities.append(share * peaks / max(peaks[inside].sum(), 1e-9))
    profile = Profile("pseudo-voigt", caglioti=(rng.uniform(0.005, 0.03), rng.uniform(-0.01, 0.0),
                                                rng.uniform(0.005, 0.02)), eta=rng.uniform(0.2, 0.8), doublet=True)
    return measured_looking(Pattern(np.concatenate(two_theta), np.concatenate(intensities), line), GRID, profile, rng,
                            zero_shift=rng.uniform(-0.2, 0.2), peak_counts=rng.uniform(5e3, 2e4),
                            background_share=rng.uniform(0.03, 0.2))


def run(args, member, model) -> dict:
    """The mixtures, identified with ``model`` (``member`` through :class:`FirstK`)."""
    if not SHARED_CSV.is_file():
        sys.exit(f"no structure CSV at {SHARED_CSV}")
    chosen = pairs(args.n, args.seed, args.max_atoms, args.minor)
    wanted = {f for pair in chosen for f in pair}.__contains__
    structures = {**structures_of(SHARED_CSV, wanted), **(structures_of(BINARY_CSV, wanted) if args.minor ==
                                                          "subsystem" else {})}
    print(f"{len(chosen)} pairs of test-split formulas", file=sys.stderr)
    scorer, rng, cases = Scorer(), np.random.default_rng(args.seed), []
    for pair in tqdm(chosen, desc="mixtures"):
        minor = float(rng.uniform(0.1, 0.5))
        try:
            measured = mixture([structures[f][1] for f in pair], [1 - minor, minor], rng)
        except SimulationError as error:
            print(f"skipped {pair}: {error}", file=sys.stderr)
            continue
        start = time.perf_counter()
        formulas, ranking = ranked(measured, system(pair[0]), member, model, scorer, args)
        ranked_seconds = time.perf_counter() - start
        case = {"major": pair[0], "minor": pair[1], "minor_share": minor,
                "single_phase_top3": [m.formula for m in ranking.matches[:3]],
                "baseline": set(pair) <= {m.formula for m in ranking.matches[:3]}}
        for phases, found in explained(ranking, measured, formulas, model, scorer, args).items():
            names = [m.formula for m in found.phases]
            case[f"phases {phases}"] = {"phases": names, "shares": found.shares, "score": found.score,
                                        "found": set(pair) <= set(names),
                                        "minor_share_found": found.shares[names.index(pair[1])]
                                        if pair[1] in names else None}
        case["seconds"] = time.perf_counter() - start
        case["ranking_seconds"] = ranked_seconds
        cases.append(case)
    return {"settings": {"model": args.model, "n": args.n, "seed": args.seed, "max_atoms": args.max_atoms,
                         "candidates": args.candidates, "all_known": args.all_known, "minor": args.minor,
                         "subsystems": args.subsystems}, "cases": cases}


def ranked(measured, elements, member, model, scorer: Scorer, args) -> tuple[list[str], Ranking]:
    """(the candidate formulas, their ranking) as ``identify --elements ... --charge-balanced`` makes them."""
    formulas = candidate_formulas(list(elements), args.max_atoms, True, member if args.all_known else None,
                                  subsystems=args.subsystems)
    return formulas, rank(measured, formulas, model, scorer=scorer, candidates=args.candidates)


def explained(ranking, measured, formulas: list[str], model, scorer: Scorer, args) -> dict:
    """{N: the mixture ``identify --phases N`` reports} for N = 2 and 3, from the single-phase ``ranking``."""
    return {phases: mixture_of(ranking, measured, formulas, model, None, phases, scorer, args.candidates)
            for phases in (2, 3)}


def controls(args, member, model, group: str = "patterns") -> list[dict]:
    """Each single-phase measured pattern of the manifest's ``group`` explained by ``--phases 2`` and ``3`` as identify
    does (``--controls``)."""
    import json
    from pathlib import Path

    from identify_measured import MEASURED, measurements, truth

    manifest = json.loads((MEASURED / "manifest.json").read_text())
    scorer, cases = Scorer(), []
    for entry, measured in tqdm(measurements(manifest, args.rockjock and Path(args.rockjock), group), desc=group):
        formula, elements = truth(entry["formula"])
        formulas, ranking = ranked(measured, elements, member, model, scorer, args)
        cases.append({"name": entry["name"], "formula": formula,
                      **{f"phases {phases}": {"phases": [m.formula for m in found.phases], "shares": found.shares}
                         for phases, found in explained(ranking, measured, formulas, model, scorer, args).items()}})
    return cases


def control_summary(groups: dict[str, list[dict]]) -> list[dict]:
    """How often a single-phase measurement of each group of controls is given more than one phase."""
    return [{"controls": name, "single-phase measurements": len(cases),
             **{f"--phases {n}: more than one phase": float(np.mean([len(c[f"phases {n}"]["phases"]) > 1
                                                                    for c in cases])) for n in (2, 3)},
             **{f"--phases {n}: first phase the truth": float(np.mean([c[f"phases {n}"]["phases"][0] == c["formula"]
                                                                      for c in cases])) for n in (2, 3)}}
            for name, cases in groups.items() if cases]


def summary(cases: list[dict]) -> list[dict]:
    """Both phases found, by method and by the minor phase's share."""
    rows = []
    bands = [("all", 0.0, 1.0), ("minor 10-25 %", 0.0, 0.25), ("minor 25-50 %", 0.25, 1.0)]
    for label, low, high in bands:
        part = [c for c in cases if low <= c["minor_share"] < high]
        if not part:
            continue
        row = {"cases": label, "n": len(part),
               "baseline: both in the single-phase top 3": float(np.mean([c["baseline"] for c in part]))}
        for phases in (2, 3):
            row[f"--phases {phases}: both found"] = float(np.mean([c[f"phases {phases}"]["found"] for c in part]))
        errors = [abs(c["phases 3"]["minor_share_found"] - c["minor_share"]) for c in part
                  if c["phases 3"]["minor_share_found"] is not None]
        row["minor share error (median)"] = float(np.median(errors)) if errors else None
        row["s / mixture"] = float(np.mean([c["seconds"] for c in part]))
        rows.append(row)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=40, help="pairs to mix")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--model", default=xrdzoo.DEFAULT_MODEL)
    parser.add_argument("--max-atoms", type=int, default=DEFAULT_MAX_ATOMS)
    parser.add_argument("--candidates", type=int, default=DEFAULT_CANDIDATES)
    parser.add_argument("--all-known", action=argparse.BooleanOptionalAction, default=ALL_KNOWN,
                        help="as identify --all-known: larger stable formulas the model knows too")
    parser.add_argument("--minor", choices=("same", "subsystem"), default="same",
                        help="the minor phase: a ternary of the major's system, or a binary of a subsystem")
    parser.add_argument("--subsystems", action="store_true", help="as identify --subsystems")
    parser.add_argument("--name", default="mixtures", help="results name (JSON and docs section)")
    parser.add_argument("--controls", action="store_true", help="also the single-phase measured patterns")
    parser.add_argument("--rockjock", help="powdR's data/rockjock.rda, for the RockJock controls")
    options = parser.parse_args()
    member = xrdzoo.load(options.model)
    model = FirstK(member, options.candidates)  # as identify's answers cache: --phases ranks again, unpredicted
    result = run(options, member, model)
    args, rows = argparse.Namespace(**result["settings"]), summary(result["cases"])
    found = {name: controls(options, member, model, group) for name, group in CONTROLS.items()} \
        if options.controls else {}
    kinds = [f"seed {args.seed}"] * bool(args.seed) + ["minor phase of a subsystem"] * (args.minor == "subsystem") \
        + ["--subsystems"] * args.subsystems
    title = "Two-phase mixtures" + (f" ({', '.join(kinds)})" if kinds else "")
    markdown = (f"## {title}\n\n"
                f"`xrdzoo identify --charge-balanced --max-atoms {args.max_atoms} --candidates {args.candidates} "
                f"--{'' if args.all_known else 'no-'}all-known{' --subsystems' * args.subsystems} --phases N` with "
                f"`{args.model}` on {len(result['cases'])} synthetic mixtures of "
                + ("a test-split ternary and a test-split binary of one of its two-element subsystems" if
                   args.minor == "subsystem" else "two test-split ternaries of one chemical system")
                + f" (seed {args.seed}; minor phase 10..50 % of the intensity, each "
                "phase strained up to 0.3 %, Cu K-alpha doublet, random peak widths, zero shift, background, Poisson "
                "noise). Share of mixtures whose two formulas are both among the phases reported, beside the "
                "baseline of reading the first three answers of the single-phase ranking; the minor share's error "
                "in intensity share; seconds per mixture (ranking and explaining).\n\n" + markdown_table(rows))
    if found:
        markdown += ("\n\nControls: single-phase measured patterns, each explained the same way in its own chemical "
                     "system (and its subsystems, with --subsystems): the share given more than one phase (none has "
                     "one), and the share whose first phase is the true formula. Those of the measured benchmark, and "
                     "RockJock standards held out from every choice of the mixture step (from 2026-12-04).\n\n"
                     + markdown_table(control_summary(found)))
    write_results(options.name, {**result, "summary": rows, "controls": found}, markdown)


if __name__ == "__main__":
    main()
