"""Restoration: from a blurred image to a sharp one.

* :mod:`unblur.restoration.api`: :func:`restore`, the one entry point, and its ``auto`` rule;
* :mod:`unblur.restoration.network`: the restoration network on images of any size (tiles,
  device, precision);
* :mod:`unblur.restoration.deconv`: non-blind deconvolution (Wiener, Richardson-Lucy,
  hyper-Laplacian), uniform or spatially varying;
* :mod:`unblur.restoration.blind`: one uniform kernel estimated from the image;
* :mod:`unblur.restoration.field`: deconvolution driven by an estimated motion field.

``restore`` and ``Restoration`` are imported lazily from here.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = ["METHODS", "Restoration", "restore"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        return getattr(importlib.import_module("unblur.restoration.api"), name)
    raise AttributeError(f"module 'unblur.restoration' has no attribute {name!r}")
