"""How often `xrdzoo identify` names the right composition of a measured-looking pattern, and how fast.

For a seeded sample of test-split ternary formulas (``xrdzoo.data.split_of``) from the shared Materials Project CSV
whose composition is among identify's charge-balanced candidates (at most ``--max-atoms`` atoms, encodable by the
model), the structure chosen by the dataset rule is simulated and made to look measured: Cu K-alpha (or, for a
``--mo-share`` of cases, Mo K-alpha) with its K-alpha1/2 doublet, pseudo-Voigt peaks with random Caglioti widths, a
random zero shift of up to 0.2 degrees, a background and Poisson noise, 10..80 degrees in steps of 0.02. The file
goes through ``read_measurement`` and is ranked, as ``xrdzoo identify --charge-balanced`` does, among the
charge-balanced compositions of its chemical system: by predicted patterns only, and again with the training-split
structures of the system as known phases (the true formula is a test formula, so never among them).

    python benchmarks/identify.py --n 100 --example data/identify_example.xy
"""

from __future__ import annotations

import argparse
import csv
import gzip
import random
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from tqdm import tqdm

from common import SHARED_CSV, markdown_table, write_results
import xrdzoo
from xrdzoo.data import in_subset, split_of, structures_of
from xrdzoo.formulas import DEFAULT_MAX_ATOMS, compositions
from xrdzoo.identify import Scorer, rank
from xrdzoo.measured import measured_looking, read_measurement, write_xy
from xrdzoo.xrd.pattern import Pattern
from xrdzoo.xrd.profiles import Profile, wavelength
from xrdzoo.xrd.simulate import SimulationError, reflections

GRID = 10 + 0.02 * np.arange(3501)  # 10..80 degrees


def system(formula: str) -> tuple[str, ...]:
    from pymatgen.core import Composition

    return tuple(sorted(e.symbol for e in Composition(formula).elements))


def sample(path: Path, n: int, seed: int, max_atoms: int, model) -> tuple[list[str], dict]:
    """n test formulas whose composition is among identify's candidates, and the structures needed: theirs and the
    training structures of their chemical systems."""
    csv.field_size_limit(2**31 - 1)
    with gzip.open(path, "rt") as rows:
        formulas = sorted({row["formula"] for row in csv.DictReader(rows)})
    ternary = [f for f in formulas if in_subset(f, "ternary")]
    test = [f for f in ternary if split_of(f) == "test"]
    rng = random.Random(seed)
    rng.shuffle(test)
    chosen, seen = [], 0
    for formula in test:
        seen += 1
        if formula in compositions(list(system(formula)), max_atoms, charge_balanced=True) and \
                model.answer([formula]).kept:
            chosen.append(formula)
            if len(chosen) == n:
                break
    systems = {system(f) for f in chosen}
    train = {f for f in ternary if split_of(f) == "train" and system(f) in systems}
    wanted = set(chosen) | train
    structures = structures_of(path, wanted.__contains__)
    print(f"{len(chosen)} of the first {seen} shuffled test ternaries are charge-balanced candidates "
          f"(<= {max_atoms} atoms); {len(train)} training structures in their systems", file=sys.stderr)
    return chosen, {"structures": structures, "train": train, "eligible_share": len(chosen) / seen}


def measurement(structure, rng: np.random.Generator, mo_share: float) -> Pattern:
    """A measured-looking pattern of a structure (see the module docstring)."""
    tube = "MoKa" if rng.random() < mo_share else "CuKa"
    line = wavelength(tube)
    peaks = reflections(structure, "fast", line)
    two_theta, intensities = peaks.two_theta, peaks.intensities
    profile = Profile("pseudo-voigt", caglioti=(rng.uniform(0.005, 0.03), rng.uniform(-0.01, 0.0),
                                                rng.uniform(0.005, 0.02)), eta=rng.uniform(0.2, 0.8), doublet=True)
    return measured_looking(Pattern(two_theta, intensities, line), GRID, profile, rng,
                            zero_shift=rng.uniform(-0.2, 0.2), peak_counts=rng.uniform(2e3, 2e4),
                            background_share=rng.uniform(0.03, 0.2))


class _Remembered:
    """A model whose predictions for the last batch of formulas are kept, so that ranking the same candidates again
    with known phases costs only the known phases' simulation and scoring."""

    def __init__(self, model):
        self.model, self.formulas, self.answers = model, None, None

    def answer(self, formulas):
        if formulas != self.formulas:
            self.formulas, self.answers = list(formulas), self.model.answer(formulas)
        return self.answers


