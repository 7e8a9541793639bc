"""The package version, in a module of its own at the bottom of the layers (checkpoints and datasets record it)."""

__version__ = "0.2.1"
