"""Predictors fitted on structures: retrieval and template substitution, on the prototype dataset the tests build."""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
from dataclasses import replace

import numpy as np
import pytest
from pymatgen.core import Composition, Element
from typer.testing import CliRunner

import xrdzoo
from xrdzoo import checkpoint, registry
from xrdzoo.cli import app
from xrdzoo.data import load_dataset
from xrdzoo.encoders import EncodingError
from xrdzoo.errors import InputError
from xrdzoo.metrics import peak_f1
from xrdzoo.builder import create_predictor
from xrdzoo.contracts import Candidate
from xrdzoo.metrics import pick_peaks, pick_peaks_of_rows
from xrdzoo.predictors import collector_paused, template
from xrdzoo.predictors.consensus import Voters, agreed_peaks_first
from xrdzoo.predictors.template import TYPES, VOTER_PEAKS, _logistic, own_peaks
from xrdzoo.xrd.pattern import N_POINTS
from xrdzoo.formulas import N_ELEMENTS, formula_of
from xrdzoo.predictors.chemistry import element_table, mapping_cost
from xrdzoo.xrd.simulate import simulate_cell

runner = CliRunner()


@pytest.fixture(scope="module")
def data(tiny_dataset):
    return load_dataset(tiny_dataset)


@pytest.fixture(scope="module")
def fitted(data):
    members = {"retrieval": create_predictor("retrieval"), "template": create_predictor("template"),
               "learned": create_predictor("template", ranker="learned", k=4)}
    for member in members.values():
        member.fit(data.select("train"), data.select("val"), progress=False)
    return members


def test_the_numpy_ranker_gives_the_logits_of_the_network_it_was_trained_as(fitted):
    import torch

    from xrdzoo.predictors.template import _N_FEATURES, _ranker_network

    ranker = fitted["learned"].scorer
    network = _ranker_network(ranker.state_dict()["1.weight"].shape[0])
    network.load_state_dict({name: torch.from_numpy(array) for name, array in ranker.state_dict().items()})
    features = np.random.default_rng(0).normal(size=(50, _N_FEATURES)).astype(np.float32) * 3
    with torch.no_grad():
        expected = network(torch.from_numpy(features)).squeeze(-1).numpy()
    assert np.abs(ranker(features) - expected).max() < 1e-4 * max(1.0, np.abs(expected).max())
    assert np.abs(ranker.state_dict()["5.weight"]).sum() > 0  # trained, not the zeros it starts as


def test_a_fitted_member_loads_and_answers_without_importing_torch_or_scipy_special(fitted, tmp_path):
    path = checkpoint.save(tmp_path / "learned.safetensors", fitted["learned"])
    script = ("import sys, xrdzoo; m = xrdzoo.load(sys.argv[1]); a = m.answer(['BaTiO3', 'LaAlO3'], top=2); "
              "print(len(a.kept), 'template' in a.how[1], 'torch' in sys.modules, 'scipy.special' in sys.modules)")
    run = subprocess.run([sys.executable, "-c", script, str(path)], capture_output=True, text=True, check=True)
    assert run.stdout.split() == ["2", "True", "False", "False"]  # a substituted template: the ranker ran


def test_formula_types_and_fractions():
    assert formula_of("BaTiO3").kind == formula_of("SrZrO3").kind == (1.0, 1.0, 3.0)
    assert formula_of("Ba2Ti2O6") == formula_of("BaTiO3")
    assert formula_of("Fe0.5O0.5").kind == (1.0, 1.0)
    assert formula_of("MgAl2O4").kind == (1.0, 2.0, 4.0)
    fractions = formula_of("BaTiO3").fractions()
    assert fractions.sum() == pytest.approx(1) and fractions[8 - 1] == pytest.approx(0.6)
    with pytest.raises(EncodingError):
        formula_of("Xx2O")


def test_the_formula_index_finds_types_known_formulas_and_nearest_neighbours_as_a_dense_search_does():
    from xrdzoo.formulas import formulas_of_cells
    from xrdzoo.predictors.retrieval import FormulaIndex

    names = ["NaCl", "KCl", "ClNa", "BaTiO3", "SrTiO3", "CaTiO3", "MgAl2O4", "Li7La3Zr2O12", "HLiBeBCNOFNeNaMg", "O2"]
    index = FormulaIndex.of([formula_of(f) for f in names])
    assert index.find(formula_of("NaCl")).tolist() == [0, 2] and index.find(formula_of("BaZrO3")).tolist() == []
    assert index.find(formula_of("Li7La3Zr2O12Hf")).tolist() == []  # more elements than any row
    assert index.by_kind[formula_of("BaTiO3").kind].tolist() == [3, 4, 5]
    assert index.formula(6) == formula_of("MgAl2O4")
    dense = index.fractions()
    assert np.allclose(dense.sum(1), 1) and dense[0, 10] == 0.5  # Na
    narrow = FormulaIndex.of([formula_of(f) for f in ["BaTiO3", "NaCl"]])  # a query with more elements than any row
    assert narrow.find(formula_of("BaSrTiO3")).tolist() == []
    assert narrow.nearest(formula_of("BaSrTiO3"))[0].tolist() == []
    table = np.nan_to_num(element_table())
    for query in ["SrZrO3", "MgTiO3", "NaBr", "LiMnO2", "CuFeS2", "Fe3O4", "Li6La3Zr2O12F"]:
        q = formula_of(query)
        # k = 1, 2 cut through ties (NaBr; MgTiO3, below); over every type, k = 8 is more than the rows holding an
        # element of some queries (the compiled search's fallback)
        for same_kind, k in itertools.product((True, False), (1, 2, 3, 8)):
            rows, distance = index.nearest(q, k, same_kind)
            pool = index.by_kind.get(q.kind, np.zeros(0, int)) if same_kind else np.arange(len(index))
            l1 = np.abs(dense[pool] - q.fractions()).sum(1)
            unlike = np.abs(dense[pool] @ table - q.fractions() @ table).sum(1)
            order = np.lexsort((pool, np.round(unlike, 9), np.round(l1, 9)))[:k]
            assert rows.tolist() == pool[order].tolist() and np.allclose(distance, l1[order])
    # the three titanates are all 0.4 from MgTiO3: the chemically closest first (Ca, Sr, Ba), not in row order
    assert index.nearest(formula_of("MgTiO3"), 3)[0].tolist() == [5, 4, 3]
    # cells given as flat site lists: one row per cell, in Formula order
    numbers, counts = formulas_of_cells(np.array([0, 2, 7]), np.array([11, 17, 8, 22, 8, 56, 8]))
    assert FormulaIndex(numbers, counts).formula(1) == formula_of("BaTiO3")


