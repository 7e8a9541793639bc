"""Evaluation metrics on hand-made pattern pairs, peak scores and their edge cases, and ``evaluate``'s modes."""

from __future__ import annotations

import math

import numpy as np
import pytest

from xrdzoo import metrics, registry
from xrdzoo.xrd.pattern import TWO_THETA

DISTANCES = ["mse", "msle", "cosine", "pearson", "jsd", "dtw"]
PEAK_SCORES = ["peak_recall", "peak_precision", "peak_f1"]


def pattern(*peaks: tuple[float, float], width_deg: float = 0.15) -> np.ndarray:
    """A 1,024-point pattern with a narrow Gaussian of the given height at each (position in degrees, height),
    centred on the nearest bin so that its sampled maximum is the height."""
    out = np.zeros(len(TWO_THETA))
    for position, height in peaks:
        position = TWO_THETA[np.abs(TWO_THETA - position).argmin()]
        out += height * np.exp(-0.5 * ((TWO_THETA - position) / width_deg) ** 2)
    return out


def rows(*values) -> np.ndarray:
    """A (n, 1024) array whose row i is constant values[i], or the given 1-D rows."""
    return np.stack([np.full(len(TWO_THETA), v, float) if np.isscalar(v) else np.asarray(v, float) for v in values])


TRUE = pattern((20, 100), (40, 50), (60, 30))
PRED = pattern((21, 80), (45, 40), (60, 30), (100, 20))  # 40 degrees is missed by 5; 100 is extra


def test_mse_and_msle_by_hand():
    assert metrics.mse(rows(1, 0), rows(3, 0)).tolist() == [4.0, 0.0]
    assert metrics.msle(rows(math.e - 1, -5), rows(0, 0)) == pytest.approx([1.0, 0.0])  # below 0 counts as 0


def test_cosine_and_pearson_by_hand():
    one, both = np.zeros(1024), np.zeros(1024)
    one[0], both[:2] = 1, 1
    other = np.roll(one, 5)
    assert metrics.cosine(rows(one, one, one), rows(both, other, 3 * one)) == pytest.approx(
        [1 - 1 / math.sqrt(2), 1, 0])
    assert metrics.cosine(rows(0), rows(one)) == [1.0]  # an empty pattern is as far as it gets
    assert metrics.pearson(rows(2 * TRUE + 3, -TRUE, 7), rows(TRUE, TRUE, TRUE)) == pytest.approx([0, 2, 1])


def test_jsd_by_hand_in_bits():
    p, q = np.zeros(1024), np.zeros(1024)
    p[0] = 1
    q[:2] = 0.5
    m = np.array([0.75, 0.25])
    by_hand = 0.5 * math.log2(1 / 0.75) + 0.5 * (0.5 * math.log2(0.5 / m[0]) + 0.5 * math.log2(0.5 / m[1]))
    disjoint = np.roll(p, 100)
    assert metrics.jsd(rows(p, 10 * p, p, 0), rows(q, p, disjoint, p)) == pytest.approx([by_hand, 0, 1, 1])


def test_dtw_warps_a_shift_and_matches_tslearn():
    from tslearn.metrics import dtw as tslearn_dtw

    shifted = pattern((20.5, 100), (40, 50), (60, 30))
    assert metrics.dtw(rows(shifted), rows(TRUE))[0] < 0.05 * math.sqrt(metrics.mse(rows(shifted), rows(TRUE))[0])
    rng = np.random.default_rng(1)
    a, b = rng.random((3, 1024)) * 100, rng.random((3, 1024)) * 100
    expected = [tslearn_dtw(x / 100, y / 100) for x, y in zip(a, b)]
    assert metrics.dtw(a, b) == pytest.approx(expected)
    banded = [tslearn_dtw(x / 100, y / 100, global_constraint="sakoe_chiba", sakoe_chiba_radius=20) for x, y in zip(a, b)]
    assert metrics.dtw_distance(a, b, radius=20) == pytest.approx(banded)
    assert metrics.dtw_distance(a, b, radius=0) == pytest.approx(np.linalg.norm((a - b) / 100, axis=1))


def test_peak_scores_by_hand():
    recall, precision, f1 = metrics.peak_scores(rows(PRED), rows(TRUE))
    assert recall[0] == pytest.approx(2 / 3)  # 20 (by 21) and 60 are found, 40 is not
    assert precision[0] == pytest.approx(2 / 4)  # 21 and 60 are right, 45 and 100 are not
    assert f1[0] == pytest.approx(2 * (2 / 3) * (1 / 2) / (2 / 3 + 1 / 2))
    assert metrics.peak_recall(rows(PRED), rows(TRUE)) == recall
    assert metrics.peak_precision(rows(PRED), rows(TRUE)) == precision
    assert metrics.peak_f1(rows(PRED), rows(TRUE)) == f1


@pytest.mark.parametrize("pred, true, expected", [
    (rows(0), rows(TRUE), (0, 0, 0)),  # nothing predicted
    (rows(PRED), rows(5), (0, 0, 0)),  # peaks predicted where the truth has none (all below 10)
    (rows(9), rows(5), (1, 1, 1)),  # neither has a peak: agreement
])
def test_peak_scores_edge_cases(pred, true, expected):
    assert np.concatenate(metrics.peak_scores(pred, true)).tolist() == list(expected)


