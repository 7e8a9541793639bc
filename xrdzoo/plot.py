"""Pictures of patterns: one or more 1,024-point patterns over 2-theta, saved as PNG."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from xrdzoo.errors import InputError

SUFFIXES = (".png", ".pdf", ".svg")


def _target(path: str | Path) -> Path:
    """The file a picture goes to, or a one-line error if it is not a picture file name."""
    path = Path(path)
    if path.is_dir() or path.suffix.lower() not in SUFFIXES:
        raise InputError(f"cannot draw into {str(path)!r}: give a file name ending in {', '.join(SUFFIXES)}")
    return path


def plot_patterns(path: str | Path, patterns: dict[str, np.ndarray], title: str = "", x: np.ndarray | None = None,
                  xlabel: str = "2θ (degrees, Cu Kα)") -> Path:
    """Draw labelled patterns (0..100 over 2-theta 0..180 degrees, or as curves over ``x``) into a PNG (or PDF,
    SVG); the first is drawn on top. Returns the path written: ``path`` itself."""
    path = _target(path)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from xrdzoo.xrd.pattern import TWO_THETA

    fig, ax = plt.subplots(figsize=(9, 3.6), dpi=120)
    for i, (label, pattern) in enumerate(reversed(list(patterns.items()))):
        sign = -1 if len(patterns) == 2 and i == 0 else 1  # two patterns: mirror the second below the axis
        style = {"label": label, "color": f"C{len(patterns) - 1 - i}", "lw": 1.2}
        if x is None:
            ax.vlines(TWO_THETA, 0, sign * np.asarray(pattern), **style)
        else:
            ax.plot(x, sign * np.asarray(pattern), **style)
    ax.axhline(0, color="black", lw=0.6)
    ax.set(xlabel=xlabel, ylabel="intensity (max 100)",
           xlim=(0, 180) if x is None else (min(x[0], x[-1]), max(x[0], x[-1])), title=title)
    ax.legend(loc="upper right", frameon=False)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def plot_ranking(path: str | Path, ranking, title: str = "", top: int = 3) -> Path:
    """Draw a measurement (background removed, as scored) over its best ``top`` candidates, one row each, into a PNG."""
    path = _target(path)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    matches = ranking.matches[:top]
    fig, axes = plt.subplots(len(matches), 1, figsize=(9, 1.2 + 1.7 * len(matches)), dpi=120, sharex=True,
                             squeeze=False)
    for i, (ax, match) in enumerate(zip(axes[:, 0], matches), 1):
        ax.plot(ranking.grid, ranking.measured, color="black", lw=0.9, label="measured")
        ax.plot(ranking.grid, -match.curve, color=f"C{i - 1}", lw=1.0,
                label=f"#{i} {match.formula} ({match.source}), r = {match.score:.3f}, shift {match.shift:+.2f}°")
        ax.axhline(0, color="grey", lw=0.5)
        ax.set(yticks=[], ylim=(-110, 110))
        ax.legend(loc="upper right", frameon=False, fontsize=8)
    axes[-1, 0].set(xlabel="2θ (degrees)", xlim=(ranking.grid[0], ranking.grid[-1]))
    axes[0, 0].set_title(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path
