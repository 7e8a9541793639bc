"""Scoring candidates against a measurement, enumerating compositions, ranking, and `xrdzoo compare` / `identify`,
on measured-looking patterns the tests make from structures they build themselves."""

import numpy as np
import pytest
from pymatgen.core import Composition, Structure
from typer.testing import CliRunner

from conftest import prototype_structures
from xrdzoo.cli import app
from xrdzoo.contracts import Answers, Candidate
from xrdzoo.formulas import compositions, written
from xrdzoo.identify import TIE_SCORE, Scorer, known_structures, rank
from xrdzoo.measured import measured_looking, write_xy
from xrdzoo.xrd.pattern import Pattern, parse_grid, two_theta_at
from xrdzoo.xrd.profiles import Profile, wavelength
from xrdzoo.xrd.simulate import reflections, simulate

STRUCTURES = {s.composition.reduced_formula: s for s in prototype_structures()}
GRID = parse_grid("10:80:0.02")


def measured(formula: str, tube: str = "CuKa", shift: float = 0.12, seed: int = 0) -> Pattern:
    line = wavelength(tube)
    peaks = reflections(STRUCTURES[formula], "fast", line)
    profile = Profile("pseudo-voigt", caglioti=(0.02, -0.01, 0.01), doublet=True)
    return measured_looking(peaks, GRID, profile, np.random.default_rng(seed), zero_shift=shift)


class SimulatingModel:
    """A perfect predictor of the prototype formulas: their simulated model-frame patterns."""

    def answer(self, formulas):
        kept = [i for i, f in enumerate(formulas) if f in STRUCTURES]
        return Answers(kept, {f: "not a prototype" for f in formulas if f not in STRUCTURES},
                       simulate([STRUCTURES[formulas[i]] for i in kept]), ["simulated"] * len(kept))


def test_score_finds_the_zero_shift():
    m = measured("SrTiO3", shift=0.12)
    scorer = Scorer()
    window = scorer.window(m, (0.0, 180.0))
    grid = window.two_theta
    assert grid[0] == pytest.approx(10) and grid[-1] == pytest.approx(80, abs=0.02)
    assert window.wavelength == m.wavelength and window.intensities.max() == pytest.approx(100)
    truth = reflections(STRUCTURES["SrTiO3"])
    other = reflections(STRUCTURES["MgAl2O4"])  # another structure type
    (best,), (shift,), _ = scorer.score(window, truth)
    (worse,), _, _ = scorer.score(window, other)
    assert best > 0.9 and shift == pytest.approx(0.12, abs=0.021) and worse < best - 0.2
    # the same structure with a cell 1.25% too large (SrZrO3's prototype): only the strain search recovers it
    strained = reflections(STRUCTURES["SrZrO3"])
    (rigid,), _, _ = Scorer(max_strain=0).score(window, strained)
    (tolerant,), _, _ = scorer.score(window, strained)
    assert tolerant > 0.9 and rigid < tolerant - 0.2
    for bad in ({"fwhm": 0}, {"max_shift": -0.1}, {"step": 0}, {"max_strain": -0.01}):
        with pytest.raises(ValueError, match="the score needs"):
            Scorer(**bad)


def test_the_score_is_the_best_pearson_of_the_drawn_candidate_over_every_shift_and_strain():
    """The peak-space score against its plain definition: each candidate drawn on the window's grid at every shift
    and strain and correlated with the measurement; its curve is the drawing that won."""
    scorer = Scorer(max_shift=0.1, max_strain=0.01)
    window = scorer.window(measured("SrTiO3", shift=0.06), (0.0, 180.0))
    batch = Pattern.from_frame(simulate([STRUCTURES[f] for f in ("SrTiO3", "SrZrO3", "MgAl2O4", "NaCl")]))
    fit = scorer.score(window, batch)
    profile = Profile(fwhm=scorer.fwhm)
    for i in range(len(batch)):
        drawn = {(lag * scorer.step, strain): Pattern(two_theta_at(batch.d * (1 + strain), batch.wavelength),
                                                      batch.intensities[i], batch.wavelength
                                                      ).on_grid(window.two_theta - lag * scorer.step, profile)
                 for lag in range(-5, 6) for strain in (-0.01, -0.005, 0.0, 0.005, 0.01)}
        r = {key: np.corrcoef(curve, window.intensities)[0, 1] for key, curve in drawn.items()}
        shift, strain = max(r, key=r.get)
        assert fit.scores[i] == pytest.approx(r[shift, strain], abs=1e-7)
        assert (fit.shifts[i], fit.strains[i]) == pytest.approx((shift, strain))
    assert fit.scores[0] > 0.9 and fit.scores[2] < 0.7  # the truth, another structure type
    curves = scorer.curves(window, batch, fit)
    assert np.allclose([np.corrcoef(c, window.intensities)[0, 1] for c in curves], fit.scores, atol=1e-6)
    assert curves.max(axis=1) == pytest.approx(100)


