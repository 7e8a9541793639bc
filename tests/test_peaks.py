"""Peak picking, merging and alignment on hand-made patterns."""

import numpy as np
import pytest

from xrdzoo.xrd.pattern import N_POINTS, TWO_THETA
from xrdzoo.xrd.peaks import Peaks, align_peaks, find_peaks, find_peaks_of_rows, match_counts

WIDTH = 180 / N_POINTS


def _pattern(points: dict[int, float]) -> np.ndarray:
    pattern = np.zeros(N_POINTS, dtype=np.float32)
    for index, value in points.items():
        pattern[index] = value
    return pattern


def test_threshold_is_inclusive():
    peaks = find_peaks(_pattern({100: 10.0, 300: 9.99, 500: 100.0}))
    assert np.allclose(peaks.positions, TWO_THETA[[100, 500]])
    assert np.allclose(peaks.intensities, [10.0, 100.0])


def test_contiguous_run_is_one_peak_at_its_middle():
    peaks = find_peaks(_pattern({200: 20.0, 201: 80.0, 202: 30.0}))
    assert len(peaks) == 1
    assert peaks.positions[0] == pytest.approx(TWO_THETA[201])
    assert peaks.intensities[0] == pytest.approx(80.0)


def test_merge_below_two_degrees_not_above():
    near = find_peaks(_pattern({400: 50.0, 411: 70.0}))  # 11 bins = 1.93 degrees
    assert len(near) == 1
    assert near.positions[0] == pytest.approx((TWO_THETA[400] + TWO_THETA[411]) / 2)
    assert near.intensities[0] == pytest.approx(70.0)
    assert near.apexes[0] == pytest.approx(TWO_THETA[411])  # the largest point, not the middle
    far = find_peaks(_pattern({400: 50.0, 412: 70.0}))  # 12 bins = 2.11 degrees
    assert np.allclose(far.positions, TWO_THETA[[400, 412]])
    assert np.allclose(far.intensities, [50.0, 70.0])


def test_merging_chains():
    peaks = find_peaks(_pattern({100: 30.0, 110: 40.0, 120: 20.0, 200: 90.0}))
    assert np.allclose(peaks.positions, [TWO_THETA[110], TWO_THETA[200]])
    assert np.allclose(peaks.intensities, [40.0, 90.0])
    assert np.allclose(peaks.apexes, [TWO_THETA[110], TWO_THETA[200]])


def test_apex_of_a_broad_peak_is_its_largest_point():
    pattern = _pattern({300 + i: value for i, value in enumerate([15.0, 20.0, 30.0, 60.0, 100.0, 12.0])})
    peaks = find_peaks(pattern)
    assert peaks.positions[0] == pytest.approx((TWO_THETA[300] + TWO_THETA[305]) / 2)
    assert peaks.apexes[0] == pytest.approx(TWO_THETA[304])


def test_options_and_empty():
    pattern = _pattern({100: 5.0, 105: 8.0})
    assert len(find_peaks(pattern)) == 0
    assert len(find_peaks(np.zeros(N_POINTS))) == 0
    assert len(find_peaks(pattern, threshold=4.0)) == 1
    assert len(find_peaks(pattern, threshold=4.0, merge_within=0.5)) == 2
    short = find_peaks(np.array([0.0, 50.0, 0.0, 0.0]))  # bins of 45 degrees
    assert np.allclose(short.positions, [67.5])


@pytest.mark.parametrize("threshold, merge_within", [(10.0, 2.0), (5.0, 0.5), (30.0, 6.0), (9.99, 2.0)])
def test_peaks_of_rows_are_each_rows_peaks(threshold, merge_within):
    """Many patterns at once give each row the peaks find_peaks gives it alone, bit for bit: sparse and noisy rows,
    empty ones, peaks at either end of a row (where the next row starts), and a float32 point just below a threshold
    that float32 cannot hold."""
    rng = np.random.default_rng(0)
    sparse = np.where(rng.random((40, N_POINTS)) < 0.03, rng.uniform(0, 100, (40, N_POINTS)), 0)
    noisy = np.clip(sparse + rng.normal(0, 6, sparse.shape), 0, None)
    ends = np.zeros((4, N_POINTS))
    ends[0, -1], ends[1, 0], ends[2], ends[3, -3:], ends[3, 500] = 50, 50, 50, 40, np.float32(9.99)
    patterns = np.vstack([ends, sparse, np.zeros((2, N_POINTS)), noisy, ends]).astype(np.float32)
    positions, intensities, counts = find_peaks_of_rows(patterns, threshold, merge_within)
    assert len(counts) == len(patterns) and counts.sum() == len(positions) == len(intensities)
    starts = np.r_[0, np.cumsum(counts)]
    for i, pattern in enumerate(patterns):
        alone = find_peaks(pattern, threshold, merge_within)
        assert np.array_equal(positions[starts[i] : starts[i + 1]], alone.positions)
        assert np.array_equal(intensities[starts[i] : starts[i + 1]], alone.intensities)
    assert [len(a) for a in find_peaks_of_rows(np.zeros((3, N_POINTS)))] == [0, 0, 3]


def test_find_peaks_rejects_bad_input():
    with pytest.raises(ValueError, match="1-D"):
        find_peaks(np.zeros((2, N_POINTS)))
    with pytest.raises(ValueError, match="NaN"):
        find_peaks(_pattern({3: np.nan}))


def test_align_picks_the_largest_candidate():
    true = Peaks(np.array([30.0, 60.0, 90.0]), np.array([100.0, 50.0, 20.0]))
    pred = Peaks(np.array([29.0, 31.5, 61.0, 95.0]), np.array([40.0, 80.0, 10.0, 100.0]))
    assert align_peaks(pred, true).tolist() == [1, 2, -1]
    assert align_peaks(pred, true, tolerance=1.0).tolist() == [0, 2, -1]
    assert align_peaks(pred, true, tolerance=5.0).tolist() == [1, 2, 3]


def test_match_counts():
    true = Peaks(np.array([30.0, 60.0, 90.0]), np.ones(3))
    pred = Peaks(np.array([29.0, 31.5, 120.0]), np.ones(3))
    assert match_counts(pred, true) == (1, 2)
    assert match_counts(pred, true, tolerance=0.5) == (0, 0)


def test_align_and_count_with_no_peaks():
    empty = Peaks(np.zeros(0), np.zeros(0))
    some = Peaks(np.array([10.0, 20.0]), np.array([1.0, 2.0]))
    assert align_peaks(empty, some).tolist() == [-1, -1]
    assert align_peaks(some, empty).tolist() == []
    assert match_counts(empty, some) == (0, 0)
    assert match_counts(some, empty) == (0, 0)
    assert match_counts(empty, empty) == (0, 0)