def test_peak_scores_of_many_pairs_are_each_pairs():
    """peak_scores picks and matches all pairs at once, as peak_pair_scores scores each pair alone, bit for bit:
    sparse and noisy patterns, empty ones on either side, peaks 2 degrees apart and at the ends of a row."""
    rng = np.random.default_rng(0)
    sparse = np.where(rng.random((60, 1024)) < 0.02, rng.uniform(0, 100, (60, 1024)), 0)
    noisy = np.clip(sparse[::-1] + rng.normal(0, 6, sparse.shape), 0, None)
    ends = np.zeros((3, 1024))
    ends[0, [0, -1]], ends[1, [500, 512]], ends[2, [-1]] = 50, 80, 30
    pred = np.vstack([sparse, np.zeros((2, 1024)), sparse[:2], ends])
    true = np.vstack([noisy, sparse[:2], np.zeros((2, 1024)), ends[::-1]])
    recall, precision, f1 = metrics.peak_scores(pred, true)
    each = np.array([metrics.peak_pair_scores(metrics.pick_peaks(p), metrics.pick_peaks(t)) for p, t in zip(pred, true)])
    assert recall.tolist() == each[:, 0].tolist() and precision.tolist() == each[:, 1].tolist()
    assert f1.tolist() == metrics.f1_score(each[:, 0], each[:, 1]).tolist() and 0 < f1[:60].mean() < 1


def test_aligned_vectors_by_hand():
    p_vec, t_vec = metrics.aligned_vectors(PRED, TRUE)
    # by 2-theta: 20 (true, matched by 21), 40 (true, unmatched), 45 (extra), 60 (matched), 100 (extra)
    assert t_vec == pytest.approx([100, 50, 0, 30, 0], abs=0.5)
    assert p_vec == pytest.approx([80, 0, 40, 30, 20], abs=0.5)


def test_evaluate_modes_by_hand():
    low = 3 * np.ones(1024)  # below the peak threshold everywhere: dropped in the peaks mode
    results = metrics.score_patterns(rows(PRED + low), rows(TRUE), metrics={"mse": metrics.mse}, progress=False)
    assert set(results) == {"mse/all", "mse/peaks", "mse/aligned"}
    assert results["mse/all"] == pytest.approx(metrics.mse(rows(PRED + low), rows(TRUE))[0])
    masked = [np.where(x >= 10, x, 0) for x in (PRED + low, TRUE)]  # both patterns lose their points below 10
    assert results["mse/peaks"] == pytest.approx(metrics.mse(rows(masked[0]), rows(masked[1]))[0])
    p_vec, t_vec = metrics.aligned_vectors(PRED + low, TRUE)
    assert results["mse/aligned"] == pytest.approx(np.mean((p_vec - t_vec) ** 2))


def test_evaluate_scores_the_default_metrics_and_each_declares_its_modes():
    rng = np.random.default_rng(0)
    true = np.stack([pattern(*zip(rng.uniform(10, 170, 5), rng.uniform(20, 100, 5))) for _ in range(4)])
    pred = np.stack([pattern(*zip(rng.uniform(10, 170, 5), rng.uniform(20, 100, 5))) for _ in range(4)])
    assert set(metrics.DEFAULT_METRICS) <= set(registry.list_names("metrics"))
    results = metrics.score_patterns(pred, true, progress=False)  # the default list, whatever plugins are installed
    modeless = {n for n in metrics.DEFAULT_METRICS if not metrics.takes_modes(registry.get("metrics", n))}
    assert modeless == set(PEAK_SCORES)
    assert set(results) == modeless | {f"{n}/{m}" for n in set(metrics.DEFAULT_METRICS) - modeless
                                       for m in metrics.MODES}
    assert all(np.isfinite(v) for v in results.values())
    perfect = metrics.score_patterns(true, true, metrics=DISTANCES + PEAK_SCORES, modes=("all",), progress=False)
    assert set(perfect) == {f"{n}/all" for n in DISTANCES} | set(PEAK_SCORES)
    assert all(perfect[f"{n}/all"] == pytest.approx(0, abs=1e-9) for n in DISTANCES)
    assert all(perfect[n] == 1 for n in PEAK_SCORES)


def test_bad_input_is_refused():
    with pytest.raises(ValueError, match="one shape"):
        metrics.pearson(rows(TRUE), rows(TRUE)[:, :512])
    with pytest.raises(ValueError, match="one shape"):
        metrics.mse(TRUE, TRUE)
    with pytest.raises(ValueError, match="unknown mode"):
        metrics.score_patterns(rows(TRUE), rows(TRUE), metrics=["mse"], modes=("all", "peak"), progress=False)
    with pytest.raises(ValueError, match="radius"):
        metrics.dtw_distance(rows(TRUE), rows(TRUE), radius=-1)
    with pytest.raises(ValueError, match="empty"):
        metrics.score_patterns(np.zeros((0, 1024)), np.zeros((0, 1024)), progress=False)
