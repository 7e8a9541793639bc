"""Which phase is this? Scoring candidate patterns against a measurement, and ranking formulas and known structures.

The score (``Scorer``), for a measurement and candidate patterns:

1. the window is the measured 2-theta range, cut to where the candidates are known (a model-frame prediction
   moved to Mo K-alpha knows nothing beyond about 55 degrees), on a uniform grid of ``step`` degrees;
2. the measurement loses its background (``xrdzoo.measured.background``), is clipped at zero and broadened by a
   Gaussian of FWHM ``fwhm``; each candidate is moved to the measurement's wavelength (through d-spacing) and drawn
   with a Gaussian of the same FWHM: both end up with peaks at least ``fwhm`` wide, so small position errors
   still overlap;
3. the score is the Pearson correlation of the two curves on the window, the largest over zero shifts of the
   candidate from ``-max_shift`` to ``+max_shift`` degrees in steps of ``step`` (a sample-height or zero error moves
   every peak of a measurement alike), and over lattice strains of the candidate up to ``max_strain`` (every
   d-spacing scaled alike, in steps of ``strain_step``: a predicted cell is rarely exact, and a 1% error in its
   lattice moves a peak at 120 degrees by about 2 degrees, far beyond any zero shift).
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np

from xrdzoo.contracts import Answers, Candidate
from xrdzoo.errors import InputError
from xrdzoo.formulas import DEFAULT_MAX_ATOMS, compositions, is_charge_balanced, written
from xrdzoo.measured import background
from xrdzoo.metrics import pearson
from xrdzoo.xrd.pattern import N_POINTS, Pattern, full_scale, gaussian_bands, two_theta_at
from xrdzoo.xrd.profiles import MAX_FWHM, Profile

TOP = 10
DEFAULT_CANDIDATES = 12  # candidates per composition identify and compare score (--candidates; docs/benchmarks.md)
TIE_SCORE = 0.002  # answers closer than this in score, with curves correlated above TIE_CURVE, are one answer
TIE_CURVE = 0.995
NONE_FITS = 0.5  # a best score below this is reported as "none of these fits" (docs/benchmarks.md)
MAX_SHIFT = 5.0  # degrees: a zero error beyond this is a wrong wavelength or axis, not a shift
DENSE_PEAKS = 4096  # peaks in the window up to which the score's peak-pair table is a dense matrix (128 MiB)
STABLE_ABOVE_HULL = 0.025  # eV/atom (about kT at room temperature): the larger known formulas --all-known adds
ALL_KNOWN = True  # whether identify adds them unless told (--all-known/--no-all-known; docs/benchmarks.md)
_FIRST_CLAUSE = re.compile(r"(?:[^,(]|[(][^)]*[)])*")  # up to the first comma outside brackets


@dataclass(frozen=True)
class Match:
    """One ranked candidate: its ``formula``, ``score`` (Pearson r, at most 1), the zero ``shift`` (degrees) that gave
    it, its ``source`` (``predicted``, ``predicted (<which candidate>)`` or ``known <id>``), its ``curve`` at that
    shift and strain on the ranking's scoring grid (``Ranking.measured.two_theta``; largest 100) and its
    ``confidence``: the member's calibrated chance that the candidate is the formula's structure (``Candidate.score``;
    1 for a known structure), None where the member has none."""

    formula: str
    score: float
    shift: float
    source: str
    curve: np.ndarray = field(repr=False)
    confidence: float | None = None

    @property
    def known(self) -> bool:
        """Whether the match is a known structure of its formula (confidence 1, as members and ``structures`` mark
        them), not a prediction."""
        return self.confidence == 1.0


@dataclass(frozen=True, eq=False)
class Ranking:
    """Candidates best first (a known structure ahead of predictions that score up to ``TIE_SCORE`` more), the
    ``measured`` pattern they were scored against (:meth:`Scorer.window`: on the scoring grid, background removed,
    broadened) and the formulas or structures ``skipped`` with why."""

    matches: list[Match]
    measured: Pattern
    skipped: dict[str, str]

    def rank_of(self, formula: str, source: str = "predicted") -> int | None:
        """1-based rank of a formula from the given source, or None if it is not among the candidates."""
        return next((i for i, m in enumerate(self.matches, 1) if m.formula == formula and m.source.startswith(source)),
                    None)

    def groups(self, top: int = TOP) -> list[list[Match]]:
        """The best ``top`` distinct answers, best first: each a group of candidates whose patterns cannot be told
        apart on the scoring grid (scores within ``TIE_SCORE`` and curves correlated above ``TIE_CURVE``), such as
        Y2O3 and YO predicted from one template."""
        groups: list[list[Match]] = []
        for match in self.matches:
            group = groups[-1] if groups else None
            if group and group[0].score - match.score <= TIE_SCORE \
                    and 1 - pearson([group[0].curve], [match.curve])[0] >= TIE_CURVE:
                group.append(match)
            elif len(groups) == top:
                break
            else:
                groups.append([match])
        return groups

    def table(self, top: int = TOP, order: list[str] | None = None) -> str:
        """The best ``top`` distinct answers as a text table, ties on one line (``A = B``), each with its margin
        over the next distinct answer; formulas written in the element ``order`` (``written``)."""
        groups = self.groups(top + 1)
        lines = [f"{'rank':>4}  {'formula':<20} {'score':>6}  {'margin':>6}  {'shift':>6}  source"]
        for i, group in enumerate(groups[:top], 1):
            names = " = ".join(written(m.formula, order) for m in group)
            sources = sorted({m.source for m in group})
            margin = f"{group[0].score - groups[i][0].score:6.3f}" if i < len(groups) else f"{'':>6}"
            lines.append(f"{i:>4}  {names:<20} {group[0].score:6.3f}  {margin}  {group[0].shift:+6.2f}  "
                         f"{', '.join(sources)}")
        return "\n".join(lines)


@dataclass(frozen=True)
class Scorer:
    """The shift-tolerant score of the module docstring: common Gaussian width ``fwhm``, zero shifts up to
    ``max_shift`` degrees either way, grid ``step`` degrees, background window ``background_width`` degrees."""

    fwhm: float = 0.5
    max_shift: float = 0.3
    step: float = 0.02
    background_width: float = 3.0
    max_strain: float = 0.02
    strain_step: float = 0.005

    def __post_init__(self):
        if not (0 < self.fwhm <= MAX_FWHM and 0 <= self.max_shift <= MAX_SHIFT and 0.001 <= self.step <= 1
                and 0 < self.background_width <= 90 and 0 <= self.max_strain < 0.2
                and 0 < self.strain_step and self.max_strain / self.strain_step <= 100):
            raise InputError(f"the score needs --fwhm in 0..{MAX_FWHM:g} and --max-shift in 0..{MAX_SHIFT:g} degrees "
                             f"(finite; step 0.001..1, at most 100 strain steps), got fwhm {self.fwhm}, max_shift "
                             f"{self.max_shift}, step {self.step}")

    def window(self, measured: Pattern, span: tuple[float, float]) -> Pattern:
        """The measurement as it is scored: on a uniform grid of ``step`` degrees where it and the candidates' ``span``
        overlap, background removed, broadened, largest 100."""
        low, high = max(measured.span[0], span[0]), min(measured.span[1], span[1])
        if high - low < 5:
            raise InputError(f"the measurement ({measured.span[0]:g}..{measured.span[1]:g} degrees) and the candidates "
                             f"({span[0]:.1f}..{span[1]:.1f} degrees at {measured.wavelength} A) overlap by less than 5 "
                             "degrees; check --wavelength")
        grid = low + self.step * np.arange(int((high - low) / self.step) + 1)
        signal = np.clip(measured.intensities - background(measured, self.background_width), 0, None)
        curve = np.interp(grid, measured.two_theta, signal)
        sigma = self.fwhm / (2 * np.sqrt(2 * np.log(2))) / self.step  # in grid points
        reach = int(4 * sigma + 0.5)  # a Gaussian to 4 sigma, the ends repeated (as scipy's gaussian_filter1d)
        kernel = np.exp(-0.5 * (np.arange(-reach, reach + 1) / sigma) ** 2)
        curve = np.convolve(np.pad(curve, reach, mode="edge"), kernel / kernel.sum(), mode="valid")
        return Pattern(grid, full_scale(curve), measured.wavelength, span=(float(grid[0]), float(grid[-1])))

    def score(self, window: Pattern, candidates: Pattern) -> Fit:
        """The :class:`Fit` of candidate peaks (one pattern or a batch sharing positions) at the measurement's
        wavelength against ``window`` (a measurement as :meth:`window` gives it).

        Worked in peak space: a candidate drawn on the grid is its intensities times a (peaks x grid) matrix of
        Gaussians, so its covariance with the measurement at every zero shift, its sum and its sum of squares over
        the window are its intensities times small per-peak tables (the windows of the shifts differ only in the
        ``2 x max_shift`` degrees at either end): no candidate is drawn, and a batch costs a few matrix products
        per strain."""
        grid, measured = window.two_theta, window.intensities
        reach, wide = self._wide(grid)
        edge = 2 * reach
        target = (measured - measured.mean()) / (np.linalg.norm(measured - measured.mean()) or 1)
        # column k: the target where it meets the candidate shifted by (reach - k) steps (wide points k..k+size-1);
        # centred, so a covariance is a plain product
        lags = np.arange(edge + 1)
        offset = np.arange(wide.size)[:, None] - lags[None, :]
        lagged = np.where((offset >= 0) & (offset < grid.size), target[np.clip(offset, 0, grid.size - 1)], 0.0)
        ends = np.r_[0:edge, grid.size : grid.size + edge]  # the wide points some shift leaves out
        intensities = np.atleast_2d(candidates.intensities).astype(np.float64)
        count = intensities.shape[0]
        fit = Fit(np.full(count, -np.inf), np.zeros(count), np.zeros(count))
        n_strains = int(round(self.max_strain / self.strain_step))
        for strain in self.strain_step * np.arange(-n_strains, n_strains + 1):
            centres = _strained(candidates, strain)
            near = np.flatnonzero(np.isfinite(centres) & (centres > wide[0] - 3 * self.fwhm)
                                  & (centres < wide[-1] + 3 * self.fwhm))
            shapes = gaussian_bands(centres[near], self.fwhm, wide, Profile(fwhm=self.fwhm))
            weights = intensities[:, near]
            covariance = weights @ (shapes @ lagged)
            gram = shapes @ shapes.T  # dense below DENSE_PEAKS peaks: one BLAS product for the batch
            gram = gram.toarray() if near.size <= DENSE_PEAKS else gram
            whole_square = np.einsum("ij,ij->i", weights, np.asarray(weights @ gram))
            drawn = weights @ shapes[:, ends].toarray()
            total = (weights @ np.asarray(shapes.sum(axis=1)).ravel())[:, None] - _left_out(drawn, edge)
            square = whole_square[:, None] - _left_out(np.square(drawn), edge)
            norm = np.sqrt(np.clip(square - total**2 / grid.size, 0, None))
            found = np.divide(covariance, norm, out=np.full(norm.shape, -1.0),
                              where=norm > 1e-6 * np.sqrt(whole_square)[:, None])  # else (almost) flat there
            best = found.argmax(axis=1)
            better = np.flatnonzero(found[np.arange(count), best] > fit.scores)  # a tie keeps the earlier strain
            fit.scores[better], fit.strains[better] = found[better, best[better]], strain
            fit.shifts[better] = (reach - best[better]) * self.step
        return fit

    def curves(self, window: Pattern, candidates: Pattern, fit: Fit) -> np.ndarray:
        """Each candidate (one pattern or a batch sharing positions) drawn on ``window``'s grid at the shift and
        strain of its ``fit`` (:meth:`score`), largest 100."""
        from numpy.lib.stride_tricks import sliding_window_view

        reach, wide = self._wide(window.two_theta)
        rows = np.atleast_2d(candidates.intensities)
        curves = np.zeros((rows.shape[0], window.two_theta.size), np.float32)
        for strain in np.unique(fit.strains):  # one drawing on the wide grid per strain, cut at each one's shift
            group = np.flatnonzero(fit.strains == strain)
            drawn = Pattern(_strained(candidates, strain), rows[group], candidates.wavelength).on_grid(
                wide, Profile(fwhm=self.fwhm))
            lags = reach - np.rint(fit.shifts[group] / self.step).astype(int)
            curves[group] = sliding_window_view(drawn, window.two_theta.size, axis=1)[np.arange(group.size), lags]
        return full_scale(curves)

    def _wide(self, grid: np.ndarray) -> tuple[int, np.ndarray]:
        """(shifts either way in grid steps, the grid widened by as many steps at each end: every shift of it)."""
        reach = int(round(self.max_shift / self.step))
        return reach, grid[0] + self.step * np.arange(-reach, grid.size + reach)


class Fit(NamedTuple):
    """How candidates fit a measurement (:meth:`Scorer.score`): each one's ``scores`` (Pearson r), and the zero
    ``shifts`` (degrees) and lattice ``strains`` (every d-spacing times 1 + strain) that gave them."""

    scores: np.ndarray
    shifts: np.ndarray
    strains: np.ndarray


def _strained(candidates: Pattern, strain: float) -> np.ndarray:
    """2-theta (degrees) of the candidates' peaks with every d-spacing times ``1 + strain``."""
    return candidates.two_theta if strain == 0 else two_theta_at(candidates.d * (1 + strain), candidates.wavelength)


