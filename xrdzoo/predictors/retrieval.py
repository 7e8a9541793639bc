"""Retrieval: copy the pattern of the nearest training formula of the same formula type. The bar every model must
clear (a structure is shared far more often within a formula type than across)."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

from xrdzoo.data import Dataset
from xrdzoo.arrays import array_strings, strings_array
from xrdzoo.predictors import PredictorBase
from xrdzoo.predictors.chemistry import element_table
from xrdzoo.formulas import N_ELEMENTS, Formula, formula_of
from xrdzoo.xrd.pattern import N_POINTS


class FormulaIndex:
    """Formulas by formula type, for nearest-neighbour search by element-fraction L1 distance, held as arrays: each
    row's atomic numbers and counts in :class:`Formula` order, zero-padded (a hundred thousand structures index in
    a fraction of a second).

    Formulas at the same distance (every AO2 oxide is 2/3 from ZrO2) go chemically closest first: by the L1
    distance of their composition-weighted mean element properties (:func:`element_table`, HfO2 before CdO2), then in
    training order.
    """

    def __init__(self, numbers: np.ndarray, counts: np.ndarray):
        self.numbers, self.counts = np.asarray(numbers, dtype=np.int64), np.asarray(counts, dtype=float)
        self._fractions = self.counts / self.counts.sum(axis=1, keepdims=True)
        self._by_element: _ElementIndex | None = None
        self._means: np.ndarray | None = None
        self._kinds: dict[tuple, tuple[np.ndarray, np.ndarray, _ElementIndex]] = {}
        self._by_formula: dict[tuple, dict[tuple, np.ndarray]] = {}
        order = np.lexsort(self.counts.T[::-1])  # by type (the counts), rows of one type in row order
        kinds = self.counts[order]
        starts = np.flatnonzero(np.r_[len(order) > 0, (kinds[1:] != kinds[:-1]).any(axis=1)])
        bounds = np.r_[starts, len(order)].tolist()
        self.by_kind = {tuple(kinds[a][kinds[a] > 0].tolist()): order[a:b] for a, b in zip(bounds[:-1], bounds[1:])}

    @classmethod
    def of(cls, formulas: Sequence[Formula]) -> FormulaIndex:
        """The index of a list of formulas."""
        width = max((len(f.numbers) for f in formulas), default=1)
        numbers, counts = np.zeros((len(formulas), width), np.int64), np.zeros((len(formulas), width))
        for row, f in enumerate(formulas):
            numbers[row, : len(f.numbers)], counts[row, : len(f.counts)] = f.numbers, f.counts
        return cls(numbers, counts)

    def __len__(self) -> int:
        return len(self.numbers)

    def formula(self, row: int) -> Formula:
        """The formula of ``row``."""
        size = int(np.count_nonzero(self.numbers[row]))
        return Formula(tuple(self.numbers[row, :size].tolist()), tuple(self.counts[row, :size].tolist()))

    def fractions(self, rows: np.ndarray | None = None) -> np.ndarray:
        """Element fractions of ``rows`` (all if None), ``(rows, N_ELEMENTS)`` indexed by atomic number - 1."""
        rows = np.arange(len(self)) if rows is None else np.asarray(rows, dtype=np.int64)
        dense = np.zeros((len(rows), N_ELEMENTS + 1))  # column 0 takes the padding
        np.put_along_axis(dense, self.numbers[rows], self._fractions[rows], axis=1)
        return dense[:, 1:]

    def composition(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The atomic numbers and element fractions of ``rows`` (any shape), each zero-padded along a last axis."""
        return self.numbers[rows], self._fractions[rows]

    def find(self, query: Formula) -> np.ndarray:
        """The rows whose formula is the query, in row order."""
        if query.kind not in self._by_formula:  # grouped once per type: a dictionary lookup after that
            rows, numbers, _ = self._of_kind(query.kind)
            distinct, group = np.unique(numbers, axis=0, return_inverse=True)
            order = np.argsort(group.ravel(), kind="stable")
            ends = np.cumsum(np.bincount(group.ravel(), minlength=len(distinct)))[:-1]
            self._by_formula[query.kind] = dict(zip(map(tuple, distinct.tolist()), np.split(rows[order], ends)))
        return self._by_formula[query.kind].get(query.numbers, np.zeros(0, np.int64))

    def nearest(self, query: Formula, k: int = 1, same_kind: bool = True) -> tuple[np.ndarray, np.ndarray]:
        """Rows of the ``k`` nearest training formulas (of the query's type if ``same_kind``; none if that type has
        no training formula) and their L1 distances, nearest first."""
        # fractions sum to 1, so sum |a - b| = 2 - 2 sum min(a, b), and only the query's elements can share a minimum:
        # only the rows that hold one of them are visited
        share = np.array(query.counts) / sum(query.counts)
        mine = share @ _properties()[np.array(query.numbers) - 1]  # ties: by the mean element properties
        if same_kind:  # a type's rows have as many elements as the query
            rows, _, index = self._of_kind(query.kind)
        else:
            from xrdzoo.predictors.index_kernel import nearest_rows, workspace  # imports numba: only where used

            rounded, unlike, found, distance = nearest_rows(*self._elements(), np.array(query.numbers), share,
                                                            self._mean_properties(), mine, k, *workspace(len(self)))
            if len(found) == k:  # else rows holding none of its elements (at distance 2) are among the k
                order = np.lexsort((found, unlike, rounded))
                return found[order], distance[order]
            rows, index = np.arange(len(self)), self._elements()
        shared = np.zeros(len(rows))
        for number, fraction in zip(query.numbers, share):
            having, their = index.having(number)
            shared[having] += np.minimum(their, fraction)
        distance = 2 - 2 * shared
        rounded = np.round(distance, 9)
        near = (np.arange(len(rows)) if k >= len(rows) else  # the k nearest and every formula tied with the k-th
                np.flatnonzero(rounded <= np.partition(rounded, k - 1)[k - 1]))
        unlike = np.abs(self._mean_properties()[rows[near]] - mine).sum(1)
        order = near[np.lexsort((rows[near], unlike, rounded[near]))][:k]  # ties: chemically closest, then first row
        return rows[order], distance[order]

    def _mean_properties(self) -> np.ndarray:
        """Each row's composition-weighted mean element properties, ``(rows, properties)`` (computed once)."""
        if self._means is None:
            self._means = sum(self._fractions[:, [j]] * _properties()[self.numbers[:, j] - 1]
                              for j in range(self.numbers.shape[1]))
        return self._means

    def _of_kind(self, kind: tuple) -> tuple[np.ndarray, np.ndarray, _ElementIndex]:
        """The rows of a formula type with their atomic numbers and the index of their elements (positions among
        the type's rows; gathered once per type; none for a type no row has)."""
        if kind not in self._kinds:
            if kind in self.by_kind:
                rows = self.by_kind[kind]
                numbers, fractions = self.numbers[rows, : len(kind)], self._fractions[rows, : len(kind)]
            else:  # no row has it (perhaps more elements than any row)
                rows, numbers, fractions = (np.zeros(0, np.int64), np.zeros((0, len(kind)), np.int64),
                                            np.zeros((0, len(kind))))
            self._kinds[kind] = rows, numbers, _ElementIndex.of(numbers, fractions)
        return self._kinds[kind]

    def _elements(self) -> _ElementIndex:
        """The index of every row's elements (built once)."""
        if self._by_element is None:
            self._by_element = _ElementIndex.of(self.numbers, self._fractions)
        return self._by_element

    def closest(self, query: Formula) -> tuple[int, bool]:
        """The row of the nearest training formula of the query's type, else of any type; and whether it is of the
        query's type."""
        rows, _ = self.nearest(query)
        return (int(rows[0]), True) if len(rows) else (int(self.nearest(query, same_kind=False)[0][0]), False)


