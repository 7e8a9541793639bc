"""Radiation and peak shapes: X-ray tube lines by name, and the profiles that turn a peak list into a curve.

Wavelengths are the tube lines pymatgen uses (``pymatgen.analysis.diffraction.xrd.WAVELENGTHS``, written out here
because importing that module takes seconds): ``CuKa`` is the weighted mean of K-alpha1 and K-alpha2 (2:1), the line
the model frame uses. Profiles are area-normalised, so a peak's integrated intensity does not depend on its width
(a peak that broadens with angle gets lower, as in a measurement).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from xrdzoo.errors import InputError

TUBES = ("CuKa", "MoKa", "CoKa", "FeKa", "CrKa", "AgKa")
SHAPES = ("gaussian", "lorentzian", "pseudo-voigt")
MAX_FWHM = 30.0  # degrees: one peak wider than this covers a sixth of the pattern
KA2_RATIO = 0.5  # intensity of K-alpha2 relative to K-alpha1


LINES = {  # Angstrom: each tube's K-alpha mean, K-alpha1 and K-alpha2
    "CuKa": 1.54184, "CuKa1": 1.54056, "CuKa2": 1.54439,
    "MoKa": 0.71073, "MoKa1": 0.7093, "MoKa2": 0.71359,
    "CoKa": 1.79026, "CoKa1": 1.78896, "CoKa2": 1.79285,
    "FeKa": 1.93735, "FeKa1": 1.93604, "FeKa2": 1.93998,
    "CrKa": 2.291, "CrKa1": 2.2897, "CrKa2": 2.29361,
    "AgKa": 0.560885, "AgKa1": 0.559421, "AgKa2": 0.563813,
}


def wavelength(spec: str | float) -> float:
    """Wavelength in Angstrom of a tube name (``CuKa``, ``MoKa``, ``CoKa``, ``FeKa``, ``CrKa``, ``AgKa``; any case)
    or of a number of Angstrom (``0.7093``, ``"0.7093"``)."""
    if isinstance(spec, str):
        named = {name.lower(): value for name, value in LINES.items() if name.endswith("Ka")}
        if spec.strip().lower() in named:
            return named[spec.strip().lower()]
        try:
            spec = float(spec)
        except ValueError:
            raise InputError(f"unknown wavelength {spec!r}; give one of {', '.join(TUBES)} or a number of Angstrom, "
                             "e.g. 0.7093") from None
    if not (isinstance(spec, (int, float)) and 0.05 <= spec <= 5.0):
        raise InputError(f"wavelength {spec!r} A is outside 0.05..5 A; give a tube name ({', '.join(TUBES)}) or "
                         "a wavelength in Angstrom")
    return float(spec)


def radiation(wavelength_A: float) -> str:
    """A label for a wavelength: the tube line (``Cu Kα``) where it is one, else ``λ = 0.7 Å``."""
    tube = next((t for t in TUBES if abs(LINES[t] - wavelength_A) < 1e-6), None)
    return f"{tube[:-2]} Kα" if tube else f"λ = {wavelength_A:g} Å"


def ka_lines(mean_wavelength: float) -> tuple[float, float]:
    """(K-alpha1, K-alpha2) in Angstrom of the tube whose K-alpha mean is ``mean_wavelength``."""
    for tube in TUBES:
        if abs(LINES[tube] - mean_wavelength) < 1e-6:
            return LINES[tube + "1"], LINES[tube + "2"]
    raise InputError(f"no K-alpha doublet for wavelength {mean_wavelength} A; the doublet needs a tube line "
                     f"({', '.join(TUBES)}), not a single wavelength")


@dataclass(frozen=True)
class Profile:
    """A peak shape: ``shape`` (gaussian, lorentzian, pseudo-voigt with Lorentzian share ``eta``) and its full width
    at half maximum in degrees 2-theta, either one ``fwhm`` for every peak or Caglioti's ``caglioti = (U, V, W)``:
    FWHM^2 = U tan^2(theta) + V tan(theta) + W (degrees^2). ``doublet`` splits each peak into K-alpha1 and K-alpha2
    (2:1) at the tube's two wavelengths."""

    shape: str = "gaussian"
    fwhm: float | None = None
    caglioti: tuple[float, float, float] | None = None
    eta: float = 0.5
    doublet: bool = False

    def __post_init__(self):
        if self.shape not in SHAPES:
            raise InputError(f"unknown peak shape {self.shape!r}; choose one of: {', '.join(SHAPES)}")
        if (self.fwhm is None) == (self.caglioti is None):
            raise InputError("give a peak width: either one FWHM (degrees) or Caglioti U, V, W, not both")
        if self.fwhm is not None and not 0 < self.fwhm <= MAX_FWHM:
            raise InputError(f"fwhm must be a positive width in degrees, at most {MAX_FWHM:g}, got {self.fwhm}")
        if self.caglioti is not None and (len(self.caglioti) != 3 or not np.isfinite(self.caglioti).all()):
            raise InputError(f"Caglioti widths are three finite numbers U, V, W, got {self.caglioti!r}")
        if not 0 <= self.eta <= 1:
            raise InputError(f"eta (the pseudo-Voigt's Lorentzian share) must lie in 0..1, got {self.eta}")

    def width(self, two_theta) -> np.ndarray:
        """FWHM in degrees at each 2-theta (degrees)."""
        two_theta = np.asarray(two_theta, dtype=float)
        if self.fwhm is not None:
            return np.full(two_theta.shape, float(self.fwhm))
        u, v, w = self.caglioti
        tan = np.tan(np.radians(two_theta) / 2)
        squared = u * tan**2 + v * tan + w
        if (squared <= 0).any():
            raise InputError(f"Caglioti U, V, W = {u}, {v}, {w} give no positive width at 2-theta "
                             f"{two_theta[squared <= 0].min():.2f} degrees; check the signs (V is usually negative, "
                             "W positive)")
        return np.sqrt(squared)

    def __call__(self, offset, fwhm) -> np.ndarray:
        """The area-normalised shape (per degree) at ``offset`` degrees from a peak of width ``fwhm``."""
        x = 2 * np.asarray(offset, float) / fwhm
        gaussian = np.sqrt(4 * np.log(2) / np.pi) / fwhm * np.exp(-np.log(2) * x**2)
        lorentzian = 2 / (np.pi * fwhm) / (1 + x**2)
        share = {"gaussian": 0.0, "lorentzian": 1.0, "pseudo-voigt": self.eta}[self.shape]
        return (1 - share) * gaussian + share * lorentzian
