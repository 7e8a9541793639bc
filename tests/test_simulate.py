"""The fast simulator against pymatgen (the oracle) and Bragg's law, its errors, and `xrdzoo simulate`."""

import csv
import gzip
import itertools
import random
import sys
import warnings

import numpy as np
import pytest
from pymatgen.core import Lattice, Structure
from typer.testing import CliRunner

from xrdzoo.cli import app
from xrdzoo.xrd.pattern import N_POINTS, WAVELENGTH
from xrdzoo.xrd.simulate import SIMULATORS, SimulationError, reflections, simulate, simulate_cell, simulator_version

PROTOTYPES = {
    "NaCl": lambda: Structure.from_spacegroup("Fm-3m", Lattice.cubic(5.64), ["Na", "Cl"],
                                              [[0, 0, 0], [0.5, 0.5, 0.5]]),
    "SrTiO3": lambda: Structure.from_spacegroup("Pm-3m", Lattice.cubic(3.905), ["Sr", "Ti", "O"],
                                                [[0, 0, 0], [0.5, 0.5, 0.5], [0.5, 0.5, 0]]),
    "MgAl2O4": lambda: Structure.from_spacegroup("Fd-3m", Lattice.cubic(8.08), ["Mg", "Al", "O"],
                                                 [[0, 0, 0], [0.625, 0.625, 0.625], [0.387, 0.387, 0.387]]),
}


def _assert_agree(structure):
    peaks = reflections(structure, "fast")
    fast_x, fast_y, fast_hkl = peaks.two_theta, peaks.intensities, peaks.hkls
    peaks = reflections(structure, "pymatgen")
    ref_x, ref_y, ref_hkl = peaks.two_theta, peaks.intensities, peaks.hkls
    assert fast_hkl is None and len(ref_hkl) == len(ref_x)
    assert len(fast_x) == len(ref_x)
    assert np.abs(fast_x - ref_x).max() < 0.01
    assert np.allclose(fast_y, ref_y, rtol=1e-5, atol=1e-4)
    fast, ref = simulate([structure], "fast")[0], simulate([structure], "pymatgen")[0]
    assert np.corrcoef(fast, ref)[0, 1] >= 0.999


@pytest.mark.parametrize("name", PROTOTYPES)
def test_fast_agrees_with_pymatgen(name):
    _assert_agree(PROTOTYPES[name]())


def test_scattering_coefficients_are_pymatgens():
    from pymatgen.analysis.diffraction.xrd import ATOMIC_SCATTERING_PARAMS
    from pymatgen.core import Element

    from xrdzoo.xrd.simulate import _scattering_table

    rows, z, coefficients = _scattering_table()
    assert set(rows) == set(ATOMIC_SCATTERING_PARAMS)
    for symbol, row in rows.items():
        assert coefficients[row].tolist() == ATOMIC_SCATTERING_PARAMS[symbol] and z[row] == Element(symbol).Z


def test_low_symmetry_cell_agrees():
    """A triclinic cell with a long axis: the search box is far from a cube and no reflections coincide."""
    lattice = Lattice.from_parameters(4.1, 5.3, 11.7, 81, 97, 104)
    structure = Structure(lattice, ["Ba", "Ti", "O", "O", "S"],
                          [[0.1, 0.2, 0.3], [0.6, 0.4, 0.1], [0.3, 0.9, 0.7], [0.8, 0.1, 0.5], [0.45, 0.55, 0.9]])
    _assert_agree(structure)


def test_positions_follow_braggs_law():
    """NaCl (fcc): reflections where h, k, l are all even or all odd, at 2 asin(lambda / 2d), d = a / |hkl|."""
    a = 5.64
    peaks = reflections(PROTOTYPES["NaCl"]())
    two_theta, intensities = peaks.two_theta, peaks.intensities
    allowed = {h * h + k * k + l * l for h, k, l in itertools.product(range(12), repeat=3)
               if (h % 2 == k % 2 == l % 2) and 0 < h * h + k * k + l * l <= (2 * a / WAVELENGTH) ** 2}
    expected = np.degrees(2 * np.arcsin(WAVELENGTH * np.sqrt(sorted(allowed)) / (2 * a)))
    assert np.allclose(two_theta, expected, atol=1e-6)
    assert two_theta[np.argmax(intensities)] == pytest.approx(expected[1], abs=1e-6)  # (200) is the strongest


def test_simulate_shape_and_scale():
    structures = [make() for make in PROTOTYPES.values()]
    patterns = simulate(structures)
    assert patterns.shape == (3, N_POINTS) and patterns.dtype == np.float32
    assert np.allclose(patterns.max(axis=1), 100) and patterns.min() >= 0
    assert simulate([]).shape == (0, N_POINTS)


