"""Measured powder patterns: reading two-column files, estimating the background, and making measured-looking ones.

A measurement is a :class:`xrdzoo.xrd.pattern.Pattern` whose points are the measured 2-theta steps (degrees) and
counts, at the wavelength the user names (files of this kind do not carry it), with ``span`` its measured range.
"""

from __future__ import annotations

import io
import re
from pathlib import Path

import numpy as np

from xrdzoo.errors import InputError, first_line
from xrdzoo.files import atomic_path
from xrdzoo.xrd.pattern import FULL_SCALE, WAVELENGTH, Pattern

VENDOR_SUFFIXES = (".raw", ".ras", ".xrdml", ".brml", ".uxd", ".rd", ".sd")
MIN_POINTS = 20
_LARGE_TEXT = 1 << 21  # bytes: a larger text file is read by pandas (fast, but importing it takes half a second)
MAX_SNIP_STEPS = 500  # background clipping passes: a 3-degree window on a scan of 0.006-degree steps or coarser
MIN_LAST_TWO_THETA = 15.0  # degrees: a scan that ends below this is most likely d-spacings or q
MAX_INTENSITY = 1e12  # counts: far above any detector's; 1e308 would overflow the scoring
_NOT_FINITE = r"[-+]?(?:[nN][aA][nN]|[iI][nN][fF])"  # read, so that the file is refused rather than the line skipped
_NUMBER = rf"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?|{_NOT_FINITE}"
_DECIMAL_COMMA = rf"[-+]?\d+,\d+(?:[eE][-+]?\d+)?|[-+]?\d+(?:[eE][-+]?\d+)?|{_NOT_FINITE}"
_POINT = re.compile(rf"^[ \t]*({_NUMBER})(?:[ \t]*[,;][ \t]*|[ \t]+)({_NUMBER})(?=[ \t,;]|\r?$)", re.M)
_COMMA_POINT = re.compile(rf"^[ \t]*(?=[^\n]*\d,\d)({_DECIMAL_COMMA})(?:[ \t]*;[ \t]*|[ \t]+)({_DECIMAL_COMMA})"
                          rf"(?=[ \t;]|\r?$)", re.M)
_SEPARATORS = bytes.maketrans(b",;\t!%", b"   ##")  # for the fast reader: blanks between columns, # comments
_DECIMAL_COMMAS = bytes.maketrans(b",;\t!%", b".  ##")


class MeasurementError(InputError):
    """A measurement file that cannot be used; the message says what is wrong and what to do."""


