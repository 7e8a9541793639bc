"""Components that import fine but break their contracts: a backbone whose factory always raises, a loss whose name
clashes, an encoder factory that returns the wrong thing, an entry point that names a number, a weights provider that
returns dicts, and one that raises SystemExit."""

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


def not_an_encoder(**options) -> str:
    """An encoder factory that returns a string instead of an encoder."""
    return "not an encoder"


NOT_CALLABLE = 42  # a metric entry point that names a number


def dict_weights() -> list[dict]:
    """A weights provider that returns dicts instead of xrdzoo.hub.WeightConfig objects."""
    return [{"name": "dicts.broken", "sha256": "0" * 64}]


def exiting_weights() -> list:
    """A weights provider that calls sys.exit."""
    raise SystemExit("exiting_weights gives up")
