"""Chemical formulas, read in one place: the strict reader (:func:`parse`), the reduced :class:`Formula` and its
formula type (anonymous formula), the enumeration of a chemical system's compositions (:func:`compositions`), and
the one element table the encoders and predictors read element properties from (:func:`element_values`).

Encoders, predictors, datasets, identify and screening all read formulas through here, so a formula means the
same everywhere and a bad one is the same one-line :class:`EncodingError` everywhere.
"""

from __future__ import annotations

import functools
import itertools
import math
import re
import warnings
from dataclasses import dataclass

import numpy as np
from pymatgen.core import Composition, Element

from xrdzoo.errors import InputError, first_line

ALL_ELEMENTS = tuple(Element.from_Z(z).symbol for z in range(1, 95))  # H..Pu: every element of MP's ternaries
N_ELEMENTS = 118  # H..Og: element fractions are vectors indexed by atomic number - 1
DEFAULT_MAX_ATOMS = 16  # atoms per formula unit: 85% of the Materials Project ternaries have at most 16
MAX_CANDIDATES = 20_000  # formula units identify may enumerate (Ba,Ti,O up to 16 atoms: 560, 493 once reduced)


class EncodingError(InputError):
    """A formula xrdzoo cannot read, or a zoo member cannot take; the message names the formula and the reason."""


KNOWN_SYMBOLS = frozenset(Element.from_Z(z).symbol for z in range(1, 119))
MIN_AMOUNT, MAX_AMOUNT = 1e-3, 1e4  # an element's amount in a formula must lie in this range
# Hydrate (adduct) dots: "·" (or "*", "⋅", "•") always; "." only after an element's count and before a whole
# multiplier and H2O ("CuSO4.5H2O"), else it is a decimal point ("Fe0.5O").
_ADDUCT = re.compile(r"[·⋅•*]")
_ADDUCT_SPACES = re.compile(r"\s*([·⋅•*])\s*")
_HYDRATE_DOT = re.compile(r"(?<=[A-Za-z)\]}])([0-9]*)\.(?=[0-9]*H2O(?![a-z0-9]))")
_MULTIPLIER = re.compile(r"[0-9]+(?:\.[0-9]+)?")
_ELEMENT, _COUNT = r"(?P<element>[A-Z][a-z]*)", r"(?P<count>[0-9]+(?:\.[0-9]+)?(?:[eE][-+]?[0-9]+)?)"
_TOKEN = re.compile(rf"{_ELEMENT}|{_COUNT}|(?P<open>[(\[{{])|(?P<close>[)\]}}])|(?P<other>.)")
_PAIR = re.compile(rf"{_ELEMENT}{_COUNT}?")  # an element and its count, in a unit without brackets
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
        for symbol, amount in _unit_amounts(unit, formula):
            amounts[symbol] = amounts.get(symbol, 0.0) + factor * amount
    for symbol, amount in amounts.items():
        _check_amount(amount, f"{symbol} amounts to {amount:g}", formula)
    return _reduced(amounts)


def _unit_amounts(unit: str, formula: str) -> list[tuple[str, float]]:
    """(symbol, amount) of one checked formula unit: read here when it has no brackets (most formulas: a hundred
    times faster than pymatgen), else by pymatgen's ``Composition``."""
    if not any(bracket in unit for bracket in "([{"):
        return [(m.group("element"), float(m.group("count") or 1)) for m in _PAIR.finditer(unit)]
    try:
        return [(e.symbol, float(a)) for e, a in Composition(unit).items()]
    except (ValueError, KeyError, IndexError, TypeError, OverflowError) as error:
        raise EncodingError(f"malformed formula {formula!r} ({first_line(error)})") from None


