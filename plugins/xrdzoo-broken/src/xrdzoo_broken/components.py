"""Components that import fine: a backbone whose factory always raises, and a loss whose name clashes."""

from __future__ import annotations

import torch
from torch import nn


def exploding_backbone(input_shape: tuple[int, ...], out_dim: int = 1024, **options) -> nn.Module:
    """A backbone that always fails to build."""
    raise RuntimeError("this backbone always fails to build")


class SumSquaredError(nn.Module):
    """Sum of squared errors per pattern, averaged over the batch (named mse to clash with xrdzoo's own)."""

    def forward(self, pred: torch.Tensor, true: torch.Tensor) -> torch.Tensor:
        return (pred - true).pow(2).sum(dim=1).mean()
