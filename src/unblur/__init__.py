"""unblur: remove motion blur from photos and videos.

Data flows image in -> motion -> restoration -> image out:

* :mod:`unblur.io` reads and writes images as float32 arrays in [0, 1];
* :mod:`unblur.blur` is the forward model (kernels, motion fields, noise, frame averaging);
* :mod:`unblur.deconv` undoes a known blur (Wiener, Richardson-Lucy, hyper-Laplacian),
  uniform or spatially varying;
* :mod:`unblur.motion_estimate` estimates the per-pixel blur motion field
  (``estimate_motion``: the motion networks, spectral and blind baselines), drawn by
  :mod:`unblur.motion_picture`;
* :mod:`unblur.models` holds the restoration and motion networks and their registry
  (``create_model``, ``list_models``);
* :mod:`unblur.pipeline` runs a network on photos of any size (``deblur``,
  ``Deblurrer``: device, precision, tiles);
* :mod:`unblur.metrics` scores results (PSNR, SSIM, shift-compensated PSNR).

The common entry points are available here and imported lazily, so that
``import unblur`` and ``unblur --version`` stay fast::

    import unblur
    image = unblur.read_image("shot.jpg")
    sharp = unblur.deconvolve(unblur.srgb_to_linear(image.pixels), kernel)
    sharp = unblur.deblur(image.pixels)  # the restoration network, no kernel needed
    motion = unblur.estimate_motion(image.pixels)  # .field (H, W, 2), .confidence (H, W)
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_LAZY = {
    "read_image": "unblur.io",
    "write_image": "unblur.io",
    "srgb_to_linear": "unblur.io",
    "linear_to_srgb": "unblur.io",
    "Image": "unblur.io",
    "deconvolve": "unblur.deconv",
    "deconvolve_field": "unblur.deconv",
    "linear_kernel": "unblur.blur",
    "shake_kernel": "unblur.blur",
    "blur_image": "unblur.blur",
    "field_blur": "unblur.blur",
    "psnr": "unblur.metrics",
    "ssim": "unblur.metrics",
    "estimate_motion": "unblur.motion_estimate",
    "MotionEstimate": "unblur.motion_estimate",
    "deblur": "unblur.pipeline",
    "Deblurrer": "unblur.pipeline",
    "create_model": "unblur.models",
    "list_models": "unblur.models",
}

__all__ = ["__version__", *_LAZY]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'unblur' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
