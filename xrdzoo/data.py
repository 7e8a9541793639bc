"""Datasets: crystal structures -> one per formula -> a subset -> simulated XRD patterns -> a fixed split -> one file.

Sources: a CSV (optionally gzipped) with one CIF per row, a folder of structure files, or a pymatgen JSON file.
Rows that cannot be used are skipped and counted by reason, never dropped silently. The file is a compressed
``.npz`` that loads without pickle; ``docs/data.md`` describes the rules and the format.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import json
import math
import os
import re
import time
import warnings
import zipfile
import zlib
from dataclasses import dataclass, field
from functools import lru_cache, partial
from itertools import accumulate
from pathlib import Path

import numpy as np

from xrdzoo.errors import InputError, first_line
from xrdzoo.files import atomic_path, refuse_overwrite
from xrdzoo.version import __version__
from xrdzoo.xrd.pattern import FrameIntensities

FORMAT = "xrdzoo-dataset"
FORMAT_VERSION = 3  # 2: the rows' structures (lattices, sites), for template predictors; 3: their e_above_hull
SPLITS = ("train", "val", "test")
SPLIT_FRACTIONS = (0.7, 0.1, 0.2)
_ELEMENT_COUNTS = {"binary": 2, "ternary": 3, "quaternary": 4}  # named subsets by element count; quinary+ is 5 and up
POLYMORPHS = ("one", "all")
STRUCTURE_FILES = ("*.cif", "*.mcif", "*.vasp", "*.poscar", "POSCAR*", "CONTCAR*")
CSV_COLUMNS = ("material_id", "formula", "nsites", "cif")  # required; e_above_hull and spacegroup are optional
SELECTION_RULE = "per reduced formula: lowest e_above_hull (empty last), then fewest sites, then id (natural order)"
ALL_POLYMORPHS_RULE = ("every structure of each reduced formula (one per id), ground state first: lowest e_above_hull "
                       "(empty last), then fewest sites, then id (natural order)")
_EXAMPLES_PER_REASON = 5
_STRUCTURE_ARRAYS = ("lattices", "offsets", "frac_coords", "numbers")  # Structures' fields, as stored


class DatasetError(InputError):
    """A dataset file, structure source or build setting that xrdzoo cannot use; the message says how to fix it."""


# --- the dataset --------------------------------------------------------------------------------------------------

@dataclass(frozen=True, eq=False)
class Structures:
    """The crystal structures of a dataset's rows as flat arrays: ``lattices`` (n, 3, 3) Angstrom (rows a, b, c),
    ``offsets`` (n + 1) so that row i's sites are ``offsets[i]:offsets[i + 1]``, ``frac_coords`` (sites, 3) and
    ``numbers`` (sites,) atomic numbers. Ordered structures only (the simulator refuses disorder)."""

    lattices: np.ndarray
    offsets: np.ndarray
    frac_coords: np.ndarray
    numbers: np.ndarray

    @classmethod
    def of(cls, cells) -> Structures:
        """The arrays of ``(lattice, frac_coords, numbers)`` triples, one per structure (see :func:`cell_of`)."""
        lattices, coords, numbers = zip(*cells) if cells else ((), (), ())
        return cls(np.array(lattices, dtype=np.float64).reshape(-1, 3, 3),
                   np.concatenate([[0], np.cumsum([len(n) for n in numbers])]).astype(np.int64),
                   np.concatenate([*coords, np.zeros((0, 3))]).astype(np.float64),
                   np.concatenate([*numbers, np.zeros(0)]).astype(np.int16))

    def __len__(self) -> int:
        return len(self.lattices)

    def sites(self, i: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(lattice (3, 3), fractional coordinates (m, 3), atomic numbers (m,)) of row ``i``."""
        start, end = self.offsets[i], self.offsets[i + 1]
        return self.lattices[i], self.frac_coords[start:end], self.numbers[start:end]

    def take(self, rows) -> Structures:
        """The structures of the given rows, in that order."""
        rows = np.asarray(rows, dtype=np.int64)
        starts, ends = self.offsets[rows], self.offsets[rows + 1]
        sites = np.concatenate([np.arange(a, b) for a, b in zip(starts, ends)] or [np.zeros(0, np.int64)])
        return Structures(self.lattices[rows], np.concatenate([[0], np.cumsum(ends - starts)]).astype(np.int64),
                          self.frac_coords[sites], self.numbers[sites])


