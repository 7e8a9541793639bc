"""The compiled core of :meth:`xrdzoo.predictors.retrieval.FormulaIndex.nearest` over formulas of every type, by
numba: a module of its own, imported on the first such search, so that importing xrdzoo or loading a member does
not import numba. A search over every type visits each row holding one of the query's elements (most rows, for an
oxide); here that is one pass over them into a workspace each thread keeps (no array as long as the index is made
per search: in a Dask worker, whose allocator returns large blocks to the system at once, those cost more than the
search), and a heap of the k nearest.
"""

from __future__ import annotations

import threading

import numba
import numpy as np

_workspace = threading.local()


def workspace(rows: int) -> tuple[np.ndarray, np.ndarray]:
    """This thread's zeros (float64) and spare positions (int64), at least ``rows`` long, for :func:`nearest_rows`."""
    held = getattr(_workspace, "arrays", None)
    if held is None or len(held[0]) < rows:
        held = _workspace.arrays = np.zeros(rows), np.empty(rows, np.int64)
    return held


@numba.njit(cache=True)
def nearest_rows(rows, fractions, bounds, numbers, shares, means, mine, k, scratch, touched):
    """The ``k`` rows nearest to a query (element-fraction L1) among those holding one of its elements (``numbers``,
    at fractions ``shares``), ties to the chemically closest (the L1 distance of the row's mean element properties,
    ``means``, from the query's, ``mine``), then to the lower row, in no order: their distances rounded to 9
    decimals, those chemical distances, the rows and their distances; fewer where fewer rows hold one. ``rows``,
    ``fractions``, ``bounds``: the index of each element's rows (``_ElementIndex``); ``scratch`` (zeros, left zero)
    and ``touched``: a :func:`workspace`. The sums add the query's elements in order and are rounded to 9 decimals
    to compare, as the numpy search does: the same rows and distances, to the bit, once ordered."""
    count = 0
    for i in range(numbers.shape[0]):
        e, share = numbers[i], shares[i]
        for j in range(bounds[e], bounds[e + 1]):
            row = rows[j]
            if scratch[row] == 0.0:  # every term is above zero: a row is new to the sum exactly when it is zero
                touched[count] = row
                count += 1
            scratch[row] += min(fractions[j], share)
    size = min(k, count)
    keys, ties, found, distances = np.empty(size), np.empty(size), np.empty(size, np.int64), np.empty(size)
    held = 0  # a max-heap of the nearest so far by (rounded distance, chemical distance, row): the farthest on top
    for i in range(count):
        row = touched[i]
        distance = 2.0 - 2.0 * scratch[row]
        scratch[row] = 0.0
        key = np.rint(distance * 1e9) / 1e9  # numpy's round to 9 decimals
        if held == size and key > keys[0]:
            continue
        tie = 0.0  # only for a row that may enter the heap
        for p in range(mine.shape[0]):
            tie += abs(means[row, p] - mine[p])
        if held < size:
            at = held
            held += 1
        elif _before(key, tie, row, keys[0], ties[0], found[0]):
            at = _sift_down(keys, ties, found, distances, held)  # the top goes; its place is filled from below
        else:
            continue
        while at > 0:  # the new entry rises to its place
            parent = (at - 1) // 2
            if _before(keys[parent], ties[parent], found[parent], key, tie, row):
                keys[at], ties[at] = keys[parent], ties[parent]
                found[at], distances[at] = found[parent], distances[parent]
                at = parent
            else:
                break
        keys[at], ties[at], found[at], distances[at] = key, tie, row, distance
    return keys, ties, found, distances


@numba.njit(cache=True)
def _before(key, tie, row, other_key, other_tie, other_row):
    """Whether (key, tie, row) comes before the other: nearer, else chemically closer, else the lower row."""
    return key < other_key or (key == other_key and (tie < other_tie or (tie == other_tie and row < other_row)))


@numba.njit(cache=True)
def _sift_down(keys, ties, found, distances, held):
    """Take the heap's top out: the larger child moves up, level by level, down to a leaf, whose slot (returned)
    is then free."""
    at = 0
    while True:
        child = 2 * at + 1
        if child >= held:
            return at
        if child + 1 < held and _before(keys[child], ties[child], found[child], keys[child + 1], ties[child + 1],
                                        found[child + 1]):
            child += 1
        keys[at], ties[at], found[at], distances[at] = keys[child], ties[child], found[child], distances[child]
        at = child
