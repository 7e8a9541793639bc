"""Explaining a measurement as a sum of phases (`xrdzoo identify --phases N`), on a measured-looking mixture the test
makes from two prototype structures."""

import zipfile
from dataclasses import replace

import numpy as np
import pytest
from typer.testing import CliRunner

from test_identify import GRID, STRUCTURES, SimulatingModel, measured
import xrdzoo
from xrdzoo.cli import app
from xrdzoo.contracts import Answers, Candidate
from xrdzoo.errors import InputError
from xrdzoo.identify import Scorer, answered, rank
from xrdzoo.measured import measured_looking, write_xy
from xrdzoo import mixtures
from xrdzoo.mixtures import explain, mixture_of, options_of
from xrdzoo.xrd.pattern import Pattern
from xrdzoo.xrd.profiles import Profile, wavelength
from xrdzoo.xrd.simulate import reflections, simulate


def mixture(shares: dict[str, float], seed: int = 0) -> Pattern:
    """A measured-looking pattern of phases with these shares of the integrated intensity."""
    line = wavelength("CuKa")
    tt, intensity = [], []
    for formula, share in shares.items():
        simulated = reflections(STRUCTURES[formula], "fast", line)
        two_theta, peaks = simulated.two_theta, simulated.intensities
        tt.append(two_theta)
        intensity.append(share * peaks / peaks[(two_theta > 10) & (two_theta < 80)].sum())
    peaks = Pattern(np.concatenate(tt), np.concatenate(intensity), line)
    profile = Profile("pseudo-voigt", caglioti=(0.02, -0.01, 0.01), doublet=True)
    return measured_looking(peaks, GRID, profile, np.random.default_rng(seed), zero_shift=0.05, peak_counts=2e4)


def test_a_two_phase_mixture_is_explained_with_its_shares():
    pattern = mixture({"BaTiO3": 0.7, "MgAl2O4": 0.3})
    model, scorer = SimulatingModel(), Scorer()
    ranking = rank(pattern, list(STRUCTURES), model, scorer=scorer)
    assert ranking.matches[0].formula == "BaTiO3"
    pool = options_of(ranking, model, None, pattern.wavelength)
    found = explain(ranking, pool, 2, scorer)
    assert [m.formula for m in found.phases] == ["BaTiO3", "MgAl2O4"]
    assert found.shares[0] == pytest.approx(0.7, abs=0.12) and sum(found.shares) == pytest.approx(1)
    assert found.score > ranking.matches[0].score + 0.05  # the mixture explains more than its main phase
    one = explain(ranking, pool, 1, scorer)
    assert [m.formula for m in one.phases] == ["BaTiO3"] and one.shares == [1.0]
    lines = found.table(["Ba", "Ti", "O"]).splitlines()
    assert lines[0].startswith("mixture of 2 phase(s)") and lines[2].split()[:2] == ["1", "BaTiO3"]


class DecoyFirstModel(SimulatingModel):
    """Answers MgAl2O4 with two candidates: first a decoy (BaTiO3's pattern, so it matches a BaTiO3-rich mixture
    best alone), then its true spinel; the other prototypes with their one simulated pattern."""

    def answer(self, formulas, top=1):
        answers = super().answer(formulas)
        ranked = [[Candidate(p, 0, "test", how)] for p, how in zip(answers.patterns.intensities, answers.how)]
        for row, i in enumerate(answers.kept):
            if formulas[i] == "MgAl2O4":
                decoy = simulate([STRUCTURES["BaTiO3"]])[0]
                ranked[row] = [Candidate(decoy, 221, "test", "decoy"), Candidate(ranked[row][0].pattern, 227,
                                                                                   "test", "spinel")][:top]
        return Answers.of(answers.kept, answers.refused, ranked)


def test_a_minor_phase_is_found_through_a_candidate_that_was_not_its_best_alone():
    pattern = mixture({"BaTiO3": 0.7, "MgAl2O4": 0.3})
    model, scorer = DecoyFirstModel(), Scorer()
    ranking = rank(pattern, list(STRUCTURES), model, scorer=scorer, candidates=2)
    assert next(m.source for m in ranking.matches if m.formula == "MgAl2O4") == "predicted (decoy)"
    found = explain(ranking, options_of(ranking, model, None, pattern.wavelength, 2, scorer), 2, scorer)
    assert [(m.formula, m.source) for m in found.phases] == [("BaTiO3", "predicted (simulated)"), ("MgAl2O4", "predicted (spinel)")]