def _left_out(values: np.ndarray, edge: int) -> np.ndarray:
    """Per candidate and shift k (0..edge), the sum of ``values`` at the wide points that shift's window leaves
    out: of the first ``edge`` columns (the wide curve's first points) those before k, of the last ``edge`` (its
    last points) those from k on."""
    zero = np.zeros((values.shape[0], 1))
    before = np.concatenate([zero, np.cumsum(values[:, :edge], axis=1)], axis=1)
    after = np.concatenate([np.cumsum(values[:, edge:][:, ::-1], axis=1)[:, ::-1], zero], axis=1)
    return before + after


def rank(measured: Pattern, formulas: list[str], model, structures: dict | None = None, scorer: Scorer = Scorer(),
         batch_size: int = 256, progress: bool = False, candidates: int = 1, shortlist: int | None = None,
         predictions: int | None = None) -> Ranking:
    """Score the model's predicted patterns of ``formulas`` (and, from ``structures`` = {formula: (id, Structure)},
    the simulated patterns of known structures, at the measurement's wavelength) against a measurement, best
    first (a known structure ahead of predictions that score up to ``TIE_SCORE`` more). Each formula scores by the
    best of its model's first ``candidates`` answers (its known polymorphs, then templates; the first of those within
    ``TIE_SCORE`` of the best), the match naming which; with ``shortlist`` = N, every formula is first scored by its
    first answer and only the N best are scored again by their first ``candidates`` (fewer patterns to simulate and
    score); with ``predictions`` = P, of those only the first P and the formula's known structures
    (:func:`answered`). Formulas the model cannot encode and structures that cannot be simulated are left out and
    reported in ``skipped``."""
    span = Pattern.from_frame(np.zeros((1, N_POINTS))).at_wavelength(measured.wavelength).span
    return rank_on(scorer.window(measured, span), formulas, model, structures, scorer, batch_size, progress,
                   candidates, shortlist, predictions)


