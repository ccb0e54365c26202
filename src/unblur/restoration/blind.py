"""Blind estimation of a uniform blur kernel, coarse to fine, with an L0 sparse prior.

Model (true convolution, as :mod:`unblur.restoration.deconv`)::

    y = k * x + n,   k >= 0,  sum(k) = 1,  k supported on a (s, s) square,

with ``x`` unknown as well. :func:`estimate_kernel` alternates, on an image pyramid, between

* **latent image** -- ``min_x ||k * x - y||^2 + lam_g ||grad x||_0 + lam_i ||x||_0``, the
  L0-regularised intensity and gradient prior of Pan, Hu, Su & Yang (2014) (with
  ``lam_i = 0`` the L0 gradient prior of Xu, Zheng & Jia 2013), solved by half-quadratic
  splitting: hard thresholds on auxiliary variables and an exact quadratic step in the
  Fourier domain, the penalty weight doubling from ``2 lam`` to ``1e5``. The result is a
  piecewise-flat image keeping only salient edges, which is what makes the kernel step work
  (Cho & Lee 2009; Xu & Jia 2010);
* **kernel** -- the salient gradients of the latent image are kept (the strongest ones, at
  least ``0.5 sqrt(P_I s^2)`` pixels in each of four orientation bins, Cho & Lee's rule) and
  the kernel solves ``min_k ||grad x * k - grad y||^2 + gamma ||k||^2`` restricted to the
  ``(s, s)`` support and to the image (the reflected, tapered padding that makes the FFT's
  circular model fit is masked out of the residual), by conjugate gradients with the
  operators applied in the Fourier domain (Cho & Lee 2009, Pan et al. 2014). Values below
  ``max / 20`` are dropped, connected components holding less than 10% of the mass removed,
  the kernel made non-negative, normalised and re-centred (centre of mass to the middle:
  kernels are only defined up to translation).

The pyramid has a ratio of ``sqrt(2)`` between levels and starts where the kernel is about 5 px;
each level's kernel is upsampled to start the next. The prior weights decay by 1.1 per
alternation, letting finer edges in as the kernel sharpens.

:func:`deblur_blind` then restores every colour channel with
:func:`unblur.restoration.deconv.hyper_laplacian` and the kernel estimated on grey, about the
kernel's centre of mass to a fraction of a pixel (``origin="mass"``): the estimate is re-centred
by whole pixels only, and the remainder, up to half a pixel each way, would shift the picture
(on kodak24 camera shake, 27.72 -> 28.83 dB against the sharp photos: BENCHMARKS.md).

References:
    S. Cho, S. Lee. Fast motion deblurring. ACM Trans. Graphics (SIGGRAPH Asia) 28(5), 2009.

    L. Xu, J. Jia. Two-phase kernel estimation for robust motion deblurring. ECCV 2010.

    L. Xu, S. Zheng, J. Jia. Unnatural L0 sparse representation for natural image deblurring.
    CVPR 2013.

    J. Pan, Z. Hu, Z. Su, M.-H. Yang. Deblurring text images via L0-regularized intensity and
    gradient prior. CVPR 2014.

    A. Levin, Y. Weiss, F. Durand, W. T. Freeman. Understanding and evaluating blind
    deconvolution algorithms. CVPR 2009 (the benchmark and error ratio used to measure this).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np
import scipy.fft as sfft
from scipy import ndimage

from unblur.motion import as_grey
from unblur.restoration import deconv

__all__ = [
    "BlindResult",
    "LevelRecord",
    "deblur_blind",
    "estimate_kernel",
    "estimate_kernel_windowed",
]

_RATIO = math.sqrt(0.5)  # pyramid scale between levels
_COARSEST_KERNEL = 5  # kernel side at the coarsest level
_BETA_MAX = 1e5
_FLAT_GRADIENT = 1e-3  # below this RMS gradient the image has no edges to learn from
#: Kernel values below ``peak / PEAK_FRACTION`` are dropped after each kernel update.
PEAK_FRACTION = 20.0


@dataclass(frozen=True)
class LevelRecord:
    """What one pyramid level produced.

    Attributes:
        scale: Image scale of the level (1 is full size).
        kernel: float32 kernel estimated at that level (its own, smaller size).
    """

    scale: float
    kernel: np.ndarray


@dataclass(frozen=True)
class BlindResult:
    """Result of :func:`estimate_kernel`.

    Attributes:
        kernel: float32 ``(s, s)`` kernel, odd side, non-negative, summing to 1, centre of
            mass at the centre pixel, true-convolution orientation (``y = k * x``).
        latent: float32 ``(H, W)`` piecewise-flat grey latent image of the last alternation
            (an intermediate of the estimation, not a restoration: use
            :func:`unblur.restoration.deconv.hyper_laplacian` or :func:`deblur_blind` for that).
        history: One :class:`LevelRecord` per pyramid level, coarsest first.
        flat: True when the image had no edges and the kernel is a delta (see
            :func:`estimate_kernel`).
    """

    kernel: np.ndarray
    latent: np.ndarray
    history: tuple[LevelRecord, ...]
    flat: bool = False


# --------------------------------------------------------------------------------------------
# Fourier-domain helpers (circular model, kernels centred at (s // 2, s // 2))
# --------------------------------------------------------------------------------------------


def _psf2otf(kernel: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    kh, kw = kernel.shape
    big = np.zeros(shape, np.float64)
    big[:kh, :kw] = kernel
    big = np.roll(big, (-(kh // 2), -(kw // 2)), axis=(0, 1))
    return sfft.rfft2(big, workers=1)


def _otf2psf(otf: np.ndarray, shape: tuple[int, int], size: int) -> np.ndarray:
    """Centred ``(size, size)`` crop of the circular kernel whose transfer function is ``otf``."""
    full = sfft.irfft2(otf, s=shape, workers=1)
    half = size // 2
    full = np.roll(full, (half, half), axis=(0, 1))
    return full[:size, :size]


def _grad(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Circular forward differences along x and y."""
    return np.roll(x, -1, axis=1) - x, np.roll(x, -1, axis=0) - x


