"""Doped compounds and solid solutions: a formula with non-integer counts (Ba0.5Sr0.5TiO3, Y0.08Zr0.92O1.96) as a
parent structure with mixed or partially occupied sites.

:func:`parent_of` groups the elements that share a site, so that each group's total is a whole number of sites
(or falls a little short of one: vacancies), with the chemistry the template ranker uses (element-property
distance): Ba0.5Sr0.5TiO3 is (Ba,Sr)TiO3 on the ABO3 type, (Mg0.2Co0.2Ni0.2Cu0.2Zn0.2)O is (Mg,Co,Ni,Cu,Zn)O on
AB. :func:`candidates` is the template member's path for such formulas: it takes the structures the member ranks
first for an end member (a known end-member structure first, as a template member does for any formula), puts the
mixture on their sites with the occupancies as weights, and sets the volume from the fitted per-element volumes
(Vegard's law).
"""

from __future__ import annotations

import functools
import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, NamedTuple

import numpy as np
from pymatgen.core import Composition, Element, Lattice, Structure

from xrdzoo.contracts import Candidate, Cell
from xrdzoo.errors import InputError
from xrdzoo.formulas import N_ELEMENTS, EncodingError, formula_of, formula_text, parse
from xrdzoo.predictors.chemistry import element_properties, element_table
from xrdzoo.predictors.elements import reference_cell
from xrdzoo.predictors.retrieval import FormulaIndex
from xrdzoo.xrd.simulate import simulate_cell

if TYPE_CHECKING:
    from xrdzoo.predictors.template import Template

MIN_OCCUPANCY = 0.8  # a site less filled than this is not read as a vacancy-bearing site
MAX_SCALE = 4  # formula units tried, 1 first: Ba0.25Sr0.25Ti0.5O1.5 is (Ba,Sr)TiO3 at 2
MAX_ELEMENTS = 8  # set partitions of 8 elements: 4,140
ALLOY_ABOVE_HULL = 0.1  # eV/atom: an alloy's mixture goes first on the compounds of its elements this near the hull
ELEMENT_LATTICE_SITES = 2  # an element stands on a compound whose sites, all made it, form at most this many per
# primitive cell (fcc, bcc: 1; hcp, diamond: 2), as most elements' structures do
UNDISTORTED = ("Fm-3m", "Im-3m", "P6_3/mmc", "Fd-3m")  # those lattices undistorted (fcc, bcc, hcp, diamond): an
# element has no ordering to distort its lattice, so these go first among compounds as near the hull
SUBSTITUTE_DISTANCE = 4.5  # series: Ba/Sr 1.8, La/Sr 2.4, Mg/Ni 4.0 are within; Sr/Ti 4.9, Ba/Pb 8.0 are not
_WHOLE = 0.01  # a group total within this of a whole number fills that many sites
_ANION_GROUPS = (16, 17)  # chalcogens and halogens, with N, never share a site with a cation
_ANIONS = {7}


class SolidSolutionError(EncodingError):
    """A fractional formula whose elements cannot be grouped onto the sites of an integer formula type."""


@dataclass(frozen=True)
class Site:
    """One kind of site of the parent: how many per formula unit, and the elements on it (atomic numbers, the
    host, the largest amount, first) with their amounts per formula unit."""

    count: int
    numbers: tuple[int, ...]
    amounts: tuple[float, ...]

    @property
    def occupancies(self) -> np.ndarray:
        """Each element's share of one site (they sum to at most 1: the rest is vacant)."""
        return np.array(self.amounts) / self.count

    @property
    def text(self) -> str:
        """The site's elements and amounts as a formula (Ni0.7Fe0.3)."""
        return "".join(f"{_symbol(n)}{'' if a == 1 else f'{a:g}'}" for n, a in zip(self.numbers, self.amounts))

    @property
    def mixed(self) -> bool:
        """Whether more than one element, or vacancies, share the site."""
        return len(self.numbers) > 1 or self.occupancies.sum() < 1 - 1e-9


