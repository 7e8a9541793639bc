"""Pictures of patterns: one or more 1,024-point patterns over 2-theta, saved as PNG."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from xrdzoo.errors import InputError
from xrdzoo.files import atomic_path
from xrdzoo.xrd.pattern import Pattern, axis_values
from xrdzoo.xrd.profiles import radiation

SUFFIXES = (".png", ".pdf", ".svg")


def _target(path: str | Path) -> Path:
    """The file a picture goes to, or a one-line error if it is not a picture file name."""
    path = Path(path)
    if path.is_dir() or path.suffix.lower() not in SUFFIXES:
        raise InputError(f"cannot draw into {str(path)!r}: give a file name ending in {', '.join(SUFFIXES)}")
    return path


@contextmanager
def _axes(path: Path, rows: int = 1, height: float = 3.6, **options) -> Iterator[np.ndarray]:
    """``rows`` stacked Matplotlib axes (drawn off-screen) whose figure is laid out and saved to ``path`` when the
    block ends, and closed either way."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(rows, 1, figsize=(9, height), dpi=120, squeeze=False, **options)
    try:
        yield axes[:, 0]
        fig.tight_layout()
        with atomic_path(path) as partial:
            fig.savefig(partial, format=path.suffix.lower().lstrip("."))
    finally:
        plt.close(fig)


def plot_patterns(path: str | Path, patterns: dict[str, Pattern], title: str = "", axis: str = "two_theta",
                  sticks: bool = True) -> Path:
    """Draw labelled patterns (each one ``Pattern``, largest 100) over ``axis`` (two_theta, q or d) into a PNG (or PDF,
    SVG), as sticks (peaks) or curves (profiles); the first is drawn on top, and a second one mirrored below the
    axis. Returns the path written: ``path`` itself."""
    path = _target(path)
    with _axes(path) as (ax,):
        ends = []
        for i, (label, pattern) in enumerate(reversed(list(patterns.items()))):
            sign = -1 if len(patterns) == 2 and i == 0 else 1
            style = {"label": label, "color": f"C{len(patterns) - 1 - i}", "lw": 1.2}
            x = axis_values(pattern.two_theta, axis, pattern.wavelength)
            (ax.vlines(x, 0, sign * pattern.intensities, **style) if sticks else
             ax.plot(x, sign * pattern.intensities, **style))
            # the axis spans, in 2-theta, where the pattern is known (to ~55 degrees: a frame seen at Mo K-alpha); in d
            # and q, which run to infinity or crowd the peaks near one end, where there are peaks
            shown = (pattern.two_theta >= pattern.span[0]) & (pattern.two_theta <= pattern.span[1]) & np.isfinite(x)
            if axis != "two_theta":
                shown &= pattern.intensities >= 0.5
            ends.append(x[shown])
        ends = np.concatenate(ends)
        if axis != "two_theta":
            margin = 0.05 * (ends.max() - ends.min()) or 0.5
            ends = np.array([max(ends.min() - margin, 0.0), ends.max() + margin])
        first = next(iter(patterns.values()))
        xlabel = {"two_theta": f"2θ (degrees, {radiation(first.wavelength)})", "q": "q (1/Å)", "d": "d (Å)"}[axis]
        ax.axhline(0, color="black", lw=0.6)
        ax.set(xlabel=xlabel, ylabel="intensity (max 100)", xlim=(ends.min(), ends.max()), title=title)
        ax.legend(loc="upper right", frameon=False)
    return path


def plot_ranking(path: str | Path, ranking, title: str = "", top: int = 3) -> Path:
    """Draw a measurement (background removed, as scored) over its best ``top`` candidates, one row each, into a PNG."""
    path = _target(path)
    matches, grid = ranking.matches[:top], ranking.measured.two_theta
    with _axes(path, len(matches), 1.2 + 1.7 * len(matches), sharex=True) as axes:
        for i, (ax, match) in enumerate(zip(axes, matches), 1):
            ax.plot(grid, ranking.measured.intensities, color="black", lw=0.9, label="measured")
            ax.plot(grid, -match.curve, color=f"C{i - 1}", lw=1.0,
                    label=f"#{i} {match.formula} ({match.source}), r = {match.score:.3f}, shift {match.shift:+.2f}°")
            ax.axhline(0, color="grey", lw=0.5)
            ax.set(yticks=[], ylim=(-110, 110))
            ax.legend(loc="upper right", frameon=False, fontsize=8)
        axes[-1].set(xlabel="2θ (degrees)", xlim=(grid[0], grid[-1]))
        axes[0].set_title(title, fontsize=10)
    return path