class _ElementIndex(NamedTuple):
    """Where each element occurs in a table of formulas: for element number ``e``, ``rows[bounds[e]:bounds[e + 1]]``
    (ascending) hold it, at ``fractions`` of the same slice."""

    rows: np.ndarray
    fractions: np.ndarray
    bounds: np.ndarray

    @classmethod
    def of(cls, numbers: np.ndarray, fractions: np.ndarray) -> _ElementIndex:
        """The index of rows of atomic numbers (zero-padded) and their element fractions."""
        flat = numbers.ravel()
        order = np.argsort(flat, kind="stable")
        return cls(order // max(numbers.shape[1], 1), fractions.ravel()[order],
                   np.searchsorted(flat[order], np.arange(N_ELEMENTS + 2)))

    def having(self, number: int) -> tuple[np.ndarray, np.ndarray]:
        """The rows holding element ``number`` and its fraction in each."""
        a, b = self.bounds[number], self.bounds[number + 1]
        return self.rows[a:b], self.fractions[a:b]


@functools.cache
def _properties() -> np.ndarray:
    """:func:`element_table` with 0 where it has no value (padding, atomic number 0, reads its last row at fraction
    0)."""
    return np.nan_to_num(element_table())


class Retrieval(PredictorBase):
    """The pattern of the nearest training formula of the same type (element-fraction L1), else of any type."""

    def __init__(self):
        super().__init__()
        self.register_array("patterns", np.zeros((0, N_POINTS), np.float32))
        self.register_array("formulas", np.zeros(0, np.uint8))
        self._index: FormulaIndex | None = None

    @property
    def fitted(self) -> bool:
        return len(self.patterns) > 0

    def _arrays_changed(self) -> None:
        self._index = None

    @property
    def index(self) -> FormulaIndex:
        if self._index is None:
            self._check_fitted()
            self._index = FormulaIndex.of([formula_of(f) for f in array_strings(self.formulas)])
        return self._index

    def fit(self, train: Dataset, val: Dataset | None = None, progress: bool = True) -> dict:
        """Keep the training formulas and patterns (the ground state of each)."""
        train = train.ground_states()
        self.patterns = train.patterns.astype(np.float32)
        self.formulas = strings_array(train.formulas)
        self._arrays_changed()
        return {}

    def _answer(self, formulas: Sequence[str]) -> tuple[np.ndarray, list[str]]:
        """The retrieved patterns, ``(n, N_POINTS)``, and which training formula each was copied from."""
        names = array_strings(self.formulas)
        found = [self.index.closest(formula_of(f)) for f in formulas]
        patterns = self.patterns[[row for row, _ in found]].reshape(len(found), -1).astype(np.float32)
        return patterns, [f"copied from {names[row]}" + ("" if same else " (no training formula of its type: nearest "
                                                                          "of any type)") for row, same in found]