@dataclass(frozen=True)
class Parent:
    """A fractional formula as an integer formula type with mixed sites (``sites``, one per group)."""

    sites: tuple[Site, ...]

    @property
    def alloy(self) -> bool:
        """Whether all the elements share one site (Fe0.3Ni0.7): an alloy, answered by :func:`_alloy_cells`."""
        return len(self.sites) == 1

    @property
    def element(self) -> bool:
        """Whether it is a single element (Si), an alloy's limit."""
        return self.alloy and len(self.sites[0].numbers) == 1

    def end_members(self) -> dict[tuple[int, ...], float]:
        """The end members (one element of each site on all of it: that element per site) and their shares of the
        formula (the product of the elements' shares of their sites), the largest first."""
        shares = [np.array(s.amounts) / sum(s.amounts) for s in self.sites]
        choices = itertools.islice(itertools.product(*(range(len(s.numbers)) for s in self.sites)), 256)
        weights = {tuple(s.numbers[i] for s, i in zip(self.sites, c)): float(np.prod([w[i] for w, i in zip(shares, c)]))
                   for c in choices}
        return dict(sorted(weights.items(), key=lambda item: -item[1]))

    def end_member(self, elements: tuple[int, ...]) -> str:
        """The formula of the end member with ``elements`` (one per site)."""
        return "".join(f"{_symbol(n)}{s.count}" for s, n in zip(self.sites, elements))

    def describe(self, elements: tuple[int, ...]) -> str:
        """The mixed sites, e.g. ``Ba0.5Sr0.5 on the Sr site``, named by the end member's ``elements``."""
        return ", ".join(f"{s.text} on the {_symbol(e)}{s.count if s.count > 1 else ''} site"
                         for s, e in zip(self.sites, elements) if s.mixed)


class MixedCell(NamedTuple):
    """A parent's cell on one of the member's structures (:func:`mixed_cells`): its lattice, fractional
    coordinates, atomic numbers and occupancies (a mixed site as one entry per element at the same coordinates), the
    formula of the structure it stands on (the end member; for an alloy, the compound; for an element, the space group
    its sites form), the end member's element on each site, and the template row (the cell None where there is no
    structure to stand on)."""

    lattice: np.ndarray | None
    coords: np.ndarray | None
    numbers: np.ndarray | None
    occupancies: np.ndarray | None
    end: str
    elements: tuple[int, ...]
    row: int | None

    @property
    def cell(self) -> Cell:
        """The lattice, coordinates, numbers and occupancies as a :class:`~xrdzoo.contracts.Cell`."""
        return Cell(self.lattice, self.coords, self.numbers, self.occupancies)


def is_fractional(formula: str) -> bool:
    """Whether a readable formula has a count that is not a whole number (a doped compound, a solid solution)."""
    return any(abs(amount - round(amount)) > 1e-6 for _, amount in _pairs(formula))


def is_element(formula: str) -> bool:
    """Whether a readable formula is a single element (Si, Fe, O2)."""
    return len(_pairs(formula)) == 1


def _pairs(formula: str) -> list[tuple[str, float]]:
    try:
        return parse(formula)
    except EncodingError:
        return []


@functools.lru_cache(maxsize=1 << 14)
def parent_of(formula: str) -> Parent:
    """The parent of a fractional formula: its elements grouped onto sites (see the module's docstring).

    Among the groupings whose totals fill whole sites at the smallest formula unit (1 first, up to
    :data:`MAX_SCALE`) to at least :data:`MIN_OCCUPANCY`, the one with the fewest vacant sites, then the chemically
    closest: the least sum of each guest's amount times its element-property distance to its site's host. Raises
    :class:`SolidSolutionError` if there is none, or if the closest has no mixed or partially occupied site (it is
    a line compound: Na0.5CoO2 is NaCo2O4).
    """
    pairs = parse(formula)
    if len(pairs) > MAX_ELEMENTS:
        raise SolidSolutionError(f"formula {formula!r}: {len(pairs)} elements are too many to group onto sites "
                                 f"(at most {MAX_ELEMENTS})")
    numbers = [Element(symbol).Z for symbol, _ in pairs]
    amounts = [amount for _, amount in pairs]
    for scale in range(1, MAX_SCALE + 1):
        best = min(((cost, sites) for groups in _partitions(list(range(len(pairs))))
                    if (found := _sites(groups, numbers, [a * scale for a in amounts])) for cost, sites in [found]),
                   default=None, key=lambda found: found[0])
        if best is not None and not any(site.mixed for site in best[1]):
            line = "".join(f"{_symbol(site.numbers[0])}{site.count}" for site in best[1])
            raise SolidSolutionError(f"formula {formula!r}: its elements fill whole sites best as the line compound "
                                     f"{_text(line)}, without a mixed site")
        if best is not None:
            return Parent(best[1])
    raise SolidSolutionError(f"formula {formula!r}: no grouping of its elements onto shared sites fills whole sites "
                             f"(to an occupancy of {MIN_OCCUPANCY:g} or more) with at most {MAX_SCALE} formula units")


