"""The errors a user can fix: one family, so the command line turns them into one line and lets bugs show."""

from __future__ import annotations


class XRDZooError(Exception):
    """Base of every error whose one-line message tells a user what was wrong and how to fix it."""


class InputError(XRDZooError, ValueError):
    """A value, option or file content that xrdzoo cannot take (also a ``ValueError``)."""
