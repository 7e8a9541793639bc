"""Doped compounds and solid solutions: fractional formulas grouped onto a parent's mixed sites, predicted by a
template member fitted here on the prototype structures (rock salt, perovskite, spinel) and checked against
pymatgen's simulation of the same disordered cell."""

from __future__ import annotations

import numpy as np
import pytest
from pymatgen.core import Composition, Element, Lattice, Structure

from typer.testing import CliRunner

from conftest import prototype_structures
from xrdzoo.checkpoint import save as checkpoint_save
from xrdzoo.cli import app
from xrdzoo.data import build_dataset, load_dataset
from xrdzoo.encoders import EncodingError
from xrdzoo.errors import InputError
from xrdzoo.identify import solid_solutions
from xrdzoo.measured import measured_looking, write_xy
from xrdzoo.metrics import pick_peaks
from xrdzoo.builder import create_predictor
from xrdzoo.formulas import formula_of
from xrdzoo.predictors import solid_solution
from xrdzoo.predictors.elements import reference_cell
from xrdzoo.predictors.solid_solution import (SolidSolutionError, is_element, is_fractional, mixed_cells, parent_of,
                                              series, substitutes)
from xrdzoo.xrd.profiles import Profile
from xrdzoo.xrd.simulate import reflections, simulate, simulate_cell


def sites(formula: str) -> set[tuple[int, tuple[str, ...], tuple[float, ...]]]:
    """The parent's sites as (count, element symbols (host first, then by amount and Z), amounts)."""
    return {(s.count, tuple(Element.from_Z(n).symbol for n in s.numbers), tuple(np.round(s.amounts, 6)))
            for s in parent_of(formula).sites}


@pytest.fixture(scope="module")
def member(tiny_dataset):
    data = load_dataset(tiny_dataset)
    template = create_predictor("template")
    template.fit(data.select("train"), progress=False)
    return template


def test_mixed_elements_share_one_site_of_the_integer_type():
    assert sites("Ba0.5Sr0.5TiO3") == {(1, ("Sr", "Ba"), (0.5, 0.5)), (1, ("Ti",), (1,)), (3, ("O",), (3,))}
    assert sites("(Mg0.2Co0.2Ni0.2Cu0.2Zn0.2)O") == {(1, ("Mg", "Co", "Ni", "Cu", "Zn"), (0.2,) * 5),
                                                     (1, ("O",), (1,))}
    # Li stays on its own site: Ni, Co and Mn are far closer to one another than to Li (not a disordered rock salt)
    assert sites("LiNi0.8Co0.1Mn0.1O2") == {(1, ("Li",), (1,)), (1, ("Ni", "Mn", "Co"), (0.8, 0.1, 0.1)),
                                            (2, ("O",), (2,))}
    assert sites("La0.7Sr0.3MnO3") == {(1, ("La", "Sr"), (0.7, 0.3)), (1, ("Mn",), (1,)), (3, ("O",), (3,))}
    assert sites("Ba0.25Sr0.25Ti0.5O1.5") == sites("Ba0.5Sr0.5TiO3")  # half a formula unit as written
    assert sites("KCl0.5Br0.5") == {(1, ("K",), (1,)), (1, ("Cl", "Br"), (0.5, 0.5))}  # anions mix with anions
    assert sites("GaAs0.7P0.3") == {(1, ("Ga",), (1,)), (1, ("As", "P"), (0.7, 0.3))}
    # one full mixed site rather than two sites with vacancies (Fe8.5 on 9, Ru8.5 on 9)
    assert sites("Y2Fe8.5Ru8.5") == {(2, ("Y",), (2,)), (17, ("Fe", "Ru"), (8.5, 8.5))}
    assert substitutes("Ba", "Sr") and substitutes("Cl", "Br") and not substitutes("Sr", "Ti")
    assert not substitutes("Li", "F")
    ends = parent_of("Dy0.5Sr0.5MnO3").end_members()
    assert [parent_of("Dy0.5Sr0.5MnO3").end_member(e) for e in ends] == ["Mn1Sr1O3", "Mn1Dy1O3"]
    assert list(ends.values()) == [0.5, 0.5] and sum(parent_of("LiNi0.8Co0.1Mn0.1O2").end_members().values()) == 1


