"""Encoder ``element_counts``: a formula as the share of each element in it, over a fixed element vocabulary."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from pymatgen.core import Element

from xrdzoo.formulas import EncodingError, parse

ALL_ELEMENTS = tuple(Element.from_Z(z).symbol for z in range(1, 104))  # H .. Lr


class ElementCounts:
    """Element counts divided by the total atom count: one value per element of the vocabulary (default H..Lr).

    ``BaTiO3`` becomes 0.2 at Ba, 0.2 at Ti, 0.6 at O and 0 elsewhere. ``elements`` sets the vocabulary (its
    order is the column order); a formula with an element outside it cannot be encoded.
    """

    def __init__(self, elements: Sequence[str] | None = None):
        self.elements = list(ALL_ELEMENTS if elements is None else elements)
        bad = [e for e in self.elements if not (isinstance(e, str) and Element.is_valid_symbol(e))]
        if bad or not self.elements:
            raise ValueError(f"element_counts: elements must be element symbols such as ['Ba', 'Ti', 'O'], got {bad}")
        if len(set(self.elements)) < len(self.elements):
            raise ValueError("element_counts: elements lists some symbol twice; give each element once")
        self._column = {symbol: i for i, symbol in enumerate(self.elements)}
        self.shape = (len(self.elements),)

    def encode(self, formulas: Sequence[str]) -> torch.Tensor:
        """Float32 tensor ``(n, len(elements))``; raises ``EncodingError`` naming the first formula it cannot take."""
        out = torch.zeros(len(formulas), *self.shape)
        for row, formula in enumerate(formulas):
            for symbol, share in self._shares(formula).items():
                out[row, self._column[symbol]] = share
        return out

    def config(self) -> dict:
        """The options that rebuild this encoder: ``ElementCounts(**encoder.config())``."""
        return {"elements": list(self.elements)}

    def _shares(self, formula: str) -> dict[str, float]:
        try:
            amounts = dict(parse(formula))  # xrdzoo's strict reader: what every encoder should use
        except EncodingError as error:
            raise EncodingError(f"cannot encode {formula!r}: not a chemical formula ({error})") from None
        total = sum(amounts.values())
        outside = sorted(set(amounts) - self._column.keys())
        if outside:
            raise EncodingError(f"cannot encode {formula!r}: {', '.join(outside)} not in the encoder's "
                                f"{len(self.elements)} elements (set elements=[...] to include it)")
        return {symbol: amount / total for symbol, amount in amounts.items()}
