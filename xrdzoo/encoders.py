"""Composition encoders: chemical formulas to tensors a backbone reads.

Every encoder reduces a formula first (``Composition(formula).reduced_composition``: ``Ba2Ti2O6`` is ``BaTiO3``),
because the model predicts one pattern per reduced formula, and raises :class:`EncodingError` for a formula it
cannot take. Parsed formulas are cached, so encoding the same formulas again (every epoch, every screening batch)
costs only the tensor building.
"""

from __future__ import annotations

import functools
import math
import re
import warnings
from collections.abc import Sequence

import numpy as np
import torch
from pymatgen.core import Composition, Element

from xrdzoo.errors import InputError

ALL_ELEMENTS = tuple(Element.from_Z(z).symbol for z in range(1, 95))  # H..Pu: every element of MP's ternaries
# The paper's 84 columns are not listed in it; ours: H..Pu less the noble gases and Po, At, Fr, Ra.
PAPER_ELEMENTS = tuple(e for e in ALL_ELEMENTS if e not in {"He", "Ne", "Ar", "Kr", "Xe", "Rn", "Po", "At", "Fr", "Ra"})
VOCABULARIES = {"all": ALL_ELEMENTS, "paper": PAPER_ELEMENTS}
DEFAULT_MAX_COUNT = 10  # the paper's; covers 84% of the shared MP ternary formulas (see docs/zoo.md)


class EncodingError(InputError):
    """A formula an encoder cannot take; the message names the formula and the reason."""


KNOWN_SYMBOLS = frozenset(Element.from_Z(z).symbol for z in range(1, 119))
MIN_AMOUNT, MAX_AMOUNT = 1e-3, 1e4  # an element's amount in a formula must lie in this range
# Hydrate (adduct) dots: "·" (or "*", "⋅", "•") always; "." only after an element's count and before a whole
# multiplier and H2O ("CuSO4.5H2O"), else it is a decimal point ("Fe0.5O").
_ADDUCT = re.compile(r"[·⋅•*]")
_ADDUCT_SPACES = re.compile(r"\s*([·⋅•*])\s*")
_HYDRATE_DOT = re.compile(r"(?<=[A-Za-z)\]}])([0-9]*)\.(?=[0-9]*H2O(?![a-z0-9]))")
_MULTIPLIER = re.compile(r"[0-9]+(?:\.[0-9]+)?")
_TOKEN = re.compile(r"(?P<element>[A-Z][a-z]*)|(?P<count>[0-9]+(?:\.[0-9]+)?(?:[eE][-+]?[0-9]+)?)"
                    r"|(?P<open>[(\[{])|(?P<close>[)\]}])|(?P<other>.)")
_ROMAN = re.compile(r"[IVX]+")
_CLOSING = {"(": ")", "[": "]", "{": "}"}


def parse(formula: str) -> tuple[tuple[str, float], ...]:
    """The reduced composition of ``formula`` as ``(element symbol, amount)`` pairs, cached.

    Strict: element symbols in their proper case, counts from 0.001 to 10,000, brackets and hydrates
    (``CuSO4·5H2O``, ``CuSO4.5H2O``), spaces between parts as pymatgen and CIF write them (``Fe2 O3``). Raises
    :class:`EncodingError`, one line saying what is wrong, for anything else: D and T (no isotopes), Roman numerals,
    charges, ``@``, a number after a space (``Fe 2O3``), zero or absurd counts, unknown elements.
    """
    if not isinstance(formula, str):
        raise EncodingError(f"formula {formula!r} is a {type(formula).__name__}, not a string such as 'BaTiO3'")
    return _parse(formula)


@functools.lru_cache(maxsize=1 << 17)
def _parse(formula: str) -> tuple[tuple[str, float], ...]:
    text = formula.strip()
    if not text:
        raise EncodingError(f"empty formula {formula!r}: give a chemical formula such as 'BaTiO3'")
    if any(c.isspace() for c in text):
        text = _joined(text, formula)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pymatgen's notes on elements that lack some property
        return _composition(text, formula)