def cell_of(structure) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(lattice matrix, fractional coordinates, atomic numbers) of an ordered pymatgen Structure."""
    return structure.lattice.matrix, structure.frac_coords, np.array([site.specie.Z for site in structure])


@dataclass(frozen=True, eq=False)
class Dataset:
    """Formulas and their simulated patterns ``(n, N_POINTS)`` float32 on the 0..100 scale, with ids, space groups,
    the split of each row and the settings it was built with. ``hash`` identifies the rows' content.
    ``structures`` holds each row's crystal structure (None in files of format 1, built before they were kept);
    ``e_above_hull`` each row's energy above the convex hull in eV/atom (NaN where the source gives none, and in
    files of format 1 and 2)."""

    formulas: list[str]
    patterns: FrameIntensities
    ids: list[str]
    spacegroups: np.ndarray
    split: np.ndarray
    settings: dict
    hash: str
    structures: Structures | None = None
    e_above_hull: np.ndarray | None = None

    @classmethod
    def of(cls, formulas, patterns, ids, spacegroups, split, settings, structures: Structures | None = None,
           e_above_hull=None) -> Dataset:
        """A dataset of these rows, its hash computed from them (the structures and their energies are identified
        by the ids)."""
        formulas, ids = list(formulas), list(ids)
        patterns = np.asarray(patterns, dtype=np.float32)
        spacegroups, split = np.asarray(spacegroups, dtype=np.int64), np.asarray(split, dtype="<U5")
        e_above_hull = np.full(len(formulas), np.nan) if e_above_hull is None else np.asarray(e_above_hull, float)
        return cls(formulas, patterns, ids, spacegroups, split, settings,
                   content_hash(formulas, patterns, ids, spacegroups, split), structures, e_above_hull)

    def require_structures(self) -> Structures:
        """The rows' structures, or a one-line error saying how to get them."""
        if self.structures is None:
            raise DatasetError("this dataset file holds no structures (it was built by an older xrdzoo); rebuild it "
                             "with `xrdzoo data build ... --force`")
        return self.structures

    def __len__(self) -> int:
        return len(self.formulas)

    def select(self, split_name: str) -> Dataset:
        """The rows of one split: ``"train"``, ``"val"`` or ``"test"``."""
        if split_name not in SPLITS:
            raise DatasetError(f"unknown split {split_name!r}; choose one of: {', '.join(SPLITS)}")
        return self.take(np.flatnonzero(self.split == split_name))

    def take(self, rows) -> Dataset:
        """The given rows, in that order, with their own hash."""
        rows = np.asarray(rows, dtype=np.int64)
        return Dataset.of([self.formulas[i] for i in rows], self.patterns[rows], [self.ids[i] for i in rows],
                          self.spacegroups[rows], self.split[rows], self.settings,
                          None if self.structures is None else self.structures.take(rows), self.e_above_hull[rows])

    def ground_states(self) -> Dataset:
        """One row per formula, its ground state (the first of its rows): the dataset itself when it holds one
        structure per formula; what networks train on and what test patterns are scored against."""
        first = [i for i, f in enumerate(self.formulas) if i == 0 or self.formulas[i - 1] != f]
        return self if len(first) == len(self) else self.take(first)

    def describe(self) -> str:
        """A few lines for people: rows per split, build settings and the skip report."""
        settings = self.settings
        counts = ", ".join(f"{name} {int((self.split == name).sum()):,}" for name in SPLITS)
        sources = settings["source"] if isinstance(settings["source"], list) else [settings["source"]]
        polymorphs = len(self) - len(set(self.formulas))
        lines = [f"{len(self):,} rows ({counts}), hash {self.hash[:16]}",
                 f"{len(set(self.formulas)):,} formulas" + (f", {polymorphs:,} more polymorphs" if polymorphs else ""),
                 *(f"source: {s['path']} ({s['kind']}, sha256 {s['sha256'][:16]})" for s in sources),
                 f"subset: {settings['subset'] or 'all'}, split seed: {settings['seed']}",
                 f"simulator: {settings['simulator_version']}",
                 f"pattern: {settings['pattern']['n_points']} bins over 2-theta {settings['pattern']['two_theta_range']}"
                 f" deg, wavelength {settings['pattern']['wavelength']} A, bin rule: {settings['pattern']['bin_rule']}",
                 f"built by xrdzoo {settings['xrdzoo_version']}"]
        return "\n".join(lines + _skip_lines(settings["report"]["skipped"], settings["report"]["examples"]))