def parents(formulas: Sequence[str], member: Template) -> tuple[dict[int, Parent], dict[int, str]]:
    """The parents of the fractional formulas among ``formulas`` (doped compounds, solid solutions) by position, and
    by position why each other fractional formula has none (the template member reads it as a line compound). A
    single element that ``member`` holds no structure of is a one-site parent too (:func:`_alloy_cells`)."""
    found, reasons = {}, {}
    for i, formula in enumerate(formulas):
        if is_element(formula) and _known_row(member, formula) is None:
            found[i] = Parent((Site(1, formula_of(formula).numbers, (1.0,)),))
        elif is_fractional(formula):
            try:
                found[i] = parent_of(formula)
            except SolidSolutionError as error:
                reasons[i] = str(error)
    return found, reasons


def candidates(member: Template, parent: Parent, top: int = 1) -> list[Candidate]:
    """The template member's answers for one parent: its :func:`mixed_cells` simulated, each with its template's
    material id and space group and how it was made, unscored (where the end member's type has no template, the end
    member's own answers). A one-site parent whose elements all have reference structures answers first on its
    host's (:func:`_on_host_lattice`), then with ``top - 1`` of those."""
    first = _on_host_lattice(parent)
    if first is None:
        return _substituted(member, parent, top)
    return [first, *(_substituted(member, parent, top - 1) if top > 1 else [])]


def _on_host_lattice(parent: Parent) -> Candidate | None:
    """A one-site parent on the reference structure of its host (the element of the largest share;
    :func:`~xrdzoo.predictors.elements.reference_cell`): a single element as it is, a known structure (score 1); an
    alloy with its mixture on every site and the volume per atom of Vegard's law over its elements' reference
    structures (unscored), as a disordered solid solution keeps its host's lattice. None for a parent of several sites
    or an element without a reference structure."""
    site = parent.sites[0]
    references = [reference_cell(number) for number in site.numbers] if parent.alloy else [None]
    if None in references:
        return None
    host = references[0]
    if parent.element:
        return Candidate(simulate_cell(host.lattice, host.coords, host.numbers), host.spacegroup, host.source,
                         f"known structure of the element {site.text}: {host.origin}, space group {host.spacegroup} "
                         f"({host.symbol}), {host.text}", 1.0, Cell(host.lattice, host.coords, host.numbers))
    shares = np.array(site.amounts) / sum(site.amounts)
    volume = sum(share * abs(np.linalg.det(r.lattice)) / len(r.numbers) for share, r in zip(shares, references))
    sites = len(host.numbers)
    lattice = host.lattice * (volume * sites / abs(np.linalg.det(host.lattice))) ** (1 / 3)
    cell = Cell(lattice, np.repeat(host.coords, len(shares), axis=0), np.tile(site.numbers, sites),
                np.tile(site.occupancies, sites))
    return Candidate(simulate_cell(cell.lattice, cell.coords, cell.numbers, occupancies=cell.occupancies),
                     host.spacegroup, host.source,
                     f"solid solution on its host's lattice: {site.text} on every site of {_symbol(site.numbers[0])}'s "
                     f"reference structure, space group {host.spacegroup} ({host.symbol}), volume by "
                     "Vegard's law over its elements' reference structures", cell=cell)


