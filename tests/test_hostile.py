"""Issue 24 part A: every input a user (or an attacker) may give is answered or refused in one line: formulas of any
element H..Og, structure files that name code, measured files of any shape, and options out of range."""

from __future__ import annotations

import numpy as np
import pytest
from pymatgen.core import Element
from typer.testing import CliRunner

import xrdzoo
from xrdzoo.cli import app
from xrdzoo.measured import MeasurementError, read_measurement

ELEMENTS = [Element.from_Z(z).symbol for z in range(1, 119)]


def cli(*args: str):
    """(exit code, output) of one `xrdzoo` command."""
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, " ".join(result.output.replace("│", " ").split())  # Click's boxes unwrapped


@pytest.fixture(scope="module")
def default_member():
    return xrdzoo.load(xrdzoo.DEFAULT_MODEL)


def test_every_element_is_answered_or_refused_by_every_member(default_member, tiny_dataset):
    """Item 1: H..Og through the default template member, retrieval and a network; each formula is kept or refused
    with a reason naming it, none raises."""
    from xrdzoo.data import load_dataset

    retrieval = xrdzoo.create_predictor("retrieval")
    retrieval.fit(load_dataset(tiny_dataset).select("train"), progress=False)
    network = xrdzoo.create_model(encoder="onehot", backbone="mean")
    formulas = [f"{e}O2" if e != "O" else "O2" for e in ELEMENTS] + [f"Ba{e}O3" for e in ELEMENTS if e not in "BaO"]
    for member in (default_member, retrieval, network):
        answers = member.answer(formulas)
        assert len(answers.kept) + len(answers.refused) == len(formulas)
        assert all(formula in reason for formula, reason in answers.refused.items())
        assert np.isfinite(answers.patterns.intensities).all()
    answers = default_member.answer(["EsO2", "OgO2", "ThO2"])
    assert answers.kept == [2] and "cannot simulate Es: no X-ray scattering factors" in answers.refused["EsO2"]
    assert "cannot simulate Og" in answers.refused["OgO2"]
    old = xrdzoo.load("template_learned.mp_ternary")  # fitted when the element table ended at Pu
    assert "no volume per atom for Am (its table ends at Pu)" in old.answer(["AmO2"]).refused["AmO2"]
    template = xrdzoo.create_predictor("template")  # fitted now: its volume table covers H..Og
    template.fit(load_dataset(tiny_dataset).select("train"), progress=False)
    answers = template.answer(["AmCl", "RfCl", "NaCl"])
    assert answers.kept == [0, 2] and np.isfinite(answers.patterns.intensities).all()
    assert "the template member cannot simulate Rf: no X-ray scattering factors" in answers.refused["RfCl"]


def test_heavy_elements_on_the_command_line(tmp_path):
    """Item 1: `predict EsO2`, `compare` with an Es candidate and `identify --elements Og,Ts,Lv` answer in one line."""
    from test_identify import measured
    from xrdzoo.measured import write_xy

    path = str(write_xy(tmp_path / "BaTiO3.xy", measured("BaTiO3")))
    code, output = cli("predict", "EsO2")
    assert code == 2 and "cannot simulate Es" in output
    code, output = cli("compare", path, "BaTiO3", "EsO2")
    assert code == 0 and "EsO2: formula 'EsO2'" in output and "1 BaTiO3" in output
    code, output = cli("identify", path, "--elements", "Og,Ts,Lv", "--max-atoms", "4")
    assert code == 1 and "Error: none of the 4 candidate(s) could be scored" in output


def test_elements_tolerate_spaces_around_commas(tmp_path, structure_dir):
    """Item 8: `--elements ' Ba, Ti, O'` finds the same known structures as `Ba,Ti,O`."""
    from test_identify import measured
    from xrdzoo.measured import write_xy

    path = str(write_xy(tmp_path / "BaTiO3.xy", measured("BaTiO3")))
    code, output = cli("identify", path, "--elements", " Ba, Ti, O", "--max-atoms", "5", "--structures",
                       str(structure_dir))
    assert code == 0 and "compositions of Ba-O-Ti with at most 5 atoms" in output and ", 1 known structures" in output
    assert "known s" in output


HOSTILE = {  # a part of a pymatgen Structure dict -> what a hostile file puts there
    "top": lambda d: d.update({"@module": "this", "@class": "Zen"}),
    "lattice": lambda d: d["lattice"].update({"@module": "this"}),
    "site": lambda d: d["sites"][0].update({"@module": "this", "@class": "Site"}),
    "property": lambda d: d["sites"][0].update({"properties": {"x": {"@module": "this", "@class": "Zen"}}}),
}


