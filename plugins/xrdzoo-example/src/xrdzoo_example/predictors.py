"""Predictor ``type_mean``: the mean pattern of the training formulas of the same formula type."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from xrdzoo.arrays import array_strings, strings_array
from xrdzoo.predictors import PredictorBase
from xrdzoo.formulas import formula_of
from xrdzoo.xrd.pattern import full_scale


def _type_name(formula: str) -> str:
    """A formula's type as text, its sorted counts: ``1,1,3`` for BaTiO3 (pymatgen's ABC3)."""
    return ",".join(f"{count:g}" for count in formula_of(formula).kind)


class TypeMean(PredictorBase):
    """Mean pattern of the training formulas of the same formula type (of all of them for a type never seen).

    A deliberately simple zoo member: what a formula type alone says about a pattern.
    """

    def __init__(self):
        super().__init__()
        self.register_array("types", np.zeros(0, np.uint8))  # the type names, as strings_array
        self.register_array("means", np.zeros((0, 1024), np.float32))  # one mean pattern per type, then the overall one
        self.register_array("counts", np.zeros(0, np.int64))  # training formulas behind each mean

    @property
    def fitted(self) -> bool:
        return len(self.means) > 0

    def fit(self, train, val=None, progress: bool = True) -> dict:
        """One mean pattern per formula type of ``train`` (an ``xrdzoo.data.Dataset``), and the overall mean."""
        types = [_type_name(f) for f in train.formulas]
        names = sorted(set(types))
        rows = np.array([names.index(t) for t in types])
        patterns = train.patterns.astype(np.float32)
        self.types = strings_array(names)
        self.means = np.concatenate([np.stack([patterns[rows == i].mean(0) for i in range(len(names))]),
                                     patterns.mean(0, keepdims=True)])
        self.counts = np.array([*np.bincount(rows, minlength=len(names)), len(rows)])
        return {"formula_types": len(names)}  # `xrdzoo train` scores the validation split itself

    def _answer(self, formulas: Sequence[str]) -> tuple[np.ndarray, list[str]]:
        self._check_fitted()  # a one-line error that says how to fit it
        index = {name: i for i, name in enumerate(array_strings(self.types))}
        rows = [index.get(_type_name(f), len(index)) for f in formulas]
        patterns = full_scale(self.means[rows].reshape(len(rows), -1))
        how = [f"mean of {int(self.counts[r])} training patterns of type {_type_name(f)}" if r < len(index)
               else f"type {_type_name(f)} unseen: mean of all {int(self.counts[r])} training patterns"
               for f, r in zip(formulas, rows)]
        return patterns, how
