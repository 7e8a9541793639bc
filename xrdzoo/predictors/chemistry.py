"""Compositions as the structure-aware members see them: element properties, and the chemically closest way to put
one formula's elements on another's sites (formulas themselves, their types and fractions: ``xrdzoo.formulas``)."""

from __future__ import annotations

import functools
import itertools
import math

import numpy as np

from xrdzoo.formulas import Formula, element_values

N_SCALED = 94  # H..Pu, every element of MP's ternaries: the element table's columns are scaled over these
PROPERTIES = ("electronegativity", "radius", "mendeleev_no", "row", "group", "Z")  # xrdzoo.formulas.element_values


@functools.cache
def element_table() -> np.ndarray:
    """(N_ELEMENTS, len(PROPERTIES)) element properties, each column scaled to unit standard deviation over H..Pu:
    Pauling electronegativity (0 where undefined), atomic radius, Mendeleev number, row, group, Z. NaN where
    pymatgen has no value (radius and Mendeleev number of Lr..Og, which the simulator cannot scatter either)."""
    table = element_properties()
    return table / table[:N_SCALED].std(axis=0)


@functools.cache
def element_properties() -> np.ndarray:
    """The unscaled :func:`element_table`: radii in Angstrom."""
    table = element_values(PROPERTIES).copy()
    table[:, 0] = np.nan_to_num(table[:, 0])  # no electronegativity (noble gases): 0
    return table


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
    costs, assignments = batch_mapping_costs(np.array([query.numbers]), query.counts, templates[None])
    return costs[0], assignments[0]


def batch_mapping_costs(queries: np.ndarray, counts: tuple[float, ...], templates: np.ndarray
                        ) -> tuple[np.ndarray, np.ndarray]:
    """:func:`mapping_costs` for several queries of one formula type (``counts``) at once: their element numbers
    ``(queries, elements)``, each with its templates ``(queries, templates, elements)``; costs ``(queries,
    templates)`` and assignments ``(queries, templates, elements)``."""
    table = element_table()
    distance = np.abs(table[queries - 1][:, None, :, None, :] - table[templates - 1][:, :, None, :, :]).sum(-1)
    # distance: (query, template, query element, template element)
    columns = np.arange(templates.shape[2])
    if _n_permutations(counts) > _MAX_PERMUTATIONS:  # many elements of equal count: an assignment solver
        from scipy.optimize import linear_sum_assignment

        groups = np.array(counts)
        blocked = np.where(groups[:, None] == groups[None, :], 0.0, np.inf)  # only equal counts may swap
        chosen = np.array([[linear_sum_assignment((d + blocked).T)[1] for d in per_query] for per_query in distance])
        costs = np.take_along_axis(distance, chosen[:, :, None, :], 2)[:, :, 0, :]  # [q, t, j]: chosen[q, t, j] on j
        return costs.sum(-1), np.take_along_axis(queries[:, None, :], chosen, 2)
    permutations = np.array(_permutations(counts))  # query element permutation[j] goes to template element j
    costs = distance[:, :, permutations, columns].sum(-1)  # (queries, templates, permutations)
    best = costs.argmin(-1)  # the first of equal costs, as the permutations are listed
    return (np.take_along_axis(costs, best[..., None], -1)[..., 0],
            np.take_along_axis(queries[:, None, :], permutations[best], 2))


_MAX_PERMUTATIONS = 5040  # seven elements of equal count; beyond, the assignment is solved rather than enumerated


def _n_permutations(counts: tuple[float, ...]) -> int:
    return math.prod(math.factorial(len(list(g))) for _, g in itertools.groupby(counts))


@functools.lru_cache(maxsize=1 << 10)
def _permutations(counts: tuple[float, ...]) -> tuple[tuple[int, ...], ...]:
    """Permutations of element positions that only swap elements of equal count (counts are sorted)."""
    groups = [list(g) for _, g in itertools.groupby(range(len(counts)), key=lambda i: counts[i])]
    return tuple(tuple(itertools.chain(*parts)) for parts in itertools.product(*map(itertools.permutations, groups)))