def _joined(text: str, formula: str) -> str:
    """A formula written with spaces between its parts, as pymatgen reads it and CIF's ``_chemical_formula_sum``
    writes it (``Fe2 O3``, ``Ba Ti O3``), without them; a part after a space that starts with a number is ambiguous
    (``Fe 2O3``: Fe2 O3, or Fe and 2 O3?) and refused, as is one that starts in lower case (``N a``)."""
    parts = _ADDUCT_SPACES.sub(r"\1", text).split()
    loose = next((part for part in parts[1:] if not part[0].isupper() and part[0] not in "([{"), None)
    if loose is not None:
        raise EncodingError(f"formula {formula!r}: the part {loose!r} after a space starts with no element symbol, so "
                            f"it is ambiguous; write each count next to its element, e.g. 'Fe2 O3' or 'Fe2O3'")
    return "".join(parts)


def _composition(text: str, formula: str) -> tuple[tuple[str, float], ...]:
    amounts: dict[str, float] = {}
    for i, part in enumerate(_ADDUCT.split(_HYDRATE_DOT.sub(r"\1·", text))):
        multiplier = _MULTIPLIER.match(part) if i else None
        factor = float(multiplier.group()) if multiplier else 1.0
        unit = part[multiplier.end():] if multiplier else part
        _check_tokens(unit, formula)
        try:
            composition = Composition(unit)
        except (ValueError, KeyError, IndexError, TypeError, OverflowError) as error:
            reason = str(error).splitlines()[0] if str(error) else type(error).__name__
            raise EncodingError(f"malformed formula {formula!r} ({reason})") from None
        for element, amount in composition.items():
            amounts[element.symbol] = amounts.get(element.symbol, 0.0) + factor * float(amount)
    for symbol, amount in amounts.items():
        _check_amount(amount, f"{symbol} amounts to {amount:g}", formula)
    return tuple((e.symbol, float(a)) for e, a in Composition(amounts).reduced_composition.items())


def _check_tokens(unit: str, formula: str) -> None:
    """Refuse what pymatgen would read as something else: D/T, Roman numerals, charges, '@', bad case or counts."""
    if not unit:
        raise EncodingError(f"malformed formula {formula!r}: a hydrate dot must join two formula units, as in "
                            "'CuSO4·5H2O'")
    previous, opened = None, []
    for token in _TOKEN.finditer(unit):
        kind, text = token.lastgroup, token.group()
        if kind == "other":
            raise EncodingError(_unexpected(text, formula))
        if kind == "element" and text in ("D", "T"):
            raise EncodingError(_isotope(unit, token.start(), formula))
        if kind == "element" and text not in KNOWN_SYMBOLS:
            raise EncodingError(f"unknown element {text!r} in formula {formula!r}; element symbols are written "
                                "in their proper case, e.g. Ba, Ti, O")
        if kind == "count":
            if previous is None or previous.lastgroup not in ("element", "close"):
                raise EncodingError(f"malformed formula {formula!r}: the number {text!r} follows no element or "
                                    "bracket")
            _check_amount(float(text), f"count {text} after {previous.group()!r}", formula)
        if kind == "open":
            opened.append(token)
        if kind == "close":
            if not opened or _CLOSING[opened[-1].group()] != text:
                raise EncodingError(f"malformed formula {formula!r}: unbalanced brackets")
            inside = unit[opened.pop().end():token.start()]
            if _ROMAN.fullmatch(inside):
                raise EncodingError(f"formula {formula!r}: ({inside}) is a Roman numeral (oxidation state), not "
                                    "part of a composition; write the composition only, e.g. "
                                    f"{formula.replace(f'({inside})', '')!r}")
        previous = token
    if opened:
        raise EncodingError(f"malformed formula {formula!r}: unbalanced brackets")


