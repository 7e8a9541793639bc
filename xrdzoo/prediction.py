"""What a prediction becomes for people and programs: peak tables, pattern files, streamed batch screening."""

from __future__ import annotations

import csv
import json
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np

from xrdzoo.contracts import Predictor
from xrdzoo.errors import InputError, at_least_one
from xrdzoo.files import atomic_path
from xrdzoo.xrd.pattern import WAVELENGTH, Pattern, axis_values, d_spacing, two_theta_at
from xrdzoo.xrd.peaks import find_peaks

FORMATS = (".csv", ".json", ".jsonl", ".xy")


def peak_rows(pattern: Pattern, threshold: float = 10.0, wavelength: float | None = None) -> list[dict[str, float]]:
    """The peaks of one pattern on the model frame's bins (threshold, merged within 2 degrees) as rows of 2-theta and
    d-spacing at each peak's apex (its largest point) and intensity; 2-theta at ``wavelength`` (default: the
    pattern's own; peaks beyond 180 degrees there are left out)."""
    if not pattern.on_frame or pattern.intensities.ndim != 1:
        raise ValueError("peak rows are read from one pattern on the model frame's 1,024 bins")
    peaks = find_peaks(pattern.intensities, threshold=threshold)
    d = d_spacing(peaks.apexes, pattern.wavelength)
    two_theta = two_theta_at(d, wavelength or pattern.wavelength)
    return [{"two_theta": round(float(t), 3), "intensity": round(float(i), 2), "d_spacing": round(float(d), 4)}
            for t, i, d in zip(two_theta, peaks.intensities, d) if np.isfinite(t)]


def peak_table(formula: str, pattern: Pattern, threshold: float = 10.0, wavelength: float | None = None) -> str:
    """A readable peak list for one formula (2-theta at ``wavelength``, default the pattern's own)."""
    lines = [f"{formula}: predicted peaks (intensity >= {threshold:g})", "  2theta(deg)  intensity  d(A)"]
    lines += [f"  {r['two_theta']:10.2f}  {r['intensity']:9.1f}  {r['d_spacing']:.4f}" for r in
              peak_rows(pattern, threshold, wavelength)]
    return "\n".join(lines)


def write_patterns(path: Path, names: Sequence[str], patterns: Pattern, axis: str = "two_theta") -> list[Path]:
    """Write a batch of patterns, one per name, by the file's suffix: .csv (an ``axis`` column and one per name),
    .json/.jsonl (per name the pattern, and its peaks when it lies on the model frame's bins over 2-theta, else its
    ``axis`` values) or .xy (two columns; one file per name when there are several). ``axis``: two_theta, q or d."""
    path = Path(path)
    if path.suffix not in FORMATS:
        raise InputError(f"cannot write {path.name!r}: use one of {', '.join(FORMATS)}")
    x = axis_values(patterns.two_theta, axis, patterns.wavelength)
    if path.suffix == ".csv":
        header = ",".join([axis, *names])
        np.savetxt(path, np.column_stack([x, *patterns.intensities]), delimiter=",", header=header, comments="",
                   fmt="%.4f")
        return [path]
    if path.suffix == ".xy":
        paths = [path] if len(names) == 1 else [path.with_name(f"{path.stem}_{name}.xy") for name in names]
        for p, intensities in zip(paths, patterns.intensities):
            np.savetxt(p, np.column_stack([x, intensities]), fmt="%.4f")
        return paths
    with_peaks = patterns.on_frame and axis == "two_theta"
    records = [{"formula": name, **({"peaks": peak_rows(patterns[i])} if with_peaks else
                                    {axis: np.round(x, 5).tolist()}),
                "pattern": np.round(patterns.intensities[i], 3).tolist()} for i, name in enumerate(names)]
    text = (json.dumps(records) if path.suffix == ".json" else "".join(json.dumps(r) + "\n" for r in records))
    path.write_text(text)
    return [path]


def _read_formulas(path: Path) -> Iterator[tuple[int, str]]:
    """(line number, the line as written) of every line that is neither blank nor a ``#`` comment; bytes that are
    not UTF-8 become U+FFFD, so such a line is one error record, not a failed run."""
    with open(path, encoding="utf-8", errors="replace") as lines:
        for number, line in enumerate(lines, start=1):
            if line.strip() and not line.lstrip().startswith("#"):
                yield number, line.strip()


SCREEN_FORMATS = (".jsonl", ".csv")


def screen(model: Predictor, source: Path, output: Path, batch_size: int = 64, threshold: float = 10.0,
           precision: str = "float32") -> int:
    """Predict every formula in ``source`` (one per line) into ``output`` (``.jsonl`` or ``.csv``, by its suffix).

    Exactly one record per formula line, in input order, with its line number and the line as written: its peaks,
    or the ``error`` that stopped it (a line such as ``Fe 2O3`` is one error, not ``Fe``). The records go to a
    temporary file renamed over ``output`` at the end, so a failed run leaves what ``output`` held. Prints the
    throughput to stderr and returns the number of formulas predicted.
    """
    output = Path(output)
    if output.suffix not in SCREEN_FORMATS:
        raise InputError(f"cannot screen into {output.name!r}: use a {' or '.join(SCREEN_FORMATS)} file")
    at_least_one(batch_size, "batch_size")
    start, done, failed = time.perf_counter(), 0, 0
    lines = list(_read_formulas(source))
    with atomic_path(output) as partial, open(partial, "w", newline="") as file:
        write = _record_writer(file, output.suffix)
        for i in range(0, len(lines), batch_size):
            batch = lines[i : i + batch_size]
            answers = model.answer([text for _, text in batch], batch_size, precision)
            predicted = Pattern.from_frame(answers.patterns)
            patterns = {k: predicted[j] for j, k in enumerate(answers.kept)}
            for k, (number, text) in enumerate(batch):
                write({"line": number, "formula": text, "peaks": peak_rows(patterns[k], threshold)}
                      if k in patterns else {"line": number, "formula": text, "error": answers.refused[text]})
            failed += len(batch) - len(answers.kept)
            done += len(answers.kept)
            rate = done / (time.perf_counter() - start)
            print(f"\r{done + failed}/{len(lines)} formulas, {rate:.0f} formulas/s", end="", file=sys.stderr)
    print(f"\npredicted {done} formulas ({failed} could not be encoded) into {output}", file=sys.stderr)
    return done


def _record_writer(file, suffix: str):
    """A function writing one screening record as a JSON line, or as a CSV row (peaks as ``2theta:intensity``)."""
    if suffix == ".jsonl":
        return lambda record: file.write(json.dumps(record) + "\n")
    rows = csv.DictWriter(file, ["line", "formula", "peaks", "error"])
    rows.writeheader()
    return lambda record: rows.writerow({**record, "peaks": " ".join(
        f"{p['two_theta']}:{p['intensity']}" for p in record.get("peaks", []))})


def simulated_pattern(structure_file: Path, wavelength: float = WAVELENGTH) -> Pattern:
    """The simulated (true) peaks of a structure file at ``wavelength``, for plotting against a prediction."""
    from xrdzoo.xrd.simulate import read_structure, reflections

    two_theta, intensities, _ = reflections(read_structure(structure_file), "fast", wavelength)
    return Pattern(two_theta, intensities, wavelength)