def rank_on(window: Pattern, formulas: list[str], model, structures: dict | None = None, scorer: Scorer = Scorer(),
            batch_size: int = 256, progress: bool = False, candidates: int = 1, shortlist: int | None = None,
            predictions: int | None = None) -> Ranking:
    """:func:`rank` against a measurement already made a ``window`` (:meth:`Scorer.window`), or against what is left
    of one (a mixture's unexplained rest)."""
    from tqdm.auto import tqdm

    from xrdzoo.xrd.simulate import SimulationError, reflections

    skipped = {}
    if shortlist is not None and candidates > 1 and len(formulas) > shortlist:
        first = _predicted(window, formulas, model, scorer, batch_size, progress, 1, skipped)
        best = {m.formula for m in sorted(first, key=lambda m: -m.score)[:shortlist]}
        matches = [m for m in first if m.formula not in best]
        matches += _predicted(window, [f for f in formulas if f in best], model, scorer, batch_size, False,
                              candidates, skipped, predictions)
    else:
        matches = _predicted(window, formulas, model, scorer, batch_size, progress, candidates, skipped, predictions)
    for formula, (name, structure) in tqdm((structures or {}).items(), desc="simulating known",
                                          disable=not progress or not structures):
        try:
            peaks = reflections(structure, "fast", window.wavelength)
        except SimulationError as error:
            skipped[f"{formula} ({name})"] = str(error)
            continue
        fit = scorer.score(window, peaks)
        matches.append(Match(formula, float(fit.scores[0]), float(fit.shifts[0]), f"known {name}",
                             scorer.curves(window, peaks, fit)[0], 1.0))
    return Ranking(best_first(matches), window, skipped)