def _grad_adjoint(gx: np.ndarray, gy: np.ndarray) -> np.ndarray:
    """Adjoint of :func:`_grad` (minus the divergence)."""
    return (np.roll(gx, 1, axis=1) - gx) + (np.roll(gy, 1, axis=0) - gy)


def _grad_power(shape: tuple[int, int]) -> np.ndarray:
    """``|F dx|^2 + |F dy|^2`` on the real-FFT grid."""
    fy = sfft.fftfreq(shape[0])[:, None]
    fx = sfft.rfftfreq(shape[1])[None, :]
    return 4.0 * np.sin(np.pi * fx) ** 2 + 4.0 * np.sin(np.pi * fy) ** 2


# --------------------------------------------------------------------------------------------
# the two sub-problems
# --------------------------------------------------------------------------------------------


def _l0_latent(
    blurred: np.ndarray, kernel: np.ndarray, lam_grad: float, lam_intensity: float
) -> np.ndarray:
    """``argmin_x ||k * x - y||^2 + lam_g ||grad x||_0 + lam_i ||x||_0`` (half-quadratic split).

    Pan et al. (2014): auxiliary ``g ~ grad x`` (and ``u ~ x``) are hard-thresholded, then
    ``x`` is the exact minimiser of the quadratic, in the Fourier domain; the penalty weight
    doubles from ``2 lam`` up to ``1e5``.
    """
    shape = blurred.shape
    otf = _psf2otf(kernel, shape)
    k_power = np.abs(otf) ** 2
    g_power = _grad_power(shape)
    numerator = np.conj(otf) * sfft.rfft2(blurred, workers=1)
    x = blurred
    beta = 2.0 * lam_grad
    while beta < _BETA_MAX:
        gx, gy = _grad(x)
        small = gx**2 + gy**2 < lam_grad / beta
        gx[small] = 0.0
        gy[small] = 0.0
        rhs = numerator + beta * sfft.rfft2(_grad_adjoint(gx, gy), workers=1)
        den = k_power + beta * g_power
        if lam_intensity > 0:
            u = np.where(x**2 < lam_intensity / beta, 0.0, x)
            rhs = rhs + beta * sfft.rfft2(u, workers=1)
            den = den + beta
        x = sfft.irfft2(rhs / den, s=shape, workers=1)
        beta *= 2.0
    return x


