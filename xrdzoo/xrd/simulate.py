"""Powder XRD patterns of crystal structures: a fast vectorised simulator, and pymatgen's as the oracle.

Both follow the same physics (pymatgen's ``XRDCalculator`` with Cu K-alpha over 2-theta 0..180 degrees):
every reciprocal-lattice point inside the limiting sphere of radius 2/wavelength is one reflection; its
structure factor sums the sites' atomic scattering factors (pymatgen's fitted coefficients; on a partially
occupied or mixed site, each species' weighted by its occupancy) times their phases; its intensity is |F|^2
times the Lorentz-polarisation factor; reflections at the same 2-theta (within 1e-5 degrees) are summed into one
peak. ``fast`` does this with a handful of numpy array operations per structure.
"""

from __future__ import annotations

import threading
from contextlib import contextmanager
from functools import cache
from importlib.metadata import version
from typing import Iterable, Sequence

import numpy as np

from xrdzoo.errors import InputError, first_line
from xrdzoo.xrd.pattern import (FULL_SCALE, N_POINTS, TWO_THETA_RANGE, WAVELENGTH, FrameIntensities, Pattern,
                                bin_peaks, lorentz_polarisation)

SIMULATORS = ("fast", "pymatgen")

# pymatgen's merge and cut-off rules (AbstractDiffractionPatternCalculator.TWO_THETA_TOL, SCALED_INTENSITY_TOL).
_MERGE_TOLERANCE = 1e-5  # degrees: reflections whose 2-theta round to the same multiple of this are one peak
_MIN_SCALED_INTENSITY = 1e-3  # peaks at or below this (of 100) are dropped
MAX_SIN_THETA_OVER_LAMBDA = 2.0  # Angstrom^-1: the range of the fitted atomic scattering factors
MAX_SEARCH = 5 * 10**6  # reciprocal-lattice points searched per cell: an 80 A cube at Cu K-alpha, about 0.25 GiB
COMPILED_FROM = 256  # cells from which simulate_cells uses the compiled kernel: its start-up (about a second in a
# fresh process) pays for itself from a few hundred cells


class SimulationError(InputError):
    """A structure that cannot be simulated; ``reason`` is a short key for counting skips
    (``unknown_element``, ``no_peaks``, ``too_large``)."""

    def __init__(self, message: str, reason: str):
        super().__init__(message)
        self.reason = reason


def simulator_version(name: str) -> str:
    """A version string that changes whenever the named simulator's output may change."""
    _check_name(name)
    if name == "pymatgen":
        return f"pymatgen {version('pymatgen')}"
    return f"xrdzoo {version('xrdzoo')} fast (pymatgen {version('pymatgen')} scattering factors)"


def reflections(structure, simulator: str = "fast", wavelength: float = WAVELENGTH) -> Pattern:
    """The peaks of one structure over 2-theta 0..180 degrees (Cu K-alpha, or ``wavelength`` in Angstrom), sorted by
    2-theta, as a :class:`Pattern` (intensities scaled to a largest of 100) whose ``hkls`` label each peak with its
    hkl families (the ``pymatgen`` simulator; ``fast`` gives None).
    Sites may be partially occupied or mixed (a disordered pymatgen ``Structure``): each species scatters with its
    occupancy as weight, as in pymatgen. Raises ``SimulationError`` (a ValueError) for an element without
    scattering factors or no peak.
    """
    _check_name(simulator)
    species = _site_species(structure)
    with one_blas_thread():
        if simulator == "pymatgen":
            return _pymatgen_reflections(structure, wavelength)
        return _fast_reflections(structure, *species, wavelength)


def simulate(structures: Iterable, simulator: str = "fast", progress: bool = False) -> FrameIntensities:
    """Binned patterns, float32 of shape (n, N_POINTS) with each row's largest value 100, of the given structures (peaks
    as they fall in the bins; ``xrdzoo.xrd.pattern.Pattern.resampled`` draws peak profiles). A structure that cannot
    be simulated raises ``SimulationError`` naming its position and formula.
    """
    from tqdm.auto import tqdm

    _check_name(simulator)
    structures = list(structures)
    patterns = np.zeros((len(structures), N_POINTS), dtype=np.float32)
    with one_blas_thread():
        for i, structure in enumerate(tqdm(structures, desc=f"simulating ({simulator})", disable=not progress)):
            try:
                peaks = reflections(structure, simulator)
            except SimulationError as error:
                raise SimulationError(f"structure {i}: {error}", error.reason) from error
            patterns[i] = bin_peaks(peaks.two_theta, peaks.intensities)
    return patterns