def test_mapping_puts_each_element_on_the_chemically_closest_site():
    # Sr is closer to Ba than to Ti, so SrZrO3 on BaTiO3's sites puts Sr where Ba was and Zr where Ti was
    cost, assignment = mapping_cost(formula_of("SrZrO3"), formula_of("BaTiO3"))
    template = formula_of("BaTiO3")
    placed = dict(zip(template.numbers, assignment))
    assert placed[Element("Ba").Z] == Element("Sr").Z and placed[Element("Ti").Z] == Element("Zr").Z
    assert placed[Element("O").Z] == Element("O").Z and cost > 0
    assert mapping_cost(formula_of("BaTiO3"), template)[0] == 0
    with pytest.raises(ValueError, match="types differ"):
        mapping_cost(formula_of("NaCl"), template)


@pytest.mark.parametrize("name", ["retrieval", "template", "learned"])
def test_a_training_formula_gets_its_own_pattern_back(fitted, data, name):
    train = data.select("train")
    predicted = fitted[name].predict(train.formulas)
    assert np.abs(predicted - train.patterns).max() < 0.05  # templates keep coordinates to 1.5e-5 of an edge


def test_template_substitutes_elements_and_rescales_the_volume(fitted, data):
    member = fitted["template"]
    test = data.select("test")
    lattice, coords, numbers, row, substituted = member.cells(["BaTiO3"])[0]
    assert substituted and data.select("train").formulas[row] in {"SrTiO3", "BaZrO3", "CaTiO3", "BaSnO3",
                                                                  "BaHfO3", "SrZrO3", "SrSnO3", "SrHfO3"}
    elements, counts = np.unique(numbers, return_counts=True)
    assert Composition({Element.from_Z(int(z)): int(c) for z, c in zip(elements, counts)}).reduced_formula == "BaTiO3"
    template_lattice = data.select("train").structures.sites(row)[0]
    assert not np.allclose(lattice, template_lattice)  # the volume follows the elements
    assert np.allclose(lattice / np.linalg.norm(lattice, axis=1)[:, None],
                       template_lattice / np.linalg.norm(template_lattice, axis=1)[:, None])  # same cell shape
    pattern = member.predict(["BaTiO3"])[0]
    assert np.allclose(pattern, simulate_cell(lattice, coords, numbers))
    true = test.patterns[test.formulas.index("BaTiO3")]
    assert peak_f1(pattern[None], true[None])[0] == pytest.approx(1.0)  # a perovskite from a perovskite


def test_volumes_fitted_to_ratios_reproduce_the_ratios_of_same_prototype_pairs():
    """Cells whose volume per atom is a fraction-weighted sum of per-element volumes: from a start 30 % off, the
    refined volumes give every pair's ratio, keep the start's overall scale and leave an element in no pair alone."""
    from xrdzoo.predictors.retrieval import FormulaIndex
    from xrdzoo.predictors.template import _fitted_to_ratios, _same_prototype_pairs

    rng = np.random.default_rng(0)
    true = np.zeros(N_ELEMENTS)
    true[:6] = [5.0, 12.0, 20.0, 8.0, 30.0, 15.0]
    fractions = np.zeros((60, N_ELEMENTS))
    for row in fractions:
        row[rng.choice(5, 3, replace=False)] = rng.dirichlet(np.ones(3))  # element 6 (index 5) in no formula
    volumes = fractions @ true
    pairs = rng.integers(0, 60, (2, 200))
    start = true * rng.uniform(0.7, 1.3, N_ELEMENTS)
    refined = _fitted_to_ratios(fractions, volumes, pairs, start)
    ratio = lambda v: (fractions[pairs[0]] @ v) / (fractions[pairs[1]] @ v)
    assert np.abs(np.log(ratio(start) / ratio(true))).max() > 0.05
    assert np.allclose(ratio(refined), ratio(true), rtol=1e-4)
    assert np.median(fractions[pairs[0]] @ refined) == pytest.approx(np.median(fractions[pairs[0]] @ start))
    assert refined[5] == start[5] and (refined[6:] == start[6:]).all()
    assert _fitted_to_ratios(fractions, volumes, (np.zeros(0, int), np.zeros(0, int)), start) is start

    # pairs: a structure and its nearest same-type structures of another formula and the same space group
    index = FormulaIndex.of([formula_of(f) for f in ["BaTiO3", "SrTiO3", "BaTiO3", "CaTiO3", "NaCl", "KCl"]])
    queries, templates = _same_prototype_pairs(index, np.array([221, 221, 99, 62, 225, 225]), progress=False)
    assert sorted(zip(queries.tolist(), templates.tolist())) == [(0, 1), (1, 0), (4, 5), (5, 4)]


def test_template_beats_retrieval_on_the_held_out_prototypes(fitted, data):
    train, test = data.select("train"), data.select("test")
    scores = {name: peak_f1(fitted[name].predict(test.formulas), test.patterns).mean() for name in fitted}
    assert scores["template"] > scores["retrieval"] + 0.2
    # every held-out formula gets a template of its own prototype (its space group); the prototypes' made-up
    # lattice constants are what keeps some scores below 1
    rows = [cell[3] for cell in fitted["template"].cells(test.formulas)]
    assert train.spacegroups[rows].tolist() == test.spacegroups.tolist()


def test_a_formula_without_a_template_of_its_type_falls_back_and_says_so(fitted):
    for name in ("retrieval", "template"):
        member = fitted[name]
        pattern = member.predict(["Fe2O3"])[0]
        assert pattern.shape == (1024,) and pattern.max() == pytest.approx(100)
        assert "type" in member.answer(["Fe2O3"]).how[0]
    assert fitted["template"].answer(["BaTiO3"]).how[0].startswith("template ")


@pytest.mark.parametrize("name", ["template", "learned"])
def test_a_batch_answers_as_each_formula_alone(fitted, data, monkeypatch, name):
    """Ranking many formulas together (their candidates costed and featured by type) and simulating them in one batch
    (the compiled kernel from COMPILED_FROM cells) give each formula the answer it gets alone (numpy, one cell)."""
    from xrdzoo.xrd import simulate as module

    member = fitted[name]
    formulas = [*data.formulas[:6], "BaTiO3", "KBr", "CsCl", "NaF", "MgFe2O4", "LiGa2O4", "SrHfO3", "Fe2O3", "CaZrO3"]
    alone = [member.answer([formula], top=3) for formula in formulas]
    monkeypatch.setattr(module, "COMPILED_FROM", 2)
    together = member.answer(formulas, top=3).ranked()
    assert len(together) == len(formulas)
    for answer, candidates in zip(alone, together):
        [expected] = answer.ranked()
        assert [(c.how, c.source, c.spacegroup) for c in candidates] == [(c.how, c.source, c.spacegroup)
                                                                         for c in expected]
        assert [c.score is None for c in candidates] == [c.score is None for c in expected]
        assert np.allclose([c.score or 0 for c in candidates], [c.score or 0 for c in expected], atol=1e-6)
        assert np.allclose([c.pattern for c in candidates], [c.pattern for c in expected], atol=1e-4)