def best_first(matches: list[Match]) -> list[Match]:
    """The matches by score, best first, a known structure ahead of predictions that score up to ``TIE_SCORE`` more
    (a pattern that cannot tell them apart is the known compound's)."""
    return sorted(matches, key=lambda m: -(m.score + TIE_SCORE * m.known))


def _predicted(window: Pattern, formulas: list[str], model, scorer: Scorer, batch_size: int, progress: bool,
               candidates: int, skipped: dict, predictions: int | None = None) -> list[Match]:
    """One match per formula the model answers, by the best of its first ``candidates`` answers (:func:`answered`)
    scored on ``window``; refused formulas are added to ``skipped``."""
    from tqdm.auto import tqdm

    matches, model = [], structures_only(model)
    batches = range(0, len(formulas), batch_size)
    for start in tqdm(batches, desc="predicting", unit=" batches", disable=not progress or len(batches) < 2):
        batch = formulas[start : start + batch_size]
        answers, ranked = answered(model, batch, candidates, predictions)
        skipped.update(answers.refused)
        if not answers.kept:
            continue
        flat = [c for found in ranked for c in found]
        predicted = Pattern.from_frame(np.array([c.pattern for c in flat])).at_wavelength(window.wavelength)
        fit = scorer.score(window, predicted)
        starts = np.cumsum([0] + [len(found) for found in ranked])
        best = [s + _first_of_best(fit.scores[s:e]) for s, e in zip(starts[:-1], starts[1:])]
        curves = scorer.curves(window, predicted[best], Fit(*(values[best] for values in fit)))
        for i, b, curve in zip(answers.kept, best, curves):  # a formula scores by its best candidate
            matches.append(Match(batch[i], float(fit.scores[b]), float(fit.shifts[b]), predicted_source(flat[b]),
                                 curve, flat[b].score))
    return matches


