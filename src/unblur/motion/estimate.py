"""Estimating the blur motion field of a photo or a video frame: :func:`estimate_motion`.

Methods:

* ``cnn``: the single-image network ``motion-single`` (:mod:`unblur.models.motion_net`), a
  per-pixel field with the network's own confidence; the length fuses the network's length
  posteriors on the image and on it shrunk to 1/2, 0.35 and 1/4 (``scales``).
* ``frames``: the two-frame network ``motion-frames``, given the previous and next frames;
  their differences with the frame carry the frame-to-frame motion.
* ``spectral``: one uniform linear blur from the power cepstrum
  (:func:`unblur.motion.estimate_linear_spectral`); constant field and confidence.
* ``blind``: one full blur kernel, coarse-to-fine with an L0 prior
  (:func:`unblur.restoration.blind.estimate_kernel`); the field is the kernel's principal axis (the
  straight streak with the same second moments), constant.

Large images are estimated at a working size (``max_side``) and the field scaled back, so the
cost is bounded and long blurs stay within the networks' range (they were trained on blurs up
to 36 px at the working size).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from unblur.errors import InputError

__all__ = [
    "METHODS",
    "MotionEstimate",
    "estimate_motion",
    "kernel_axis",
]

METHODS = ("auto", "cnn", "frames", "spectral", "blind")
MIN_SIDE = 32
#: Image scales whose length posteriors ``cnn`` fuses with the full-size one's (chosen on
#: whole set14/set5 photos blurred as in ``benchmarks/motion.py``; BENCHMARKS.md): the
#: network judges long streaks better on a shrunk image.
CNN_SCALES = (0.5, 0.35, 0.25)


@dataclass(frozen=True)
class MotionEstimate:
    """An estimated blur motion field.

    Attributes:
        field: float32 ``(H, W, 2)`` canonical ``(dx, dy)`` in pixels (``x`` right, ``y``
            down, ``dx >= 0``: a streak has no sign), same size as the image.
        confidence: float32 ``(H, W)`` in ``[0, 1]``; higher is more trustworthy. For the
            networks it comes from their predicted error, for ``spectral`` from the cepstral
            peak, for ``blind`` it is 1 where an estimate was made, 0 for a flat image.
        method: the method that produced it.
        kernel: the uniform kernel (``spectral``, ``blind``), else ``None``.
    """

    field: np.ndarray
    confidence: np.ndarray
    method: str
    kernel: np.ndarray | None = None


def _as_rgb(image: np.ndarray, name: str) -> np.ndarray:
    img = np.asarray(image)
    if img.ndim == 3 and img.shape[2] == 4:
        img = img[..., :3]
    if img.ndim == 3 and img.shape[2] == 1:
        img = img[..., 0]
    if img.ndim == 2:
        img = np.repeat(img[..., None], 3, axis=2)
    if img.ndim != 3 or img.shape[2] != 3:
        raise InputError(f"{name} must be an (H, W) or (H, W, 3) image, got shape {img.shape}")
    if not np.issubdtype(img.dtype, np.floating):
        raise InputError(f"{name} must be a float image in [0, 1], got dtype {img.dtype}")
    img = img.astype(np.float32)
    if not np.all(np.isfinite(img)):
        raise InputError(f"{name} has NaN or infinite values")
    if min(img.shape[:2]) < MIN_SIDE:
        h, w = img.shape[:2]
        raise InputError(
            f"{name} is {w}x{h} px: too small to estimate motion (needs {MIN_SIDE} px a side)"
        )
    return np.clip(img, 0.0, 1.0)


@functools.lru_cache(maxsize=4)
def _network(name: str, device: str):
    from unblur.models import create_model

    return create_model(name).to(device)


def _scale_for(shape: Sequence[int], max_side: int | None) -> float:
    if max_side is None or max(shape[:2]) <= max_side:
        return 1.0
    return max_side / max(shape[:2])


def _resize(image: np.ndarray, scale: float) -> np.ndarray:
    if scale == 1.0:
        return image
    h, w = image.shape[:2]
    size = (max(MIN_SIDE, round(w * scale)), max(MIN_SIDE, round(h * scale)))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA)


def _upscale_field(
    field: np.ndarray, confidence: np.ndarray, shape: tuple[int, int]
) -> tuple[np.ndarray, np.ndarray]:
    """Bring a working-size field to full size: doubled-angle interpolation, lengths scaled."""
    h, w = shape
    fh, fw = field.shape[:2]
    if (fh, fw) == (h, w):
        return field, confidence
    dx, dy = field[..., 0].astype(np.float64), field[..., 1].astype(np.float64)
    length = np.hypot(dx, dy)
    safe = np.maximum(length, 1e-9)
    doubled = np.stack(((dx * dx - dy * dy) / safe, -2 * dx * dy / safe), axis=2)
    doubled = cv2.resize(doubled.astype(np.float32), (w, h), interpolation=cv2.INTER_LINEAR)
    length = cv2.resize(length.astype(np.float32), (w, h), interpolation=cv2.INTER_LINEAR)
    conf = cv2.resize(confidence.astype(np.float32), (w, h), interpolation=cv2.INTER_LINEAR)
    length *= (w / fw + h / fh) / 2
    angle = 0.5 * np.arctan2(doubled[..., 1], doubled[..., 0])
    out = np.stack((length * np.cos(angle), -length * np.sin(angle)), axis=2)
    from unblur.motion import canonical

    return canonical(out), np.clip(conf, 0, 1).astype(np.float32)


def _run_network(
    name: str,
    inputs: list[np.ndarray],
    device: str,
    weights: Path | None,
    tta: bool,
    scales: Sequence[float] = (),
) -> tuple[np.ndarray, np.ndarray]:
    import torch

    from unblur.models.motion_net import doubled_to_vector, vector_to_doubled
    from unblur.motion import canonical

    if weights is None:
        net = _network(name, device)
    else:
        from unblur.models import create_model, load_weights

        net = create_model(name, pretrained=False)
        load_weights(net, weights)
        net = net.to(device).eval()
    if net.head_kind != "classify":
        scales = ()  # the fusion needs the classify head's length posteriors
    x = np.concatenate(inputs, axis=2).transpose(2, 0, 1)[None]
    x_t = torch.from_numpy(np.ascontiguousarray(x)).to(device)
    # test-time augmentation: the four flips; a flip of the image negates dx or dy of the
    # field, and the estimates are averaged as doubled-angle vectors (sign-free)
    flips = [(), (-1,), (-2,), (-1, -2)] if tta else [()]
    doubled_sum, length_sum, conf_sum = 0.0, 0.0, 0.0
    with torch.inference_mode():
        for dims in flips:
            field, conf = net.field(x_t.flip(dims) if dims else x_t, scales=scales)
            if dims:
                field, conf = field.flip(dims), conf.flip(dims)
                sign = torch.tensor(
                    [-1.0 if -1 in dims else 1.0, -1.0 if -2 in dims else 1.0], device=field.device
                )
                field = field * sign[None, :, None, None]
            doubled_sum = doubled_sum + vector_to_doubled(field)
            length_sum = length_sum + torch.linalg.vector_norm(field, dim=1, keepdim=True)
            conf_sum = conf_sum + conf
        n = len(flips)
        field = doubled_to_vector(doubled_sum / n, length_sum / n)
        conf = conf_sum / n
    field_np = field[0].permute(1, 2, 0).float().cpu().numpy()
    return canonical(field_np), conf[0, 0].float().cpu().numpy().astype(np.float32)


def kernel_axis(kernel: np.ndarray) -> np.ndarray:
    """The straight streak with a kernel's second moments: canonical ``(dx, dy)`` in pixels.

    A uniform segment of length ``L`` has variance ``L^2 / 12`` along itself, so
    ``L = sqrt(12 * lambda_max)`` of the kernel's covariance, along its principal axis.
    """
    k = np.asarray(kernel, np.float64)
    total = k.sum()
    if k.ndim != 2 or total <= 0:
        return np.zeros(2, np.float32)
    ys, xs = np.mgrid[: k.shape[0], : k.shape[1]]
    k = k / total
    mx, my = (k * xs).sum(), (k * ys).sum()
    cxx = (k * (xs - mx) ** 2).sum()
    cyy = (k * (ys - my) ** 2).sum()
    cxy = (k * (xs - mx) * (ys - my)).sum()
    values, vectors = np.linalg.eigh(np.array([[cxx, cxy], [cxy, cyy]]))
    length = math.sqrt(12 * max(values[1] - values[0], 0.0))
    from unblur.motion import canonical

    return canonical(vectors[:, 1] * length)


def estimate_motion(
    image: np.ndarray,
    *,
    method: str = "auto",
    frames: tuple[np.ndarray, np.ndarray] | None = None,
    max_side: int | None = 1024,
    kernel_size: int = 31,
    device: str = "cpu",
    weights: str | Path | None = None,
    tta: bool = False,
    scales: Sequence[float] | None = None,
) -> MotionEstimate:
    """Estimate the blur motion field of an image.

    Args:
        image: blurred ``(H, W)`` or ``(H, W, 3)`` float image in ``[0, 1]`` (sRGB as stored;
            alpha ignored), at least 32 px a side.
        method: ``auto`` (``frames`` when ``frames`` are given, else ``cnn``), ``cnn``,
            ``frames``, ``spectral`` or ``blind`` (see the module docstring).
        frames: ``(previous, next)`` frames of the same size, for ``frames``.
        max_side: the networks work on the image shrunk to this long side (``None``: full
            size) and the field is scaled back.
        kernel_size: kernel side for ``blind`` (odd, larger than the blur).
        device: torch device for the networks.
        weights: safetensors weights to use instead of the shipped network's.
        tta: average the networks' estimates over the four flips of the input (4x the cost).
        scales: the networks also read the blur length from the working image shrunk by these
            factors and fuse the length posteriors (``MotionNet.multiscale_length``); the
            direction comes from the full-size image. ``None``: :data:`CNN_SCALES` for
            ``cnn``, none for ``frames``; ``()`` turns it off.

    Returns:
        A :class:`MotionEstimate` at the image's size.

    Raises:
        InputError: bad or tiny image, frames of another size, a method that needs frames
            without them.
        ValueError: unknown method.
    """
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; choose from {', '.join(METHODS)}")
    img = _as_rgb(image, "image")
    h, w = img.shape[:2]
    if method == "auto":
        method = "frames" if frames is not None else "cnn"
    if method == "frames":
        if frames is None or len(frames) != 2:
            raise InputError("method 'frames' needs the previous and next frames")
        names = ("previous frame", "next frame")
        neighbours = [_as_rgb(f, name) for f, name in zip(frames, names, strict=True)]
        for f, name in zip(neighbours, names, strict=True):
            if f.shape != img.shape:
                raise InputError(
                    f"the {name} is {f.shape[1]}x{f.shape[0]} but the image is {w}x{h}"
                )
    weights_path = None if weights is None else Path(weights)

    if method in ("cnn", "frames"):
        scale = _scale_for(img.shape, max_side)
        work = [_resize(img, scale)]
        if method == "frames":
            work = [_resize(neighbours[0], scale), work[0], _resize(neighbours[1], scale)]
        name = "motion-single" if method == "cnn" else "motion-frames"
        if scales is None:
            scales = CNN_SCALES if method == "cnn" else ()
        field, conf = _run_network(name, work, device, weights_path, tta, tuple(scales))
        field, conf = _upscale_field(field, conf, (h, w))
        return MotionEstimate(field, conf, method)

    from unblur.blur import linear_kernel
    from unblur.motion import as_grey, estimate_linear_spectral

    if method == "spectral":
        est = estimate_linear_spectral(as_grey(img))
        field = np.broadcast_to(est.vector, (h, w, 2)).astype(np.float32)
        conf = np.full((h, w), est.confidence, np.float32)
        kernel = linear_kernel(est.length, est.angle).astype(np.float32)
        return MotionEstimate(field, conf, method, kernel)

    from unblur import io
    from unblur.restoration import blind

    if kernel_size < 3 or kernel_size % 2 == 0:
        raise ValueError(f"kernel_size must be an odd number >= 3, got {kernel_size}")
    if min(h, w) < 2 * kernel_size:
        raise InputError(
            f"image {w}x{h} is too small for a {kernel_size} px kernel "
            f"(needs at least {2 * kernel_size} px a side)"
        )
    result = blind.estimate_kernel_windowed(io.srgb_to_linear(img), kernel_size)
    vec = np.zeros(2, np.float32) if result.flat else kernel_axis(result.kernel)
    field = np.broadcast_to(vec, (h, w, 2)).astype(np.float32)
    conf = np.full((h, w), 0.0 if result.flat else 1.0, np.float32)
    return MotionEstimate(field, conf, method, result.kernel.astype(np.float32))