DISORDERED = {
    "(Ba,Sr)TiO3": lambda: Structure.from_spacegroup("Pm-3m", Lattice.cubic(3.95), [{"Ba": 0.5, "Sr": 0.5}, "Ti", "O"],
                                                     [[0, 0, 0], [0.5, 0.5, 0.5], [0.5, 0.5, 0]]),
    "(Mg,Co,Ni,Cu,Zn)O": lambda: Structure.from_spacegroup(
        "Fm-3m", Lattice.cubic(4.22), [{e: 0.2 for e in ("Mg", "Co", "Ni", "Cu", "Zn")}, "O"],
        [[0, 0, 0], [0.5, 0.5, 0.5]]),
    "Fe0.9O (vacancies)": lambda: Structure(Lattice.cubic(4.0), [{"Fe": 0.9}, "O"], [[0, 0, 0], [0.5, 0.5, 0.5]]),
    "YSZ (mixed, O1.96)": lambda: Structure.from_spacegroup("Fm-3m", Lattice.cubic(5.14), [{"Zr": 0.92, "Y": 0.08},
                                                            {"O": 0.98}], [[0, 0, 0], [0.25, 0.25, 0.25]]),
}


@pytest.mark.parametrize("name", DISORDERED)
def test_partial_occupancy_agrees_with_pymatgen(name):
    _assert_agree(DISORDERED[name]())


def test_a_mixed_site_lies_between_its_end_members():
    """Occupancy-weighted scattering: the half-and-half site's (100) peak intensity lies between Ba's and Sr's."""
    def strength(species):
        structure = Structure(Lattice.cubic(3.95), [species, "Ti", "O", "O", "O"],
                              [[0, 0, 0], [0.5, 0.5, 0.5], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]])
        return simulate_cell(structure.lattice.matrix, structure.frac_coords[[0, 0, 1, 2, 3, 4]],
                             np.array([56, 38, 22, 8, 8, 8]),
                             occupancies=np.array([species.get("Ba", 0), species.get("Sr", 0), 1, 1, 1, 1]))
    ba, sr, mixed = strength({"Ba": 1}), strength({"Sr": 1}), strength({"Ba": 0.5, "Sr": 0.5})
    first = np.flatnonzero(mixed > 1)[0]  # the (100) bin
    assert min(ba[first], sr[first]) < mixed[first] < max(ba[first], sr[first])
    structure = DISORDERED["(Ba,Sr)TiO3"]()
    assert np.allclose(mixed, simulate([structure])[0], atol=1e-3)  # the array form is the structure form


def test_no_peak_is_refused():
    tiny = Structure(Lattice.cubic(0.7), ["H"], [[0, 0, 0]])  # d_100 = 0.7 < wavelength / 2
    for simulator in SIMULATORS:
        with pytest.raises(SimulationError, match="no diffraction peak") as caught:
            reflections(tiny, simulator)
        assert caught.value.reason == "no_peaks"
    with pytest.raises(SimulationError, match="structure 1: ") as caught:
        simulate([PROTOTYPES["NaCl"](), tiny])
    assert caught.value.reason == "no_peaks"


def test_other_errors():
    with pytest.raises(SimulationError, match="no X-ray scattering factors for Es") as caught:
        reflections(Structure(Lattice.cubic(4.0), ["Es"], [[0, 0, 0]]))
    assert caught.value.reason == "unknown_element"
    with pytest.raises(ValueError, match="unknown simulator 'xyz'"):
        simulate([PROTOTYPES["NaCl"]()], simulator="xyz")
    with pytest.raises(TypeError, match="pymatgen Structure"):
        reflections("NaCl")
    structure = PROTOTYPES["NaCl"]()
    structure.add_site_property("U11_cif", [0.01] * len(structure))
    with pytest.raises(ValueError, match="Debye-Waller"):
        reflections(structure, "fast")


def test_simulator_versions():
    versions = {simulator_version(name) for name in SIMULATORS}
    assert len(versions) == len(SIMULATORS) and all("pymatgen" in v for v in versions)
    with pytest.raises(ValueError, match="unknown simulator"):
        simulator_version("vasp")


def test_materials_project_sample_agrees(shared_csv):
    csv.field_size_limit(sys.maxsize)
    with gzip.open(shared_csv, "rt") as rows:
        sample = random.Random(1).sample(list(itertools.islice(csv.DictReader(rows), 3000)), 12)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pymatgen's CIF parser warns about rounded coordinates
        structures = [Structure.from_str(row["cif"], fmt="cif") for row in sample]
    for structure in structures:
        _assert_agree(structure)


