"""An encoder whose module needs a package that is not installed, so importing it fails."""

import xrdzoo_broken_missing_dependency  # noqa: F401  (deliberately absent)


class Encoder:
    """Never reached: the import above fails first."""