def content_hash(formulas, patterns, ids, spacegroups, split) -> str:
    """sha256 (hex) of the rows: formulas, ids, space groups, split and float32 patterns, in order."""
    digest = hashlib.sha256()
    for part in ("\n".join(formulas).encode(), "\n".join(ids).encode(),
                 np.ascontiguousarray(spacegroups, dtype="<i8").tobytes(), "\n".join(split).encode(),
                 np.ascontiguousarray(patterns, dtype="<f4").tobytes()):
        digest.update(len(part).to_bytes(8, "little"))
        digest.update(part)
    return digest.hexdigest()


def load_dataset(path) -> Dataset:
    """A dataset file written by ``build_dataset`` (``xrdzoo data build``)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no dataset file at {str(path)!r}; build one with `xrdzoo data build`")
    settings, arrays = _read(path)
    structures = (Structures(*(arrays[name] for name in _STRUCTURE_ARRAYS))
                  if settings.get("format_version", 1) >= 2 else None)
    return Dataset.of(arrays["formulas"].tolist(), arrays["patterns"], arrays["ids"].tolist(), arrays["spacegroups"],
                      arrays["split"], settings, structures, arrays.get("e_above_hull"))


def _read(path: Path, arrays: bool = True) -> tuple[dict, dict]:
    """(settings, arrays) of a dataset file; ValueError if it is not one."""
    names = ("formulas", "patterns", "ids", "spacegroups", "split") if arrays else ()
    not_ours = f"{str(path)!r} is not an xrdzoo dataset file; build one with `xrdzoo data build`"
    if not zipfile.is_zipfile(path):
        raise DatasetError(not_ours)
    try:
        with np.load(path, allow_pickle=False) as npz:
            settings = json.loads(str(npz["settings"]))
            if settings.get("format") != FORMAT:
                raise DatasetError(not_ours)
            if settings.get("format_version", 0) > FORMAT_VERSION:
                raise DatasetError(f"{str(path)!r} is a dataset of format {settings['format_version']}, newer than "
                                 f"this xrdzoo reads ({FORMAT_VERSION}); upgrade xrdzoo")
            if arrays and settings.get("format_version", 1) >= 2:
                names += _STRUCTURE_ARRAYS
            if arrays and settings.get("format_version", 1) >= 3:
                names += ("e_above_hull",)
            return settings, {name: npz[name] for name in names}
    except DatasetError:
        raise
    except (KeyError, AttributeError, ValueError) as error:  # ValueError: a pickled object array (never unpickled)
        raise DatasetError(f"{not_ours} ({type(error).__name__}: {error})") from error
    except (zipfile.BadZipFile, zlib.error, EOFError) as error:  # bit rot, a cut copy
        raise DatasetError(f"{str(path)!r} is damaged ({type(error).__name__}: {error}); build it again with "
                           "`xrdzoo data build`") from error


# --- subsets and split --------------------------------------------------------------------------------------------

def canonical_subset(subset: str | None) -> str | None:
    """``None`` (every formula: also ``"all"``), a formula type by element count (``"binary"``, ``"ternary"``,
    ``"quaternary"``, ``"quinary+"`` for five elements and up, or a count such as ``"5"``; ``"3"`` is ``"ternary"``),
    or an anonymous formula in pymatgen's canonical form (``Composition.anonymized_formula``): ``"abc3"``,
    ``"ABC3"``, ``"A3BC"`` and ``"ABX3"`` all give ``"ABC3"``; ``"A2B2C6"`` too (counts are reduced)."""
    if subset is None or subset.lower() == "all":
        return None
    if subset.lower() in _ELEMENT_COUNTS or subset.lower() == "quinary+":
        return subset.lower()
    if subset.isdigit() and int(subset) >= 1:
        return next((name for name, n in _ELEMENT_COUNTS.items() if n == int(subset)), str(int(subset)))
    if subset.lower() == "abc3":
        return "ABC3"
    letters = re.findall(r"([A-Z])(\d*)", subset)
    if (not re.fullmatch(r"(?:[A-Z]\d*)+", subset) or len({letter for letter, _ in letters}) != len(letters)
            or any(count and int(count) == 0 for _, count in letters)):
        raise DatasetError(f"unknown subset {subset!r}; give all, binary, ternary, quaternary, quinary+, an element "
                           "count such as 5, abc3 or an anonymous formula of distinct capital letters with whole "
                           "counts, such as AB2C4")
    counts = [int(count or 1) for _, count in letters]
    divisor = math.gcd(*counts)
    return "".join(f"{chr(65 + i)}{'' if n == divisor else n // divisor}" for i, n in enumerate(sorted(counts)))


def in_subset(formula: str, subset: str | None) -> bool:
    """Whether a formula belongs to a canonical subset (see ``canonical_subset``); raises ValueError if it does not
    parse."""
    return subset is None or _in_subset(formula, subset)


@lru_cache(maxsize=None)
def _in_subset(formula: str, subset: str) -> bool:
    from pymatgen.core import Composition

    from xrdzoo.formulas import parse  # the strict reader: an EncodingError (a ValueError) names what is wrong

    amounts = dict(parse(formula))
    if subset == "quinary+":
        return len(amounts) >= 5
    if subset in _ELEMENT_COUNTS or subset.isdigit():
        return len(amounts) == _ELEMENT_COUNTS.get(subset) or subset == str(len(amounts))
    return Composition(amounts).anonymized_formula == subset


def split_of(formula: str, seed: int = 0) -> str:
    """The split a formula belongs to: the first 8 bytes of sha256("<seed>:<formula>") read as a fraction u of 2**64;
    train if u < 0.7, val if u < 0.8, else test. It depends on nothing else, so a formula lands in the same split in
    every subset and every build."""
    u = int.from_bytes(hashlib.sha256(f"{seed}:{formula}".encode()).digest()[:8], "big") / 2**64
    return next((name for name, bound in zip(SPLITS, accumulate(SPLIT_FRACTIONS)) if u < bound), SPLITS[-1])


# --- building -----------------------------------------------------------------------------------------------------

@dataclass
class BuildReport:
    """What a build did: rows read, formulas chosen, formulas kept, skips by reason (with a few examples each),
    rows per split, seconds taken; ``up_to_date`` if the file was already built from the same inputs."""

    output: Path
    rows: int = 0
    formulas: int = 0
    kept: int = 0
    skipped: dict[str, int] = field(default_factory=dict)
    examples: dict[str, list[str]] = field(default_factory=dict)
    splits: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    up_to_date: bool = False

    def skip(self, reason: str, item: str, message: str) -> None:
        """Count one skipped row or structure (``item`` names it) under ``reason``."""
        self.skipped[reason] = self.skipped.get(reason, 0) + 1
        examples = self.examples.setdefault(reason, [])
        if len(examples) < _EXAMPLES_PER_REASON:
            examples.append(f"{item}: {message}")

    def describe(self) -> str:
        """A few lines for people."""
        if self.up_to_date:
            return (f"{self.output} is up to date ({self.kept:,} formulas, built from the same source and settings); "
                    "--force rebuilds it")
        splits = ", ".join(f"{name} {count:,}" for name, count in self.splits.items())
        lines = [f"wrote {self.output}: {self.kept:,} rows, one structure each ({splits}) in {self.seconds:.1f} s",
                 f"{self.rows:,} structures read, {self.formulas:,} formulas chosen, "
                 f"{sum(self.skipped.values()):,} skipped"]
        return "\n".join(lines + _skip_lines(self.skipped, self.examples))

    def stored(self) -> dict:
        """The report as stored in the dataset's settings."""
        return {"rows": self.rows, "formulas": self.formulas, "kept": self.kept, "skipped": self.skipped,
                "examples": self.examples, "splits": self.splits, "seconds": round(self.seconds, 2)}


