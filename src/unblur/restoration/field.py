"""Restoration driven by an estimated motion field: ``method="motion"``.

The field comes from :func:`unblur.motion.estimate.estimate_motion`; the blur it describes is
undone patch by patch with spatially varying hyper-Laplacian deconvolution
(:func:`unblur.restoration.deconv.deconvolve_field`).
"""

from __future__ import annotations

import numpy as np

from unblur import io
from unblur.motion.estimate import MotionEstimate, estimate_motion
from unblur.restoration import deconv

__all__ = ["MOTION_LAM_SCALE", "deblur_motion"]

#: Data weight of the hyper-Laplacian deconvolution driven by an *estimated* field, relative
#: to its default for a known kernel: a kernel off by a pixel or two in length rings badly
#: under the default weight. Measured on two half-size gopro-sample pairs and three kodak24
#: spatially varying pairs (gains over the input): 1.0: -2.53 / +2.04 dB; 0.3: -0.12 /
#: +2.60 dB; 0.1: +0.63 / +1.58 dB; 0.03: +0.32 / +0.10 dB.
MOTION_LAM_SCALE = 0.3


def deblur_motion(
    image: np.ndarray,
    *,
    space: str = "linear",
    frames: tuple[np.ndarray, np.ndarray] | None = None,
    max_side: int | None = 1024,
    device: str = "cpu",
    progress: bool = False,
) -> tuple[np.ndarray, MotionEstimate]:
    """Restore a photo with its estimated motion field (``unblur image --method motion``).

    The field comes from :func:`estimate_motion` (``cnn``, or ``frames`` when the neighbouring
    frames are given); the blur it describes is undone by spatially varying hyper-Laplacian
    deconvolution (:func:`unblur.restoration.deconv.deconvolve_field`) with the data weight scaled
    by :data:`MOTION_LAM_SCALE`.

    Args:
        image: blurred ``(H, W)`` or ``(H, W, C)`` float image in ``[0, 1]``, sRGB as stored.
        space: ``"linear"`` deconvolves in linear light (right for camera pictures),
            ``"srgb"`` on the stored values.
        frames: ``(previous, next)`` frames for the two-frame network.
        max_side: see :func:`estimate_motion`.
        device: torch device for the network.
        progress: show a progress bar over the deconvolution's patches.

    Returns:
        ``(restored, estimate)``: float32 image of the input's shape in ``[0, 1]``, and the
        field it used.
    """

    if space not in ("linear", "srgb"):
        raise ValueError(f"space must be 'linear' or 'srgb', got {space!r}")
    estimate = estimate_motion(image, frames=frames, max_side=max_side, device=device)
    data = io.srgb_to_linear(image) if space == "linear" else np.asarray(image, np.float32)
    restored = deconv.deconvolve_field(
        data, estimate.field, lam_scale=MOTION_LAM_SCALE, progress=progress
    )
    if space == "linear":
        restored = io.linear_to_srgb(restored)
    return np.clip(restored, 0.0, 1.0).astype(np.float32), estimate
