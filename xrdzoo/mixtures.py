"""Mixtures: a measurement explained as a non-negative sum of candidate patterns (``xrdzoo identify --phases N``).

Greedy over the best single-phase candidates of a :class:`xrdzoo.identify.Ranking`, the compositions that best match
what the best one leaves unexplained (a minor phase seldom matches the whole pattern), and the other candidates of
those compositions (known polymorphs, templates): the first phase is the best match; each further phase is chosen
among the candidates that, scored against what the phases so far leave unexplained (their own zero shift and lattice
strain searched there), are expected to raise the correlation of the non-negative least-squares fit of all chosen
curves to the measurement by at least ``MIN_GAIN``: their gain times their ``confidence`` (the member's calibrated
chance that the candidate is its formula's structure; 1 for a known structure); the largest wins. Without that weight
a template with many peaks, substituted into an unlikely composition, fills a small rest of noise and peak tails
better than the true minor phase does, and on a measured single-phase pattern, whose intensities no candidate matches
exactly, it fills the rest often enough to make up a second phase (docs/benchmarks.md measures both). After each
addition every chosen phase is scored again against the measurement less the other phases (its shift and strain
refined per phase) and the scales refitted. Last, each phase in turn gives way to a candidate that best explains the
measurement less the other phases, where that candidate's gain over the other phases alone, times its confidence,
exceeds the phase's own (a main phase first taken for a formula of nearly the same pattern). A phase's share is its
part of the fitted pattern's integrated intensity (not a weight fraction: that needs each phase's scattering power).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from xrdzoo.errors import InputError
from xrdzoo.formulas import written
from xrdzoo.identify import Match, Ranking, Scorer, answered, predicted_source, rank, rank_on, structures_only
from xrdzoo.metrics import pearson
from xrdzoo.xrd.pattern import Pattern

MAX_PHASES = 3
POOL = 30  # best single-phase candidates a further phase is drawn from, and as many best against the first's rest
REPLACEMENTS = 24  # per phase, the options best matching the measurement less the other phases, tried in its place
POOL_CANDIDATES = 5  # a composition's first candidates drawn, and its known structures after them (with more
# templates, wrong ones explain the rest)
MIN_GAIN = 0.01  # the least expected gain in fit (gain times confidence) that adds a phase


@dataclass(frozen=True)
class Mixture:
    """The chosen ``phases`` (their single-phase matches, each curve refined in the mixture), their ``shares`` of the
    fitted intensity (summing to 1), and ``score``: the Pearson r of the fitted sum with the measurement."""

    phases: list[Match]
    shares: list[float]
    score: float

    def table(self, order: list[str] | None = None) -> str:
        """The phases as a text table, formulas written in the element ``order``: each phase's share, its score
        alone against the measurement, the member's confidence in it (``-`` where it has none) and its source."""
        lines = [f"mixture of {len(self.phases)} phase(s), fit score {self.score:.3f}",
                 f"{'phase':>5}  {'formula':<20} {'share':>6}  {'alone':>6}  {'chance':>6}  source"]
        lines += [f"{i:>5}  {written(m.formula, order):<20} {share:6.0%}  {m.score:6.3f}  "
                  f"{'-' if m.confidence is None else format(m.confidence, '.2f'):>6}  {m.source}"
                  for i, (m, share) in enumerate(zip(self.phases, self.shares), 1)]
        return "\n".join(lines)


