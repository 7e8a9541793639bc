"""`xrdzoo identify --elements-pool`: identify's ranking over every chemical system of a pool, through the engine."""

import pytest
from typer.testing import CliRunner

from test_identify import STRUCTURES, SimulatingModel, measured
from xrdzoo.cli import app
from xrdzoo.errors import InputError
from xrdzoo.formulas import compositions
from xrdzoo.identify import rank
from xrdzoo.measured import write_xy
from xrdzoo.screening import Pool
from xrdzoo.search import search

POOL = Pool(("Ba", "Sr", "Ti", "O"), max_elements=3, max_atoms=5, charge_balanced=True)


def test_each_system_is_scored_as_its_own_run_and_merged_best_first():
    pattern, model = measured("BaTiO3"), SimulatingModel()
    known = {"SrTiO3": ("known-1", STRUCTURES["SrTiO3"]), "NaCl": ("elsewhere", STRUCTURES["NaCl"])}
    ranking = search(pattern, POOL, model, known, curves=1)
    assert ranking.rank_of("BaTiO3") == 1 and ranking.rank_of("SrTiO3", "known known-1") is not None
    assert all(m.formula != "NaCl" for m in ranking.matches)  # not a system of the pool
    scores = [m.score for m in ranking.matches]
    assert scores == sorted(scores, reverse=True)
    for system in POOL.systems():
        alone = rank(pattern, compositions(list(system), 5, charge_balanced=True), model,
                     {f: k for f, k in known.items() if f == "SrTiO3" and system == ("O", "Sr", "Ti")})
        mine = {(a.formula, a.source) for a in alone.matches}
        assert [(m.formula, m.source, m.score) for m in alone.matches] == \
            [(m.formula, m.source, m.score) for m in ranking.matches if (m.formula, m.source) in mine]
        assert set(alone.skipped) <= set(ranking.skipped)
    assert ranking.matches[0].curve.size and any(not m.curve.size for m in ranking.matches)


def test_cli_pool_on_a_worker_ranks_the_truth_as_the_one_system_run(tmp_path):
    """A shipped model on a measured-looking (cubic) BaTiO3: first in its system, first in the pool, with one score.
    The ternary template member draws it from a cubic perovskite template; the every-type default answers BaTiO3 with
    its R3m ground state, which needs --candidates to find the cubic polymorph (the pool takes one candidate)."""
    path = write_xy(tmp_path / "BaTiO3.xy", measured("BaTiO3"), "measured-looking BaTiO3")
    runner = CliRunner()
    common = ["--max-atoms", "5", "--charge-balanced", "--model", "template_learned.mp_ternary"]
    alone = runner.invoke(app, ["identify", str(path), "--elements", "Ba,Ti,O", *common, "--candidates", "1"])
    pooled = runner.invoke(app, ["identify", str(path), "--elements-pool", "Sr,Ba,Ti,O", "--max-elements", "3",
                                 *common, "--workers", "1"])
    assert alone.exit_code == 0 and pooled.exit_code == 0, pooled.output
    first = [next(line.split() for line in r.output.splitlines() if line.strip().startswith("1 "))
             for r in (alone, pooled)]
    assert first[0][1] == first[1][1] == "BaTiO3" and first[0][2] == first[1][2]
    assert "compositions of 10 systems of Ba-O-Sr-Ti" in pooled.output
    result = runner.invoke(app, ["identify", str(path), "--elements", "Ba,O", "--elements-pool", "Ba,O"])
    assert result.exit_code == 2 and "give one of --elements or --elements-pool" in result.output
    result = runner.invoke(app, ["identify", str(path), "--elements-pool", "Ba,Qq"])
    assert result.exit_code == 1 and "Error: 'Qq' is not an element symbol" in result.output


def test_a_cluster_needs_the_model_by_name():
    with pytest.raises(InputError, match="weight name or checkpoint path"):
        search(measured("BaTiO3"), POOL, SimulatingModel(), workers=1)
