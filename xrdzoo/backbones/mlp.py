"""A multilayer perceptron on the flattened encoding."""

from __future__ import annotations

import math

import torch
from torch import nn

from xrdzoo.xrd.pattern import N_POINTS


class MLP(nn.Module):
    """Dense layers on the flattened encoding; options: hidden sizes ((512, 512)), dropout (0.1).

    Each hidden layer is Linear -> GELU -> Dropout; a last Linear gives the ``out_dim`` points.
    """

    def __init__(self, input_shape: tuple[int, ...], out_dim: int = N_POINTS, hidden: tuple[int, ...] = (512, 512),
                 dropout: float = 0.1):
        super().__init__()
        hidden = (hidden,) if isinstance(hidden, int) else tuple(hidden)
        if any(isinstance(h, bool) or not isinstance(h, int) or h < 1 for h in hidden):
            raise ValueError(f"hidden must be positive layer sizes such as [512, 512], got {list(hidden)}")
        if not 0 <= dropout < 1:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        sizes = (math.prod(input_shape), *hidden)
        layers: list[nn.Module] = [nn.Flatten()]
        for n_in, n_out in zip(sizes, sizes[1:]):
            layers += [nn.Linear(n_in, n_out), nn.GELU(), nn.Dropout(dropout)]
        self.net = nn.Sequential(*layers, nn.Linear(sizes[-1], out_dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)