def test_dopants_join_the_site_they_replace_and_vacancies_round_the_site():
    # Al3+ takes a Li+ site in garnet LLZO: Li6.25Al0.25 on 7 Li sites (the rest vacant), not a site of its own
    assert (7, ("Li", "Al"), (6.25, 0.25)) in sites("Li6.25Al0.25La3Zr2O12")
    assert (7, ("Li", "Ga"), (6.4, 0.2)) in sites("Li6.4Ga0.2La3Zr2O12")
    assert sites("Y0.08Zr0.92O1.96") == {(1, ("Zr", "Y"), (0.92, 0.08)), (2, ("O",), (1.96,))}
    oxygen = next(s for s in parent_of("Y0.08Zr0.92O1.96").sites if s.numbers == (8,))
    assert oxygen.mixed and oxygen.occupancies.tolist() == pytest.approx([0.98])
    assert sites("Fe0.95O") == {(1, ("Fe",), (0.95,)), (1, ("O",), (1,))}


def test_a_formula_that_cannot_be_grouped_says_so():
    for formula, reason in (("Na0.5CoO2", "line compound NaCo2O4"), ("Ca0.5Sr1", "line compound"),
                            ("Na0.3Co0.3O0.4", "no grouping")):
        with pytest.raises(SolidSolutionError, match=reason) as caught:
            parent_of(formula)
        assert "\n" not in str(caught.value)
    assert not is_fractional("BaTiO3") and not is_fractional("Fe2O3") and is_fractional("Fe0.95O")
    with pytest.raises(SolidSolutionError, match="line compound FeO"):  # fractional as written, a line compound
        parent_of("Fe0.5O0.5")


@pytest.mark.parametrize("formula, reason", [("Ba-0.5Sr0.5TiO3", "sign"), ("Ba0Sr1TiO3", "zero"),
                                             ("Ba1e-9Sr1TiO3", "outside 0.001"), ("Ba0.5Sr0.5Ti0O0", "zero"),
                                             ("Ba0.0005Sr0.9995TiO3", "outside 0.001")])
def test_bad_fractional_input_is_one_line(member, formula, reason):
    answers = member.answer([formula, "Ba0.5Sr0.5TiO3"])
    assert answers.kept == [1] and reason in answers.refused[formula] and "\n" not in answers.refused[formula]
    with pytest.raises(EncodingError, match=reason):
        member.predict([formula])


def test_a_mixed_a_site_perovskite_lies_between_its_end_members(member):
    answers = member.answer(["Ba0.5Sr0.5TiO3", "BaTiO3", "SrTiO3"])
    assert answers.kept == [0, 1, 2]
    how = answers.how[0]
    assert how.startswith("solid solution on the parent ") and "Ba0.5 on the" in how and "Vegard" in how
    mixed, ba, sr = (pick_peaks(p).apexes[:3] for p in answers.patterns.intensities)  # the three first peaks, 2-theta
    assert np.all((np.minimum(ba, sr) <= mixed) & (mixed <= np.maximum(ba, sr))) and not np.array_equal(ba, sr)


@pytest.mark.parametrize("formula", ["Ba0.5Sr0.5TiO3", "(Mg0.2Co0.2Ni0.2Cu0.2Zn0.2)O", "Sr0.95Ca0.05Ti0.9Zr0.1O2.97"])
def test_the_mixed_cell_is_what_pymatgen_simulates(member, formula):
    """The member's pattern is the fast simulation of its mixed cell, which agrees with pymatgen's simulation of
    the same cell built as a disordered pymatgen Structure (r >= 0.999, as for ordered cells)."""
    parent = parent_of(formula)
    cell = mixed_cells(member, parent)[0]
    assert cell.row is not None and np.any(cell.occupancies < 1)
    structure = cell.cell.structure()
    assert structure.composition.fractional_composition.almost_equals(Composition(formula).fractional_composition)
    assert np.array_equal(member.answer([formula]).ranked()[0][0].cell.occupancies, cell.occupancies)
    fast, oracle = member.predict([formula])[0], simulate([structure], "pymatgen")[0]
    assert np.corrcoef(fast, oracle)[0, 1] >= 0.999
    assert np.array_equal(pick_peaks(fast).apexes, pick_peaks(oracle).apexes)


