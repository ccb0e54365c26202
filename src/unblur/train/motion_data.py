"""Training and evaluation samples for the motion networks: blurred images with true fields.

Two sources:

* **Synthetic** (:func:`synth_motion_sample`): a crop of a sharp photo, blurred in linear light
  along a motion field (:func:`unblur.blur.field_blur`), then Poisson-Gaussian noise, sRGB and
  sometimes JPEG. The field is a uniform linear motion, a spatially varying camera motion
  (translation, rotation, zoom) with independently moving objects
  (:func:`unblur.blur.random_field`), or almost nothing. For the two-frame network the same
  field is the frame-to-frame displacement ``D`` of a short clip: three consecutive frames
  exposed for a random fraction ``duty`` of the frame interval
  (:func:`unblur.blur.field_frames`), whose blur field is ``duty * D``.
* **Real high-frame-rate frames** (:class:`HfrClip`): windows of ``n`` consecutive sharp
  240 fps frames averaged in linear light (the GoPro recipe), three windows ``period`` frames
  apart for the neighbours. The true field is not known; it is taken from dense optical flow
  between the sharp frames (OpenCV's DIS): ``n`` times the mean flow per frame interval over
  the centre window (a box of ``n`` frame positions spans ``n - 1`` intervals, and the field
  convention of :func:`unblur.blur.field_blur` with ``n`` samples spans ``(n - 1) / n`` of it).

Samples hold uint8 images (``(F, S, S, 3)``, ``F`` = 1 or 3 frames) and the float32 field
``(S, S, 2)`` of the (centre) blurred image.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from unblur import blur
from unblur.train.data import list_images, load_rgb8, to_float, to_uint8

__all__ = [
    "HfrClip",
    "MotionMix",
    "MotionSample",
    "doubled_quarter",
    "load_photos",
    "synth_motion_sample",
]

FIELD_KINDS = ("linear", "field", "still")


@dataclass(frozen=True)
class MotionMix:
    """How synthetic motion samples are drawn.

    Attributes:
        kinds: ``linear`` (uniform straight motion), ``field`` (camera motion with rotation,
            zoom and moving objects), ``still`` (under 1.5 px) -> weight.
        max_length: longest blur in pixels (the field's cap).
        min_length: shortest blur of ``linear`` samples, and the lowest cap of ``field``.
        duty: exposure fraction range for frame samples.
        max_displacement: cap of the frame-to-frame displacement in pixels.
        read_noise: Gaussian read-noise sigma range, linear light.
        poisson_prob: probability of shot noise, with ``poisson_scale`` photo-electrons.
        jpeg_prob: probability of a JPEG round trip with quality in ``jpeg_quality``.
        scale: range of the factor that photos are shrunk by before cropping (big photos
            hold little detail per pixel); raised where needed to fit.
    """

    kinds: dict[str, float] = field(
        default_factory=lambda: {"linear": 0.4, "field": 0.5, "still": 0.1}
    )
    max_length: float = 36.0
    min_length: float = 2.0
    duty: tuple[float, float] = (0.3, 1.0)
    max_displacement: float = 48.0
    read_noise: tuple[float, float] = (0.0, 0.01)
    poisson_prob: float = 0.3
    poisson_scale: tuple[float, float] = (2000.0, 20000.0)
    jpeg_prob: float = 0.3
    jpeg_quality: tuple[int, int] = (60, 95)
    scale: tuple[float, float] = (0.35, 1.0)

    def __post_init__(self) -> None:
        unknown = sorted(set(self.kinds) - set(FIELD_KINDS))
        if unknown:
            raise ValueError(f"unknown field kind {unknown[0]!r}; choose from {FIELD_KINDS}")
        weights = list(self.kinds.values())
        if any(not math.isfinite(w) or w < 0 for w in weights) or sum(weights) <= 0:
            raise ValueError(f"kinds weights must be >= 0 with a positive sum, got {self.kinds}")
        if not 0 <= self.min_length < self.max_length:
            raise ValueError(
                f"need 0 <= min_length < max_length, got {self.min_length}, {self.max_length}"
            )
        lo, hi = self.duty
        if not 0 < lo <= hi <= 1:
            raise ValueError(f"duty must satisfy 0 < low <= high <= 1, got {self.duty}")
        lo, hi = self.scale
        if not 0 < lo <= hi <= 1:
            raise ValueError(f"scale must satisfy 0 < low <= high <= 1, got {self.scale}")

    def margin(self, frames: bool) -> int:
        """Context pixels kept around a crop so the motion near its edges sees real content."""
        reach = 1.5 * self.max_displacement if frames else 0.5 * self.max_length
        return math.ceil(reach) + 2


@dataclass
class MotionSample:
    """Blurred frame(s) and the true blur field of the (centre) frame.

    Attributes:
        frames: uint8 ``(F, S, S, 3)``: one blurred image, or previous, current, next frame.
        field: float32 ``(S, S, 2)`` blur field ``(dx, dy)`` of ``frames[F // 2]`` in pixels.
        kind: ``linear``, ``field``, ``still`` or ``hfr``.
    """

    frames: np.ndarray
    field: np.ndarray
    kind: str


def _draw_field(
    kind: str, height: int, width: int, cap: float, low: float, rng: np.random.Generator
) -> np.ndarray:
    if kind == "linear":
        length = float(rng.uniform(low, cap))
        return blur.constant_field(height, width, length, float(rng.uniform(0, 180)))
    if kind == "still":
        length = float(rng.uniform(0, min(1.5, cap)))
        return blur.constant_field(height, width, length, float(rng.uniform(0, 180)))
    cap = float(rng.uniform(max(low, 4.0), cap)) if cap > max(low, 4.0) else cap
    return blur.random_field(height, width, rng=rng, max_length=cap).field


def _sensor(linear: np.ndarray, mix: MotionMix, rng: np.random.Generator) -> np.ndarray:
    """Poisson-Gaussian noise in linear light, clip, sRGB."""
    sigma = float(rng.uniform(*mix.read_noise))
    scale = float(rng.uniform(*mix.poisson_scale)) if rng.random() < mix.poisson_prob else 0.0
    noisy = blur.add_noise(linear, rng=rng, poisson_scale=scale, gaussian_sigma=sigma, clip=True)
    return np.clip(blur._linear_to_srgb(noisy), 0.0, 1.0)


def synth_motion_sample(
    photo: np.ndarray,
    size: int,
    mix: MotionMix,
    rng: np.random.Generator,
    *,
    frames: bool = False,
    kind: str | None = None,
) -> MotionSample:
    """A synthetic motion sample from a sharp uint8 photo (see the module docstring).

    Args:
        photo: uint8 ``(H, W, 3)`` sharp photo.
        size: side of the sample.
        mix: field kinds and sensor effects.
        rng: generator for every draw.
        frames: three consecutive frames (two-frame network) instead of one image.
        kind: force a field kind instead of drawing one.

    Raises:
        ValueError: the photo is too small for ``size``.
    """
    height, width = photo.shape[:2]
    if min(height, width) < size:
        raise ValueError(f"a {size}px sample does not fit a {height}x{width} photo")
    if kind is None:
        kinds = sorted(k for k, w in mix.kinds.items() if w > 0)
        weights = np.array([mix.kinds[k] for k in kinds], np.float64)
        kind = kinds[int(rng.choice(len(kinds), p=weights / weights.sum()))]
    elif kind not in FIELD_KINDS:
        raise ValueError(f"unknown field kind {kind!r}; choose from {FIELD_KINDS}")
    margin = mix.margin(frames)
    factor = max(float(rng.uniform(*mix.scale)), (size + 2 * margin) / min(height, width))
    factor = min(factor, 1.0)
    want = math.ceil((size + 2 * margin) / factor)
    rh, rw = min(height, want), min(width, want)
    top, left = int(rng.integers(0, height - rh + 1)), int(rng.integers(0, width - rw + 1))
    region = photo[top : top + rh, left : left + rw]
    if factor < 1.0:
        th, tw = max(size, round(rh * factor)), max(size, round(rw * factor))
        region = cv2.resize(region, (tw, th), interpolation=cv2.INTER_AREA)
    linear = blur._srgb_to_linear(to_float(region))
    rh, rw = linear.shape[:2]
    if frames:
        duty = float(rng.uniform(*mix.duty))
        cap = min(mix.max_displacement, mix.max_length / duty)
        disp = _draw_field(kind, rh, rw, cap, mix.min_length / duty, rng)
        images = blur.field_frames(linear, disp, duty=duty)
        motion = disp * np.float32(duty)
    else:
        motion = _draw_field(kind, rh, rw, mix.max_length, mix.min_length, rng)
        images = [blur.field_blur(linear, motion)]
    cy, cx = (rh - size) // 2, (rw - size) // 2
    window = (slice(cy, cy + size), slice(cx, cx + size))
    out = []
    quality = None
    if rng.random() < mix.jpeg_prob:
        quality = int(rng.integers(mix.jpeg_quality[0], mix.jpeg_quality[1] + 1))
    for image in images:
        srgb = np.ascontiguousarray(_sensor(image, mix, rng)[window])
        if quality is not None:
            srgb = blur.jpeg_compress(srgb, quality=quality)
        out.append(to_uint8(srgb))
    return MotionSample(np.stack(out), np.ascontiguousarray(motion[window]), kind)


# --------------------------------------------------------------------------------------------
# real high-frame-rate frames
# --------------------------------------------------------------------------------------------


class HfrClip:
    """Consecutive sharp high-frame-rate frames with their optical flow, for real samples.

    Args:
        folder: a folder of consecutive frames (sorted by name).
        flow_scale: optical flow is computed on frames shrunk by this factor (then scaled
            back), which is faster and steadier on large motions.
    """

    def __init__(self, folder: Path, *, flow_scale: float = 0.5) -> None:
        paths = list_images(Path(folder))
        if len(paths) < 9:
            raise ValueError(f"need at least 9 consecutive frames in {folder}, got {len(paths)}")
        self.frames = [load_rgb8(p) for p in paths]
        self.linear = [blur._srgb_to_linear(to_float(f)) for f in self.frames]
        self.flows = self._flows(flow_scale)

    def _flows(self, scale: float) -> list[np.ndarray]:
        dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
        height, width = self.frames[0].shape[:2]
        small = (max(1, round(width * scale)), max(1, round(height * scale)))
        grey = [
            cv2.resize(cv2.cvtColor(f, cv2.COLOR_RGB2GRAY), small, interpolation=cv2.INTER_AREA)
            for f in self.frames
        ]
        flows = []
        for a, b in itertools.pairwise(grey):
            flow = dis.calc(a, b, None)
            flow = cv2.resize(flow, (width, height), interpolation=cv2.INTER_LINEAR) / scale
            flows.append(flow.astype(np.float32))
        return flows

    def window(
        self, start: int, n: int, region: tuple[slice, slice] = (slice(None), slice(None))
    ) -> tuple[np.ndarray, np.ndarray]:
        """Blurred linear-light average of frames ``start .. start + n - 1`` and its field."""
        image = np.mean([f[region] for f in self.linear[start : start + n]], axis=0)
        flows = [f[region] for f in self.flows[start : start + n - 1]]
        motion = np.mean(flows, axis=0) * np.float32(n) if flows else None
        if motion is None:
            motion = np.zeros((*image.shape[:2], 2), np.float32)
        return image.astype(np.float32), motion.astype(np.float32)

    def sample(
        self,
        size: int,
        rng: np.random.Generator,
        *,
        frames: bool = False,
        n_range: tuple[int, int] = (3, 9),
        scale: tuple[float, float] = (0.5, 1.0),
    ) -> MotionSample:
        """A random real sample: ``n`` averaged frames, neighbours ``period`` frames apart.

        The crop is shrunk by a random factor from ``scale`` (and its field with it), which
        widens the range of blur lengths.
        """
        total = len(self.frames)
        highest = min(n_range[1], total // 3) if frames else min(n_range[1], total)
        n = int(rng.integers(min(n_range[0], highest), highest + 1))
        longest = (total - n) // 2 if frames else n  # >= n: three windows fit
        period = int(rng.integers(n, max(n, min(longest, 13)) + 1))
        if frames:
            start = int(rng.integers(period, total - n - period + 1))
            starts = [start - period, start, start + period]
        else:
            start = int(rng.integers(0, total - n + 1))
            starts = [start]
        height, width = self.frames[0].shape[:2]
        factor = float(rng.uniform(*scale))
        side = min(height, width, math.ceil(size / factor))
        factor = size / side
        top = int(rng.integers(0, height - side + 1))
        left = int(rng.integers(0, width - side + 1))
        region = (slice(top, top + side), slice(left, left + side))
        images, motion = [], np.zeros((size, size, 2), np.float32)
        for s in starts:
            image, m = self.window(s, n, region)
            if side != size:
                image = cv2.resize(image, (size, size), interpolation=cv2.INTER_AREA)
            if s == start:
                motion = cv2.resize(m, (size, size), interpolation=cv2.INTER_AREA) * factor
            images.append(to_uint8(np.clip(blur._linear_to_srgb(image), 0, 1)))
        return MotionSample(np.stack(images), np.ascontiguousarray(motion), "hfr")


def doubled_quarter(motion: np.ndarray) -> np.ndarray:
    """Quarter-resolution target of a field: the 4x4 block mean of doubled-angle vectors.

    Args:
        motion: float ``(S, S, 2)`` field, ``S`` divisible by 4.

    Returns:
        float32 ``(2, S / 4, S / 4)``: mean of ``L (cos 2a, sin 2a)`` over each block (see
        :mod:`unblur.models.motion_net`).
    """
    dx = motion[..., 0].astype(np.float64)
    dy = motion[..., 1].astype(np.float64)
    length = np.maximum(np.hypot(dx, dy), 1e-9)
    m = np.stack(((dx * dx - dy * dy) / length, -2 * dx * dy / length))
    c, h, w = m.shape
    if h % 4 or w % 4:
        raise ValueError(f"field size must be divisible by 4, got {h}x{w}")
    return m.reshape(c, h // 4, 4, w // 4, 4).mean(axis=(2, 4)).astype(np.float32)


def load_photos(folders: list[Path], min_side: int) -> list[np.ndarray]:
    """Every photo (uint8 RGB) in ``folders`` whose short side is at least ``min_side``."""
    photos = []
    for folder in folders:
        for path in list_images(Path(folder)):
            photo = load_rgb8(path)
            if min(photo.shape[:2]) >= min_side:
                photos.append(photo)
    return photos
