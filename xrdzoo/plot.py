"""Pictures of patterns: one or more 1,024-point patterns over 2-theta, saved as PNG."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from xrdzoo.errors import InputError

SUFFIXES = (".png", ".pdf", ".svg")


def plot_patterns(path: str | Path, patterns: dict[str, np.ndarray], title: str = "") -> Path:
    """Draw labelled patterns (0..100 over 2-theta 0..180 degrees) into a PNG (or PDF, SVG); the first is drawn on
    top. Returns the path written: ``path`` itself."""
    path = Path(path)
    if path.is_dir() or path.suffix.lower() not in SUFFIXES:
        raise InputError(f"cannot draw into {str(path)!r}: give a file name ending in {', '.join(SUFFIXES)}")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from xrdzoo.xrd.pattern import TWO_THETA

    fig, ax = plt.subplots(figsize=(9, 3.6), dpi=120)
    for i, (label, pattern) in enumerate(reversed(list(patterns.items()))):
        sign = -1 if len(patterns) == 2 and i == 0 else 1  # two patterns: mirror the second below the axis
        ax.vlines(TWO_THETA, 0, sign * np.asarray(pattern), label=label, color=f"C{len(patterns) - 1 - i}", lw=1.2)
    ax.axhline(0, color="black", lw=0.6)
    ax.set(xlabel="2θ (degrees, Cu Kα)", ylabel="intensity (max 100)", xlim=(0, 180), title=title)
    ax.legend(loc="upper right", frameon=False)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path
