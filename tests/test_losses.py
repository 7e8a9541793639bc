"""Training losses: zero for identical patterns, finite gradients, shift tolerance of our own losses."""

from __future__ import annotations

import pytest
import torch

from xrdzoo import losses, registry
from xrdzoo.xrd.pattern import TWO_THETA

ALL = ["mse", "msle", "cosine", "pearson", "softdtw", "wasserstein", "smooth_pearson"]


def peaks_at(*centres_deg: float, width_deg: float = 0.2) -> torch.Tensor:
    """One pattern (0..1 scale) with a Gaussian peak of height 1 at each centre."""
    x = torch.as_tensor(TWO_THETA, dtype=torch.float32)
    return sum(torch.exp(-0.5 * ((x - c) / width_deg) ** 2) for c in centres_deg)


@pytest.fixture(scope="module")
def batch() -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    true = torch.stack([peaks_at(*(torch.rand(6, generator=generator) * 150 + 15).tolist()) for _ in range(4)])
    pred = torch.stack([peaks_at(*(torch.rand(6, generator=generator) * 150 + 15).tolist()) for _ in range(4)])
    return pred, true


@pytest.mark.parametrize("name", ALL)
def test_zero_for_identical_and_larger_for_different(name, batch):
    loss = registry.create("losses", name)
    pred, true = batch
    same, different = float(loss(true, true)), float(loss(pred, true))
    assert abs(same) < 1e-4
    assert different > same + 0.01


@pytest.mark.parametrize("name", ALL)
def test_gradients_are_finite(name, batch):
    loss = registry.create("losses", name)
    pred, true = batch
    pred = (pred + 0.05).requires_grad_()
    value = loss(pred, true)
    value.backward()
    assert value.ndim == 0 and torch.isfinite(value)
    assert torch.isfinite(pred.grad).all() and pred.grad.abs().sum() > 0


@pytest.mark.parametrize("name, level", [("cosine", 0.0), ("pearson", 0.0), ("pearson", 0.3),
                                         ("smooth_pearson", 0.0), ("smooth_pearson", 0.3)])
def test_flat_predictions_score_one_with_finite_gradients(name, level, batch):
    loss = registry.create("losses", name)
    pred = torch.full_like(batch[1], level, requires_grad=True)
    value = loss(pred, batch[1])
    value.backward()
    assert torch.isfinite(pred.grad).all() and pred.grad.abs().sum() > 0
    assert float(value.detach()) == pytest.approx(1.0, abs=1e-3)  # no similarity with an empty or flat pattern


def test_pearson_ignores_scale_and_offset_but_mse_does_not(batch):
    true = batch[1]
    assert float(losses.PearsonLoss()(3 * true + 0.2, true)) < 1e-5
    assert float(losses.CosineLoss()(3 * true, true)) < 1e-5
    assert float(losses.MSELoss()(3 * true, true)) > 0.01


def test_msle_counts_negative_predictions_as_zero(batch):
    true = batch[1]
    assert float(losses.MSLELoss()(-torch.ones_like(true), true)) == pytest.approx(
        float(losses.MSLELoss()(torch.zeros_like(true), true)))


def test_wasserstein_is_the_shift_in_degrees():
    true = peaks_at(60.0).unsqueeze(0)
    for shift in (0.5, 1.0, 3.0):
        moved = peaks_at(60.0 + shift).unsqueeze(0)
        assert float(losses.WassersteinLoss()(moved, true)) == pytest.approx(shift, rel=0.02)


def test_shift_tolerant_losses_grow_with_the_shift_while_mse_saturates():
    true = peaks_at(60.0).unsqueeze(0)
    shifts = [0.25, 0.5, 1.0, 2.0, 4.0]
    values = {name: [float(registry.create("losses", name)(peaks_at(60.0 + s).unsqueeze(0), true)) for s in shifts]
              for name in ("mse", "pearson", "wasserstein", "smooth_pearson")}
    for name in ("wasserstein", "smooth_pearson"):
        assert all(b > a for a, b in zip(values[name], values[name][1:])), (name, values[name])
    for name in ("mse", "pearson"):  # once the peaks no longer overlap, a larger shift costs nothing more
        assert values[name][-1] == pytest.approx(values[name][-2], rel=0.01), (name, values[name])
    # at a 1 degree shift mse/pearson already see no overlap; smooth pearson still sees most of it
    assert values["smooth_pearson"][2] < 0.5 * values["pearson"][2]


def test_smooth_keeps_mass_and_shape():
    loss = losses.SmoothPearsonLoss(sigma_deg=1.0)
    pattern = peaks_at(90.0).unsqueeze(0)
    smoothed = loss.smooth(pattern)
    assert smoothed.shape == pattern.shape
    assert float(smoothed.sum()) == pytest.approx(float(pattern.sum()), rel=1e-4)
    assert float(smoothed.max()) < float(pattern.max())


def test_softdtw_band_and_downsampling_options(batch):
    pred, true = batch
    banded = losses.SoftDTWLoss(band_deg=5.0, downsample=4)
    free = losses.SoftDTWLoss(band_deg=None, downsample=4)
    assert banded.soft_dtw.sakoe_chiba_radius == 8  # 5 degrees / (4 points of 180/1024 degrees), rounded up
    assert float(free(pred, true)) <= float(banded(pred, true)) + 1e-4  # a band only removes alignment paths


@pytest.mark.parametrize("factory, options", [(losses.SmoothPearsonLoss, {"sigma_deg": 0}),
                                              (losses.SoftDTWLoss, {"gamma": -1}),
                                              (losses.SoftDTWLoss, {"downsample": 0}),
                                              (losses.SoftDTWLoss, {"band_deg": 0})])
def test_bad_options_are_refused(factory, options):
    with pytest.raises(ValueError, match="must be > 0"):
        factory(**options)


def test_mismatched_batches_are_refused(batch):
    pred, true = batch
    with pytest.raises(ValueError, match="same shape|one shape"):
        losses.PearsonLoss()(pred[:, :512], true)
    with pytest.raises(ValueError, match="one shape"):
        losses.MSELoss()(pred[0], true[0])