@pytest.fixture
def hostile_files(tmp_path):
    """A good pymatgen JSON of cubic BaTiO3 and one hostile file per place a module can be named."""
    import copy
    import json

    from conftest import prototype_structures

    good = next(s for s in prototype_structures() if s.composition.reduced_formula == "BaTiO3").as_dict()
    (tmp_path / "good.json").write_text(json.dumps(good))
    for name, change in HOSTILE.items():
        content = copy.deepcopy(good)
        change(content)
        (tmp_path / f"{name}.json").write_text(json.dumps(content))
    (tmp_path / "structure.yaml").write_text("'@module': this\n'@class': Zen\n")
    return tmp_path


def test_structure_files_import_nothing_they_name(hostile_files, capfd):
    """Item 2: `simulate`, `data build`, `identify --structures` and `predict --true` read pymatgen JSON without
    importing the module it names (``this`` prints the Zen of Python on import)."""
    import sys

    from xrdzoo.xrd.simulate import read_structure

    assert read_structure(hostile_files / "good.json").composition.reduced_formula == "BaTiO3"
    assert read_structure(hostile_files / "property.json").composition.reduced_formula == "BaTiO3"  # not decoded
    for name in ("top", "lattice", "site"):
        code, output = cli("simulate", str(hostile_files / f"{name}.json"))
        assert code == 1 and "only pymatgen's Structure, Lattice and Site dicts are read" in output, output
    code, output = cli("simulate", str(hostile_files / "structure.yaml"))
    assert code == 1 and "YAML structure files are not read" in output
    code, output = cli("predict", "BaTiO3", "--true", str(hostile_files / "top.json"))
    assert code == 1 and "claims to be this.Zen" in output
    entries = hostile_files / "entries.json"
    entries.write_text("[" + ",".join((hostile_files / f"{n}.json").read_text() for n in HOSTILE) + "]")
    code, output = cli("data", "build", str(entries), "--output", str(hostile_files / "d.npz"), "--workers", "1")
    assert "unreadable" in output
    from test_identify import measured
    from xrdzoo.measured import write_xy

    scan = str(write_xy(hostile_files / "BaTiO3.xy", measured("BaTiO3")))
    code, output = cli("identify", scan, "--elements", "Ba,Ti,O", "--max-atoms", "5", "--structures", str(entries))
    assert code == 0 and "1 known structures from entries.json" in output  # the one whose properties are dropped
    assert "this" not in sys.modules and "Beautiful is better than ugly" not in capfd.readouterr().out