class ConfidentModel(SimulatingModel):
    """Answers each prototype with its simulated pattern and a calibrated score, but MgAl2O4 with its pattern's
    relative intensities off by up to 40 % at 0.9, and Cr2FeO4 with MgAl2O4's exact pattern at 0.05 (an unlikely
    template that fits the spinel better than the spinel's own prediction); the others at 0.5."""

    def answer(self, formulas, top=1):
        answers = super().answer(formulas)
        spinel = simulate([STRUCTURES["MgAl2O4"]])[0]
        patterns = {"MgAl2O4": spinel * (1 + 0.4 * np.cos(np.arange(spinel.size))), "Cr2FeO4": spinel}
        confidence = {"MgAl2O4": 0.9, "Cr2FeO4": 0.05}
        ranked = [[Candidate(patterns.get(formulas[i], p), 0, "test", how, confidence.get(formulas[i], 0.5))]
                  for i, p, how in zip(answers.kept, answers.patterns.intensities, answers.how)]
        return Answers.of(answers.kept, answers.refused, ranked)


def test_of_two_phases_that_explain_the_rest_about_as_well_the_one_the_member_is_surer_of_is_chosen():
    pattern = mixture({"BaTiO3": 0.7, "MgAl2O4": 0.3})
    model, scorer = ConfidentModel(), Scorer()
    ranking = rank(pattern, list(STRUCTURES), model, scorer=scorer)
    confidence = {m.formula: m.confidence for m in ranking.matches}
    assert (confidence["MgAl2O4"], confidence["Cr2FeO4"], confidence["BaTiO3"]) == (0.9, 0.05, 0.5)
    options = options_of(ranking, model, None, pattern.wavelength)
    unweighted = [(replace(m, confidence=None), p) for m, p in options]
    assert [m.formula for m in explain(ranking, unweighted, 2, scorer).phases] == ["BaTiO3", "Cr2FeO4"]
    found = explain(ranking, options, 2, scorer)
    assert [m.formula for m in found.phases] == ["BaTiO3", "MgAl2O4"]
    assert [line.split()[4] for line in found.table().splitlines()[2:]] == ["0.50", "0.90"]  # the chance column


def test_a_phase_is_added_only_where_its_gain_times_the_members_confidence_reaches_min_gain():
    pattern = mixture({"BaTiO3": 0.7, "MgAl2O4": 0.3})
    model, scorer = ConfidentModel(), Scorer()
    ranking = rank(pattern, list(STRUCTURES), model, scorer=scorer)
    options = options_of(ranking, model, None, pattern.wavelength)
    found = explain(ranking, options, 2, scorer)  # the spinel at 0.9 raises the fit by five times MIN_GAIN
    assert len(found.phases) == 2 and found.score - ranking.matches[0].score > 5 * mixtures.MIN_GAIN
    doubtful = [(m if i == 0 else replace(m, confidence=0.01), p) for i, (m, p) in enumerate(options)]
    assert [m.formula for m in explain(ranking, doubtful, 2, scorer).phases] == ["BaTiO3"]


def test_a_shortlist_scores_only_the_compositions_best_by_their_first_candidate_again():
    pattern, asked = measured("MgAl2O4"), []

    class Counting(DecoyFirstModel):
        def answer(self, formulas, top=1):
            asked.append((len(formulas), top))
            return super().answer(formulas, top)

    formulas = list(STRUCTURES)
    place = rank(pattern, formulas, Counting()).rank_of("MgAl2O4")  # by its decoy: not first
    assert place > 1
    asked.clear()
    ranking = rank(pattern, formulas, Counting(), candidates=2, shortlist=place)
    assert asked == [(len(formulas), 1), (place, 2)]  # every composition by its first, then the shortlist by two
    assert (ranking.matches[0].formula, ranking.matches[0].source) == ("MgAl2O4", "predicted (spinel)")
    assert [m.formula for m in ranking.matches] == [m.formula for m in rank(pattern, formulas, Counting(),
                                                                             candidates=2).matches]
    short = rank(pattern, formulas, Counting(), candidates=2, shortlist=place - 1)  # its spinel is never drawn
    assert next(m.source for m in short.matches if m.formula == "MgAl2O4") == "predicted (decoy)"
    assert len(short.matches) == len(formulas)


