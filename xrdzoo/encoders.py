"""Composition encoders: chemical formulas to tensors a backbone reads.

Every encoder reads a formula with ``xrdzoo.formulas.parse``, which reduces it (``Ba2Ti2O6`` is ``BaTiO3``), because
the model predicts one pattern per reduced formula, and raises :class:`EncodingError` for a formula it cannot take.
Parsed formulas are cached, so encoding the same formulas again (every epoch, every screening batch) costs only the
tensor building.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import numpy as np
import torch
from pymatgen.core import Element

from xrdzoo.formulas import ALL_ELEMENTS, EncodingError, element_values, parse

# The paper's 84 columns are not listed in it; ours: H..Pu less the noble gases and Po, At, Fr, Ra.
PAPER_ELEMENTS = tuple(e for e in ALL_ELEMENTS if e not in {"He", "Ne", "Ar", "Kr", "Xe", "Rn", "Po", "At", "Fr", "Ra"})
VOCABULARIES = {"all": ALL_ELEMENTS, "paper": PAPER_ELEMENTS}
DEFAULT_MAX_COUNT = 10  # the paper's; covers 84% of the shared MP ternary formulas (see docs/zoo.md)


def _vocabulary(elements: Sequence[str] | str | None) -> tuple[str, ...]:
    """Element symbols from a vocabulary name (``all``, ``paper``), comma-separated symbols, or a list."""
    if elements is None:
        return ALL_ELEMENTS
    if isinstance(elements, str):
        if elements in VOCABULARIES:
            return VOCABULARIES[elements]
        elements = [e.strip() for e in elements.split(",") if e.strip()]
    symbols = tuple(elements)
    unknown = [s for s in symbols if not (isinstance(s, str) and Element.is_valid_symbol(s))]
    if unknown or not symbols or len(set(symbols)) != len(symbols):
        problem = f"unknown symbols {unknown}" if unknown else "none given" if not symbols else "repeated symbols"
        raise ValueError(f"elements: {problem}; give element symbols such as ['Ba', 'Ti', 'O'] "
                         f"or a vocabulary name ({', '.join(VOCABULARIES)})")
    return symbols


def _check_batch(formulas: Sequence[str]) -> None:
    if isinstance(formulas, str):
        raise TypeError(f"encode takes a list of formulas, not the string {formulas!r}; wrap it: [{formulas!r}]")


class _ElementEncoder:
    """Shared by the encoders that give every element of a fixed vocabulary its own column."""

    def __init__(self, elements: Sequence[str] | str | None):
        self.elements = _vocabulary(elements)
        self._columns = {symbol: i for i, symbol in enumerate(self.elements)}

    def _entries(self, formulas: Sequence[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Flat arrays over every element of every formula: formula index, vocabulary column, amount."""
        _check_batch(formulas)
        index, columns, amounts = [], [], []
        for i, formula in enumerate(formulas):
            for symbol, amount in parse(formula):
                column = self._columns.get(symbol)
                if column is None:
                    raise EncodingError(f"element {symbol!r} of formula {formula!r} is not among this encoder's "
                                        f"{len(self.elements)} elements ({self.elements[0]}..{self.elements[-1]})")
                index.append(i)
                columns.append(column)
                amounts.append(amount)
        return np.array(index, np.int64), np.array(columns, np.int64), np.array(amounts, np.float64)


class OneHotEncoder(_ElementEncoder):
    """The paper's count matrix: 1 channel x max_count rows x elements, a 1 at (count, element).

    ``elements``: a list of symbols, comma-separated symbols, or a vocabulary name: ``all`` (H..Pu, 94, the
    default) or ``paper`` (84). ``max_count``: the largest count an element may have in the reduced formula
    (default 10, the paper's). ``preset="paper"`` gives the paper's 84 elements x 10 rows; explicit options override it.
    """

    def __init__(self, elements: Sequence[str] | str | None = None, max_count: int | None = None,
                 preset: str | None = None):
        if preset not in (None, "paper"):
            raise ValueError(f"preset {preset!r} is unknown; the only preset is 'paper' (84 elements x 10 rows)")
        if preset == "paper":
            elements = "paper" if elements is None else elements
            max_count = 10 if max_count is None else max_count
        max_count = DEFAULT_MAX_COUNT if max_count is None else max_count
        if isinstance(max_count, bool) or not isinstance(max_count, int) or max_count < 1:
            raise ValueError(f"max_count must be a positive integer, got {max_count!r}")
        super().__init__(elements)
        self.max_count = max_count
        self.shape = (1, max_count, len(self.elements))

    def encode(self, formulas: Sequence[str]) -> torch.Tensor:
        """``(n, 1, max_count, n_elements)`` float32: 1 in row ``count - 1`` of each element's column."""
        index, columns, amounts = self._entries(formulas)
        counts = np.rint(amounts)
        bad = np.flatnonzero((np.abs(amounts - counts) > 1e-6) | (counts > self.max_count))
        if bad.size:
            i = bad[0]
            formula, symbol, amount = formulas[index[i]], self.elements[columns[i]], amounts[i]
            reason = (f"fractional count {amount:g} of {symbol}; onehot takes integer counts (use fraction or "
                      f"magpie)" if abs(amount - counts[i]) > 1e-6 else
                      f"count {amount:g} of {symbol} exceeds max_count {self.max_count}")
            raise EncodingError(f"formula {formula!r}: {reason}")
        out = np.zeros((len(formulas), *self.shape), np.float32)
        out[index, 0, counts.astype(np.int64) - 1, columns] = 1.0
        return torch.from_numpy(out)

    def config(self) -> dict:
        """Options that rebuild this encoder."""
        return {"elements": list(self.elements), "max_count": self.max_count}