def test_dopants_and_vacancies_are_named_in_how(member):
    how = member.answer(["Sr0.95Ca0.05Ti0.9Zr0.1O2.97"]).how[0]
    assert "Sr0.95Ca0.05 on the" in how and "Ti0.9Zr0.1 on the" in how and "O2.97 on the O3 site" in how
    rock_salt = member.answer(["(Mg0.2Co0.2Ni0.2Cu0.2Zn0.2)O"]).how[0]
    assert rock_salt.startswith("solid solution on the parent ") and "space group 225" in rock_salt


def test_line_compounds_and_ungroupable_formulas_keep_the_line_path(member):
    answers = member.answer(["SrTiO3", "Na0.5CoO2", "Ba0.5Sr0.5TiO3"])
    assert answers.how[0].startswith("known structure ") and answers.how[2].startswith("solid solution")
    assert answers.how[1].startswith("formula 'Na0.5CoO2': its elements fill whole sites best as the line compound")
    assert np.allclose(answers.patterns.intensities[0], member.predict(["SrTiO3"])[0])


def test_each_formula_answers_as_it_would_alone(member):
    """A solid solution in the batch changes nothing for the others: the line compounds keep their top K and a
    fractional formula without a parent says why, alone or not; a solid solution's top K are its parent on the end
    member's first K structures."""
    batch = ["SrTiO3", "Ba0.5Sr0.5TiO3", "Na0.5CoO2", "BaTiO3", "MgAl2O4"]
    together = member.answer(batch, top=2).ranked()
    for formula, candidates in zip(batch, together):
        alone = member.answer([formula], top=2).ranked()[0]
        assert [(c.how, c.spacegroup, c.source, c.score) for c in candidates] == \
            [(c.how, c.spacegroup, c.source, c.score) for c in alone]
        assert all(np.array_equal(a.pattern, b.pattern) for a, b in zip(candidates, alone))
    assert [len(candidates) for candidates in together] == [2] * len(batch)
    solid = together[1]
    assert all(c.how.startswith("solid solution on the parent") and c.spacegroup == 221 and c.source
               and c.score is None for c in solid)
    assert solid[0].source != solid[1].source and solid[0].how == member.answer(["Ba0.5Sr0.5TiO3"]).how[0]
    assert all(c.how.startswith("formula 'Na0.5CoO2': its elements fill whole sites best as the line compound")
               for c in together[2])