def read_measurement(path, wavelength: float = WAVELENGTH) -> Pattern:
    """A measured pattern from a two-column text file (2-theta in degrees, intensity; more columns such as the
    ``.xye`` error are ignored), separated by spaces, tabs, commas or semicolons. Lines that do not start with two
    numbers (headers, comments after ``#``, ``!``, ``;``, ``%`` ...) are skipped. Points are sorted by 2-theta.
    A PANalytical ``.xrdml`` scan is read through xrayutilities where it is installed (``xrdzoo[vendor]``)."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix in VENDOR_SUFFIXES and suffix != ".xrdml":
        raise MeasurementError(f"{path.name}: xrdzoo reads two-column text and .xrdml; export the scan as .xy or "
                               ".csv from the instrument software (see docs/measured.md)")
    if not path.is_file():
        raise MeasurementError(f"no measurement file at {str(path)!r}")
    two_theta, counts = _read_xrdml(path) if suffix == ".xrdml" else _read_text(path)
    if not (np.isfinite(two_theta).all() and np.isfinite(counts).all()):
        raise MeasurementError(f"{path.name} holds NaN or infinite values; remove those lines")
    if np.abs(counts).max() > MAX_INTENSITY:
        raise MeasurementError(f"{path.name}: an intensity of {np.abs(counts).max():.3g} is beyond any detector's "
                               f"(at most {MAX_INTENSITY:g} is read); is the second column the intensity?")
    order = np.argsort(two_theta, kind="stable")
    two_theta, counts = two_theta[order], counts[order]
    if two_theta[0] <= 0 or two_theta[-1] >= 180:
        raise MeasurementError(f"{path.name}: 2-theta runs {two_theta[0]:g}..{two_theta[-1]:g}, outside 0..180 "
                               "degrees; is the first column 2-theta in degrees (not q or d)?")
    if two_theta[-1] < MIN_LAST_TWO_THETA or _d_like(two_theta):
        raise MeasurementError(f"{path.name}: 2-theta runs {two_theta[0]:g}..{two_theta[-1]:g} degrees, too low for "
                               "a powder pattern to identify; is the first column d-spacing (A) or q (1/A)? Give "
                               "2-theta in degrees")
    if (np.diff(two_theta) <= 0).any():
        raise MeasurementError(f"{path.name}: repeated 2-theta values (e.g. {two_theta[1:][np.diff(two_theta) <= 0][0]:g}); "
                               "give one scan, each 2-theta once (a file with decimal commas, 10,5, needs its "
                               "columns separated by ';' or tabs)")
    if not np.ptp(counts) > 0:
        raise MeasurementError(f"{path.name}: the intensity column is constant; nothing to compare")
    if not counts.max() > 0:
        raise MeasurementError(f"{path.name}: no intensity is above zero (largest {counts.max():g}); give counts, "
                               "not their logarithm or a difference curve")
    return Pattern(two_theta, counts, wavelength, span=(float(two_theta[0]), float(two_theta[-1])))


def _d_like(values: np.ndarray) -> bool:
    """Whether sorted values look like the d-spacings of a 2-theta scan: all below 60 and their steps growing
    more than 4-fold from the smallest tenth to the largest (a 2-theta scan steps evenly)."""
    steps = np.diff(values)
    tenth = max(1, steps.size // 10)
    return bool(values[-1] < 60 and np.median(steps[-tenth:]) > 4 * np.median(steps[:tenth]))


def _read_text(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """The first two numbers of every line that starts with two. Comments may be in any encoding; a file with NUL
    bytes is not text. Decimal commas (``10,5;1234``, ``10,5<tab>1234``) are read when most lines of numbers near
    the top are written that way. A plain table (after a header) larger than 2 MiB is read by pandas' C parser, a 200 MB
    scan in seconds; anything else line by line."""
    data = path.read_bytes()
    if b"\0" in data[:1 << 16]:
        raise MeasurementError(f"{path.name} is not a text file; give two columns of 2-theta and intensity "
                               "(.xy, .xye, .csv, .dat)")
    head = data[:1 << 20].decode("ascii", errors="replace")
    decimal_comma = len(_COMMA_POINT.findall(head)) > len(_POINT.findall(head)) // 2
    points = _table(data, head, decimal_comma) if len(data) > _LARGE_TEXT else None
    if points is None:  # a small file, or lines of text among the numbers, ragged columns: read line by line
        text = data.decode("ascii", errors="replace")  # numbers are ASCII; other bytes become U+FFFD
        found = _COMMA_POINT.findall(text) if decimal_comma else _POINT.findall(text)
        points = np.array([(x.replace(",", "."), y.replace(",", ".")) for x, y in found], dtype=float)
    if len(points) < MIN_POINTS:
        raise MeasurementError(f"{path.name}: found {len(points)} lines of two numbers, need at least {MIN_POINTS}; "
                               "give two columns of 2-theta (degrees) and intensity")
    return points[:, 0], points[:, 1]


def _table(data: bytes, head: str, decimal_comma: bool) -> np.ndarray | None:
    """The first two columns of a plain table of numbers after a header, by pandas' C parser; None where lines of
    text are among the numbers or the columns are ragged."""
    import pandas

    first = _POINT.search(head) or _COMMA_POINT.search(head)
    table = data[first.start() if first else 0:].translate(_DECIMAL_COMMAS if decimal_comma else _SEPARATORS)
    try:
        points = pandas.read_csv(io.BytesIO(table), sep=r"\s+", header=None, comment="#", usecols=[0, 1],
                                 dtype=float, engine="c").to_numpy()
    except ValueError:
        return None
    return None if np.isnan(points).any() else points  # NaN: a line with one number


def _read_xrdml(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """2-theta and counts per second of a PANalytical XRDML scan, by xrayutilities' reader."""
    try:
        from xrayutilities.io import getxrdml_scan
    except ImportError:
        raise MeasurementError(f"{path.name}: reading .xrdml needs xrayutilities (pip install 'xrdzoo[vendor]'); "
                               "or export the scan as .xy") from None
    try:
        _, two_theta, counts = getxrdml_scan(str(path), "tt")
    except Exception as error:  # the XML parser and the reader raise many kinds
        raise MeasurementError(f"{path.name} is not a readable XRDML scan ({first_line(error)})") from None
    if np.size(two_theta) < MIN_POINTS or np.shape(two_theta) != np.shape(counts):
        raise MeasurementError(f"{path.name}: the XRDML scan has {np.size(two_theta)} points, need at least "
                               f"{MIN_POINTS} of 2-theta and intensity")
    return np.asarray(two_theta, float), np.asarray(counts, float)