def read_structure(source):
    """A crystal structure from a file (CIF, POSCAR and the other formats pymatgen's ``Structure.from_file`` reads),
    CIF text (a string of several lines) or a pymatgen ``Structure.as_dict()`` dict; ``InputError`` (one line) if
    it cannot be read.

    Nothing a file names is imported: pymatgen JSON (``.json``, ``.json.gz``) goes through
    :func:`structure_from_dict`, which takes only Structure, Lattice and Site dictionaries, and YAML (whose pymatgen
    reader decodes what a file names) is refused."""
    import warnings
    from pathlib import Path

    if isinstance(source, dict):
        return structure_from_dict(source)
    text = isinstance(source, str) and "\n" in source.strip()
    name = "the CIF text" if text else repr(str(source))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # pymatgen's CIF parser warns about rounding coordinates
            if text:
                from pymatgen.core import Structure

                return Structure.from_str(source, fmt="cif")
            return _read_structure_file(Path(source))
    except InputError:
        raise
    except Exception as error:  # the parsers raise many kinds
        raise InputError(f"cannot read a structure from {name} ({first_line(error)}); give a CIF, POSCAR or other file "
                         "pymatgen's Structure.from_file reads") from error


def _read_structure_file(path):
    from pymatgen.core import Structure
    from pymatgen.io.registry import get_structure_format

    if not path.is_file():
        raise InputError(f"no structure file at {str(path)!r}")
    kind = get_structure_format(filename=path.name).name
    if kind in ("yaml", "yml"):
        raise InputError(f"{path.name}: YAML structure files are not read (their reader would import what the file "
                         "names); give CIF, POSCAR or pymatgen JSON")
    if kind != "json":
        return Structure.from_file(str(path))
    import json

    from monty.io import zopen

    with zopen(str(path), "rt", encoding="utf-8") as file:
        content = json.load(file)  # plain JSON: no decoder that turns "@module" into an import
    if not isinstance(content, dict):
        raise InputError(f"{path.name} holds a JSON {type(content).__name__}, not one pymatgen Structure dict")
    return structure_from_dict(content)


# The pymatgen classes whose dictionaries make a structure; any other "@module"/"@class" is refused.
_STRUCTURE_TAGS = {"structure": {("pymatgen.core.structure", "Structure"), ("pymatgen.core.structure", "IStructure")},
                   "lattice": {("pymatgen.core.lattice", "Lattice")},
                   "site": {("pymatgen.core.sites", "PeriodicSite"), ("pymatgen.core.sites", "Site")}}


def structure_from_dict(content: dict):
    """A pymatgen ``Structure`` from its ``as_dict()`` form, built from the lattice matrix, the sites' species,
    occupancies, oxidation states and fractional coordinates alone (site properties and labels are left out, so
    nothing in the dictionary is decoded or imported); ``InputError`` for anything else."""
    from pymatgen.core import Element, Lattice, Species, Structure

    try:
        _check_tags(content, "structure")
        _check_tags(content["lattice"], "lattice")
        matrix = _finite(content["lattice"]["matrix"], (3, 3), "the lattice matrix")
        species, coords = [], []
        for site in content["sites"]:
            _check_tags(site, "site")
            occupancy = {}
            for entry in site["species"]:
                symbol, oxidation = str(entry["element"]), entry.get("oxidation_state")
                if not Element.is_valid_symbol(symbol):
                    raise InputError(f"unknown element {symbol!r} on a site")
                key = Element(symbol) if oxidation is None else Species(symbol, float(oxidation))
                occupancy[key] = float(entry["occu"])
            species.append(occupancy)
            coords.append(_finite(site["abc"], (3,), "a site's fractional coordinates"))
        if not species:
            raise InputError("it has no sites")
        return Structure(Lattice(matrix), species, coords)
    except (KeyError, TypeError, ValueError, AttributeError) as error:
        raise InputError(f"not a pymatgen Structure dict (Structure.as_dict()): {first_line(error)}") from None


def _check_tags(content, kind: str) -> None:
    if not isinstance(content, dict):
        raise InputError(f"the {kind} is a {type(content).__name__}, not a dict")
    tags = (content.get("@module"), content.get("@class"))
    if tags != (None, None) and tags not in _STRUCTURE_TAGS[kind]:
        raise InputError(f"the {kind} claims to be {tags[0]}.{tags[1]}; only pymatgen's Structure, Lattice and "
                         "Site dicts are read")


