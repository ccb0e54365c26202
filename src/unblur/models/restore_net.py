"""A NAFNet-class restoration U-Net, written from the papers.

Chen, Chu, Zhang & Sun, "Simple Baselines for Image Restoration" (ECCV 2022):
blocks of layer norm, point-wise and depth-wise convolutions, a *simple gate*
(split channels in two halves and multiply them) instead of activations, and
*simplified channel attention* (global average pool, 1x1 conv, multiply); a
U-Net of such blocks with a global residual, so the network predicts the
correction to the blurred input.

Additions of ours, all optional:

* ``stem_stride=2`` folds 2x2 pixel blocks into channels before the first
  convolution (pixel unshuffle) and unfolds them at the end, which cuts the
  cost about 4x for a small loss at the finest scale: the fast model uses it.
* ``motion_channels > 0`` accepts a motion field (and confidence) as extra
  input channels, a hint from the motion estimator.

Tensors are (B, C, H, W) float in [0, 1]; any H and W work (the input is
padded to a multiple of the total downsampling and cropped back).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn


class LayerNorm2d(nn.Module):
    """Layer norm over the channel axis of a (B, C, H, W) tensor."""

    def __init__(self, channels: int, eps: float = 1e-6) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mean = x.mean(1, keepdim=True)
        var = (x - mean).pow(2).mean(1, keepdim=True)
        x = (x - mean) / torch.sqrt(var + self.eps)
        return x * self.weight[None, :, None, None] + self.bias[None, :, None, None]


class SimpleGate(nn.Module):
    """Split the channels in two halves and multiply them (NAFNet's non-linearity)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a, b = x.chunk(2, dim=1)
        return a * b


def box_mean(x: torch.Tensor, size: int) -> torch.Tensor:
    """Mean over a ``size`` x ``size`` window at every pixel (edges replicated), O(1) per pixel."""
    h, w = x.shape[-2:]
    ky, kx = min(size, h), min(size, w)
    top, left = (ky - 1) // 2, (kx - 1) // 2
    # summed-area table in float32 whatever the input: in fp16 it overflows and in
    # bf16 the differences of large sums lose all precision
    dtype = x.dtype
    x = F.pad(x.float(), (left + 1, kx - 1 - left, top + 1, ky - 1 - top), mode="replicate")
    c = x.cumsum(-1).cumsum(-2)
    total = c[..., ky:, kx:] - c[..., :-ky, kx:] - c[..., ky:, :-kx] + c[..., :-ky, :-kx]
    return (total / float(ky * kx)).to(dtype)


class ChannelAttention(nn.Module):
    """Simplified channel attention: pool, 1x1 conv, multiply.

    The pool is global while training. At test time on images larger than the
    training crops, ``pool_size`` switches it to a local window of about the
    training size (the "test-time local converter" of Chu et al. 2022), so
    statistics match training and tiles of a large image agree with the whole.
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 1)
        self.pool_size: int | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        if self.pool_size is not None and (h > self.pool_size or w > self.pool_size):
            pooled = box_mean(x, self.pool_size)
        else:
            pooled = x.mean((-2, -1), keepdim=True)
        return x * self.conv(pooled)


class NAFBlock(nn.Module):
    """Nonlinear-activation-free block: a gated depth-wise conv branch and a gated FFN."""

    def __init__(self, channels: int, expand: int = 2, ffn_expand: int = 2) -> None:
        super().__init__()
        hidden = channels * expand
        self.norm1 = LayerNorm2d(channels)
        self.conv1 = nn.Conv2d(channels, hidden, 1)
        self.conv2 = nn.Conv2d(hidden, hidden, 3, padding=1, groups=hidden)
        self.gate = SimpleGate()
        self.sca = ChannelAttention(hidden // 2)
        self.conv3 = nn.Conv2d(hidden // 2, channels, 1)
        ffn = channels * ffn_expand
        self.norm2 = LayerNorm2d(channels)
        self.conv4 = nn.Conv2d(channels, ffn, 1)
        self.conv5 = nn.Conv2d(ffn // 2, channels, 1)
        self.beta = nn.Parameter(torch.zeros(1, channels, 1, 1))
        self.gamma = nn.Parameter(torch.zeros(1, channels, 1, 1))

    def forward(self, inp: torch.Tensor) -> torch.Tensor:
        x = self.gate(self.conv2(self.conv1(self.norm1(inp))))
        x = self.conv3(self.sca(x))
        y = inp + x * self.beta
        x = self.conv5(self.gate(self.conv4(self.norm2(y))))
        return y + x * self.gamma


class NAFNet(nn.Module):
    """U-Net of NAF blocks with a global residual.

    Args:
        in_channels: image channels (3 for RGB).
        width: channels at the finest level; doubled at each downsampling.
        enc_blocks: NAF blocks per encoder level (its length is the number of levels).
        middle_blocks: NAF blocks at the coarsest level.
        dec_blocks: NAF blocks per decoder level, same length as ``enc_blocks``.
        stem_stride: 1, or 2 to work on 2x2-folded pixels (about 4x cheaper).
        motion_channels: extra input channels for a motion-field hint (0: none).

    Shape:
        - Input: (B, in_channels, H, W) and, if ``motion_channels``,
          motion (B, motion_channels, H, W).
        - Output: (B, in_channels, H, W).
    """

    def __init__(
        self,
        in_channels: int = 3,
        width: int = 16,
        enc_blocks: Sequence[int] = (1, 1, 1, 28),
        middle_blocks: int = 1,
        dec_blocks: Sequence[int] = (1, 1, 1, 1),
        stem_stride: int = 1,
        motion_channels: int = 0,
    ) -> None:
        super().__init__()
        if len(enc_blocks) != len(dec_blocks):
            raise ValueError(
                f"enc_blocks and dec_blocks need the same length, got {enc_blocks} and {dec_blocks}"
            )
        if stem_stride not in (1, 2):
            raise ValueError(f"stem_stride must be 1 or 2, got {stem_stride}")
        if width < 2 or width % 2:
            raise ValueError(f"width must be an even number >= 2, got {width}")
        self.in_channels = in_channels
        self.motion_channels = motion_channels
        self.stem_stride = stem_stride
        folded = (in_channels + motion_channels) * stem_stride**2
        self.intro = nn.Conv2d(folded, width, 3, padding=1)
        self.ending = nn.Conv2d(width, in_channels * stem_stride**2, 3, padding=1)
        self.encoders = nn.ModuleList()
        self.downs = nn.ModuleList()
        channels = width
        for n in enc_blocks:
            self.encoders.append(nn.Sequential(*[NAFBlock(channels) for _ in range(n)]))
            self.downs.append(nn.Conv2d(channels, 2 * channels, 2, stride=2))
            channels *= 2
        self.middle = nn.Sequential(*[NAFBlock(channels) for _ in range(middle_blocks)])
        self.ups = nn.ModuleList()
        self.decoders = nn.ModuleList()
        for n in dec_blocks:
            self.ups.append(
                nn.Sequential(nn.Conv2d(channels, channels * 2, 1, bias=False), nn.PixelShuffle(2))
            )
            channels //= 2
            self.decoders.append(nn.Sequential(*[NAFBlock(channels) for _ in range(n)]))
        self.multiple = stem_stride * 2 ** len(enc_blocks)
        self.local_pool: int | None = None

    def set_local_pool(self, size: int | None) -> None:
        """Use local channel-attention pooling over ``size`` input pixels (``None``: global).

        Set it to about 1.5x the training crop for inference on large images.
        """
        if size is not None and size < self.multiple:
            raise ValueError(f"local pool size must be >= {self.multiple}, got {size}")
        self.local_pool = size
        n = len(self.encoders)
        stages = [*zip(self.encoders, range(n), strict=True), (self.middle, n)]
        stages += list(zip(self.decoders, reversed(range(n)), strict=True))
        for stage, level in stages:
            pool = None if size is None else max(1, size // (self.stem_stride * 2**level))
            for block in stage:
                block.sca.pool_size = pool

    def forward(self, image: torch.Tensor, motion: torch.Tensor | None = None) -> torch.Tensor:
        if image.ndim != 4 or image.shape[1] != self.in_channels:
            raise ValueError(
                f"expected a (B, {self.in_channels}, H, W) image, got {tuple(image.shape)}"
            )
        if self.motion_channels:
            if motion is None or motion.shape[1] != self.motion_channels:
                raise ValueError(
                    f"this model needs a ({self.motion_channels}-channel) motion input"
                )
            if motion.shape[-2:] != image.shape[-2:]:
                raise ValueError("motion input must have the image's height and width")
        h, w = image.shape[-2:]
        pad_h, pad_w = (-h) % self.multiple, (-w) % self.multiple
        x = image if motion is None or not self.motion_channels else torch.cat([image, motion], 1)
        if pad_h or pad_w:
            mode = "reflect" if h > pad_h and w > pad_w else "replicate"
            x = F.pad(x, (0, pad_w, 0, pad_h), mode=mode)
        return self.forward_padded(x)[..., :h, :w]

    def forward_padded(self, x: torch.Tensor) -> torch.Tensor:
        """The network on input whose sides are multiples of :attr:`multiple`.

        ``x`` holds the image channels first, then any motion channels; the
        output is the image plus the predicted correction (global residual).
        """
        base = x[:, : self.in_channels]
        if self.stem_stride > 1:
            x = F.pixel_unshuffle(x, self.stem_stride)
        x = self.intro(x)
        skips = []
        for encoder, down in zip(self.encoders, self.downs, strict=True):
            x = encoder(x)
            skips.append(x)
            x = down(x)
        x = self.middle(x)
        for decoder, up, skip in zip(self.decoders, self.ups, reversed(skips), strict=True):
            x = decoder(up(x) + skip)
        x = self.ending(x)
        if self.stem_stride > 1:
            x = F.pixel_shuffle(x, self.stem_stride)
        return x + base
