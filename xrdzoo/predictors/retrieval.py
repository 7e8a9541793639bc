"""Retrieval: copy the pattern of the nearest training formula of the same formula type. The bar every model must
clear (a structure is shared far more often within a formula type than across)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from xrdzoo.data import Dataset
from xrdzoo.predictors import PredictorBase, strings_tensor, tensor_strings
from xrdzoo.formulas import N_ELEMENTS, Formula, formula_of
from xrdzoo.xrd.pattern import N_POINTS


class FormulaIndex:
    """Training formulas by formula type, for nearest-neighbour search by element-fraction L1 distance.

    Ties are broken by position: the first of the tied formulas in training order (datasets are sorted by formula,
    so the alphabetically first reduced formula) wins.
    """

    def __init__(self, formulas: Sequence[Formula]):
        self.formulas = list(formulas)
        self.fractions = np.zeros((len(self.formulas), N_ELEMENTS))
        sizes = [len(f.numbers) for f in self.formulas]
        rows = np.repeat(np.arange(len(self.formulas)), sizes)
        numbers = np.array([n for f in self.formulas for n in f.numbers], dtype=np.int64)
        counts = np.array([c for f in self.formulas for c in f.counts])
        self.fractions[rows, numbers - 1] = counts / np.repeat([sum(f.counts) for f in self.formulas], sizes)
        by_kind: dict[tuple, list[int]] = {}
        for i, f in enumerate(self.formulas):
            by_kind.setdefault(f.kind, []).append(i)
        self.by_kind = {kind: np.array(rows) for kind, rows in by_kind.items()}

    def nearest(self, query: Formula, k: int = 1, same_kind: bool = True) -> tuple[np.ndarray, np.ndarray]:
        """Rows of the ``k`` nearest training formulas (of the query's type if ``same_kind``; none if that type has
        no training formula) and their L1 distances, nearest first."""
        rows = self.by_kind.get(query.kind, np.zeros(0, np.int64)) if same_kind else np.arange(len(self.formulas))
        columns = np.array(query.numbers) - 1
        # fractions sum to 1, so sum |a - b| = 2 - 2 sum min(a, b), and only the query's elements can share a minimum
        shared = np.minimum(self.fractions[rows[:, None], columns], query.fractions()[columns]).sum(axis=1)
        distance = 2 - 2 * shared
        order = np.lexsort((rows, np.round(distance, 9)))[:k]
        return rows[order], distance[order]

    def closest(self, query: Formula) -> tuple[int, bool]:
        """The row of the nearest training formula of the query's type, else of any type; and whether it is of the
        query's type."""
        rows, _ = self.nearest(query)
        return (int(rows[0]), True) if len(rows) else (int(self.nearest(query, same_kind=False)[0][0]), False)


class Retrieval(PredictorBase):
    """The pattern of the nearest training formula of the same type (element-fraction L1), else of any type."""

    def __init__(self):
        super().__init__()
        self.register_buffer("patterns", torch.zeros(0, N_POINTS))
        self.register_buffer("formulas", torch.zeros(0, dtype=torch.uint8))
        self._index: FormulaIndex | None = None

    @property
    def fitted(self) -> bool:
        return len(self.patterns) > 0

    @property
    def index(self) -> FormulaIndex:
        if self._index is None:
            self._check_fitted()
            self._index = FormulaIndex([formula_of(f) for f in tensor_strings(self.formulas)])
        return self._index

    def fit(self, train: Dataset, val: Dataset | None = None, progress: bool = True) -> dict:
        """Keep the training formulas and patterns (the ground state of each)."""
        train = train.ground_states()
        self.patterns = torch.from_numpy(train.patterns.astype(np.float32))
        self.formulas = strings_tensor(train.formulas)
        self._index = None
        return {}

    def _answer(self, formulas: Sequence[str]) -> tuple[np.ndarray, list[str]]:
        """The retrieved patterns, ``(n, N_POINTS)``, and which training formula each was copied from."""
        names = tensor_strings(self.formulas)
        found = [self.index.closest(formula_of(f)) for f in formulas]
        patterns = self.patterns[[row for row, _ in found]].numpy().reshape(len(found), -1).astype(np.float32)
        return patterns, [f"copied from {names[row]}" + ("" if same else " (no training formula of its type: nearest "
                                                                          "of any type)") for row, same in found]