def _finite(values, shape: tuple, what: str) -> np.ndarray:
    array = np.array(values, dtype=float)
    if array.shape != shape or not np.isfinite(array).all():
        raise InputError(f"{what} should be {' x '.join(map(str, shape))} finite numbers")
    return array


@cache
def _blas():
    """The thread pools of the loaded BLAS libraries (found once: the search takes a fraction of a millisecond)."""
    from threadpoolctl import ThreadpoolController

    return ThreadpoolController()


_one_thread = threading.local()


@contextmanager
def one_blas_thread():
    """Run the block with BLAS on one thread: the simulator's matrix products are small, so threads only add overhead.
    Setting the limit costs about a millisecond, as much as simulating a small cell, so a loop over many cells enters
    this once around the loop; nested entries cost nothing."""
    if getattr(_one_thread, "on", False):
        yield
        return
    with _blas().limit(limits=1, user_api="blas"):
        _one_thread.on = True
        try:
            yield
        finally:
            _one_thread.on = False


def _check_name(simulator: str) -> None:
    if simulator not in SIMULATORS:
        raise InputError(f"unknown simulator {simulator!r}; choose one of: {', '.join(SIMULATORS)}")


def _site_species(structure) -> tuple[np.ndarray, list[str], np.ndarray]:
    """Every species on every site as (fractional coordinates (m, 3), element symbols (m,), occupancies (m,)): a
    mixed site gives one entry per species at the same place. Refuses what neither simulator should take: not a
    crystal, no sites, elements without X-ray scattering factors. One pass over the sites (pymatgen's checks cost
    more than fast's whole simulation of a small cell)."""
    from pymatgen.core import IStructure

    if not isinstance(structure, IStructure):
        raise TypeError(f"expected a pymatgen Structure, got {type(structure).__name__}")
    if not len(structure):
        raise _no_peaks(structure.composition.reduced_formula)
    entries = [(i, species.symbol, occupancy) for i, site in enumerate(structure)
               for species, occupancy in site.species.items()]
    sites, symbols, occupancies = zip(*entries)
    missing = set(symbols) - _scattering_table()[0].keys()
    if missing:
        raise SimulationError(f"{structure.composition.reduced_formula}: no X-ray scattering factors for "
                              f"{', '.join(sorted(missing))}", "unknown_element")
    return structure.frac_coords[list(sites)], list(symbols), np.array(occupancies, float)


def _no_peaks(name: str, wavelength: float = WAVELENGTH) -> SimulationError:
    """The error for a structure (named by its formula) without any reflection."""
    return SimulationError(f"{name or 'an empty structure'} yields no diffraction peak between 0 and 180 "
                           f"degrees 2-theta (lattice too small for wavelength {wavelength} A?)", "no_peaks")


# --- the oracle ------------------------------------------------------------------------------------------------

def _pymatgen_reflections(structure, wavelength: float) -> Pattern:
    from pymatgen.analysis.diffraction.xrd import XRDCalculator

    if not len(_reciprocal_points(structure.lattice.matrix, wavelength)[1]):
        raise _no_peaks(structure.composition.reduced_formula, wavelength)  # pymatgen itself fails with "max() arg is an empty sequence"
    pattern = XRDCalculator(wavelength).get_pattern(structure, two_theta_range=TWO_THETA_RANGE)
    labels = tuple(" ".join("(" + " ".join(map(str, family["hkl"])) + ")" for family in peak) for peak in pattern.hkls)
    return Pattern(pattern.x, pattern.y, wavelength, labels)


# --- the fast simulator ----------------------------------------------------------------------------------------

@cache
def _scattering_table() -> tuple[dict[str, int], np.ndarray, np.ndarray]:
    """pymatgen's atomic scattering coefficients as arrays: (symbol -> row, Z per row, (rows, 4, 2) a/b pairs). Read
    from the file its XRD module loads them from, since importing that module takes seconds (matplotlib, scipy)."""
    import json
    from importlib.resources import files

    from pymatgen.core import Element

    params = json.loads(files("pymatgen.analysis.diffraction").joinpath("atomic_scattering_params.json").read_text())
    symbols = sorted(params)
    coefficients = np.array([params[s] for s in symbols], dtype=float)
    return ({s: i for i, s in enumerate(symbols)}, np.array([Element(s).Z for s in symbols], float), coefficients)