def run(args) -> dict:
    models = {name: _Remembered(xrdzoo.load(name)) for name in args.model}
    formulas, info = sample(args.csv, args.n, args.seed, args.max_atoms, next(iter(models.values())).model)
    structures = info["structures"]
    rng = np.random.default_rng(args.seed)
    cases, scorer = [], Scorer()
    for model in models.values():  # warm up
        rank(Pattern(GRID, np.ones_like(GRID), span=(10.0, 80.0)), ["BaTiO3"], model.model, scorer=scorer)
    with tempfile.TemporaryDirectory() as folder:
        for i, formula in enumerate(tqdm(formulas, desc="identifying")):
            try:
                measured = measurement(structures[formula][1], rng, args.mo_share)
            except SimulationError as error:
                print(f"skipped {formula}: {error}", file=sys.stderr)
                continue
            path = write_xy(Path(folder) / f"{i}.xy", measured, f"{formula} (measured-looking)")
            if i == 0 and args.example:
                args.example.parent.mkdir(parents=True, exist_ok=True)
                write_xy(args.example, measured, f"measured-looking {formula}, {measured.wavelength} A; made by "
                                                 "benchmarks/identify.py from a Materials Project structure")
            elements = list(system(formula))
            known = {f: structures[f] for f in sorted(info["train"]) if system(f) == tuple(elements) and f in structures}
            for name, model in models.items():
                start = time.perf_counter()
                candidates = compositions(elements, args.max_atoms, charge_balanced=True)
                predicted = rank(read_measurement(path, measured.wavelength), candidates, model, scorer=scorer)
                seconds = time.perf_counter() - start
                start = time.perf_counter()
                with_known = rank(read_measurement(path, measured.wavelength), candidates, model, known, scorer)
                cases.append({"model": name, "formula": formula, "wavelength": measured.wavelength,
                              "candidates": len(candidates), "known": len(known), "rank": predicted.rank_of(formula),
                              "rank_with_known": with_known.rank_of(formula), "seconds": seconds,
                              "extra_seconds_with_known": time.perf_counter() - start})
    return {"settings": vars(args) | {"csv": str(args.csv), "example": str(args.example)},
            "eligible_share": info["eligible_share"], "cases": cases}


def summary(cases: list[dict]) -> list[dict]:
    rows = []
    for model in dict.fromkeys(c["model"] for c in cases):
        for label, keep in (("all", lambda c: True), ("Cu K-alpha", lambda c: c["wavelength"] > 1),
                            ("Mo K-alpha", lambda c: c["wavelength"] < 1)):
            part = [c for c in cases if c["model"] == model and keep(c)]
            for mode, key in (("predicted", "rank"), ("predicted + known", "rank_with_known")):
                ranks = np.array([c[key] or 10**6 for c in part])
                seconds = [c["seconds"] + (c["extra_seconds_with_known"] if key != "rank" else 0) for c in part]
                rows.append({"model": model, "cases": label, "candidates": mode, "n": len(part),
                             "median candidates": float(np.median([c["candidates"] + c["known"] * (key != "rank")
                                                                   for c in part])),
                             "top-1": float(np.mean(ranks == 1)), "top-5": float(np.mean(ranks <= 5)),
                             "median rank": float(np.median(ranks)), "s / identification": float(np.mean(seconds))})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=100, help="test formulas to identify")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--model", action="append", help="predictor (weight name or checkpoint), repeatable; "
                                                           "default: xrdzoo.DEFAULT_MODEL")
    parser.add_argument("--max-atoms", type=int, default=DEFAULT_MAX_ATOMS)
    parser.add_argument("--mo-share", type=float, default=0.3, help="share of cases measured with Mo K-alpha")
    parser.add_argument("--csv", type=Path, default=SHARED_CSV)
    parser.add_argument("--example", type=Path, default=None, help="also write the first case's .xy here "
                                                                   "(Materials Project data: keep it out of git)")
    args = parser.parse_args()
    args.model = args.model or [xrdzoo.DEFAULT_MODEL]
    if not args.csv.is_file():
        sys.exit(f"no structure CSV at {args.csv}; pass --csv")
    result = run(args)
    rows = summary(result["cases"])
    markdown = ("## Identification of measured-looking patterns\n\n"
                f"`xrdzoo identify --charge-balanced --max-atoms {args.max_atoms}` on {args.n} "
                f"seeded test-split ternaries (seed {args.seed}) whose composition is among the charge-balanced "
                f"candidates ({result['eligible_share']:.0%} of test ternaries are); {args.mo_share:.0%} of the "
                "measurements Mo K-alpha, the rest Cu K-alpha. Rank of the true formula among the candidates of its "
                "chemical system, by predicted patterns only and with the training-split structures of the system as known phases "
                "(simulated at the measurement's wavelength). Seconds per identification: enumerating, reading, "
                "predicting, scoring (with known phases: plus simulating and scoring them; the predictions are "
                "reused).\n\n"
                + markdown_table(rows))
    write_results("identify", {**result, "summary": rows}, markdown)


if __name__ == "__main__":
    main()