@pytest.mark.parametrize("tube", ["CuKa", "MoKa"])
def test_rank_puts_the_true_formula_first(tube):
    ranking = rank(measured("BaTiO3", tube), [*STRUCTURES, "XyZ"], SimulatingModel())
    assert ranking.matches[0].formula == "BaTiO3" and ranking.rank_of("BaTiO3") == 1
    assert ranking.skipped == {"XyZ": "not a prototype"} and len(ranking.matches) == len(STRUCTURES)
    if tube == "MoKa":  # a Cu-frame prediction moved to Mo K-alpha is known up to about 55 degrees
        assert ranking.measured.two_theta[-1] == pytest.approx(54.9, abs=0.1)
    assert "BaTiO3" in ranking.table().splitlines()[1]


class TwinModel(SimulatingModel):
    """Predicts "BaTiO3" and its twin "SrO" with the same BaTiO3 pattern, the others as
    simulated: two formulas whose patterns cannot be told apart (as Y2O3 and YO from one template)."""

    def answer(self, formulas):
        answers = super().answer([("BaTiO3" if f == "SrO" else f) for f in formulas])
        return Answers(answers.kept, answers.refused, answers.patterns, answers.how)


def test_indistinguishable_candidates_are_one_answer_with_a_margin():
    ranking = rank(measured("BaTiO3"), ["SrTiO3", "BaTiO3", "SrO", "CaTiO3"], TwinModel())
    assert {m.formula for m in ranking.matches[:2]} == {"BaTiO3", "SrO"}
    groups = ranking.groups()
    assert [sorted(m.formula for m in g) for g in groups[:1]] == [["BaTiO3", "SrO"]] and len(groups) == 3
    lines = ranking.table().splitlines()
    assert lines[0].split() == ["rank", "formula", "score", "margin", "shift", "source"] and len(lines) == 4
    first = lines[1].split()
    assert first[0] == "1" and first[2] == "=" and {first[1], first[3]} == {"BaTiO3", "SrO"}
    assert float(first[5]) == pytest.approx(groups[0][0].score - groups[1][0].score, abs=1e-3) and float(first[5]) > 0
    assert lines[2].split()[0] == "2"  # the next distinct answer is ranked second, not third


def with_extra_peak(pattern: np.ndarray, height: float) -> np.ndarray:
    """``pattern`` (model frame) with an extra small peak of ``height`` at 2-theta 60 degrees: it fits a measurement
    of the pattern's own structure a little worse."""
    nudged = pattern.copy()
    nudged[int(60 / 180 * len(pattern))] += height
    return nudged


class KnownThenTemplate(SimulatingModel):
    """Answers SrTiO3 with two candidates: first a "known" pattern, its own :func:`with_extra_peak`, then a
    "template", its own pattern exactly."""

    def __init__(self, height: float):
        self.height = height

    def answer(self, formulas, top=1):
        own = simulate([STRUCTURES["SrTiO3"]])[0]
        found = {"SrTiO3": [Candidate(with_extra_peak(own, self.height), 221, "mp-1", "known structure mp-1"),
                            Candidate(own, 221, "mp-2", "template mp-2")]}
        return Answers.of_formulas(formulas, found, top)


