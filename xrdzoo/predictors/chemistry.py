"""Compositions as the structure-aware members see them: integer counts, formula types, element fractions,
element properties, and the chemically closest way to put one formula's elements on another's sites."""

from __future__ import annotations

import functools
import itertools
import math
import warnings
from dataclasses import dataclass

import numpy as np

from xrdzoo.encoders import parse

N_ELEMENTS = 118  # H..Og: element fractions are vectors indexed by atomic number - 1
N_SCALED = 94  # H..Pu, every element of MP's ternaries: the element table's columns are scaled over these
PROPERTIES = ("electronegativity", "radius", "mendeleev", "row", "group", "Z")


@dataclass(frozen=True)
class Formula:
    """A reduced formula as atomic numbers and counts, its elements ordered by count, then atomic number.

    ``kind`` is the formula type, the sorted counts (``(1, 1, 3)`` for ABC3: pymatgen's anonymized formula);
    two formulas can share a crystal structure only if they share a type.
    """

    numbers: tuple[int, ...]
    counts: tuple[float, ...]

    @property
    def kind(self) -> tuple[float, ...]:
        return self.counts

    def fractions(self) -> np.ndarray:
        """Element fractions, a vector of :data:`N_ELEMENTS` indexed by atomic number - 1."""
        vector = np.zeros(N_ELEMENTS)
        vector[np.array(self.numbers) - 1] = np.array(self.counts) / sum(self.counts)
        return vector


@functools.lru_cache(maxsize=1 << 17)
def formula_of(formula: str) -> Formula:
    """The :class:`Formula` of a chemical formula (``xrdzoo.encoders.parse`` rules and errors); fractional counts
    are scaled to the smallest whole numbers within 1e-3 (``Fe0.5O0.5`` is FeO)."""
    pairs = parse(formula)
    numbers = [_atomic_number(symbol) for symbol, _ in pairs]
    counts = np.array([amount for _, amount in pairs], dtype=float)
    for scale in range(1, 101):
        scaled = counts * scale
        if np.allclose(scaled, np.round(scaled), atol=1e-3 * scale):
            counts = np.round(scaled)
            break
    divisor = functools.reduce(math.gcd, counts.astype(np.int64).tolist()) if np.all(counts == np.round(counts)) else 1
    order = sorted(range(len(numbers)), key=lambda i: (counts[i], numbers[i]))
    return Formula(tuple(numbers[i] for i in order), tuple(float(counts[i] / divisor) for i in order))


