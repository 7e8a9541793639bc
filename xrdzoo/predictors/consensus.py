"""The consensus of ranked candidates: the pattern of the peaks they agree on (``Template(consensus=K)``).

Its core is compiled by numba (a module of its own, imported when a member first answers by consensus, so that
importing xrdzoo does not import numba): each candidate's nearest peak to every proposed peak, and the greedy choice
of the best supported peaks, are loops over a few hundred peaks per formula.
"""

from __future__ import annotations

from typing import NamedTuple

import numba
import numpy as np

from xrdzoo.contracts import Candidate
from xrdzoo.metrics import MATCH_F1, PEAK_TOLERANCE, f1_score, peak_scores_of_rows, pick_peaks_of_rows
from xrdzoo.xrd.pattern import N_POINTS, TWO_THETA_RANGE, bin_peaks


class Voters(NamedTuple):
    """The picked peaks (>= 10 of 100, merged within 2 degrees) of the candidates that vote, one candidate after
    another, each in 2-theta order: all their ``positions`` (degrees) and ``intensities``, how many each has
    (``sizes``), each one's ``score`` (None where the member has none) and ``trust``, what its vote counts beside
    its score."""

    positions: np.ndarray
    intensities: np.ndarray
    sizes: np.ndarray
    scores: list
    trust: np.ndarray

    @classmethod
    def joined(cls, first: Voters, then: Voters) -> Voters:
        """The candidates of ``first``, then those of ``then``."""
        return cls(*(np.concatenate([a, b]) for a, b in zip(first[:3], then[:3])), first.scores + then.scores,
                   np.concatenate([first.trust, then.trust]))


def agreed_peaks_first(candidates_of: list[list[Candidate]], voters_of: list[Voters],
                       who_of: list[str | None] | None = None) -> list[list[Candidate]]:
    """For each formula, its candidates (in the ranker's order) with, put first, the pattern of the peaks its
    ``voters`` (the ranker's first K candidates, unless its ``who`` says which) agree on, where K > 1: the best guess
    at a formula whose structure the ranker is unsure of. Many formulas at once (their peaks picked and scored
    together).

    Each peak is a proposal; a proposal's support is the share of the voters, weighted by score cubed (1 for a voter
    without a score) times their trust, that have a peak within the 2-degree match tolerance of it. Proposals are
    taken by support (ties to the earlier voter's), each at least a merge width from those taken, as many as
    maximise the expected peak F1 (expected matches, the sum of their supports, against the weighted mean number of
    a voter's peaks). Each sits at its 2-theta with the weighted mean of the agreeing voters' intensities there (each
    one's nearest peak), scaled to a largest of 100. Its score: the largest score among the scored voters whose
    peaks it matches at peak F1 >= 0.8 (0 for none; None where no voter has a score), which tracks how often it
    matches the true pattern (docs/benchmarks.md)."""
    who_of = who_of or [None] * len(voters_of)
    agreed = {i: pattern for i, pattern in enumerate(map(_agreed_pattern, voters_of)) if pattern is not None}
    answers = [list(candidates) for candidates in candidates_of]
    if not agreed:
        return answers
    peaks, _, counts = pick_peaks_of_rows(np.array(list(agreed.values())))
    voters = [voters_of[i] for i in agreed]
    n_voters = [len(v.sizes) for v in voters]
    f1 = f1_score(*peak_scores_of_rows(  # each voter against its formula's agreed peaks, all at once
        np.concatenate([v.positions for v in voters]).astype(np.float64), np.concatenate([v.sizes for v in voters]),
        np.concatenate([np.tile(p, n) for p, n in zip(np.split(peaks, np.cumsum(counts)[:-1]), n_voters)]),
        np.repeat(counts, n_voters)))
    for (i, pattern), (_, _, sizes, scores, _), f1_of in zip(agreed.items(), voters,
                                                           np.split(f1, np.cumsum(n_voters)[:-1])):
        scored = any(s is not None for s in scores)
        matched = [s for s, f in zip(scores, f1_of) if s is not None and f >= MATCH_F1]
        score = max(matched, default=0.0) if scored else None
        who = who_of[i] or f"the ranker's first {len(sizes)} candidates"
        how = (f"the {int((pattern > 0).sum())} peaks {who} agree on{' (weighted by score)' if scored else ''}; "
               f"first candidate: {candidates_of[i][0].how}")
        answers[i].insert(0, Candidate(pattern, 0, "agreed peaks", how, score))
    return answers


