"""Image quality metrics with the field's conventions.

All metrics take float images in [0, 1], shape ``(H, W)`` or ``(H, W, C)``,
``data_range = 1``. ``crop_border`` removes that many pixels on every side
before scoring (as BasicSR does).
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage


def _check_pair(reference: np.ndarray, test: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    ref = np.asarray(reference, dtype=np.float64)
    out = np.asarray(test, dtype=np.float64)
    if ref.shape != out.shape:
        raise ValueError(f"images differ in shape: {ref.shape} vs {out.shape}")
    if ref.ndim not in (2, 3):
        raise ValueError(f"images must have shape (H, W) or (H, W, C), got {ref.shape}")
    return ref, out


def _crop(img: np.ndarray, border: int) -> np.ndarray:
    if border < 0:
        raise ValueError(f"crop_border must be >= 0, got {border}")
    if border == 0:
        return img
    if 2 * border >= min(img.shape[:2]):
        raise ValueError(f"crop_border {border} leaves nothing of a {img.shape[:2]} image")
    return img[border:-border, border:-border]


def psnr(reference: np.ndarray, test: np.ndarray, *, crop_border: int = 0) -> float:
    """Peak signal-to-noise ratio in dB (data range 1); ``inf`` for identical images."""
    ref, out = _check_pair(reference, test)
    mse = float(np.mean((_crop(ref, crop_border) - _crop(out, crop_border)) ** 2))
    return float("inf") if mse == 0 else 10.0 * np.log10(1.0 / mse)


def ssim(reference: np.ndarray, test: np.ndarray, *, crop_border: int = 0) -> float:
    """Structural similarity (Wang et al. 2004, Gaussian window, as in their reference code)."""
    from skimage.metrics import structural_similarity

    ref, out = _check_pair(reference, test)
    ref, out = _crop(ref, crop_border), _crop(out, crop_border)
    channel_axis = -1 if ref.ndim == 3 else None
    return float(
        structural_similarity(
            ref,
            out,
            data_range=1.0,
            channel_axis=channel_axis,
            gaussian_weights=True,
            sigma=1.5,
            use_sample_covariance=False,
        )
    )


def shift_compensated_psnr(
    reference: np.ndarray,
    test: np.ndarray,
    *,
    max_shift: float = 5.0,
    step: float = 0.25,
    border: int = 15,
) -> float:
    """PSNR after the best sub-pixel shift of ``test``, as Levin et al. 2009 score deblurring.

    Real blurred photographs are related to their sharp reference only up to
    a small translation, so the test image is shifted by every offset on a
    ``step`` grid within ``±max_shift`` pixels (bilinear interpolation), the
    reference is cropped by ``border`` pixels on each side, and the best PSNR
    is returned (Levin's ``comp_upto_shift``).

    Args:
        reference: sharp image.
        test: restored image, same shape.
        max_shift: largest shift tried along each axis, in pixels.
        step: shift grid spacing, in pixels.
        border: pixels cropped from each side before scoring (>= max_shift).

    Returns:
        Best PSNR in dB over the tried shifts.
    """
    ref, out = _check_pair(reference, test)
    if border < max_shift:
        raise ValueError(f"border ({border}) must be at least max_shift ({max_shift})")
    crop = (slice(border, ref.shape[0] - border), slice(border, ref.shape[1] - border))
    target = ref[crop]

    def score(dy: float, dx: float) -> float:
        if out.ndim == 2:
            moved = ndimage.shift(out, (dy, dx), order=1, mode="nearest")
        else:
            moved = ndimage.shift(out, (dy, dx, 0), order=1, mode="nearest")
        mse = float(np.mean((moved[crop] - target) ** 2))
        return float("inf") if mse == 0 else 10.0 * np.log10(1.0 / mse)

    # integer search first, then refine on the sub-pixel grid around the best offset
    whole = np.arange(-int(max_shift), int(max_shift) + 1)
    best = max((score(dy, dx), dy, dx) for dy in whole for dx in whole)
    fine = np.arange(-1.0, 1.0 + 1e-9, step)
    _, by, bx = best
    for dy in fine:
        for dx in fine:
            y, x = by + dy, bx + dx
            if abs(y) <= max_shift and abs(x) <= max_shift:
                best = max(best, (score(y, x), y, x))
    return best[0]