@pytest.mark.parametrize("name", ["retrieval", "template"])
def test_answer_refuses_unknown_elements_with_the_reason_and_predicts_the_rest(fitted, name):
    member = fitted[name]
    answers = member.answer(["BaTiO3", "Qq2O", "NaCl"])
    assert answers.kept == [0, 2] and list(answers.refused) == ["Qq2O"] and "Qq" in answers.refused["Qq2O"]
    assert np.array_equal(answers.patterns.intensities, member.predict(["BaTiO3", "NaCl"])) and len(answers.how) == 2
    with pytest.raises(EncodingError, match="Qq"):
        member.predict(["BaTiO3", "Qq2O"])


def test_unfitted_member_says_how_to_fit_it():
    with pytest.raises(RuntimeError, match="xrdzoo train --predictor template"):
        create_predictor("template").predict(["BaTiO3"])


@pytest.mark.parametrize("options", [{"k": 0}, {"ranker": "best"}, {"volume": "magic"}])
def test_bad_options_are_one_line_errors(options):
    with pytest.raises(ValueError, match=next(iter(options))):
        create_predictor("template", **options)


def test_every_registered_predictor_fits_saves_loads_and_exports_exactly(data, tmp_path):
    formulas = ["BaTiO3", "NaCl", "MgAl2O4", "Fe2O3"]
    for name in registry.list_names("predictors"):
        member = create_predictor(name)
        member.fit(data.select("train"), data.select("val"), progress=False)
        path = checkpoint.save(tmp_path / f"{name}.safetensors", member, {"note": "test"})
        loaded = xrdzoo.load(str(path))
        assert loaded.config == member.config and loaded.metadata["note"] == "test"
        assert np.array_equal(loaded.predict(formulas), member.predict(formulas))
        half = checkpoint.read_model(checkpoint.save(tmp_path / f"{name}16.safetensors", member, dtype="float16"))
        assert peak_f1(half.predict(formulas), member.predict(formulas)).min() == 1.0


def test_train_and_predict_from_the_command_line(tiny_dataset, tmp_path):
    out = tmp_path / "run"
    result = runner.invoke(app, ["train", "--data", str(tiny_dataset), "--predictor", "template", "--output",
                                 str(out)])
    assert result.exit_code == 0, result.output
    assert "validation peak F1" in result.output
    result = runner.invoke(app, ["predict", "BaTiO3", "Fe2O3", "--model", str(out / "best.safetensors")])
    assert result.exit_code == 0, result.output
    assert "answered by: template" in result.output and "no template of its formula type" in result.output
    result = runner.invoke(app, ["train", "--data", str(tiny_dataset), "--predictor", "nonesuch", "--output",
                                 str(tmp_path / "x")])
    assert result.exit_code == 1 and "nonesuch" in result.output


def test_the_default_answers_formulas_the_networks_refuse():
    model = xrdzoo.load(xrdzoo.DEFAULT_MODEL)  # the shipped template predictor
    formulas = ["Al2(SO4)3", "Ag12SBr", "BaTiO3", "NaCl"]  # counts above 10; a binary
    answers = model.answer(formulas)
    assert answers.kept == [0, 1, 2, 3] and answers.refused == {}
    patterns = xrdzoo.predict(formulas).intensities
    assert np.array_equal(answers.patterns.intensities, patterns) and np.allclose(patterns.max(axis=1), 100)
    ways = answers.how
    new = "candidates agree on (weighted by score); first candidate: template mp-"  # the shipped consensus
    assert all(way.startswith(("known structure mp-", "no template of its formula type")) or new in way for way in ways)
    assert new in ways[1] and f"first {model.consensus} candidates" in ways[1]  # Ag12SBr: a new formula
    assert ways[3].startswith("known structure mp-22862, space group 225")  # rock salt: NaCl is a known compound
    assert ways[2].startswith("known structure mp-5020, space group 160")  # BaTiO3's ground state (R3m) in MP
    for formula in ("Fe2O3", "SiO2", "LiFePO4", "TiO2"):  # the binaries and quaternaries: their own
        assert model.answer([formula], top=3).how[0].startswith("known structure mp-")


# --- every polymorph, top-K -----------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def polymorphs(tmp_path_factory):
    """Prototype structures (the spinels 0.02 eV/atom above the hull, the rest on it) plus a second, less stable NaCl
    (CsCl type) and a CsCl-type KBr (0.3 above), every polymorph kept."""
    from pymatgen.core import Lattice, Structure

    from conftest import prototype_structures
    from xrdzoo.data import build_dataset

    folder = tmp_path_factory.mktemp("polymorphs")
    cscl = [Structure(Lattice.cubic(3.3), [a, x], [[0, 0, 0], [0.5, 0.5, 0.5]]) for a, x in [("Na", "Cl"), ("K", "Br")]]
    entries = [{"structure": s.as_dict(), "material_id": f"mp-{i}",
                "e_above_hull": 0.02 if s.get_space_group_info()[1] == 227 else 0.0}
               for i, s in enumerate(prototype_structures())]
    entries += [{"structure": s.as_dict(), "material_id": f"mp-{100 + i}", "e_above_hull": 0.3}
                for i, s in enumerate(cscl)]
    source = folder / "structures.json"
    source.write_text(json.dumps(entries))
    build_dataset(source, folder / "all.npz", polymorphs="all", workers=1, progress=False)
    data = load_dataset(folder / "all.npz")
    member = create_predictor("template", ranker="learned", k=4)
    member.fit(data, data.select("val"), progress=False)  # every structure: known compounds are known
    return data, member


def test_a_known_compound_answers_with_every_polymorph_ground_state_first(polymorphs):
    data, member = polymorphs
    answers = member.answer(["NaCl", "BaTiO3"], top=3)
    nacl = answers.candidates[0]
    assert [c.source for c in nacl[:2]] == [data.ids[data.formulas.index("NaCl")], "mp-100"]
    assert nacl[0].how.startswith(f"known structure {nacl[0].source}, space group 225") and nacl[1].spacegroup == 221
    assert [c.score for c in nacl[:2]] == [1.0, 1.0] and "template" in nacl[2].how and 0 <= nacl[2].score <= 1
    assert np.array_equal(answers.patterns.intensities[0], nacl[0].pattern) and answers.how[0] == nacl[0].how
    truth = data.patterns[data.formulas.index("NaCl")]
    assert peak_f1(nacl[0].pattern[None], truth[None])[0] == pytest.approx(1.0)
    assert len(answers.candidates[1]) == 3 and answers.how == member.answer(["NaCl", "BaTiO3"]).how