def _substituted(member: Template, parent: Parent, top: int) -> list[Candidate]:
    """:func:`candidates` made on the member's structures."""
    cells = mixed_cells(member, parent, top)
    if cells[0].row is None:
        end = cells[0].end
        way = (f"element {end}: no structure of it, nor a compound of it with a substitute element whose sites "
               "form a simple lattice; read as a line compound" if parent.element else
               f"solid solution on one site: no structure made of exactly its elements to put {end} on; read as a "
               "line compound" if parent.alloy else f"solid solution on the sites of {_text(end)}")
        return [replace(c, how=f"{way}: {c.how}", score=None) for c in member._line_ranked([end], top)[0]]
    answers = []
    for cell in cells:
        material, group = member.identity(cell.row)
        how = (f"element {parent.sites[0].text} (no structure of it held) on every site of "
               f"{member.describe(cell.row)}: a simple lattice, {cell.end}, "
               "volume rescaled" if parent.element else
               f"solid solution on every site of {cell.end} ({parent.sites[0].text} on each): structure "
               f"{member.describe(cell.row)}, volume rescaled" if parent.alloy else
               f"solid solution on the parent {_text(cell.end)} ({parent.describe(cell.elements)}): template "
               f"{member.describe(cell.row)}, elements substituted, volume by Vegard's law")
        answers.append(Candidate(simulate_cell(cell.lattice, cell.coords, cell.numbers, occupancies=cell.occupancies),
                                 group, material, how, cell=cell.cell))
    return answers


def substituted(formula: str, x: str, y: str, share: float) -> str:
    """``formula`` with a ``share`` of element ``x``'s count given to ``y`` (KCl, Cl, Br, 0.5: KCl0.5Br0.5)."""
    amounts = Composition(formula).get_el_amt_dict()
    return "".join(f"{x}{n * (1 - share):g}{y}{n * share:g}" if e == x else f"{e}{'' if n == 1 else f'{n:g}'}"
                   for e, n in amounts.items())


def substitutes(x: str, y: str) -> bool:
    """Whether elements ``x`` and ``y`` are read as substitutes for one another: both anions or both not, within
    :data:`SUBSTITUTE_DISTANCE` in element properties."""
    a, b = Element(x).Z, Element(y).Z
    table = element_table()
    return _is_anion(a) == _is_anion(b) and np.abs(table[a - 1] - table[b - 1]).sum() <= SUBSTITUTE_DISTANCE


def series(formulas: Sequence[str], step: float) -> list[str]:
    """Solid solutions between pairs of the integer ``formulas`` that differ in one element with the same count
    (BaTiO3 and SrTiO3): the first with a share of that element given to the other's, in steps of ``step``
    (0.1: 0.1 .. 0.9), where the two elements are :func:`substitutes` and the parent puts both on one site; sorted. Shares that give whole counts are left out:
    they read as ordered compounds."""
    if not 0 < step < 1:
        raise InputError(f"the composition step must lie between 0 and 1 (e.g. 0.1), got {step:g}")
    buckets: dict[tuple, list[tuple[str, str]]] = {}
    for formula in formulas:
        amounts = Composition(formula).get_el_amt_dict()
        for x, count in amounts.items():
            buckets.setdefault((tuple(sorted((e, n) for e, n in amounts.items() if e != x)), count), []).append(
                (formula, x))
    shares = step * np.arange(1, math.ceil(1 / step - 1e-9))
    found = set()
    for members in buckets.values():
        for (a, x), (_, y) in itertools.combinations(members, 2):
            if not substitutes(x, y):
                continue
            for share in shares:
                text = substituted(a, x, y, round(float(share), 9))
                parent = _parent_or_none(text) if is_fractional(text) else None
                if parent and any({Element(x).Z, Element(y).Z} <= set(s.numbers) for s in parent.sites):
                    found.add(text)
    return sorted(found)


def _parent_or_none(formula: str) -> Parent | None:
    try:
        return parent_of(formula)
    except SolidSolutionError:
        return None


