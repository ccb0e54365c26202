"""Spectral (cepstral) estimation of a uniform linear blur from one image.

The spectral estimator :func:`estimate_linear_spectral` identifies a *uniform* linear blur
from a single image. A box blur of length ``L`` along the unit direction ``u`` multiplies the
spectrum by ``sinc(L f.u)``, whose zeros are parallel lines perpendicular to ``u`` spaced
``1/L`` apart. The logarithm turns that periodic pattern into a sum of cosines, so the
*power cepstrum* (inverse Fourier transform of the log power spectrum) has its strongest
negative peaks at ``±L u`` (Rom 1975; Cannon 1976). The peak's direction gives the angle and
its distance the length. Sampling the cepstrum along rays is, by the projection-slice theorem,
the same as the Radon projection of the log spectrum used by later authors.

References:
    R. Rom. On the cepstrum of two-dimensional functions. IEEE Trans. Information Theory
    21(2), 1975.

    M. Cannon. Blind deconvolution of spatially invariant image blurs with phase. IEEE Trans.
    Acoustics, Speech, and Signal Processing 24(1), 1976.

    J. P. Oliveira, M. A. T. Figueiredo, J. M. Bioucas-Dias. Blind estimation of motion blur
    parameters for image deconvolution. IbPRIA 2007.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import scipy.fft as sfft
from scipy import ndimage

from unblur.motion.field import from_polar

__all__ = ["LinearEstimate", "as_grey", "estimate_linear_spectral", "spectral_field"]


@dataclass(frozen=True)
class LinearEstimate:
    """A uniform linear blur estimated from an image.

    Attributes:
        length: Streak length in pixels (as :func:`unblur.blur.linear_kernel` takes it).
        angle: Direction in degrees in ``[0, 180)``, counter-clockwise from ``+x`` with ``y``
            up.
        confidence: In ``[0, 1]``: how far the cepstral peak stands out of the cepstrum's
            spread. Below about 0.2 no linear blur was found and ``length``/``angle`` are
            guesses (sharp image, blur shorter than ~3 px, or not a straight streak).
    """

    length: float
    angle: float
    confidence: float

    @property
    def vector(self) -> np.ndarray:
        """Canonical float32 ``(dx, dy)``."""
        return from_polar(self.length, self.angle)


_MIN_SIDE = 32
_MAX_BLOCK = 256
_MIN_RADIUS = 2.5  # quefrencies below this hold the image's own spectral envelope


def as_grey(image: np.ndarray) -> np.ndarray:
    """Validated float64 grey version of an ``(H, W)`` or ``(H, W, C)`` float image."""
    img = np.asarray(image)
    if img.ndim == 3 and img.shape[2] in (1, 3, 4):
        img = img[..., 0] if img.shape[2] == 1 else img[..., :3].mean(axis=2)
    if img.ndim != 2:
        raise ValueError(f"image must have shape (H, W) or (H, W, C), got {np.shape(image)}")
    if not np.issubdtype(img.dtype, np.floating):
        raise ValueError(f"image must be a float array in [0, 1], got dtype {img.dtype}")
    img = img.astype(np.float64)
    if not np.all(np.isfinite(img)):
        raise ValueError("image has NaN or infinite values")
    return img


def _default_block(h: int, w: int) -> int:
    """Block side: the largest power of two up to 256 that fits twice along the short side.

    Below 128 px that would leave too small a block, so one block as large as the image is used.
    """
    side = min(h, w)
    if side >= 128:
        return min(_MAX_BLOCK, 2 ** math.floor(math.log2(side / 2)))
    return max(_MIN_SIDE, 2 ** math.floor(math.log2(side)))


def _log_power(grey: np.ndarray, block: int) -> np.ndarray:
    """Welch estimate of the log power spectrum: Hann-windowed blocks, half-overlapping."""
    h, w = grey.shape
    # up to 5 block positions per axis, at least a quarter block apart, spread over the image
    ny = min(5, 1 + (h - block) // (block // 4))
    nx = min(5, 1 + (w - block) // (block // 4))
    ys = np.linspace(0, h - block, ny).round().astype(int)
    xs = np.linspace(0, w - block, nx).round().astype(int)
    win1 = np.hanning(block + 2)[1:-1]
    window = np.outer(win1, win1)
    idx_y = ys[:, None] + np.arange(block)[None, :]  # (ny, block)
    idx_x = xs[:, None] + np.arange(block)[None, :]
    blocks = grey[idx_y[:, None, :, None], idx_x[None, :, None, :]]  # (ny, nx, block, block)
    blocks = blocks.reshape(-1, block, block)
    blocks = blocks - blocks.mean(axis=(1, 2), keepdims=True)
    power = np.mean(np.abs(sfft.fft2(blocks * window, axes=(1, 2), workers=1)) ** 2, axis=0)
    scale = float(np.mean(power)) + 1e-30
    return np.log(power / scale + 1e-10)


def _whiten(log_power: np.ndarray) -> np.ndarray:
    """Remove the isotropic envelope (mean of the log spectrum on each frequency ring)."""
    n = log_power.shape[0]
    f = sfft.fftfreq(n) * n
    radius = np.hypot(f[:, None], f[None, :]).round().astype(np.intp)
    sums = np.bincount(radius.ravel(), weights=log_power.ravel())
    counts = np.bincount(radius.ravel())
    ring_mean = sums / np.maximum(counts, 1)
    return log_power - ring_mean[radius]


def estimate_linear_spectral(
    image: np.ndarray,
    *,
    max_length: float | None = None,
    angle_step: float = 0.25,
    block: int | None = None,
) -> LinearEstimate:
    """Estimate a uniform linear motion blur from the power cepstrum of the blurred image.

    Model: ``y = k * x + n`` with ``k`` a line segment of length ``L`` at angle ``a``
    (:func:`unblur.blur.linear_kernel`). The image is converted to grey and cut into up to
    5 x 5 overlapping Hann-windowed square blocks (``block`` px) whose power spectra are
    averaged (Welch), so any image size works. The log power
    spectrum is whitened by removing its mean on each frequency ring (the natural-image
    ``1/f^2`` envelope), and its inverse FFT, the power cepstrum, is sampled along rays through
    the origin every ``angle_step`` degrees. Each radius is normalised by the cepstrum's robust
    spread over angles, and the most negative sample, at radius ``r >= 2.5``, marks the blur:
    its direction is the angle and its radius the length (Rom 1975; Cannon 1976), both refined
    by parabolic interpolation.

    Args:
        image: Blurred ``(H, W)`` or ``(H, W, C)`` float image, sides ``>= 32`` px.
        max_length: Longest blur searched, in pixels, at most ``block / 2 - 2``; ``None``
            means ``0.45 * block`` (115 px for 256-px blocks).
        angle_step: Angular sampling of the search in degrees, in ``(0, 10]``.
        block: Side of the analysis blocks, in ``[32, min(H, W)]``; ``None`` picks the
            largest power of two up to 256 that fits twice along the short side (one block
            as large as the image below 128 px). Longer blurs need larger blocks, noisier
            images more blocks.

    Returns:
        A :class:`LinearEstimate` with ``confidence`` from the peak's robust z-score.

    Raises:
        ValueError: bad image (shape, dtype, non-finite values, a side below 32 px) or
            out-of-range ``max_length`` / ``angle_step`` / ``block``.
    """
    grey = as_grey(image)
    h, w = grey.shape
    if min(h, w) < _MIN_SIDE:
        raise ValueError(f"image sides must be >= {_MIN_SIDE} px, got {w}x{h}")
    if not (math.isfinite(angle_step) and 0 < angle_step <= 10):
        raise ValueError(f"angle_step must be in (0, 10] degrees, got {angle_step!r}")
    if block is None:
        block = _default_block(h, w)
    elif isinstance(block, bool) or not isinstance(block, int) or not 32 <= block <= min(h, w):
        raise ValueError(f"block must be an integer in [32, {min(h, w)}], got {block!r}")
    r_max = min(0.45 * block, block / 2 - 2) if max_length is None else float(max_length)
    if not (math.isfinite(r_max) and _MIN_RADIUS + 1 <= r_max <= block / 2 - 2):
        raise ValueError(
            f"max_length must be in [{_MIN_RADIUS + 1}, {block / 2 - 2}] for a {w}x{h} image, "
            f"got {max_length!r}"
        )
    if float(np.std(grey)) < 1e-6:
        return LinearEstimate(0.0, 0.0, 0.0)

    cep = sfft.fftshift(np.real(sfft.ifft2(_whiten(_log_power(grey, block)), workers=1)))
    centre = block // 2

    angles = np.arange(0.0, 180.0, angle_step)
    radii = np.arange(_MIN_RADIUS, r_max + 1e-9, 0.25)
    theta = np.radians(angles)[:, None]
    # a direction (cos a, -sin a) in (x, y-down) pixels, sampled at (row, col)
    rows = centre - radii[None, :] * np.sin(theta)
    cols = centre + radii[None, :] * np.cos(theta)
    rays = ndimage.map_coordinates(cep, [rows, cols], order=1, mode="grid-wrap")
    # cepstra of images fall with quefrency; compare each radius with its own spread
    spread = 1.4826 * np.median(np.abs(rays - np.median(rays, axis=0)), axis=0) + 1e-12
    z = -(rays - np.median(rays, axis=0)) / spread
    best = int(np.argmax(z))
    ia, ir = np.unravel_index(best, z.shape)

    def vertex(values: np.ndarray, i: int, wrap: bool) -> float:
        """Sub-sample offset of an extremum from a parabola through three samples."""
        n = len(values)
        if not wrap and (i == 0 or i == n - 1):
            return 0.0
        a, b, c = values[(i - 1) % n], values[i], values[(i + 1) % n]
        den = a - 2 * b + c
        return 0.0 if den == 0 else float(np.clip(0.5 * (a - c) / den, -0.5, 0.5))

    angle = float(np.mod(angles[ia] + angle_step * vertex(z[:, ir], ia, True), 180.0))
    length = float(radii[ir] + 0.25 * vertex(z[ia], ir, False))
    peak = float(z[ia, ir])
    confidence = float(np.clip((peak - 4.0) / 8.0, 0.0, 1.0))
    angle = angle if angle < 180.0 else 0.0
    return LinearEstimate(length=length, angle=angle, confidence=confidence)


def spectral_field(image: np.ndarray) -> tuple[np.ndarray, float]:
    """Constant motion field of the uniform linear blur found by :func:`estimate_linear_spectral`.

    The spectral method assumes one blur for the whole image, so the field is constant: the
    baseline against which spatially varying estimators are measured.

    Args:
        image: Blurred ``(H, W)`` or ``(H, W, C)`` float image.

    Returns:
        ``(field, confidence)``: float32 ``(H, W, 2)`` canonical ``(dx, dy)`` and the
        estimate's confidence in ``[0, 1]``.
    """
    est = estimate_linear_spectral(image)
    h, w = np.shape(image)[:2]
    field = np.broadcast_to(est.vector, (h, w, 2)).astype(np.float32)
    return field, est.confidence