def explain(ranking: Ranking, options: list[tuple[Match, Pattern]], phases: int, scorer: Scorer = Scorer()
            ) -> Mixture:
    """Up to ``phases`` phases of the measurement ``ranking`` was scored against (by ``scorer``), drawn from
    ``options``: (match, its peak pattern at the measurement's wavelength), the best single-phase match first
    (:func:`options_of`)."""
    check_phases(phases)
    window, measured = ranking.measured, ranking.measured.intensities
    pool, patterns = [m for m, _ in options], [p for _, p in options]
    weights = [1.0 if m.confidence is None else m.confidence for m in pool]

    def against(rest: np.ndarray, names: set[str]) -> dict[int, np.ndarray]:
        """{option: its curve} of the options of other formulas, the best match of ``rest`` alone first."""
        others = [i for i in range(len(pool)) if pool[i].formula not in names]
        fits = dict(zip(others, _refit_all(scorer, replace(window, intensities=rest), [patterns[i] for i in others])))
        return {i: fits[i][1] for i in sorted(fits, key=lambda i: -fits[i][0])}

    chosen, curves = [0], [_refit(scorer, window, patterns[0])[1]]
    scales, fit = _fit(measured, curves)
    while len(chosen) < phases:
        tried = against(_unexplained(measured, curves), {pool[i].formula for i in chosen})
        expected = {i: (_fit(measured, curves + [curve])[1] - fit) * weights[i] for i, curve in tried.items()}
        best = max((i for i in expected if expected[i] >= MIN_GAIN), key=expected.get, default=None)
        if best is None:
            break
        chosen.append(best)
        curves.append(tried[best])
        for j, i in enumerate(chosen):  # each phase refined against the measurement less the others
            curves[j] = _refit(scorer, replace(window, intensities=_rest(measured, curves, j)), patterns[i])[1]
        scales, fit = _fit(measured, curves)
    for j in range(len(chosen) if len(chosen) > 1 else 0):  # each phase replaced where another explains more
        names = {pool[i].formula for k, i in enumerate(chosen) if k != j}
        others = _fit(measured, curves[:j] + curves[j + 1 :])[1]  # the fit without phase j
        for i, curve in list(against(_rest(measured, curves, j), names).items())[:REPLACEMENTS]:
            trial = curves[:j] + [curve] + curves[j + 1 :]
            trial_scales, trial_fit = _fit(measured, trial)
            if (trial_fit - others) * weights[i] > (fit - others) * weights[chosen[j]]:
                chosen[j], curves, scales, fit = i, trial, trial_scales, trial_fit
    areas = np.array([s * c.sum() for s, c in zip(scales, curves)])
    shares = areas / areas.sum() if areas.sum() > 0 else np.full(len(areas), 1 / len(areas))
    order = np.argsort(-shares, kind="stable")
    return Mixture([replace(pool[chosen[k]], curve=curves[k]) for k in order], [float(shares[k]) for k in order],
                   fit)


def mixture_of(ranking: Ranking, measured: Pattern, formulas: list[str], model, structures: dict | None, phases: int,
               scorer: Scorer = Scorer(), candidates: int = 1, shortlist: int | None = None) -> Mixture:
    """``identify --phases``: up to ``phases`` phases of ``measured``, drawn from the ``POOL`` best compositions of
    ``ranking`` (made by :func:`~xrdzoo.identify.rank` of ``formulas`` with this ``model``, ``structures``,
    ``scorer``, ``candidates`` and ``shortlist``) and the ``POOL`` best against what its best match leaves
    unexplained, each with its first ``candidates`` answers, of which, past the first ``POOL_CANDIDATES``, only its
    known structures: where ``candidates`` is larger, the compositions are ranked again by the best of those
    (docs/benchmarks.md measures why)."""
    within = POOL_CANDIDATES if candidates > POOL_CANDIDATES else None
    if within:
        ranking = rank(measured, formulas, model, structures, scorer, candidates=candidates, shortlist=shortlist,
                       predictions=within)
    matches = ranking.matches[:POOL]
    if phases > 1 and ranking.matches:
        rest = replace(ranking.measured, intensities=_unexplained(ranking.measured.intensities,
                                                                  [ranking.matches[0].curve]))
        behind = rank_on(rest, formulas, model, structures, scorer, candidates=candidates, shortlist=shortlist,
                         predictions=within)
        whole = {_phase(m): m for m in ranking.matches}  # each scored alone against the whole measurement
        drawn = {_phase(m) for m in matches}
        matches += [whole[_phase(m)] for m in behind.matches[:POOL] if _phase(m) not in drawn]
    pool = options_of(ranking, model, structures, measured.wavelength, candidates, scorer, matches, within)
    return explain(ranking, pool, phases, scorer)


def _phase(match: Match) -> tuple[str, str]:
    """What a match is a phase of: its composition if predicted (every candidate of it is drawn), else the known
    structure."""
    return (match.formula, "predicted" if match.source.startswith("predicted") else match.source)


