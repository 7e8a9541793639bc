"""The compiled kernel of the fast simulator for many cells at once (``xrdzoo.xrd.simulate.simulate_cells``), by numba:
a module of its own, so that simulating one cell, or importing the simulator, does not import numba (about a second
with its first call).

Same physics and the same arithmetic as ``simulate._cell_reflections`` (see docs/xrd.md), done point by point
instead of by whole arrays: the reciprocal-lattice points of each (h, k) column come from the limiting sphere's
l-range, so no search box is filled, and the cells of a batch are shared among the CPU cores.
"""

from __future__ import annotations

import numba
import numpy as np

from xrdzoo.xrd.pattern import FULL_SCALE, TWO_THETA_RANGE, lorentz_polarisation

_lorentz_polarisation = numba.njit(cache=True)(lorentz_polarisation)

OK, NO_PEAKS = 0, 1  # the status of each cell
_EXP_STEPS = 64  # exp(-x) for the scattering factors: a table at x = i / 64, times a series in the rest (_exp_minus)
_EXP_TABLE = np.exp(-np.arange(745 * _EXP_STEPS + 1) / _EXP_STEPS)  # exp(-745) is the smallest double above 0


def binned_patterns(metrics, bounds, limit, offsets, coords, rows, occupancies, z, a, b, wavelength, tolerance,
                    n_points, min_scaled):
    """The binned patterns (cells, ``n_points``) float32 over 2-theta 0..180, each scaled to a largest of 100, and
    each cell's status (``OK``, or ``NO_PEAKS`` with an all-zero row), on numba's threads.

    Cell ``i`` has the reciprocal metric ``metrics[i]`` (|g|^2 = hkl . metric . hkl, no 2 pi), the search bounds
    ``bounds[i]`` (h_max, k_max, l_max: h in 0..h_max, one Friedel half) and the sites ``offsets[i]:offsets[i + 1]``
    of ``coords`` (fractional), ``rows`` (each site's row of the scattering table ``z``, ``a``, ``b``: atomic number
    and four Gaussian a/b pairs) and ``occupancies``. Points with |g|^2 <= ``limit`` reflect; reflections whose
    2-theta round to the same multiple of ``tolerance`` are one peak, and peaks at or below ``min_scaled`` (of 100)
    are dropped before binning, as in ``simulate._cell_reflections``.
    """
    return _dealt_cells(metrics, bounds, limit, offsets, coords, rows, occupancies, z, a, b, wavelength, tolerance,
                        n_points, min_scaled, numba.get_num_threads())


@numba.njit(cache=True, parallel=True)
def _dealt_cells(metrics, bounds, limit, offsets, coords, rows, occupancies, z, a, b, wavelength, tolerance,
                 n_points, min_scaled, threads):
    """:func:`binned_patterns` with the cells dealt to the ``threads`` in turn (cell i to thread i mod threads), so
    that each gets an even share of large and small cells wherever they lie in the batch (numba's prange alone gives
    each thread one contiguous block)."""
    cells = metrics.shape[0]
    patterns = np.zeros((cells, n_points), np.float32)
    status = np.zeros(cells, np.int64)
    for thread in numba.prange(threads):
        for i in range(thread, cells, threads):
            start, stop = offsets[i], offsets[i + 1]
            by_row = np.argsort(rows[start:stop], kind="mergesort") + start  # sites grouped by element, in order
            element, starts = _runs(rows[by_row])
            g2, real, imag = _element_sums(metrics[i], bounds[i], limit, coords[by_row], occupancies[by_row], starts)
            status[i] = _binned_peaks(g2, real, imag, z[element], a[element], b[element], wavelength, tolerance,
                                      min_scaled, patterns[i])
    return patterns, status


@numba.njit(cache=True)
def _runs(values):
    """The distinct values of a sorted array and where each run starts (with the length appended)."""
    n = values.shape[0]
    distinct = 1
    for s in range(1, n):
        distinct += values[s] != values[s - 1]
    firsts = np.empty(distinct, values.dtype)
    starts = np.empty(distinct + 1, np.int64)
    firsts[0], starts[0], run = values[0], 0, 0
    for s in range(1, n):
        if values[s] != values[s - 1]:
            run += 1
            firsts[run], starts[run] = values[s], s
    starts[distinct] = n
    return firsts, starts