def test_an_alloy_is_its_hosts_lattice_then_a_compound_of_its_elements_with_the_mixture_on_every_site(tmp_path):
    """A one-site parent (Cu0.7Au0.3) answers first on its host's reference structure (fcc Cu, ASE's table) at the
    volume per atom of Vegard's law over fcc Cu and fcc Au, as pymatgen simulates that disordered cell. Then the
    mixture goes on every site of its compounds of exactly those elements, nearest in composition first: on ordered
    Cu3Au (L1_2) it is the disordered fcc alloy, the superstructure's peaks gone, as pymatgen simulates an fcc cell
    of that volume. An alloy with an element that has no reference structure (Pu) has only the compounds' answers."""
    structures = [Structure.from_spacegroup("Pm-3m", Lattice.cubic(3.75), ["Au", "Cu"], [[0, 0, 0], [0, 0.5, 0.5]]),
                  Structure.from_spacegroup("P4/mmm", Lattice.tetragonal(2.8, 3.7), ["Au", "Cu"],
                                            [[0, 0, 0], [0.5, 0.5, 0.5]])]
    for i, structure in enumerate(structures + prototype_structures()):
        structure.to(filename=str(tmp_path / f"s{i:02d}.cif"))
    build_dataset(tmp_path, tmp_path / "alloys.npz", workers=1, progress=False)
    member = create_predictor("template")
    member.fit(load_dataset(tmp_path / "alloys.npz"), progress=False)
    assert sites("Cu0.7Au0.3") == {(1, ("Cu", "Au"), (0.7, 0.3))}
    host, first, second = member.answer(["Cu0.7Au0.3"], top=3).ranked()[0]
    assert host.how.startswith("solid solution on its host's lattice: Cu0.7Au0.3 on every site of Cu's reference "
                               "structure, space group 225 (Fm-3m), volume by Vegard's law")
    assert (host.spacegroup, host.source, host.score) == (225, "ASE reference", None)
    vegard = Structure.from_spacegroup("Fm-3m", Lattice.cubic(np.cbrt(0.7 * 3.61 ** 3 + 0.3 * 4.08 ** 3)),
                                       [{"Cu": 0.7, "Au": 0.3}], [[0, 0, 0]])
    assert np.array_equal(pick_peaks(host.pattern).apexes, pick_peaks(simulate([vegard], "pymatgen")[0]).apexes)
    for candidate in (host, first):  # each answer carries the disordered cell it was simulated from
        assert candidate.cell.structure().composition.fractional_composition.almost_equals(Composition("Cu0.7Au0.3"))
        assert np.allclose(simulate([candidate.cell.structure()])[0], candidate.pattern, atol=1e-3)
    assert first.how.startswith("solid solution on every site of Cu3Au (Cu0.7Au0.3 on each)")
    assert first.spacegroup == 221 and second.spacegroup == 123 and first.score is None
    assert member.answer(["Cu0.7Pu0.3"]).how[0].startswith("solid solution on one site: no structure made of")
    lattice = mixed_cells(member, parent_of("Cu0.7Au0.3"))[0].lattice
    fcc = Structure.from_spacegroup("Fm-3m", Lattice.cubic(np.cbrt(abs(np.linalg.det(lattice)))),
                                    [{"Cu": 0.7, "Au": 0.3}], [[0, 0, 0]])
    oracle = simulate([fcc], "pymatgen")[0]
    assert np.corrcoef(first.pattern, oracle)[0, 1] >= 0.999
    assert np.array_equal(pick_peaks(first.pattern).apexes, pick_peaks(oracle).apexes)
    ordered = member.predict(["Cu3Au"])[0]  # the known ordered compound keeps its superstructure's peaks
    assert len(pick_peaks(ordered).apexes) > len(pick_peaks(first.pattern).apexes)


