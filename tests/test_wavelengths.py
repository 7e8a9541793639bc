"""Other wavelengths, grids, axes and peak profiles: the simulator at any wavelength against pymatgen, the Pattern
conversions, the profiles, and `xrdzoo simulate` / `xrdzoo predict` with them."""

import csv
import gzip
import itertools
import json
import random
import sys
import warnings

import numpy as np
import pytest
from pymatgen.core import Lattice, Structure
from typer.testing import CliRunner

from xrdzoo.cli import app
from xrdzoo.xrd.pattern import (TWO_THETA, Pattern, axis_values, bin_peaks, d_spacing, parse_grid, two_theta_at)
from xrdzoo.xrd.profiles import LINES, TUBES, Profile, ka_lines, wavelength
from xrdzoo.xrd.simulate import reflections

MO = 0.71073


def perovskite():
    return Structure.from_spacegroup("Pm-3m", Lattice.cubic(3.905), ["Sr", "Ti", "O"],
                                     [[0, 0, 0], [0.5, 0.5, 0.5], [0.5, 0.5, 0]])


def triclinic():
    return Structure(Lattice.from_parameters(4.1, 5.3, 11.7, 81, 97, 104), ["Ba", "Ti", "O", "O", "S"],
                     [[0.1, 0.2, 0.3], [0.6, 0.4, 0.1], [0.3, 0.9, 0.7], [0.8, 0.1, 0.5], [0.45, 0.55, 0.9]])