def answered(model, formulas: list[str], candidates: int = 1, predictions: int | None = None
             ) -> tuple[Answers, list[list[Candidate]]]:
    """(the ``model``'s answers to ``formulas``, each kept formula's first ``candidates`` answers, best first): with
    ``predictions`` = P, only the first P of them and the formula's known structures (score 1) after those, so that a
    polymorph listed late (rutile is TiO2's ninth) is not cut with the templates. Beside a known structure, an answer
    the member gives no score (an element's compounds' rule after its reference structure) is left out: unrated, it
    would weigh as much as the known one, and a many-peaked guess fills what a measurement's phases leave."""
    answers = model.answer(formulas, top=candidates) if candidates > 1 else model.answer(formulas)  # any member
    ranked = answers.ranked()
    if predictions is not None:
        ranked = [[c for i, c in enumerate(found) if i < predictions or c.known] for found in ranked]
    ranked = [[c for c in found if c.score is not None] if any(c.known for c in found) else found for found in ranked]
    return answers, ranked


def structures_only(model):
    """The member answering with its ranked structures alone: a template member with a ``consensus`` answers a new
    formula with the peaks its candidates agree on first, which is no structure; identification scores each candidate
    structure against the measurement and names the one that matched."""
    from xrdzoo.predictors import with_consensus

    return with_consensus(model, 1) if hasattr(model, "consensus") else model


def matched_structures(ranking: Ranking, model, structures: dict | None, candidates: int = 1, top: int = TOP
                       ) -> list[tuple[int, Match, str, object]]:
    """(rank, match, material id, pymatgen Structure) of each match among the best ``top`` distinct answers of
    ``ranking`` (made with this ``model``, ``structures`` and ``candidates``): a known structure of ``structures``, or
    the cell of the member's candidate that matched (a template member's; the structure None where the member has
    none, as a network)."""
    groups = ranking.groups(top)
    predicted = list(dict.fromkeys(m.formula for group in groups for m in group if not m.source.startswith("known ")))
    answers, lists = answered(structures_only(model), predicted, candidates)
    found = {predicted[i]: ranked for i, ranked in zip(answers.kept, lists)}
    matched = []
    for place, group in enumerate(groups, 1):
        for match in group:
            if match.source.startswith("known "):
                matched.append((place, match, *structures[match.formula]))
                continue
            candidate = next((c for c in found.get(match.formula, []) if predicted_source(c) == match.source), None)
            cell = candidate.cell if candidate is not None else None
            matched.append((place, match, candidate.source if candidate is not None else "",
                            cell.structure() if cell is not None else None))
    return matched