def test_an_element_stands_on_its_compounds_with_a_substitute_whose_sites_form_a_simple_lattice(tmp_path):
    """A single element the member holds no structure of (Cu) goes on every site of its compounds with a substitute
    element, the richest in it first, skipping those whose sites, all made it, are no simple lattice (the C15b
    ZrCu5, 6 sites per primitive cell), an undistorted lattice before a distorted one as rich (tetragonal Cu3Ag's
    sites, face-centred tetragonal, after L1_2 Cu3Au's): on Cu3Au it is fcc Cu, as pymatgen simulates an fcc cell of
    that volume. Those follow the element's reference structure (ASE's table: fcc Cu), a known structure; a held
    element answers with its own known structure, as does one ASE's table gives without positions (alpha-Mn, a published
    structure); with neither a reference nor such a compound (N), the element is a line compound."""
    structures = [Structure.from_spacegroup("Pm-3m", Lattice.cubic(3.75), ["Au", "Cu"], [[0, 0, 0], [0, 0.5, 0.5]]),
                  Structure.from_spacegroup("P4/mmm", Lattice.tetragonal(2.8, 3.7), ["Au", "Cu"],
                                            [[0, 0, 0], [0.5, 0.5, 0.5]]),
                  Structure.from_spacegroup("P4/mmm", Lattice.tetragonal(3.7, 4.1), ["Ag", "Cu", "Cu"],
                                            [[0, 0, 0], [0.5, 0.5, 0], [0, 0.5, 0.5]]),
                  Structure.from_spacegroup("F-43m", Lattice.cubic(6.9), ["Zr", "Cu", "Cu"],
                                            [[0, 0, 0], [0.25, 0.25, 0.25], [0.625, 0.625, 0.625]]),
                  Structure.from_spacegroup("Fm-3m", Lattice.cubic(4.08), ["Ag"], [[0, 0, 0]])]
    for i, structure in enumerate(structures + prototype_structures()):
        structure.to(filename=str(tmp_path / f"s{i:02d}.cif"))
    build_dataset(tmp_path, tmp_path / "elements.npz", workers=1, progress=False)
    member = create_predictor("template")
    member.fit(load_dataset(tmp_path / "elements.npz"), progress=False)
    assert is_element("Cu") and is_element("O2") and not is_element("CuO") and not is_element("Xx")
    (reference, *copper), silver, (manganese, *_), nitrogen = member.answer(["Cu", "Ag", "Mn", "N"], top=4).ranked()
    assert (reference.spacegroup, reference.source, reference.score) == (225, "ASE reference", 1.0)
    assert reference.how == ("known structure of the element Cu: ASE's reference state (experimental), space group "
                             "225 (Fm-3m), fcc, a = 3.61 A")
    assert [(c.spacegroup, c.score) for c in copper] == [(221, None), (123, None), (123, None)]  # not ZrCu5
    assert copper[0].how.startswith("element Cu (no structure of it held) on every site of s00.cif (Cu3Au, space "
                                    "group 221): a simple lattice, Fm-3m")
    assert ["(Cu3Ag, space group 123): a simple lattice, I4/mmm" in c.how for c in copper] == [False, True, False]
    assert "(CuAu, space group 123): a simple lattice, I4/mmm" in copper[2].how
    assert [c.how for c in member.answer(["Cu"]).ranked()[0]] == [reference.how]
    parent = solid_solution.parents(["Cu"], member)[0][0]
    lattice = mixed_cells(member, parent)[0].lattice
    fcc = Structure.from_spacegroup("Fm-3m", Lattice.cubic(np.cbrt(abs(np.linalg.det(lattice)))), ["Cu"], [[0, 0, 0]])
    oracle = simulate([fcc], "pymatgen")[0]
    assert np.corrcoef(copper[0].pattern, oracle)[0, 1] >= 0.999
    assert np.array_equal(pick_peaks(copper[0].pattern).apexes, pick_peaks(oracle).apexes)
    assert silver[0].how.startswith("known structure") and silver[0].score == 1
    assert (manganese.spacegroup, manganese.source, manganese.score) == (217, "published structure", 1.0)
    assert manganese.how.startswith("known structure of the element Mn: alpha-manganese, 58 atoms per cell (A12 of the "
                                    "AFLOW prototype library")
    assert nitrogen[0].how.startswith("element N: no structure of it, nor a compound of it with a substitute "
                                      "element whose sites form a simple lattice; read as a line compound")


def test_reference_structures_of_the_elements_are_those_ase_tabulates_completely():
    """fcc Cu at 3.61 A simulates as pymatgen simulates that cell; white tin and rhombohedral arsenic are built with
    their atoms' positions; carbon is graphite, not the table's diamond, and an element ASE lists without positions
    (orthorhombic S, alpha-Mn) is a published structure; one listed as a molecule (O), a liquid (Br) or not at all
    (Cf, or no element) has none."""
    copper = reference_cell(29)
    assert (copper.spacegroup, copper.symbol, copper.text, copper.source) == (225, "Fm-3m", "fcc, a = 3.61 A",
                                                                              "ASE reference")
    fcc = Structure.from_spacegroup("Fm-3m", Lattice.cubic(3.61), ["Cu"], [[0, 0, 0]])
    pattern = simulate_cell(copper.lattice, copper.coords, copper.numbers)
    assert np.array_equal(pick_peaks(pattern).apexes, pick_peaks(simulate([fcc], "pymatgen")[0]).apexes)
    assert [reference_cell(z)[3:5] for z in (50, 33, 16, 25)] == [(141, "I4_1/amd"), (166, "R-3m"), (70, "Fddd"),
                                                                  (217, "I-43m")]
    carbon = reference_cell(6)
    assert (carbon.spacegroup, carbon.text, carbon.source) == (194, "a = 2.464 A, c = 6.711 A", "published structure")
    assert carbon.origin.startswith("graphite") and "diamond" in carbon.origin
    assert [reference_cell(z) for z in (8, 35, 98, 0)] == [None] * 4


