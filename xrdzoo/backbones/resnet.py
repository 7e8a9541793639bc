"""The paper's encoder-decoder ResNet (DeepXRD, Table 1) in four depths: resnet10, resnet15, resnet20, resnet25.

"ResNet layers" here are residual blocks. Six are Res block1s (two convolutions and a 1x1-convolution shortcut):
three in the encoder where the channels change (32->64, 64->128, 128->64) and three opening decoder stages (at
2x2, 16x16 and 32x32). The rest are Res block2s (two convolutions and an identity shortcut), placed per stage as
``STAGES`` lists; resnet20 is the paper's table block for block. The shallower and deeper versions take Res block2s
from / add them to the long middle stacks first (the encoder's 128-channel stack and the decoder's 4x4 and 8x8
stacks, about 3:2 encoder:decoder), and resnet10 also drops most single ones.

Kernels are 2x3 (rows x columns: the paper's "3x2", 3 along the element axis of the one-hot matrix and along the
2-theta rows of the 32x32 output). In a block the first convolution pads one row above and below and one column
each side (the map grows by one row), the second pads columns only (it shrinks back), so the pair sees a centred
3x5 window without the copy an asymmetric "same" padding costs; the stem and the final convolution pad "same"
(the extra row below). The encoder halves rows and columns three times by 2x2 ceil-mode max pooling (84x10 -> 42x5
-> 21x3 -> 11x2 as in the paper; a size-1 axis is left as it is), so it adapts to any input: an image ``(C, H, W)``
is read as it is, a vector ``(L,)`` as a one-row image ``(1, 1, L)``. The flattened map goes to a dense
128-vector, which the decoder upsamples (nearest) 1x1 -> 2 -> 4 -> 8 -> 16 -> 32x32; a final convolution to one
channel gives the 1,024 points. Activations are PReLU (one slope per channel); dropout sits between the two
convolutions of every block and before the dense layer. Like the paper there is no normalisation by default; the
last convolution of every residual branch starts at zero, so each block starts as its shortcut and the deep stack
trains from the first step. ``batchnorm=True`` adds batch normalisation after every convolution.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from xrdzoo.xrd.pattern import N_POINTS

KERNEL = (2, 3)
SAME = (1, 1, 0, 1)  # "same" padding for the 2x3 kernel: a column left and right, a row below
# Res block2s per stage: encoder (42x5 @ 64, 21x3 @ 128, 11x2 @ 64 for an 84x10 input),
# decoder (2x2 @ 128, 4x4 @ 128, 8x8 @ 128, 16x16 @ 64, 32x32 @ 64).
STAGES = {
    10: ((0, 2, 0), (0, 1, 1, 0, 0)),
    15: ((1, 3, 1), (0, 1, 1, 1, 1)),
    20: ((1, 5, 1), (1, 2, 2, 1, 1)),
    25: ((1, 8, 1), (1, 3, 3, 1, 1)),
}
CODE = 128  # the bottleneck vector
SIDE = 32  # the decoder's output map is SIDE x SIDE = 1,024 points


def _conv(c_in: int, c_out: int, padding: str | tuple[int, int], batchnorm: bool) -> nn.Sequential:
    """A 2x3 convolution (padding ``"same"`` or (rows, columns) on both sides), with batch norm if asked."""
    pad = [nn.ZeroPad2d(SAME)] if padding == "same" else []
    conv = nn.Conv2d(c_in, c_out, KERNEL, padding=0 if padding == "same" else padding, bias=not batchnorm)
    return nn.Sequential(*pad, conv, *([nn.BatchNorm2d(c_out)] if batchnorm else []))


class ResBlock(nn.Module):
    """Two 2x3 convolutions plus a shortcut: a 1x1 convolution (Res block1) or the identity (Res block2)."""

    def __init__(self, c_in: int, c_out: int, dropout: float, projection: bool, batchnorm: bool):
        super().__init__()
        self.body = nn.Sequential(_conv(c_in, c_out, (1, 1), batchnorm), nn.PReLU(c_out), nn.Dropout(dropout),
                                  _conv(c_out, c_out, (0, 1), batchnorm))
        self.shortcut = nn.Conv2d(c_in, c_out, 1) if projection else nn.Identity()
        self.act = nn.PReLU(c_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.body(x) + self.shortcut(x))


def _down(height: int, width: int) -> tuple[nn.Module, int, int]:
    """2x2 ceil-mode max pooling (an axis of size 1 is kept) and the map size after it."""
    kernel = (2 if height > 1 else 1, 2 if width > 1 else 1)
    return nn.MaxPool2d(kernel, ceil_mode=True), math.ceil(height / kernel[0]), math.ceil(width / kernel[1])


class DeepXRDResNet(nn.Module):
    """The paper's encoder-decoder ResNet; see the module docstring for the layout."""

    def __init__(self, input_shape: tuple[int, ...], out_dim: int = N_POINTS, depth: int = 20, dropout: float = 0.1,
                 width: int = 64, batchnorm: bool = False):
        super().__init__()
        if out_dim != SIDE * SIDE:
            raise ValueError(f"resnet backbones predict {SIDE * SIDE} points (a {SIDE}x{SIDE} map), not "
                             f"out_dim={out_dim}; use mlp or timm for other lengths")
        if not 0 <= dropout < 1:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        if width < 2 or width % 2:
            raise ValueError(f"width must be an even number >= 2 (the paper's 64), got {width}")
        if len(input_shape) not in (1, 3):
            raise ValueError(f"resnet takes inputs of shape (C, H, W) or (L,), got {tuple(input_shape)}")
        self.image_shape = (1, 1, input_shape[0]) if len(input_shape) == 1 else tuple(input_shape)
        encoder_stacks, decoder_stacks = STAGES[depth]
        half, wide = width // 2, width * 2

        def stack(c_in: int, c_out: int, opens: bool, repeats: int) -> list[nn.Module]:
            first = [ResBlock(c_in, c_out, dropout, projection=True, batchnorm=batchnorm)] if opens else []
            return first + [ResBlock(c_out, c_out, dropout, projection=False, batchnorm=batchnorm)
                            for _ in range(repeats)]

        channels, height, cols = self.image_shape
        layers: list[nn.Module] = [_conv(channels, half, "same", batchnorm), nn.PReLU(half)]
        for (c_in, c_out), repeats in zip(((half, width), (width, wide), (wide, width)), encoder_stacks):
            pool, height, cols = _down(height, cols)
            layers += [ResBlock(c_in, c_out, dropout, projection=True, batchnorm=batchnorm), pool]
            layers += stack(c_out, c_out, False, repeats)
        self.encoder = nn.Sequential(*layers, nn.Flatten(), nn.Dropout(dropout),
                                     nn.Linear(width * height * cols, CODE), nn.PReLU())

        layers, c_in = [], CODE
        for c_out, opens, repeats in zip((wide, wide, wide, width, width), (True, False, False, True, True),
                                         decoder_stacks):
            layers += [nn.Upsample(scale_factor=2, mode="nearest"), *stack(c_in, c_out, opens, repeats)]
            c_in = c_out
        self.decoder = nn.Sequential(*layers, _conv(c_in, 1, "same", batchnorm=False), nn.Flatten())

        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, a=0.25, nonlinearity="leaky_relu")  # PReLU starts at 0.25
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
            if isinstance(module, ResBlock):  # the branch's last weight (conv or norm) starts at zero
                nn.init.zeros_(module.body[-1][-1].weight)
        self.to(memory_format=torch.channels_last)  # about 15% faster convolutions on CPU

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.reshape(len(x), *self.image_shape).contiguous(memory_format=torch.channels_last)
        return self.decoder(self.encoder(x).reshape(len(x), CODE, 1, 1))


def _factory(depth: int):
    def build(input_shape: tuple[int, ...], out_dim: int = N_POINTS, dropout: float = 0.1, width: int = 64,
              batchnorm: bool = False) -> DeepXRDResNet:
        return DeepXRDResNet(input_shape, out_dim, depth=depth, dropout=dropout, width=width, batchnorm=batchnorm)

    encoder_blocks, decoder_blocks = (3 + sum(s) for s in STAGES[depth])
    build.__name__ = build.__qualname__ = f"resnet{depth}"
    build.__doc__ = (f"The paper's encoder-decoder ResNet with {depth} residual blocks ({encoder_blocks} encoder, "
                     f"{decoder_blocks} decoder); options: dropout (0.1), width (64), batchnorm (false).")
    return build


resnet10, resnet15, resnet20, resnet25 = (_factory(depth) for depth in STAGES)