@numba.njit(cache=True)
def _element_sums(metric, bounds, limit, coords, occupancies, starts):
    """|g|^2 of every point inside the sphere (one Friedel half, in (h, k, l) order), and per element (sites
    ``starts[e]:starts[e + 1]``) the real and imaginary parts of the sum of occupancy x exp(2 pi i (hx + ky + lz)).
    The phase is a product of per-axis tables; each (h, k) column accumulates its whole l-range at once."""
    h_max, k_max, l_max = bounds[0], bounds[1], bounds[2]
    n, elements, width_max = coords.shape[0], starts.shape[0] - 1, 2 * l_max + 1
    two_pi = 2 * np.pi
    x_re, x_im = np.empty((h_max + 1, n)), np.empty((h_max + 1, n))
    y_re, y_im = np.empty((2 * k_max + 1, n)), np.empty((2 * k_max + 1, n))
    z_re, z_im = np.empty(n * width_max), np.empty(n * width_max)  # site-major, l contiguous
    for s in range(n):
        for h in range(h_max + 1):
            phase = two_pi * coords[s, 0] * h
            x_re[h, s], x_im[h, s] = np.cos(phase), np.sin(phase)
        for k in range(-k_max, k_max + 1):
            phase = two_pi * coords[s, 1] * k
            y_re[k + k_max, s], y_im[k + k_max, s] = np.cos(phase), np.sin(phase)
        for l in range(-l_max, l_max + 1):
            phase = two_pi * coords[s, 2] * l
            z_re[s * width_max + l + l_max] = occupancies[s] * np.cos(phase)
            z_im[s * width_max + l + l_max] = occupancies[s] * np.sin(phase)

    count = 0
    for h in range(h_max + 1):
        for k in range(-k_max, k_max + 1):
            low, high = _l_range(metric, h, k, l_max, limit)
            count += max(high - low + 1, 0)
    g2 = np.empty(count)
    real, imag = np.empty((count, elements)), np.empty((count, elements))
    sum_re, sum_im = np.empty(elements * width_max), np.empty(elements * width_max)
    m = 0
    for h in range(h_max + 1):
        for k in range(-k_max, k_max + 1):
            low, high = _l_range(metric, h, k, l_max, limit)
            if low > high:
                continue
            width = np.uint64(high - low + 1)
            # Unsigned indices: numba then skips its negative-index check, and the inner loop vectorises.
            for e in range(elements):
                into = np.uint64(e * width_max)
                for t in range(width):
                    sum_re[into + t], sum_im[into + t] = 0.0, 0.0
                for s in range(starts[e], starts[e + 1]):
                    xy_re = x_re[h, s] * y_re[k + k_max, s] - x_im[h, s] * y_im[k + k_max, s]
                    xy_im = x_re[h, s] * y_im[k + k_max, s] + x_im[h, s] * y_re[k + k_max, s]
                    of = np.uint64(s * width_max + low + l_max)
                    for t in range(width):
                        zr, zi = z_re[of + t], z_im[of + t]
                        sum_re[into + t] += xy_re * zr - xy_im * zi
                        sum_im[into + t] += xy_re * zi + xy_im * zr
            for t in range(high - low + 1):
                g2[m] = _g2(metric, h, k, low + t)
                for e in range(elements):
                    real[m, e], imag[m, e] = sum_re[e * width_max + t], sum_im[e * width_max + t]
                m += 1
    return g2, real, imag


@numba.njit(inline="always")
def _g2(metric, h, k, l):
    """|g|^2 in the numpy simulator's order of operations, so that both keep the same points."""
    hk = metric[0, 0] * h**2 + metric[1, 1] * k**2 + 2 * metric[0, 1] * h * k
    return hk + l * (2 * metric[0, 2] * h + 2 * metric[1, 2] * k) + metric[2, 2] * l**2


@numba.njit(inline="always")
def _inside(metric, h, k, l, limit):
    """Whether (h, k, l) is in the kept Friedel half (lexicographically positive) and inside the sphere."""
    return (h > 0 or k > 0 or (k == 0 and l > 0)) and _g2(metric, h, k, l) <= limit


@numba.njit(inline="always")
def _l_range(metric, h, k, l_max, limit):
    """The l-range (low, high) of column (h, k) inside the sphere, in the kept Friedel half: the roots of the
    quadratic |g|^2(l) = limit, widened by one either way for rounding and then narrowed to the points
    :func:`_inside` keeps (|g|^2 is convex in l, so they are one run); empty (low > high) where none is."""
    if h == 0 and k < 0:
        return 1, 0
    half_b = metric[0, 2] * h + metric[1, 2] * k
    c = metric[0, 0] * h * h + metric[1, 1] * k * k + 2 * metric[0, 1] * h * k - limit
    root = np.sqrt(max(half_b * half_b - metric[2, 2] * c, 0.0))
    low = max(int(np.floor((-half_b - root) / metric[2, 2])) - 1, -l_max)
    high = min(int(np.ceil((-half_b + root) / metric[2, 2])) + 1, l_max)
    while low <= high and not _inside(metric, h, k, low, limit):
        low += 1
    while high >= low and not _inside(metric, h, k, high, limit):
        high -= 1
    return low, high