def formulas_of_cells(offsets: np.ndarray, numbers: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The reduced formula of every cell of a flat site list (atomic numbers; cell i's sites are
    ``offsets[i]:offsets[i + 1]``) as two arrays, one row per cell: atomic numbers and counts in :class:`Formula`
    order, zero-padded to the most elements of a cell; in a few array operations."""
    offsets, numbers = np.asarray(offsets, dtype=np.int64), np.asarray(numbers, dtype=np.int64)
    cell = np.repeat(np.arange(len(offsets) - 1), np.diff(offsets))
    keys, counts = np.unique(cell * 256 + numbers, return_counts=True)
    cells, elements = keys // 256, keys % 256
    starts = np.flatnonzero(np.r_[True, cells[1:] != cells[:-1]])
    sizes = np.diff(np.r_[starts, len(cells)])
    counts = counts // np.repeat(np.gcd.reduceat(counts, starts), sizes)
    order = np.lexsort((elements, counts, cells))  # per cell: by count, then atomic number
    position = np.arange(len(cells)) - np.repeat(starts, sizes)
    table_numbers = np.zeros((len(offsets) - 1, max(sizes, default=1)), np.int64)
    table_counts = np.zeros(table_numbers.shape)
    table_numbers[cells[order], position], table_counts[cells[order], position] = elements[order], counts[order]
    return table_numbers, table_counts


@functools.cache
def _atomic_number(symbol: str) -> int:
    from pymatgen.core import Element

    return Element(symbol).Z


@functools.cache
def element_table() -> np.ndarray:
    """(N_ELEMENTS, len(PROPERTIES)) element properties, each column scaled to unit standard deviation over H..Pu:
    Pauling electronegativity (0 where undefined), atomic radius, Mendeleev number, row, group, Z. NaN where
    pymatgen has no value (radius and Mendeleev number of the heaviest elements: see :func:`unknown_properties`)."""
    table = element_properties()
    return table / table[:N_SCALED].std(axis=0)


@functools.cache
def element_properties() -> np.ndarray:
    """The unscaled :func:`element_table`: radii in Angstrom."""
    from pymatgen.core import Element

    rows = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pymatgen warns for the noble gases' missing electronegativity
        for z in range(1, N_ELEMENTS + 1):
            e = Element.from_Z(z)
            x = e.X if e.X == e.X else 0.0
            radius = e.atomic_radius or e.atomic_radius_calculated or e.van_der_waals_radius
            mendeleev = e.mendeleev_no
            rows.append([x, np.nan if radius is None else float(radius),
                         np.nan if mendeleev is None else float(mendeleev), e.row, e.group, z])
    return np.array(rows, dtype=float)


def unknown_properties(formula: Formula) -> str | None:
    """Why the element properties of ``formula`` are incomplete (an element pymatgen gives no radius or Mendeleev
    number, e.g. Rf..Og), or None when every one is known."""
    from pymatgen.core import Element

    missing = [Element.from_Z(z).symbol for z in formula.numbers
               if np.isnan(element_properties()[z - 1]).any()]
    return f"has no atomic radius or Mendeleev number for {', '.join(missing)}" if missing else None


def mapping_cost(query: Formula, template: Formula) -> tuple[float, tuple[int, ...]]:
    """The chemically closest assignment of the query's elements to the template's (same type): the summed
    element-property distance and, for each template element, the query element put in its place."""
    if query.kind != template.kind:
        raise ValueError(f"formula types differ: {query.kind} and {template.kind}")
    costs, assignments = mapping_costs(query, np.array([template.numbers]))
    return float(costs[0]), tuple(int(n) for n in assignments[0])


def mapping_costs(query: Formula, templates: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """:func:`mapping_cost` for several templates of the query's type at once, given as their element numbers
    ``(templates, elements)`` in :class:`Formula` order: costs ``(templates,)`` and assignments (same shape)."""
    table = element_table()
    q, t = np.array(query.numbers) - 1, templates - 1
    distance = np.abs(table[q][None, :, None, :] - table[t][:, None, :, :]).sum(-1)  # (template, query el., t. el.)
    columns = np.arange(templates.shape[1])
    if _n_permutations(query.counts) > _MAX_PERMUTATIONS:  # many elements of equal count: an assignment solver
        from scipy.optimize import linear_sum_assignment

        groups = np.array(query.counts)
        blocked = np.where(groups[:, None] == groups[None, :], 0.0, np.inf)  # only equal counts may swap
        chosen = np.array([linear_sum_assignment((d + blocked).T)[1] for d in distance])  # query element per column
        return distance[np.arange(len(templates))[:, None], chosen, columns].sum(-1), np.array(query.numbers)[chosen]
    permutations = np.array(_permutations(query.counts))  # query element permutation[j] goes to template element j
    costs = distance[:, permutations, columns].sum(-1)  # (templates, permutations)
    best = costs.argmin(1)  # the first of equal costs, as the permutations are listed
    return costs[np.arange(len(templates)), best], np.array(query.numbers)[permutations[best]]


_MAX_PERMUTATIONS = 5040  # seven elements of equal count; beyond, the assignment is solved rather than enumerated


def _n_permutations(counts: tuple[float, ...]) -> int:
    return math.prod(math.factorial(len(list(g))) for _, g in itertools.groupby(counts))


@functools.lru_cache(maxsize=1024)
def _permutations(counts: tuple[float, ...]) -> tuple[tuple[int, ...], ...]:
    """Permutations of element positions that only swap elements of equal count (counts are sorted)."""
    groups = [list(g) for _, g in itertools.groupby(range(len(counts)), key=lambda i: counts[i])]
    return tuple(tuple(itertools.chain(*parts)) for parts in itertools.product(*map(itertools.permutations, groups)))
