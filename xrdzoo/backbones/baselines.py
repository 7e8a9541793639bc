"""Baselines fitted rather than trained: the mean training pattern and nearest-neighbour retrieval.

What they learn lives in buffers, so a checkpoint saves it; buffers take the size of the tensors a
``load_state_dict`` gives them (a fresh module does not know how many training rows there were).
"""

from __future__ import annotations

import math

import torch

from xrdzoo.buffers import ResizableBuffers
from xrdzoo.xrd.pattern import N_POINTS


class _Fitted(ResizableBuffers):
    """A module whose buffers are set by ``fit`` and resize themselves when a state dict is loaded."""

    def _check(self, inputs: torch.Tensor, targets: torch.Tensor) -> None:
        if len(inputs) != len(targets) or len(inputs) == 0:
            raise ValueError(f"fit needs as many inputs as targets, at least one: got {len(inputs)} and "
                             f"{len(targets)}")
        if targets.shape[1:] != (self.out_dim,):
            raise ValueError(f"fit targets must have shape (n, {self.out_dim}), got {tuple(targets.shape)}")


class MeanPattern(_Fitted):
    """The training set's mean pattern for every formula: the floor any model must beat."""

    def __init__(self, input_shape: tuple[int, ...], out_dim: int = N_POINTS):
        super().__init__()
        self.out_dim = out_dim
        self.register_buffer("mean", torch.zeros(out_dim))

    def fit(self, inputs: torch.Tensor, targets: torch.Tensor) -> None:
        """Store the mean of ``targets`` (n, out_dim)."""
        self._check(inputs, targets)
        self.mean = targets.detach().to(self.mean).mean(dim=0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.mean.repeat(len(x), 1)


class NearestNeighbours(_Fitted):
    """The pattern of the nearest training formula (Euclidean distance between encodings); options: k, weighted.

    ``k=1`` copies the nearest formula's pattern; ``k>1`` averages the k nearest, with ``weighted=True``
    weighted by inverse distance (an exact match then dominates). The training encodings and patterns are
    buffers, so the checkpoint holds them all.
    """

    def __init__(self, input_shape: tuple[int, ...], out_dim: int = N_POINTS, k: int = 1, weighted: bool = False,
                 chunk_elements: int = 1 << 24):
        super().__init__()
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            raise ValueError(f"k must be a positive integer, got {k!r}")
        self.out_dim, self.k, self.weighted, self.chunk_elements = out_dim, k, weighted, chunk_elements
        self.register_buffer("references", torch.zeros(0, math.prod(input_shape)))
        self.register_buffer("patterns", torch.zeros(0, out_dim))

    def fit(self, inputs: torch.Tensor, targets: torch.Tensor) -> None:
        """Store the flattened ``inputs`` and their ``targets`` (n, out_dim)."""
        self._check(inputs, targets)
        self.references = inputs.detach().reshape(len(inputs), -1).to(self.references)
        self.patterns = targets.detach().to(self.patterns)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if len(self.references) == 0:
            raise RuntimeError("the knn baseline is not fitted: call fit(inputs, targets) first (xrdzoo train does)")
        queries = x.reshape(len(x), -1).to(self.references)
        k = min(self.k, len(self.references))
        step = max(1, self.chunk_elements // len(self.references))  # bounds the distance matrix's memory
        norms = self.references.square().sum(dim=1)
        out = []
        for chunk in queries.split(step):
            # squared distance less the query's own norm: |r|^2 - 2 q.r ranks the references like |q - r|^2
            partial, index = torch.addmm(norms, chunk, self.references.T, alpha=-2).topk(k, dim=1, largest=False)
            distance = (partial + chunk.square().sum(dim=1, keepdim=True)).clamp(min=0).sqrt()
            weights = 1.0 / (distance + 1e-8) if self.weighted else torch.ones_like(distance)
            weights = weights / weights.sum(dim=1, keepdim=True)
            out.append(torch.einsum("qk,qkp->qp", weights, self.patterns[index]))
        return torch.cat(out) if out else queries.new_zeros(0, self.out_dim)
