"""Any timm image model as a backbone, e.g. ``timm/resnet18``: the encoded formula is the image."""

from __future__ import annotations

import math

import timm
import torch
from torch import nn

from xrdzoo.xrd.pattern import N_POINTS


class TimmBackbone(nn.Module):
    """A timm model (``timm/<variant>``, e.g. timm/resnet18) reading the encoding as an image; no pretrained weights.

    ``timm.create_model(variant, in_chans=C, num_classes=out_dim, **timm_kwargs)``. An image input ``(C, H, W)``
    is read as it is, a vector ``(L,)`` as a one-row image ``(1, 1, L)``. Each axis shorter than ``min_size``
    (default: the model's total stride, 32 for resnet18) is repeated a whole number of times (nearest
    upsampling) to reach it, so that no stage shrinks the map to nothing: ``(1, 10, 94)`` is seen as
    ``(1, 40, 94)``. Fixed-size models (ViTs) need their ``img_size`` in ``timm_kwargs`` and a ``min_size`` to
    match.
    """

    def __init__(self, input_shape: tuple[int, ...], out_dim: int = N_POINTS, variant: str = "resnet18",
                 pretrained: bool = False, min_size: int | None = None, **timm_kwargs):
        super().__init__()
        if pretrained:
            raise ValueError("pretrained timm weights cannot be fetched: xrdzoo builds timm models offline; "
                             "train from scratch (pretrained=False) or load an xrdzoo checkpoint")
        if len(input_shape) not in (1, 3):
            raise ValueError(f"timm backbones take inputs of shape (C, H, W) or (L,), got {tuple(input_shape)}")
        if not timm.is_model(variant):
            raise ValueError(f"timm has no model {variant!r}; see timm.list_models('{variant[:4]}*')")
        self.image_shape = (1, 1, input_shape[0]) if len(input_shape) == 1 else tuple(input_shape)
        self.model = timm.create_model(variant, pretrained=False, in_chans=self.image_shape[0],
                                       num_classes=out_dim, **timm_kwargs)
        if min_size is None:
            info = getattr(self.model, "feature_info", None)
            min_size = info[-1]["reduction"] if info else 32
        self.scale = tuple(math.ceil(min_size / size) for size in self.image_shape[1:])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.reshape(len(x), *self.image_shape)
        if self.scale != (1, 1):
            x = x.repeat_interleave(self.scale[0], dim=2).repeat_interleave(self.scale[1], dim=3)
        return self.model(x)
