"""The pattern conventions: bins, the max rule, scaling, broadening, Bragg's law."""

import numpy as np
import pytest

from xrdzoo.xrd.pattern import N_POINTS, TWO_THETA, WAVELENGTH, Pattern, bin_peaks, d_spacing
from xrdzoo.xrd.profiles import Profile

WIDTH = 180 / N_POINTS


def test_bin_centres():
    assert TWO_THETA.shape == (N_POINTS,)
    assert TWO_THETA[0] == pytest.approx(WIDTH / 2)
    assert TWO_THETA[-1] == pytest.approx(180 - WIDTH / 2)
    assert np.allclose(np.diff(TWO_THETA), WIDTH)


def test_bin_takes_the_largest_and_scales_to_100():
    # 30.00 and 30.05 share a bin; 90 is elsewhere.
    pattern = bin_peaks([30.0, 30.05, 90.0], [40.0, 10.0, 20.0])
    assert pattern.dtype == np.float32 and pattern.shape == (N_POINTS,)
    assert pattern[int(30.0 / WIDTH)] == pytest.approx(100.0)
    assert pattern[int(90.0 / WIDTH)] == pytest.approx(50.0)
    assert np.count_nonzero(pattern) == 2


def test_bin_edges_and_empty():
    pattern = bin_peaks([0.0, 180.0], [1.0, 2.0])
    assert pattern[0] == pytest.approx(50.0) and pattern[-1] == pytest.approx(100.0)
    assert not bin_peaks([], []).any()
    assert not bin_peaks([45.0], [0.0]).any()
    assert bin_peaks([45.0], [3.0], n_points=10)[2] == pytest.approx(100.0)


@pytest.mark.parametrize("two_theta", [[-1.0], [181.0], [np.nan]])
def test_bin_rejects_out_of_range(two_theta):
    with pytest.raises(ValueError, match="2-theta"):
        bin_peaks(two_theta, [1.0])


def test_bin_rejects_length_mismatch():
    with pytest.raises(ValueError, match="differ in length"):
        bin_peaks([10.0, 20.0], [1.0])


def test_a_frame_pattern_drawn_with_a_profile_has_its_width_and_scale():
    frame = Pattern.from_frame(np.stack([bin_peaks([90.0], [1.0]), np.zeros(N_POINTS)]))
    assert frame.on_frame and len(frame) == 2
    wide = frame.resampled(profile=Profile(fwhm=2.0))
    assert wide.on_frame and wide.intensities.shape == (2, N_POINTS)
    assert wide[0].intensities.max() == pytest.approx(100.0) and not wide[1].intensities.any()
    above_half = TWO_THETA[wide[0].intensities >= 50]
    assert above_half.max() - above_half.min() == pytest.approx(2.0, abs=2 * WIDTH)
    assert np.array_equal(frame.resampled().intensities, frame.intensities)  # no profile: the same peaks
    with pytest.raises(ValueError, match="fwhm"):
        Profile(fwhm=0.0)


def test_d_spacing():
    assert d_spacing(180.0) == pytest.approx(WAVELENGTH / 2)
    assert d_spacing(60.0) == pytest.approx(WAVELENGTH)
    assert np.isinf(d_spacing(0.0))
    assert d_spacing(np.array([0.0, 60.0])).shape == (2,)