@numba.njit(cache=True)
def _binned_peaks(g2, real, imag, z, a, b, wavelength, tolerance, min_scaled, pattern):
    """Merge the points into peaks by 2-theta (scattering and Lorentz-polarisation factors at each peak's smallest
    |g|), scale to a largest of 100, drop peaks at or below ``min_scaled``, and bin into ``pattern`` (largest per
    bin, then scaled to 100). Returns the cell's status."""
    count, elements = real.shape
    order = _argsort(g2)
    two_theta, intensity = np.empty(count), np.zeros(count)
    f = np.empty(elements)
    peak, key, factor, last, this, g, sin_theta, angle = -1, -1, 0.0, -1.0, -1, 0.0, 0.0, 0.0
    for i in range(count):
        j = order[i]
        if g2[j] != last:  # a point at exactly the |g| of the one before is in its peak
            last, g = g2[j], np.sqrt(g2[j])
            sin_theta = min(wavelength * g / 2, 1.0)
            angle = np.degrees(2 * np.arcsin(sin_theta))
            this = np.int64(np.round(angle / tolerance))
        if peak < 0 or this != key:
            if peak >= 0:
                intensity[peak] *= factor
            peak += 1
            key, two_theta[peak] = this, angle
            s2 = (g / 2) ** 2  # s = sin(theta) / wavelength: f(s) = Z - 41.78214 s^2 sum_i a_i exp(-b_i s^2)
            for e in range(elements):
                total = 0.0
                for gauss in range(a.shape[1]):
                    total += a[e, gauss] * _exp_minus(b[e, gauss] * s2)
                f[e] = z[e] - 41.78214 * s2 * total
            factor = _lorentz_polarisation(sin_theta * sin_theta)
        f_re, f_im = 0.0, 0.0
        for e in range(elements):
            f_re += f[e] * real[j, e]
            f_im += f[e] * imag[j, e]
        intensity[peak] += f_re * f_re + f_im * f_im
    if peak < 0:
        return NO_PEAKS
    intensity[peak] *= factor
    top = intensity[: peak + 1].max()
    if not top > 0:
        return NO_PEAKS
    n_points = pattern.shape[0]
    binned = np.zeros(n_points)
    for p in range(peak + 1):
        scaled = intensity[p] * (FULL_SCALE / top)
        if scaled > min_scaled:
            at = min(int((two_theta[p] - TWO_THETA_RANGE[0]) * (n_points / (TWO_THETA_RANGE[1] - TWO_THETA_RANGE[0]))),
                     n_points - 1)
            binned[at] = max(binned[at], scaled)
    largest = binned.max()
    for at in range(n_points):
        pattern[at] = binned[at] * FULL_SCALE / largest
    return OK


@numba.njit(inline="always")
def _exp_minus(x):
    """exp(-x) for x >= 0, to a relative 1e-15: the nearest table entry exp(-i / _EXP_STEPS) times the Taylor series
    of exp(d), |d| <= 1 / (2 _EXP_STEPS), to d^5; about twice as fast as calling exp, which a cell asks for 4 times
    per element and peak."""
    if x >= 745.0:
        return 0.0
    i = int(x * _EXP_STEPS + 0.5)
    d = i / _EXP_STEPS - x
    return _EXP_TABLE[i] * (1.0 + d * (1.0 + d * (0.5 + d * (1.0 / 6 + d * (1.0 / 24 + d * (1.0 / 120))))))


@numba.njit(cache=True)
def _argsort(values):
    """The order that sorts non-negative floats, equal values kept in their order: a bucket sort (one bucket per
    value on average, by value) with an insertion sort inside each bucket, several times faster here than numba's
    quicksort."""
    n = values.shape[0]
    order = np.empty(n, np.int64)
    if n == 0:
        return order
    top = values.max()
    scale = n / top if top > 0 else 0.0
    bucket = np.empty(n, np.int64)
    starts = np.zeros(n + 1, np.int64)
    for i in range(n):
        bucket[i] = min(int(values[i] * scale), n - 1)
        starts[bucket[i] + 1] += 1
    for b in range(n):
        starts[b + 1] += starts[b]
    filled = starts[:n].copy()
    for i in range(n):  # stable: each bucket in index order
        order[filled[bucket[i]]] = i
        filled[bucket[i]] += 1
    for b in range(n):
        for i in range(starts[b] + 1, starts[b + 1]):  # insertion sort, moving only past larger values: stable
            j, item = i, order[i]
            while j > starts[b] and values[order[j - 1]] > values[item]:
                order[j] = order[j - 1]
                j -= 1
            order[j] = item
    return order
