"""MotionNet: a fully convolutional CNN that predicts the per-pixel blur motion field.

Input: one blurred RGB image in ``[0, 1]`` (``in_frames=1``) or a blurred frame with its two
neighbours (``in_frames=3``: previous, current, next, plus the two difference images, which
carry the frame-to-frame motion). Output: a motion field at a quarter of the input
resolution, upsampled bilinearly to full size by :meth:`MotionNet.field` (blur fields are
smooth except at object edges, and a quarter-resolution head is 16x cheaper).

Sign ambiguity: a streak looks the same traversed either way, so ``v`` and ``-v`` are the same
blur. The network never sees a signed vector. Both heads work with the **doubled-angle
vector** ``m = L (cos 2a, sin 2a)`` (``L`` the length, ``a`` the direction with ``y`` up),
which is the same for ``v`` and ``-v`` and continuous everywhere, including through vertical
motion (where a canonical ``dx >= 0`` vector jumps):

* ``"regress"`` (direct regression, as Gong et al. 2017 but on ``m``): four channels, ``m / 10``,
  the length ``L / 10`` (how blurred, a direction-free quantity that is learnt first and
  bootstraps the features) and the log of a Laplace scale ``b``, trained by L1 losses plus the
  Laplace negative log-likelihood of the (detached) error; ``b`` is the network's own
  estimate of its error, so it gives the confidence. The direction is decoded from ``m``,
  the length from the length channel.
* ``"classify"`` (Sun et al. 2015): a softmax over ``1 + n_len * n_angle`` classes, "no blur"
  plus (length, angle) bins, trained with soft labels spread bilinearly over the neighbouring
  bins (angles wrap around at 180 degrees); decoded as the probability-weighted mean of the
  classes' ``m`` vectors and lengths, confidence the probability mass near that estimate.
  :meth:`MotionNet.field` can instead take the length from the length posteriors of the
  image and of shrunk copies of it (:meth:`MotionNet.multiscale_length`).

References:
    J. Sun, W. Cao, Z. Xu, J. Ponce. Learning a convolutional neural network for non-uniform
    motion blur removal. CVPR 2015.

    D. Gong, J. Yang, L. Liu, Y. Zhang, I. Reid, C. Shen, A. van den Hengel, Q. Shi. From
    motion blur to motion flow: a deep learning solution for removing heterogeneous motion
    blur. CVPR 2017.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["MotionNet", "doubled_to_vector", "vector_to_doubled"]

#: The regression head predicts ``m / SCALE`` so that its outputs are of order one.
SCALE = 10.0
#: Multi-scale length fusion (:meth:`MotionNet.multiscale_length`): the floor added to each
#: scale's length probabilities, and the shortest side of a shrunk image that is still used.
FUSION_FLOOR = 1e-4
MIN_FUSION_SIDE = 96


def vector_to_doubled(field: torch.Tensor) -> torch.Tensor:
    """``(B, 2, H, W)`` motion ``(dx, dy)`` (``y`` down) -> doubled-angle ``(B, 2, H, W)``.

    ``m = L (cos 2a, sin 2a)`` with ``a = atan2(-dy, dx)``; ``v`` and ``-v`` give the same ``m``.
    In components: ``m = ((dx^2 - dy^2) / L, -2 dx dy / L)``.
    """
    dx, dy = field[:, 0], field[:, 1]
    length = torch.sqrt(dx * dx + dy * dy).clamp_min(1e-6)
    return torch.stack(((dx * dx - dy * dy) / length, -2.0 * dx * dy / length), dim=1)


def doubled_to_vector(doubled: torch.Tensor, length: torch.Tensor | None = None) -> torch.Tensor:
    """Doubled-angle ``(B, 2, H, W)`` -> canonical motion ``(dx, dy)`` (``dx >= 0``).

    Args:
        doubled: ``m`` vectors; their direction gives the angle.
        length: ``(B, 1, H, W)`` lengths; default ``|m|``.
    """
    angle = 0.5 * torch.atan2(doubled[:, 1], doubled[:, 0])  # (-90, 90] degrees, y up
    if length is None:
        length = torch.linalg.vector_norm(doubled, dim=1, keepdim=True)
    dx = length[:, 0] * torch.cos(angle)
    dy = -length[:, 0] * torch.sin(angle)
    return torch.stack((dx, dy), dim=1)


class _Block(nn.Module):
    """Batch-normalised 3x3 convolution, GELU, 3x3 convolution, residual connection."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.norm = nn.BatchNorm2d(channels)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1)
        nn.init.zeros_(self.conv2.weight)
        nn.init.zeros_(self.conv2.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv2(F.gelu(self.norm(self.conv1(x))))


def _conv_bn(c_in: int, c_out: int, kernel: int, stride: int = 1) -> nn.Sequential:
    padding = kernel // 2 if stride == 1 else 0
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, kernel, stride=stride, padding=padding, bias=False),
        nn.BatchNorm2d(c_out),
    )