def mixed_cells(member: Template, parent: Parent, top: int = 1) -> list[MixedCell]:
    """The parent's cells on the end member's first ``top`` structures as ``member`` ranks them
    (:meth:`Template.choose`); one with the template row (and the cell) None where the end member's formula type has
    no template.
    The end member is the first known (a template's own formula), else the one with the largest share of the
    formula; the volume follows Vegard's law (:func:`_volume_per_site`)."""
    if parent.alloy:
        return _alloy_cells(member, parent.sites[0], top)
    ends = {e: (share, _known_row(member, parent.end_member(e))) for e, share in parent.end_members().items()}
    known = [e for e, (_, row) in ends.items() if row is not None]
    elements = (known or list(ends))[0]
    end = parent.end_member(elements)
    site_of, position_of, cells = dict(zip(elements, parent.sites)), {e: j for j, e in enumerate(elements)}, []
    for row, assignment in member.choose([end], top)[0]:
        if assignment is None:
            return [MixedCell(None, None, None, None, end, elements, None)]
        lattice, coords, numbers, _, _ = member.substituted_cell(formula_of(end), row, assignment)
        volume = _volume_per_site(member, parent, ends, row, position_of, assignment)
        lattice = lattice * (volume * len(numbers) / abs(np.linalg.det(lattice))) ** (1 / 3)
        entries = [(j, z, o) for j, n in enumerate(numbers) for z, o in zip(site_of[n].numbers, site_of[n].occupancies)]
        sites, atoms, occupancies = (np.array(column) for column in zip(*entries))
        cells.append(MixedCell(lattice, coords[sites], atoms, occupancies, end, elements, row))
    return cells


def _alloy_cells(member: Template, site: Site, top: int) -> list[MixedCell]:
    """:func:`mixed_cells` of a one-site parent, an alloy (the member holds no structures of single elements): the
    member's structures made of exactly its elements, the mixture on every site (an ordered compound of the same
    elements most often orders the lattice the alloy has), the volume rescaled as a template's; one with the row
    None where it has none. Those within :data:`ALLOY_ABOVE_HULL` of the hull come first (stable or nearly so,
    rather than orderings far from stable), each group nearest in composition first, then lowest above the hull.

    A single element stands on its compounds with one :func:`substitutes` element instead, in the same order (the
    richest in it first), those whose sites, all made it, form a simple lattice (:func:`_element_lattice`), within
    each group (near the hull, then the others) an :data:`UNDISTORTED` one first."""
    query = formula_of(site.text)
    element = site.numbers[0] if len(site.numbers) == 1 else None
    rows = member.rows_made_of(site.numbers) if element is None else np.array(
        [row for other in range(1, N_ELEMENTS + 1) if other != element and substitutes(_symbol(element), _symbol(other))
         for row in member.rows_made_of((element, other))], np.int64)
    fractions = FormulaIndex.of([query]).fractions()
    distance = np.round(np.abs(member.templates.fractions(rows) - fractions).sum(1), 9)
    energy = np.nan_to_num(member.e_above_hull[rows].astype(np.float64), nan=np.inf)
    order = np.lexsort((energy, distance, energy > ALLOY_ABOVE_HULL))
    rows, far = rows[order], energy[order] > ALLOY_ABOVE_HULL
    if element is None:
        rows = rows[:top]
        ends = [formula_text(member.templates.formula(row)) for row in rows]
    else:
        found, best = [], 0  # (far from the hull, distorted, row, its lattice's space group); how many are neither
        for row, beyond in zip(rows, far):
            end = _element_lattice(member, row, element)
            if end:
                found.append((bool(beyond), end not in UNDISTORTED, row, end))
                best += not beyond and end in UNDISTORTED
                if best == top:  # none to come can go before these
                    break
        found = sorted(found, key=lambda f: f[:2])[:top]
        rows, ends = np.array([f[2] for f in found], np.int64), [f[3] for f in found]
    if not len(rows):
        return [MixedCell(None, None, None, None, site.text, site.numbers, None)]
    cells = []
    for row, end, scale in zip(rows, ends, member._scales(query, rows)):
        lattice, coords, numbers, _, _ = member.substituted_cell(query, row, None)
        sites = np.repeat(np.arange(len(numbers)), len(site.numbers))
        cells.append(MixedCell(lattice * scale ** (1 / 3), coords[sites], np.tile(site.numbers, len(numbers)),
                               np.tile(site.occupancies, len(numbers)), end, site.numbers, row))
    return cells


