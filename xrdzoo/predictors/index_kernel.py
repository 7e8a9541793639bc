"""The compiled core of :meth:`xrdzoo.predictors.retrieval.FormulaIndex.nearest` over formulas of every type, by
numba: a module of its own, imported on the first such search, so that importing xrdzoo or loading a member does
not import numba. A search over every type visits each row holding one of the query's elements (most rows, for an
oxide); here that is one pass over them, without the full-length arrays numpy would make.
"""

from __future__ import annotations

import numba
import numpy as np


@numba.njit(cache=True)
def shared_fractions(rows, fractions, bounds, numbers, shares, scratch):
    """The rows holding any of the query's elements (``numbers``, at element fractions ``shares``) and, for each,
    the summed smaller fraction of each query element: the index's ``rows``, ``fractions`` and ``bounds``
    (``_ElementIndex``); ``scratch``, zeros, one per row, is left zero. The sums add the elements in query order,
    as the numpy search does, so the values are the same to the bit."""
    total = 0
    for e in numbers:
        total += bounds[e + 1] - bounds[e]
    touched = np.empty(total, np.int64)
    count = 0
    for i in range(numbers.shape[0]):
        e, share = numbers[i], shares[i]
        for j in range(bounds[e], bounds[e + 1]):
            row = rows[j]
            if scratch[row] == 0.0:  # every term is above zero: a row is new to the sum exactly when it is zero
                touched[count] = row
                count += 1
            scratch[row] += min(fractions[j], share)
    shared = np.empty(count)
    for i in range(count):
        shared[i] = scratch[touched[i]]
        scratch[touched[i]] = 0.0
    return touched[:count], shared