def test_top_k_candidates_are_ranked_and_a_bad_k_is_one_line(polymorphs, fitted):
    _, member = polymorphs
    novel = member.answer(["BaGeO3"], top=4).candidates[0]  # not in the data: templates only, ranker's order
    assert len(novel) == 4 and all(c.how.startswith("template ") for c in novel)
    assert [c.score for c in novel] == sorted([c.score for c in novel], reverse=True)
    for bad in (0, -1, 1.5):
        with pytest.raises(ValueError, match="top must be a whole number of at least 1"):
            member.answer(["NaCl"], top=bad)
    one = fitted["retrieval"].answer(["NaCl"], top=3)
    assert len(one.ranked()[0]) == 1 and "one answer; 3 were asked" in one.how[0]


def test_predict_top_on_the_command_line(polymorphs, tmp_path):
    from xrdzoo import checkpoint as ckpt

    _, member = polymorphs
    path = ckpt.save(tmp_path / "member.safetensors", member)
    result = runner.invoke(app, ["predict", "NaCl", "--top", "3", "--model", str(path), "--plot",
                                 str(tmp_path / "top.png"), "--output", str(tmp_path / "top.csv")])
    assert result.exit_code == 0, result.output
    assert "RANK" in result.output and "known structure mp-100, space group 221" in result.output
    assert (tmp_path / "top.png").is_file() and "NaCl #2 mp-100" in (tmp_path / "top.csv").read_text()
    result = runner.invoke(app, ["predict", "NaCl", "--top", "0", "--model", str(path)])
    assert result.exit_code == 2 and "'--top': 0 is out of range: give a number at least 1" in result.output


def test_predict_writes_the_cell_of_each_candidate_as_a_cif(polymorphs, fitted, tmp_path):
    """--cifs writes, per formula and rank, the very cell whose pattern was predicted: a known polymorph as it
    is, a new formula's template with its elements substituted. An answer of agreed peaks has no cell, and a member
    whose answers have none is a one-line error that writes nothing."""
    from pymatgen.core import Structure

    from xrdzoo.xrd.simulate import simulate

    _, member = polymorphs
    path = checkpoint.save(tmp_path / "member.safetensors", member)
    folder = tmp_path / "cifs"
    result = runner.invoke(app, ["predict", "NaCl", "BaGeO3", "--top", "2", "--model", str(path), "--cifs",
                                 str(folder)])
    assert result.exit_code == 0, result.output
    answers = member.answer(["NaCl", "BaGeO3"], top=2)
    for formula, candidates in zip(["NaCl", "BaGeO3"], answers.ranked()):
        for rank, candidate in enumerate(candidates, 1):
            cif = folder / f"{formula}_{rank}_{candidate.source}.cif"
            assert cif.read_text().startswith(f"# {formula}, candidate {rank} of xrdzoo {xrdzoo.__version__}: "
                                              f"{candidate.how}\n")
            structure = Structure.from_file(cif)
            assert structure.composition.reduced_formula == Composition(formula).reduced_formula
            assert np.allclose(simulate([structure])[0], candidate.pattern, atol=1e-3)  # CIF: 8 figures
    assert "template" in candidates[0].how and len(list(folder.iterdir())) == 4
    result = runner.invoke(app, ["predict", "BaGeO3", "--top", "2", "--consensus", "3", "--model", str(path),
                                 "--cifs", str(tmp_path / "agreed")])
    assert result.exit_code == 0 and "1 CIF file(s)" in result.output and "(none for: agreed peaks)" in result.output
    network = checkpoint.save(tmp_path / "retrieval.safetensors", fitted["retrieval"])
    result = runner.invoke(app, ["predict", "NaCl", "--model", str(network), "--cifs", str(tmp_path / "none")])
    assert result.exit_code == 2 and "no answer listed has a structure" in result.output
    assert not (tmp_path / "none").exists()


def test_a_member_shipped_in_parts_joins_back_to_the_same_answers(polymorphs, tmp_path):
    from xrdzoo import checkpoint as ckpt
    from xrdzoo.publish import export_parts

    _, member = polymorphs
    path = ckpt.save(tmp_path / "member.safetensors", member)
    configs = export_parts(path, tmp_path, "whole.mp_test", [[3], [2]], manifest=tmp_path / "manifest.json",
                           license="CC-BY-4.0")
    assert [c.name for c in configs] == ["whole.mp_test", "whole.mp_test_part1"]
    assert configs[0].parts == ("whole.mp_test_part1",) and "part 1 of whole.mp_test" in configs[1].description
    joined = ckpt.read_model(tmp_path / "whole.mp_test.safetensors")
    binaries = ckpt.read_model(tmp_path / "whole.mp_test_part1.safetensors")
    assert set(np.count_nonzero(joined.templates.numbers, axis=1)) == {3}
    assert set(np.count_nonzero(binaries.templates.numbers, axis=1)) == {2}
    joined.join(binaries)
    formulas = ["NaCl", "KBr", "BaGeO3", "MgAl2O4", "CsI"]
    assert [c.source for c in joined.answer(formulas, top=3).candidates[0]] == \
        [c.source for c in member.answer(formulas, top=3).candidates[0]]
    assert peak_f1(joined.predict(formulas), member.predict(formulas)).min() == 1.0
    assert sorted(set(joined.e_above_hull.round(3))) == [0.0, 0.02, 0.3]  # energies travel with their parts
    manifest = json.loads((tmp_path / "manifest.json").read_text())["weights"]
    assert manifest[0]["parts"] == ["whole.mp_test_part1"] and "parts" not in manifest[1]


def test_identify_scores_a_composition_by_its_best_candidate_and_names_it(polymorphs):
    from xrdzoo.identify import rank
    from xrdzoo.xrd.pattern import Pattern

    data, member = polymorphs
    measured = Pattern.from_frame(data.patterns[data.ids.index("mp-100")][None])[0]  # the CsCl-type NaCl
    best = rank(measured, ["NaCl", "KBr"], member, candidates=3).matches[0]
    assert best.formula == "NaCl" and "known structure mp-100" in best.source
    one = rank(measured, ["NaCl", "KBr"], member).matches  # one candidate each, still named
    sources = {m.formula: m.source for m in one}
    assert sources["NaCl"].startswith("predicted (known structure mp-") and sources["KBr"].startswith("predicted (")
    assert len(one) == 2 and best.source != sources["NaCl"]  # the first candidate alone: not the CsCl type