def test_a_known_structure_is_not_displaced_by_a_template_that_fits_as_well():
    m = measured("SrTiO3")
    scores = {height: [x.score for x in rank(m, ["SrTiO3"], KnownThenTemplate(height), candidates=1).matches
                       + rank(m, ["SrTiO3"], SimulatingModel()).matches] for height in (1.0, 20.0)}
    assert 0 < scores[1.0][1] - scores[1.0][0] < TIE_SCORE < scores[20.0][1] - scores[20.0][0]  # the premise
    sources = {height: rank(m, ["SrTiO3"], KnownThenTemplate(height), candidates=2).matches[0].source
               for height in (1.0, 20.0)}
    assert sources == {1.0: "predicted (known structure mp-1)", 20.0: "predicted (template mp-2)"}


class KnownAndPredicted(KnownThenTemplate):
    """Answers SrTiO3 with a "known" structure (score 1), its own :func:`with_extra_peak`, and CaTiO3 with a
    prediction that is SrTiO3's pattern exactly."""

    def answer(self, formulas, top=1):
        own = simulate([STRUCTURES["SrTiO3"]])[0]
        found = {"SrTiO3": [Candidate(with_extra_peak(own, self.height), 221, "mp-1", "known structure mp-1", 1.0)],
                 "CaTiO3": [Candidate(own, 221, "mp-2", "template mp-2", 0.4)]}
        return Answers.of_formulas(formulas, found, top)


def test_a_known_structure_ranks_ahead_of_another_formulas_prediction_that_fits_as_well():
    m = measured("SrTiO3")
    for height, first in ((1.0, "SrTiO3"), (20.0, "CaTiO3")):
        matches = rank(m, ["CaTiO3", "SrTiO3"], KnownAndPredicted(height)).matches
        score = {match.formula: match.score for match in matches}
        assert 0 < score["CaTiO3"] - score["SrTiO3"]  # the prediction fits better, by 0.0001 or by 0.016
        assert [match.formula for match in matches][0] == first and matches[0].known == (first == "SrTiO3")


def test_formulas_are_written_as_chemists_write_them():
    assert written("Li(CoO3)2", ["Li", "Co", "O"]) == "LiCo2O6"
    assert written("TiFeO3", ["Fe", "Ti", "O"]) == "FeTiO3" and written("FeCuS2", ["Cu", "Fe", "S"]) == "CuFeS2"
    assert written("Ca5(PO4)3F", ["Ca", "P", "O"]) == "Ca5P3O12F"  # elements not in the order follow
    assert written("BaTiO3") == "BaTiO3"


def test_known_structures_rank_beside_predictions(structure_dir):
    known = known_structures(structure_dir, ["O", "Ti", "Ba"])
    assert list(known) == ["BaTiO3"]
    disordered = STRUCTURES["BaTiO3"].copy()
    disordered.replace_species({"Ti": {"Ti": 0.5, "Zr": 0.5}})
    known["BaTi(Zr)O3"] = ("disordered", disordered)
    ranking = rank(measured("BaTiO3"), ["SrTiO3", "CaTiO3"], SimulatingModel(), known)
    assert ranking.matches[0].source.startswith("known ") and ranking.matches[0].formula == "BaTiO3"
    assert len(ranking.matches) == 4 and not ranking.skipped  # the disordered structure is simulated too
    assert ranking.matches[1].formula == "BaTi(Zr)O3" and ranking.matches[1].source == "known disordered"
    assert ranking.rank_of("BaTiO3") is None and ranking.rank_of("BaTiO3", ranking.matches[0].source) == 1


def test_compositions():
    assert compositions(["Ba", "Ti", "O"], 5) == sorted(
        Composition({"Ba": a, "Ti": b, "O": c}).reduced_formula
        for a, b, c in [(1, 1, 1), (1, 1, 2), (1, 2, 1), (2, 1, 1), (1, 1, 3), (1, 3, 1), (3, 1, 1), (1, 2, 2),
                        (2, 1, 2), (2, 2, 1)])
    assert "BaTiO3" in compositions(["Ba", "Ti", "O"], 5, charge_balanced=True)
    for bad, message in ((["Ba", "Xx"], "not an element"), (["Ba"], "at least two"), (["Ba", "Ti", "O"], "fewer")):
        with pytest.raises(ValueError, match=message):
            compositions(bad, 2)


@pytest.mark.parametrize("elements", [["Ba", "Ti", "O"], ["Li", "Fe", "P"], ["Cs", "Sb", "Cl"], ["Fe", "Co", "O"]])
def test_charge_balance_agrees_with_pymatgen(elements):
    formulas = compositions(elements, 9)
    balanced = set(compositions(elements, 9, charge_balanced=True))
    assert balanced == {f for f in formulas if Composition(f).oxi_state_guesses()}


