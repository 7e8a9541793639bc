"""The single elements' own crystal structures, which the Materials Project data of ``../shared`` do not hold.

Two sources. ASE's table of reference states (``ase.data.reference_states``: experimental lattices, as Ashcroft and
Mermin tabulate them; fcc Cu at a = 3.61 A, bcc Fe at 2.87 A, white tin), built by ``ase.build.bulk``, for the
lattices it gives completely (:data:`COMPLETE`). And published structures (:data:`PUBLISHED`), built by pymatgen from
their space group and sites, for the solid elements the table gives without their atoms' positions (orthorhombic S and
Ga, alpha-Mn, trigonal Se and Te, black P, alpha-B, iodine, alpha-U) and for carbon, whose entry is diamond although
graphite is its stable form and the one measured far more often. An element the table lists as a molecule (H, N, O,
F), a liquid or gas at room temperature (Cl, Br) or not at all has no reference structure here.
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import numpy as np

COMPLETE = ("fcc", "bcc", "hcp", "diamond", "sc", "bct", "rhombohedral")  # ASE builds these from its table alone
REFERENCE_SOURCE = "ASE reference"  # an answer's source on ASE's table (a Materials Project structure names its id)
PUBLISHED_SOURCE = "published structure"  # an answer's source on a PUBLISHED structure
ASE_STATE = "ASE's reference state (experimental)"  # where an element's reference structure comes from
AFLOW = "the AFLOW prototype library, Mehl et al., Comput. Mater. Sci. 136, S1 (2017)"


class Published(NamedTuple):
    """A published crystal structure of an element: what it is, its space group (pymatgen's setting), its lattice
    lengths (A; those the space group leaves free), one site of each orbit (fractional) and where it is published."""

    name: str
    group: str
    cell: dict[str, float]
    sites: tuple[tuple[float, float, float], ...]
    reference: str


PUBLISHED = {  # atomic number: the element's structure at room temperature
    5: Published("alpha-rhombohedral boron, B12 icosahedra; the stable beta form has 105 atoms per cell on partly "
                 "filled sites and is not held", "R-3m", {"a": 4.9179, "c": 12.5805},
                 ((0.11886, 0.88114, 0.89133), (0.19686, 0.80314, 0.02432)),
                 "Will and Kiefer, Z. Anorg. Allg. Chem. 627, 2100 (2001)"),
    6: Published("graphite, its stable form, where ASE's table has diamond", "P6_3/mmc", {"a": 2.464, "c": 6.711},
                 ((0, 0, 0.25), (1 / 3, 2 / 3, 0.25)), "Trucano and Chen, Nature 258, 136 (1975)"),
    15: Published("black phosphorus, its stable form", "Cmce", {"a": 3.3136, "b": 10.478, "c": 4.3763},
                  ((0, 0.10168, 0.08056),), "Brown and Rundqvist, Acta Cryst. 19, 684 (1965)"),
    16: Published("alpha-sulfur, S8 rings, its stable form", "Fddd", {"a": 10.4646, "b": 12.866, "c": 24.486},
                  ((0.26915, 0.17232, 0.1736), (0.41777, 0.3519, 0.37906), (0.34098, 0.40522, 0.45118),
                   (0.33905, 0.28261, 0.50447)),  # origin choice 1: A16's sites moved by (1/8, 1/8, 1/8)
                  f"A16 of {AFLOW}"),
    25: Published("alpha-manganese, 58 atoms per cell", "I-43m", {"a": 8.911},
                  ((0, 0, 0), (0.31787, 0.31787, 0.31787), (0.35706, 0.35706, 0.03457), (0.08958, 0.08958, 0.28194)),
                  f"A12 of {AFLOW}"),
    31: Published("alpha-gallium, Ga2 pairs", "Cmce", {"a": 4.523, "b": 7.661, "c": 4.524}, ((0, 0.1549, 0.081),),
                  f"A11 of {AFLOW}"),
    34: Published("trigonal selenium, helical chains", "P3_121", {"a": 4.3662, "c": 4.9536}, ((0.2254, 0, 1 / 3),),
                  "Cherin and Unger, Acta Cryst. 23, 670 (1967)"),
    52: Published("trigonal tellurium, helical chains", "P3_121", {"a": 4.4572, "c": 5.929}, ((0.2633, 0, 1 / 3),),
                  "Adenis, Langer and Lindqvist, Acta Cryst. C45, 941 (1989)"),
    53: Published("solid iodine, I2 molecules", "Cmce", {"a": 7.27, "b": 4.79, "c": 9.79}, ((0, 0.15485, 0.1175),),
                  f"the room-temperature cell of ASE's table, the atoms' positions of A14 of {AFLOW}"),
    92: Published("alpha-uranium", "Cmcm", {"a": 2.8537, "b": 5.8695, "c": 4.9548}, ((0, 0.1025, 0.25),),
                  "Barrett, Mueller and Hitterman, Phys. Rev. 129, 625 (1963)"),
}


class ReferenceCell(NamedTuple):
    """An element's reference structure: lattice rows (A), fractional coordinates, atomic numbers, space group number
    and symbol, its lattice in words (``fcc, a = 3.61 A``), what it is and where it comes from (``origin``) and the
    source an answer on it names."""

    lattice: np.ndarray
    coords: np.ndarray
    numbers: np.ndarray
    spacegroup: int
    symbol: str
    text: str
    origin: str
    source: str


@functools.cache
def reference_cell(number: int) -> ReferenceCell | None:
    """The reference structure of element ``number`` (atomic number): its :data:`PUBLISHED` structure, else ASE's
    reference state, or None where neither has a complete one."""
    from ase.build import bulk  # imported where an element is asked
    from ase.data import chemical_symbols, reference_states
    from pymatgen.core import Lattice, Structure
    from pymatgen.symmetry.groups import SpaceGroup

    if number in PUBLISHED:
        published = PUBLISHED[number]
        a = published.cell["a"]
        hexagonal = SpaceGroup(published.group).crystal_system in ("hexagonal", "trigonal")
        lattice = Lattice.from_parameters(a, published.cell.get("b", a), published.cell.get("c", a), 90, 90,
                                          120 if hexagonal else 90)
        species = [chemical_symbols[number]] * len(published.sites)
        structure = Structure.from_spacegroup(published.group, lattice, species, published.sites)
        text = ", ".join(f"{key} = {value:g} A" for key, value in published.cell.items())
        return _cell(structure, text, f"{published.name} ({published.reference})", PUBLISHED_SOURCE)
    state = reference_states[number] if 0 < number < len(reference_states) else None
    if not state or state["symmetry"] not in COMPLETE or ("basis" in state and state["basis"] is None):
        return None
    words = {"a": "a = {:.2f} A", "c/a": "c/a = {:.3f}", "alpha": "alpha = {:g} degrees"}
    text = ", ".join([state["symmetry"], *(form.format(state[key]) for key, form in words.items() if key in state)])
    atoms = bulk(chemical_symbols[number])
    return _cell(Structure(Lattice(atoms.cell[:]), atoms.numbers, atoms.get_scaled_positions()), text, ASE_STATE,
                 REFERENCE_SOURCE)


def _cell(structure, text: str, origin: str, source: str) -> ReferenceCell:
    """The :class:`ReferenceCell` of a pymatgen ``structure``, its space group found by spglib (through pymatgen)."""
    from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

    symmetry = SpacegroupAnalyzer(structure, symprec=0.01)
    return ReferenceCell(structure.lattice.matrix, structure.frac_coords, np.array(structure.atomic_numbers),
                         symmetry.get_space_group_number(), symmetry.get_space_group_symbol(), text, origin, source)