def _check_amount(amount: float, what: str, formula: str) -> None:
    if not math.isfinite(amount):
        raise EncodingError(f"formula {formula!r}: {what} is not a finite number")
    if amount == 0:
        raise EncodingError(f"formula {formula!r}: {what} is zero; leave an absent element out")
    if not MIN_AMOUNT <= amount <= MAX_AMOUNT:
        raise EncodingError(f"formula {formula!r}: {what} is outside {MIN_AMOUNT:g}..{MAX_AMOUNT:g}, the amounts "
                            "xrdzoo reads")


def _unexpected(character: str, formula: str) -> str:
    if character in "+-":
        return (f"formula {formula!r} has a sign {character!r}: no charges or negative counts; write the neutral "
                "composition with positive counts, e.g. 'Fe2O3'")
    if character == "@":
        return f"formula {formula!r} has '@' (endohedral notation); write the composition only, e.g. 'Y3NC80'"
    if character == ".":
        return (f"formula {formula!r}: a '.' is either a decimal point between digits (Fe0.5O) or a hydrate dot "
                "before water (CuSO4.5H2O); write other adducts with '·', e.g. 'CuSO4·5H2O·2NH3'")
    if character.islower():
        return (f"formula {formula!r}: {character!r} starts no element; element symbols begin with a capital "
                "letter, e.g. 'Ba', not 'ba'")
    return f"malformed formula {formula!r}: unexpected character {character!r}"


def _isotope(unit: str, at: int, formula: str) -> str:
    """Why D or T is refused, with the element symbols a wrong case may have meant (CDS: Cd; TI: Ti)."""
    letter = unit[at]
    guesses = [unit[at - 1] + letter.lower() if at and unit[at - 1].isupper() else "",
               letter + unit[at + 1].lower() if at + 1 < len(unit) and unit[at + 1].isupper() else ""]
    meant = [g for g in guesses if g in ALL_ELEMENTS]
    return (f"formula {formula!r}: {letter!r} is not read as a hydrogen isotope; write H"
            + (f", or did you mean {' or '.join(meant)}?" if meant else "; element symbols are written in their "
               "proper case"))


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


# Element properties for the magpie encoder: (name, how to read it from a pymatgen Element).
def _valence(shell: str):
    def count(element: Element) -> float:
        # The orbitals after the noble-gas core, e.g. Fe "[Ar].3d6.4s2": s=2, d=6 (Magpie's NsValence...).
        orbitals = [o for o in element.electronic_structure.split(".") if not o.startswith("[")]
        return float(sum(int(o[2:]) for o in orbitals if o[1] == shell))
    return count


MAGPIE_PROPERTIES = {
    "Z": lambda e: e.Z,
    "atomic_mass": lambda e: e.atomic_mass,
    "row": lambda e: e.row,
    "group": lambda e: e.group,
    "mendeleev_no": lambda e: e.mendeleev_no,
    "electronegativity": lambda e: e.X,
    "atomic_radius": lambda e: e.atomic_radius,
    "melting_point": lambda e: e.melting_point,
    "molar_volume": lambda e: e.molar_volume,
    "valence_s": _valence("s"),
    "valence_p": _valence("p"),
    "valence_d": _valence("d"),
    "valence_f": _valence("f"),
}
MAGPIE_STATISTICS = ("mean", "min", "max", "range", "deviation")


@functools.cache
def magpie_table() -> np.ndarray:
    """``(94, n_properties)``: each property of H..Pu standardised to mean 0 and std 1 over these elements.

    A property pymatgen lacks for an element (e.g. noble gases' electronegativity) takes the mean, i.e. 0.
    """
    raw = np.full((len(ALL_ELEMENTS), len(MAGPIE_PROPERTIES)), np.nan)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for i, symbol in enumerate(ALL_ELEMENTS):
            for j, read in enumerate(MAGPIE_PROPERTIES.values()):
                value = read(Element(symbol))
                raw[i, j] = np.nan if value is None else float(value)
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