def _agreed_pattern(voters: Voters) -> np.ndarray | None:
    """The pattern of the peaks ``voters`` agree on (:func:`agreed_peaks_first`); None for fewer than two voters or
    no peak."""
    positions, intensities, sizes, scores, trust = voters
    if len(sizes) < 2:
        return None
    weights = np.array([1.0 if s is None else s**3 for s in scores]) * trust
    weights = weights / weights.sum() if weights.sum() > 0 else np.full(len(sizes), 1 / len(sizes))
    positions = positions.astype(np.float64)
    width = (TWO_THETA_RANGE[1] - TWO_THETA_RANGE[0]) / N_POINTS
    kept, heights = _agreed(positions, intensities.astype(np.float64), sizes, weights, PEAK_TOLERANCE,
                            PEAK_TOLERANCE + width)
    return bin_peaks(positions[kept], heights) if len(kept) else None  # one peak per bin: over a merge width apart


@numba.njit(cache=True)
def _agreed(positions, intensities, sizes, weights, tolerance, spacing):
    """The kept proposals of :func:`agreed_peaks_first` (indices into ``positions``, the voters' peaks one after
    another, ``sizes`` each) and their weighted mean intensities."""
    proposals, voters = positions.shape[0], sizes.shape[0]
    by_position = np.argsort(positions, kind="mergesort")
    nearest = np.full((proposals, voters), -1, np.int64)  # each voter's peak nearest to each proposal, if it agrees
    support = np.zeros(proposals)
    first = 0
    for c in range(voters):
        n, k = sizes[c], 0
        for p in by_position[: proposals if n else 0]:  # in 2-theta order: the voter's first peak at or above p
            while k < n and positions[first + k] < positions[p]:  # only moves up
                k += 1
            below, above = first + max(k - 1, 0), first + min(k, n - 1)
            j = below if abs(positions[below] - positions[p]) <= abs(positions[above] - positions[p]) else above
            if abs(positions[j] - positions[p]) <= tolerance:
                nearest[p, c] = j
                support[p] += weights[c]
        first += n
    place = np.empty(proposals, np.int64)  # where each proposal stands in 2-theta order
    place[by_position] = np.arange(proposals)
    free = support > 0
    taken = np.empty(proposals, np.int64)
    count = 0
    for i in np.argsort(-support, kind="mergesort"):  # stable: ties to the earlier voter's peak
        if free[i]:
            taken[count] = i
            count += 1
            for step in (-1, 1):  # so that no two taken merge when picked: free none within a merge width of it
                at = place[i]
                while 0 <= at < proposals and abs(positions[by_position[at]] - positions[i]) < spacing:
                    free[by_position[at]] = False
                    at += step
    expected_true = (weights * sizes).sum()
    best, best_f1, matches = 0, -1.0, 0.0
    for t in range(count):
        matches += support[taken[t]]
        f1 = 2 * matches / (t + 1 + expected_true)
        if f1 > best_f1:
            best, best_f1 = t + 1, f1
    kept = taken[:best]
    heights = np.empty(best)
    for t in range(best):
        total, weight = 0.0, 0.0
        for c in range(voters):
            j = nearest[kept[t], c]
            if j >= 0:
                total += intensities[j] * weights[c]
                weight += weights[c]
        heights[t] = total / weight
    return kept, heights

