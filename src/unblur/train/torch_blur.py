"""GPU-side synthesis of blurred training pairs: the uniform-blur forward model in torch.

Making pairs on the CPU (:func:`unblur.blur.degrade`) cannot keep a large accelerator busy:
convolving big crops with big kernels dominates the cost. This module runs the expensive part
of the uniform-blur chain on batched tensors, on any device,

.. math::

    y_b = \\operatorname{srgb}\\Big(\\operatorname{clip}\\big(
          \\mathcal{N}(k_b * \\operatorname{lin}(x_b))\\big)\\Big),

with one kernel ``k_b`` per image ``x_b``. It reproduces :mod:`unblur.blur` and
:mod:`unblur.io` exactly (up to float32 rounding):

* :func:`srgb_to_linear` / :func:`linear_to_srgb` are :func:`unblur.io.srgb_to_linear` /
  :func:`unblur.io.linear_to_srgb` (exact IEC 61966-2-1 curve; the encoder clips to ``[0, 1]``).
* :func:`blur_batch` is :func:`unblur.blur.blur_image` (true convolution, "same" size, the same
  scipy.ndimage boundary modes, kernels larger than the image allowed) as one grouped conv.
* :func:`add_noise_batch` is :func:`unblur.blur.add_noise` (Poisson-Gaussian, clipped), with a
  noise level per sample.

Kernels are still drawn on the CPU with :func:`unblur.blur.linear_kernel` /
:func:`unblur.blur.shake_kernel` (cheap) and stacked with :func:`kernels_to_tensor`.

Conventions: images are floating tensors ``(B, C, H, W)`` with values in ``[0, 1]``; kernels
are ``(B, 1, ky, kx)`` with odd sides, non-negative and summing to 1 (not renormalised here).
Every random function takes a :class:`torch.Generator`, which must live on the images' device,
and never touches global random state. Computation is in float32; outputs keep the input dtype.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = [
    "PAD_MODES",
    "add_noise_batch",
    "blur_batch",
    "kernels_to_tensor",
    "linear_to_srgb",
    "srgb_to_linear",
    "synthesize",
]

PAD_MODES: tuple[str, ...] = ("reflect", "mirror", "nearest", "constant", "wrap")
"""Boundary modes of :func:`blur_batch`, with scipy.ndimage's names (as in ``blur_image``)."""

_FLOAT_DTYPES = (torch.float32, torch.float64, torch.float16, torch.bfloat16)