def _first_of_best(scores: np.ndarray) -> int:
    """The first of a formula's candidates (in the member's order: known polymorphs, then templates by rank) whose
    score is within ``TIE_SCORE`` of the best: a known structure is not displaced by a template that fits as well."""
    return int(np.argmax(scores >= scores.max() - TIE_SCORE))


def predicted_source(candidate) -> str:
    """A match's ``source`` for a predicted candidate: ``predicted (<how it was made, to its first comma outside
    brackets>)`` where the member names the structure it came from (a template member: which known structure or
    template), else ``predicted``."""
    return f"predicted ({_FIRST_CLAUSE.match(candidate.how).group()})" if candidate.source else "predicted"


def candidate_formulas(elements: list[str], max_atoms: int = DEFAULT_MAX_ATOMS, charge_balanced: bool = False,
                       known_to=None, max_above_hull: float | None = STABLE_ABOVE_HULL,
                       subsystems: bool = False) -> list[str]:
    """The formulas identify ranks for a chemical system: its compositions of at most ``max_atoms`` atoms
    (:func:`~xrdzoo.formulas.compositions`) and, with ``known_to`` a member that holds structures
    (``xrdzoo.contracts.KnowsStructures``), every formula it knows whatever its size (fluorapatite has 21 atoms)
    whose ground state lies at most ``max_above_hull`` eV/atom above the convex hull (None: any);
    charge-balanced ones only with ``charge_balanced``; sorted. With ``subsystems``, the same for every smaller
    system of two or more of ``elements`` (Ba-O and Ti-O beside Ba-Ti-O), and each single element ``known_to``
    knows (neutral, so kept with ``charge_balanced``): a sample's impurity or unreacted phases."""
    from xrdzoo.contracts import KnowsStructures

    formulas = set(compositions(elements, max_atoms, charge_balanced))  # checks the elements too
    symbols = sorted({e.strip() for e in elements if e.strip()})
    for size in range(1 if subsystems else len(symbols), len(symbols) + 1):
        for system in map(list, itertools.combinations(symbols, size)):
            if 1 < size < len(symbols):
                formulas.update(compositions(system, max_atoms, charge_balanced))
            if isinstance(known_to, KnowsStructures):
                formulas.update(f for f in known_to.known_formulas(system, max_above_hull)
                                if size == 1 or not charge_balanced or is_charge_balanced(f))
    return sorted(formulas)


def solid_solutions(elements: list[str], step: float, max_atoms: int = DEFAULT_MAX_ATOMS,
                    charge_balanced: bool = False) -> list[str]:
    """Solid solutions of all of ``elements`` between end members of one element fewer (:func:`compositions` of
    each subsystem), in composition steps of ``step``: ``xrdzoo.predictors.solid_solution.series``."""
    from xrdzoo.predictors.solid_solution import series

    ends = [f for e in elements for f in compositions([x for x in elements if x != e], max_atoms, charge_balanced)
            ] if len(elements) > 2 else []
    return series(ends, step)


def known_structures(source, elements: list[str], subsystems: bool = False) -> dict:
    """{formula: (id, Structure)} of the structures in ``source`` (what ``xrdzoo data build`` reads: a CSV of CIFs, a
    folder of structure files, a pymatgen JSON) whose elements are exactly ``elements`` (with ``subsystems``, any of
    them); one per formula by the dataset selection rule."""
    from xrdzoo.data import structures_of

    wanted = set(elements)
    held = (lambda found: found <= wanted) if subsystems else wanted.__eq__
    return structures_of(source, lambda formula: held({e.symbol for e in _composition(formula)}))


def _composition(formula: str):
    from pymatgen.core import Composition

    return Composition(formula)