def _element_lattice(member: Template, row: int, element: int) -> str | None:
    """The space group symbol of template ``row`` with ``element`` on every site, where its primitive cell has at
    most :data:`ELEMENT_LATTICE_SITES` sites (Cu3Au's sites are fcc, Fm-3m); else None (spglib through pymatgen, to
    0.1 A)."""
    from pymatgen.symmetry.analyzer import SpacegroupAnalyzer  # imports scipy.special: only where an element is asked

    lattice, coords = member.substituted_cell(formula_of(_symbol(element)), row, None)[:2]
    symmetry = SpacegroupAnalyzer(Structure(Lattice(lattice), [element] * len(coords), coords), symprec=0.1)
    return symmetry.get_space_group_symbol() if len(symmetry.find_primitive()) <= ELEMENT_LATTICE_SITES else None


def _volume_per_site(member: Template, parent: Parent, ends: dict[tuple[int, ...], tuple[float, int | None]],
                     row: int, site: dict[int, int], assignment) -> float:
    """Vegard's law: the end members' volumes per site weighted by their shares of the formula (``ends``: each end
    member's share and its known row, or None); a known end member's (a training formula's) from its own structure,
    another's as ``member`` predicts it on template ``row`` (``assignment``: the chosen end member's element on each
    template element, ``site``: that element's site)."""
    total = 0.0
    for elements, (share, known) in ends.items():
        if known is None:
            swapped = tuple(elements[site[n]] for n in assignment)
            lattice = member.substituted_cell(formula_of(parent.end_member(elements)), row, swapped)[0]
            total += share * abs(np.linalg.det(lattice)) / _sites_of(member, row)
        else:
            total += share * abs(np.linalg.det(member.lattices[known])) / _sites_of(member, known)
    return total / sum(share for share, _ in ends.values())


def _known_row(member: Template, formula: str) -> int | None:
    """The row of ``formula``'s own structure among ``member``'s templates, or None."""
    rows, distances = member.templates.nearest(formula_of(formula))
    return int(rows[0]) if len(rows) and distances[0] == 0 else None


def _sites_of(member: Template, row: int) -> int:
    return int(member.offsets[row + 1] - member.offsets[row])


def _sites(groups: list[list[int]], numbers: list[int], amounts: list[float]
           ) -> tuple[tuple[float, float], tuple[Site, ...]] | None:
    """((vacant sites, chemical distance), sites) of one grouping of the elements at one formula unit, or None if it
    is no parent."""
    table, distance, vacancies, sites = element_table(), 0.0, 0.0, []
    for group in groups:
        if len({_is_anion(numbers[i]) for i in group}) > 1:
            return None
        total = sum(amounts[i] for i in group)
        count = round(total) if abs(total - round(total)) <= _WHOLE else math.ceil(total)
        if count < 1 or total / count < MIN_OCCUPANCY:
            return None
        group = sorted(group, key=lambda i: (-amounts[i], numbers[i]))  # the host first
        host = table[numbers[group[0]] - 1]
        distance += sum(amounts[i] * np.abs(table[numbers[i] - 1] - host).sum() for i in group[1:])
        vacancies += max(count - total, 0.0)
        shares = [amounts[i] * min(1.0, count / total) for i in group]  # a total a hair over `count` fills it
        sites.append(Site(count, tuple(numbers[i] for i in group), tuple(shares)))
    return (round(vacancies, 6), distance), tuple(sorted(sites, key=lambda s: (s.count, _is_anion(s.numbers[0]), s.numbers[0])))


def _partitions(items: list[int]):
    """Every partition of ``items`` into non-empty groups."""
    if not items:
        yield []
        return
    first, rest = items[0], items[1:]
    for partition in _partitions(rest):
        yield [[first], *partition]
        for i in range(len(partition)):
            yield [*partition[:i], [first, *partition[i]], *partition[i + 1:]]


def _is_anion(number: int) -> bool:
    return number in _ANIONS or element_properties()[number - 1, 4] in _ANION_GROUPS


def _text(formula: str) -> str:
    """An integer formula reduced, elements by electronegativity, counts of 1 left out (NaCo2O4)."""
    amounts = Composition(formula).reduced_composition.items()
    return "".join(f"{e.symbol}{'' if a == 1 else f'{a:g}'}" for e, a in sorted(amounts, key=lambda ea: ea[0].X))


@functools.cache
def _symbol(number: int) -> str:
    return Element.from_Z(number).symbol
