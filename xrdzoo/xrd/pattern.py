"""The pattern conventions: Cu K-alpha, 2-theta 0..180 degrees in 1,024 equal bins, the largest value scaled to 100.

Binning rule: a bin takes the LARGEST intensity of the reflections that fall in it. The DeepXRD paper speaks of
"average mapping"; we keep the maximum because averaging would shrink a strong peak that happens to share a bin
with weak ones, so the same reflection would get a different height depending on its neighbours.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from xrdzoo.errors import InputError

N_POINTS = 1024
TWO_THETA_RANGE = (0.0, 180.0)
WAVELENGTH = 1.54184  # Cu K-alpha in Angstrom, as pymatgen's "CuKa"
FULL_SCALE = 100.0
MAX_GRID_POINTS = 200_000  # points of a user grid: 0.001 degrees over 0..180
PEAK_CHUNK = 1 << 10  # peaks drawn with a profile at once: a (PEAK_CHUNK x grid points) matrix of float64


def bin_centres(n_points: int = N_POINTS) -> np.ndarray:
    """The 2-theta centres (degrees) of ``n_points`` equal bins over ``TWO_THETA_RANGE``."""
    low, high = TWO_THETA_RANGE
    width = (high - low) / n_points
    return low + width * (np.arange(n_points) + 0.5)


TWO_THETA = bin_centres(N_POINTS)

FrameIntensities = np.ndarray
"""What a signature names for intensities on the model frame, shape ``(..., N_POINTS)``: the bins of
:data:`TWO_THETA` at :data:`WAVELENGTH`, largest :data:`FULL_SCALE` (``Pattern.from_frame`` makes them a Pattern)."""


def full_scale(pattern: np.ndarray) -> np.ndarray:
    """Each row (last axis) scaled so its largest value is 100; all-zero rows stay zero. The one place patterns
    are put on the 0..100 scale (binning, profiles, predictions)."""
    top = pattern.max(axis=-1, keepdims=True)
    return np.divide(pattern * FULL_SCALE, top, out=np.zeros_like(pattern), where=top > 0)


def bin_peaks(two_theta, intensities, n_points: int = N_POINTS) -> np.ndarray:
    """Reflections (2-theta in degrees, intensities) into a float32 pattern of ``n_points`` bins over 0..180.

    A bin takes the largest intensity falling in it (not the average: see the module docstring); 180 degrees
    exactly falls in the last bin. The result is scaled so its largest value is 100 (no reflection: all zeros).
    """
    two_theta = np.asarray(two_theta, dtype=float).ravel()
    intensities = np.asarray(intensities, dtype=float).ravel()
    if two_theta.shape != intensities.shape:
        raise ValueError(f"two_theta and intensities differ in length ({two_theta.size} vs {intensities.size})")
    low, high = TWO_THETA_RANGE
    if two_theta.size and (two_theta.min() < low or two_theta.max() > high or not np.isfinite(two_theta).all()):
        raise ValueError(f"2-theta values must lie in {low}..{high} degrees; got {two_theta.min()}..{two_theta.max()}")
    if n_points < 1:
        raise ValueError(f"n_points must be positive, got {n_points}")
    index = np.minimum(((two_theta - low) * (n_points / (high - low))).astype(int), n_points - 1)
    pattern = np.zeros(n_points)
    np.maximum.at(pattern, index, intensities)
    return full_scale(pattern).astype(np.float32)


def d_spacing(two_theta_deg, wavelength: float = WAVELENGTH):
    """Interplanar spacing (Angstrom) by Bragg's law, d = wavelength / (2 sin theta); inf at 2-theta 0."""
    theta = np.radians(np.asarray(two_theta_deg, dtype=float)) / 2
    with np.errstate(divide="ignore"):
        return wavelength / (2 * np.abs(np.sin(theta)))


def two_theta_at(d, wavelength: float) -> np.ndarray:
    """2-theta (degrees) of interplanar spacing ``d`` (Angstrom) at ``wavelength``; NaN where d < wavelength / 2."""
    with np.errstate(invalid="ignore", divide="ignore"):
        sine = wavelength / (2 * np.asarray(d, dtype=float))
    return np.degrees(2 * np.arcsin(np.where(sine <= 1, sine, np.nan)))


def lorentz_polarisation(sin2_theta):
    """The Lorentz-polarisation factor (1 + cos^2 2theta) / (sin^2 theta cos theta), from sin^2 theta."""
    return (1 + (1 - 2 * sin2_theta) ** 2) / (sin2_theta * np.sqrt(1 - sin2_theta))


AXES = ("two_theta", "q", "d")


def axis_values(two_theta, axis: str, wavelength: float = WAVELENGTH) -> np.ndarray:
    """2-theta (degrees) on another axis: ``two_theta`` itself, ``q`` = 4 pi sin(theta) / wavelength (1/Angstrom)
    or ``d`` (Angstrom)."""
    if axis not in AXES:
        raise InputError(f"unknown axis {axis!r}; choose one of: {', '.join(AXES)}")
    two_theta = np.asarray(two_theta, dtype=float)
    if axis == "q":
        return 4 * np.pi * np.sin(np.radians(two_theta) / 2) / wavelength
    return two_theta if axis == "two_theta" else d_spacing(two_theta, wavelength)


