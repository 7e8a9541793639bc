"""The strict formula parser: the traps a hostile user tried, hydrates and brackets, and a seeded fuzz test."""

from __future__ import annotations

import random

import numpy as np
import pytest

from typer.testing import CliRunner

import xrdzoo
from xrdzoo import checkpoint
from xrdzoo.cli import app
from xrdzoo.formulas import ALL_ELEMENTS, KNOWN_SYMBOLS, EncodingError, parse
from xrdzoo.errors import XRDZooError


@pytest.fixture(scope="module")
def model():
    return xrdzoo.create_model("fraction", "mlp", hidden=[16])


@pytest.mark.parametrize("formula, message", [
    ("BaTIO3", "'T' is not read as a hydrogen isotope; write H, or did you mean Ti?"),
    ("CDS", "'D' is not read as a hydrogen isotope; write H, or did you mean Cd?"),
    ("PD", "or did you mean Pd?"),
    ("D2O", "write H"),
    ("Fe(II)O", r"\(II\) is a Roman numeral .* e.g. 'FeO'"),
    ("Ba0TiO3", "count 0 after 'Ba' is zero"),
    ("Ba1e-9TiO3", "count 1e-9 after 'Ba' is outside 0.001..10000"),
    ("Ba1e400TiO3", "count 1e400 after 'Ba' is not a finite number"),
    ("(Ba1000)1000O", "Ba amounts to 1e\\+06 is outside"),
    ("H@f", "has '@'"),
    ("Fe3+", "sign '\\+'"),
    ("Ba-1TiO3", "sign '-': no charges or negative counts"),
    ("Fe 2O3", "the part '2O3' after a space starts with no element symbol, so it is ambiguous"),
    ("N a Cl", "the part 'a' after a space starts with no element symbol"),
    ("bATiO3", "'b' starts no element"),
    ("Fe.5O", "decimal point between digits"),
    ("2H2O", "the number '2' follows no element"),
    ("Ba(TiO3", "unbalanced brackets"),
    ("CuSO4·", "hydrate dot must join two formula units"),
])
def test_traps_are_refused_with_one_line_saying_which(formula, message):
    with pytest.raises(EncodingError, match=message) as error:
        parse(formula)
    assert "\n" not in str(error.value) and isinstance(error.value, ValueError)
    assert isinstance(error.value, XRDZooError)


@pytest.mark.parametrize("formula, expected", [
    ("Ba2Ti2O6", {"Ba": 1, "Ti": 1, "O": 3}),
    ("CuSO4·5H2O", {"Cu": 1, "S": 1, "O": 9, "H": 10}),
    ("CuSO4.5H2O", {"Cu": 1, "S": 1, "O": 9, "H": 10}),  # the hydrate dot, not 4.5 oxygens
    ("Na2CO3.10H2O", {"Na": 2, "C": 1, "O": 13, "H": 20}),
    ("CaSO4·0.5H2O", {"Ca": 1, "S": 1, "O": 4.5, "H": 1}),
    ("K3{Fe[CN]6}", {"K": 3, "Fe": 1, "C": 6, "N": 6}),
    ("Fe2(SO4)3", {"Fe": 2, "S": 3, "O": 12}),
    ("Li0.5CoO2", {"Li": 0.5, "Co": 1, "O": 2}),
    (" CO ", {"C": 1, "O": 1}),
    ("Fe2 O3", {"Fe": 2, "O": 3}),  # spaces between parts, as pymatgen reads them and CIFs write them
    ("Ba Ti O3", {"Ba": 1, "Ti": 1, "O": 3}),
    ("Cl Cs H4", {"Cs": 1, "H": 4, "Cl": 1}),
    ("CuSO4 · 5H2O", {"Cu": 1, "S": 1, "O": 9, "H": 10}),
])
def test_brackets_hydrates_and_fractions_read_as_written(formula, expected):
    assert dict(parse(formula)) == pytest.approx(expected)


def test_a_bare_string_is_one_formula(model):
    assert xrdzoo.predict("CO", model).intensities.shape == (1, 1024)
    assert xrdzoo.predict("BaTiO3", model).intensities.shape == (1, 1024)
    assert np.array_equal(xrdzoo.predict("BaTiO3", model).intensities, xrdzoo.predict(["BaTiO3"], model).intensities)


def test_answer_reports_an_absurd_count_instead_of_overflowing(model):
    answers = model.answer(["BaTiO3", "Ba1e400TiO3"])
    assert answers.kept == [0] and "not a finite number" in answers.refused["Ba1e400TiO3"]
    assert np.array_equal(answers.patterns.intensities, model.predict(["BaTiO3"]))


@pytest.mark.parametrize("formula, reason", [("Ba1e400TiO3", "not a finite number"), ("BaTIO3", "did you mean Ti?"),
                                             ("Fe(II)O", "Roman numeral")])
