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
