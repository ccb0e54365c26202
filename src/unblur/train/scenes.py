"""GoPro-style blur of a moving scene rendered from still photos: a camera path, crossing objects.

Averaging 7-13 frames of 240 fps video (:class:`~unblur.train.data.FrameSource`) gives the
blur of real GoPro footage: the camera turns and travels while people and cars move on their
own, so the blur changes across the picture and breaks at every object's edge. The project
holds one such sequence, and a network trained on it learns one street. This module renders
the sequence instead, from any sharp photo, so that the same kind of blur comes with the
variety of a photo collection (the frame-averaging idea of Nah, Kim & Lee, CVPR 2017, with the
frames drawn rather than filmed):

* the **camera** follows a bent path (``travel`` pixels over the exposure, bending sideways by
  up to ``bend`` of that) while it turns by up to ``turn`` degrees and zooms by up to
  ``zoom``: a spatially varying blur, larger towards the corners when it turns;
* **objects** (``objects`` of them: a piece of another photo cut out by a random soft-edged
  star-shaped outline, ``object_size`` of the crop's side) cross the scene on their own
  straight paths (``object_travel`` pixels): blur that ends at an occluding edge, which no
  blur kernel can make;
* frame ``i`` of ``n`` is shown at time ``t_i = (i - n // 2) / (n - 1)``; the sharp target is
  frame ``n // 2`` (``t = 0``, as :func:`unblur.blur.average_window` picks it), where every
  transform is the identity and every object sits on whole pixels, so the target is the
  photo's own pixels, never interpolated;
* the frames are averaged in linear light, or with probability ``srgb_prob`` on the stored
  values as GOPRO_Large's ``blur/`` folder does (:func:`unblur.blur.average_frames`), and
  optional Gaussian read noise (linear light) makes the average as noisy as one exposure, and
  optional JPEG compression as stored by a camera or a video codec.

Example:
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> photo = rng.random((200, 200, 3)).astype(np.float32)
    >>> blurred, sharp, info = render_scene(photo, [photo], 96, SceneMotion(objects=(0, 0)), rng)
    >>> blurred.shape, bool(np.array_equal(sharp, photo[52:148, 52:148]))
    ((96, 96, 3), True)
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from unblur import blur, io

__all__ = ["SceneMotion", "render_scene"]


@dataclass(frozen=True)
class SceneMotion:
    """How a rendered scene moves during the exposure (lengths in pixels of the crop).

    Args:
        window: inclusive range of frames averaged, ``1 <= low <= high``.
        travel: range of the camera path's length over the exposure.
        bend: most sideways bend of the path, as a fraction of its length.
        turn: most in-plane rotation over the exposure, degrees.
        zoom: most relative change of scale over the exposure.
        objects: inclusive range of the number of moving objects.
        object_size: range of an object's side, as a fraction of the crop's side.
        object_travel: range of an object's path length over the exposure.
        noise: range of the read-noise sigma (linear light), ``(0, 0)`` for none.
        srgb_prob: probability of averaging the stored values rather than linear light.
        jpeg_prob: probability of compressing the blurred frame as JPEG afterwards.
        jpeg_quality: inclusive range of that JPEG quality, ``1 <= low <= high <= 100``.

    Raises:
        ValueError: a range with ``low > high`` or a negative value, a probability outside
            ``[0, 1]``.
    """

    window: tuple[int, int] = (7, 13)
    travel: tuple[float, float] = (0.0, 32.0)
    bend: float = 0.3
    turn: float = 1.5
    zoom: float = 0.03
    objects: tuple[int, int] = (0, 3)
    object_size: tuple[float, float] = (0.2, 0.6)
    object_travel: tuple[float, float] = (4.0, 40.0)
    noise: tuple[float, float] = (0.0, 0.005)
    srgb_prob: float = 0.5
    jpeg_prob: float = 0.0
    jpeg_quality: tuple[int, int] = (60, 95)

    def __post_init__(self) -> None:
        if not 1 <= self.window[0] <= self.window[1]:
            raise ValueError(f"window must satisfy 1 <= low <= high, got {self.window}")
        for name in ("travel", "objects", "object_size", "object_travel", "noise"):
            low, high = getattr(self, name)
            if not 0 <= low <= high:
                raise ValueError(f"{name} must satisfy 0 <= low <= high, got {(low, high)}")
        if not 0 < self.object_size[1] <= 1:
            raise ValueError(f"object_size must be at most 1, got {self.object_size}")
        for name in ("bend", "turn", "zoom"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        for name in ("srgb_prob", "jpeg_prob"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {getattr(self, name)}")
        if not 1 <= self.jpeg_quality[0] <= self.jpeg_quality[1] <= 100:
            raise ValueError(
                f"jpeg_quality must satisfy 1 <= low <= high <= 100, got {self.jpeg_quality}"
            )

    def margin(self, height: int, width: int | None = None) -> int:
        """How far beyond a ``height`` x ``width`` crop (square if ``width`` is None) the camera
        looks: half the path plus its sideways bend, plus what turning and zooming move a
        corner by, in pixels."""
        corner = math.hypot(height, height if width is None else width) / 2
        swing = corner * (math.radians(self.turn) + self.zoom) / 2
        return math.ceil(self.travel[1] * (0.5 + self.bend) + swing) + 2


def _times(n: int) -> np.ndarray:
    """Frame times: ``t = 0`` at frame ``n // 2``, one unit from the first to the last."""
    return (np.arange(n) - n // 2) / max(n - 1, 1)


def _direction(rng: np.random.Generator) -> np.ndarray:
    angle = rng.uniform(0, 2 * math.pi)
    return np.array([math.cos(angle), math.sin(angle)])


def _outline(side: int, rng: np.random.Generator) -> np.ndarray:
    """A soft-edged random star-shaped mask, float32 ``(side, side)`` in ``[0, 1]``."""
    points = int(rng.integers(5, 13))
    angles = np.sort(rng.uniform(0, 2 * math.pi, points))
    radii = rng.uniform(0.45, 1.0, points) * (side - 2) / 2
    centre = (side - 1) / 2
    polygon = np.stack([centre + radii * np.cos(angles), centre + radii * np.sin(angles)], 1)
    mask = np.zeros((side, side), np.float32)
    cv2.fillPoly(mask, [np.round(polygon * 16).astype(np.int32)], 1.0, cv2.LINE_AA, shift=4)
    return cv2.GaussianBlur(mask, (0, 0), 0.6)


def _paste(canvas: np.ndarray, piece: np.ndarray, alpha: np.ndarray, x: float, y: float) -> None:
    """Composite ``piece`` over ``canvas`` in place with its top-left corner at ``(x, y)``
    (sub-pixel: shifted by bilinear interpolation; on whole pixels, copied exactly)."""
    ix, iy = math.floor(x), math.floor(y)
    fx, fy = x - ix, y - iy
    if fx or fy:
        shift = np.float32([[1, 0, fx], [0, 1, fy]])
        h, w = piece.shape[:2]
        flags, border = cv2.INTER_LINEAR, cv2.BORDER_CONSTANT
        piece = cv2.warpAffine(piece, shift, (w + 1, h + 1), flags=flags, borderMode=border)
        alpha = cv2.warpAffine(alpha, shift, (w + 1, h + 1), flags=flags, borderMode=border)
    h, w = alpha.shape
    top, left = max(iy, 0), max(ix, 0)
    bottom, right = min(iy + h, canvas.shape[0]), min(ix + w, canvas.shape[1])
    if bottom <= top or right <= left:
        return
    a = alpha[top - iy : bottom - iy, left - ix : right - ix, None]
    p = piece[top - iy : bottom - iy, left - ix : right - ix]
    region = canvas[top:bottom, left:right]
    region *= 1 - a
    region += a * p


def _camera(t: float, shape: tuple[int, int], centre: tuple[float, float], path: Any) -> np.ndarray:
    """The inverse affine map of the camera at time ``t``: pixel of a ``shape`` crop -> canvas
    pixel, where ``centre`` is the canvas point the crop's centre shows at ``t = 0``."""
    shift, theta, zoom = path(t)
    cos, sin = math.cos(theta) * zoom, math.sin(theta) * zoom
    ox, oy = (shape[1] - 1) / 2, (shape[0] - 1) / 2
    cx, cy = centre[0] + shift[0], centre[1] + shift[1]
    return np.float32(
        [
            [cos, -sin, cx - cos * ox + sin * oy],
            [sin, cos, cy - sin * ox - cos * oy],
        ]
    )


def render_scene(
    background: np.ndarray,
    photos: Sequence[np.ndarray],
    size: int | tuple[int, int],
    motion: SceneMotion,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """Render one blurred/sharp pair of a moving scene.

    Args:
        background: float32 ``(H, W, 3)`` sRGB image in ``[0, 1]``, at least as large as the
            pair; the camera looks at its centre (reflected beyond its edges where it is
            smaller than the pair plus ``motion.margin`` on every side).
        photos: ``(h, w, 3)`` images the objects are cut from, float32 in ``[0, 1]`` or uint8
            (any sizes; a photo smaller than the object is used smaller).
        size: side of a square pair, or its ``(height, width)``, pixels.
        motion: the scene's motion ranges.
        rng: the random generator.

    Returns:
        ``(blurred, sharp, info)``: float32 ``(height, width, 3)`` in ``[0, 1]``, and a dict of
        what was drawn (window, space, travel, turn, zoom, objects).

    Raises:
        ValueError: a background smaller than the pair.
    """
    out_h, out_w = (size, size) if isinstance(size, int) else (int(size[0]), int(size[1]))
    height, width = background.shape[:2]
    if height < out_h or width < out_w:
        raise ValueError(f"background is {width}x{height}, smaller than {out_w}x{out_h}")
    n = int(rng.integers(motion.window[0], motion.window[1] + 1))
    times = _times(n)

    # the camera: a bent path, a turn and a zoom, all zero at t = 0
    travel = float(rng.uniform(*motion.travel))
    along = _direction(rng)
    side = np.array([-along[1], along[0]]) * travel * float(rng.uniform(-1, 1)) * motion.bend
    theta = math.radians(float(rng.uniform(-motion.turn, motion.turn)))
    zoom = float(rng.uniform(-motion.zoom, motion.zoom))

    def path(t: float) -> tuple[np.ndarray, float, float]:
        return travel * along * t + 4 * side * t * t, theta * t, 1.0 + zoom * t

    # the objects: pieces of other photos, each on its own straight path, on whole pixels at t = 0
    margin = motion.margin(out_h, out_w)
    canvas_h, canvas_w = min(height, out_h + 2 * margin), min(width, out_w + 2 * margin)
    top, left = (height - canvas_h) // 2, (width - canvas_w) // 2
    scene = np.ascontiguousarray(background[top : top + canvas_h, left : left + canvas_w])
    objects = []
    for _ in range(int(rng.integers(motion.objects[0], motion.objects[1] + 1))):
        photo = photos[int(rng.integers(len(photos)))]
        k = round(min(out_h, out_w) * float(rng.uniform(*motion.object_size)))
        k = max(8, min(k, *photo.shape[:2]))
        oy = int(rng.integers(0, photo.shape[0] - k + 1))
        ox = int(rng.integers(0, photo.shape[1] - k + 1))
        piece = np.asarray(photo[oy : oy + k, ox : ox + k], dtype=np.float32)
        if photo.dtype == np.uint8:
            piece /= 255.0
        # where it is at t = 0: its centre inside the crop
        x0 = (canvas_w - out_w) // 2 + int(rng.integers(0, out_w)) - k // 2
        y0 = (canvas_h - out_h) // 2 + int(rng.integers(0, out_h)) - k // 2
        velocity = _direction(rng) * float(rng.uniform(*motion.object_travel))
        objects.append((piece, _outline(k, rng), x0, y0, velocity))

    y, x = (canvas_h - out_h) // 2, (canvas_w - out_w) // 2  # the crop at t = 0
    centre = (x + (out_w - 1) / 2, y + (out_h - 1) / 2)
    frames = []
    for t in times:
        world = scene.copy()
        for piece, alpha, x0, y0, velocity in objects:
            _paste(world, piece, alpha, x0 + velocity[0] * t, y0 + velocity[1] * t)
        if t == 0:
            frame = world[y : y + out_h, x : x + out_w]
        else:
            frame = cv2.warpAffine(
                world,
                _camera(t, (out_h, out_w), centre, path),
                (out_w, out_h),
                flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                borderMode=cv2.BORDER_REFLECT_101,
            )
        frames.append(np.clip(frame, 0.0, 1.0))

    stored = motion.srgb_prob > 0 and bool(rng.random() < motion.srgb_prob)
    blurred = blur.average_frames(frames, gamma=None if stored else "srgb")
    sigma = float(rng.uniform(*motion.noise))
    if sigma > 0:
        noisy = blur.add_noise(io.srgb_to_linear(blurred), rng=rng, gaussian_sigma=sigma)
        blurred = io.linear_to_srgb(noisy)
    quality = None
    if motion.jpeg_prob > 0 and rng.random() < motion.jpeg_prob:
        quality = int(rng.integers(motion.jpeg_quality[0], motion.jpeg_quality[1] + 1))
        blurred = blur.jpeg_compress(np.clip(blurred, 0.0, 1.0), quality=quality)
    sharp = np.ascontiguousarray(frames[n // 2], dtype=np.float32)
    info = {
        "kind": "scenes",
        "window": n,
        "space": "stored" if stored else "linear",
        "travel": travel,
        "turn": math.degrees(theta),
        "zoom": zoom,
        "objects": len(objects),
        "jpeg_quality": quality,
    }
    return blurred.astype(np.float32), sharp, info