def test_identify_all_known_ranks_the_compounds_a_member_knows_whatever_their_size(polymorphs, tmp_path, monkeypatch):
    from xrdzoo.answer_cache import CachedMember
    from xrdzoo.formulas import compositions
    from xrdzoo.identify import candidate_formulas

    _, member = polymorphs
    assert member.known_formulas(["O", "Al", "Mg"]) == ["MgAl2O4"] and member.known_formulas(["Mg", "O"]) == []
    assert member.known_formulas(["Na", "Cl"]) == ["NaCl"]  # two polymorphs, one formula
    assert member.known_formulas(["Na", "Cl"], 0.01) == ["NaCl"]  # its ground state is on the hull
    assert member.known_formulas(["Mg", "Al", "O"], 0.01) == [] and member.known_formulas(["Mg", "Al", "O"], 0.03)
    small = compositions(["Mg", "Al", "O"], 5, charge_balanced=True)
    assert "MgAl2O4" not in small  # 7 atoms
    assert candidate_formulas(["Mg", "Al", "O"], 5, True, known_to=member) == sorted(small + ["MgAl2O4"])
    assert candidate_formulas(["Mg", "Al", "O"], 5, True, known_to=member, max_above_hull=0.01) == small
    assert candidate_formulas(["Mg", "Al", "O"], 5, True) == small  # identify's default
    assert candidate_formulas(["Mg", "Al", "O"], 5, known_to=object()) == compositions(["Mg", "Al", "O"], 5)  # a network
    monkeypatch.setenv("XRDZOO_HOME", str(tmp_path))
    path = checkpoint.save(tmp_path / "member.safetensors", member)
    assert CachedMember(str(path), xrdzoo.load).known_formulas(["Mg", "Al", "O"]) == ["MgAl2O4"]
    again = CachedMember(str(path), xrdzoo.load)
    assert again.known_formulas(["O", "Mg", "Al"]) == ["MgAl2O4"] and again._member is None  # remembered
    scan, options = _scan(member, tmp_path), ["--elements", "Mg,Al,O", "--max-atoms", "5", "--model", str(path)]
    result = runner.invoke(app, ["identify", str(scan), *options])  # the larger stable known formulas by default
    assert result.exit_code == 0, result.output
    assert "or known to" in result.output and "(1 larger)" in result.output
    assert "MgAl2O4" in result.output.split("\n")[2]  # its own pattern ranks first (ties share the line)
    result = runner.invoke(app, ["identify", str(scan), *options, "--no-all-known"])
    assert result.exit_code == 0, result.output
    assert "known to" not in result.output
    assert "MgAl2O4" not in [line.split()[1] for line in result.output.splitlines()[2:]]  # not ranked


def test_identify_subsystems_ranks_smaller_systems_and_known_elements_and_finds_an_impurity(polymorphs, tmp_path):
    """With ``subsystems`` the compositions of Mg-O, Al-O and Mg-Al join Mg-Al-O's, and the single elements the member
    knows (Mg and Al by their reference structures, O by none): a spinel with unreacted magnesium is explained by
    both only then; --elements-pool, which ranks subsystems already, refuses it."""
    from xrdzoo.formulas import compositions
    from xrdzoo.identify import candidate_formulas
    from xrdzoo.measured import write_xy
    from xrdzoo.xrd.pattern import Pattern

    _, member = polymorphs
    assert [member.known_formulas([e]) for e in ("Mg", "Al", "O")] == [["Mg"], ["Al"], []]
    system = candidate_formulas(["Mg", "Al", "O"], 5, True, known_to=member)
    smaller = {f for pair in (["Mg", "O"], ["Al", "O"], ["Mg", "Al"]) for f in compositions(pair, 5, True)}
    assert "MgO" in smaller and "Al2O3" in smaller
    assert candidate_formulas(["Mg", "Al", "O"], 5, True, known_to=member, subsystems=True) == sorted(
        {*system, *smaller, "Mg", "Al"})
    assert candidate_formulas(["Mg", "Al", "O"], 5, True, subsystems=True) == sorted(smaller)  # none of 3 is that small
    spinel, impurity = member.predict(["MgAl2O4", "Mg"])
    scan = write_xy(tmp_path / "impure.xy", Pattern.from_frame((0.7 * spinel + 0.3 * impurity)[None])[0], "impure")
    path = checkpoint.save(tmp_path / "member.safetensors", member)
    options = ["identify", str(scan), "--elements", "Mg,Al,O", "--max-atoms", "5", "--model", str(path), "--phases",
               "2"]
    phases = [runner.invoke(app, [*options, *more]) for more in ([], ["--subsystems"])]
    assert all(result.exit_code == 0 for result in phases), [result.output for result in phases]
    named = [[line.split()[1] for line in result.output.split("mixture of")[1].splitlines()[2:]] for result in phases]
    assert named[0][0] == "MgAl2O4" and "Mg" not in named[0] and named[1] == ["MgAl2O4", "Mg"]
    assert "compositions of Al-Mg-O and its subsystems" in phases[1].output
    refused = runner.invoke(app, ["identify", str(scan), "--elements-pool", "Mg,Al,O", "--subsystems"])
    assert refused.exit_code != 0 and "--subsystems works with --elements" in refused.output


def _scan(member, folder):
    """The member's MgAl2O4 pattern written as a measurement (Cu K-alpha)."""
    from xrdzoo.measured import write_xy
    from xrdzoo.xrd.pattern import Pattern

    return write_xy(folder / "spinel.xy", Pattern.from_frame(member.predict(["MgAl2O4"]))[0], "spinel")


def test_a_member_saved_before_energies_were_kept_loads_them_as_unknown(polymorphs, tmp_path):
    from safetensors.numpy import load_file, save_file

    from xrdzoo import checkpoint as ckpt

    _, member = polymorphs
    path = ckpt.save(tmp_path / "member.safetensors", member)
    meta = ckpt.read_metadata(path)
    del meta[ckpt.DIGEST_KEY]  # files of that age carry no digest
    tensors = load_file(str(path))
    del tensors["e_above_hull"], tensors["calibration"]
    save_file(tensors, str(tmp_path / "older.safetensors"), metadata={ckpt.METADATA_KEY: json.dumps(meta)})
    older = ckpt.read_model(tmp_path / "older.safetensors")
    assert np.isnan(older.e_above_hull).all() and len(older.e_above_hull) == len(member.lattices)
    assert older.known_formulas(["Na", "Cl"]) == ["NaCl"] and older.known_formulas(["Na", "Cl"], 0.025) == []
    assert "above the hull" not in older.answer(["NaCl"]).how[0]
    assert np.array_equal(older.calibration, [[1.0, 0.0]] * 4)  # the ranker's logit as it is, whatever the type
    assert "0.300 eV/atom above the hull" in member.answer(["NaCl"], top=2).candidates[0][1].how