@cache
def _symbols_by_z() -> dict[int, str]:
    """Atomic number -> element symbol, for the elements with scattering coefficients."""
    rows, z, _ = _scattering_table()
    return {int(number): symbol for symbol, number in zip(rows, z)}


def unscattered(numbers) -> list[int]:
    """The atomic numbers among ``numbers`` that the fast simulator has no X-ray scattering factors for (beyond Cf)."""
    return sorted(set(map(int, numbers)) - _symbols_by_z().keys())


def _search_box(lattices: np.ndarray, wavelength: float = WAVELENGTH, positions: bool = False
                ) -> tuple[np.ndarray, np.ndarray, float]:
    """Where the reflections of cells (lattice rows, (n, 3, 3)) lie: their reciprocal metrics (n, 3, 3) (|g|^2 =
    hkl . metric . hkl, g = h b1 + k b2 + l b3 with b_i . a_j = delta_ij), the bounds (n, 3) (h_max, k_max, l_max) of
    the box that holds every point with 0 < |g| <= g_max (h in 0..h_max, k in -k_max..k_max, l in -l_max..l_max),
    and the largest |g|^2 that reflects: g_max^2 (a hair more, for rounding), where g_max is the limiting sphere's
    2 / wavelength, at most 4 (sin(theta) / wavelength <= 2, where the scattering factors are fitted: wavelengths
    under 0.5 A lose their highest angles). Refused (``too_large``) when a box would exceed :data:`MAX_SEARCH` points
    (its message starting ``cell i:`` with ``positions``)."""
    g_max = min(2 / wavelength, 2 * MAX_SIN_THETA_OVER_LAMBDA)
    edges = np.linalg.norm(lattices, axis=2)
    # |h| = |g . a1| <= g_max |a1|, and likewise for k and l.
    bounds = np.floor(g_max * edges + 1e-9).astype(np.int64)
    points = (bounds[:, 0] + 1) * (2 * bounds[:, 1] + 1) * (2 * bounds[:, 2] + 1)
    if (points > MAX_SEARCH).any():
        i = int(np.argmax(points > MAX_SEARCH))
        where, size = f"cell {i}: " if positions else "", "x".join(f"{n:.3g}" for n in edges[i])
        raise SimulationError(f"{where}a {size} A cell at {wavelength:g} A means searching {points[i]:.3g} "
                              f"reciprocal-lattice points (about {points[i] * 48 / 2**30:.1f} GiB of memory), more "
                              f"than the {MAX_SEARCH:.0e} xrdzoo allows; use a smaller cell or a longer wavelength",
                              "too_large")
    recip = np.linalg.inv(lattices).transpose(0, 2, 1)  # rows b1, b2, b3 (no 2 pi)
    return recip @ recip.transpose(0, 2, 1), bounds, g_max**2 * (1 + 1e-12)


def _reciprocal_points(lattice: np.ndarray, wavelength: float = WAVELENGTH
                       ) -> tuple[np.ndarray, np.ndarray, tuple[int, int, int]]:
    """One Friedel half of the reciprocal-lattice points inside the limiting sphere (:func:`_search_box`): the Miller
    indices (M, 3) and |g| (M,) sorted by |g|, and the bounds (h_max, k_max, l_max) of the box searched."""
    metrics, bounds, limit = _search_box(np.asarray(lattice, float)[None], wavelength)
    metric, bounds = metrics[0], tuple(int(n) for n in bounds[0])
    h_max, k_max, l_max = bounds
    h = np.arange(0, h_max + 1)[:, None, None]
    k = np.arange(-k_max, k_max + 1)[None, :, None]
    l = np.arange(-l_max, l_max + 1)
    hk_part = metric[0, 0] * h**2 + metric[1, 1] * k**2 + 2 * metric[0, 1] * h * k
    g2 = hk_part + l * (2 * metric[0, 2] * h + 2 * metric[1, 2] * k) + metric[2, 2] * l**2
    keep = g2 <= limit
    # Keep (h, k, l) lexicographically positive: the other half has the same intensities (Friedel's law).
    keep[0, :k_max] = False  # h = 0, k < 0
    keep[0, k_max, : l_max + 1] = False  # h = k = 0, l <= 0
    index = np.nonzero(keep)
    hkl = np.stack([index[0], index[1] - k_max, index[2] - l_max], axis=1)
    g2 = g2[keep]
    order = np.argsort(g2, kind="stable")
    return hkl[order], np.sqrt(g2[order]), bounds


