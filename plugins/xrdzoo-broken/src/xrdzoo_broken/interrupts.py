"""A module that raises ``KeyboardInterrupt`` itself when imported (no Ctrl-C was pressed)."""

raise KeyboardInterrupt("raised by xrdzoo_broken.interrupts at import")


def loss():
    """Never reached: the module raises first."""
