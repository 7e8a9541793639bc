"""Issue 24 part A: every input a user (or an attacker) may give is answered or refused in one line: formulas of any
element H..Og, structure files that name code, measured files of any shape, and options out of range."""

from __future__ import annotations

import numpy as np
import pytest
from pymatgen.core import Element
from typer.testing import CliRunner

import xrdzoo
from xrdzoo.cli import app

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
        assert np.isfinite(answers.patterns).all()
    answers = default_member.answer(["AmO2", "OgO2", "ThO2"])
    assert answers.kept == [2] and "no volume per atom for Am" in answers.refused["AmO2"]


def test_heavy_elements_on_the_command_line(tmp_path):
    """Item 1: `predict AmO2`, `compare` with an Am candidate and `identify --elements Og,Ts,Lv` answer in one line."""
    from test_identify import measured
    from xrdzoo.measured import write_xy

    path = str(write_xy(tmp_path / "BaTiO3.xy", measured("BaTiO3")))
    code, output = cli("predict", "AmO2")
    assert code == 2 and "no volume per atom for Am" in output
    code, output = cli("compare", path, "BaTiO3", "AmO2")
    assert code == 0 and "AmO2: formula 'AmO2'" in output and "1 BaTiO3" in output
    code, output = cli("identify", path, "--elements", "Og,Ts,Lv", "--max-atoms", "4")
    assert code == 1 and "Error: none of the 4 candidate(s) could be scored" in output


def test_elements_tolerate_spaces_around_commas(tmp_path, structure_dir):
    """Item 8: `--elements ' Ba, Ti, O'` finds the same known structures as `Ba,Ti,O`."""
    from test_identify import measured
    from xrdzoo.measured import write_xy

    path = str(write_xy(tmp_path / "BaTiO3.xy", measured("BaTiO3")))
    code, output = cli("identify", path, "--elements", " Ba, Ti, O", "--max-atoms", "5", "--structures",
                       str(structure_dir))
    assert code == 0 and "compositions of Ba-O-Ti with at most 5 atoms, 1 known structures" in output
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
    assert "this" not in sys.modules and "Beautiful is better than ugly" not in capfd.readouterr().out


def test_a_huge_cell_or_short_wavelength_is_bounded():
    """Item 4: a 400 A cell is refused with an estimate; a 0.05 A wavelength keeps the fitted scattering range."""
    from pymatgen.core import Lattice, Structure

    from xrdzoo.xrd.simulate import SimulationError, reflections

    with pytest.raises(SimulationError, match=r"400x400x400 A cell at 1.54184 A means searching 5.58e\+08"):
        reflections(Structure(Lattice.cubic(400), ["Na"], [[0, 0, 0]]))
    rock_salt = Structure(Lattice.cubic(4), ["Na", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    two_theta, intensities, _ = reflections(rock_salt, "fast", 0.05)
    assert np.isfinite(intensities).all() and intensities.max() == pytest.approx(100)
    assert two_theta.max() < 11.5  # sin(theta) / wavelength <= 2
