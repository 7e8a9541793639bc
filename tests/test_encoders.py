"""Encoders: shapes and values on known formulas, every error case, config round trips."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from xrdzoo import registry
from xrdzoo.encoders import (ALL_ELEMENTS, MAGPIE_PROPERTIES, PAPER_ELEMENTS, EncodingError, FractionEncoder,
                             MagpieEncoder, OneHotEncoder, magpie_table)

ENCODERS = [OneHotEncoder, FractionEncoder, MagpieEncoder]


def ones(encoder: OneHotEncoder, formula: str) -> set[tuple[int, str]]:
    """The (count, element) pairs where the one-hot matrix of ``formula`` has a 1."""
    rows, cols = torch.nonzero(encoder.encode([formula])[0, 0], as_tuple=True)
    return {(int(r) + 1, encoder.elements[c]) for r, c in zip(rows, cols)}


def test_onehot_matches_the_papers_example():
    encoder = OneHotEncoder(preset="paper")
    assert encoder.shape == (1, 10, 84) and len(PAPER_ELEMENTS) == 84
    assert ones(encoder, "FeBO3") == {(1, "Fe"), (1, "B"), (3, "O")}
    x = encoder.encode(["FeBO3", "BaTiO3"])
    assert x.shape == (2, 1, 10, 84) and x.dtype == torch.float32 and x.sum() == 6


def test_onehot_reduces_and_takes_the_default_vocabulary():
    encoder = OneHotEncoder()
    assert encoder.shape == (1, 10, len(ALL_ELEMENTS)) and ALL_ELEMENTS[-1] == "Pu"
    assert ones(encoder, "Ba2Ti2O6") == ones(encoder, "BaTiO3") == {(1, "Ba"), (1, "Ti"), (3, "O")}
    assert ones(OneHotEncoder(max_count=128), "Li121AgS3")  # counts beyond 10 fit a taller matrix


@pytest.mark.parametrize("make, formula, message", [
    (OneHotEncoder, "Xx2O", "unknown element 'Xx' in formula 'Xx2O'"),
    (OneHotEncoder, "Ba(TiO3", "malformed formula 'Ba(TiO3'"),
    (OneHotEncoder, "", "empty formula ''"),
    (OneHotEncoder, "  ", "empty formula"),
    (OneHotEncoder, "Fe0.5O", "'Fe0.5O': fractional count 0.5 of Fe"),
    (lambda: OneHotEncoder(max_count=128), "Li130O", "count 130 of Li exceeds max_count 128"),
    (OneHotEncoder, "Ba11TiO3", "count 11 of Ba exceeds max_count 10"),
    (lambda: OneHotEncoder(preset="paper"), "XeF2", "element 'Xe' of formula 'XeF2' is not among"),
    (FractionEncoder, "Am2O3", "element 'Am'"),
    (FractionEncoder, None, "not a string"),
    (MagpieEncoder, "O2-", "formula 'O2-' has a sign '-'"),
])
def test_encoding_errors_name_the_formula_and_reason(make, formula, message):
    with pytest.raises(EncodingError, match=message.replace("(", r"\(")) as error:
        make().encode(["BaTiO3", formula])
    assert "\n" not in str(error.value) and isinstance(error.value, ValueError)


def test_a_string_is_not_a_list_of_formulas():
    with pytest.raises(TypeError, match=r"wrap it: \['BaTiO3'\]"):
        FractionEncoder().encode("BaTiO3")


def test_fraction_values():
    encoder = FractionEncoder(elements="Ba,Ti,O,Fe")
    assert encoder.shape == (4,)
    x = encoder.encode(["BaTiO3", "Fe0.5O", "Ba2Ti2O6"])
    assert torch.allclose(x, torch.tensor([[0.2, 0.2, 0.6, 0], [0, 0, 2 / 3, 1 / 3], [0.2, 0.2, 0.6, 0]]))


def test_magpie_values_follow_the_element_table():
    encoder = MagpieEncoder()
    names = encoder.feature_names
    assert encoder.shape == (len(names),) == (5 * len(MAGPIE_PROPERTIES),)
    table = magpie_table()
    z = table[:, list(MAGPIE_PROPERTIES).index("Z")]
    ba, ti, o = (z[ALL_ELEMENTS.index(e)] for e in ("Ba", "Ti", "O"))
    x = encoder.encode(["BaTiO3", "Ba2Ti2O6", "O"]).numpy()
    feature = {name: x[0, i] for i, name in enumerate(names)}
    mean = 0.2 * ba + 0.2 * ti + 0.6 * o
    assert feature["mean_Z"] == pytest.approx(mean, abs=1e-5)
    assert feature["min_Z"] == pytest.approx(o, abs=1e-6) and feature["max_Z"] == pytest.approx(ba, abs=1e-6)
    assert feature["range_Z"] == pytest.approx(ba - o, abs=1e-5)
    assert feature["deviation_Z"] == pytest.approx(0.2 * abs(ba - mean) + 0.2 * abs(ti - mean)
                                                   + 0.6 * abs(o - mean), abs=1e-5)
    assert np.array_equal(x[0], x[1])  # reduced first
    assert np.all(x[2, [names.index(f"{s}_Z") for s in ("range", "deviation")]] == 0)  # one element: no spread
    assert np.isfinite(table).all() and np.allclose(table.mean(axis=0), 0, atol=1e-9)


@pytest.mark.parametrize("make", [lambda: OneHotEncoder(preset="paper"), lambda: OneHotEncoder(max_count=12),
                                  lambda: FractionEncoder(elements=["O", "Ti", "Ba"]), MagpieEncoder])
def test_config_round_trip(make):
    encoder = make()
    config = json.loads(json.dumps(encoder.config()))
    rebuilt = type(encoder)(**config)
    formulas = ["BaTiO3", "TiO2", "BaO"]
    assert rebuilt.shape == encoder.shape and rebuilt.config() == encoder.config()
    assert torch.equal(rebuilt.encode(formulas), encoder.encode(formulas))


def test_registered_names_build_the_encoders():
    assert isinstance(registry.create("encoders", "onehot", max_count=12), OneHotEncoder)
    for name in ("onehot", "fraction", "magpie"):
        assert registry.create("encoders", name).encode([]).shape[0] == 0


@pytest.mark.parametrize("options, message", [({"max_count": 0}, "max_count"), ({"preset": "big"}, "preset"),
                                             ({"elements": ["Ba", "Qq"]}, "unknown symbols"),
                                             ({"elements": ["O", "O"]}, "repeated")])
def test_bad_options(options, message):
    with pytest.raises(ValueError, match=message):
        OneHotEncoder(**options)


def test_shared_formulas_encode(shared_csv):
    """Every formula of the shared MP data encodes with fraction and magpie; onehot leaves out only big counts."""
    import pandas as pd

    formulas = pd.read_csv(shared_csv, usecols=["formula"])["formula"].unique()[:3000].tolist()
    for encoder in (FractionEncoder(), MagpieEncoder()):
        assert torch.isfinite(encoder.encode(formulas)).all()
    onehot = OneHotEncoder()
    for formula in formulas:
        try:
            onehot.encode([formula])
        except EncodingError as error:
            assert "exceeds max_count 10" in str(error)