# each published element's shortest bond (A) and how many atoms it bonds to (None: a close-packed or cluster solid),
# as textbooks give them (Greenwood and Earnshaw, Chemistry of the Elements; Donohue, The Structures of the Elements)
BONDS = {"B": (1.67, None), "C": (1.42, 3), "P": (2.22, 3), "S": (2.05, 2), "Mn": (2.24, None), "Ga": (2.45, 1),
         "Se": (2.37, 2), "Te": (2.84, 2), "I": (2.72, 1), "U": (2.75, None)}


@pytest.mark.parametrize("symbol", sorted(BONDS))
def test_published_element_structures_have_their_known_bonds(symbol):
    """The atoms' positions of each published structure are right: its shortest bond is the element's, within
    0.05 A, and each atom has as many neighbours at that distance as the element's chains, rings, layers or
    molecules give it (a typo in a coordinate moves both)."""
    cell = reference_cell(Element(symbol).Z)
    structure = Structure(Lattice(cell.lattice), cell.numbers, cell.coords)
    bond, neighbours = BONDS[symbol]
    shortest = min(n.nn_distance for site in structure.get_all_neighbors(3.0) for n in site)
    assert shortest == pytest.approx(bond, abs=0.05)
    if neighbours is not None:
        assert {len(site) for site in structure.get_all_neighbors(bond + 0.15)} == {neighbours}


def test_published_element_structures_give_their_measured_strongest_reflections():
    """Trigonal Se and Te and alpha-sulfur put their strongest reflection where their powder patterns have it
    (Cu K-alpha; Se 101 at d = 3.00 A, Te 101 at 3.23 A, alpha-S 222 at 3.85 A)."""
    for number, d in ((34, 3.00), (52, 3.23), (16, 3.85)):
        cell = reference_cell(number)
        peaks = pick_peaks(simulate_cell(cell.lattice, cell.coords, cell.numbers))
        strongest = peaks.apexes[np.argmax(peaks.intensities)]
        assert 1.5406 / (2 * np.sin(np.radians(strongest / 2))) == pytest.approx(d, abs=0.03)


def test_series_runs_between_end_members_that_differ_on_one_site():
    found = series(["BaTiO3", "SrTiO3", "BaZrO3", "NaCl", "BaO"], 0.25)
    expected = [f"Ba{1 - x:g}Sr{x:g}TiO3" for x in (0.25, 0.5, 0.75)] + [f"BaTi{1 - x:g}Zr{x:g}O3" for x in (0.25, 0.5, 0.75)]
    assert sorted(Composition(f) for f in found) == sorted(Composition(f) for f in expected)
    assert series(["SrTiO3", "PbTiO3"], 0.5) == []  # Sr and Pb are too far apart to be read as substitutes
    for step in (0, 1, -0.1):
        with pytest.raises(InputError, match="step must lie between 0 and 1"):
            series(["BaTiO3", "SrTiO3"], step)
    assert Composition("Sr0.5Ba0.5TiO3") in {Composition(f) for f in solid_solutions(["Ba", "Sr", "Ti", "O"], 0.5, 5)}


