"""Where a pattern is shown: wavelength, 2-theta grid, x axis and peak profile, the one value that takes a model-frame
:class:`~xrdzoo.xrd.pattern.Pattern` to what a user asked for (``xrdzoo.predict(..., frame=Frame.of("MoKa"))`` does
what ``xrdzoo predict --wavelength MoKa`` does)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from xrdzoo.errors import InputError
from xrdzoo.xrd.pattern import AXES, WAVELENGTH, Pattern, parse_grid
from xrdzoo.xrd.profiles import Profile, wavelength as wavelength_of


@dataclass(frozen=True, eq=False)
class Frame:
    """A ``wavelength`` (Angstrom), a 2-theta ``grid`` (degrees; None: the model frame's 1,024 bins), the ``axis`` of
    written files and plots (two_theta, q or d) and a peak ``profile`` (None: peaks, drawn as sticks). The default
    frame is the model's own: drawing a prediction on it changes nothing."""

    wavelength: float = WAVELENGTH
    grid: np.ndarray | None = None
    axis: str = "two_theta"
    profile: Profile | None = None

    def __post_init__(self):
        if self.axis not in AXES:
            raise InputError(f"unknown axis {self.axis!r}; choose one of: {', '.join(AXES)}")

    @classmethod
    def of(cls, wavelength: str | float = "CuKa", two_theta: str | None = None, axis: str = "two_theta",
           shape: str = "gaussian", fwhm: float | None = None, caglioti: str | tuple | None = None,
           doublet: bool = False) -> Frame:
        """A frame from the command line's words: a tube name or Angstrom, a grid ``"start:stop:step"``, an axis, and a
        peak ``shape`` of width ``fwhm`` or Caglioti ``"U,V,W"`` (no width: peaks), split into the K-alpha doublet
        with ``doublet``; ``InputError`` naming what is wrong."""
        if doublet and fwhm is None and caglioti is None:
            raise InputError("the doublet needs a peak width: add --fwhm or --caglioti")
        if isinstance(caglioti, str):
            caglioti = caglioti.split(",")
        try:
            widths = None if caglioti is None else tuple(float(v) for v in caglioti)
        except ValueError:
            raise InputError(f"Caglioti widths are three finite numbers U, V, W, got {caglioti!r}") from None
        profile = None if fwhm is None and widths is None else Profile(shape, fwhm, widths, doublet=doublet)
        return cls(wavelength_of(wavelength), None if two_theta is None else parse_grid(two_theta), axis, profile)

    def draw(self, pattern: Pattern) -> Pattern:
        """A Pattern (one or a batch) at this wavelength, on this grid, with this profile; a model-frame pattern
        that none of them changes comes back as it is."""
        if pattern.wavelength != self.wavelength:
            pattern = pattern.at_wavelength(self.wavelength)
        if pattern.on_frame and self.grid is None and self.profile is None:
            return pattern
        return pattern.resampled(self.grid, self.profile)