def test_cli_compare_and_identify(tmp_path, structure_dir):
    """The shipped model on a measured-looking BaTiO3 (cubic perovskite, Cu K-alpha) file the test writes."""
    path = write_xy(tmp_path / "BaTiO3.xy", measured("BaTiO3"), "measured-looking BaTiO3")
    runner = CliRunner()
    png = tmp_path / "compare.png"
    result = runner.invoke(app, ["compare", str(path), "BaTiO3", "BaTi2O5", "Ba2TiO4", "--plot", str(png),
                                 "--candidates", "12"])  # BaTiO3's ground state in MP is R3m: its cubic polymorph
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].split()[:2] == ["rank", "formula"] and lines[1].split()[1] == "BaTiO3"
    # which structure matched: its cubic polymorph, known, or a cubic perovskite template as close (the default ranks
    # 40 templates after the known polymorphs, and a rescaled BaNbO3 fits this made-up lattice as well)
    assert "known structure mp-" in lines[1] or "space group 221" in lines[1]
    assert png.read_bytes().startswith(b"\x89PNG")

    png = tmp_path / "identify.png"
    result = runner.invoke(app, ["identify", str(path), "--elements", "Ti,Ba,O", "--max-atoms", "8",
                                 "--charge-balanced", "--structures", str(structure_dir), "--plot", str(png),
                                 "--top", "4", "--cifs", str(tmp_path / "matched")])
    assert result.exit_code == 0, result.output
    formulas = [line.split()[1] for line in result.output.splitlines() if line[:4].strip().isdigit()]
    assert "TiBaO3" in formulas and "BaTiO3" not in formulas  # in the order of --elements, not pymatgen's
    assert "charge-balanced compositions of Ba-O-Ti" in result.output and "known s" in result.output
    assert png.read_bytes().startswith(b"\x89PNG")
    # --cifs: the structure each answer matched as, a known one of --structures or the member's substituted cell
    cifs = sorted((tmp_path / "matched").iterdir())
    assert f"wrote {len(cifs)} CIF file(s)" in result.output and {c.name[0] for c in cifs} == {"1", "2", "3", "4"}
    for cif in cifs:
        formula = cif.name.split("_")[1]
        assert Structure.from_file(cif).composition.reduced_formula == Composition(formula).reduced_formula
        assert cif.read_text().startswith(f"# {formula}, answer {cif.name[0]} for BaTiO3.xy (score ")
    result = runner.invoke(app, ["identify", str(path), "--elements-pool", "Ba,Ti,O", "--cifs", str(tmp_path)])
    assert result.exit_code == 1 and "--cifs works with --elements" in result.output

    (tmp_path / "bad.xy").write_text("2theta counts\n1 2\n")
    result = runner.invoke(app, ["compare", str(tmp_path / "bad.xy"), "BaTiO3"])
    assert result.exit_code == 1 and result.output.startswith("Error: bad.xy: found 1 lines")
    result = runner.invoke(app, ["identify", str(path), "--elements", "Ba,Qq"])
    assert result.exit_code == 1 and "'Qq' is not an element symbol" in result.output


def test_the_window_is_broadened_as_scipys_gaussian_filter_does_it():
    from scipy.ndimage import gaussian_filter1d

    from xrdzoo.measured import background
    from xrdzoo.xrd.pattern import full_scale

    two_theta = 10 + 0.013 * np.arange(4000)
    counts = np.random.default_rng(0).random(4000) * 50 + 2000 * np.exp(-(((two_theta - 30) / 0.05) ** 2))
    measured = Pattern(two_theta, counts, 1.5406, span=(10, float(two_theta[-1])))
    scorer = Scorer(fwhm=0.37, step=0.02)
    window = scorer.window(measured, (0, 180))
    signal = np.clip(counts - background(measured, scorer.background_width), 0, None)
    sigma = scorer.fwhm / (2 * np.sqrt(2 * np.log(2))) / scorer.step
    expected = full_scale(gaussian_filter1d(np.interp(window.two_theta, two_theta, signal), sigma, mode="nearest"))
    assert np.allclose(window.intensities, expected, atol=1e-9)
