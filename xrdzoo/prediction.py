"""What a prediction becomes for people and programs: peak tables, pattern files and the candidates' structures as
CIF files (screening: xrdzoo.screening)."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from xrdzoo.contracts import Candidate
from xrdzoo.errors import InputError
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
    peaks = find_peaks(pattern, threshold=threshold)
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
        with atomic_path(path) as partial:
            np.savetxt(partial, np.column_stack([x, *patterns.intensities]), delimiter=",", header=header,
                       comments="", fmt="%.4f")
        return [path]
    if path.suffix == ".xy":
        paths = [path] if len(names) == 1 else [path.with_name(f"{path.stem}_{name}.xy") for name in names]
        for p, intensities in zip(paths, patterns.intensities):
            with atomic_path(p) as partial:
                np.savetxt(partial, np.column_stack([x, intensities]), fmt="%.4f")
        return paths
    with_peaks = patterns.on_frame and axis == "two_theta"
    records = [{"formula": name, **({"peaks": peak_rows(patterns[i])} if with_peaks else
                                    {axis: np.round(x, 5).tolist()}),
                "pattern": np.round(patterns.intensities[i], 3).tolist()} for i, name in enumerate(names)]
    text = (json.dumps(records) if path.suffix == ".json" else "".join(json.dumps(r) + "\n" for r in records))
    with atomic_path(path) as partial:
        partial.write_text(text)
    return [path]


def write_structures(folder: Path, formula: str, candidates: Sequence[Candidate]) -> list[Path]:
    """Each candidate's cell (those without one skipped) as a CIF in ``folder``, named
    ``<formula>_<rank>_<source>.cif``: the very cell whose pattern was predicted, in P1, its first lines saying what it
    is and how it was made (and, for a Materials Project structure, its licence)."""
    from xrdzoo.version import __version__

    paths = []
    for rank, candidate in enumerate(candidates, 1):
        if candidate.cell is None:
            continue
        path = Path(folder) / f"{formula}_{rank}_{file_label(candidate.source)}.cif"
        notes = [f"{formula}, candidate {rank} of xrdzoo {__version__}: {candidate.how}",
                 f"space group {candidate.spacegroup or 'unknown'} (of the structure it came from); written in P1, "
                 "exactly the cell simulated"]
        paths.append(write_cif(path, candidate.cell.structure(), notes, candidate.source))
    return paths


def file_label(source: str) -> str:
    """An answer's source as part of a file name: a material id as it is, a structure file (``identify
    --structures``) by its name without the suffix, other characters than letters, digits, ``_``, ``.`` and ``-`` as
    ``-`` (``ASE reference``: ``ASE-reference``)."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", Path(source).stem)


def write_cif(path: Path, structure, notes: Sequence[str], source: str = "") -> Path:
    """A pymatgen ``structure`` as a P1 CIF at ``path``, headed by ``notes`` as comment lines and, where its
    ``source`` is a Materials Project id, the data's licence."""
    from pymatgen.io.cif import CifWriter

    if source.startswith("mp-"):
        notes = [*notes, f"from Materials Project {source} (CC BY 4.0, https://materialsproject.org)"]
    with atomic_path(path) as partial:
        partial.write_text("".join(f"# {note}\n" for note in notes) + str(CifWriter(structure)))
    return Path(path)


def simulated_pattern(structure_file: Path, wavelength: float = WAVELENGTH) -> Pattern:
    """The simulated (true) peaks of a structure file at ``wavelength``, for plotting against a prediction."""
    from xrdzoo.xrd.simulate import read_structure, reflections

    return reflections(read_structure(structure_file), "fast", wavelength)