def parse_grid(text: str) -> np.ndarray:
    """A 2-theta grid from ``"start:stop:step"`` in degrees (stop included when it falls on a step), e.g. ``5:90:0.02``."""
    try:
        start, stop, step = (float(part) for part in text.split(":"))
    except ValueError:
        raise InputError(f"cannot read the 2-theta grid {text!r}; give start:stop:step in degrees, e.g. 5:90:0.02") \
            from None
    if not (0 <= start < stop <= 180 and 0 < step <= stop - start):
        raise InputError(f"2-theta grid {text!r}: need 0 <= start < stop <= 180 and 0 < step <= stop - start")
    if (stop - start) / step >= MAX_GRID_POINTS:
        raise InputError(f"2-theta grid {text!r} has {(stop - start) / step + 1:.3g} points (about "
                         f"{(stop - start) / step * 8 * PEAK_CHUNK / 2**30:.3g} GiB to draw a pattern on it), more "
                         f"than the {MAX_GRID_POINTS:,} xrdzoo draws; take a larger step")
    return start + step * np.arange(int(np.floor((stop - start) / step + 1e-9)) + 1)


@dataclass(frozen=True, eq=False)
class Pattern:
    """Peaks at 2-theta positions (degrees) for one wavelength, the one value every conversion goes through.

    ``intensities`` has the shape of ``two_theta`` or is a batch ``(n, m)`` sharing the positions (the points of
    binned model-frame patterns); ``hkls`` optionally labels each peak; ``span`` is the 2-theta range where the
    pattern is known (a model-frame pattern moved to a shorter wavelength knows nothing beyond its old 180 degrees).
    """

    two_theta: np.ndarray
    intensities: np.ndarray
    wavelength: float = WAVELENGTH
    hkls: tuple[str, ...] | None = None
    span: tuple[float, float] = TWO_THETA_RANGE

    def __post_init__(self):
        object.__setattr__(self, "two_theta", np.asarray(self.two_theta, dtype=float))
        object.__setattr__(self, "intensities", _floats(self.intensities))
        if self.intensities.shape[-1:] != self.two_theta.shape:
            raise ValueError(f"{self.two_theta.size} positions but intensities of shape {self.intensities.shape}")

    @classmethod
    def from_frame(cls, patterns) -> Pattern:
        """Binned model-frame patterns (``(N_POINTS,)`` or ``(n, N_POINTS)``, Cu K-alpha, 0..180 degrees) as peaks at
        the bin centres."""
        patterns = _floats(patterns)
        return cls(bin_centres(patterns.shape[-1]), patterns)

    def __getitem__(self, index) -> Pattern:
        """Pattern ``index`` of a batch (or a sub-batch by slice or list), at the same positions."""
        return replace(self, intensities=self.intensities[index])

    def __len__(self) -> int:
        """The number of patterns in a batch."""
        if self.intensities.ndim < 2:
            raise TypeError("a single pattern has no length; its peaks are two_theta")
        return len(self.intensities)

    @property
    def on_frame(self) -> bool:
        """Whether the positions are the model frame's 1,024 bin centres over 0..180 degrees (at any wavelength)."""
        return self.two_theta.shape == TWO_THETA.shape and bool(np.array_equal(self.two_theta, TWO_THETA))

    @property
    def d(self) -> np.ndarray:
        """Interplanar spacing (Angstrom) of each peak."""
        return d_spacing(self.two_theta, self.wavelength)

    def at_wavelength(self, wavelength: float) -> Pattern:
        """The same d-spacings seen at another wavelength: 2-theta moved by Bragg's law and intensities reweighted by
        the ratio of the Lorentz-polarisation factors (the structure factors depend on d alone); peaks beyond 180
        degrees are dropped, and ``span`` shrinks to what the old span covered."""
        d = self.d
        two_theta = two_theta_at(d, wavelength)
        keep = np.isfinite(two_theta) & (two_theta > 0)
        old = np.sin(np.radians(self.two_theta[keep]) / 2) ** 2
        new = np.sin(np.radians(two_theta[keep]) / 2) ** 2
        weight = lorentz_polarisation(new) / lorentz_polarisation(old)
        span = two_theta_at(d_spacing(np.asarray(self.span), self.wavelength), wavelength)
        hkls = None if self.hkls is None else tuple(h for h, k in zip(self.hkls, keep) if k)
        return Pattern(two_theta[keep], self.intensities[..., keep] * weight, wavelength, hkls,
                       (float(span[0]), float(np.nan_to_num(span[1], nan=TWO_THETA_RANGE[1]))))

    def resampled(self, grid=None, profile=None) -> Pattern:
        """This pattern (or batch) drawn on a 2-theta grid as :meth:`on_grid` draws it, as a Pattern at the same
        wavelength and span: a curve with a ``profile``, peaks on the grid points without one."""
        return Pattern(TWO_THETA if grid is None else grid, self.on_grid(grid, profile), self.wavelength, None,
                       self.span)

    def on_grid(self, grid=None, profile=None) -> np.ndarray:
        """Intensities on a 2-theta grid (degrees; default: the model frame's 1,024 bin centres), scaled to a largest
        value of 100 per pattern. With a ``profile`` (``xrdzoo.xrd.profiles.Profile``) each peak becomes its shape;
        without one each grid point takes the largest peak nearest to it (the frame's binning rule)."""
        if grid is None and profile is None:
            return bin_peaks(self.two_theta, self.intensities) if self.intensities.ndim == 1 else \
                np.stack([bin_peaks(self.two_theta, row) for row in self.intensities])
        grid = TWO_THETA if grid is None else np.asarray(grid, dtype=float)
        curve = _binned(self, grid) if profile is None else _profiled(self, grid, profile)
        return full_scale(curve).astype(np.float32)


