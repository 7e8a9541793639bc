"""What a prediction becomes for people and programs: peak tables, pattern files, streamed batch screening."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np

from xrdzoo.model import XRDModel
from xrdzoo.xrd.pattern import TWO_THETA, WAVELENGTH, d_spacing, two_theta_at
from xrdzoo.xrd.peaks import find_peaks

FORMATS = (".csv", ".json", ".jsonl", ".xy")


def peak_rows(pattern: np.ndarray, threshold: float = 10.0, wavelength: float = WAVELENGTH) -> list[dict[str, float]]:
    """The pattern's peaks (threshold, merged within 2 degrees) as rows of 2-theta and d-spacing at each peak's apex
    (its largest point) and intensity; 2-theta at ``wavelength`` (peaks beyond 180 degrees there are left out)."""
    peaks = find_peaks(pattern, threshold=threshold)
    d = d_spacing(peaks.apexes)
    return [{"two_theta": round(float(t), 3), "intensity": round(float(i), 2), "d_spacing": round(float(d), 4)}
            for t, i, d in zip(two_theta_at(d, wavelength), peaks.intensities, d) if np.isfinite(t)]


def peak_table(formula: str, pattern: np.ndarray, threshold: float = 10.0, wavelength: float = WAVELENGTH) -> str:
    """A readable peak list for one formula (2-theta at ``wavelength``)."""
    lines = [f"{formula}: predicted peaks (intensity >= {threshold:g})", "  2theta(deg)  intensity  d(A)"]
    lines += [f"  {r['two_theta']:10.2f}  {r['intensity']:9.1f}  {r['d_spacing']:.4f}" for r in
              peak_rows(pattern, threshold, wavelength)]
    return "\n".join(lines)


def write_patterns(path: Path, formulas: Sequence[str], patterns: np.ndarray, x: np.ndarray | None = None,
                   axis: str = "two_theta") -> list[Path]:
    """Write patterns by the file's suffix: .csv (a 2-theta column and one per formula), .json/.jsonl (pattern and
    peaks per formula) or .xy (two columns; one file per formula when there are several). ``x``: the points of
    patterns not on the model frame, on ``axis`` (two_theta, q or d); their JSON records give ``x``, not peaks."""
    path = Path(path)
    columns = TWO_THETA if x is None else x
    if path.suffix not in FORMATS:
        raise ValueError(f"cannot write {path.name!r}: use one of {', '.join(FORMATS)}")
    if path.suffix == ".csv":
        header = ",".join([axis, *formulas])
        np.savetxt(path, np.column_stack([columns, *patterns]), delimiter=",", header=header, comments="",
                   fmt="%.4f")
        return [path]
    if path.suffix == ".xy":
        paths = [path] if len(formulas) == 1 else [path.with_name(f"{path.stem}_{f}.xy") for f in formulas]
        for p, pattern in zip(paths, patterns):
            np.savetxt(p, np.column_stack([columns, pattern]), fmt="%.4f")
        return paths
    records = [_record(f, p) if x is None else {"formula": f, axis: np.round(x, 5).tolist(),
                                                 "pattern": np.round(p, 3).tolist()} for f, p in zip(formulas, patterns)]
    text = (json.dumps(records) if path.suffix == ".json" else "".join(json.dumps(r) + "\n" for r in records))
    path.write_text(text)
    return [path]


def _record(formula: str, pattern: np.ndarray, threshold: float = 10.0) -> dict:
    return {"formula": formula, "peaks": peak_rows(pattern, threshold), "pattern": np.round(pattern, 3).tolist()}


def _read_formulas(path: Path) -> Iterator[str]:
    with open(path) as lines:
        for line in lines:
            if line.strip() and not line.lstrip().startswith("#"):
                yield line.split()[0]


def screen(model: XRDModel, source: Path, output: Path, batch_size: int = 64, threshold: float = 10.0,
           precision: str = "float32") -> int:
    """Predict every formula in ``source`` (one per line), streaming JSON lines to ``output`` batch by batch.

    A formula the encoder cannot take becomes a line with its ``error`` instead of stopping the run. Prints the
    throughput to stderr and returns the number of formulas predicted.
    """
    start, done, failed = time.perf_counter(), 0, 0
    formulas = list(_read_formulas(source))
    with open(output, "w") as out:
        for i in range(0, len(formulas), batch_size):
            batch = formulas[i : i + batch_size]
            keep, errors = model.encodable(batch)
            for formula, reason in errors.items():
                out.write(json.dumps({"formula": formula, "error": reason}) + "\n")
            good = [batch[k] for k in keep]
            for formula, pattern in zip(good, model.predict(good, batch_size, precision) if good else []):
                out.write(json.dumps({"formula": formula, "peaks": peak_rows(pattern, threshold)}) + "\n")
            failed += len(errors)
            done += len(good)
            rate = done / (time.perf_counter() - start)
            print(f"\r{done + failed}/{len(formulas)} formulas, {rate:.0f} formulas/s", end="", file=sys.stderr)
    print(f"\npredicted {done} formulas ({failed} could not be encoded) into {output}", file=sys.stderr)
    return done


def simulated_pattern(structure_file: Path) -> np.ndarray:
    """The simulated (true) pattern of a structure file, for plotting against a prediction."""
    from xrdzoo.xrd.simulate import read_structure, simulate

    return simulate([read_structure(structure_file)])[0]
