"""xrdzoo: predict powder X-ray diffraction patterns from chemical formulas."""

__version__ = "0.1.0"
