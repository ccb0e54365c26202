"""unblur: remove motion blur from photos and videos.

Data flows image in -> motion -> restoration -> image out:

* :mod:`unblur.io` reads and writes images as float32 arrays in [0, 1];
* :mod:`unblur.blur` is the forward model (kernels, motion fields, noise, frame averaging);
* :mod:`unblur.motion` is the per-pixel blur motion field: its representation, its
  estimation (``estimate_motion``: the motion networks, spectral and blind baselines) and its
  pictures;
* :mod:`unblur.restoration` turns a blurred image into a sharp one: ``restore``, the one entry
  point (methods ``auto``, ``network``, ``kernel``, ``blind``, ``motion``), over the network,
  deconvolution and blind estimation;
* :mod:`unblur.models` holds the restoration and motion networks and their registry
  (``create_model``, ``list_models``);
* :mod:`unblur.video` restores videos as streams with their neighbouring frames
  (``restore_video``: an iterator over restored frames; ``unblur video``, ``unblur live``);
* :mod:`unblur.train` trains them; :mod:`unblur.metrics` scores results.

The common entry points are available here and imported lazily, so that
``import unblur`` and ``unblur --version`` stay fast::

    import unblur
    image = unblur.read_image("shot.jpg")
    result = unblur.restore(image.pixels)  # .pixels, .method, .reason, .kernel, .seconds
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
    "deconvolve": "unblur.restoration.deconv",
    "deconvolve_field": "unblur.restoration.deconv",
    "linear_kernel": "unblur.blur",
    "shake_kernel": "unblur.blur",
    "blur_image": "unblur.blur",
    "field_blur": "unblur.blur",
    "psnr": "unblur.metrics",
    "ssim": "unblur.metrics",
    "estimate_motion": "unblur.motion.estimate",
    "MotionEstimate": "unblur.motion.estimate",
    "restore": "unblur.restoration.api",
    "Restoration": "unblur.restoration.api",
    "deblur": "unblur.restoration.network",
    "Deblurrer": "unblur.restoration.network",
    "create_model": "unblur.models",
    "list_models": "unblur.models",
    "restore_video": "unblur.video.api",
    "VideoFrame": "unblur.video.api",
}

__all__ = ["__version__", *_LAZY]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'unblur' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
