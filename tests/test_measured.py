"""Reading measured patterns, their background, and the measured-looking patterns the tests and benchmark make."""

import numpy as np
import pytest

from xrdzoo.measured import MeasurementError, background, measured_looking, read_measurement, write_xy
from xrdzoo.xrd.pattern import Pattern, parse_grid
from xrdzoo.xrd.profiles import Profile

X = 10 + 0.05 * np.arange(400)
Y = 100 + 1000 * np.exp(-(((X - 20) / 0.1) ** 2))


@pytest.mark.parametrize("name, header, separator, extra", [
    ("scan.xy", "", " ", ""),
    ("scan.xye", "# 2theta counts error\n", "\t", "\t3.2"),
    ("scan.csv", "two_theta,intensity\n", ",", ""),
    ("scan.dat", "! instrument: lab\n; step 0.05\nANGLE  COUNTS\n", "  ", ""),
    ("scan.txt", "", "; ", ""),
])
@pytest.mark.parametrize("large", [False, True])  # True: read as a file past 2 MiB is, by pandas
def test_reads_two_column_text(tmp_path, monkeypatch, name, header, separator, extra, large):
    if large:
        monkeypatch.setattr("xrdzoo.measured._LARGE_TEXT", 0)
    lines = [f"{x:.3f}{separator}{y:.1f}{extra}" for x, y in zip(X[::-1], Y[::-1])]  # descending: sorted on reading
    path = tmp_path / name
    path.write_text(header + "\n".join(lines[:200]) + "\n\n# a comment in the middle\n" + "\n".join(lines[200:]) + "\n")
    measured = read_measurement(path, 0.71073)
    assert np.allclose(measured.two_theta, X, atol=1e-3) and np.allclose(measured.intensities, Y, atol=0.1)
    assert measured.wavelength == 0.71073 and measured.span == pytest.approx((X[0], X[-1]), abs=1e-3)


@pytest.mark.parametrize("content, message", [
    ("10 1\n11 2\n", "need at least 20"),
    ("\n".join(f"{200 + i} 5" for i in range(30)), "outside 0..180"),
    ("\n".join(f"{10 + i // 2} {i}" for i in range(30)), "repeated 2-theta"),
    ("\n".join(f"{10 + i} 5" for i in range(30)), "constant"),
    ("\n".join(f"{10 + i} nan" for i in range(30)), "NaN"),
])
def test_bad_text_files_give_one_clear_line(tmp_path, content, message):
    path = tmp_path / "bad.xy"
    path.write_text(content)
    with pytest.raises(MeasurementError, match=message) as error:
        read_measurement(path)
    assert "\n" not in str(error.value)


def test_vendor_binary_and_missing_files(tmp_path):
    for name in ("scan.raw", "scan.ras", "scan.xrdml"):
        (tmp_path / name).write_bytes(b"\x00\x01binary")
        with pytest.raises(MeasurementError, match="export the scan as .xy|not a readable XRDML scan"):
            read_measurement(tmp_path / name)
    (tmp_path / "scan.xy").write_bytes(bytes(range(256)) * 4)
    with pytest.raises(MeasurementError, match="not a text file"):
        read_measurement(tmp_path / "scan.xy")
    with pytest.raises(MeasurementError, match="no measurement file"):
        read_measurement(tmp_path / "absent.xy")
    assert issubclass(MeasurementError, ValueError)


def test_background_follows_a_smooth_curve_under_sharp_peaks():
    grid = parse_grid("10:80:0.02")
    smooth = 200 + 150 * np.exp(-(grid - 10) / 20)
    peaks = sum(2000 * np.exp(-(((grid - c) / 0.1) ** 2)) for c in (20, 21, 35, 50, 51.5, 70))
    estimate = background(Pattern(grid, smooth + peaks), width=3.0)
    assert np.abs(estimate - smooth).max() < 0.05 * smooth.max()
    assert (estimate <= smooth + peaks + 1e-6).all()


def test_measured_looking_round_trip(tmp_path):
    """A peak list drawn with a profile, shifted, over a background and with Poisson noise, written and read back."""
    peaks = Pattern([25.0, 40.0, 60.0], [100.0, 50.0, 30.0])
    grid = parse_grid("10:80:0.02")
    measured = measured_looking(peaks, grid, Profile("pseudo-voigt", fwhm=0.2), np.random.default_rng(0),
                                zero_shift=0.1, peak_counts=10000, background_share=0.1)
    assert np.array_equal(measured.intensities, np.round(measured.intensities))  # counts
    assert abs(grid[np.argmax(measured.intensities)] - 25.1) < 0.03
    back = read_measurement(write_xy(tmp_path / "m.xy", measured, "made by a test"))
    assert np.allclose(back.two_theta, grid) and np.array_equal(back.intensities, measured.intensities)


def test_reads_an_xrdml_scan_through_xrayutilities(tmp_path):
    pytest.importorskip("xrayutilities")
    counts = " ".join(f"{v:.0f}" for v in Y)
    (tmp_path / "scan.xrdml").write_text(f"""<?xml version="1.0" encoding="UTF-8"?>
<xrdMeasurements xmlns="http://www.xrdml.com/XRDMeasurement/1.5" status="Completed">
 <xrdMeasurement measurementType="Scan" status="Completed">
  <scan appendNumber="0" mode="Continuous" scanAxis="Gonio" status="Completed">
   <dataPoints>
    <positions axis="2Theta" unit="deg"><startPosition>{X[0]}</startPosition><endPosition>{X[-1]}</endPosition></positions>
    <positions axis="Omega" unit="deg"><startPosition>{X[0] / 2}</startPosition><endPosition>{X[-1] / 2}</endPosition></positions>
    <commonCountingTime unit="seconds">2.0</commonCountingTime>
    <intensities unit="counts">{counts}</intensities>
   </dataPoints>
  </scan>
 </xrdMeasurement>
</xrdMeasurements>
""")
    measured = read_measurement(tmp_path / "scan.xrdml")
    assert np.allclose(measured.two_theta, X) and np.allclose(measured.intensities, np.round(Y) / 2)  # counts/s