class FractionEncoder(_ElementEncoder):
    """Element fractions: a vector over the elements (H..Pu by default) summing to 1.

    ``elements``: a list of symbols, comma-separated symbols, or a vocabulary name (``all``, ``paper``).
    Fractional formulas such as ``Fe0.5O`` are fine.
    """

    def __init__(self, elements: Sequence[str] | str | None = None):
        super().__init__(elements)
        self.shape = (len(self.elements),)

    def encode(self, formulas: Sequence[str]) -> torch.Tensor:
        """``(n, n_elements)`` float32 of element fractions."""
        index, columns, amounts = self._entries(formulas)
        totals = np.bincount(index, amounts, minlength=len(formulas))
        out = np.zeros((len(formulas), len(self.elements)), np.float32)
        out[index, columns] = amounts / totals[index]
        return torch.from_numpy(out)

    def config(self) -> dict:
        """Options that rebuild this encoder."""
        return {"elements": list(self.elements)}


# The magpie encoder's element properties (``xrdzoo.formulas.ELEMENT_PROPERTIES``), in its feature order.
MAGPIE_PROPERTIES = ("Z", "atomic_mass", "row", "group", "mendeleev_no", "electronegativity", "atomic_radius",
                     "melting_point", "molar_volume", "valence_s", "valence_p", "valence_d", "valence_f")
MAGPIE_STATISTICS = ("mean", "min", "max", "range", "deviation")


@functools.cache
def magpie_table() -> np.ndarray:
    """``(94, n_properties)``: each property of H..Pu standardised to mean 0 and std 1 over these elements.

    A property pymatgen lacks for an element (e.g. noble gases' electronegativity) takes the mean, i.e. 0.
    """
    raw = element_values(MAGPIE_PROPERTIES, len(ALL_ELEMENTS))
    z = (raw - np.nanmean(raw, axis=0)) / np.nanstd(raw, axis=0)
    return np.nan_to_num(z, nan=0.0)


class MagpieEncoder(_ElementEncoder):
    """Magpie-style statistics of element properties (mean, min, max, range, deviation): a 65-vector.

    For each of 13 pymatgen element properties (standardised over H..Pu), the fraction-weighted mean, the min
    and max over the elements present, their range and the fraction-weighted mean absolute deviation.
    """

    def __init__(self):
        super().__init__("all")
        self.feature_names = [f"{stat}_{prop}" for prop in MAGPIE_PROPERTIES for stat in MAGPIE_STATISTICS]
        self.shape = (len(self.feature_names),)

    def encode(self, formulas: Sequence[str]) -> torch.Tensor:
        """``(n, 65)`` float32; features ordered by property, then statistic (see ``feature_names``)."""
        index, columns, amounts = self._entries(formulas)
        n, n_props = len(formulas), len(MAGPIE_PROPERTIES)
        weights = torch.from_numpy(amounts / np.bincount(index, amounts, minlength=n)[index]).unsqueeze(1)
        values = torch.from_numpy(magpie_table()[columns])
        idx = torch.from_numpy(index)
        mean = torch.zeros(n, n_props, dtype=torch.float64).index_add_(0, idx, weights * values)
        spread = idx.unsqueeze(1).expand(-1, n_props)
        low = torch.zeros(n, n_props, dtype=torch.float64).scatter_reduce_(0, spread, values, "amin",
                                                                           include_self=False)
        high = torch.zeros(n, n_props, dtype=torch.float64).scatter_reduce_(0, spread, values, "amax",
                                                                            include_self=False)
        deviation = torch.zeros(n, n_props, dtype=torch.float64).index_add_(
            0, idx, weights * (values - mean[idx]).abs())
        stats = torch.stack([mean, low, high, high - low, deviation], dim=2)  # (n, property, statistic)
        return stats.reshape(n, len(self.feature_names)).float()

    def config(self) -> dict:
        """Options that rebuild this encoder (it has none)."""
        return {}
