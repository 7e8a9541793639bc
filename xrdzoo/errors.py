"""The errors a user can fix: one family, so the command line turns them into one line and lets bugs show."""

from __future__ import annotations


class XRDZooError(Exception):
    """Base of every error whose one-line message tells a user what was wrong and how to fix it."""


class InputError(XRDZooError, ValueError):
    """A value, option or file content that xrdzoo cannot take (also a ``ValueError``)."""


def first_line(error: BaseException, named: bool = False) -> str:
    """The first line of an error's message (after its type's name with ``named``), or the type's name where it
    has none: how xrdzoo quotes another library's error inside its own one line."""
    text = str(error).strip()
    line = text.splitlines()[0] if text else ""
    return f"{type(error).__name__}: {line}" if named and line else line or type(error).__name__


def at_least_one(value: int, name: str) -> int:
    """``value`` itself if it is a whole number >= 1, else a one-line :class:`InputError` naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InputError(f"{name} must be a whole number of at least 1, got {value!r}")
    return value