def background(measured: Pattern, width: float = 3.0) -> np.ndarray:
    """A background estimate under the measured points by SNIP (Ryan et al. 1988, Morhac et al. 1997): on the
    compressed counts v = log(log(sqrt(y + 1) + 1) + 1), each point is replaced, for k = 1 .. K, by the smaller of
    itself and the mean of its neighbours k points away; K spans ``width`` degrees, so a feature narrower than about
    2 x ``width`` (a peak) is clipped away and a slower one (the background) kept. Linear time: a scan finer than
    ``width`` / :data:`MAX_SNIP_STEPS` is estimated on means of consecutive points, then interpolated back."""
    x, y = np.asarray(measured.two_theta, float), np.clip(np.asarray(measured.intensities, float), 0, None)
    steps = int(round(width / np.median(np.diff(x))))
    if steps <= MAX_SNIP_STEPS:
        return _snip(y, steps)
    block = -(-steps // MAX_SNIP_STEPS)
    starts = np.arange(0, y.size, block)
    sizes = np.diff(np.r_[starts, y.size])
    coarse_x, coarse_y = np.add.reduceat(x, starts) / sizes, np.add.reduceat(y, starts) / sizes
    return np.interp(x, coarse_x, _snip(coarse_y, steps // block))


def _snip(y: np.ndarray, steps: int) -> np.ndarray:
    """SNIP's clipping with ``steps`` passes on evenly spaced, non-negative counts ``y``."""
    v = np.log(np.log(np.sqrt(y + 1) + 1) + 1)
    for k in range(1, min(steps, (y.size - 1) // 2) + 1):
        mean = (v[: -2 * k] + v[2 * k :]) / 2
        v[k:-k] = np.minimum(v[k:-k], mean)
    return (np.exp(np.exp(v) - 1) - 1) ** 2 - 1


def write_xy(path, measured: Pattern, header: str = "") -> Path:
    """Write a measurement as a two-column ``.xy`` text file (2-theta in degrees, counts), with ``#`` header lines."""
    with atomic_path(path) as partial:
        np.savetxt(partial, np.column_stack([measured.two_theta, measured.intensities]), fmt=["%.4f", "%.1f"],
                   header=header)
    return Path(path)


def measured_looking(pattern: Pattern, grid, profile, rng: np.random.Generator, zero_shift: float = 0.0,
                     peak_counts: float = 5000.0, background_share: float = 0.1) -> Pattern:
    """A measurement as an instrument would record ``pattern`` (peaks at its wavelength): drawn with ``profile`` on
    ``grid`` shifted by ``zero_shift`` degrees, scaled to ``peak_counts`` at the largest peak, over a smooth
    background (``background_share`` of the peak counts, falling with angle, plus a broad hump near 25 degrees),
    with Poisson counting noise from ``rng``."""
    grid = np.asarray(grid, dtype=float)
    shifted = Pattern(pattern.two_theta + zero_shift, pattern.intensities, pattern.wavelength)
    peaks = shifted.on_grid(grid, profile) * (peak_counts / FULL_SCALE)
    x = (grid - grid[0]) / np.ptp(grid)
    slope = background_share * peak_counts * (0.5 + np.exp(-3 * x) + 0.3 * np.exp(-(((grid - 25) / 8) ** 2)))
    counts = rng.poisson(peaks + slope).astype(float)
    return Pattern(grid, counts, pattern.wavelength, span=(float(grid[0]), float(grid[-1])))
