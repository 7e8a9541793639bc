"""Metric ``peak_position_error``: how far, in degrees 2-theta, the predicted peaks sit from the true ones."""

from __future__ import annotations

import numpy as np


def peak_position_error(pred: np.ndarray, true: np.ndarray, threshold: float = 10.0,
                        window: float = 5.0) -> np.ndarray:
    """Mean 2-theta distance (degrees) from each true peak to the nearest predicted peak, capped at ``window``.

    A peak is a local maximum of at least ``threshold`` (patterns on the 0..100 scale, 2-theta 0..180 degrees).
    A true peak with no predicted peak near it counts as ``window``; a pattern without true peaks scores 0.
    Like the paper's peak match it ignores extra predicted peaks: read it beside ``peak_precision``.
    """
    pred, true = np.asarray(pred, dtype=float), np.asarray(true, dtype=float)
    if pred.ndim != 2 or pred.shape != true.shape:
        raise ValueError(f"peak_position_error needs two (n, points) arrays of one shape, got {pred.shape} "
                         f"and {true.shape}")
    two_theta = (np.arange(pred.shape[1]) + 0.5) * (180.0 / pred.shape[1])  # bin centres
    errors = np.zeros(len(true))
    for row, (p, t) in enumerate(zip(pred, true)):
        true_peaks, pred_peaks = two_theta[_peaks(t, threshold)], two_theta[_peaks(p, threshold)]
        if true_peaks.size == 0:
            continue
        if pred_peaks.size == 0:
            errors[row] = window
            continue
        nearest = np.abs(true_peaks[:, None] - pred_peaks[None, :]).min(axis=1)
        errors[row] = np.minimum(nearest, window).mean()
    return errors


def _peaks(pattern: np.ndarray, threshold: float) -> np.ndarray:
    """Indices of local maxima at or above ``threshold`` (the first point of a flat top)."""
    padded = np.pad(pattern, 1, constant_values=-np.inf)
    middle = padded[1:-1]
    return np.flatnonzero((middle >= threshold) & (middle > padded[:-2]) & (middle >= padded[2:]))


peak_position_error.takes_modes = False  # it picks peaks itself: xrdzoo.metrics.score_patterns scores it once