def test_compare_and_identify_take_solid_solutions(member, tmp_path):
    """A measured-looking (Ba0.5Sr0.5)TiO3 at the prototypes' Vegard lattice (SrTiO3 4.0 A, BaTiO3 4.2 A): `compare`
    puts the solid solution above both end members, `identify --fractional` finds it among the compositions."""
    structure = Structure.from_spacegroup("Pm-3m", Lattice.cubic(4.1), [{"Ba": 0.5, "Sr": 0.5}, "Ti", "O"],
                                          [[0, 0, 0], [0.5, 0.5, 0.5], [0.5, 0.5, 0]])
    peaks = reflections(structure, "fast")
    grid = 10 + 0.02 * np.arange(3501)
    scan = write_xy(tmp_path / "bsto.xy", measured_looking(peaks, grid, Profile(fwhm=0.15), np.random.default_rng(0)),
                    "measured-looking (Ba0.5Sr0.5)TiO3")
    checkpoint = tmp_path / "template.safetensors"
    checkpoint_save(checkpoint, member)
    result = CliRunner().invoke(app, ["compare", str(scan), "BaTiO3", "Ba0.5Sr0.5TiO3", "SrTiO3", "--model",
                                      str(checkpoint)])
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[1].split()[1] == "Ba0.5Sr0.5TiO3"
    result = CliRunner().invoke(app, ["identify", str(scan), "--elements", "Ba,Sr,Ti,O", "--max-atoms", "6",
                                      "--charge-balanced", "--fractional", "0.25", "--model", str(checkpoint)])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    best = lines[next(i for i, line in enumerate(lines) if line.split()[:2] == ["rank", "formula"]) + 1].split()[1]
    assert Composition(best).almost_equals(Composition("Ba0.5Sr0.5TiO3")), result.output


def test_the_default_answers_the_issue_formulas_from_parents():
    import xrdzoo

    formulas = ["Ba0.5Sr0.5TiO3", "La0.7Sr0.3MnO3", "LiNi0.8Co0.1Mn0.1O2", "(Mg0.2Co0.2Ni0.2Cu0.2Zn0.2)O"]
    answers = xrdzoo.load(xrdzoo.DEFAULT_MODEL).answer([*formulas, "BaTiO3", "SrTiO3"])
    assert answers.kept == list(range(6))
    assert "parent SrTiO3 (Sr0.5Ba0.5 on the Sr site)" in answers.how[0]
    assert "parent LaMnO3 (La0.7Sr0.3 on the La site)" in answers.how[1]
    assert "parent LiNiO2 (Ni0.8Mn0.1Co0.1 on the Ni site)" in answers.how[2]
    assert "parent MgO (Mg0.2Co0.2Ni0.2Cu0.2Zn0.2 on the Mg site): template mp-1265 (MgO, space group 225)" \
        in answers.how[3]  # the rock salt parent from the every-type default's binary templates
    mixed, ba, sr = (pick_peaks(p) for p in answers.patterns.intensities[[0, 4, 5]])
    main = mixed.apexes[np.argsort(-mixed.intensities)[:3]]  # the three strongest peaks
    near = [end.apexes[np.abs(end.apexes[:, None] - main).argmin(0)] for end in (ba, sr)]
    assert np.all((np.minimum(*near) <= main) & (main <= np.maximum(*near))), (main, near)


def test_the_volume_follows_vegards_line_between_known_end_members(member):
    def per_site(formula):
        rows, distances = member.templates.nearest(formula_of(formula))
        if not len(rows) or distances[0] != 0:
            return None
        row = int(rows[0])
        return abs(np.linalg.det(member.lattices[row])) / int(member.offsets[row + 1] - member.offsets[row])

    known = [(a, b) for a in ("Ca", "Sr", "Ba", "Pb") for b in ("Ti", "Zr", "Sn", "Hf") if per_site(f"{a}{b}O3")]
    # two known perovskites that differ on the A site (the prototype dataset's training split holds such pairs)
    (a, b), (c, _) = next((p, q) for p in known for q in known if p[1] == q[1] and p[0] < q[0])
    formula = f"{a}0.25{c}0.75{b}O3"
    cell = mixed_cells(member, parent_of(formula))[0]
    volume = abs(np.linalg.det(cell.lattice)) / len({tuple(xyz) for xyz in np.round(cell.coords, 6)})
    assert volume == pytest.approx(0.25 * per_site(f"{a}{b}O3") + 0.75 * per_site(f"{c}{b}O3"), rel=1e-6)
