"""The single elements' own crystal structures, which the Materials Project data of ``../shared`` do not hold: ASE's
table of reference states (``ase.data.reference_states``: experimental lattices, as Ashcroft and Mermin tabulate
them; fcc Cu at a = 3.61 A, bcc Fe at 2.87 A, white tin), built by ``ase.build.bulk``. Only the lattices the table
gives completely are read (:data:`COMPLETE`): an element it lists without its atoms' positions (orthorhombic S and
Ga, alpha-Mn, trigonal Se and Te), as a molecule (H, N, O, F) or not at all has no reference structure here. Carbon
is the exception: the table gives diamond, but graphite (:data:`GRAPHITE`, built by ASE's graphite lattice) is its
stable form, and the one measured far more often.
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import numpy as np

COMPLETE = ("fcc", "bcc", "hcp", "diamond", "sc", "bct", "rhombohedral")  # ASE builds these from its table alone
REFERENCE_SOURCE = "ASE reference"  # a reference structure's source, where a Materials Project structure names its id
ASE_STATE = "ASE's reference state (experimental)"  # where an element's reference structure comes from
GRAPHITE = {"a": 2.464, "c": 6.711}  # A, hexagonal graphite at room temperature (Trucano and Chen, Nature 258, 136)


class ReferenceCell(NamedTuple):
    """An element's reference structure: lattice rows (A), fractional coordinates, atomic numbers, space group number
    and symbol, its lattice in words (``fcc, a = 3.61 A``) and where it comes from."""

    lattice: np.ndarray
    coords: np.ndarray
    numbers: np.ndarray
    spacegroup: int
    symbol: str
    text: str
    origin: str


@functools.cache
def reference_cell(number: int) -> ReferenceCell | None:
    """The reference structure of element ``number`` (atomic number): ASE's reference state (graphite for carbon), or
    None where ASE's table has no complete one."""
    from ase.build import bulk  # imported where an element is asked
    from ase.data import chemical_symbols, reference_states
    from ase.lattice.hexagonal import Graphite

    if number == 6:
        text = "graphite, a = {a} A, c = {c} A".format(**GRAPHITE)
        return _cell(Graphite(symbol="C", latticeconstant=GRAPHITE), text,
                     "its stable form at room temperature (ASE's reference state is diamond)")
    state = reference_states[number] if 0 < number < len(reference_states) else None
    if not state or state["symmetry"] not in COMPLETE or ("basis" in state and state["basis"] is None):
        return None
    words = {"a": "a = {:.2f} A", "c/a": "c/a = {:.3f}", "alpha": "alpha = {:g} degrees"}
    text = ", ".join([state["symmetry"], *(form.format(state[key]) for key, form in words.items() if key in state)])
    return _cell(bulk(chemical_symbols[number]), text)


def _cell(atoms, text: str, origin: str = ASE_STATE) -> ReferenceCell:
    """The :class:`ReferenceCell` of ASE ``atoms``, its space group found by spglib (through pymatgen)."""
    from pymatgen.core import Lattice, Structure
    from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

    lattice, coords, numbers = np.array(atoms.cell[:]), atoms.get_scaled_positions(), np.array(atoms.numbers)
    symmetry = SpacegroupAnalyzer(Structure(Lattice(lattice), numbers, coords), symprec=0.01)
    return ReferenceCell(lattice, coords, numbers, symmetry.get_space_group_number(),
                         symmetry.get_space_group_symbol(), text, origin)