def test_scores_are_calibrated_per_formula_type_without_changing_the_order(polymorphs, tmp_path):
    data, member = polymorphs
    assert not np.array_equal(member.calibration, [[1.0, 0.0]] * 4)  # fit calibrated it
    member = checkpoint.read_model(checkpoint.save(tmp_path / "member.safetensors", member))  # a copy to change
    before = member.answer(["BaGeO3", "NaCl"], top=4).candidates
    report = member.calibrate(data, progress=False)
    assert list(report) == list(TYPES) and report["ternary"]["formulas"] > 0 and report["binary"]["formulas"] > 0
    assert all(0 <= report[t]["share first matched"] <= 1 for t in ("binary", "ternary"))
    assert member.calibration[1, 0] >= 0 and not np.array_equal(member.calibration, [[1.0, 0.0]] * 4)
    after = member.answer(["BaGeO3", "NaCl"], top=4).candidates
    assert [[c.source for c in cands] for cands in after] == [[c.source for c in cands] for cands in before]
    member.calibration[1] = [0.0, np.log(0.3 / 0.7)]  # ternaries: the score no longer depends on the logit
    novel, nacl = member.answer(["BaGeO3", "NaCl"], top=4).candidates
    assert [c.score for c in novel] == pytest.approx([0.3] * 4) and nacl[0].score == 1.0
    chemistry = create_predictor("template")
    with pytest.raises(ValueError, match="ranker=learned"):
        chemistry.calibrate(data, progress=False)


def test_the_calibration_fit_matches_the_share_of_matches_and_leans_on_its_prior_where_data_are_few():
    rng = np.random.default_rng(1)
    z = rng.normal(size=5000) * 2
    matched = (rng.random(5000) < 1 / (1 + np.exp(1 - 2 * z))).astype(float)
    a, b = _logistic(z, matched, np.array([1.0, 0.0]))
    assert a == pytest.approx(2, abs=0.2) and b == pytest.approx(-1, abs=0.2)
    assert np.mean(1 / (1 + np.exp(-(a * z + b)))) == pytest.approx(matched.mean(), abs=1e-3)
    assert np.allclose(_logistic(z[:0], matched[:0], np.array([0.5, -2.0])), [0.5, -2.0])  # no data: the prior
    a, b = _logistic(z, (z < 0).astype(float), np.array([1.0, 0.0]))  # a higher logit less likely to match
    assert a == 0 and 1 / (1 + np.exp(-b)) == pytest.approx(np.mean(z < 0), abs=1e-3)


def _candidate(peaks: dict[int, float], score: float | None, name: str) -> Candidate:
    pattern = np.zeros(N_POINTS, np.float32)
    pattern[list(peaks)] = list(peaks.values())
    return Candidate(pattern, 0, name, f"template {name}", score)


def _voters(candidates: list[Candidate], trust=None) -> Voters:
    """The candidates as voters: their picked peaks and scores, trusted alike unless ``trust`` says otherwise."""
    positions, intensities, sizes = pick_peaks_of_rows(np.array([c.pattern for c in candidates]))
    return Voters(positions, intensities, sizes, [c.score for c in candidates],
                  np.ones(len(candidates)) if trust is None else np.array(trust[: len(candidates)]))


def _agreed(candidates: list[Candidate], trust=(1.0, 1.0, 1.0)) -> list[Candidate]:
    """agreed_peaks_first over every candidate, each voting with its own picked peaks, score and trust."""
    return agreed_peaks_first([candidates], [_voters(candidates, trust)])[0]


def test_agreed_peaks_keep_what_the_candidates_share():
    shared = {100: 40.0, 300: 100.0}  # bins 35 degrees apart; the third peak differs (over 2 degrees apart)
    three = [_candidate(shared | {500: 50.0}, None, "a"), _candidate({100: 100.0, 300: 100.0, 600: 50.0}, None, "b"),
             _candidate({100: 100.0, 300: 100.0, 700: 50.0}, None, "c")]
    agreed, *rest = _agreed(three)
    assert rest == three and (agreed.source, agreed.spacegroup, agreed.score) == ("agreed peaks", 0, None)
    assert agreed.how == "the 2 peaks the ranker's first 3 candidates agree on; first candidate: template a"
    # Each shared peak once, at the mean of the candidates' intensities (40, 100, 100 -> 80), scaled to 100.
    assert np.flatnonzero(agreed.pattern).tolist() == [100, 300] and agreed.pattern[[100, 300]].tolist() == [80, 100]
    sure = [replace(c, score=s) for c, s in zip(three, (0.9, 0.1, 0.1))]  # weighted by score cubed: a's peaks win
    agreed = _agreed(sure)[0]
    assert np.flatnonzero(agreed.pattern).tolist() == [100, 300, 500]
    assert agreed.score == 0.9  # the largest score among the candidates it matches (peak F1 >= 0.8): a
    assert agreed.how.startswith("the 3 peaks the ranker's first 3 candidates agree on (weighted by score); ")
    distrusted = _agreed(sure, trust=[0.1, 1, 1])[0]  # a's weight 0.729 x 0.1 against 0.001 each: still a's peaks
    assert np.flatnonzero(distrusted.pattern).tolist() == [100, 300, 500]
    distrusted = _agreed(sure, trust=[0.001, 1, 1])[0]  # now b's and c's outweigh it: only the shared peaks
    assert np.flatnonzero(distrusted.pattern).tolist() == [100, 300]
    assert _agreed(three[:1]) == three[:1]  # one candidate: nothing to agree on
    silent = [_candidate({}, 0.5, "x"), _candidate({}, 0.5, "y")]  # no peaks to agree on: the ranker's order
    assert _agreed(silent) == silent


