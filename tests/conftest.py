"""Shared fixtures: a small dataset built from structures the tests make themselves, and the shared data."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

SHARED = Path(__file__).resolve().parents[2] / "shared"
SHARED_CSV = SHARED / "data" / "mp_ternary_structures.csv.gz"


def prototype_structures():
    """About 40 structures from three prototypes with substituted elements: rock salt, perovskite, spinel."""
    from pymatgen.core import Lattice, Structure

    structures = []
    for (a, x), size in zip(itertools.product(["Li", "Na", "K", "Rb"], ["F", "Cl", "Br", "I"]),
                            itertools.cycle([4.0, 4.6, 5.3, 5.6])):
        structures.append(Structure.from_spacegroup("Fm-3m", Lattice.cubic(size + 0.3 * (a == "K")), [a, x],
                                                    [[0, 0, 0], [0.5, 0.5, 0.5]]))
    for i, (a, b) in enumerate(itertools.product(["Ca", "Sr", "Ba", "Pb"], ["Ti", "Zr", "Sn", "Hf"])):
        structures.append(Structure.from_spacegroup("Pm-3m", Lattice.cubic(3.8 + 0.05 * i), [a, b, "O"],
                                                    [[0, 0, 0], [0.5, 0.5, 0.5], [0.5, 0.5, 0]]))
    for i, (a, b) in enumerate(itertools.product(["Mg", "Zn", "Fe"], ["Al", "Cr", "Ga"])):
        structures.append(Structure.from_spacegroup("Fd-3m", Lattice.cubic(8.0 + 0.05 * i), [a, b, "O"],
                                                    [[0, 0, 0], [0.625, 0.625, 0.625],
                                                     [0.387, 0.387, 0.387]]))
    return structures


@pytest.fixture(scope="session")
def structure_dir(tmp_path_factory) -> Path:
    """A folder of CIF files, one per prototype structure."""
    folder = tmp_path_factory.mktemp("structures")
    for i, structure in enumerate(prototype_structures()):
        structure.to(filename=str(folder / f"s{i:02d}_{structure.composition.reduced_formula}.cif"))
    return folder


@pytest.fixture(scope="session")
def tiny_dataset(structure_dir, tmp_path_factory) -> Path:
    """A dataset file built by xrdzoo itself from the prototype structures."""
    from xrdzoo.data import build_dataset

    path = tmp_path_factory.mktemp("data") / "tiny.npz"
    build_dataset(structure_dir, path, workers=1, progress=False)
    return path


@pytest.fixture
def shared_csv() -> Path:
    """The shared Materials Project CSV; the test is skipped where ../shared is absent."""
    if not SHARED_CSV.is_file():
        pytest.skip("../shared/data is not available on this machine")
    return SHARED_CSV
