"""The Python API does what the command line does: for predict, simulate, compare and identify, what the command
prints and writes equals what a notebook user gets from the library's functions."""

import numpy as np
import pytest
from typer.testing import CliRunner

import xrdzoo
from conftest import prototype_structures
from test_identify import measured
from xrdzoo import Frame
from xrdzoo.cli import app
from xrdzoo.errors import InputError
from xrdzoo.formulas import compositions
from xrdzoo.identify import Scorer, rank
from xrdzoo.measured import read_measurement, write_xy
from xrdzoo.prediction import peak_table
from xrdzoo.xrd.simulate import read_structure, reflections

MODEL = "resnet20_onehot.mp_abc3"  # a shipped network: quick to load and to answer


def _run(*args: str) -> str:
    """What `xrdzoo ARGS` prints on stdout; the command must succeed."""
    result = CliRunner().invoke(app, [str(a) for a in args])
    assert result.exit_code == 0, result.output
    return result.stdout


@pytest.fixture(scope="module")
def scan(tmp_path_factory):
    """A measured-looking BaTiO3 scan (Cu K-alpha) as an .xy file."""
    return write_xy(tmp_path_factory.mktemp("scan") / "BaTiO3.xy", measured("BaTiO3"))


def test_predict_on_another_frame(tmp_path):
    formulas, out = ["BaTiO3", "SrTiO3"], tmp_path / "mo.csv"
    printed = _run("predict", *formulas, "--model", MODEL, "--wavelength", "MoKa", "--two-theta", "5:60:0.05",
                   "--profile", "pseudo-voigt", "--fwhm", "0.2", "--output", out)
    frame = Frame.of("MoKa", "5:60:0.05", shape="pseudo-voigt", fwhm=0.2)
    drawn = xrdzoo.predict(formulas, MODEL, frame)
    table = np.loadtxt(out, delimiter=",", skiprows=1)
    assert len(drawn) == 2 and table.shape == (drawn.two_theta.size, 3)
    assert np.allclose(table[:, 0], drawn.two_theta, atol=1e-4)
    assert np.allclose(table[:, 1:].T, drawn.intensities, atol=1e-4)
    model_frame = xrdzoo.predict(formulas, MODEL)  # the model's own frame: its peak table at Mo K-alpha
    for i, formula in enumerate(formulas):
        assert peak_table(formula, model_frame[i], 10.0, frame.wavelength) in printed
    assert model_frame.on_frame and np.array_equal(Frame().draw(model_frame).intensities, model_frame.intensities)


def test_simulate_with_hkls(tmp_path):
    cif, out = tmp_path / "SrTiO3.cif", tmp_path / "srtio3.xy"
    prototype_structures()[20].to(filename=str(cif))  # a cubic perovskite
    printed = _run("simulate", cif, "--simulator", "pymatgen", "--wavelength", "CoKa", "--fwhm", "0.1",
                   "--output", out)
    frame = Frame.of("CoKa", fwhm=0.1)
    peaks = reflections(read_structure(cif), "pymatgen", frame.wavelength)
    assert peaks.hkls is not None and len(peaks.hkls) == peaks.two_theta.size
    rows = [line.split() for line in printed.splitlines()[2:] if line[:1].isdigit()]
    assert [(r[0], r[1], r[2], " ".join(r[3:])) for r in rows] == [
        (f"{t:.3f}", f"{i:.2f}", f"{d:.4f}", h) for t, i, d, h in
        zip(peaks.two_theta, peaks.intensities, peaks.d, peaks.hkls)]
    written = np.loadtxt(out)
    drawn = frame.draw(peaks[None])
    assert np.allclose(written[:, 0], drawn.two_theta, atol=1e-4)
    assert np.allclose(written[:, 1], drawn.intensities[0], atol=1e-4)


def test_compare(scan):
    formulas = ["BaTiO3", "SrTiO3", "BaTi2O5", "Ba2TiO4"]
    printed = _run("compare", scan, *formulas, "--model", MODEL, "--fwhm", "0.4", "--max-shift", "0.2")
    ranking = rank(read_measurement(scan, Frame.of("CuKa").wavelength), formulas, xrdzoo.load(MODEL),
                   scorer=Scorer(0.4, 0.2))
    assert printed.strip() == ranking.table(len(ranking.matches))


def test_identify(scan):
    printed = _run("identify", scan, "--elements", "Ba,Ti,O", "--max-atoms", "6", "--charge-balanced", "--model",
                   MODEL, "--top", "5")
    formulas = compositions(["Ba", "Ti", "O"], 6, charge_balanced=True)
    ranking = rank(read_measurement(scan), formulas, xrdzoo.load(MODEL))
    assert printed.strip() == ranking.table(5, ["Ba", "Ti", "O"])


def test_a_frame_refuses_bad_options_in_one_line():
    for options, message in (({"axis": "x"}, "unknown axis 'x'"), ({"doublet": True}, "needs a peak width"),
                             ({"caglioti": "1,2"}, "three finite numbers"), ({"wavelength": "XKa"}, "unknown wave"),
                             ({"two_theta": "5:90"}, "give start:stop:step")):
        with pytest.raises(InputError, match=message):
            Frame.of(**options)


def test_find_peaks_reads_a_pattern_on_its_own_grid():
    """A Pattern carries its positions: the model frame's bins give the same peaks as the bare array, and a
    pattern drawn on another grid gives its peaks at that grid's 2-theta."""
    from xrdzoo.xrd.peaks import find_peaks
    from xrdzoo.xrd.pattern import Pattern, parse_grid
    from xrdzoo.xrd.profiles import Profile

    peaks = Pattern([30.0, 45.0], [100.0, 50.0])
    frame = Pattern.from_frame(peaks.on_grid())
    assert np.array_equal(find_peaks(frame).positions, find_peaks(frame.intensities).positions)
    drawn = peaks.resampled(parse_grid("20:60:0.01"), Profile(fwhm=0.2))
    found = find_peaks(drawn)
    assert np.allclose(found.apexes, [30.0, 45.0], atol=0.01) and np.allclose(found.intensities, [100, 50], atol=1)