def test_many_formulas_agree_at_once_as_each_alone():
    """agreed_peaks_first picks and scores every formula's agreed peaks together: each formula's answer is what it
    gets alone, whatever its neighbours (one without peaks to agree on, one with a single voter)."""
    a = _candidate({100: 40.0, 300: 100.0, 500: 50.0}, 0.9, "a")
    b, c = _candidate({100: 100.0, 301: 100.0, 600: 50.0}, 0.1, "b"), _candidate({99: 100.0, 700: 50.0}, 0.3, "c")
    silent = [_candidate({}, 0.5, "x"), _candidate({}, 0.5, "y")]
    formulas, who = [[a, b, c], silent, [b], [c, a], [b, c, a]], [None, None, None, "x", None]
    voters = [_voters(f, [1.0] * len(f)) for f in formulas]
    together = agreed_peaks_first(formulas, voters, who)
    alone = [agreed_peaks_first([f], [v], [w])[0] for f, v, w in zip(formulas, voters, who)]
    assert [[(c.how, c.score, c.pattern.tolist()) for c in f] for f in together] == \
        [[(c.how, c.score, c.pattern.tolist()) for c in f] for f in alone]
    assert together[1] == silent and together[2] == [b] and together[3][0].how.startswith("the 3 peaks x agree on")
    assert [len(f) for f in together] == [4, 2, 1, 3, 4]


def test_each_voters_scores_against_the_agreed_peaks_are_the_metrics():
    """The consensus scores its voters against the agreed peaks (peak_scores_of_rows, each voter paired with the
    agreed peaks) as metrics.peak_pair_scores scores each pair alone."""
    from xrdzoo.metrics import peak_pair_scores, peak_scores_of_rows
    from xrdzoo.xrd.peaks import Peaks

    rng = np.random.default_rng(0)
    agreed = np.sort(rng.uniform(10, 170, 12))
    sizes = np.array([0, 1, 5, 12, 30])
    voters = [np.sort(np.concatenate([rng.choice(agreed, min(n, 6)) + rng.normal(0, 1.5, min(n, 6)),
                                      rng.uniform(0, 180, n - min(n, 6))])) for n in sizes]
    recall, precision = peak_scores_of_rows(np.concatenate(voters), sizes, np.tile(agreed, len(sizes)),
                                            np.full(len(sizes), len(agreed)))
    expected = np.array([peak_pair_scores(Peaks(v, np.ones(len(v))), Peaks(agreed, np.ones(len(agreed))))
                         for v in voters])
    assert recall.tolist() == expected[:, 0].tolist() and precision.tolist() == expected[:, 1].tolist()
    assert 0 < recall[2] < 1 and recall[0] == precision[0] == 0


def test_own_peaks_keep_each_patterns_strongest_peaks_in_order():
    pattern = np.zeros((2, N_POINTS), np.float32)
    bins = np.arange(20) * 40 + 20  # 20 peaks 7 degrees apart, the weakest first
    pattern[0, bins] = np.linspace(10, 100, 20)
    angles, heights = own_peaks(pattern)
    assert angles.shape == heights.shape == (2, VOTER_PEAKS) and not heights[1].any()  # no peaks: zeros
    strongest = pick_peaks(pattern[0]).positions[-VOTER_PEAKS:]
    assert np.allclose(angles[0] / 256, strongest, atol=1 / 256) and heights[0, -1] == 100
    assert np.all(np.diff(angles[0].astype(int)) > 0) and heights[0].min() >= 10


def test_rescaled_peaks_are_the_templates_own_at_the_new_volume(polymorphs):
    _, member = polymorphs
    query = formula_of("SrTiO3")
    rows = np.array([r for r in member.templates.nearest(query, 4)[0] if member.templates.formula(r) != query])
    positions, _, sizes = member._rescaled_peaks(query, rows)
    for row, peaks, scale in zip(rows, np.split(positions, np.cumsum(sizes)[:-1]), member._scales(query, rows)):
        lattice, coords, numbers, _, _ = member.substituted_cell(query, row, None)  # the template as it is
        own = pick_peaks(simulate_cell(lattice * scale ** (1 / 3), coords, numbers))
        distance = np.abs(peaks[:, None] - own.positions[None, :])
        # Each within a bin of a true one, and the other way round for those the template's own pattern could hold
        # (a larger cell brings reflections in from beyond 180 degrees), but for one either way: the
        # Lorentz-polarisation factor changes with the angle, so a peak near 10 of 100 may cross it.
        assert scale != pytest.approx(1.0) and len(own) <= VOTER_PEAKS
        assert (distance.min(1) < 0.2).sum() >= len(peaks) - 1 >= 8
        held = np.sin(np.radians(own.positions / 2)) * scale ** (1 / 3) < 1
        assert (distance.min(0)[held] < 0.2).sum() >= held.sum() - 1


def test_consensus_simulates_the_first_candidates_and_rescales_the_rest(polymorphs, monkeypatch):
    _, member = polymorphs
    simulated = []

    def counted(cells, *args, **kwargs):
        simulated.append(len(cells))
        return simulate_cells(cells, *args, **kwargs)

    from xrdzoo.xrd.simulate import simulate_cells
    monkeypatch.setattr(template, "simulate_cells", counted)
    monkeypatch.setattr(member, "consensus", 4)
    stored = member.answer(["BaGeO3"])
    old = create_predictor("template", ranker="learned", k=4, consensus=4)  # a file saved before the stored peaks
    old.load_state_dict({k: v for k, v in member.state_dict().items() if not k.startswith("peak_")})
    unstored = old.answer(["BaGeO3"])
    assert simulated == [template.SIMULATED_VOTERS, 4]  # without stored peaks every voter is simulated
    assert all("first 4 candidates agree on" in a.how[0] for a in (stored, unstored))
    assert stored.how[0].split("; ")[1] == unstored.how[0].split("; ")[1]  # the same first candidate
    assert peak_f1(stored.patterns.intensities, unstored.patterns.intensities)[0] >= 0.8  # rescaled votes, as simulated


def _captured_voters(member, formula: str, consensus: int, monkeypatch) -> tuple[Voters, str]:
    """The voters of ``formula``'s consensus of ``consensus``, and its answer's how."""
    from xrdzoo.predictors import consensus as module

    seen = []
    monkeypatch.setattr(module, "agreed_peaks_first", lambda c, voters, who=None: seen.extend(voters) or
                        agreed_peaks_first(c, voters, who))
    monkeypatch.setattr(member, "consensus", consensus)
    how = member.answer([formula]).how[0]
    return seen[0], how