def _reduced(amounts: dict[str, float]) -> tuple[tuple[str, float], ...]:
    """``Composition(amounts).reduced_composition`` as pymatgen makes it, without building one: whole amounts
    divided by their greatest common divisor, except that its special formulas (O2, H2O2, Li2O2, ...) keep a factor
    of 2; any fractional amount leaves them as they are."""
    values = list(amounts.values())
    if not all(abs(v - round(v)) < Composition.amount_tolerance for v in values):
        return tuple(amounts.items())
    factor = math.gcd(*(round(v) for v in values))
    if frozenset((e, round(v) // factor) for e, v in amounts.items()) in _halved_special_formulas():
        factor /= 2
    return tuple((e, v / factor) for e, v in amounts.items())


@functools.cache
def _halved_special_formulas() -> frozenset:
    """pymatgen's special formulas (``Composition.special_formulas``: LiO -> Li2O2, ...) as the element amounts they
    would reduce to."""
    return frozenset(frozenset((e, round(a)) for e, a in Composition(key).get_el_amt_dict().items())
                     for key in Composition.special_formulas)


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


# --- reduced formulas and their types ---------------------------------------------------------------------------

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
    """The :class:`Formula` of a chemical formula (:func:`parse` rules and errors); fractional counts
    are scaled to the smallest whole numbers within 1e-3 (``Fe0.5O0.5`` is FeO)."""
    pairs = parse(formula)
    numbers = [_atomic_number(symbol) for symbol, _ in pairs]
    counts = [float(amount) for _, amount in pairs]
    for scale in range(1, 101):  # as np.allclose(scaled, np.round(scaled), atol=1e-3 * scale), in plain Python: faster
        scaled = [count * scale for count in counts]
        if all(abs(x - round(x)) <= 1e-3 * scale + 1e-5 * abs(round(x)) for x in scaled):
            counts = [float(round(x)) for x in scaled]
            break
    divisor = functools.reduce(math.gcd, [int(c) for c in counts]) if all(c == round(c) for c in counts) else 1
    order = sorted(range(len(numbers)), key=lambda i: (counts[i], numbers[i]))
    return Formula(tuple(numbers[i] for i in order), tuple(counts[i] / divisor for i in order))


@functools.lru_cache(maxsize=None)  # one text per formula, read each time a template of it is named
def formula_text(formula: Formula) -> str:
    """The reduced formula as pymatgen writes it (``compositions`` and identify name formulas so)."""
    return _formula(tuple((Element.from_Z(z).symbol, c) for z, c in zip(formula.numbers, formula.counts)))


def is_charge_balanced(formula: str) -> bool:
    """Whether ``formula`` (whole counts) can be charge-balanced, as ``compositions(..., charge_balanced=True)``
    decides."""
    reduced = formula_of(formula)
    return _balanced([Element.from_Z(z).symbol for z in reduced.numbers], tuple(int(c) for c in reduced.counts))


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
    return Element(symbol).Z


# --- element properties ------------------------------------------------------------------------------------------

def _valence(shell: str):
    def count(element: Element) -> float:
        # The orbitals after the noble-gas core, e.g. Fe "[Ar].3d6.4s2": s=2, d=6 (Magpie's NsValence...).
        orbitals = [o for o in element.electronic_structure.split(".") if not o.startswith("[")]
        return float(sum(int(o[2:]) for o in orbitals if o[1] == shell))
    return count


ELEMENT_PROPERTIES = {  # how each element property is read from a pymatgen Element (None: pymatgen has no value)
    "Z": lambda e: e.Z,
    "atomic_mass": lambda e: e.atomic_mass,
    "row": lambda e: e.row,
    "group": lambda e: e.group,
    "mendeleev_no": lambda e: e.mendeleev_no,
    "electronegativity": lambda e: e.X,
    "atomic_radius": lambda e: e.atomic_radius,
    "radius": lambda e: e.atomic_radius or e.atomic_radius_calculated or e.van_der_waals_radius,
    "melting_point": lambda e: e.melting_point,
    "molar_volume": lambda e: e.molar_volume,
    "valence_s": _valence("s"),
    "valence_p": _valence("p"),
    "valence_d": _valence("d"),
    "valence_f": _valence("f"),
}


@functools.cache
def element_values(names: tuple[str, ...], last: int = N_ELEMENTS) -> np.ndarray:
    """The element table: ``(last, len(names))``, the named :data:`ELEMENT_PROPERTIES` of the elements from H to
    atomic number ``last``, as pymatgen gives them, NaN where it has none (noble gases' electronegativity). Shared:
    callers copy before changing it."""
    table = np.full((last, len(names)), np.nan)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pymatgen's notes on the properties it lacks
        for z in range(1, last + 1):
            element = Element.from_Z(z)
            for j, name in enumerate(names):
                value = ELEMENT_PROPERTIES[name](element)
                table[z - 1, j] = np.nan if value is None else float(value)
    return table


# --- the compositions of a chemical system -----------------------------------------------------------------------

def compositions(elements: list[str], max_atoms: int = DEFAULT_MAX_ATOMS, charge_balanced: bool = False) -> list[str]:
    """Every reduced formula with each of ``elements`` present and at most ``max_atoms`` atoms per formula unit,
    sorted; with ``charge_balanced``, only those pymatgen's ``Composition.oxi_state_guesses`` can balance."""
    elements = sorted({e.strip() for e in elements if e.strip()})
    for symbol in elements:
        if not Element.is_valid_symbol(symbol):
            raise InputError(f"{symbol!r} is not an element symbol; give elements like Ba,Ti,O")
    if len(elements) < 2:
        raise InputError("give at least two elements, e.g. --elements Ba,Ti,O")
    if max_atoms < len(elements):
        raise InputError(f"--max-atoms {max_atoms} is fewer than the {len(elements)} elements")
    if math.comb(max_atoms, len(elements)) > MAX_CANDIDATES:  # formula units with every element, before reducing
        raise InputError(f"{len(elements)} elements with up to {max_atoms} atoms give about "
                         f"{math.comb(max_atoms, len(elements)):.3g} candidate compositions, more than the "
                         f"{MAX_CANDIDATES:,} identify predicts; lower --max-atoms")
    formulas = []
    for counts in itertools.product(range(1, max_atoms - len(elements) + 2), repeat=len(elements)):
        if sum(counts) <= max_atoms and math.gcd(*counts) == 1 and (not charge_balanced or
                                                                      _balanced(elements, counts)):
            formulas.append(_formula(tuple(zip(elements, counts))))
    return sorted(formulas)


@functools.lru_cache(maxsize=1 << 16)  # bounded: a pool of 20 elements passes 10^7 count tuples
def _formula(amounts: tuple) -> str:
    return Composition(dict(amounts)).reduced_formula


def _balanced(elements: list[str], counts: tuple[int, ...]) -> bool:
    """Whether pymatgen's ``Composition.oxi_state_guesses()`` finds a solution for these element counts, decided as it
    does (each element's sites take states from its ICSD list, else its common list, mixed valence allowed; the sums
    must reach zero) but without its scoring of every combination, which takes seconds for large counts."""
    *first, last = [_site_sums(element, count) for element, count in zip(elements, counts)]
    totals = {0}
    for sums in first:
        totals = {t + s for t in totals for s in sums}
    return any(-t in last for t in totals)


@functools.lru_cache(maxsize=None)
def _site_sums(element: str, sites: int) -> frozenset:
    """The totals of ``sites`` oxidation states drawn (with repetition) from the element's list as pymatgen uses it."""
    states = Element(element).icsd_oxidation_states or Element(element).common_oxidation_states
    sums = {0}
    for _ in range(sites):
        sums = {t + s for t in sums for s in states}
    return frozenset(sums)


def written(formula: str, order: list[str] | None = None) -> str:
    """A reduced formula as a chemist writes it: elements in ``order`` (then the rest as pymatgen orders them, by
    electronegativity), integer counts, no brackets: ``written("Li(CoO3)2", ["Li", "Co", "O"])`` is ``LiCo2O6``,
    ``written("TiFeO3", ["Fe", "Ti", "O"])`` is ``FeTiO3``."""
    amounts = Composition(formula).reduced_composition.get_el_amt_dict()
    known = [e for e in (order or []) if e in amounts]
    rest = [e for e in sorted(amounts, key=lambda e: Element(e).X) if e not in known]
    return "".join(e + (f"{amounts[e]:g}" if amounts[e] != 1 else "") for e in known + rest)