def test_a_huge_cell_or_short_wavelength_is_bounded():
    """Item 4: a 400 A cell is refused with an estimate; a 0.05 A wavelength keeps the fitted scattering range."""
    from pymatgen.core import Lattice, Structure

    from xrdzoo.xrd.simulate import SimulationError, reflections

    with pytest.raises(SimulationError, match=r"400x400x400 A cell at 1.54184 A means searching 5.58e\+08"):
        reflections(Structure(Lattice.cubic(400), ["Na"], [[0, 0, 0]]))
    rock_salt = Structure(Lattice.cubic(4), ["Na", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    peaks = reflections(rock_salt, "fast", 0.05)
    two_theta, intensities = peaks.two_theta, peaks.intensities
    assert np.isfinite(intensities).all() and intensities.max() == pytest.approx(100)
    assert two_theta.max() < 11.5  # sin(theta) / wavelength <= 2


# --- measured files (items 3 and 11) ------------------------------------------------------------------------------

X = 10 + 0.05 * np.arange(400)
Y = 100 + 1000 * np.exp(-(((X - 20) / 0.1) ** 2))


@pytest.mark.parametrize("line", ["{x:.2f};{y:.1f}", "{x:.2f}; {y:.1f}", "{x:.2f}\t{y:.1f}", "{x:.2f} {y:.1f}"])
def test_decimal_commas_are_read(tmp_path, line):
    """Item 3: 10,5;123 (and tab or space separated decimal commas) is 2-theta 10.5, not 10 and 5."""
    path = tmp_path / "comma.csv"
    path.write_text("2Theta;Intensity\n" + "\n".join(line.format(x=x, y=y).replace(".", ",") for x, y in zip(X, Y)))
    measured = read_measurement(path)
    assert np.allclose(measured.two_theta, X) and np.allclose(measured.intensities, Y, atol=0.06)


def test_comment_lines_in_any_encoding(tmp_path):
    path = tmp_path / "latin1.xy"
    header = "# Probe: Müller, 25 °C, Å\n".encode("latin-1") + "# 測定\n".encode("utf-16-le").replace(b"\0", b"")
    path.write_bytes(header + "\n".join(f"{x:.2f} {y:.1f}" for x, y in zip(X, Y)).encode())
    assert np.allclose(read_measurement(path).two_theta, X)


@pytest.mark.parametrize("change, message", [
    (lambda x, y: (x, y * 1e305), "beyond any detector's"),
    (lambda x, y: (x, -y), "no intensity is above zero"),
    (lambda x, y: (1.5406 / (2 * np.sin(np.radians(x) / 2)), y), "is the first column d-spacing"),  # d as 2-theta
    (lambda x, y: (4 * np.pi * np.sin(np.radians(x) / 2) / 1.5406, y), "is the first column d-spacing"),  # q
    (lambda x, y: (np.r_[x[:-1], np.inf], y), "NaN or infinite"),
    (lambda x, y: (x - 50, y), "outside 0..180"),
])
def test_scans_that_cannot_be_two_theta_are_refused(tmp_path, change, message):
    """Item 3: absurd intensities, all-negative counts, d or q columns given as 2-theta: one line each."""
    x, y = change(X, Y)
    path = tmp_path / "bad.xy"
    path.write_text("\n".join(f"{float(a)!r} {float(b)!r}" for a, b in zip(x, y)))
    with pytest.raises(MeasurementError, match=message) as error:
        read_measurement(path)
    assert "\n" not in str(error.value)


def test_a_large_measurement_is_read_and_corrected_in_linear_time(tmp_path):
    """Item 3/4: a 2,000,000-point scan (45 MB) is read and background-corrected in seconds (the background took
    time growing with the square of the points)."""
    import time

    from xrdzoo.measured import background

    x = np.linspace(5, 90, 2_000_000)
    path = tmp_path / "large.xy"
    np.savetxt(path, np.column_stack([x, 100 + 1000 * np.exp(-(((x - 30) / 0.1) ** 2))]), fmt=["%.7f", "%.1f"],
               header="a fine scan")
    start = time.perf_counter()
    measured = read_measurement(path)
    estimate = background(measured)
    assert time.perf_counter() - start < 30  # about 2 s on an idle laptop core
    assert measured.two_theta.size == x.size and np.abs(estimate[:100_000] - 100).max() < 1



def _measured_file(r: np.random.Generator) -> tuple[bytes, np.ndarray | None, np.ndarray | None, bool]:
    """A generated measured file: (content, 2-theta and intensities as written, whether it holds a trap)."""
    n = int(r.choice([5, 30, 200]))
    x = np.round(r.uniform(15, 60) + r.choice([0.01, 0.02, 0.05, 0.2]) * np.arange(n), 3)  # even steps, as scanned
    y = np.round(r.uniform(0, 5000, x.size), 1)
    decimal_comma = r.random() < 0.25
    separator = str(r.choice(["\t", ";", "; "] if decimal_comma else [" ", "\t", ",", ";", "  ", ", "]))
    header = bytes(r.choice([b"", b"# 2theta counts\n", b"2Theta,Intensity\n", "! Müller Å\n".encode("latin-1"),
                             "% 測定 °\n".encode("utf-8"), b"; step 0.05\n"]))
    trap = r.random() < 0.5
    if trap:
        kind = int(r.integers(7))
        if kind == 0:
            y[r.integers(y.size)] = r.choice([np.nan, np.inf, -np.inf, 1e300])
        elif kind == 1:
            y = -y - 1
        elif kind == 2:
            x = 1.5406 / (2 * np.sin(np.radians(x) / 2))  # d-spacings
        elif kind == 3:
            x = x + r.choice([-200.0, 200.0])
        elif kind == 4:
            x = np.repeat(x[: x.size // 2 + 1], 2)[: x.size]  # repeated 2-theta
        elif kind == 5:
            y[:] = 7.0
        else:
            return bytes(r.integers(0, 256, 400, dtype=np.uint8)), None, None, True
    lines = [f"{a:g}{separator}{b:g}" for a, b in zip(x, y)]
    if decimal_comma:
        lines = [line.replace(".", ",") for line in lines]
    if r.random() < 0.3:
        lines = lines[::-1]
    if r.random() < 0.3:
        lines.insert(int(r.integers(len(lines) + 1)), "# a comment between the points")
    ending = "\r\n" if r.random() < 0.2 else "\n"
    return header + ending.join(lines).encode() + ending.encode(), x, y, trap


def test_fuzz_measured_files_are_read_exactly_or_refused_in_one_line(tmp_path):
    """Item 11: 1,200 generated files (separators, decimal commas, headers in several encodings, CRLF, traps)."""
    r = np.random.default_rng(24)
    read = refused = 0
    for i in range(1200):
        content, x, y, trap = _measured_file(r)
        path = tmp_path / f"m{i}.xy"
        path.write_bytes(content)
        try:
            measured = read_measurement(path)
        except MeasurementError as error:
            assert "\n" not in str(error)
            assert trap or x.size < 20, (content[:200], error)
            refused += 1
            continue
        assert not trap, (content[:200], measured.two_theta[:5])
        assert np.array_equal(measured.two_theta, x) and np.array_equal(measured.intensities, y)
        read += 1
    assert read > 300 and refused > 500


# --- bounded work and option ranges (item 4) ----------------------------------------------------------------------

@pytest.mark.parametrize("args, message", [
    (["compare", "{scan}", "BaTiO3", "--fwhm", "inf"], "got fwhm inf"),
    (["compare", "{scan}", "BaTiO3", "--fwhm", "nan"], "got fwhm nan"),
    (["compare", "{scan}", "BaTiO3", "--max-shift", "1e6"], "--max-shift in 0..5 degrees"),
    (["compare", "{scan}", "BaTiO3", "--max-shift", "-1"], "--max-shift in 0..5 degrees"),
    (["predict", "BaTiO3", "--caglioti", "nan,0,0.01"], "three finite numbers U, V, W"),
    (["predict", "BaTiO3", "--fwhm", "inf"], "fwhm must be a positive width in degrees, at most 30"),
    (["predict", "BaTiO3", "--two-theta", "5:90:1e-9"], "has 8.5e+10 points"),
    (["predict", "BaTiO3", "--two-theta", "nan:90:1"], "need 0 <= start < stop <= 180"),
    (["predict", "BaTiO3", "--threshold", "nan"], "nan is out of range: give a number at least 0 and at most 100"),
    (["predict", "BaTiO3", "--batch-size", "0"], "batch_size must be a whole number of at least 1, got 0"),
    (["train", "--data", "{scan}", "--epochs", "-1"], "epochs must be a whole number of at least 1, got -1"),
    (["predict", "BaTiO3", "--wavelength", "nan"], "outside 0.05..5 A"),
    (["identify", "{scan}", "--elements", "Ba,Ti,O", "--top", "-1"], "-1 is out of range: give a number at least 1"),
    (["identify", "{scan}", "--elements", "Ba,Ti,O", "--max-atoms", "1000"], "give about 1.66e+08 candidate"),
    (["identify", "{scan}", "--elements", "Ba,Ti,O", "--max-atoms", "-3"], "-3 is out of range"),
    (["train", "--data", "{scan}", "--lr", "inf"], "inf is out of range: give a number above 0 and at most 10"),
    (["train", "--data", "{scan}", "--seed", "-1"], "-1 is out of range: give a number at least 0"),
    (["train", "--data", "{scan}", "--dropout", "1.5"], "1.5 is out of range"),
    (["train", "--data", "{scan}", "--patience", "0"], "0 is out of range"),
    (["data", "build", "{scan}", "--output", "x.npz", "--workers", "-2"], "-2 is out of range"),
])
def test_numeric_options_are_range_checked_before_any_work(tmp_path, args, message):
    """Item 4: inf, nan, negative and absurd values of every numeric option are one line, before a model loads."""
    from test_identify import measured
    from xrdzoo.measured import write_xy

    scan = str(write_xy(tmp_path / "BaTiO3.xy", measured("BaTiO3")))
    code, output = cli(*(arg.format(scan=scan) for arg in args))
    assert code in (1, 2) and message in output, output


def test_score_and_profile_bounds_in_python():
    from xrdzoo.errors import InputError
    from xrdzoo.formulas import compositions
    from xrdzoo.identify import Scorer
    from xrdzoo.xrd.profiles import Profile

    for options in ({"fwhm": float("inf")}, {"max_shift": 1e6}, {"step": 1e-9}, {"strain_step": 1e-9}):
        with pytest.raises(InputError, match="the score needs"):
            Scorer(**options)
    with pytest.raises(InputError, match="three finite numbers"):
        Profile(caglioti=(0.0, float("inf"), 0.01))
    assert len(compositions(["Ba", "Ti", "O"], 16)) == 493  # the default stays well inside the limit


def test_a_dataset_holding_pickled_objects_is_refused_in_one_line(tmp_path):
    """An .npz whose arrays are pickled objects is refused (never unpickled) by `data info`, `train`, `evaluate`."""
    path = tmp_path / "pickled.npz"
    np.savez(path, settings=np.array([{"format": "xrdzoo-dataset"}], dtype=object))
    for args in (["data", "info", str(path)], ["train", "--data", str(path), "--backbone", "mean", "--output",
                                                str(tmp_path / "run")]):
        code, output = cli(*args)
        assert code == 1 and "is not an xrdzoo dataset file" in output and "allow_pickle=False" in output, output