def build_dataset(source, output, subset: str | None = None, seed: int = 0, simulator: str = "fast",
                  workers: int | None = None, force: bool = False, progress: bool = True,
                  polymorphs: str = "one") -> BuildReport:
    """Build a dataset file from structures (``source``: one source or a list of them, read as one): one per reduced
    formula (lowest e_above_hull, then fewest sites, then id), or with ``polymorphs="all"`` every structure of each
    formula, ground state first; optionally a subset (``binary`` .. ``quinary+``, an element count, ``abc3`` or an
    anonymous formula like ``AB2C4``), patterns simulated in ``workers`` processes (default: all cores), split
    70/10/20 by a hash of (seed, formula), so all polymorphs of a formula share a split.

    Skips nothing silently: unusable rows are counted by reason in the returned report and in the file. Does not
    rebuild when ``output`` was built from the same source content and settings, unless ``force``.
    """
    sources = [Path(path) for path in (source if isinstance(source, (list, tuple)) else [source])]
    output = Path(output)
    if not sources:
        raise DatasetError("give at least one structure source")
    if output.is_dir():
        raise DatasetError(f"--output {str(output)!r} is a folder; give a new dataset file such as data/mine.npz")
    refuse_overwrite(sources, output=output)
    if polymorphs not in POLYMORPHS:
        raise DatasetError(f"polymorphs must be one of {', '.join(POLYMORPHS)}, got {polymorphs!r}")
    subset = canonical_subset(subset)
    if workers is not None and workers < 1:
        raise DatasetError(f"workers must be at least 1, got {workers}")
    inputs = _inputs(sources, subset, seed, simulator, polymorphs)
    if not force and output.is_file():
        try:
            stored, _ = _read(output, arrays=False)
        except ValueError:
            stored = {}
        if {k: v for k, v in stored.items() if k != "report"} == inputs:
            return BuildReport(output, **stored["report"], up_to_date=True)

    start = time.perf_counter()
    report = BuildReport(output)
    workers = workers or os.cpu_count() or 1
    chosen: dict = {}
    offer = partial(_offer, every=polymorphs == "all")
    for path in sources:
        if _source_kind(path) == "csv":
            _csv_candidates(path, subset, report, progress, chosen, offer)
        else:
            _structure_candidates(path, _source_kind(path), subset, report, workers, progress, chosen, offer)
    candidates = sorted(chosen.values(), key=lambda c: (c.formula, c.rank()))
    report.formulas = len({c.formula for c in candidates})
    jobs = [(c.structure, c.formula, c.spacegroup) for c in candidates]
    rows = []
    simulate = partial(_simulate_candidate, simulator=simulator)
    for candidate, (pattern, spacegroup, structure, reason, message) in zip(
            candidates, _map(simulate, jobs, workers, f"simulating ({simulator})", progress)):
        if reason:
            report.skip(reason, candidate.id, message)
        else:
            rows.append((candidate.formula, pattern, candidate.id, spacegroup, split_of(candidate.formula, seed),
                         structure, np.nan if candidate.e_above_hull is None else candidate.e_above_hull))
    if not rows:
        skips = ", ".join(f"{n} {reason}" for reason, n in report.skipped.items()) or "nothing matched"
        raise DatasetError(f"no usable structure in {', '.join(repr(str(p)) for p in sources)}"
                           + (f" for subset {subset}" if subset else "") + f" ({report.rows} read; skipped: {skips})")

    formulas, patterns, ids, spacegroups, split, structures, e_above_hull = zip(*rows)
    report.kept = len(rows)
    report.splits = {name: split.count(name) for name in SPLITS}
    report.seconds = time.perf_counter() - start
    _write(output, formulas, np.stack(patterns), ids, spacegroups, split, Structures.of(structures), e_above_hull,
           {**inputs, "report": report.stored()})
    return report