def _assert_positions_agree(structure, line):
    peaks = reflections(structure, "fast", line)
    fast_x, fast_y = peaks.two_theta, peaks.intensities
    peaks = reflections(structure, "pymatgen", line)
    ref_x, ref_y = peaks.two_theta, peaks.intensities
    assert len(fast_x) == len(ref_x)
    assert np.abs(fast_x - ref_x).max() < 0.01
    assert np.allclose(fast_y, ref_y, rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize("tube", ["MoKa", "AgKa", "CrKa", "CoKa", "FeKa"])
def test_simulator_agrees_with_pymatgen_at_other_wavelengths(tube):
    for structure in (perovskite(), triclinic()):
        _assert_positions_agree(structure, wavelength(tube))


def test_moka_agrees_with_pymatgen_on_materials_project_structures(shared_csv):
    csv.field_size_limit(sys.maxsize)
    with gzip.open(shared_csv, "rt") as rows:
        sample = random.Random(2).sample(list(itertools.islice(csv.DictReader(rows), 3000)), 10)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for row in sample:
            _assert_positions_agree(Structure.from_str(row["cif"], fmt="cif"), MO)


def test_wavelength_names_and_numbers():
    assert wavelength("MoKa") == wavelength("moka") == MO
    assert wavelength("CuKa") == 1.54184 and wavelength("0.5") == wavelength(0.5) == 0.5
    assert ka_lines(MO) == (0.7093, 0.71359)
    for bad, message in (("WKa", "unknown wavelength"), ("12", "outside"), (0.0, "outside")):
        with pytest.raises(ValueError, match=message):
            wavelength(bad)
    with pytest.raises(ValueError, match="no K-alpha doublet"):
        ka_lines(0.8)


def test_tube_lines_are_pymatgens():
    from pymatgen.analysis.diffraction.xrd import WAVELENGTHS

    assert LINES == {name: WAVELENGTHS[name] for name in LINES}
    assert set(LINES) == {tube + line for tube in TUBES for line in ("", "1", "2")}


def test_at_wavelength_matches_the_simulator_there():
    """Cu peaks moved to Mo through d-spacing (Lorentz-polarisation reweighted) are the Mo simulation, up to where
    the Cu pattern ended (2 asin(0.71073 / 1.54184), about 54.9 degrees)."""
    structure = triclinic()
    cu = reflections(structure)
    exact = reflections(structure, "fast", MO)
    moved = cu.at_wavelength(MO)
    assert moved.span[0] == 0 and moved.span[1] == pytest.approx(2 * np.degrees(np.arcsin(MO / 1.54184)))
    inside = exact.two_theta < moved.span[1]
    assert np.allclose(moved.two_theta, exact.two_theta[inside], atol=1e-9)
    assert np.allclose(moved.intensities / moved.intensities.max(),
                       exact.intensities[inside] / exact.intensities[inside].max(), rtol=1e-9)
    back = moved.at_wavelength(1.54184)
    assert np.allclose(back.two_theta, cu.two_theta) and np.allclose(back.intensities, cu.intensities)
    # to a longer wavelength the high-angle peaks leave the pattern; the span stays 0..180
    cr = cu.at_wavelength(wavelength("CrKa"))
    assert cr.span == (0.0, 180.0) and cr.two_theta.size < cu.two_theta.size


def test_frame_patterns_default_grid_and_batches():
    peaks = reflections(perovskite())
    two_theta, intensities = peaks.two_theta, peaks.intensities
    assert np.array_equal(Pattern(two_theta, intensities).on_grid(), bin_peaks(two_theta, intensities))
    batch = np.stack([bin_peaks(two_theta, intensities), bin_peaks(two_theta + 1, intensities)])
    frame = Pattern.from_frame(batch)
    assert np.array_equal(frame.on_grid(), batch)
    grid = parse_grid("5:90:0.02")
    drawn = frame.at_wavelength(MO).on_grid(grid, Profile(fwhm=0.3))
    assert drawn.shape == (2, grid.size) and np.allclose(drawn.max(axis=1), 100)
    with pytest.raises(ValueError, match="positions but intensities"):
        Pattern([1.0, 2.0], [1.0, 2.0, 3.0])


def test_grids_and_axes():
    grid = parse_grid("5:90:0.02")
    assert grid[0] == 5 and grid[-1] == pytest.approx(90) and grid.size == 4251
    for bad in ("5:90", "90:5:0.1", "5:90:-1", "a:b:c", "0:200:1"):
        with pytest.raises(ValueError, match="grid"):
            parse_grid(bad)
    x = np.array([20.0, 40.0])
    assert np.allclose(axis_values(x, "d"), d_spacing(x))
    assert np.allclose(axis_values(x, "q", MO), 2 * np.pi / d_spacing(x, MO))
    assert np.allclose(two_theta_at(d_spacing(x, MO), MO), x)
    with pytest.raises(ValueError, match="unknown axis"):
        axis_values(x, "k")


@pytest.mark.parametrize("shape", ["gaussian", "lorentzian", "pseudo-voigt"])
def test_profiles_have_unit_area_and_the_given_width(shape):
    profile = Profile(shape, fwhm=0.4)
    x = np.linspace(-400, 400, 800001)
    values = profile(x, 0.4)
    assert np.trapezoid(values, x) == pytest.approx(1, abs=1e-3)
    half = x[values >= values.max() / 2]
    assert half[-1] - half[0] == pytest.approx(0.4, abs=2e-3)


def test_caglioti_widths_and_errors():
    profile = Profile(caglioti=(0.02, -0.01, 0.01))
    theta = np.radians(np.array([20.0, 100.0])) / 2
    expected = np.sqrt(0.02 * np.tan(theta) ** 2 - 0.01 * np.tan(theta) + 0.01)
    assert np.allclose(profile.width([20.0, 100.0]), expected)
    with pytest.raises(ValueError, match="no positive width"):
        Profile(caglioti=(0.0, 0.0, -0.01)).width([30.0])
    for options, message in (({}, "either one FWHM"), ({"fwhm": 0.1, "caglioti": (1, 0, 1)}, "either one FWHM"),
                             ({"fwhm": -1}, "positive"), ({"fwhm": 0.1, "shape": "voigt"}, "unknown peak shape"),
                             ({"fwhm": 0.1, "eta": 2}, "eta")):
        with pytest.raises(ValueError, match=message):
            Profile(**options)


def test_doublet_splits_each_peak_two_to_one():
    """One peak at d = 2 A with Cu K-alpha: K-alpha1 and K-alpha2 at their own 2-theta, heights 2:1."""
    d = 2.0
    peak = Pattern(two_theta_at([d], 1.54184), [100.0])
    grid = parse_grid("44:46:0.001")
    drawn = peak.on_grid(grid, Profile(fwhm=0.02, doublet=True))
    a1, a2 = (two_theta_at([d], line)[0] for line in ka_lines(1.54184))
    h1, h2 = (drawn[np.argmin(np.abs(grid - t))] for t in (a1, a2))
    assert h1 == pytest.approx(100) and h2 / h1 == pytest.approx(0.5, abs=0.01)
    with pytest.raises(ValueError, match="no K-alpha doublet"):
        Pattern(peak.two_theta, [1.0], wavelength=1.0).on_grid(grid, Profile(fwhm=0.1, doublet=True))


def test_cli_simulate_and_predict_at_other_wavelengths(tmp_path):
    cif = tmp_path / "srtio3.cif"
    perovskite().to(filename=str(cif))
    runner = CliRunner()
    out, png = tmp_path / "mo.csv", tmp_path / "mo.png"
    result = runner.invoke(app, ["simulate", str(cif), "--wavelength", "MoKa", "--two-theta", "5:60:0.02",
                                 "--profile", "pseudo-voigt", "--caglioti", "0.01,-0.005,0.01", "--doublet",
                                 "--output", str(out), "--plot", str(png)])
    assert result.exit_code == 0, result.output
    assert "Mo Kα" in result.output
    first = float(result.output.splitlines()[2].split()[0])  # (100) of a = 3.905 A at Mo K-alpha
    assert first == pytest.approx(two_theta_at([3.905], MO)[0], abs=1e-3)
    table = np.loadtxt(out, delimiter=",", skiprows=1)
    assert table.shape == (2751, 2) and table[:, 1].max() == pytest.approx(100)
    assert png.read_bytes().startswith(b"\x89PNG")

    out = tmp_path / "q.xy"
    result = runner.invoke(app, ["predict", "SrTiO3", "--wavelength", "0.5", "--two-theta", "5:40:0.05",
                                 "--fwhm", "0.2", "--axis", "q", "--output", str(out)])
    assert result.exit_code == 0, result.output
    table = np.loadtxt(out)
    assert np.allclose(table[:, 0], axis_values(parse_grid("5:40:0.05"), "q", 0.5), atol=1e-4)
    # the default frame is unchanged
    result = runner.invoke(app, ["predict", "SrTiO3", "--output", str(tmp_path / "frame.xy")])
    assert np.allclose(np.loadtxt(tmp_path / "frame.xy")[:, 0], TWO_THETA, atol=1e-4)
    # a file's peaks carry the file's own wavelength: the d-spacings of the strongest peak agree
    for tube in ("CuKa", "MoKa"):
        runner.invoke(app, ["predict", "SrTiO3", "--wavelength", tube, "--output", str(tmp_path / f"{tube}.json")])
    cu, mo = (max(json.loads((tmp_path / f"{t}.json").read_text())[0]["peaks"], key=lambda p: p["intensity"])
              for t in ("CuKa", "MoKa"))
    assert mo["d_spacing"] == pytest.approx(cu["d_spacing"], rel=0.01) and mo["two_theta"] < cu["two_theta"] / 2
    result = runner.invoke(app, ["simulate", str(cif), "--doublet"])
    assert result.exit_code != 0 and "needs a peak width" in result.output
    result = runner.invoke(app, ["simulate", str(cif), "--wavelength", "XKa"])
    assert result.exit_code == 1 and "unknown wavelength" in result.output
