"""Blurred pairs made on the training device, from sharp crops, at every step.

With ``on_device: true`` a synthetic source's pool slots hold sharp regions only; every batch
then blurs its regions afresh on the device the network trains on, so a GPU is never starved
by CPU-side synthesis (16 CPU cores cannot feed an H100 with the convolutions of large crops
by large kernels) and no pair is ever seen twice. The chain is the uniform-blur part of
:func:`unblur.blur.degrade`, drawn from the same distributions as the CPU path:

* per sample, a blur kind from the mix's weights (``shake`` or ``linear``), a length, and a
  Poisson-Gaussian noise level, drawn on the CPU with the batch's generator
  (:meth:`BlurMix.degradations` gives the ranges, the angle range and the shake exposure);
* kernels from :func:`unblur.blur.linear_kernel` / :func:`unblur.blur.shake_kernel` (cheap);
* linearise, convolve, noise, clip and re-encode on the device
  (:func:`unblur.train.torch_blur.synthesize`), then the central ``patch`` of each region, so
  that the blur at the crop's border sees real image content.

Spatially varying fields, highlight boosts and JPEG stay on the CPU path (a source with
``on_device: false``); :func:`check_mix` says so when a device source asks for them.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import Tensor

from unblur import blur
from unblur.train import torch_blur
from unblur.train.data import BlurMix

__all__ = ["DEVICE_KINDS", "blur_regions", "check_mix", "draw_degradations", "region_size"]

DEVICE_KINDS = ("shake", "linear")


def check_mix(mix: BlurMix) -> None:
    """Refuse what the device chain cannot make.

    Raises:
        ValueError: a field kind with weight, JPEG or highlight boosts.
    """
    others = sorted(k for k, w in mix.kinds.items() if w > 0 and k not in DEVICE_KINDS)
    if others:
        raise ValueError(
            f"on_device makes {' and '.join(DEVICE_KINDS)} blur only, not {others[0]}: put it in "
            "a source with on_device: false"
        )
    if mix.jpeg_prob > 0 or mix.saturation_prob > 0:
        raise ValueError(
            "on_device makes no JPEG and no highlight boosts: set jpeg_prob and "
            "saturation_prob to 0, or use a source with on_device: false"
        )


def region_size(mix: BlurMix, patch: int) -> int:
    """Side of the sharp region a patch is blurred from: the patch and the blur's reach."""
    return patch + 2 * mix.margin


def draw_degradations(
    mix: BlurMix, count: int, rng: np.random.Generator
) -> tuple[list[np.ndarray], np.ndarray, np.ndarray]:
    """Kernels and noise levels for ``count`` samples, as :func:`unblur.blur.degrade` draws them.

    Returns:
        ``(kernels, gaussian_sigma, poisson_scale)``: odd-sided kernels summing to 1, and two
        float arrays of ``count`` (a Poisson scale of 0 means no shot noise).
    """
    configs = mix.degradations()
    kinds = sorted({kind for kind, _ in configs})
    weights = np.array([mix.kinds[k] for k in kinds], dtype=np.float64)
    kernels, sigma, scale = [], np.zeros(count), np.zeros(count)
    for i in range(count):
        kind = kinds[int(rng.choice(len(kinds), p=weights / weights.sum()))]
        poisson = bool(rng.random() < mix.poisson_prob)
        config = configs[kind, poisson]
        length = float(rng.uniform(*config.length))
        if kind == "linear":
            kernels.append(blur.linear_kernel(length, float(rng.uniform(*config.angle))))
        else:
            size = 2 * math.ceil((length + 1) / 2) + 1
            exposure = float(rng.uniform(*config.shake_exposure))
            kernels.append(
                blur.shake_kernel(size=size, rng=rng, length=length, exposure=exposure).kernel
            )
        sigma[i] = float(rng.uniform(*config.gaussian_sigma))
        if config.poisson_scale is not None:
            scale[i] = float(rng.uniform(*config.poisson_scale))
    return kernels, sigma, scale


def blur_regions(
    regions: Tensor, mix: BlurMix, patch: int, rng: np.random.Generator
) -> tuple[Tensor, Tensor]:
    """Blur sharp sRGB regions on their device and cut the central ``patch`` of each.

    Args:
        regions: float ``(B, 3, R, R)`` sharp sRGB regions in ``[0, 1]``, ``R >= patch``.
        mix: blur kinds and ranges (``shake`` / ``linear`` only, see :func:`check_mix`).
        patch: side of the returned crops.
        rng: draws the degradations and seeds the device's noise generator.

    Returns:
        ``(blurred, sharp)``, float32 ``(B, 3, patch, patch)`` on the regions' device.
    """
    count, side = regions.shape[0], regions.shape[-1]
    if side < patch:
        raise ValueError(f"regions of {side} px cannot give {patch} px patches")
    kernels, sigma, scale = draw_degradations(mix, count, rng)
    generator = torch.Generator(device=regions.device)
    generator.manual_seed(int(rng.integers(2**62)))
    stack = torch_blur.kernels_to_tensor(kernels, device=regions.device)
    blurred = torch_blur.synthesize(
        regions.float(),
        stack,
        gaussian_sigma=torch.as_tensor(sigma, dtype=torch.float32, device=regions.device),
        poisson_scale=torch.as_tensor(scale, dtype=torch.float32, device=regions.device),
        generator=generator,
    )
    top = (side - patch) // 2
    window = (..., slice(top, top + patch), slice(top, top + patch))
    return blurred[window], regions[window].float()
