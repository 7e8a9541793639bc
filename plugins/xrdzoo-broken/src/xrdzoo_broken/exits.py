"""A module that calls ``sys.exit`` when imported, as a careless script-turned-plugin might."""

import sys

sys.exit(3)


class Encoder:
    """Never reached: the module exits first."""
