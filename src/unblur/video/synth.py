"""Synthetic blurred videos with ground truth, from the forward model.

A camera moves over a photo (translation and in-plane rotation along a smooth path) while
objects cut from the photo move across it. Every frame is the average, in linear light, of
the scene rendered at sub-frame times spread over its exposure, which lasts the fraction
``duty`` of the frame interval; then Poisson-Gaussian noise, sRGB and JPEG. The sharp frame
is the scene at mid-exposure, and the true blur field (the convention of
:mod:`unblur.motion.field`: each pixel's displacement over the exposure) comes from the same
motion model, so flows and fields can be scored exactly.

Paths:

* ``handheld``: the velocity is a sum of slow sinusoids (about 2-10 frames a cycle) mostly
  along one direction, so the speed swings from near zero (sharp frames) to ``max_speed``:
  the case where neighbouring frames hold detail the current one lost;
* ``pan``: a steady pan at ``max_speed`` (every frame equally blurred, as in a GoPro
  average of a smooth camera motion).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import cv2
import numpy as np

from unblur import blur

__all__ = ["PATHS", "SynthVideo", "synth_video"]

PATHS = ("handheld", "pan")


@dataclass(frozen=True)
class SynthVideo:
    """A synthetic clip.

    Attributes:
        blurred: uint8 ``(H, W, 3)`` frames as a camera records them.
        sharp: uint8 frames at mid-exposure (ground truth).
        fields: float32 ``(H, W, 2)`` true blur field of every frame.
        duty: exposure time over frame interval.
        path: ``handheld`` or ``pan``.
    """

    blurred: list[np.ndarray] = field(repr=False)
    sharp: list[np.ndarray] = field(repr=False)
    fields: list[np.ndarray] = field(repr=False)
    duty: float
    path: str

    def blur_lengths(self) -> np.ndarray:
        """Median blur length of every frame, in pixels."""
        return np.array([float(np.median(np.hypot(f[..., 0], f[..., 1]))) for f in self.fields])


class _Path:
    """Camera pose over time: world point seen at the frame's centre, and rotation."""

    def __init__(self, kind: str, frames: int, max_speed: float, rng: np.random.Generator) -> None:
        self.kind = kind
        angle = rng.uniform(0, 2 * math.pi)
        self.main = np.array([math.cos(angle), math.sin(angle)])
        self.perp = np.array([-self.main[1], self.main[0]])
        n = 3
        self.freqs = rng.uniform(0.06, 0.22, size=(3, n))  # cycles per frame: axis, perp, rot
        self.amps = rng.uniform(0.5, 1.0, size=(3, n))
        self.phases = rng.uniform(0, 2 * math.pi, size=(3, n))
        self.rot_rate = math.radians(rng.uniform(0.03, 0.15))  # radians per frame at most
        ts = np.linspace(-1, frames + 1, 40 * (frames + 2))
        peak = float(np.max(np.abs(self._speed_main(ts)))) if kind == "handheld" else 1.0
        self.gain = max_speed / max(peak, 1e-6)
        self.max_speed = max_speed

    def _speed_main(self, t: np.ndarray) -> np.ndarray:
        f, a, p = self.freqs[0], self.amps[0], self.phases[0]
        return np.sum(a[:, None] * np.sin(2 * math.pi * f[:, None] * t[None] + p[:, None]), 0)

    def _integral(self, row: int, t: float) -> float:
        f, a, p = self.freqs[row], self.amps[row], self.phases[row]
        return float(np.sum(-a / (2 * math.pi * f) * np.cos(2 * math.pi * f * t + p)))

    def translation(self, t: float) -> np.ndarray:
        """Camera offset in world pixels at time ``t`` (frame intervals)."""
        if self.kind == "pan":
            return self.main * self.max_speed * t
        along = self.gain * self._integral(0, t)
        across = 0.3 * self.gain * self._integral(1, t)
        return self.main * along + self.perp * across

    def rotation(self, t: float) -> float:
        """Camera roll in radians at time ``t``."""
        scale = self.rot_rate / max(float(np.sum(self.amps[2])), 1e-6)
        return 0.0 if self.kind == "pan" else scale * self._integral(2, t)