def test_a_mixture_draws_on_at_most_pool_candidates_per_composition(monkeypatch):
    pattern = mixture({"BaTiO3": 0.7, "MgAl2O4": 0.3})
    model, scorer = DecoyFirstModel(), Scorer()
    ranking = rank(pattern, list(STRUCTURES), model, scorer=scorer, candidates=2)
    found = mixture_of(ranking, pattern, list(STRUCTURES), model, None, 2, scorer, candidates=2)
    assert [(m.formula, m.source) for m in found.phases] == [("BaTiO3", "predicted (simulated)"), ("MgAl2O4", "predicted (spinel)")]
    monkeypatch.setattr(mixtures, "POOL_CANDIDATES", 1)  # ranked again by first candidates: MgAl2O4's decoy alone
    found = mixture_of(ranking, pattern, list(STRUCTURES), model, None, 2, scorer, candidates=2)
    assert {m.source for m in found.phases} <= {"predicted (simulated)", "predicted (decoy)"}  # first candidates


class KnownSpinelModel(DecoyFirstModel):
    """As :class:`DecoyFirstModel`, but MgAl2O4's spinel, listed after the decoy, is its known structure (score 1)."""

    def answer(self, formulas, top=1):
        answers = super().answer(formulas, top)
        ranked = [[replace(c, score=1.0) if c.how == "spinel" else c for c in found] for found in answers.ranked()]
        return Answers.of(answers.kept, answers.refused, ranked)


def test_a_known_structure_listed_past_the_pool_candidates_is_still_drawn(monkeypatch):
    pattern = mixture({"BaTiO3": 0.7, "MgAl2O4": 0.3})
    model, scorer = KnownSpinelModel(), Scorer()
    ranking = rank(pattern, list(STRUCTURES), model, scorer=scorer, candidates=2)
    monkeypatch.setattr(mixtures, "POOL_CANDIDATES", 1)  # predictions: the first alone; known structures: all
    found = mixture_of(ranking, pattern, list(STRUCTURES), model, None, 2, scorer, candidates=2)
    assert [(m.formula, m.source) for m in found.phases] == [("BaTiO3", "predicted (simulated)"),
                                                             ("MgAl2O4", "predicted (spinel)")]
    assert found.phases[1].known


def test_an_unscored_answer_beside_a_known_structure_is_not_drawn():
    """MgAl2O4's decoy is unscored and its spinel known: only the spinel is drawn, so the decoy (BaTiO3's pattern)
    cannot stand for it; a formula with no known structure keeps its unscored answers."""
    answers, lists = answered(KnownSpinelModel(), ["MgAl2O4", "BaTiO3"], candidates=2)
    assert [[c.how for c in found] for found in lists] == [["spinel"], [answers.how[1]]]
    assert [[c.how for c in found] for found in answered(DecoyFirstModel(), ["MgAl2O4"], 2)[1]] == [["decoy", "spinel"]]
    ranking = rank(mixture({"BaTiO3": 0.7, "MgAl2O4": 0.3}), list(STRUCTURES), KnownSpinelModel(), candidates=2)
    assert next(m.source for m in ranking.matches if m.formula == "MgAl2O4") == "predicted (spinel)"


def test_a_minor_phase_is_drawn_from_what_the_main_phase_leaves_unexplained(monkeypatch):
    pattern = mixture({"BaTiO3": 0.75, "MgAl2O4": 0.25})
    model, scorer = SimulatingModel(), Scorer()
    ranking = rank(pattern, list(STRUCTURES), model, scorer=scorer)
    monkeypatch.setattr(mixtures, "POOL", 1)  # the single-phase pool holds the main phase alone
    assert [m.formula for m, _ in options_of(ranking, model, None, pattern.wavelength)] == ["BaTiO3"]
    found = mixture_of(ranking, pattern, list(STRUCTURES), model, None, 2, scorer)
    assert [m.formula for m in found.phases] == ["BaTiO3", "MgAl2O4"]


def test_a_single_phase_stays_one_phase():
    pattern = measured("BaTiO3")
    model, scorer = SimulatingModel(), Scorer()
    ranking = rank(pattern, list(STRUCTURES), model, scorer=scorer)
    found = explain(ranking, options_of(ranking, model, None, pattern.wavelength), 3, scorer)
    assert [m.formula for m in found.phases][:1] == ["BaTiO3"] and found.shares[0] > 0.9


@pytest.mark.parametrize("bad", [0, 4, True, 1.5])
def test_phases_out_of_range_is_one_line(bad):
    ranking = rank(measured("BaTiO3"), ["BaTiO3"], SimulatingModel())
    with pytest.raises(InputError, match="--phases must be a whole number from 1 to 3"):
        explain(ranking, [], bad)