def check_phases(phases: int) -> int:
    """``phases`` itself if it is a whole number from 1 to ``MAX_PHASES``, else a one-line :class:`InputError`."""
    if isinstance(phases, bool) or not isinstance(phases, int) or not 1 <= phases <= MAX_PHASES:
        raise InputError(f"--phases must be a whole number from 1 to {MAX_PHASES}, got {phases!r}")
    return phases


def options_of(ranking: Ranking, model, structures: dict | None, wavelength: float, candidates: int = 1,
               scorer: Scorer = Scorer(), matches: list[Match] | None = None, predictions: int | None = None
               ) -> list[tuple[Match, Pattern]]:
    """What a mixture's phases are drawn from, each with its peak pattern at ``wavelength``: ``matches`` of
    ``ranking`` (made by :func:`xrdzoo.identify.rank` with this ``model``, ``structures``, ``candidates`` and
    ``predictions``; default its first ``POOL``), each followed by the other candidates of its composition scored
    alone against the measurement (a minor phase's own structure is seldom the candidate that best matches the whole
    pattern)."""
    from xrdzoo.xrd.simulate import reflections

    matches = ranking.matches[:POOL] if matches is None else matches
    predicted = [m.formula for m in matches if m.source.startswith("predicted")]
    answers, lists = answered(structures_only(model), predicted, candidates, predictions)
    found = dict(zip((predicted[i] for i in answers.kept), lists))
    options = []
    for match in matches:
        if match.source.startswith("known "):
            options.append((match, reflections(structures[match.formula][1], "fast", wavelength)))
            continue
        ranked = found[match.formula]
        sources = [predicted_source(c) for c in ranked]
        patterns = Pattern.from_frame(np.array([c.pattern for c in ranked])).at_wavelength(wavelength)
        fit = scorer.score(ranking.measured, patterns)
        curves = scorer.curves(ranking.measured, patterns, fit)
        mine = sources.index(match.source)
        options += [(match if i == mine else Match(match.formula, float(fit.scores[i]), float(fit.shifts[i]),
                                                   sources[i], curves[i], ranked[i].score), patterns[i])
                    for i in [mine, *(i for i in range(len(ranked)) if i != mine)]]
    return options


def _refit(scorer: Scorer, target: Pattern, pattern: Pattern) -> tuple[float, np.ndarray]:
    """(score, curve at the best shift and strain) of one pattern against a target on the scoring grid."""
    fit = scorer.score(target, pattern)
    return float(fit.scores[0]), scorer.curves(target, pattern, fit)[0]


def _refit_all(scorer: Scorer, target: Pattern, patterns: list[Pattern]) -> list[tuple[float, np.ndarray]]:
    """:func:`_refit` of each pattern, those on the first one's positions (predictions) scored as one batch."""
    first = patterns[0] if patterns else None
    batch = [i for i, p in enumerate(patterns) if p.two_theta.shape == first.two_theta.shape
             and np.array_equal(p.two_theta, first.two_theta)]
    found = {i: _refit(scorer, target, p) for i, p in enumerate(patterns) if i not in set(batch)}
    if batch:
        stacked = Pattern(first.two_theta, np.vstack([patterns[i].intensities for i in batch]), first.wavelength)
        fit = scorer.score(target, stacked)
        found.update({i: (float(s), c) for i, s, c in zip(batch, fit.scores, scorer.curves(target, stacked, fit))})
    return [found[i] for i in range(len(patterns))]


def _unexplained(measured: np.ndarray, curves: list[np.ndarray]) -> np.ndarray:
    """What the curves, fitted together, leave of the measurement (clipped at zero)."""
    return np.clip(measured - np.column_stack(curves) @ _fit(measured, curves)[0], 0, None)


def _rest(measured: np.ndarray, curves: list[np.ndarray], j: int) -> np.ndarray:
    """What the phases other than ``j`` leave of the measurement, at the scales of the fit of all of them."""
    scales = _fit(measured, curves)[0]
    return np.clip(measured - (np.column_stack(curves) @ scales - scales[j] * curves[j]), 0, None)


def _fit(measured: np.ndarray, curves: list[np.ndarray]) -> tuple[np.ndarray, float]:
    """(non-negative scales, Pearson r of the fitted sum with the measurement)."""
    from scipy.optimize import nnls

    scales, _ = nnls(np.column_stack(curves), measured)
    return scales, float(1 - pearson([np.column_stack(curves) @ scales], [measured])[0])  # 0 where either is flat
