"""The dynamic time warping kernel of ``xrdzoo.metrics.dtw_distance``, compiled by numba: a module of its own, so that
importing the metrics (as identify does, for its Pearson) does not import numba, which takes a third of a second."""

from __future__ import annotations

import numba
import numpy as np


@numba.njit(parallel=True, cache=True)
def dtw_rows(a: np.ndarray, b: np.ndarray, radius: int) -> np.ndarray:
    """DTW (square root of the smallest summed squared difference along a warping path) of each row pair."""
    n, length = a.shape
    out = np.empty(n)
    for k in numba.prange(n):
        prev = np.full(length + 1, np.inf)
        cur = np.full(length + 1, np.inf)
        prev[0] = 0.0
        for i in range(length):
            cur[:] = np.inf
            for j in range(max(0, i - radius), min(length, i + radius + 1)):
                cur[j + 1] = (a[k, i] - b[k, j]) ** 2 + min(prev[j], prev[j + 1], cur[j])
            prev, cur = cur, prev
        out[k] = np.sqrt(prev[length])
    return out