def test_cli_simulate(tmp_path):
    cif = tmp_path / "nacl.cif"
    PROTOTYPES["NaCl"]().to(filename=str(cif))
    out, png = tmp_path / "nacl.csv", tmp_path / "nacl.png"
    runner = CliRunner()
    result = runner.invoke(app, ["simulate", str(cif), "--simulator", "pymatgen", "--fwhm", "0.3",
                                 "--output", str(out), "--plot", str(png)])
    assert result.exit_code == 0, result.output
    assert result.output.startswith("NaCl: ") and "(2 0 0)" in result.output and "2.8200" in result.output
    table = np.loadtxt(out, delimiter=",", skiprows=1)
    assert table.shape == (N_POINTS, 2) and table[:, 1].max() == pytest.approx(100)
    assert png.read_bytes().startswith(b"\x89PNG")

    bad = tmp_path / "bad.cif"
    bad.write_text("not a structure\n")
    result = runner.invoke(app, ["simulate", str(bad)])
    assert result.exit_code != 0 and "cannot read a structure" in result.output


def test_cli_simulates_a_cif_with_partial_occupancy(tmp_path):
    cif = tmp_path / "bsto.cif"
    DISORDERED["(Ba,Sr)TiO3"]().to(filename=str(cif))
    assert "_atom_site_occupancy" in cif.read_text() and " 0.5" in cif.read_text()
    out = tmp_path / "bsto.csv"
    result = CliRunner().invoke(app, ["simulate", str(cif), "--output", str(out)])
    assert result.exit_code == 0, result.output
    table = np.loadtxt(out, delimiter=",", skiprows=1)
    assert np.allclose(table[:, 1], simulate([DISORDERED["(Ba,Sr)TiO3"]()])[0], atol=1e-3)


def _cells(rng) -> list[tuple]:
    """Strained prototypes, a triclinic cell and a mixed-site one, as arrays: what simulate_cells takes."""
    cells = []
    for make in [*PROTOTYPES.values(), *DISORDERED.values()]:
        structure = make()
        for _ in range(3):
            strain = np.eye(3) + rng.normal(0, 0.03, (3, 3))
            sites = [(i, species.Z, occupancy) for i, site in enumerate(structure)
                     for species, occupancy in site.species.items()]
            index, numbers, occupancies = map(np.array, zip(*sites))
            cells.append((structure.lattice.matrix @ strain, structure.frac_coords[index], numbers, occupancies))
    return cells


@pytest.mark.parametrize("wavelength", [WAVELENGTH, 0.7093])
def test_compiled_kernel_gives_the_cells_patterns(monkeypatch, wavelength):
    """simulate_cells' compiled kernel (used from COMPILED_FROM cells) and simulate_cell, one by one, agree."""
    from xrdzoo.xrd import simulate as module

    cells = _cells(np.random.default_rng(0))
    one_by_one = np.array([simulate_cell(*cell[:3], wavelength, cell[3]) for cell in cells])
    assert module.simulate_cells(cells, wavelength).tobytes() == one_by_one.tobytes()  # fewer than COMPILED_FROM
    monkeypatch.setattr(module, "COMPILED_FROM", 1)
    compiled = module.simulate_cells(cells, wavelength)
    assert compiled.dtype == np.float32 and compiled.shape == (len(cells), N_POINTS)
    assert np.allclose(compiled, one_by_one, rtol=1e-5, atol=1e-5)
    assert (compiled.max(axis=1) == 100).all()


def test_the_kernels_exponential_is_exps():
    """The compiled kernel's tabulated exp(-x) for the scattering factors agrees with numpy's to double precision,
    over the whole range its arguments take (Gaussian widths up to 156 A^2 times (sin(theta) / wavelength)^2 <= 4),
    and is 0 where a double underflows."""
    from xrdzoo.xrd.kernel import _exp_minus

    x = np.concatenate([np.linspace(0, 700, 70_001), np.random.default_rng(0).uniform(0, 5, 10_000)])
    assert np.allclose([_exp_minus(value) for value in x], np.exp(-x), rtol=1e-14, atol=0)
    assert _exp_minus(745.0) == 0.0 and _exp_minus(744.0) == pytest.approx(np.exp(-744.0), rel=1e-14)


@pytest.mark.parametrize("compiled_from", [1, 1000])
def test_simulate_cells_names_the_cell_it_cannot_simulate(monkeypatch, compiled_from):
    from xrdzoo.xrd import simulate as module

    monkeypatch.setattr(module, "COMPILED_FROM", compiled_from)
    good = _cells(np.random.default_rng(1))[0]
    cases = {"unknown_element": (np.eye(3) * 4, np.zeros((1, 3)), np.array([99])),
             "no_peaks": (np.eye(3) * 0.7, np.zeros((1, 3)), np.array([1])),
             "too_large": (np.eye(3) * 200, np.zeros((1, 3)), np.array([1]))}
    for reason, bad in cases.items():
        with pytest.raises(SimulationError, match=r"^cell 1: ") as caught:
            module.simulate_cells([good, bad, good])
        assert caught.value.reason == reason
    with pytest.raises(SimulationError, match=r"^cell 0: it has no sites"):
        module.simulate_cells([(np.eye(3) * 4, np.zeros((0, 3)), np.array([], int)), good])