def _salient_gradients(
    latent: np.ndarray, size: int, threshold: float | None, mask: np.ndarray
) -> tuple[np.ndarray, np.ndarray, float]:
    """Keep the strongest gradients of the latent image (Cho & Lee 2009's selection rule).

    With ``threshold`` ``None`` it is chosen so that each of four orientation bins keeps at
    least ``r sqrt(P_I P_K)`` pixels (``P_I``, ``P_K`` the pixel counts of image and kernel,
    ``r = 0.5``; measured on Levin's set, far fewer starves the kernel step); the threshold
    returned is 0.9 of the one used, so that later
    alternations admit more edges.
    """
    gx, gy = _grad(latent)
    mag = gx**2 + gy**2
    inside = mag[mask > 0]
    if threshold is None:
        orient = np.mod(np.arctan2(gy[mask > 0], gx[mask > 0]), np.pi)
        bins = np.minimum((orient / (np.pi / 4)).astype(np.intp), 3)
        need = max(1, int(0.5 * math.sqrt(inside.size * size * size)))
        levels = []
        for b in range(4):
            vals = np.sort(inside[bins == b])[::-1]
            levels.append(vals[min(need, len(vals)) - 1] if len(vals) else 0.0)
        threshold = float(min(levels))
    while threshold > 0 and not np.any(inside >= threshold):
        threshold *= 0.81
    keep = mag >= threshold
    return np.where(keep, gx, 0.0), np.where(keep, gy, 0.0), 0.9 * threshold


def _kernel_least_squares(
    latent_gx: np.ndarray,
    latent_gy: np.ndarray,
    blurred_gx: np.ndarray,
    blurred_gy: np.ndarray,
    mask: np.ndarray,
    start: np.ndarray,
    gamma: float,
    iterations: int,
) -> np.ndarray:
    """``argmin_k ||M (dx x * k - dx y)||^2 + ||M (dy x * k - dy y)||^2 + gamma ||k||^2``.

    ``k`` is restricted to its ``(s, s)`` support and ``M`` masks out the padding, where the
    observation is invented. Conjugate gradients on the normal equations
    ``(A^T M A + gamma) k = A^T M b``, the convolutions applied in the Fourier domain.
    """
    shape = latent_gx.shape
    size = start.shape[0]
    lx = sfft.rfft2(latent_gx, workers=1)
    ly = sfft.rfft2(latent_gy, workers=1)
    b = _otf2psf(
        np.conj(lx) * sfft.rfft2(mask * blurred_gx, workers=1)
        + np.conj(ly) * sfft.rfft2(mask * blurred_gy, workers=1),
        shape,
        size,
    )

    def apply(k: np.ndarray) -> np.ndarray:
        kf = _psf2otf(k, shape)
        rx = mask * sfft.irfft2(lx * kf, s=shape, workers=1)
        ry = mask * sfft.irfft2(ly * kf, s=shape, workers=1)
        back = np.conj(lx) * sfft.rfft2(rx, workers=1) + np.conj(ly) * sfft.rfft2(ry, workers=1)
        return _otf2psf(back, shape, size) + gamma * k

    k = start.astype(np.float64)
    r = b - apply(k)
    p = r.copy()
    rs = float(np.sum(r * r))
    for _ in range(iterations):
        ap = apply(p)
        alpha = rs / max(float(np.sum(p * ap)), 1e-30)
        k = k + alpha * p
        r = r - alpha * ap
        rs_new = float(np.sum(r * r))
        if rs_new < 1e-14 * max(float(np.sum(b * b)), 1e-30):
            break
        p = r + (rs_new / rs) * p
        rs = rs_new
    return k