def test_cli_identify_phases(tmp_path):
    path = write_xy(tmp_path / "mix.xy", mixture({"BaTiO3": 0.75, "MgAl2O4": 0.25}), "mixture")
    runner = CliRunner()
    for bad in ("0", "4"):
        result = runner.invoke(app, ["identify", str(path), "--elements", "Ba,Ti,O", "--phases", bad])
        assert result.exit_code == 1 and result.output.startswith("Error: --phases must be a whole number"), \
            result.output
    result = runner.invoke(app, ["identify", str(path), "--elements-pool", "Ba,Ti,O", "--phases", "2"])
    assert result.exit_code == 1 and "--phases works with --elements" in result.output
    result = runner.invoke(app, ["identify", str(path), "--elements", "Ti,Ba,O", "--max-atoms", "6",
                                 "--charge-balanced", "--phases", "2"])
    assert result.exit_code == 0, result.output
    assert "mixture of" in result.output and "share" in result.output


def test_answers_are_remembered_without_loading_the_member_again(tmp_path, monkeypatch):
    from xrdzoo.answer_cache import CachedMember

    monkeypatch.setenv("XRDZOO_HOME", str(tmp_path))
    formulas = ["BaTiO3", "Ba2TiO4", "Qq2O"]
    first = CachedMember("template_learned.mp_ternary", xrdzoo.load)
    fresh = first.answer(formulas, top=2)
    assert first._member is not None and len(list((tmp_path / "answers").glob("*.npz"))) == 3  # one per formula
    again = CachedMember("template_learned.mp_ternary", xrdzoo.load)
    remembered = again.answer(formulas, top=2)
    assert again._member is None  # answered from the cache: nothing loaded
    assert remembered.kept == fresh.kept and remembered.refused == fresh.refused and remembered.how == fresh.how
    assert np.array_equal(remembered.patterns.intensities, fresh.patterns.intensities)
    assert [[(c.source, c.spacegroup, c.score) for c in r] for r in remembered.ranked()] == \
        [[(c.source, c.spacegroup, c.score) for c in r] for r in fresh.ranked()]
    for entry in (tmp_path / "answers").glob("*.npz"):
        entry.write_bytes(b"not an npz")  # a damaged entry is answered afresh and replaced
    afresh = CachedMember("template_learned.mp_ternary", xrdzoo.load).answer(formulas, top=2)
    assert np.array_equal(afresh.patterns.intensities, fresh.patterns.intensities)
    assert afresh.refused == fresh.refused
    assert all(zipfile.is_zipfile(e) for e in (tmp_path / "answers").glob("*.npz"))  # replaced
    replaced = CachedMember("template_learned.mp_ternary", xrdzoo.load)
    assert np.array_equal(replaced.answer(formulas, top=2).patterns.intensities, fresh.patterns.intensities)
    assert replaced._member is None
    shortlist = CachedMember("template_learned.mp_ternary", xrdzoo.load)
    part = shortlist.answer(["Ba2TiO4", "BaTiO3"], top=2)  # other formulas, in another order: each one remembered
    assert shortlist._member is None and part.how == [fresh.how[1], fresh.how[0]]
    fewer = shortlist.answer(formulas)  # a smaller top: the first candidates of the entries, nothing predicted
    assert shortlist._member is None and fewer.how == fresh.how
    assert [len(r) for r in fewer.ranked()] == [1, 1] and np.array_equal(fewer.patterns.intensities,
                                                                          fresh.patterns.intensities)
    more = shortlist.answer(formulas, top=3)  # a larger one is asked of the member, and remembered
    assert shortlist._member is not None and [len(r) for r in more.ranked()] == [3, 3]
    assert len(list((tmp_path / "answers").glob("*.npz"))) == 3
    again = CachedMember("template_learned.mp_ternary", xrdzoo.load)
    assert [len(r) for r in again.answer(formulas, top=3).ranked()] == [3, 3] and again._member is None
    nothing = CachedMember("template_learned.mp_ternary", xrdzoo.load).answer(["Og2Ts"])  # none kept is remembered too
    monkeypatch.setattr("xrdzoo.answer_cache.__version__", "0.0.0")  # another xrdzoo answers afresh
    other = CachedMember("template_learned.mp_ternary", xrdzoo.load)
    assert other.answer(formulas, top=2).how == fresh.how and other._member is not None
    assert nothing.kept == [] and "Og2Ts" in nothing.refused and nothing.patterns.intensities.shape == (0, 1024)
