"""Non-blind deconvolution: undo a known blur.

Forward model (true convolution, kernel centred at ``(k // 2, k // 2)``, or at its centre of
mass with ``origin="mass"``)::

    y = k * x + n

where ``y`` is the observed (blurred) image, ``k`` a non-negative kernel that
sums to 1, ``x`` the sharp image and ``n`` noise. All functions take float32
images of shape ``(H, W)`` or ``(H, W, C)`` with values in [0, 1] and return
float32 arrays of the same shape; colour images are restored channel by
channel with the same kernel. Whether the values are linear light or
sRGB-encoded is the caller's choice: the physics is linear, so
:func:`unblur.io.srgb_to_linear` should be applied first where the image was
blurred in linear light (the command line does this).

Boundaries: the image is extended by reflection and the extension is tapered
towards its circularly blurred self (as MATLAB's ``edgetaper``), so that the
periodic model of the FFT matches the data and no ringing frames the result.

Methods:

* :func:`wiener` -- Wiener filter with a natural-image (1/f^2) prior whose
  noise-to-signal ratio is estimated from the image.
* :func:`richardson_lucy` -- damped Richardson-Lucy (White 1994) with a
  discrepancy / relative-change stopping rule.
* :func:`hyper_laplacian` -- fast hyper-Laplacian-prior deconvolution
  (Krishnan & Fergus, NIPS 2009) by half-quadratic splitting solved in the
  Fourier domain, with a lookup table for the ``|w|^alpha`` shrinkage.
* :func:`deconvolve_varying` -- spatially varying kernels by overlapping
  patches blended with a partition of unity (efficient filter flow, Hirsch et
  al. 2010), so that a per-pixel motion field can drive deconvolution.

References:
    D. Krishnan, R. Fergus. Fast image deconvolution using hyper-Laplacian
    priors. NIPS 2009.
    R. L. White. Image restoration using the damped Richardson-Lucy method.
    SPIE 1994.
    M. Hirsch, S. Sra, B. Schölkopf, S. Harmeling. Efficient filter flow for
    space-variant multiframe blind deconvolution. CVPR 2010.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import numpy as np
import scipy.fft as sfft

from unblur.errors import KernelError
from unblur.progress import bar as progress_bar

Method = Literal["wiener", "rl", "hyperlaplacian"]
METHODS: tuple[str, ...] = ("hyperlaplacian", "wiener", "rl")
Origin = Literal["centre", "mass"]
ORIGINS: tuple[str, ...] = ("centre", "mass")

_NOISE_FLOOR = 2e-3  # smallest noise level assumed, even for clean synthetic input


# --------------------------------------------------------------------------- kernels


def validate_kernel(
    kernel: np.ndarray, image_shape: tuple[int, ...] | None = None, *, name: str = "kernel"
) -> np.ndarray:
    """Check a blur kernel and return it as a normalised float32 array of odd size.

    Args:
        kernel: 2-D array of non-negative weights.
        image_shape: shape of the image it will be applied to; the kernel may
            not be larger than the image.
        name: how to call the kernel in error messages (a file name, say).

    Returns:
        float32 ``(k, k')`` kernel with odd sides, summing to 1. Even sides are
        padded with a zero row/column at the end.

    Raises:
        KernelError: if the kernel is empty, not 2-D, not finite, negative,
            all zeros or larger than the image.
    """
    k = np.asarray(kernel)
    if k.size == 0:
        raise KernelError("kernel is empty", name)
    if k.ndim == 3 and k.shape[2] in (1, 3, 4):
        k = k[..., 0] if k.shape[2] == 1 else k[..., :3].mean(axis=2)
    if k.ndim != 2:
        raise KernelError(f"kernel must be a 2-D array, got shape {k.shape}", name)
    if not np.issubdtype(k.dtype, np.number) or np.iscomplexobj(k):
        raise KernelError(f"kernel must hold real numbers, got dtype {k.dtype}", name)
    k = k.astype(np.float64)
    if not np.all(np.isfinite(k)):
        raise KernelError("kernel has NaN or infinite values", name)
    peak = float(np.abs(k).max())
    if peak == 0.0:
        raise KernelError("kernel is all zeros", name)
    if k.min() < -1e-3 * peak:
        raise KernelError(f"kernel has negative values (min {k.min():.3g})", name)
    k = np.clip(k, 0.0, None)
    if image_shape is not None and (k.shape[0] > image_shape[0] or k.shape[1] > image_shape[1]):
        raise KernelError(
            f"kernel {k.shape[1]}x{k.shape[0]} is larger than the image "
            f"{image_shape[1]}x{image_shape[0]}",
            name,
        )
    pad = (0, 1 - k.shape[0] % 2), (0, 1 - k.shape[1] % 2)
    k = np.pad(k, pad)
    return (k / k.sum()).astype(np.float32)


def mass_offset(kernel: np.ndarray) -> tuple[float, float]:
    """``(dy, dx)``: how far the kernel's centre of mass lies from its centre pixel."""
    k = np.asarray(kernel, np.float64)
    total = float(k.sum())
    if total <= 0:
        return 0.0, 0.0
    rows, cols = k.sum(axis=1) / total, k.sum(axis=0) / total
    return (
        float(np.dot(rows, np.arange(k.shape[0]))) - k.shape[0] // 2,
        float(np.dot(cols, np.arange(k.shape[1]))) - k.shape[1] // 2,
    )


def _check_origin(origin: str) -> None:
    if origin not in ORIGINS:
        raise ValueError(f"origin must be one of {', '.join(ORIGINS)}, got {origin!r}")


def _psf2otf(kernel: np.ndarray, shape: tuple[int, int], origin: str = "centre") -> np.ndarray:
    """Real-FFT transfer function of a kernel for circular convolution on ``shape``.

    ``origin="centre"``: the kernel's centre pixel ``(k // 2, k // 2)`` is the origin (the usual
    convention: a kernel off centre shifts the picture). ``"mass"``: its centre of mass is, to a
    fraction of a pixel (a phase ramp: the kernel moved by exactly ``-mass_offset``).
    """
    kh, kw = kernel.shape
    big = np.zeros(shape, np.float32)
    big[:kh, :kw] = kernel
    big = np.roll(big, (-(kh // 2), -(kw // 2)), axis=(0, 1))
    otf = sfft.rfft2(big)
    if origin == "mass":
        dy, dx = mass_offset(kernel)
        fy = sfft.fftfreq(shape[0])[:, None]
        fx = sfft.rfftfreq(shape[1])[None, :]
        otf = (otf * np.exp(2j * np.pi * (fy * dy + fx * dx))).astype(otf.dtype)
    return otf


def _gradient_otfs(shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Transfer functions of forward differences along x and y (circular)."""
    dx = np.zeros(shape, np.float32)
    dx[0, 0], dx[0, -1] = -1.0, 1.0  # x[i+1] - x[i] as a circular correlation
    dy = np.zeros(shape, np.float32)
    dy[0, 0], dy[-1, 0] = -1.0, 1.0
    return sfft.rfft2(dx), sfft.rfft2(dy)


# --------------------------------------------------------------------------- boundaries


@dataclass(frozen=True)
class _Padded:
    image: np.ndarray  # (H', W') padded, tapered plane
    crop: tuple[slice, slice]


def _pad_and_taper(plane: np.ndarray, kernel: np.ndarray) -> _Padded:
    """Extend a plane by reflection and taper the extension to be consistent with circular blur."""
    h, w = plane.shape
    kh, kw = kernel.shape
    py, px = max((3 * kh) // 4, 8), max((3 * kw) // 4, 8)
    hh, ww = sfft.next_fast_len(h + 2 * py, real=True), sfft.next_fast_len(w + 2 * px, real=True)
    top, left = py, px
    bottom, right = hh - h - top, ww - w - left
    padded = np.pad(plane, ((top, bottom), (left, right)), mode="symmetric")
    # weight: 1 on the image, falling smoothly to 0 in the middle of the extension
    wy = _ramp(hh, top, h)
    wx = _ramp(ww, left, w)
    weight = np.outer(wy, wx).astype(np.float32)
    blurred = sfft.irfft2(sfft.rfft2(padded) * _psf2otf(kernel, (hh, ww)), s=(hh, ww))
    tapered = weight * padded + (1.0 - weight) * blurred.astype(np.float32)
    return _Padded(tapered.astype(np.float32), (slice(top, top + h), slice(left, left + w)))


def _ramp(n: int, start: int, length: int) -> np.ndarray:
    """1 inside ``[start, start+length)``, a raised-cosine fall to 0 half-way through the margin."""
    idx = np.arange(n, dtype=np.float64)
    before = start - idx  # > 0 left of the image
    after = idx - (start + length - 1)  # > 0 right of the image
    dist = np.maximum(np.maximum(before, after), 0.0)
    # margin on either side, wrapping: the two margins meet at the middle of their sum
    margin = (n - length) / 2.0
    t = np.clip(dist / max(margin, 1.0), 0.0, 1.0)
    return 0.5 * (1.0 + np.cos(np.pi * t))


def _per_channel(image: np.ndarray, fn: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
    img = _as_float_image(image)
    if img.ndim == 2:
        return fn(img)
    return np.stack([fn(img[..., c]) for c in range(img.shape[2])], axis=2)


def _as_float_image(image: np.ndarray) -> np.ndarray:
    img = np.asarray(image)
    if img.ndim not in (2, 3):
        raise ValueError(f"image must have shape (H, W) or (H, W, C), got {img.shape}")
    if not np.issubdtype(img.dtype, np.floating):
        raise ValueError(f"image must be a float array in [0, 1], got dtype {img.dtype}")
    return img.astype(np.float32, copy=False)


# --------------------------------------------------------------------------- noise


def estimate_noise(image: np.ndarray) -> float:
    """Estimate the standard deviation of white Gaussian noise in an image.

    Median absolute deviation of the finest diagonal Haar wavelet band
    (Donoho & Johnstone 1994), averaged over channels. Blur leaves that band
    almost empty, so what remains there is noise.

    Args:
        image: ``(H, W)`` or ``(H, W, C)`` float image.

    Returns:
        Estimated sigma in image units (not floored).
    """
    img = _as_float_image(image).astype(np.float64)
    if img.ndim == 2:
        img = img[..., None]
    h, w = (img.shape[0] // 2) * 2, (img.shape[1] // 2) * 2
    if h == 0 or w == 0:
        return 0.0
    x = img[:h, :w]
    diag = (x[0::2, 0::2] - x[0::2, 1::2] - x[1::2, 0::2] + x[1::2, 1::2]) / 2.0
    sigmas = np.median(np.abs(diag), axis=(0, 1)) / 0.6745
    return float(np.mean(sigmas))


# --------------------------------------------------------------------------- Wiener


def wiener(
    image: np.ndarray, kernel: np.ndarray, *, nsr: float | None = None, origin: Origin = "centre"
) -> np.ndarray:
    """Wiener deconvolution with a 1/f^2 natural-image prior.

    Solves, per frequency ``f``,
    ``X = conj(K) Y / (|K|^2 + nsr * |G|^2)`` where ``|G|^2`` is the power of
    the image gradient operator, i.e. the MMSE filter for a signal with power
    spectrum proportional to ``1/|G|^2`` and white noise.

    Args:
        image: blurred ``(H, W)`` or ``(H, W, C)`` float image.
        kernel: blur kernel (validated and normalised).
        nsr: noise-to-signal ratio relative to the gradient prior. ``None``
            estimates it from the image: noise variance over the gradient
            power of the blurred image.
        origin: the kernel point that does not move the picture: ``"centre"`` (its centre
            pixel) or ``"mass"`` (its centre of mass, to a fraction of a pixel: for kernels
            known only up to a shift, such as blind estimates).

    Returns:
        Restored float32 image, same shape, clipped to [0, 1].
    """
    _check_origin(origin)
    img = _as_float_image(image)
    k = validate_kernel(kernel, img.shape)
    if nsr is None:
        sigma = max(estimate_noise(img), _NOISE_FLOOR)
        gy, gx = np.gradient(img.astype(np.float64), axis=(0, 1))
        grad_power = float(np.mean(gx**2 + gy**2))
        nsr = 0.5 * sigma**2 / max(grad_power, 1e-8)
    if nsr < 0:
        raise ValueError(f"nsr must be >= 0, got {nsr}")

    def one(plane: np.ndarray) -> np.ndarray:
        p = _pad_and_taper(plane, k)
        otf = _psf2otf(k, p.image.shape, origin)
        fx, fy = _gradient_otfs(p.image.shape)
        den = np.abs(otf) ** 2 + nsr * (np.abs(fx) ** 2 + np.abs(fy) ** 2)
        out = sfft.irfft2(
            np.conj(otf) * sfft.rfft2(p.image) / np.maximum(den, 1e-12), s=p.image.shape
        )
        return out[p.crop]

    return np.clip(_per_channel(img, one), 0.0, 1.0).astype(np.float32)


# --------------------------------------------------------------------------- Richardson-Lucy


def richardson_lucy(
    image: np.ndarray,
    kernel: np.ndarray,
    *,
    iterations: int = 50,
    damping: float | None = None,
    tol: float = 1e-4,
    origin: Origin = "centre",
) -> np.ndarray:
    """Damped Richardson-Lucy deconvolution with a stopping rule.

    Multiplicative updates ``x <- x * (k^T * r)`` with ``r = y / (k * x)``,
    damped as in White (1994) / MATLAB ``deconvlucy``: where the observation
    is explained within ``damping`` (in image units) the update is suppressed,
    which stops noise amplification in flat areas.

    Iteration stops early when the mean squared residual falls below the
    noise variance (discrepancy principle) or the relative change of the
    estimate falls below ``tol``.

    Args:
        image: blurred float image in [0, 1].
        kernel: blur kernel.
        iterations: maximum number of iterations (>= 1).
        damping: damping threshold; ``None`` uses 3x the estimated noise sigma,
            0 disables damping.
        tol: relative-change tolerance for stopping.
        origin: as :func:`wiener`.

    Returns:
        Restored float32 image, same shape, clipped to [0, 1].
    """
    if iterations < 1:
        raise ValueError(f"iterations must be >= 1, got {iterations}")
    _check_origin(origin)
    img = _as_float_image(image)
    k = validate_kernel(kernel, img.shape)
    sigma = max(estimate_noise(img), _NOISE_FLOOR)
    damp = 3.0 * sigma if damping is None else float(damping)
    if damp < 0:
        raise ValueError(f"damping must be >= 0, got {damping}")
    eps = 1e-6

    def one(plane: np.ndarray) -> np.ndarray:
        p = _pad_and_taper(plane, k)
        shape = p.image.shape
        y = np.clip(p.image, 0.0, None).astype(np.float64) + eps
        otf = _psf2otf(k, shape, origin)
        x = y.copy()
        for _ in range(iterations):
            reblurred = np.maximum(sfft.irfft2(sfft.rfft2(x) * otf, s=shape), eps)
            ratio = y / reblurred
            if damp > 0:
                d22 = damp**2 / 2.0
                g = np.minimum((y * np.log(ratio) + reblurred - y) / d22, 1.0)
                gm = 10.0
                g = g ** (gm - 1) * (gm - (gm - 1) * g)
                ratio = 1.0 + g * (ratio - 1.0)
            x_new = x * sfft.irfft2(sfft.rfft2(ratio) * np.conj(otf), s=shape)
            x_new = np.maximum(x_new, 0.0)
            change = np.linalg.norm(x_new - x) / max(np.linalg.norm(x), eps)
            x = x_new
            resid = float(np.mean((reblurred[p.crop] - y[p.crop]) ** 2))
            if change < tol or resid < sigma**2:
                break
        return (x - eps)[p.crop]

    return np.clip(_per_channel(img, one), 0.0, 1.0).astype(np.float32)


# --------------------------------------------------------------------------- hyper-Laplacian


@functools.lru_cache(maxsize=64)
def _shrinkage_table(alpha: float, beta: float) -> tuple[np.ndarray, np.ndarray]:
    """Lookup table of ``w*(v) = argmin_w |w|^alpha + beta/2 (w - v)^2`` for ``v >= 0``.

    For ``0 < alpha < 1`` the minimiser is either 0 or the largest root of
    ``alpha w^(alpha-1) + beta (w - v) = 0`` in ``(0, v]``. That derivative is
    convex and increasing right of its inflection, so Newton's method started
    at ``w = v`` converges monotonically; the two candidates are then compared.
    """
    v = np.linspace(0.0, _LUT_RANGE, _LUT_SIZE)
    if alpha == 1.0:
        return v, np.maximum(v - 1.0 / beta, 0.0)
    if alpha == 2.0:
        return v, v * beta / (beta + 2.0)
    w = v.copy()
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        for _ in range(30):
            safe = np.maximum(w, 1e-12)
            d1 = alpha * safe ** (alpha - 1.0) + beta * (safe - v)
            d2 = alpha * (alpha - 1.0) * safe ** (alpha - 2.0) + beta
            step = np.where(d2 > 0, d1 / d2, safe)
            w = np.clip(safe - step, 0.0, v)
        energy_w = np.abs(w) ** alpha + 0.5 * beta * (w - v) ** 2
    energy_0 = 0.5 * beta * v**2
    w = np.where(np.isfinite(energy_w) & (energy_w < energy_0), w, 0.0)
    return v, w


_LUT_RANGE = 2.0
_LUT_SIZE = 20001


def _shrink(values: np.ndarray, alpha: float, beta: float) -> np.ndarray:
    """Apply the shrinkage table: linear interpolation on its uniform grid (no search)."""
    _, table = _shrinkage_table(alpha, beta)
    table32 = table.astype(np.float32)
    mag = np.abs(values).astype(np.float32)
    pos = mag * np.float32((_LUT_SIZE - 1) / _LUT_RANGE)
    np.minimum(pos, np.float32(_LUT_SIZE - 1.001), out=pos)
    idx = pos.astype(np.intp)
    frac = pos - idx
    out = table32[idx] * (1 - frac) + table32[idx + 1] * frac
    big = mag > _LUT_RANGE
    if np.any(big):  # beyond the table the solution is v minus a vanishing correction
        out[big] = mag[big] - alpha / beta * mag[big] ** (alpha - 1.0)
    return np.copysign(out, values).astype(np.float32, copy=False)


def hyper_laplacian(
    image: np.ndarray,
    kernel: np.ndarray,
    *,
    lam: float | None = None,
    alpha: float = 2.0 / 3.0,
    beta_start: float = 1.0,
    beta_max: float = 1024.0,
    beta_rate: float = 2.0 * np.sqrt(2.0),
    inner_iterations: int = 1,
    lam_scale: float = 1.0,
    origin: Origin = "centre",
) -> np.ndarray:
    """Fast deconvolution with a hyper-Laplacian gradient prior (Krishnan & Fergus 2009).

    Minimises ``lam/2 ||k * x - y||^2 + sum |grad x|^alpha`` by half-quadratic
    splitting: auxiliary gradients ``w`` with a penalty ``beta/2 ||grad x - w||^2``
    whose weight grows from ``beta_start`` to ``beta_max``. The ``x`` step is
    solved exactly in the Fourier domain, the ``w`` step per pixel through a
    lookup table.

    Args:
        image: blurred ``(H, W)`` or ``(H, W, C)`` float image in [0, 1].
        kernel: blur kernel.
        lam: data-term weight; ``None`` sets it from the estimated noise sigma
            as ``0.2 / sigma^2`` (about 2000 at 1% noise, the paper's setting),
            with sigma floored at 0.0063 (so at most about 5000) because real
            blur never matches the kernel exactly.
        alpha: prior exponent, ``0 < alpha <= 2`` (natural images: 0.5-0.8).
        beta_start, beta_max, beta_rate: continuation schedule of the penalty.
        inner_iterations: alternations per beta value.
        lam_scale: multiplies ``lam`` (given or automatic); below 1 trusts the kernel
            less (a stronger prior), which suits estimated kernels.
        origin: as :func:`wiener`.

    Returns:
        Restored float32 image, same shape, clipped to [0, 1].
    """
    if not 0.0 < alpha <= 2.0:
        raise ValueError(f"alpha must be in (0, 2], got {alpha}")
    if beta_start <= 0 or beta_max < beta_start or beta_rate <= 1.0:
        raise ValueError(
            f"need 0 < beta_start <= beta_max and beta_rate > 1, "
            f"got {beta_start}, {beta_max}, {beta_rate}"
        )
    _check_origin(origin)
    img = _as_float_image(image)
    k = validate_kernel(kernel, img.shape)
    if lam is None:
        sigma = max(estimate_noise(img), _LAMBDA_NOISE_FLOOR)
        lam = _LAMBDA_SCALE / sigma**2
    lam *= lam_scale
    if lam <= 0:
        raise ValueError(f"lam and lam_scale must be > 0, got {lam}")

    def one(plane: np.ndarray) -> np.ndarray:
        p = _pad_and_taper(plane, k)
        shape = p.image.shape
        otf = _psf2otf(k, shape, origin)
        fx, fy = _gradient_otfs(shape)
        numerator = np.conj(otf) * sfft.rfft2(p.image)
        k_power = (np.abs(otf) ** 2).astype(np.float32)
        g_power = (np.abs(fx) ** 2 + np.abs(fy) ** 2).astype(np.float32)
        x = p.image
        beta = beta_start
        while beta <= beta_max * (1 + 1e-9):
            gamma = beta / lam
            denominator = k_power + gamma * g_power
            for _ in range(inner_iterations):
                w1 = _shrink(np.roll(x, -1, axis=1) - x, alpha, beta)
                w2 = _shrink(np.roll(x, -1, axis=0) - x, alpha, beta)
                fw = np.conj(fx) * sfft.rfft2(w1) + np.conj(fy) * sfft.rfft2(w2)
                x = sfft.irfft2((numerator + gamma * fw) / denominator, s=shape).astype(np.float32)
            beta *= beta_rate
        return x[p.crop]

    return np.clip(_per_channel(img, one), 0.0, 1.0).astype(np.float32)


_LAMBDA_SCALE = 0.2
# Real blur never matches ``k * x`` exactly (kernel error, shifts, saturation): treat
# at least this much model error as noise. Tuned on Levin et al.'s real photographs.
_LAMBDA_NOISE_FLOOR = 0.0063


# --------------------------------------------------------------------------- dispatch


def deconvolve(
    image: np.ndarray,
    kernel: np.ndarray,
    *,
    method: Method = "hyperlaplacian",
    lam_scale: float = 1.0,
    origin: Origin = "centre",
) -> np.ndarray:
    """Deconvolve with a known kernel using the named method and its defaults.

    Args:
        image: blurred float image in [0, 1].
        kernel: blur kernel.
        method: ``"hyperlaplacian"`` (best measured, the default), ``"wiener"`` or ``"rl"``.
        lam_scale: ``hyperlaplacian`` only: scales its data weight (see
            :func:`hyper_laplacian`).
        origin: the kernel point that does not move the picture (see :func:`wiener`).

    Returns:
        Restored float32 image of the same shape.
    """
    if method == "hyperlaplacian":
        return hyper_laplacian(image, kernel, lam_scale=lam_scale, origin=origin)
    if method == "wiener":
        return wiener(image, kernel, origin=origin)
    if method == "rl":
        return richardson_lucy(image, kernel, origin=origin)
    raise ValueError(f"unknown deconvolution method {method!r}; choose from {', '.join(METHODS)}")


# --------------------------------------------------------------------------- spatially varying

KernelForRegion = Callable[[slice, slice], np.ndarray]


def _window(n: int) -> np.ndarray:
    """``sin^2`` window: shifted copies at a stride of ``n // 2`` sum to one."""
    t = (np.arange(n, dtype=np.float64) + 0.5) / n
    return np.sin(np.pi * t) ** 2


def deconvolve_varying(
    image: np.ndarray,
    kernel_for_region: KernelForRegion,
    *,
    patch: int = 128,
    method: Method = "hyperlaplacian",
    lam_scale: float = 1.0,
    progress: bool = False,
) -> np.ndarray:
    """Deconvolve a spatially varying blur by overlapping patches (efficient filter flow).

    The image is covered by patches of ``patch`` pixels at a stride of
    ``patch // 2``; each patch, with a margin of real neighbouring pixels as
    wide as its kernel, is deconvolved with the kernel that
    ``kernel_for_region(rows, cols)`` gives for it, and the results are
    blended with ``sin^2`` windows that form a partition of unity, so there
    are no seams (Hirsch et al. 2010).

    Args:
        image: blurred ``(H, W)`` or ``(H, W, C)`` float image in [0, 1].
        kernel_for_region: returns the blur kernel of the region given as
            ``(rows, cols)`` slices in image coordinates.
        patch: patch side in pixels (even, >= 16).
        method: non-blind method used on each patch.
        lam_scale: see :func:`deconvolve`.
        progress: show a progress bar over the patches (on stderr).

    Returns:
        Restored float32 image, same shape.
    """
    if patch < 16 or patch % 2:
        raise ValueError(f"patch must be an even number >= 16, got {patch}")
    img = _as_float_image(image)
    h, w = img.shape[:2]
    stride = patch // 2
    planes = img if img.ndim == 3 else img[..., None]
    out = np.zeros(planes.shape, np.float64)
    weight = np.zeros((h, w), np.float64)
    win = _window(patch)
    ys = range(-stride, h, stride)
    xs = range(-stride, w, stride)
    corners = [(y0, x0) for y0 in ys for x0 in xs]
    bar = progress_bar(corners, desc="deconvolve", unit="patch", level=1, enabled=progress)
    for y0, x0 in bar:
        rows = slice(max(y0, 0), min(y0 + patch, h))
        cols = slice(max(x0, 0), min(x0 + patch, w))
        if rows.stop <= rows.start or cols.stop <= cols.start:
            continue
        kernel = validate_kernel(kernel_for_region(rows, cols), (h, w))
        m = max(2 * max(kernel.shape), 32)  # real context around the patch
        ctx_r = slice(max(rows.start - m, 0), min(rows.stop + m, h))
        ctx_c = slice(max(cols.start - m, 0), min(cols.stop + m, w))
        region = planes[ctx_r, ctx_c]
        if region.shape[0] < kernel.shape[0] or region.shape[1] < kernel.shape[1]:
            restored = region
        else:
            restored = deconvolve(region, kernel, method=method, lam_scale=lam_scale)
            restored = restored if restored.ndim == 3 else restored[..., None]
        inner = restored[
            rows.start - ctx_r.start : rows.stop - ctx_r.start,
            cols.start - ctx_c.start : cols.stop - ctx_c.start,
        ]
        wy = win[rows.start - y0 : rows.stop - y0]
        wx = win[cols.start - x0 : cols.stop - x0]
        wgt = np.outer(wy, wx)
        out[rows, cols] += inner * wgt[..., None]
        weight[rows, cols] += wgt
    out /= np.maximum(weight, 1e-12)[..., None]
    out = out if img.ndim == 3 else out[..., 0]
    return np.clip(out, 0.0, 1.0).astype(np.float32)


def field_kernel(field: np.ndarray, rows: slice, cols: slice, *, samples: int = 5) -> np.ndarray:
    """Blur kernel of a region of a motion field: the mean of its pixels' linear kernels.

    Motion vectors ``v`` and ``-v`` give the same streak, so averaging kernels
    (not vectors) handles the sign ambiguity and regions that mix motions.

    Args:
        field: ``(H, W, 2)`` motion field of ``(dx, dy)`` in pixels, x right, y down.
        rows, cols: the region.
        samples: vectors sampled along each axis of the region.

    Returns:
        float32 kernel summing to 1.
    """
    from unblur.blur import linear_kernel

    region = np.asarray(field[rows, cols], np.float64)
    iy = np.linspace(0, region.shape[0] - 1, min(samples, region.shape[0])).round().astype(int)
    ix = np.linspace(0, region.shape[1] - 1, min(samples, region.shape[1])).round().astype(int)
    vectors = region[np.ix_(iy, ix)].reshape(-1, 2)
    lengths = np.hypot(vectors[:, 0], vectors[:, 1])
    size = 2 * int(np.ceil(lengths.max() / 2.0 + 1e-6)) + 1
    kernel = np.zeros((size, size), np.float64)
    for (dx, dy), length in zip(vectors, lengths, strict=True):
        angle = float(np.degrees(np.arctan2(-dy, dx)))
        kernel += linear_kernel(float(length), angle, size=size)
    return (kernel / kernel.sum()).astype(np.float32)


def deconvolve_field(
    image: np.ndarray,
    field: np.ndarray,
    *,
    patch: int = 128,
    method: Method = "hyperlaplacian",
    lam_scale: float = 1.0,
    progress: bool = False,
) -> np.ndarray:
    """Undo the spatially varying motion blur described by a per-pixel motion field.

    Args:
        image: blurred ``(H, W)`` or ``(H, W, C)`` float image in [0, 1].
        field: ``(H, W, 2)`` float motion field (dx, dy) in pixels, the full
            displacement during the exposure (see :func:`unblur.blur.field_blur`).
        patch: patch side for :func:`deconvolve_varying`.
        method: non-blind method used on each patch.
        lam_scale: see :func:`deconvolve`; below 1 for estimated fields.
        progress: show a progress bar over the patches.

    Returns:
        Restored float32 image, same shape.
    """
    img = _as_float_image(image)
    f = np.asarray(field, np.float32)
    if f.shape != (*img.shape[:2], 2):
        raise ValueError(f"field must have shape {(*img.shape[:2], 2)}, got {f.shape}")
    if not np.all(np.isfinite(f)):
        raise ValueError("field has NaN or infinite values")
    return deconvolve_varying(
        img,
        lambda rows, cols: field_kernel(f, rows, cols),
        patch=patch,
        method=method,
        lam_scale=lam_scale,
        progress=progress,
    )