def test_the_cli_refuses_a_trap_in_one_line(model, tmp_path, formula, reason):
    weights = checkpoint.save(tmp_path / "mlp.safetensors", model)
    result = CliRunner().invoke(app, ["predict", formula, "--checkpoint", str(weights)])
    assert result.exit_code == 2 and reason in result.output, result.output
    assert "Traceback" not in result.output and "predicted peaks" not in result.output


# --- fuzz: formulas built from known parts, so the right answer (a composition or a refusal) is known ----------

TRAPS = [
    lambda r, f: f + "D" + str(r.randint(1, 3)),  # isotopes
    lambda r, f: f + "T",
    lambda r, f: f.replace(f[0], f[0] + "(" + r.choice(["I", "II", "III", "IV", "V", "VI"]) + ")", 1),
    lambda r, f: f + r.choice(["Ba0", "O0.0", "Ba1e-9", "Sr0.0001", "Ti1e400", "O" + "9" * 400, "Ca20000"]),
    lambda r, f: f + r.choice(["+", "2+", "-", "3-", "^2+"]),
    lambda r, f: f[: r.randint(1, len(f))] + "@" + f[r.randint(1, len(f)):],
    lambda r, f: f + " " + str(r.randint(2, 9)) + r.choice(["O", "", "H2O"]),  # a count after a space: ambiguous
    lambda r, f: r.choice(["b", "c", "x"]) + f,  # a symbol in the wrong case
    lambda r, f: f + r.choice(["(", ")", "[]", "·", "."]),
]


EVERY_ELEMENT = sorted(KNOWN_SYMBOLS)  # H..Og


def _clean(r: random.Random) -> tuple[str, dict[str, float]]:
    """A well-formed formula and its composition."""
    text, amounts = "", {}
    for _ in range(r.randint(1, 4)):
        group = [(r.choice(EVERY_ELEMENT), r.choice([1, 1, 2, 3, 4, 0.5, 0.25, 12])) for _ in range(r.randint(1, 3))]
        multiplier = r.choice([1, 1, 1, 2, 3]) if len(group) > 1 else 1  # a lone symbol in brackets may be Roman
        part = "".join(s + ("" if n == 1 else f"{n:g}") for s, n in group)
        text += " " if text and r.random() < 0.2 else ""  # spaces between parts, as CIFs write them
        text += part if multiplier == 1 and r.random() < 0.7 else f"({part}){multiplier if multiplier > 1 else ''}"
        for symbol, n in group:
            amounts[symbol] = amounts.get(symbol, 0) + n * multiplier
    if r.random() < 0.2:
        text += f"·{r.randint(1, 9)}H2O"
        amounts["H"] = amounts.get("H", 0) + 2 * int(text.rsplit("·", 1)[1][0])
        amounts["O"] = amounts.get("O", 0) + int(text.rsplit("·", 1)[1][0])
    return text, amounts


def _fractions(amounts) -> dict[str, float]:
    total = sum(amounts.values())
    return {symbol: amount / total for symbol, amount in amounts.items()}


def test_fuzz_formulas_are_read_exactly_or_refused_with_a_value_error(model):
    r = random.Random(13)
    refused = read = beyond = 0
    for _ in range(1500):
        formula, amounts = _clean(r)
        trap = r.random() < 0.5
        if trap:
            formula = r.choice(TRAPS)(r, formula)
        answers = model.answer([formula])
        try:
            composition = dict(parse(formula))
        except ValueError as error:
            assert isinstance(error, EncodingError) and "\n" not in str(error), (formula, error)
            assert trap, f"{formula!r} is well formed but was refused: {error}"
            assert answers.refused == {formula: str(error)}
            refused += 1
            continue
        assert not trap, f"{formula!r} was read as {composition} instead of refused"
        assert _fractions(composition) == pytest.approx(_fractions(amounts)), formula
        if set(composition) <= set(ALL_ELEMENTS):  # the model's vocabulary (H..Pu): it answers
            assert answers.kept == [0] and np.isfinite(answers.patterns.intensities).all()
            assert np.array_equal(answers.patterns.intensities, xrdzoo.predict(formula, model).intensities)
        else:  # an element beyond it (Am..Og): refused, saying which
            assert "is not among this encoder's 94 elements" in answers.refused[formula]
            beyond += 1
        read += 1
    assert refused > 500 and read > 500 and beyond > 100


def test_charge_balance_of_one_formula_is_decided_as_compositions_decides_it():
    from xrdzoo.formulas import compositions, formula_of, formula_text, is_charge_balanced

    balanced = set(compositions(["Ca", "P", "O", "F"], 8, charge_balanced=True))
    for formula in compositions(["Ca", "P", "O", "F"], 8):
        assert is_charge_balanced(formula) == (formula in balanced)
    assert is_charge_balanced("Ca5(PO4)3F") and not is_charge_balanced("NaO3")
    assert formula_text(formula_of("Ca5P3O12F")) == "Ca5P3O12F" and formula_text(formula_of("O2Ti")) == "TiO2"
