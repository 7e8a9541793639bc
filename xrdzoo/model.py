"""The model: an encoder and a backbone as one module that turns formulas into XRD patterns."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from xrdzoo.contracts import Answers
from xrdzoo.errors import InputError, at_least_one
from xrdzoo.xrd.pattern import N_POINTS, full_scale  # every backbone predicts the N_POINTS bins

PRECISIONS = ("float32", "bfloat16")


def check_precision(precision: str) -> str:
    """``precision`` itself if it is one of :data:`PRECISIONS`, else a one-line ``ValueError``."""
    if precision not in PRECISIONS:
        raise InputError(f"precision {precision!r} is not one of {', '.join(PRECISIONS)}")
    return precision


def autocast(device_type: str, precision: str) -> torch.autocast:
    """The autocast context for ``precision``: bfloat16 autocast, or a no-op for float32."""
    return torch.autocast(device_type, dtype=torch.bfloat16, enabled=check_precision(precision) == "bfloat16")


class XRDModel(nn.Module):
    """Formulas in, 1,024-point XRD patterns out: ``encoder`` makes tensors, ``backbone`` maps them to patterns.

    ``config`` holds everything needed to rebuild the model with :func:`create_model` (see ``xrdzoo.load``).
    """

    def __init__(self, encoder: Any, backbone: nn.Module, config: dict):
        super().__init__()
        self.encoder = encoder
        self.backbone = backbone
        self.config = config

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        """Raw backbone output for encoded inputs, on the training scale (patterns / 100)."""
        return self.backbone(inputs)

    def encode(self, formulas: Sequence[str]) -> tuple[torch.Tensor, list[int], dict[str, str]]:
        """The one encode path: the encoded formulas the encoder can take, their indices, and the reason for each it
        cannot. One batch call when every formula is fine, one call per formula otherwise."""
        try:
            return self.encoder.encode(formulas), list(range(len(formulas))), {}
        except ValueError:
            pass
        rows, keep, errors = [], [], {}
        for i, formula in enumerate(formulas):
            try:
                rows.append(self.encoder.encode([formula]))
                keep.append(i)
            except ValueError as error:
                errors[formula] = str(error)
        return (torch.cat(rows) if rows else torch.zeros(0, *self.encoder.shape)), keep, errors

    def answer(self, formulas: Sequence[str], batch_size: int = 64, precision: str = "float32",
               top: int = 1) -> Answers:
        """The patterns of the formulas the encoder can take, and why it refused the others (one encoding pass);
        a network gives one answer per formula whatever ``top`` asks, and says so in ``how``."""
        at_least_one(top, "top")
        inputs, kept, refused = self.encode(formulas)
        how = f"network {self.config['encoder']} + {self.config['backbone']}, from the formula alone" + (
            f" (a network gives one answer; {top} were asked)" if top > 1 else "")
        return Answers(kept, refused, self.predict_encoded(inputs, batch_size, precision), [how] * len(kept))

    def predict(self, formulas: Sequence[str], batch_size: int = 64, precision: str = "float32") -> np.ndarray:
        """Predicted patterns, shape ``(n, N_POINTS)``, negative values clipped and the largest scaled to 100; raises
        ``EncodingError`` for a formula the encoder cannot take (:meth:`answer` reports it instead).

        ``precision="bfloat16"`` runs the backbone under bfloat16 autocast, faster on CPUs with AVX-512 BF16
        or AMX; docs/benchmarks.md has the measured speed and what it costs in accuracy.
        """
        at_least_one(batch_size, "batch_size")
        batches = [self.predict_encoded(self.encoder.encode(formulas[i : i + batch_size]), batch_size, precision)
                   for i in range(0, len(formulas), batch_size)]
        return np.concatenate(batches) if batches else np.empty((0, N_POINTS), np.float32)

    @torch.inference_mode()
    def predict_encoded(self, inputs: torch.Tensor, batch_size: int = 64, precision: str = "float32") -> np.ndarray:
        """Like :meth:`predict` for inputs already encoded by ``self.encoder``."""
        at_least_one(batch_size, "batch_size")
        self.eval()
        device = next(itertools.chain(self.parameters(), self.buffers()), torch.empty(0)).device
        with autocast(device.type, precision):
            out = [self(inputs[i : i + batch_size].to(device)).float().cpu()
                   for i in range(0, len(inputs), batch_size)]
        raw = torch.cat(out).numpy() if out else np.zeros((0, N_POINTS), np.float32)
        return full_scale(np.clip(raw, 0, None))  # negative values clipped, the largest scaled to 100