def _frame_to_world(
    path: _Path, t: float, centre_world: np.ndarray, centre_frame: np.ndarray
) -> np.ndarray:
    """2x3 affine ``M`` with ``world = M @ [x, y, 1]`` for frame pixel ``(x, y)`` at time t."""
    theta = path.rotation(t)
    c, s = math.cos(theta), math.sin(theta)
    rot = np.array([[c, -s], [s, c]])
    offset = centre_world + path.translation(t) - rot @ centre_frame
    return np.hstack([rot, offset[:, None]])


def _invert(m: np.ndarray) -> np.ndarray:
    return cv2.invertAffineTransform(m)


def _apply(m: np.ndarray, xs: np.ndarray, ys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return m[0, 0] * xs + m[0, 1] * ys + m[0, 2], m[1, 0] * xs + m[1, 1] * ys + m[1, 2]


def _soft_ellipse(height: int, width: int) -> np.ndarray:
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    r = ((xx - (width - 1) / 2) / (width / 2)) ** 2 + ((yy - (height - 1) / 2) / (height / 2)) ** 2
    alpha = np.clip((1.0 - r) * 6.0, 0.0, 1.0)
    return alpha.astype(np.float32)


def synth_video(
    photo: np.ndarray,
    *,
    size: tuple[int, int],
    frames: int = 12,
    duty: float = 0.5,
    max_speed: float = 12.0,
    path: str = "handheld",
    objects: int = 1,
    object_speed: tuple[float, float] = (2.0, 6.0),
    noise: float = 0.004,
    jpeg_quality: int | None = 92,
    rng: np.random.Generator | int | None = None,
) -> SynthVideo:
    """Render a blurred clip with its sharp frames and true blur fields.

    Args:
        photo: sharp sRGB photo, uint8 or float in [0, 1], ``(H, W, 3)``; resized to cover
            the camera's travel.
        size: ``(width, height)`` of the frames.
        frames: number of frames.
        duty: exposure time over frame interval, in ``(0, 1]``.
        max_speed: fastest camera motion in pixels per frame interval.
        path: ``handheld`` (speed swings through zero) or ``pan`` (steady).
        objects: moving objects pasted over the scene.
        object_speed: range of the objects' speeds in pixels per frame interval.
        noise: Gaussian read-noise sigma in linear light (plus shot noise at 8000 e-).
        jpeg_quality: JPEG quality of the recorded frames (``None``: none).
        rng: generator or seed.

    Returns:
        A :class:`SynthVideo`.

    Raises:
        ValueError: bad size, duty, frames or path.
    """
    width, height = size
    if width < 16 or height < 16:
        raise ValueError(f"frames must be at least 16x16, got {width}x{height}")
    if not 0 < duty <= 1:
        raise ValueError(f"duty must be in (0, 1], got {duty}")
    if frames < 1:
        raise ValueError(f"frames must be >= 1, got {frames}")
    if path not in PATHS:
        raise ValueError(f"unknown path {path!r}; choose from {', '.join(PATHS)}")
    gen = np.random.default_rng(rng)
    cam = _Path(path, frames, max_speed, gen)
    centre_frame = np.array([(width - 1) / 2, (height - 1) / 2])
    # the world must hold the frame wherever the path takes it (rotation adds its reach)
    ts = np.linspace(-1, frames, 8 * (frames + 1))
    raw = np.array([cam.translation(t) for t in ts])
    mean_travel = raw.mean(axis=0)
    travel = raw - mean_travel
    reach = float(np.abs(travel).max()) + 0.5 * math.hypot(width, height) * 0.02 + 8
    world_w, world_h = int(width + 2 * reach), int(height + 2 * reach)
    src = photo.astype(np.float32) / 255.0 if photo.dtype == np.uint8 else photo.astype(np.float32)
    factor = max(world_w / src.shape[1], world_h / src.shape[0])
    if factor > 1 or factor < 0.5:
        new = (math.ceil(src.shape[1] * factor), math.ceil(src.shape[0] * factor))
        src = cv2.resize(src, new, interpolation=cv2.INTER_AREA if factor < 1 else cv2.INTER_CUBIC)
    top = int(gen.integers(0, src.shape[0] - world_h + 1))
    left = int(gen.integers(0, src.shape[1] - world_w + 1))
    world = blur._srgb_to_linear(
        np.ascontiguousarray(src[top : top + world_h, left : left + world_w])
    )
    centre_world = np.array([(world_w - 1) / 2, (world_h - 1) / 2]) - mean_travel

    sprites = []
    for _ in range(objects):
        sh = max(6, int(height * gen.uniform(0.25, 0.4)))
        sw = max(6, int(sh * gen.uniform(0.8, 1.5)))
        sy = int(gen.integers(0, world_h - sh + 1))
        sx = int(gen.integers(0, world_w - sw + 1))
        patch = np.ascontiguousarray(world[sy : sy + sh, sx : sx + sw][:, ::-1])  # mirrored
        alpha = _soft_ellipse(sh, sw)
        angle = gen.uniform(0, 2 * math.pi)
        speed = gen.uniform(*object_speed)
        vel = np.array([math.cos(angle), math.sin(angle)]) * speed
        # placed so that it crosses the frame's middle at mid-clip
        start = centre_world + cam.translation(frames / 2) - vel * frames / 2
        start += gen.uniform(-0.25, 0.25, 2) * np.array([width, height])
        sprites.append((patch, alpha, start - np.array([sw / 2, sh / 2]), vel))

    def render(t: float) -> np.ndarray:
        m = _frame_to_world(cam, t, centre_world, centre_frame)
        flags = cv2.INTER_CUBIC | cv2.WARP_INVERSE_MAP
        img = cv2.warpAffine(world, m, (width, height), flags=flags, borderMode=cv2.BORDER_REFLECT)
        for patch, alpha, origin, vel in sprites:
            ms = m.copy()
            ms[:, 2] -= origin + vel * t
            layer = cv2.warpAffine(patch, ms, (width, height), flags=flags, borderValue=0)
            a = cv2.warpAffine(alpha, ms, (width, height), flags=flags, borderValue=0)
            a = np.clip(a, 0, 1)[..., None]
            img = img * (1 - a) + layer * a
        return np.clip(img, 0, None)

    xs, ys = np.meshgrid(np.arange(width, dtype=np.float64), np.arange(height, dtype=np.float64))
    blurred, sharp, fields = [], [], []
    samples = max(4, math.ceil(2.5 * duty * max(max_speed, object_speed[1])))
    for k in range(frames):
        t0, t1 = k - duty / 2, k + duty / 2
        acc = np.zeros((height, width, 3), np.float64)
        for i in range(samples):
            acc += render(t0 + (i + 0.5) / samples * duty)
        linear = (acc / samples).astype(np.float32)
        if noise > 0:
            linear = blur.add_noise(
                np.clip(linear, 0, 1), rng=gen, poisson_scale=8000.0, gaussian_sigma=noise
            )
        srgb = np.clip(blur._linear_to_srgb(np.clip(linear, 0, 1)), 0, 1)
        if jpeg_quality is not None:
            srgb = blur.jpeg_compress(srgb, quality=jpeg_quality)
        blurred.append(np.rint(srgb * 255).astype(np.uint8))
        sharp_lin = render(float(k))
        sharp.append(np.rint(np.clip(blur._linear_to_srgb(np.clip(sharp_lin, 0, 1)), 0, 1) * 255)
                     .astype(np.uint8))  # fmt: skip
        # true field: where the scene point seen at p (mid-exposure) is at t0 and t1
        m_mid = _frame_to_world(cam, float(k), centre_world, centre_frame)
        inv0 = _invert(_frame_to_world(cam, t0, centre_world, centre_frame))
        inv1 = _invert(_frame_to_world(cam, t1, centre_world, centre_frame))
        wx, wy = _apply(m_mid, xs, ys)
        x0, y0 = _apply(inv0, wx, wy)
        x1, y1 = _apply(inv1, wx, wy)
        fx, fy = x1 - x0, y1 - y0
        for _patch, alpha, origin, vel in sprites:
            ms = m_mid.copy()
            ms[:, 2] -= origin + vel * k
            a = cv2.warpAffine(alpha, ms, (width, height), flags=cv2.INTER_LINEAR
                               | cv2.WARP_INVERSE_MAP, borderValue=0)  # fmt: skip
            ox0, oy0 = _apply(inv0, wx - vel[0] * duty / 2, wy - vel[1] * duty / 2)
            ox1, oy1 = _apply(inv1, wx + vel[0] * duty / 2, wy + vel[1] * duty / 2)
            fx = fx * (1 - a) + (ox1 - ox0) * a
            fy = fy * (1 - a) + (oy1 - oy0) * a
        fields.append(np.stack([fx, fy], axis=-1).astype(np.float32))
    return SynthVideo(blurred, sharp, fields, float(duty), path)