def _inputs(sources: list[Path], subset: str | None, seed: int, simulator: str, polymorphs: str) -> dict:
    """The build settings that decide the file's content (compared to decide whether to rebuild); ``source`` is one
    source's description, or a list of them for several."""
    from xrdzoo.xrd import pattern
    from xrdzoo.xrd.simulate import simulator_version

    if not isinstance(seed, int) or isinstance(seed, bool):
        raise DatasetError(f"seed must be a whole number, got {seed!r}")
    version = simulator_version(simulator)  # refuses an unknown simulator before any work
    described = [{"path": str(path.resolve()), "kind": _source_kind(path), "sha256": _source_sha256(path)}
                 for path in sources]
    return {"format": FORMAT, "format_version": FORMAT_VERSION,
            "source": described[0] if len(described) == 1 else described,
            "subset": subset, "selection": SELECTION_RULE if polymorphs == "one" else ALL_POLYMORPHS_RULE, "seed": seed,
            "split": {"fractions": dict(zip(SPLITS, SPLIT_FRACTIONS)), "rule": "sha256(f'{seed}:{formula}')"},
            "pattern": {"n_points": pattern.N_POINTS, "two_theta_range": list(pattern.TWO_THETA_RANGE),
                        "wavelength": pattern.WAVELENGTH, "scale": pattern.FULL_SCALE,
                        "bin_rule": "largest reflection per bin (xrdzoo.xrd.pattern.bin_peaks)"},
            "simulator": simulator, "simulator_version": version, "xrdzoo_version": __version__}