def _clean_kernel(kernel: np.ndarray) -> np.ndarray:
    """Threshold at ``max / PEAK_FRACTION``, drop weak connected components, non-negative,
    normalise, re-centre."""
    k = np.clip(kernel, 0.0, None)
    peak = float(k.max())
    if peak <= 0:
        return _delta(kernel.shape[0])
    k[k < peak / PEAK_FRACTION] = 0.0
    labels, count = ndimage.label(k > 0, structure=np.ones((3, 3)))
    if count > 1:
        mass = ndimage.sum(k, labels, index=np.arange(1, count + 1))
        weak = np.flatnonzero(mass < 0.1 * mass.sum()) + 1
        k[np.isin(labels, weak)] = 0.0
    k /= k.sum()
    return _recentre(k)


def _recentre(kernel: np.ndarray) -> np.ndarray:
    """Shift by whole pixels so that the centre of mass is at the centre pixel (no wrap)."""
    size = kernel.shape[0]
    idx = np.arange(size)
    cy = float(np.sum(kernel.sum(axis=1) * idx))
    cx = float(np.sum(kernel.sum(axis=0) * idx))
    sy, sx = round(size // 2 - cy), round(size // 2 - cx)
    if sy == 0 and sx == 0:
        return kernel
    out = np.zeros_like(kernel)
    src_y = slice(max(0, -sy), min(size, size - sy))
    dst_y = slice(max(0, sy), min(size, size + sy))
    src_x = slice(max(0, -sx), min(size, size - sx))
    dst_x = slice(max(0, sx), min(size, size + sx))
    out[dst_y, dst_x] = kernel[src_y, src_x]
    total = out.sum()
    return out / total if total > 0 else kernel


def _delta(size: int) -> np.ndarray:
    k = np.zeros((size, size), np.float64)
    k[size // 2, size // 2] = 1.0
    return k


def _resize_kernel(kernel: np.ndarray, size: int) -> np.ndarray:
    """Upsample a kernel to the next level's side (bilinear, centred, re-normalised)."""
    factor = size / kernel.shape[0]
    new = max(1, round(kernel.shape[0] * factor))
    new += 1 - new % 2
    up = cv2.resize(kernel.astype(np.float64), (new, new), interpolation=cv2.INTER_LINEAR)
    up = np.clip(up, 0.0, None)
    out = np.zeros((size, size), np.float64)
    if new >= size:
        off = (new - size) // 2
        out[:] = up[off : off + size, off : off + size]
    else:
        off = (size - new) // 2
        out[off : off + new, off : off + new] = up
    total = out.sum()
    return _recentre(out / total) if total > 0 else _delta(size)


def _check_kernel_size(kernel_size: int, shape: tuple[int, int]) -> int:
    if isinstance(kernel_size, bool) or not isinstance(kernel_size, int | np.integer):
        raise ValueError(f"kernel_size must be an odd integer >= 3, got {kernel_size!r}")
    if kernel_size < 3 or kernel_size % 2 == 0:
        raise ValueError(f"kernel_size must be an odd integer >= 3, got {kernel_size}")
    h, w = shape
    if min(h, w) < 2 * kernel_size:
        raise ValueError(
            f"image {w}x{h} is too small for kernel_size {kernel_size}: "
            f"both sides must be at least {2 * kernel_size} px"
        )
    return int(kernel_size)


# --------------------------------------------------------------------------------------------
# public API
# --------------------------------------------------------------------------------------------


def estimate_kernel(
    image: np.ndarray,
    kernel_size: int,
    *,
    iterations: int = 5,
    lam_grad: float = 4e-3,
    lam_intensity: float = 0.0,
    gamma: float = 2.0,
    cg_iterations: int = 20,
) -> BlindResult:
    """Estimate a uniform blur kernel from one blurred image (coarse to fine, L0 prior).

    See the module docstring for the model and the algorithm (Cho & Lee 2009; Xu & Jia 2010;
    Pan, Hu, Su & Yang 2014). Colour images are converted to grey (channel mean). Kernels are
    only defined up to translation; the result is re-centred on its centre of mass.

    Args:
        image: Blurred ``(H, W)`` or ``(H, W, C)`` float image in [0, 1]; both sides at least
            ``2 * kernel_size``.
        kernel_size: Odd side ``s >= 3`` of the kernel support; choose it at least as large as
            the blur (too large is cheaper than too small).
        iterations: Alternations (latent, kernel) per pyramid level, ``>= 1``.
        lam_grad: Weight of the L0 gradient prior at the start (decays by 1.1 per
            alternation down to ``1e-4``), ``> 0``.
        lam_intensity: Weight of the L0 intensity prior, ``>= 0``; Pan et al. use it for text
            and dark images, ``0`` (the default) suits photographs.
        gamma: Tikhonov weight of the kernel least squares, ``> 0``.
        cg_iterations: Conjugate-gradient steps per kernel update, ``>= 1``.

    Returns:
        A :class:`BlindResult`. A flat image (RMS gradient below ``1e-3``: nothing to learn
        the blur from) does not raise: it gives a delta kernel, the grey image as latent and
        ``flat=True``.

    Raises:
        ValueError: bad image (shape, dtype, non-finite values), an even or too small
            ``kernel_size``, an image smaller than twice the kernel, or an out-of-range
            parameter.
    """
    grey = as_grey(image)
    size = _check_kernel_size(kernel_size, grey.shape)
    if isinstance(iterations, bool) or not isinstance(iterations, int) or iterations < 1:
        raise ValueError(f"iterations must be an integer >= 1, got {iterations!r}")
    if isinstance(cg_iterations, bool) or not isinstance(cg_iterations, int) or cg_iterations < 1:
        raise ValueError(f"cg_iterations must be an integer >= 1, got {cg_iterations!r}")
    if not (math.isfinite(lam_grad) and lam_grad > 0):
        raise ValueError(f"lam_grad must be > 0, got {lam_grad!r}")
    if not (math.isfinite(lam_intensity) and lam_intensity >= 0):
        raise ValueError(f"lam_intensity must be >= 0, got {lam_intensity!r}")
    if not (math.isfinite(gamma) and gamma > 0):
        raise ValueError(f"gamma must be > 0, got {gamma!r}")

    gx, gy = np.gradient(grey)
    if float(np.sqrt(np.mean(gx**2 + gy**2))) < _FLAT_GRADIENT:
        return BlindResult(
            kernel=_delta(size).astype(np.float32),
            latent=grey.astype(np.float32),
            history=(),
            flat=True,
        )

    # The L0 weights and thresholds assume a [0, 1] image; a dark one (linear light of a
    # night shot, say) is stretched to that range so the estimate does not depend on exposure.
    brightness = float(np.percentile(grey, 99.5))
    grey = grey / brightness if brightness > 0 else grey

    levels = max(0, math.floor(math.log(_COARSEST_KERNEL / size) / math.log(_RATIO)))
    scales = [_RATIO**i for i in range(levels + 1)][::-1]  # coarsest first
    sizes = [max(3, math.ceil(size * s)) for s in scales]
    sizes = [s + 1 - s % 2 for s in sizes]
    sizes[-1] = size

    kernel = np.zeros((sizes[0], sizes[0]))
    c = sizes[0] // 2
    kernel[c, c - 1 : c + 1] = 0.5  # Pan et al.'s two-pixel start (a delta is a fixed point)
    kernel = _recentre(kernel)
    history: list[LevelRecord] = []
    latent = grey
    for scale, ksize in zip(scales, sizes, strict=True):
        if kernel.shape[0] != ksize:
            kernel = _resize_kernel(kernel, ksize)
        if scale < 1.0:
            h = max(ksize * 2, round(grey.shape[0] * scale))
            w = max(ksize * 2, round(grey.shape[1] * scale))
            level = cv2.resize(grey, (w, h), interpolation=cv2.INTER_AREA)
        else:
            level = grey
        lam = lam_grad
        lam_i = lam_intensity
        threshold: float | None = None
        for _ in range(iterations):
            # reflect-pad and taper so that the circular (FFT) model fits the data
            padded = deconv._pad_and_taper(level.astype(np.float32), kernel.astype(np.float32))
            obs = padded.image.astype(np.float64)
            mask = np.zeros(obs.shape)
            mask[padded.crop] = 1.0
            latent = _l0_latent(obs, kernel, lam, lam_i)
            lgx, lgy, threshold = _salient_gradients(latent, ksize, threshold, mask)
            bgx, bgy = _grad(obs)
            estimate = _kernel_least_squares(lgx, lgy, bgx, bgy, mask, kernel, gamma, cg_iterations)
            kernel = _clean_kernel(estimate)
            lam = max(lam / 1.1, 1e-4)
            lam_i = max(lam_i / 1.1, 1e-4) if lam_intensity > 0 else 0.0
        latent = latent[padded.crop]
        history.append(LevelRecord(scale=float(scale), kernel=kernel.astype(np.float32)))

    return BlindResult(
        kernel=kernel.astype(np.float32),
        latent=(latent * (brightness if brightness > 0 else 1.0)).astype(np.float32),
        history=tuple(history),
    )


def deblur_blind(
    image: np.ndarray, kernel_size: int, *, max_side: int | None = 512
) -> tuple[np.ndarray, np.ndarray]:
    """Blind deblurring: estimate one kernel on grey, then deconvolve every channel with it.

    The kernel comes from :func:`estimate_kernel` (defaults), run on the most textured
    ``max_side`` x ``max_side`` window of the image (a uniform blur is the same everywhere,
    and the estimator's cost grows with the area); the restoration is
    :func:`unblur.restoration.deconv.hyper_laplacian` (Krishnan & Fergus 2009) with its defaults,
    applied to each channel of the whole image with the same kernel.

    Args:
        image: Blurred ``(H, W)`` or ``(H, W, C)`` float image in [0, 1]. Whether it is linear
            light or sRGB is the caller's choice (see :mod:`unblur.restoration.deconv`).
        kernel_size: Odd kernel side ``>= 3`` (see :func:`estimate_kernel`).
        max_side: Side of the window the kernel is estimated on (``None``: the whole image);
            at least ``2 * kernel_size``.

    Returns:
        ``(restored, kernel)``: float32 image of the input's shape in [0, 1], and the float32
        ``(kernel_size, kernel_size)`` kernel.

    Raises:
        ValueError: as :func:`estimate_kernel`.
    """
    img = np.asarray(image, dtype=np.float32)
    result = estimate_kernel_windowed(img, kernel_size, max_side=max_side)
    if result.flat:
        return np.clip(img, 0.0, 1.0), result.kernel
    return deconv.hyper_laplacian(img, result.kernel, origin="mass"), result.kernel


def estimate_kernel_windowed(
    image: np.ndarray, kernel_size: int, *, max_side: int | None = 512
) -> BlindResult:
    """:func:`estimate_kernel` on the most textured ``max_side`` window of the image.

    A uniform blur is the same everywhere and the estimator's cost grows with the area, so
    one well-textured window is enough (``None``: the whole image). The window is at least
    ``2 * kernel_size`` a side, as :func:`estimate_kernel` needs.

    Raises:
        ValueError: as :func:`estimate_kernel`.
    """
    img = np.asarray(image, dtype=np.float32)
    # a window must hold twice the kernel: a larger kernel widens it
    window = img if max_side is None else _textured_window(img, max(max_side, 2 * kernel_size))
    return estimate_kernel(window, kernel_size)


def _textured_window(image: np.ndarray, side: int) -> np.ndarray:
    """The ``side`` x ``side`` window (on a half-side grid) with the most gradient energy."""
    h, w = image.shape[:2]
    if h <= side and w <= side:
        return image
    grey = as_grey(image) if image.ndim == 3 else image
    gy, gx = np.gradient(grey.astype(np.float64))
    energy = np.hypot(gx, gy)
    sh, sw = min(side, h), min(side, w)
    step = max(side // 2, 1)
    best, best_pos = -1.0, (0, 0)
    for y in sorted({*range(0, h - sh + 1, step), h - sh}):
        for x in sorted({*range(0, w - sw + 1, step), w - sw}):
            value = float(energy[y : y + sh, x : x + sw].mean())
            if value > best:
                best, best_pos = value, (y, x)
    y, x = best_pos
    return image[y : y + sh, x : x + sw]
