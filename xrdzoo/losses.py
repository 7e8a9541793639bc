"""Training losses: ``nn.Module``s mapping predicted and true pattern batches ``(n, N_POINTS)`` to a scalar.

Targets are patterns divided by 100 (0..1). Each loss is the batch mean of a per-pattern distance
(:meth:`PatternLoss.distance`). MSE and MSLE depend on the scale; cosine, Pearson, smooth Pearson, Wasserstein
and soft-DTW compare shapes. Wasserstein and smooth Pearson are ours: they tolerate small peak shifts (see
docs/zoo.md, "Losses").
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from xrdzoo.xrd.pattern import TWO_THETA

BIN_WIDTH = float(TWO_THETA[1] - TWO_THETA[0])  # degrees of 2-theta per pattern point
EPS = 1e-8  # keeps the shape losses finite (and their gradients bounded) for flat or empty patterns


def _positive(name: str, value, kind=float):
    value = kind(value)
    if not value > 0:
        raise ValueError(f"{name} must be > 0, got {value}")
    return value


class PatternLoss(nn.Module):
    """Base class: checks the two batches and averages :meth:`distance` over the batch."""

    def distance(self, pred: torch.Tensor, true: torch.Tensor) -> torch.Tensor:
        """One distance per pattern pair, shape ``(n,)``."""
        raise NotImplementedError

    def forward(self, pred: torch.Tensor, true: torch.Tensor) -> torch.Tensor:
        if pred.ndim != 2 or pred.shape != true.shape:
            raise ValueError(f"a loss takes two (n, points) batches of one shape; got {tuple(pred.shape)} "
                             f"and {tuple(true.shape)}")
        return self.distance(pred, true).mean()


def _cosine_similarity(p: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Row-wise cosine similarity; 0 (not NaN) where a row is all zeros, with finite gradients there."""
    return (p * t).mean(1) / torch.sqrt(((p * p).mean(1) + EPS) * ((t * t).mean(1) + EPS))


def pearson_distance(p: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """1 - Pearson r per row: the cosine distance of the mean-centred rows (a flat row has r = 0)."""
    return 1 - _cosine_similarity(p - p.mean(1, keepdim=True), t - t.mean(1, keepdim=True))


class MSELoss(PatternLoss):
    """Mean squared error over the 1,024 points."""

    def distance(self, pred, true):
        return ((pred - true) ** 2).mean(1)


class MSLELoss(PatternLoss):
    """Mean squared error of log(1 + x); predictions below 0 count as 0 inside the log."""

    def distance(self, pred, true):
        return ((torch.log1p(pred.clamp(min=0)) - torch.log1p(true.clamp(min=0))) ** 2).mean(1)


class CosineLoss(PatternLoss):
    """Cosine distance: 1 - cosine similarity of the two patterns."""

    def distance(self, pred, true):
        return 1 - _cosine_similarity(pred, true)


class PearsonLoss(PatternLoss):
    """Pearson distance, 1 - Pearson r (the paper's default); a flat prediction scores 1 with finite gradients."""

    def distance(self, pred, true):
        return pearson_distance(pred, true)


class SmoothPearsonLoss(PatternLoss):
    """Pearson distance of the patterns blurred by a Gaussian (sigma in degrees): tolerates small peak shifts."""

    def __init__(self, sigma_deg: float = 1.0):
        super().__init__()
        self.sigma_deg = _positive("sigma_deg", sigma_deg)
        sigma = self.sigma_deg / BIN_WIDTH
        radius = math.ceil(4 * sigma)
        x = torch.arange(-radius, radius + 1, dtype=torch.float32)
        kernel = torch.exp(-0.5 * (x / sigma) ** 2)
        self.register_buffer("kernel", (kernel / kernel.sum()).view(1, 1, -1), persistent=False)

    def smooth(self, patterns: torch.Tensor) -> torch.Tensor:
        """The patterns convolved with the Gaussian kernel (end values repeated beyond the ends), same shape."""
        kernel = self.kernel.to(patterns)
        radius = kernel.shape[-1] // 2
        return F.conv1d(F.pad(patterns.unsqueeze(1), (radius, radius), mode="replicate"), kernel).squeeze(1)

    def distance(self, pred, true):
        return pearson_distance(self.smooth(pred), self.smooth(true))


class WassersteinLoss(PatternLoss):
    """1-D Wasserstein-1 (earth mover's) distance in degrees between the patterns normalised to unit mass.

    It is the L1 distance between the cumulative sums times the bin width, so moving a peak by d degrees costs
    d times its share of the mass. Predictions below 0 count as 0 (and get no gradient).
    """

    def distance(self, pred, true):
        p, t = pred.clamp(min=0), true.clamp(min=0)
        p = p / (p.sum(1, keepdim=True) + EPS)
        t = t / (t.sum(1, keepdim=True) + EPS)
        return (p.cumsum(1) - t.cumsum(1)).abs().sum(1) * BIN_WIDTH


class SoftDTWLoss(PatternLoss):
    """Soft-DTW divergence (tslearn) of the average-pooled patterns, optionally in a Sakoe-Chiba band.

    ``downsample`` points are averaged into one before the O(L^2) alignment (8: 1,024 -> 128 points of 1.4
    degrees); ``band_deg`` limits how far (degrees) the alignment may move a point; None means unconstrained.
    The divergence (soft-DTW(x, y) - (soft-DTW(x, x) + soft-DTW(y, y)) / 2) is 0 for identical patterns.
    """

    def __init__(self, gamma: float = 0.1, downsample: int = 8, band_deg: float | None = 20.0):
        super().__init__()
        from tslearn.metrics import SoftDTWLossPyTorch

        self.gamma = _positive("gamma", gamma)
        self.downsample = _positive("downsample", downsample, int)
        radius = None
        if band_deg is not None:
            radius = math.ceil(_positive("band_deg", band_deg) / (BIN_WIDTH * self.downsample))
        self.soft_dtw = SoftDTWLossPyTorch(gamma=self.gamma, normalize=True, sakoe_chiba_radius=radius,
                                           global_constraint=None if radius is None else "sakoe_chiba")

    def distance(self, pred, true):
        pool = lambda x: F.avg_pool1d(x.unsqueeze(1), self.downsample, ceil_mode=True).transpose(1, 2)
        return self.soft_dtw(pool(pred), pool(true))