def structures_of(source, keep) -> dict:
    """{formula: (id, Structure)} from a source ``build_dataset`` reads, for the formulas where ``keep(formula)`` is
    true: one structure per formula by the same selection rule; rows that cannot be read are left out."""
    source = Path(source)
    kind = _source_kind(source)
    report, chosen = BuildReport(source), {}
    if kind == "csv":
        _csv_candidates(source, None, report, False, chosen, _offer)
    else:
        _structure_candidates(source, kind, None, report, 1, False, chosen, _offer)
    found = {}
    for formula, candidate in sorted(chosen.items()):
        if keep(formula):
            structure = candidate.structure
            if isinstance(structure, str):
                structure, _ = _read_structure(structure)
            if structure is not None:
                found[formula] = (candidate.id, structure)
    return found


def _source_kind(source: Path) -> str:
    if not source.exists():
        raise FileNotFoundError(f"no structure source at {str(source)!r}; give a CSV of CIFs, a folder of structure "
                                "files or a pymatgen JSON file")
    if source.is_dir():
        return "folder"
    name = source.name.lower().removesuffix(".gz")
    for suffix in ("csv", "json"):
        if name.endswith("." + suffix):
            return suffix
    raise DatasetError(f"cannot tell what {str(source)!r} holds; give a .csv or .csv.gz with a cif column, a folder "
                     "of structure files, or a .json (.json.gz) list of pymatgen Structure dicts")


def _structure_files(folder: Path) -> list[Path]:
    return sorted({p for pattern in STRUCTURE_FILES for p in folder.rglob(pattern) if p.is_file()})


