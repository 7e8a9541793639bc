"""Evaluation metrics on ``(n, points)`` pattern arrays (0..100 scale), the paper's three modes, and peak P/R/F1.
The distances take any grid; peak picking, the peak scores and the modes read the points as the model frame's bins
(``FrameIntensities`` in their signatures: 2-degree tolerances are in degrees of that frame).

A metric is a function ``metric(pred, true) -> np.ndarray`` of shape ``(n,)``, one value per pattern pair, lower
is better for distances, higher for the ``peak_`` scores. Definitions, modes and edge cases: docs/zoo.md
("Metrics").
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import numpy as np
from tqdm.auto import tqdm

from xrdzoo.errors import InputError
from xrdzoo.xrd.pattern import FULL_SCALE, FrameIntensities
from xrdzoo.xrd.peaks import Peaks, align_peaks, find_peaks, find_peaks_of_rows, match_counts

MODES = ("all", "peaks", "aligned")
PEAK_THRESHOLD = 10.0  # of 100: a point is part of a peak at or above this (the paper's rule)
PEAK_TOLERANCE = 2.0  # degrees: peaks closer than this merge; a predicted peak this close matches a true one
MATCH_F1 = 0.8  # a candidate "matches" the true structure at this peak F1 or above (template scores' calibration)

Metric = Callable[[np.ndarray, np.ndarray], np.ndarray]
# What score_patterns scores when not told: the paper's distances and our peak scores. A plugin metric is scored when named.
DEFAULT_METRICS = ("mse", "msle", "cosine", "pearson", "jsd", "dtw", "peak_recall", "peak_precision", "peak_f1")


def takes_modes(metric: Metric) -> bool:
    """Whether ``score_patterns`` scores ``metric`` in each mode (a distance) or once on the whole patterns (a peak score):
    a metric declares the latter with the attribute ``takes_modes = False``."""
    return getattr(metric, "takes_modes", True)


def _pair(pred, true) -> tuple[np.ndarray, np.ndarray]:
    pred, true = np.asarray(pred, dtype=np.float64), np.asarray(true, dtype=np.float64)
    if pred.ndim != 2 or pred.shape != true.shape:
        raise ValueError(f"a metric takes two (n, points) arrays of one shape; got {pred.shape} and {true.shape}")
    return pred, true


def mse(pred, true) -> np.ndarray:
    """Mean squared error over the points."""
    pred, true = _pair(pred, true)
    return ((pred - true) ** 2).mean(1)


def msle(pred, true) -> np.ndarray:
    """Mean squared error of log(1 + x), values below 0 counted as 0."""
    pred, true = _pair(pred, true)
    return ((np.log1p(np.clip(pred, 0, None)) - np.log1p(np.clip(true, 0, None))) ** 2).mean(1)


def _cosine_distance(p: np.ndarray, t: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(p, axis=1) * np.linalg.norm(t, axis=1)
    dots = (p * t).sum(1)
    return np.clip(1 - np.divide(dots, norms, out=np.zeros_like(dots), where=norms > 0), 0, 2)


def cosine(pred, true) -> np.ndarray:
    """Cosine distance, 1 - cosine similarity (1 where a pattern is all zeros)."""
    return _cosine_distance(*_pair(pred, true))


def pearson(pred, true) -> np.ndarray:
    """Pearson distance, 1 - Pearson r (1 where a pattern is flat)."""
    pred, true = _pair(pred, true)
    return _cosine_distance(pred - pred.mean(1, keepdims=True), true - true.mean(1, keepdims=True))


def jsd(pred, true) -> np.ndarray:
    """Jensen-Shannon divergence (log base 2, so 0..1) of the patterns normalised to sum 1 (1 where one is empty)."""
    pred, true = _pair(pred, true)
    p, t = np.clip(pred, 0, None), np.clip(true, 0, None)
    p_mass, t_mass = p.sum(1, keepdims=True), t.sum(1, keepdims=True)
    empty = (p_mass[:, 0] == 0) | (t_mass[:, 0] == 0)
    p, t = p / np.where(p_mass > 0, p_mass, 1), t / np.where(t_mass > 0, t_mass, 1)

    def kl_to_middle(a, b):  # KL(a || (a + b) / 2) in bits, written so that tiny values cannot overflow
        return (a * np.log2(np.divide(2 * a, a + b, out=np.ones_like(a), where=a > 0))).sum(1)

    return np.where(empty, 1.0, np.clip((kl_to_middle(p, t) + kl_to_middle(t, p)) / 2, 0, 1))


def dtw_distance(pred, true, radius: int | None = None) -> np.ndarray:
    """DTW between the patterns divided by 100 (0..1 scale), as tslearn's ``dtw``; ``radius``: Sakoe-Chiba band
    in points (None: unconstrained)."""
    pred, true = _pair(pred, true)
    length = pred.shape[1]
    radius = length if radius is None else int(radius)
    if radius < 0:
        raise ValueError(f"the Sakoe-Chiba radius must be >= 0 points (None: no band), got {radius}")
    from xrdzoo.dtw import dtw_rows  # numba, imported where DTW is asked for

    return dtw_rows(np.ascontiguousarray(pred / FULL_SCALE), np.ascontiguousarray(true / FULL_SCALE), radius)


def dtw(pred, true) -> np.ndarray:
    """Dynamic time warping distance (unconstrained) between the patterns divided by ``FULL_SCALE``."""
    return dtw_distance(pred, true)


def pick_peaks(pattern: FrameIntensities) -> Peaks:
    """The peaks the peak metrics compare: points >= 10 of 100, merged within 2 degrees."""
    return find_peaks(pattern, threshold=PEAK_THRESHOLD, merge_within=PEAK_TOLERANCE)


def pick_peaks_of_rows(patterns: FrameIntensities) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`pick_peaks` of each row, one row after another: positions, intensities and how many each row has."""
    return find_peaks_of_rows(patterns, threshold=PEAK_THRESHOLD, merge_within=PEAK_TOLERANCE)