def _phase_sums(frac_coords: np.ndarray, site_element: np.ndarray, occupancies: np.ndarray, hkl: np.ndarray,
                bounds: tuple[int, int, int]) -> np.ndarray:
    """sum over each element's sites of occupancy exp(2 pi i hkl . r), shape (M, elements).

    The phase factorises per axis, exp(2 pi i h x) exp(2 pi i k y) exp(2 pi i l z), so the sums over the whole
    search box come from one matrix product per element, (h k pairs x sites) @ (sites x l): no trigonometry on
    the (reflections x sites) matrix, and BLAS does the work.
    """
    h_max, k_max, l_max = bounds
    x, y, z = frac_coords.T[:, :, None]
    xh = np.exp(2j * np.pi * x * np.arange(0, h_max + 1))  # (N, H)
    yk = np.exp(2j * np.pi * y * np.arange(-k_max, k_max + 1))  # (N, K)
    zl = occupancies[:, None] * np.exp(2j * np.pi * z * np.arange(-l_max, l_max + 1))  # (N, L)
    xy = (xh[:, :, None] * yk[:, None, :]).reshape(len(frac_coords), -1)  # (N, H K)
    hk_row = hkl[:, 0] * (2 * k_max + 1) + hkl[:, 1] + k_max
    l_col = hkl[:, 2] + l_max
    sums = np.empty((len(hkl), site_element.max() + 1), dtype=complex)
    for element in range(sums.shape[1]):
        sites = site_element == element
        sums[:, element] = (xy[sites].T @ zl[sites])[hk_row, l_col]
    return sums


def simulate_cell(lattice: np.ndarray, frac_coords: np.ndarray, numbers: np.ndarray,
                  wavelength: float = WAVELENGTH, occupancies: np.ndarray | None = None) -> FrameIntensities:
    """The binned pattern (N_POINTS,) of a cell given as arrays: lattice rows (3, 3) in Angstrom, fractional
    coordinates (m, 3), atomic numbers (m,) and their occupancies (m,), 1 if None; a mixed site is one entry per
    element at the same coordinates. What template predictors use: no pymatgen Structure is built."""
    by_z = _symbols_by_z()
    missing = unscattered(numbers)
    if missing:
        raise SimulationError(f"no X-ray scattering factors for atomic number(s) {missing}", "unknown_element")
    with one_blas_thread():
        two_theta, intensities = _cell_reflections(
            np.asarray(lattice, float), np.asarray(frac_coords, float), [by_z[int(n)] for n in numbers],
            np.ones(len(numbers)) if occupancies is None else np.asarray(occupancies, float), "the cell", wavelength)
    return bin_peaks(two_theta, intensities)


def simulate_cells(cells: Sequence[tuple], wavelength: float = WAVELENGTH) -> FrameIntensities:
    """The binned patterns (n, N_POINTS) of many cells, each given as :func:`simulate_cell` takes it: (lattice,
    fractional coordinates, atomic numbers) or (lattice, fractional coordinates, atomic numbers, occupancies).

    From :data:`COMPILED_FROM` cells on, numba's compiled kernel (``xrdzoo.xrd.kernel``) simulates them on every CPU
    core, to the same peaks (its first call in a process costs about a second: loading numba and its cached code);
    fewer cells go through :func:`simulate_cell` one by one. A cell that cannot be simulated raises
    ``SimulationError`` naming its position."""
    sizes = np.array([len(cell[2]) for cell in cells], np.int64)
    if (sizes == 0).any():
        raise SimulationError(f"cell {np.argmax(sizes == 0)}: it has no sites", "no_peaks")
    if len(cells) < COMPILED_FROM:
        patterns = np.empty((len(cells), N_POINTS), np.float32)
        for i, (lattice, coords, numbers, *occupancies) in enumerate(cells):
            try:
                patterns[i] = simulate_cell(lattice, coords, numbers, wavelength, *occupancies)
            except SimulationError as error:
                raise SimulationError(f"cell {i}: {error}", error.reason) from error
        return patterns
    from xrdzoo.xrd.kernel import OK, binned_patterns

    table = _rows_by_z()
    rows = table[np.clip(np.concatenate([np.asarray(cell[2], np.int64) for cell in cells]), 0, len(table) - 1)]
    if (rows < 0).any():
        i = np.searchsorted(np.cumsum(sizes), np.argmax(rows < 0), side="right")
        raise SimulationError(f"cell {i}: no X-ray scattering factors for atomic number(s) {unscattered(cells[i][2])}",
                              "unknown_element")
    metrics, bounds, limit = _search_box(np.array([cell[0] for cell in cells], float), wavelength, positions=True)
    occupancies = np.concatenate([np.ones(len(cell[2])) if len(cell) < 4 or cell[3] is None
                                  else np.asarray(cell[3], float) for cell in cells])
    _, z, coefficients = _scattering_table()
    coords = np.concatenate([np.asarray(cell[1], float) for cell in cells])
    patterns, status = binned_patterns(metrics, bounds, limit, np.r_[0, np.cumsum(sizes)], coords,
                                       rows, occupancies, z, coefficients[:, :, 0].copy(), coefficients[:, :, 1].copy(),
                                       wavelength, _MERGE_TOLERANCE, N_POINTS, _MIN_SCALED_INTENSITY)
    if (status != OK).any():
        i = int(np.argmax(status != OK))
        raise SimulationError(f"cell {i}: {_no_peaks('the cell', wavelength)}", "no_peaks")
    return patterns


