"""Peak picking, merging and alignment by the DeepXRD paper's rules.

Picking (``find_peaks``), in two steps on a pattern of equal bins over 2-theta 0..180 degrees:

1. Every point at or above ``threshold`` (10 of 100 by default) is a peak point; each contiguous run of peak
   points is one peak.
2. Peaks are sorted by position and neighbours whose positions are less than ``merge_within`` degrees apart
   are merged, chaining (peaks at 0, 1.5 and 3 degrees become one).

A peak's position is the middle of its extent (halfway between its first and last point, in degrees) and its
intensity is the largest point in it; a merged peak covers the extent of all its members. The metrics use these
positions, as the paper does; a peak list for people gives each peak's apex (the 2-theta of its largest point),
which on a broad or merged peak can lie a degree or more from the middle.

Alignment: for each true peak, the largest predicted peak within ``tolerance`` degrees (inclusive) is its match.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from xrdzoo.xrd.pattern import Pattern, bin_centres


@dataclass(frozen=True)
class Peaks:
    """Peaks of one pattern, sorted by position: ``positions`` in degrees 2-theta (the middles of their extents),
    their ``intensities`` and, from :func:`find_peaks`, their ``apexes`` (the 2-theta of each one's largest point)."""

    positions: np.ndarray
    intensities: np.ndarray
    apexes: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.positions)


def find_peaks(pattern: Pattern | np.ndarray, threshold: float = 10.0, merge_within: float = 2.0) -> Peaks:
    """The peaks of one pattern by the rules in the module docstring: a :class:`Pattern` drawn on a 2-theta grid
    (its ``two_theta`` are the points), or a 1-D array of equal bins over 2-theta 0..180 degrees (the model
    frame's when it has ``N_POINTS``)."""
    x = pattern.two_theta if isinstance(pattern, Pattern) else None
    pattern = np.asarray(pattern.intensities if isinstance(pattern, Pattern) else pattern, dtype=float)
    if pattern.ndim != 1:
        raise ValueError(f"find_peaks takes one 1-D pattern, got an array of shape {pattern.shape}")
    if not np.isfinite(pattern).all():
        raise ValueError("the pattern holds NaN or infinite values")
    x = bin_centres(pattern.size) if x is None else x
    _, first, last, top = _merged_runs(pattern[None], x, threshold, merge_within)
    if not first.size:
        return Peaks(np.zeros(0), np.zeros(0), np.zeros(0))
    # Each one's apex: the first point at its largest value from its first point on.
    group = np.repeat(np.arange(first.size), np.diff(np.append(first, pattern.size)))
    at_top = np.flatnonzero(pattern[first[0] :] == top[group]) + first[0]
    apex = at_top[np.searchsorted(at_top, first)]
    return Peaks((x[first] + x[last]) / 2, top, x[apex])


def find_peaks_of_rows(patterns: np.ndarray, threshold: float = 10.0, merge_within: float = 2.0
                       ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The peaks of each row of ``patterns`` (equal bins over 2-theta 0..180 degrees, finite), as :func:`find_peaks`
    finds them, one row after another: their positions, intensities, and how many each row has. Many patterns at
    once (a few microseconds each instead of tens)."""
    patterns = np.asarray(patterns)  # float32 stays so (:func:`_merged_runs` compares in float64)
    x = bin_centres(patterns.shape[1])
    row, first, last, top = _merged_runs(patterns, x, threshold, merge_within)
    return (x[first] + x[last]) / 2, top.astype(float), np.bincount(row, minlength=len(patterns))


def _merged_runs(patterns: np.ndarray, x: np.ndarray, threshold: float, merge_within: float
                 ) -> tuple[np.ndarray, ...]:
    """Each merged peak of the rows of ``patterns`` (2-D, points at 2-theta ``x``), row by row in 2-theta order: its
    row, its first and last point, and its largest value."""
    rows, points = patterns.shape
    mask = np.zeros((rows, points + 2), bool)
    mask[:, 1:-1] = patterns >= np.float64(threshold)  # compared in float64 whatever the patterns' type
    row, edge = np.nonzero(np.diff(mask.view(np.int8), axis=1))  # each run's start, then the point after its end
    starts, ends, row = edge[::2], edge[1::2] - 1, row[::2]
    if not starts.size:
        return row, starts, ends, np.zeros(0)
    centres = (x[starts] + x[ends]) / 2
    new = np.ones(starts.size, bool)
    new[1:] = (np.diff(centres) >= merge_within) | (row[1:] != row[:-1])
    groups = np.flatnonzero(new)
    row, first, last = row[groups], starts[groups], ends[np.append(groups[1:], starts.size) - 1]
    # The largest value from a peak's first point to the next one's (in the rows one after another) is its own: the
    # points between peaks lie below the threshold.
    return row, first, last, np.maximum.reduceat(patterns.ravel(), row * points + first)


def _within(predicted: Peaks, true: Peaks, tolerance: float) -> np.ndarray:
    """Boolean matrix (true peaks x predicted peaks): positions at most ``tolerance`` degrees apart."""
    distance = np.abs(np.asarray(true.positions, float)[:, None] - np.asarray(predicted.positions, float)[None, :])
    return distance <= tolerance


def align_peaks(predicted: Peaks, true: Peaks, tolerance: float = 2.0) -> np.ndarray:
    """For each true peak, the index of the largest predicted peak within ``tolerance`` degrees, or -1.

    Among equally large candidates the first (lowest 2-theta) wins. Returns an int array of length ``len(true)``.
    """
    within = _within(predicted, true, tolerance)
    if within.size == 0:
        return np.full(len(true.positions), -1, dtype=int)
    candidates = np.where(within, np.asarray(predicted.intensities, float)[None, :], -np.inf)
    return np.where(within.any(axis=1), candidates.argmax(axis=1), -1)


def match_counts(predicted: Peaks, true: Peaks, tolerance: float = 2.0) -> tuple[int, int]:
    """(true peaks with a predicted peak within ``tolerance``, predicted peaks with a true peak within it)."""
    within = _within(predicted, true, tolerance)
    return int(within.any(axis=1).sum()), int(within.any(axis=0).sum())