def _source_sha256(source: Path) -> str:
    """sha256 of the source file, or of a folder's structure files (their relative paths and contents)."""
    digest = hashlib.sha256()
    for path in _structure_files(source) if source.is_dir() else [source]:
        if source.is_dir():
            digest.update(str(path.relative_to(source)).encode() + b"\0")
        with path.open("rb") as file:
            for block in iter(lambda: file.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


@dataclass
class _Candidate:
    """One structure that may represent its formula; ``structure`` is CIF text (CSV rows) or a pymatgen Structure."""

    id: str
    formula: str
    nsites: int
    e_above_hull: float | None
    spacegroup: int | None
    structure: object

    def rank(self) -> tuple:
        """Smaller is better: the selection rule."""
        return (self.e_above_hull is None, self.e_above_hull or 0.0, self.nsites, _natural(self.id))


def _natural(text: str) -> tuple:
    """A key that orders "mp-9" before "mp-10"."""
    return tuple((0, int(part), "") if part.isdigit() else (1, 0, part) for part in re.split(r"(\d+)", text) if part)


def _offer(chosen: dict, candidate: _Candidate, every: bool = False) -> None:
    """Keep the candidate if it is the best of its formula so far (``chosen`` by formula), or, with ``every``, if its
    id is new (``chosen`` by id)."""
    key = candidate.id if every else candidate.formula
    best = chosen.get(key)
    if best is None or (not every and candidate.rank() < best.rank()):
        chosen[key] = candidate


def _keep(formula: str, subset: str | None, item: str, report: BuildReport) -> bool:
    """Whether a formula is in the subset; a formula that does not parse is skipped and counted."""
    try:
        return in_subset(formula, subset)
    except ValueError as error:
        report.skip("bad_formula", item, str(error))
        return False


def _csv_candidates(path: Path, subset: str | None, report: BuildReport, progress: bool, chosen: dict, offer) -> None:
    """Offer each row of a formula in the subset to ``chosen`` (``offer(chosen, candidate)``), from the CSV columns
    alone (no CIF is parsed here)."""
    from tqdm.auto import tqdm

    csv.field_size_limit(2**31 - 1)  # a CIF can be longer than the csv module's default field limit
    opener = gzip.open if path.name.lower().endswith(".gz") else open
    with opener(path, "rt", newline="", encoding="utf-8") as file:
        reader = csv.DictReader(file)
        missing = [c for c in CSV_COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise DatasetError(f"{str(path)!r} lacks column(s) {', '.join(missing)}; a structure CSV needs "
                             f"{', '.join(CSV_COLUMNS)} (e_above_hull and spacegroup optional)")
        for line, row in enumerate(tqdm(reader, desc="reading rows", unit=" rows", disable=not progress), start=2):
            report.rows += 1
            item = row["material_id"] or f"line {line}"
            if not _keep(row["formula"], subset, item, report):
                continue
            candidate = _candidate(report, item, row["formula"], row["nsites"], row, row["cif"], "nsites, ")
            if candidate is not None:
                offer(chosen, candidate)


def _candidate(report: BuildReport, item: str, formula: str, nsites, extra: dict, source,
               numbers: str = "") -> _Candidate | None:
    """The candidate of one row or structure (its optional numbers from ``extra``), or None, skipped as a bad row,
    where ``nsites``, e_above_hull or spacegroup is not a number."""
    try:
        return _Candidate(item, formula, int(nsites), _number(extra.get("e_above_hull"), float),
                          _number(extra.get("spacegroup"), int), source)
    except (TypeError, ValueError) as error:
        report.skip("bad_row", item, f"{error} ({numbers}e_above_hull and spacegroup must be numbers)")
        return None


def _number(value, kind):
    """``kind(value)``, or None for a missing or empty value."""
    return None if value is None or str(value).strip() == "" else kind(value)


def _structure_candidates(source: Path, kind: str, subset: str | None, report: BuildReport, workers: int,
                          progress: bool, chosen: dict, offer) -> None:
    """Read every structure of a folder or JSON file (in the pool) and offer each to ``chosen``, as
    :func:`_csv_candidates`."""
    if kind == "folder":
        items = [(str(p.relative_to(source)), p, {}) for p in _structure_files(source)]
    else:
        items = [(str(entry.get("material_id", i)), entry["structure"], entry) if "structure" in entry
                 else (str(i), entry, {}) for i, entry in enumerate(_json_entries(source))]
    for (item, _, extra), (structure, message) in zip(
            items, _map(_read_structure, [it[1] for it in items], workers, "reading structures", progress)):
        report.rows += 1
        if structure is None:
            report.skip("unreadable", item, message)
            continue
        formula = structure.composition.reduced_formula
        if not _keep(formula, subset, item, report):
            continue
        candidate = _candidate(report, item, formula, len(structure), extra, structure)
        if candidate is not None:
            offer(chosen, candidate)


def _json_entries(path: Path) -> list[dict]:
    opener = gzip.open if path.name.lower().endswith(".gz") else open
    try:
        with opener(path, "rt", encoding="utf-8") as file:
            entries = json.load(file)
    except (json.JSONDecodeError, UnicodeDecodeError, gzip.BadGzipFile) as error:
        raise DatasetError(f"{str(path)!r} is not JSON ({error}); give a list of pymatgen Structure dicts") from error
    if not isinstance(entries, list) or not all(isinstance(entry, dict) for entry in entries):
        raise DatasetError(f"{str(path)!r} should hold a JSON list of pymatgen Structure dicts (Structure.as_dict()) "
                         'or of {"structure": ..., "material_id": ...} objects')
    return entries


# --- the work done in the process pool ----------------------------------------------------------------------------

def _map(function, items: list, workers: int, desc: str, progress: bool):
    """``function`` over ``items``, results in order, in a pool of ``workers`` processes (inline for one)."""
    from concurrent.futures import ProcessPoolExecutor

    from tqdm.auto import tqdm

    with tqdm(total=len(items), desc=desc, unit=" structures", disable=not progress) as bar:
        if workers == 1 or len(items) < 2:
            for item in items:
                yield function(item)
                bar.update()
            return
        chunk = max(1, min(64, len(items) // (8 * workers)))
        with ProcessPoolExecutor(min(workers, len(items))) as pool:
            for result in pool.map(function, items, chunksize=chunk):
                bar.update()
                yield result


def _read_structure(item):
    """(Structure, None) from what :func:`xrdzoo.xrd.simulate.read_structure` reads (a file path, CIF text, a
    Structure dict); (None, message) if it cannot be read: one unreadable row, not a failed build."""
    from xrdzoo.xrd.simulate import read_structure

    try:
        if isinstance(item, str):  # CIF text of a CSV row: pymatgen's own P1 CIFs are read fast
            fast = _pymatgen_p1(item)
            if fast is not None:
                return fast, None
        return read_structure(item), None
    except InputError as error:
        return None, first_line(error, named=True)


_CIF_CELL = re.compile(r"^_cell_(length_a|length_b|length_c|angle_alpha|angle_beta|angle_gamma)\s+(\S+)\s*$", re.M)
_CIF_SITE_COLUMNS = ["_atom_site_type_symbol", "_atom_site_label", "_atom_site_symmetry_multiplicity",
                     "_atom_site_fract_x", "_atom_site_fract_y", "_atom_site_fract_z", "_atom_site_occupancy"]


def _pymatgen_p1(text: str):
    """The Structure pymatgen's CIF parser makes of a P1, fully ordered CIF that pymatgen itself wrote (as the shared
    CSVs hold), read ten times faster; None for any other CIF (then pymatgen reads it). The same sites in the same
    order, the same floats: coordinates near 1/3 and 2/3 rounded as pymatgen does, then wrapped into [0, 1)."""
    from pymatgen.core import Lattice, Structure

    if not text.startswith("# generated using pymatgen") or "'x, y, z'" not in text or text.count("loop_") != 2:
        return None
    cell = dict(_CIF_CELL.findall(text))
    lines = text[text.rindex("loop_"):].split("\n")[1:]
    rows = [line.split() for line in lines[7:] if line.strip()]
    if (len(cell) != 6 or [line.strip() for line in lines[:7]] != _CIF_SITE_COLUMNS or not rows
            or any(len(row) != 7 or row[2] != "1" or row[6] != "1" for row in rows)):
        return None
    coords = np.array([[float(v) for v in row[3:6]] for row in rows])
    for ideal in (1 / 3, 2 / 3):  # CifParser's frac_tolerance rule (1e-4), the later ideal winning
        coords[np.abs(coords / ideal - 1) <= 1e-4] = ideal
    coords -= np.floor(coords)
    apart = coords[:, None] - coords[None]
    apart -= np.round(apart)
    if (np.abs(apart).max(-1) + 2 * np.eye(len(rows)) < 1e-4).any():
        return None  # sites pymatgen would merge
    lattice = Lattice.from_parameters(*(float(cell[key]) for key in (
        "length_a", "length_b", "length_c", "angle_alpha", "angle_beta", "angle_gamma")))
    if min(lattice.d_hkl(hkl) for hkl in ((1, 0, 0), (0, 1, 0), (0, 0, 1))) < 0.01:
        return None  # pymatgen refuses it, with its message
    return Structure(lattice, [row[0] for row in rows], coords)


def _simulate_candidate(job, simulator: str):
    """(pattern, space group, cell, None, None) for one chosen structure (the cell as :func:`cell_of` gives it), or (None, 0, None, reason, message)
    if unusable."""
    from xrdzoo.xrd.simulate import simulate

    structure, formula, spacegroup = job
    if isinstance(structure, str):
        structure, message = _read_structure(structure)
        if structure is None:
            return None, 0, None, "unreadable", message
    if structure.composition.reduced_formula != formula:
        return (None, 0, None, "formula_mismatch",
                f"the structure is {structure.composition.reduced_formula}, not {formula}")
    if not structure.is_ordered:  # the simulators take disorder, but a dataset's cells hold one element per site
        return (None, 0, None, "partial_occupancy", f"{formula} has partial occupancy or mixed sites; datasets hold "
                "ordered structures (order it first, e.g. with pymatgen's OrderDisorderedStructureTransformation)")
    try:
        pattern = simulate([structure], simulator)[0]
    except Exception as error:  # a SimulationError carries a reason; anything else is still one row, counted
        return None, 0, None, getattr(error, "reason", "simulation_failed"), first_line(error, named=True)
    return pattern, _spacegroup(structure) if spacegroup is None else spacegroup, cell_of(structure), None, None


def _spacegroup(structure) -> int:
    """International space-group number at symprec 0.1 (as the shared CSV's column), or 0 if spglib fails."""
    from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # spglib's deprecation notices about its own error handling
            return SpacegroupAnalyzer(structure, symprec=0.1).get_space_group_number()
    except Exception:  # spglib gives up on some cells; the space group is metadata, the pattern is still good
        return 0


# --- the file -----------------------------------------------------------------------------------------------------

def _write(output: Path, formulas, patterns, ids, spacegroups, split, structures: Structures, e_above_hull,
           settings: dict) -> None:
    """Write the ``.npz`` atomically (a temporary file renamed over ``output``)."""
    with atomic_path(output) as partial, partial.open("wb") as file:
        np.savez_compressed(file, formulas=np.array(formulas, dtype=str), ids=np.array(ids, dtype=str),
                            patterns=np.asarray(patterns, dtype=np.float32),
                            spacegroups=np.array(spacegroups, dtype=np.int16), split=np.array(split, dtype="<U5"),
                            e_above_hull=np.array(e_above_hull, dtype=np.float32),
                            settings=np.array(json.dumps(settings)),
                            **{name: getattr(structures, name) for name in _STRUCTURE_ARRAYS})


def _skip_lines(skipped: dict[str, int], examples: dict[str, list[str]]) -> list[str]:
    lines = []
    for reason, count in sorted(skipped.items(), key=lambda kv: -kv[1]):
        lines.append(f"  skipped {count:,} {reason}, e.g. {examples.get(reason, ['?'])[0]}")
    return lines