@cache
def _rows_by_z() -> np.ndarray:
    """Atomic number -> row of the scattering table, -1 for an element without scattering factors."""
    rows, _, _ = _scattering_table()
    table = np.full(max(_symbols_by_z()) + 2, -1, np.int64)
    for number, symbol in _symbols_by_z().items():
        table[number] = rows[symbol]
    return table


def _fast_reflections(structure, frac_coords: np.ndarray, symbols: list[str], occupancies: np.ndarray,
                      wavelength: float) -> Pattern:
    if "U11_cif" in structure.site_properties:
        raise InputError("the fast simulator does not apply anisotropic Debye-Waller factors (U11_cif, ... site "
                         "properties); use simulator='pymatgen' for this structure")
    two_theta, intensities = _cell_reflections(structure.lattice.matrix, frac_coords, symbols, occupancies,
                                               structure.composition.reduced_formula, wavelength)
    return Pattern(two_theta, intensities, wavelength)


def _cell_reflections(lattice: np.ndarray, frac_coords: np.ndarray, symbols: list[str], occupancies: np.ndarray,
                      name: str, wavelength: float):
    hkl, g, bounds = _reciprocal_points(lattice, wavelength)
    if not len(g):
        raise _no_peaks(name, wavelength)
    rows, z, coefficients = _scattering_table()
    element_row = np.array([rows[symbol] for symbol in symbols])
    elements, site_element = np.unique(element_row, return_inverse=True)

    # Reflections whose 2-theta round to the same multiple of the tolerance are one peak, at the group's smallest
    # 2-theta; sorted by |g|, each group is a run starting at its smallest.
    sin_theta = np.minimum(wavelength * g / 2, 1.0)
    two_theta = np.degrees(2 * np.arcsin(sin_theta))
    key = np.round(two_theta / _MERGE_TOLERANCE).astype(np.int64)
    starts = np.r_[True, key[1:] != key[:-1]]
    first, peak = np.flatnonzero(starts), np.cumsum(starts) - 1
    # What depends on |g| alone is computed once per peak (its reflections' |g| agree to 1e-7 relative or better).
    # Atomic scattering factors, s = sin(theta) / wavelength = g / 2: f(s) = Z - 41.78214 s^2 sum_i a_i exp(-b_i s^2).
    s2 = (g[first] / 2) ** 2
    a, b = coefficients[elements, :, 0], coefficients[elements, :, 1]  # (E, 4)
    gaussians = np.exp(np.multiply.outer(s2, -b))  # (peaks, E, 4)
    f = z[elements] - 41.78214 * s2[:, None] * np.einsum("pek,ek->pe", gaussians, a)  # (peaks, E)

    structure_factor = np.einsum("me,me->m", f[peak], _phase_sums(frac_coords, site_element, occupancies, hkl,
                                                                       bounds))
    intensity = (np.add.reduceat(structure_factor.real**2 + structure_factor.imag**2, first)
                 * lorentz_polarisation(sin_theta[first] ** 2))
    two_theta = two_theta[first]
    top = intensity.max()
    if not top > 0:
        raise _no_peaks(name, wavelength)
    scaled = intensity * (FULL_SCALE / top)
    keep = scaled > _MIN_SCALED_INTENSITY
    return two_theta[keep], scaled[keep]
