"""Backbone ``conv1d``: a small 1-D convolutional decoder that takes inputs of any shape."""

from __future__ import annotations

import math

import torch
from torch import nn


class Conv1dDecoder(nn.Module):
    """1-D conv decoder: a linear map to a short sequence, then upsample-and-convolve stages up to the pattern.

    Any ``input_shape`` works: the input is flattened first. Each of the ``stages`` doubles the sequence length,
    so the linear layer makes ``ceil(out_dim / 2**stages)`` points of ``channels`` channels.
    """

    def __init__(self, input_shape: tuple[int, ...], out_dim: int = 1024, channels: int = 64, stages: int = 4,
                 kernel_size: int = 5, dropout: float = 0.1):
        super().__init__()
        if not input_shape or min(input_shape) < 1 or out_dim < 1:
            raise ValueError(f"conv1d: input_shape {tuple(input_shape)} and out_dim {out_dim} must be positive")
        if channels < 1 or stages < 0 or kernel_size % 2 == 0:
            raise ValueError("conv1d: channels must be >= 1, stages >= 0 and kernel_size odd")
        self.out_dim, self.channels = out_dim, channels
        self.length = math.ceil(out_dim / 2**stages)
        self.project = nn.Sequential(nn.Flatten(), nn.Dropout(dropout),
                                     nn.Linear(math.prod(input_shape), channels * self.length), nn.GELU())
        layers: list[nn.Module] = []
        for _ in range(stages):
            layers += [nn.Upsample(scale_factor=2, mode="linear"),
                       nn.Conv1d(channels, channels, kernel_size, padding=kernel_size // 2),
                       nn.BatchNorm1d(channels), nn.GELU()]
        layers.append(nn.Conv1d(channels, 1, kernel_size, padding=kernel_size // 2))
        self.decode = nn.Sequential(*layers)

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        """``(n, *input_shape)`` to ``(n, out_dim)``."""
        hidden = self.project(inputs).view(len(inputs), self.channels, self.length)
        return self.decode(hidden).squeeze(1)[:, : self.out_dim]