def peak_pair_scores(predicted: Peaks, true: Peaks) -> tuple[float, float]:
    """(recall, precision) of one pair of picked peak lists; see :func:`peak_scores` for the empty cases."""
    n_true, n_pred = len(true.positions), len(predicted.positions)
    if n_true == 0 or n_pred == 0:
        return float(n_true == n_pred), float(n_true == n_pred)
    matched_true, matched_pred = match_counts(predicted, true, tolerance=PEAK_TOLERANCE)
    return matched_true / n_true, matched_pred / n_pred


def f1_score(recall, precision):
    """Harmonic mean, 0 where both are 0."""
    recall, precision = np.asarray(recall, float), np.asarray(precision, float)
    total = recall + precision
    return np.divide(2 * recall * precision, total, out=np.zeros_like(total), where=total > 0)


def peak_scores(pred: FrameIntensities, true: FrameIntensities) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Peak recall, precision and F1 per pair, after peak picking (>= 10, merged within 2 degrees).

    A zero denominator (no true peaks for recall, no predicted peaks for precision) scores 1 when both patterns
    have no peaks and 0 otherwise; F1 is 0 where recall + precision is 0.
    """
    pred, true = _pair(pred, true)
    (p, _, n_pred), (t, _, n_true) = pick_peaks_of_rows(pred), pick_peaks_of_rows(true)
    recall, precision = peak_scores_of_rows(p, n_pred, t, n_true)
    return recall, precision, f1_score(recall, precision)


def peak_scores_of_rows(pred: np.ndarray, n_pred: np.ndarray, true: np.ndarray, n_true: np.ndarray
                        ) -> tuple[np.ndarray, np.ndarray]:
    """Peak recall and precision per pair of picked peak lists, as :func:`peak_pair_scores` gives them: the pairs'
    predicted peak positions one pair after another (``n_pred`` each, sorted within a pair, as
    :func:`pick_peaks_of_rows` gives them) against their true ones (``n_true`` each)."""
    matched_true = np.bincount(np.repeat(np.arange(len(n_true)), n_true), _matched(true, n_true, pred, n_pred),
                               len(n_true))
    matched_pred = np.bincount(np.repeat(np.arange(len(n_pred)), n_pred), _matched(pred, n_pred, true, n_true),
                               len(n_pred))
    empty = (n_true == 0) | (n_pred == 0)
    recall = np.where(empty, n_true == n_pred, matched_true / np.maximum(n_true, 1))
    precision = np.where(empty, n_true == n_pred, matched_pred / np.maximum(n_pred, 1))
    return recall, precision


def _matched(positions: np.ndarray, sizes: np.ndarray, others: np.ndarray, other_sizes: np.ndarray) -> np.ndarray:
    """For each peak position (rows' peaks one after another, ``sizes`` each, sorted within a row), whether the same
    row of ``others`` has a peak within the match tolerance."""
    if not len(others):
        return np.zeros(len(positions), bool)
    rows, other_rows = np.repeat(np.arange(len(sizes)), sizes), np.repeat(np.arange(len(other_sizes)), other_sizes)
    after = np.searchsorted(other_rows * 1e3 + others, rows * 1e3 + positions)  # 2-theta < 1e3 keeps rows apart
    found = np.zeros(len(positions), bool)
    for nearest in (np.maximum(after - 1, 0), np.minimum(after, len(others) - 1)):  # the nearest is on one side
        found |= (other_rows[nearest] == rows) & (np.abs(positions - others[nearest]) <= PEAK_TOLERANCE)
    return found


def peak_recall(pred: FrameIntensities, true: FrameIntensities) -> np.ndarray:
    """Share of true peaks with a predicted peak within 2 degrees (the paper's peak match)."""
    return peak_scores(pred, true)[0]


def peak_precision(pred: FrameIntensities, true: FrameIntensities) -> np.ndarray:
    """Share of predicted peaks with a true peak within 2 degrees."""
    return peak_scores(pred, true)[1]


def peak_f1(pred: FrameIntensities, true: FrameIntensities) -> np.ndarray:
    """Harmonic mean of peak recall and peak precision."""
    return peak_scores(pred, true)[2]


for _score in (peak_recall, peak_precision, peak_f1):
    _score.takes_modes = False  # they pick and match peaks themselves: modes do not apply


def aligned_vectors(pred: FrameIntensities, true: FrameIntensities) -> tuple[np.ndarray, np.ndarray]:
    """One pair's peak-intensity vectors for the ``aligned`` mode, ordered by 2-theta.

    Each true peak contributes (intensity of its aligned predicted peak or 0, its intensity); each predicted peak
    aligned to no true peak contributes (its intensity, 0).
    """
    p_peaks, t_peaks = pick_peaks(pred), pick_peaks(true)
    match = align_peaks(p_peaks, t_peaks, tolerance=PEAK_TOLERANCE)
    p_int, t_int = np.asarray(p_peaks.intensities, float), np.asarray(t_peaks.intensities, float)
    hit = match >= 0
    p_matched = np.zeros(len(t_int))
    p_matched[hit] = p_int[match[hit]]
    extra = np.setdiff1d(np.arange(len(p_int)), match[hit])
    positions = np.concatenate([t_peaks.positions, np.asarray(p_peaks.positions)[extra]])
    p_vec = np.concatenate([p_matched, p_int[extra]])
    t_vec = np.concatenate([t_int, np.zeros(len(extra))])
    order = np.argsort(positions, kind="stable")
    return p_vec[order], t_vec[order]


def _aligned_groups(pred: FrameIntensities, true: FrameIntensities) -> list[tuple[np.ndarray, np.ndarray]]:
    """The aligned vectors of all pairs, stacked by length; pairs where neither pattern has a peak are left out."""
    groups: dict[int, tuple[list, list]] = {}
    for p, t in zip(pred, true):
        p_vec, t_vec = aligned_vectors(p, t)
        if len(p_vec):
            groups.setdefault(len(p_vec), ([], []))[0].append(p_vec)
            groups[len(p_vec)][1].append(t_vec)
    return [(np.stack(ps), np.stack(ts)) for ps, ts in groups.values()]


def _resolve(metrics: Mapping[str, Metric] | Sequence[str] | None) -> dict[str, Metric]:
    """Metric functions by name: given, looked up by registered name, or :data:`DEFAULT_METRICS`."""
    if isinstance(metrics, Mapping):
        return dict(metrics)
    from xrdzoo import registry

    return {name: registry.get("metrics", name) for name in (DEFAULT_METRICS if metrics is None else metrics)}


def score_patterns(pred: FrameIntensities, true: FrameIntensities,
                   metrics: Mapping[str, Metric] | Sequence[str] | None = None, modes: Sequence[str] = MODES,
                   progress: bool = True) -> dict[str, float]:
    """Mean of each metric over the pairs: distances as ``name/mode`` for each mode, ``peak_*`` scores once.

    ``metrics``: functions by name, or registered names (plugins' included), or None for :data:`DEFAULT_METRICS`,
    so that results do not change with the plugins installed. A metric with ``takes_modes = False`` is scored once.
    Modes: ``all`` (the 1,024 points), ``peaks`` (points below 10 set to 0 in both patterns), ``aligned`` (the
    peak-intensity vectors of :func:`aligned_vectors`; pairs with no peak at all are left out).
    """
    pred, true = _pair(pred, true)
    if not len(pred):
        raise InputError("nothing to score: the pattern arrays are empty")
    unknown = set(modes) - set(MODES)
    if unknown:
        raise InputError(f"unknown mode(s) {sorted(unknown)}; choose from {', '.join(MODES)}")
    funcs = _resolve(metrics)
    views = {"all": (pred, true)}
    if "peaks" in modes:
        views["peaks"] = (np.where(pred >= PEAK_THRESHOLD, pred, 0), np.where(true >= PEAK_THRESHOLD, true, 0))
    if "aligned" in modes:
        views["aligned"] = _aligned_groups(pred, true)
    jobs = [(name, mode) for name in funcs if takes_modes(funcs[name]) for mode in modes]
    jobs += [(name, None) for name in funcs if not takes_modes(funcs[name])]
    results = {}
    for name, mode in tqdm(jobs, desc="metrics", disable=not progress, leave=False):
        if mode is None:
            results[name] = float(np.mean(funcs[name](pred, true)))
        elif mode == "aligned":
            values = [funcs[name](p, t) for p, t in views[mode]]
            results[f"{name}/{mode}"] = float(np.mean(np.concatenate(values))) if values else float("nan")
        else:
            results[f"{name}/{mode}"] = float(np.mean(funcs[name](*views[mode])))
    return results