class MotionNet(nn.Module):
    """Blur motion field estimator (see the module docstring).

    Args:
        in_frames: 1 (single image) or 3 (previous, current, next frame).
        width: channels at half resolution; then ``2x``, ``3x``, ``4x`` at 1/4, 1/8, 1/16.
        head: ``"regress"`` or ``"classify"``.
        max_length: longest motion the classify head can express, in pixels.
        length_bins: length bins of the classify head (``"no blur"`` is a separate class).
        angle_bins: angle bins over 180 degrees of the classify head.

    Shape:
        - Input: ``(B, 3, H, W)`` or ``(B, 9, H, W)`` (three RGB frames), values in ``[0, 1]``.
        - Output of :meth:`forward`: raw head at ``(H / 4, W / 4)`` (sizes padded up to a
          multiple of 16): ``(B, 4, ...)`` or ``(B, 1 + length_bins * angle_bins, ...)``.
        - Output of :meth:`field`: ``(B, 2, H, W)`` canonical ``(dx, dy)`` in pixels and
          ``(B, 1, H, W)`` confidence in ``[0, 1]``.
    """

    multiple = 16

    def __init__(
        self,
        *,
        in_frames: int = 1,
        width: int = 24,
        head: str = "regress",
        max_length: float = 40.0,
        length_bins: int = 16,
        angle_bins: int = 12,
    ) -> None:
        super().__init__()
        if in_frames not in (1, 3):
            raise ValueError(f"in_frames must be 1 or 3, got {in_frames}")
        if head not in ("regress", "classify"):
            raise ValueError(f"head must be 'regress' or 'classify', got {head!r}")
        self.in_frames = in_frames
        self.head_kind = head
        self.max_length = float(max_length)
        self.length_bins = int(length_bins)
        self.angle_bins = int(angle_bins)
        in_ch = 3 if in_frames == 1 else 15  # 3 frames + 2 differences
        w1, w2, w3, w4 = width, 2 * width, 3 * width, 4 * width
        self.stem = nn.Sequential(nn.PixelUnshuffle(2), _conv_bn(4 * in_ch, w1, 3))
        self.enc1 = _Block(w1)
        self.down2 = _conv_bn(w1, w2, 2, stride=2)
        self.enc2 = _Block(w2)
        self.down3 = _conv_bn(w2, w3, 2, stride=2)
        self.enc3 = _Block(w3)
        self.down4 = _conv_bn(w3, w4, 2, stride=2)
        self.mid = nn.Sequential(_Block(w4), _Block(w4))
        self.fuse3 = _conv_bn(w4 + w3, w3, 3)
        self.dec3 = _Block(w3)
        self.fuse2 = _conv_bn(w3 + w2, w2, 3)
        self.dec2 = _Block(w2)
        out_ch = 4 if head == "regress" else 1 + self.length_bins * self.angle_bins
        self.out = nn.Conv2d(w2, out_ch, 1)
        self._init_weights()

    def _init_weights(self) -> None:
        """He initialisation, so that the signal keeps its size through the plain conv stack.

        (PyTorch's default shrinks the variance by about 3x per layer; with no normalisation
        layers the image then barely reaches the head and training stalls at the mean.)
        The second convolution of each residual block stays zero: blocks start as identities.
        """
        zero = {id(m.conv2) for m in self.modules() if isinstance(m, _Block)}
        for m in self.modules():
            if isinstance(m, nn.Conv2d) and id(m) not in zero:
                nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
        nn.init.normal_(self.out.weight, std=1e-3)

    # -- raw network ---------------------------------------------------------------------

    def _inputs(self, x: torch.Tensor) -> torch.Tensor:
        expected = 3 * self.in_frames
        if x.ndim != 4 or x.shape[1] != expected:
            raise ValueError(f"expected a (B, {expected}, H, W) tensor, got {tuple(x.shape)}")
        x = x - 0.5
        if self.in_frames == 3:
            prev, cur, nxt = x[:, 0:3], x[:, 3:6], x[:, 6:9]
            x = torch.cat((prev, cur, nxt, nxt - cur, cur - prev), dim=1)
        return x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Raw head output at a quarter of the (padded) input size."""
        x = self._inputs(x)
        h, w = x.shape[-2:]
        ph, pw = (-h) % self.multiple, (-w) % self.multiple
        if ph or pw:
            x = F.pad(x, (0, pw, 0, ph), mode="reflect" if min(h, w) > max(ph, pw) else "replicate")
        e1 = self.enc1(F.gelu(self.stem(x)))
        e2 = self.enc2(F.gelu(self.down2(e1)))
        e3 = self.enc3(F.gelu(self.down3(e2)))
        m = self.mid(F.gelu(self.down4(e3)))
        d3 = F.interpolate(m, size=e3.shape[-2:], mode="bilinear", align_corners=False)
        d3 = self.dec3(F.gelu(self.fuse3(torch.cat((d3, e3), dim=1))))
        d2 = F.interpolate(d3, size=e2.shape[-2:], mode="bilinear", align_corners=False)
        d2 = self.dec2(F.gelu(self.fuse2(torch.cat((d2, e2), dim=1))))
        return self.out(d2)

    # -- classify head geometry ----------------------------------------------------------

    def class_lengths(self) -> torch.Tensor:
        """Length of each class (``0`` for "no blur"), ``(1 + n_len * n_angle,)``."""
        step = self.max_length / self.length_bins
        lengths = torch.arange(1, self.length_bins + 1, dtype=torch.float32) * step
        return torch.cat((torch.zeros(1), lengths.repeat_interleave(self.angle_bins)))

    def class_doubled(self) -> torch.Tensor:
        """Doubled-angle vector of each class, ``(1 + n_len * n_angle, 2)``."""
        angles = torch.arange(self.angle_bins, dtype=torch.float32) * (math.pi / self.angle_bins)
        unit = torch.stack((torch.cos(2 * angles), torch.sin(2 * angles)), dim=1)
        lengths = self.class_lengths()[1:, None]
        return torch.cat((torch.zeros(1, 2), lengths * unit.repeat(self.length_bins, 1)))

    def soft_labels(self, doubled: torch.Tensor) -> torch.Tensor:
        """Soft class targets for true doubled-angle vectors ``(B, 2, h, w)``.

        Bilinear in (length, angle): the length is split between its two nearest bin
        centres (below the first bin, between "no blur" and the first bin; above the last,
        all on the last), the angle between its two nearest angle bins, wrapping at 180.
        """
        b, _, h, w = doubled.shape
        step = self.max_length / self.length_bins
        length = torch.linalg.vector_norm(doubled, dim=1).clamp(max=self.max_length)
        pos = length / step  # 0 = no blur, k = bin k (1-based)
        lo = pos.floor().clamp(max=self.length_bins - 1)
        frac = (pos - lo).clamp(0, 1)
        angle = torch.remainder(0.5 * torch.atan2(doubled[:, 1], doubled[:, 0]), math.pi)
        apos = angle / (math.pi / self.angle_bins)
        alo = apos.floor()
        afrac = apos - alo
        alo = torch.remainder(alo, self.angle_bins).long()
        ahi = torch.remainder(alo + 1, self.angle_bins)
        n = 1 + self.length_bins * self.angle_bins
        target = torch.zeros(b, n, h, w, dtype=doubled.dtype, device=doubled.device)

        def add(length_index: torch.Tensor, weight: torch.Tensor) -> None:
            # length_index 0 is "no blur" (one class, no angle); k >= 1 splits over angles.
            zero = length_index == 0
            k = (length_index - 1).clamp(min=0).long()
            for a_idx, a_w in ((alo, 1 - afrac), (ahi, afrac)):
                cls = torch.where(zero, 0, 1 + k * self.angle_bins + a_idx)
                wgt = torch.where(zero, weight * 0.5, weight * a_w)
                target.scatter_add_(1, cls[:, None], wgt[:, None])

        add(lo, 1 - frac)
        add(lo + 1, frac)
        return target

    # -- decoding ------------------------------------------------------------------------

    def decode(self, raw: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Raw head output -> ``(doubled, length, confidence)`` at the head's resolution."""
        if self.head_kind == "regress":
            doubled = raw[:, :2] * SCALE
            length = raw[:, 2:3].abs() * SCALE
            scale = torch.exp(raw[:, 3:4].clamp(-6, 6)) * SCALE  # expected |error| per axis
            confidence = 1.0 / (1.0 + scale)
            return doubled, length, confidence
        prob = torch.softmax(raw, dim=1)
        cls_m = self.class_doubled().to(raw)
        cls_len = self.class_lengths().to(raw)
        doubled = torch.einsum("bchw,cd->bdhw", prob, cls_m)
        length = torch.einsum("bchw,c->bhw", prob, cls_len)[:, None]
        # confidence: probability mass within 2 bins' distance of the estimate (in m-space)
        step = self.max_length / self.length_bins
        dist = torch.linalg.vector_norm(cls_m[None, :, :, None, None] - doubled[:, None], dim=2)
        confidence = (prob * (dist <= 2 * step)).sum(dim=1, keepdim=True)
        return doubled, length, confidence

    def length_marginal(self, raw: torch.Tensor) -> torch.Tensor:
        """Classify head: probability of each length, ``(B, 1 + length_bins, h, w)``.

        Index 0 is "no blur", index ``k`` the bin of length ``k * max_length / length_bins``
        (the angle bins summed out).
        """
        if self.head_kind != "classify":
            raise ValueError("length_marginal needs the classify head")
        prob = torch.softmax(raw, dim=1)
        b, _, h, w = prob.shape
        bins = prob[:, 1:].reshape(b, self.length_bins, self.angle_bins, h, w).sum(dim=2)
        return torch.cat((prob[:, :1], bins), dim=1)

    def _bin_weights(self, factor: float) -> torch.Tensor:
        """``(1 + length_bins, 1 + length_bins)``: row ``j`` linearly interpolates a length
        marginal whose bins are ``factor`` times the usual lengths at the usual length of
        bin ``j`` (clamped at the last bin)."""
        pos = (torch.arange(self.length_bins + 1, dtype=torch.float32) / factor).clamp(
            max=self.length_bins
        )
        lo = pos.floor().clamp(max=self.length_bins - 1).long()
        frac = pos - lo
        rows = torch.arange(self.length_bins + 1)
        weights = torch.zeros(self.length_bins + 1, self.length_bins + 1)
        weights[rows, lo] = 1 - frac
        weights[rows, lo + 1] += frac
        return weights

    def multiscale_length(
        self, x: torch.Tensor, raw: torch.Tensor, scales: Sequence[float]
    ) -> torch.Tensor:
        """Length at the head's resolution from the length posteriors of several image scales.

        The network judges short streaks well and long ones vaguely (on whole photos a 20 px
        streak is often read as 25-30 px, its posterior spread over 15-35 px). Shrinking the
        image by ``s`` turns a streak of ``L`` px into one of ``s L``, which it judges
        better. Each shrunk image's length marginal (:meth:`length_marginal`) is resampled
        to the full-size head's grid and read, by linear interpolation, at the full-size
        bins' lengths (``k * max_length / length_bins``, in full-size pixels); the product
        of these (each plus :data:`FUSION_FLOOR`, so that no scale vetoes a length alone)
        and the full-size marginal, normalised, is the fused posterior over the full-size
        bins, and its mean the length. With no usable scale this is the classify head's
        usual length (the mean of the full-size marginal). Scales whose image would be under
        :data:`MIN_FUSION_SIDE` px a side are skipped.

        Args:
            x: the network's input ``(B, C, H, W)``.
            raw: the network's output for ``x``.
            scales: factors in ``(0, 1)`` to shrink ``x`` by (area averaging).

        Returns:
            ``(B, 1, h, w)`` lengths in pixels of ``x``.
        """
        h_in, w_in = x.shape[-2:]
        base = self.length_marginal(raw)
        hq, wq = base.shape[-2:]
        lengths = torch.arange(self.length_bins + 1).to(base) * (self.max_length / self.length_bins)
        log_post, used = torch.log(base + FUSION_FLOOR), False
        for s in scales:
            if not 0.0 < s < 1.0:
                raise ValueError(f"scales must be in (0, 1), got {s}")
            hs, ws = round(h_in * s), round(w_in * s)
            if min(hs, ws) < MIN_FUSION_SIDE:
                continue
            marginal = self.length_marginal(self(F.interpolate(x, size=(hs, ws), mode="area")))
            # full-size head sample i sits at input pixel 4i + 1.5; in the shrunk image that
            # is pixel (4i + 2) * hs / h_in - 0.5, its head sample ((4i + 2) * hs / h_in - 2) / 4
            ys = ((4 * torch.arange(hq) + 2) * (hs / h_in) - 2) / 4
            xs = ((4 * torch.arange(wq) + 2) * (ws / w_in) - 2) / 4
            ny = 2 * ys / max(marginal.shape[-2] - 1, 1) - 1
            nx = 2 * xs / max(marginal.shape[-1] - 1, 1) - 1
            where = torch.stack(torch.meshgrid(nx, ny, indexing="xy"), dim=-1)
            where = where[None].expand(marginal.shape[0], -1, -1, -1).to(marginal)
            marginal = F.grid_sample(
                marginal, where, mode="bilinear", padding_mode="border", align_corners=True
            )
            factor = (hs / h_in + ws / w_in) / 2  # bin k of the shrunk image: k * step / factor
            weights = self._bin_weights(1.0 / factor).to(marginal)
            log_post = log_post + torch.log(
                torch.einsum("jk,bkhw->bjhw", weights, marginal) + FUSION_FLOOR
            )
            used = True
        post = torch.softmax(log_post, dim=1) if used else base
        return torch.einsum("j,bjhw->bhw", lengths, post)[:, None]

    def field(
        self, x: torch.Tensor, *, scales: Sequence[float] = ()
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Full-resolution canonical motion field and confidence (see the class docstring).

        Args:
            x: input images (see the class docstring).
            scales: classify head only: also read the length from the image shrunk by these
                factors (:meth:`multiscale_length`); the direction and the confidence stay
                those of the full-size image.
        """
        h, w = x.shape[-2:]
        raw = self(x)
        doubled, length, confidence = self.decode(raw)
        if len(scales):
            length = self.multiscale_length(x, raw, scales)
        vec = doubled_to_vector(doubled, length)
        # quarter-resolution sample (i, j) sits at pixel 4i + 1.5: align_corners=False does that
        doubled_full = F.interpolate(
            vector_to_doubled(vec), scale_factor=4, mode="bilinear", align_corners=False
        )
        length_full = F.interpolate(
            torch.linalg.vector_norm(vec, dim=1, keepdim=True),
            scale_factor=4,
            mode="bilinear",
            align_corners=False,
        )
        conf_full = F.interpolate(confidence, scale_factor=4, mode="bilinear", align_corners=False)
        vec_full = doubled_to_vector(doubled_full, length_full)
        return vec_full[..., :h, :w], conf_full[..., :h, :w].clamp(0, 1)