def _check_float(x: Tensor, name: str) -> None:
    if not isinstance(x, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if x.dtype not in _FLOAT_DTYPES:
        raise TypeError(
            f"{name} must be a floating-point tensor in [0, 1], got dtype {x.dtype} "
            "(convert integers with x.float() / 255)"
        )


def _check_batch(x: Tensor, name: str) -> None:
    _check_float(x, name)
    if x.ndim != 4 or min(x.shape) < 1:
        raise ValueError(
            f"{name} must have shape (B, C, H, W) with no empty axis, got {tuple(x.shape)}"
        )


def _per_sample(value: Tensor | float, batch: int, ref: Tensor, name: str) -> Tensor:
    """A ``(B,)`` float32 tensor on ``ref``'s device from a scalar or a ``(B,)`` tensor."""
    t = torch.as_tensor(value, dtype=torch.float32, device=ref.device)
    if t.ndim == 0:
        t = t.expand(batch)
    if t.shape != (batch,):
        raise ValueError(f"{name} must be a number or have shape ({batch},), got {tuple(t.shape)}")
    if not bool(torch.all(torch.isfinite(t) & (t >= 0))):
        raise ValueError(f"{name} must be finite and >= 0, got {t.tolist()}")
    return t


# --------------------------------------------------------------------------------------------
# sRGB curve
# --------------------------------------------------------------------------------------------


def srgb_to_linear(x: Tensor) -> Tensor:
    """Decode sRGB values to linear light with the exact IEC 61966-2-1 curve.

    ``x / 12.92`` for ``x <= 0.04045``, else ``((x + 0.055) / 1.055) ** 2.4``; values outside
    ``[0, 1]`` are not clipped, as in :func:`unblur.io.srgb_to_linear`.

    Args:
        x: floating tensor of any shape and device, sRGB-encoded.

    Returns:
        Tensor of the same shape, dtype and device, linear light (computed in float32).

    Raises:
        TypeError: ``x`` is not a floating-point tensor.
    """
    _check_float(x, "x")
    x32 = x.float()
    low = x32 / 12.92
    high = ((x32.clamp_min(0.04045) + 0.055) / 1.055).pow(2.4)
    return torch.where(x32 > 0.04045, high, low).to(x.dtype)


def linear_to_srgb(x: Tensor) -> Tensor:
    """Encode linear light as sRGB (inverse of :func:`srgb_to_linear`).

    The input is clipped to ``[0, 1]`` first; then ``12.92 x`` for ``x <= 0.0031308``, else
    ``1.055 x ** (1 / 2.4) - 0.055``, written as ``1.055 (p - 1) + 1`` so that 1 maps exactly to
    1, as in :func:`unblur.io.linear_to_srgb`.

    Args:
        x: floating tensor of any shape and device, linear light.

    Returns:
        Tensor of the same shape, dtype and device, sRGB-encoded, in ``[0, 1]``.

    Raises:
        TypeError: ``x`` is not a floating-point tensor.
    """
    _check_float(x, "x")
    x32 = x.float().clamp(0.0, 1.0)
    low = x32 * 12.92
    high = (x32.clamp_min(0.0031308).pow(float(np.float32(1 / 2.4))) - 1.0) * 1.055 + 1.0
    return torch.where(x32 > 0.0031308, high, low).to(x.dtype)


# --------------------------------------------------------------------------------------------
# kernels and blur
# --------------------------------------------------------------------------------------------


def kernels_to_tensor(
    kernels: Sequence[np.ndarray],
    size: int | None = None,
    *,
    device: torch.device | str | None = None,
    dtype: torch.dtype = torch.float32,
) -> Tensor:
    """Stack 2-D kernels of different odd sizes, zero-padded centred to a common square size.

    Args:
        kernels: Non-empty sequence of 2-D arrays with odd sides (e.g. from
            :func:`unblur.blur.linear_kernel` or ``shake_kernel(...).kernel``). Not renormalised.
        size: Odd side of the result, at least every kernel's largest side; ``None`` picks the
            largest side present.
        device: Device of the result (``None``: the CPU).
        dtype: Floating dtype of the result.

    Returns:
        ``(B, 1, size, size)`` tensor; kernel ``b``'s centre stays at ``(size // 2, size // 2)``.

    Raises:
        ValueError: empty sequence, a kernel not 2-D, with an even side or non-finite values,
            ``size`` even or smaller than a kernel.
    """
    if len(kernels) == 0:
        raise ValueError("kernels must hold at least one kernel")
    arrays = []
    for i, k in enumerate(kernels):
        a = np.asarray(k, dtype=np.float32)
        if a.ndim != 2:
            raise ValueError(f"kernel {i} must be 2-D, got shape {a.shape}")
        if a.shape[0] % 2 == 0 or a.shape[1] % 2 == 0:
            raise ValueError(f"kernel {i} sides must be odd, got shape {a.shape}")
        if not np.all(np.isfinite(a)):
            raise ValueError(f"kernel {i} contains NaN or infinite values")
        arrays.append(a)
    largest = max(max(a.shape) for a in arrays)
    if size is None:
        size = largest
    if isinstance(size, bool) or not isinstance(size, int | np.integer) or size % 2 == 0:
        raise ValueError(f"size must be an odd integer, got {size!r}")
    if size < largest:
        raise ValueError(f"size {size} is smaller than the largest kernel side {largest}")
    out = np.zeros((len(arrays), 1, size, size), dtype=np.float32)
    for i, a in enumerate(arrays):
        y0, x0 = (size - a.shape[0]) // 2, (size - a.shape[1]) // 2
        out[i, 0, y0 : y0 + a.shape[0], x0 : x0 + a.shape[1]] = a
    return torch.from_numpy(out).to(device=device, dtype=dtype)


def _pad_index(n: int, before: int, after: int, mode: str, device: torch.device) -> Tensor:
    """Source index of each padded position along an axis of length ``n`` (not "constant")."""
    i = torch.arange(-before, n + after, device=device)
    if mode == "reflect":  # numpy "symmetric": d c b a | a b c d | d c b a, period 2n
        m = i.remainder(2 * n)
        return torch.where(m < n, m, 2 * n - 1 - m)
    if mode == "mirror":  # numpy "reflect": d c b | a b c d | c b a, period 2n - 2
        if n == 1:
            return torch.zeros_like(i)
        m = i.remainder(2 * n - 2)
        return torch.where(m < n, m, 2 * n - 2 - m)
    if mode == "nearest":
        return i.clamp(0, n - 1)
    return i.remainder(n)  # wrap


def _pad(x: Tensor, ry: int, rx: int, mode: str) -> Tensor:
    """Pad the last two axes of ``x`` like ``np.pad`` with the scipy.ndimage mode ``mode``."""
    if mode == "constant":
        return F.pad(x, (rx, rx, ry, ry))
    iy = _pad_index(x.shape[-2], ry, ry, mode, x.device)
    ix = _pad_index(x.shape[-1], rx, rx, mode, x.device)
    return x.index_select(-2, iy).index_select(-1, ix)


def blur_batch(linear: Tensor, kernels: Tensor, *, mode: str = "reflect") -> Tensor:
    """Blur each image of a batch with its own kernel: ``y_b = k_b * x_b`` (true convolution).

    Equal, image by image, to :func:`unblur.blur.blur_image` with the same ``mode`` (borders
    included; kernels larger than the image are fine), up to float32 rounding. The whole batch
    is one grouped ``conv2d`` (the kernels are flipped, since ``conv2d`` correlates).

    Args:
        linear: ``(B, C, H, W)`` floating images (linear light for physical blur).
        kernels: ``(B, 1, ky, kx)`` kernels with odd sides, one per image. Not renormalised.
        mode: Boundary handling, with scipy.ndimage's names: ``"reflect"`` (half-sample
            symmetric, ``d c b a | a b c d``), ``"mirror"``, ``"nearest"``, ``"constant"``
            (zeros) or ``"wrap"``.

    Returns:
        Tensor of ``linear``'s shape, dtype and device (computed in float32).

    Raises:
        TypeError: non-floating images or kernels.
        ValueError: bad shapes, kernel batch not matching the image batch, even kernel sides,
            unknown ``mode``, kernels on another device.
    """
    _check_batch(linear, "linear")
    _check_float(kernels, "kernels")
    if mode not in PAD_MODES:
        raise ValueError(f"mode must be one of {sorted(PAD_MODES)}, got {mode!r}")
    if kernels.ndim != 4 or kernels.shape[1] != 1:
        raise ValueError(f"kernels must have shape (B, 1, ky, kx), got {tuple(kernels.shape)}")
    batch, channels, height, width = linear.shape
    if kernels.shape[0] != batch:
        raise ValueError(
            f"kernels hold {kernels.shape[0]} kernels for a batch of {batch} images "
            "(one kernel per image)"
        )
    ky, kx = kernels.shape[-2:]
    if ky % 2 == 0 or kx % 2 == 0:
        raise ValueError(f"kernel sides must be odd, got {ky}x{kx}")
    if kernels.device != linear.device:
        raise ValueError(f"kernels are on {kernels.device} but images on {linear.device}")
    ry, rx = ky // 2, kx // 2
    padded = _pad(linear.float(), ry, rx, mode)
    planes = padded.reshape(1, batch * channels, height + 2 * ry, width + 2 * rx)
    weight = kernels.float().flip(-2, -1).repeat_interleave(channels, dim=0)
    out = F.conv2d(planes, weight, groups=batch * channels)
    return out.reshape(batch, channels, height, width).to(linear.dtype)


# --------------------------------------------------------------------------------------------
# noise and the chain
# --------------------------------------------------------------------------------------------


def add_noise_batch(
    linear: Tensor,
    *,
    gaussian_sigma: Tensor | float,
    poisson_scale: Tensor | float | None,
    generator: torch.Generator,
    clip: bool = True,
) -> Tensor:
    """Poisson-Gaussian sensor noise with a level per sample, as :func:`unblur.blur.add_noise`.

    ``y_b = Poisson(a_b * max(x_b, 0)) / a_b + N(0, sigma_b^2)``, then clipped to ``[0, 1]``.
    The shot term is skipped for samples with ``a_b == 0`` (or when ``poisson_scale`` is
    ``None``). Random numbers are drawn for the whole batch whatever the levels, so a generator
    state advances the same way for every batch of a given shape.

    Args:
        linear: ``(B, C, H, W)`` floating linear-light images.
        gaussian_sigma: Read-noise standard deviations ``>= 0`` (full-scale units): a ``(B,)``
            tensor or one number for all.
        poisson_scale: Photo-electrons at full scale ``a >= 0`` (shot-noise variance ``x / a``):
            a ``(B,)`` tensor, one number, or ``None`` for no shot noise.
        generator: Random generator on ``linear``'s device.
        clip: Clip the result to ``[0, 1]`` (``add_noise``'s default).

    Returns:
        Noisy tensor of ``linear``'s shape, dtype and device (computed in float32).

    Raises:
        TypeError: non-floating images.
        ValueError: bad shapes, negative or non-finite levels.
    """
    _check_batch(linear, "linear")
    batch = linear.shape[0]
    sigma = _per_sample(gaussian_sigma, batch, linear, "gaussian_sigma").view(-1, 1, 1, 1)
    out = linear.float()
    if poisson_scale is not None:
        scale = _per_sample(poisson_scale, batch, linear, "poisson_scale").view(-1, 1, 1, 1)
        on = scale > 0
        safe = torch.where(on, scale, torch.ones_like(scale))
        shot = torch.poisson(out.clamp_min(0.0) * safe, generator=generator) / safe
        out = torch.where(on, shot, out)
    noise = torch.randn(out.shape, generator=generator, device=out.device, dtype=torch.float32)
    out = out + noise * sigma
    if clip:
        out = out.clamp(0.0, 1.0)
    return out.to(linear.dtype)


def synthesize(
    sharp_srgb: Tensor,
    kernels: Tensor,
    *,
    gaussian_sigma: Tensor | float,
    poisson_scale: Tensor | float | None,
    generator: torch.Generator,
    mode: str = "reflect",
) -> Tensor:
    """Blurred sRGB images from sharp ones: linearise, blur, noise, clip, re-encode.

    The uniform-blur part of :func:`unblur.blur.degrade` on a batch (no saturation boost, no
    JPEG): ``linear_to_srgb(clip(add_noise(blur(srgb_to_linear(x), k))))``.

    Args:
        sharp_srgb: ``(B, C, H, W)`` sharp sRGB images in ``[0, 1]`` (usually ``C == 3``).
        kernels: ``(B, 1, ky, kx)`` kernels, one per image (see :func:`kernels_to_tensor`).
        gaussian_sigma: Read-noise standard deviations, ``(B,)`` or one number.
        poisson_scale: Shot-noise scales, ``(B,)``, one number, or ``None`` for none.
        generator: Random generator on the images' device.
        mode: Boundary mode of the blur (see :func:`blur_batch`).

    Returns:
        Blurred sRGB batch of ``sharp_srgb``'s shape, dtype and device, in ``[0, 1]``.

    Raises:
        TypeError: non-floating inputs.
        ValueError: see :func:`blur_batch` and :func:`add_noise_batch`.
    """
    _check_batch(sharp_srgb, "sharp_srgb")
    linear = srgb_to_linear(sharp_srgb.float())
    blurred = blur_batch(linear, kernels, mode=mode)
    noisy = add_noise_batch(
        blurred,
        gaussian_sigma=gaussian_sigma,
        poisson_scale=poisson_scale,
        generator=generator,
        clip=True,
    )
    return linear_to_srgb(noisy).to(sharp_srgb.dtype)