def test_the_nearest_other_structures_fill_a_consensus_the_type_cannot(polymorphs, monkeypatch):
    _, member = polymorphs
    query = formula_of("BaGeO3")
    choices = member.rank(["BaGeO3"], 1, new=8)[0]  # k = 4: four perovskite templates, then four of other types
    voters, how = _captured_voters(member, "BaGeO3", 8, monkeypatch)
    nearest, _ = member.templates.nearest(query, 8, same_kind=False)
    filled = [row for row in nearest if row not in [c.row for c in choices]][:4]
    assert len(choices) == 4 and len(voters.sizes) == 8 and voters.scores[4:] == [None] * 4
    assert voters.trust.tolist() == [1.0] * 3 + [template.RESCALED_WEIGHT] + [template.FILL_WEIGHT] * 4
    positions, _, sizes = member._rescaled_peaks(query, np.array(filled))
    assert np.array_equal(voters.positions[-len(positions):], positions) and voters.sizes[4:].tolist() == sizes.tolist()
    assert "agree on (weighted by score)" in how
    assert "the ranker's first 4 candidates and the 4 nearest structures" in how
    assert _captured_voters(member, "BaGeO3", 4, monkeypatch)[0].trust.tolist()[-1] == template.RESCALED_WEIGHT


def test_a_type_without_templates_answers_with_the_peaks_its_nearest_structures_agree_on(polymorphs, monkeypatch):
    _, member = polymorphs
    voters, how = _captured_voters(member, "Fe2O3", 5, monkeypatch)  # no binary template of the type A2X3
    assert voters.scores == [None] * 5 and voters.trust.tolist() == [template.FILL_WEIGHT] * 5  # all count alike
    agreed, nearest = member.answer(["Fe2O3"], top=2).candidates[0]
    assert (agreed.source, agreed.how, agreed.score) == ("agreed peaks", how, None)
    assert how.startswith("the ") and how.endswith(" peaks the 5 nearest structures of other formula types agree on; "
                                                   f"first candidate: {nearest.how}")
    assert nearest.how.startswith("no template of its formula type: pattern of the nearest structure")


def test_a_member_with_consensus_answers_with_its_first_ks_agreed_peaks(polymorphs, tmp_path):
    _, member = polymorphs
    ranked = member.answer(["BaGeO3", "NaCl"], top=4).candidates
    member.consensus = 4
    try:
        agreed = member.answer(["BaGeO3", "NaCl"], top=4).candidates
        single = member.answer(["BaGeO3", "NaCl"])
    finally:
        member.consensus = 1
    assert agreed[0][0].source == "agreed peaks" and "candidates agree on" in single.how[0]
    assert [c.how for c in agreed[0][1:]] == [c.how for c in ranked[0][:3]]  # then the ranker's order
    voters = _voters(ranked[0])  # top 4: all simulated
    assert np.array_equal(agreed[0][0].pattern, agreed_peaks_first([ranked[0]], [voters])[0][0].pattern)
    assert single.how[1] == agreed[1][0].how and [c.how for c in agreed[1]] == [c.how for c in ranked[1]]  # known
    for bad in (0, 2.5, True):
        with pytest.raises(ValueError, match="consensus must be a positive integer"):
            create_predictor("template", consensus=bad)
    saved = create_predictor("template", ranker="learned", k=4, consensus=3)
    saved.load_state_dict(member.state_dict())
    assert checkpoint.read_model(checkpoint.save(tmp_path / "c.safetensors", saved)).consensus == 3


def test_identification_scores_the_structures_not_the_agreed_peaks(polymorphs, monkeypatch):
    from xrdzoo.identify import rank, structures_only
    from xrdzoo.xrd.pattern import Pattern

    _, member = polymorphs
    first = member.answer(["BaGeO3"]).patterns.intensities[0]  # the ranker's first template, as if measured
    monkeypatch.setattr(member, "consensus", 4)
    assert member.answer(["BaGeO3"]).how[0].startswith("the ")  # predict: the agreed peaks
    match = rank(Pattern.from_frame(first[None])[0], ["BaGeO3"], member).matches[0]  # by its first answer
    assert match.source.startswith("predicted (template mp-") and match.score > 0.99 and member.consensus == 4
    assert structures_only(member).consensus == 1 and structures_only(structures_only(member)).consensus == 1


def test_a_screen_answers_with_the_consensus_asked(polymorphs, tmp_path):
    from xrdzoo.predictors import with_consensus
    from xrdzoo.prediction import peak_rows
    from xrdzoo.screening import screen

    _, member = polymorphs
    agreed = with_consensus(member, 4)
    source = tmp_path / "formulas.txt"
    source.write_text("BaGeO3\nNaCl\n")
    for asked, answering in ((None, agreed), (1, member)):  # its own (4), or the ranker's first alone
        out = tmp_path / f"screen-{asked}.jsonl"
        screen(agreed, source, out, consensus=asked)
        expected = answering.answer(["BaGeO3", "NaCl"]).patterns
        records = [json.loads(line) for line in out.read_text().splitlines()]
        assert [r["peaks"] for r in records] == [peak_rows(p, 10.0) for p in expected]
    assert agreed.consensus == 4 and member.consensus == 1 and with_consensus(member, 1) is member
    assert agreed._state() is member._state()  # a copy shares what the member derives from its arrays, built once
    with pytest.raises(InputError, match="consensus must be a whole number of at least 1, got 0"):
        with_consensus(member, 0)
    path = checkpoint.save(tmp_path / "member.safetensors", agreed)
    result = runner.invoke(app, ["predict", "--from-file", str(source), "--consensus", "1", "--model", str(path),
                                 "--output", str(tmp_path / "cli.jsonl")])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "cli.jsonl").read_text() == (tmp_path / "screen-1.jsonl").read_text()


def test_answers_pause_the_garbage_collector_and_restore_it(polymorphs, monkeypatch):
    import gc

    _, member = polymorphs
    seen = []
    ranked = member._ranked
    monkeypatch.setattr(member, "_ranked", lambda *args: seen.append(gc.isenabled()) or ranked(*args))
    for enabled in (True, False):
        (gc.enable if enabled else gc.disable)()
        try:
            with pytest.raises(ZeroDivisionError):
                with collector_paused():
                    seen.append(gc.isenabled())
                    1 / 0
            assert gc.isenabled() == enabled  # as it was, even after an error
            assert member.answer(["BaGeO3"]).how and gc.isenabled() == enabled
        finally:
            gc.enable()
    assert seen == [False] * 4


def test_predict_consensus_on_the_command_line(polymorphs, tmp_path):
    _, member = polymorphs
    path = checkpoint.save(tmp_path / "member.safetensors", member)
    agreed = checkpoint.read_model(path)
    agreed.consensus = 4
    result = runner.invoke(app, ["predict", "BaGeO3", "--consensus", "4", "--model", str(path)])
    assert result.exit_code == 0, result.output
    assert f"answered by: {agreed.answer(['BaGeO3']).how[0]}" in result.output
    result = runner.invoke(app, ["predict", "BaGeO3", "--consensus", "0", "--model", str(path)])
    assert result.exit_code == 2 and "'--consensus': 0 is out of range" in result.output