def _floats(values) -> np.ndarray:
    """``values`` as a floating-point array, of their own precision where they have one (float32 predictions stay
    float32, so scoring them as a Pattern gives the figures it gave them as arrays)."""
    values = np.asarray(values)
    return values if values.dtype.kind == "f" else values.astype(float)


def _binned(pattern: Pattern, grid: np.ndarray) -> np.ndarray:
    """Each grid point takes the largest peak closer to it than to its neighbours (none beyond half a step)."""
    edges = np.concatenate([[1.5 * grid[0] - 0.5 * grid[1]], (grid[1:] + grid[:-1]) / 2,
                            [1.5 * grid[-1] - 0.5 * grid[-2]]])
    index = np.searchsorted(edges, pattern.two_theta, side="right") - 1
    inside = (index >= 0) & (index < grid.size)
    rows = np.atleast_2d(pattern.intensities)
    out = np.zeros((rows.shape[0], grid.size))
    for row, values in zip(out, rows):
        np.maximum.at(row, index[inside], values[inside])
    return out if pattern.intensities.ndim > 1 else out[0]


def _profiled(pattern: Pattern, grid: np.ndarray, profile, chunk: int = PEAK_CHUNK) -> np.ndarray:
    """The sum of each peak's profile on the grid: a (peaks x grid) matrix per chunk of peaks, one product for a batch."""
    from xrdzoo.xrd.profiles import KA2_RATIO, ka_lines

    if profile.doublet:
        lines = ka_lines(pattern.wavelength)
        components = [(two_theta_at(pattern.d, line), share) for line, share in
                      zip(lines, (1 / (1 + KA2_RATIO), KA2_RATIO / (1 + KA2_RATIO)))]
    else:
        components = [(pattern.two_theta, 1.0)]
    out = np.zeros(pattern.intensities.shape[:-1] + grid.shape)
    gaussian = profile.shape == "gaussian" and grid.size > 1 and bool(np.all(np.diff(grid) > 0))
    for centres, share in components:
        width = profile.width(np.nan_to_num(centres, nan=180.0))
        reach = 40 * width.max() if profile.shape != "gaussian" else 3 * width.max()
        near = np.flatnonzero(np.isfinite(centres) & (centres > grid[0] - reach) & (centres < grid[-1] + reach))
        if gaussian:
            out += share * _banded(pattern.intensities[..., near], centres[near], width[near], grid, profile)
            continue
        for start in range(0, near.size, chunk):
            peaks = near[start : start + chunk]
            shapes = profile(grid[None, :] - centres[peaks, None], width[peaks, None])
            out += share * (pattern.intensities[..., peaks] @ shapes)
    return out


def _banded(intensities: np.ndarray, centres: np.ndarray, width: np.ndarray, grid: np.ndarray,
            profile) -> np.ndarray:
    """Gaussian peaks on an increasing grid through :func:`gaussian_bands`: a batch costs its peaks' bands, not
    peaks x grid."""
    drawn = np.asarray((gaussian_bands(centres, width, grid, profile).T @ np.atleast_2d(intensities).T).T)
    return np.ascontiguousarray(drawn).reshape(intensities.shape[:-1] + grid.shape)  # rows contiguous: scaled by row


def gaussian_bands(centres: np.ndarray, width, grid: np.ndarray, profile):
    """A sparse (peaks x grid) matrix of Gaussian ``profile`` shapes of FWHM ``width`` (one or per peak) at
    ``centres`` on an increasing ``grid``, each only within 3 FWHM of its centre (beyond that it is below 1e-11 of
    its height): intensities times it draw a curve."""
    from scipy.sparse import csr_matrix

    width = np.broadcast_to(np.asarray(width, dtype=float), centres.shape)
    low = np.searchsorted(grid, centres - 3 * width)
    counts = np.searchsorted(grid, centres + 3 * width, side="right") - low
    rows = np.repeat(np.arange(centres.size), counts)
    columns = np.arange(rows.size) - np.repeat(np.cumsum(counts) - counts, counts) + np.repeat(low, counts)
    return csr_matrix((profile(grid[columns] - centres[rows], width[rows]), (rows, columns)),
                      shape=(centres.size, grid.size))
