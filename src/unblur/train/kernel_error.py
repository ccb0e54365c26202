"""How a kernel estimated from a blurred photo differs from the true one: a model for training.

Blind estimation (:mod:`unblur.restoration.blind`) gets a camera-shake kernel roughly right
and never exactly: a little turned or stretched, softer, with specks of spurious mass, and
thresholded at a twentieth of its peak. :func:`perturb_kernel` draws such an estimate from a
true kernel, so that training (:mod:`unblur.train.deconvolved`) can deconvolve with kernels as
wrong as ``auto``'s.

Example:
    >>> import numpy as np
    >>> from unblur.blur import linear_kernel
    >>> k = perturb_kernel(linear_kernel(15, 30.0), np.random.default_rng(0))
    >>> bool(k.min() >= 0 and abs(k.sum() - 1) < 1e-6 and k.shape[0] % 2 == 1)
    True
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from unblur.restoration.blind import PEAK_FRACTION

__all__ = ["KernelError", "perturb_kernel"]


@dataclass(frozen=True)
class KernelError:
    """How :func:`perturb_kernel` makes a true kernel look estimated; each draw is uniform.

    Attributes:
        turn: most rotation, degrees either way.
        stretch: most relative change of the kernel's size, either way.
        soften: most Gaussian blur of the kernel, sigma in pixels.
        speckle: most share of the kernel's mass moved to spurious specks near its support.
        exact_prob: probability of the true kernel, unchanged.
    """

    turn: float = 6.0
    stretch: float = 0.15
    soften: float = 0.8
    speckle: float = 0.05
    exact_prob: float = 0.1

    def __post_init__(self) -> None:
        for name in ("turn", "stretch", "soften", "speckle"):
            if not math.isfinite(getattr(self, name)) or getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        if self.stretch >= 1.0 or self.speckle >= 1.0:
            raise ValueError("stretch and speckle must be below 1")
        if not 0.0 <= self.exact_prob <= 1.0:
            raise ValueError(f"exact_prob must be in [0, 1], got {self.exact_prob}")


def perturb_kernel(
    kernel: np.ndarray, rng: np.random.Generator, error: KernelError | None = None
) -> np.ndarray:
    """A wrong but plausible estimate of ``kernel``: turned and stretched about its centre
    pixel, softened, with a few spurious specks, thresholded at ``1 / PEAK_FRACTION`` of its
    peak (as :func:`unblur.restoration.blind.estimate_kernel` cleans its estimates) and
    normalised.

    Args:
        kernel: odd-sided non-negative kernel (true-convolution orientation).
        rng: generator for every draw.
        error: the perturbation's ranges (default :class:`KernelError`).

    Returns:
        float32 odd-sided kernel summing to 1, a few pixels larger than ``kernel`` (room for
        the stretch and the softening).
    """
    error = error or KernelError()
    k = np.asarray(kernel, np.float64)
    if k.ndim != 2 or k.shape[0] != k.shape[1] or k.shape[0] % 2 == 0:
        raise ValueError(f"kernel must be square with an odd side, got {k.shape}")
    k = np.clip(k, 0.0, None) / max(float(k.sum()), 1e-12)
    if rng.random() < error.exact_prob:
        return k.astype(np.float32)
    pad = math.ceil(error.stretch * k.shape[0] / 2 + 2 * error.soften) + 1
    k = np.pad(k, pad)
    side = k.shape[0]
    centre = (side - 1) / 2.0
    turn = rng.uniform(-error.turn, error.turn)
    scale = 1.0 + rng.uniform(-error.stretch, error.stretch)
    matrix = cv2.getRotationMatrix2D((centre, centre), turn, scale)
    k = cv2.warpAffine(k, matrix, (side, side), flags=cv2.INTER_LINEAR, borderValue=0.0)
    sigma = rng.uniform(0.0, error.soften)
    if sigma > 0.05:
        k = cv2.GaussianBlur(k, (0, 0), sigma)
    share = rng.uniform(0.0, error.speckle)
    if share > 0 and k.max() > 0:
        near = cv2.dilate((k > k.max() / 20).astype(np.uint8), np.ones((5, 5), np.uint8))
        spots = np.flatnonzero(near)
        chosen = rng.choice(spots, size=min(len(spots), int(rng.integers(1, 5))), replace=False)
        specks = np.zeros(side * side)
        specks[chosen] = rng.random(len(chosen)) + 0.1
        k = (1 - share) * k / k.sum() + share * specks.reshape(side, side) / specks.sum()
    k = np.clip(k, 0.0, None)
    k[k < k.max() / PEAK_FRACTION] = 0.0
    return (k / k.sum()).astype(np.float32)
