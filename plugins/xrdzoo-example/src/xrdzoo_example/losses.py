"""Loss ``huber``: squared error for small misses, absolute error for large ones."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F


class HuberLoss(nn.Module):
    """Huber loss: quadratic below ``delta``, linear above, so a few badly placed peaks do not dominate.

    Patterns are on the training scale (0..1), hence the small default ``delta``.
    """

    def __init__(self, delta: float = 0.05):
        super().__init__()
        if delta <= 0:
            raise ValueError(f"huber: delta must be positive, got {delta}")
        self.delta = delta

    def forward(self, pred: torch.Tensor, true: torch.Tensor) -> torch.Tensor:
        """Mean Huber loss over all points of ``(n, 1024)`` batches."""
        return F.huber_loss(pred, true, delta=self.delta)
