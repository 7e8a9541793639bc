"""The pattern conventions: Cu K-alpha, 2-theta 0..180 degrees in 1,024 equal bins, the largest value scaled to 100.

Binning rule: a bin takes the LARGEST intensity of the reflections that fall in it. The DeepXRD paper speaks of
"average mapping"; we keep the maximum because averaging would shrink a strong peak that happens to share a bin
with weak ones, so the same reflection would get a different height depending on its neighbours.
"""

from __future__ import annotations

import numpy as np

from xrdzoo.errors import InputError

N_POINTS = 1024
TWO_THETA_RANGE = (0.0, 180.0)
WAVELENGTH = 1.54184  # Cu K-alpha in Angstrom, as pymatgen's "CuKa"
FULL_SCALE = 100.0


def bin_centres(n_points: int = N_POINTS) -> np.ndarray:
    """The 2-theta centres (degrees) of ``n_points`` equal bins over ``TWO_THETA_RANGE``."""
    low, high = TWO_THETA_RANGE
    width = (high - low) / n_points
    return low + width * (np.arange(n_points) + 0.5)


TWO_THETA = bin_centres(N_POINTS)


def full_scale(pattern: np.ndarray) -> np.ndarray:
    """Each row (last axis) scaled so its largest value is 100; all-zero rows stay zero. The one place patterns
    are put on the 0..100 scale (binning, broadening, predictions)."""
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


def broaden(pattern, fwhm_deg: float) -> np.ndarray:
    """Gaussian broadening of a binned pattern (or a batch, along the last axis); rescaled to max 100.

    ``fwhm_deg``: full width at half maximum of the Gaussian in degrees 2-theta (must be > 0).
    """
    from scipy.ndimage import gaussian_filter1d

    if not fwhm_deg > 0:
        raise InputError(f"fwhm must be a positive width in degrees, got {fwhm_deg}")
    pattern = np.asarray(pattern, dtype=np.float32)
    low, high = TWO_THETA_RANGE
    bin_width = (high - low) / pattern.shape[-1]
    sigma_bins = fwhm_deg / (2 * np.sqrt(2 * np.log(2))) / bin_width
    smooth = gaussian_filter1d(pattern, sigma_bins, axis=-1, mode="constant", truncate=4.0)
    return full_scale(smooth).astype(np.float32)


def d_spacing(two_theta_deg, wavelength: float = WAVELENGTH):
    """Interplanar spacing (Angstrom) by Bragg's law, d = wavelength / (2 sin theta); inf at 2-theta 0."""
    theta = np.radians(np.asarray(two_theta_deg, dtype=float)) / 2
    with np.errstate(divide="ignore"):
        return wavelength / (2 * np.abs(np.sin(theta)))
