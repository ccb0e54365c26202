"""Image quality metrics with the field's conventions.

All metrics take float images in [0, 1], shape ``(H, W)`` or ``(H, W, C)``,
``data_range = 1``. ``crop_border`` removes that many pixels on every side
before scoring (as BasicSR does). ``y_channel=True`` scores the luma of an RGB
image instead of its three channels: ITU-R BT.601 Y as MATLAB's ``rgb2ycbcr``
computes it (``16/255 + (65.481 R + 128.553 G + 24.966 B) / 255``), the convention
of the deblurring and super-resolution literature (BasicSR's ``test_y_channel``).
A grey image is its own Y.

With ground truth: :func:`psnr`, :func:`ssim`, and :func:`shift_compensated_psnr` for real
camera shake (Levin et al. 2009), where the sharp reference is only known up to a shift.
Without: :func:`sharpness`, a no-reference measure (variance of the Laplacian).
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


def rgb_to_y(image: np.ndarray) -> np.ndarray:
    """BT.601 luma in ``[16/255, 235/255]`` of an RGB image (MATLAB's ``rgb2ycbcr``).

    Args:
        image: float ``(H, W, 3)`` in ``[0, 1]``; ``(H, W)`` or ``(H, W, 1)`` grey images are
            returned as ``(H, W)`` unchanged.

    Returns:
        float64 ``(H, W)``.

    Example:
        >>> round(float(rgb_to_y(np.ones((1, 1, 3)))[0, 0] * 255), 3)
        235.0
    """
    img = np.asarray(image, dtype=np.float64)
    if img.ndim == 3 and img.shape[2] == 1:
        return img[..., 0]
    if img.ndim == 2:
        return img
    if img.ndim != 3 or img.shape[2] != 3:
        raise ValueError(f"Y channel needs (H, W, 3) or grey images, got {img.shape}")
    weights = np.array([65.481, 128.553, 24.966]) / 255.0
    return img @ weights + 16.0 / 255.0


def _channels(img: np.ndarray, y_channel: bool) -> np.ndarray:
    return rgb_to_y(img) if y_channel else img


def psnr(
    reference: np.ndarray, test: np.ndarray, *, crop_border: int = 0, y_channel: bool = False
) -> float:
    """Peak signal-to-noise ratio in dB (data range 1); ``inf`` for identical images.

    Args:
        reference: sharp image.
        test: image to score, same shape.
        crop_border: pixels left out on every side.
        y_channel: score the BT.601 luma (module docstring) instead of every channel.
    """
    ref, out = _check_pair(reference, test)
    ref, out = _channels(ref, y_channel), _channels(out, y_channel)
    mse = float(np.mean((_crop(ref, crop_border) - _crop(out, crop_border)) ** 2))
    return float("inf") if mse == 0 else 10.0 * np.log10(1.0 / mse)


def ssim(
    reference: np.ndarray, test: np.ndarray, *, crop_border: int = 0, y_channel: bool = False
) -> float:
    """Structural similarity (Wang et al. 2004, Gaussian window, as in their reference code).

    Colour images are scored per channel and averaged, or on the luma with ``y_channel``.
    """
    from skimage.metrics import structural_similarity

    ref, out = _check_pair(reference, test)
    ref, out = _channels(ref, y_channel), _channels(out, y_channel)
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
    y_channel: bool = False,
) -> float:
    """PSNR after the best sub-pixel shift of ``test``, as Levin et al. 2009 score deblurring.

    Real blurred photographs are related to their sharp reference only up to
    a small translation, so the test image is shifted within ``±max_shift`` pixels
    (bilinear interpolation), the reference is cropped by ``border`` pixels on each side,
    and the best PSNR is returned (Levin's ``comp_upto_shift``).

    The search is coarse to fine: every whole-pixel offset first (exact, by slicing), then
    around the best one a 3x3 neighbourhood at half a pixel, a quarter, ... down to
    ``step``, moving to the best neighbour until the centre is best. About 20 times faster
    than trying every offset of the ``step`` grid, and the same optimum on smooth scores.

    Args:
        reference: sharp image.
        test: restored image, same shape.
        max_shift: largest shift tried along each axis, in pixels.
        step: finest shift spacing, in pixels.
        border: pixels cropped from each side before scoring (>= max_shift).
        y_channel: score the BT.601 luma of RGB images (see the module docstring).

    Returns:
        Best PSNR in dB over the tried shifts.
    """
    ref, out = _check_pair(reference, test)
    ref, out = _channels(ref, y_channel), _channels(out, y_channel)
    if border < max_shift:
        raise ValueError(f"border ({border}) must be at least max_shift ({max_shift})")
    if step <= 0:
        raise ValueError(f"step must be > 0, got {step}")
    h, w = ref.shape[:2]
    if 2 * border >= min(h, w):
        raise ValueError(f"border {border} leaves nothing of a {ref.shape[:2]} image")
    target = ref[border : h - border, border : w - border]
    # sub-pixel shifts move a window with a margin around the crop: the same values as
    # shifting the whole image (mode "nearest" only matters farther out) at a fraction of
    # the cost
    margin = min(border, int(np.ceil(max_shift)) + 2)
    window = out[border - margin : h - border + margin, border - margin : w - border + margin]

    def mse_to_psnr(mse: float) -> float:
        return float("inf") if mse == 0 else 10.0 * np.log10(1.0 / mse)

    def whole(dy: int, dx: int) -> float:
        moved = out[border - dy : h - border - dy, border - dx : w - border - dx]
        return mse_to_psnr(float(np.mean((moved - target) ** 2)))

    def sub(dy: float, dx: float) -> float:
        if dy == round(dy) and dx == round(dx):
            return whole(int(dy), int(dx))
        offset = (dy, dx) if out.ndim == 2 else (dy, dx, 0)
        moved = ndimage.shift(window, offset, order=1, mode="nearest")
        inner = moved[margin : moved.shape[0] - margin, margin : moved.shape[1] - margin]
        return mse_to_psnr(float(np.mean((inner - target) ** 2)))

    reach = int(max_shift)
    best = max(
        (whole(dy, dx), dy, dx)
        for dy in range(-reach, reach + 1)
        for dx in range(-reach, reach + 1)
    )
    seen: dict[tuple[float, float], float] = {}
    spacing = 0.5
    while spacing >= step - 1e-9:
        while True:
            _, by, bx = best
            moved_to = best
            for ny in (by - spacing, by, by + spacing):
                for nx in (bx - spacing, bx, bx + spacing):
                    if abs(ny) > max_shift or abs(nx) > max_shift or (ny, nx) == (by, bx):
                        continue
                    if (ny, nx) not in seen:
                        seen[(ny, nx)] = sub(ny, nx)
                    moved_to = max(moved_to, (seen[(ny, nx)], ny, nx))
            if moved_to == best:
                break
            best = moved_to
        spacing /= 2
    return float(best[0])


def sharpness(image: np.ndarray, *, crop_border: int = 0) -> float:
    """A no-reference sharpness score: the variance of the Laplacian of the luma.

    The measure of Pech-Pacheco et al. 2000 ("Diatom autofocusing in brightfield
    microscopy"), widely used to rank pictures by focus: the luma (BT.601 Y for colour,
    the values for grey) on the 0-255 scale, filtered with the 3x3 Laplacian
    ``[[0, 1, 0], [1, -4, 1], [0, 1, 0]]``, variance over the picture. Higher is sharper;
    on photographs a few tens is blurred and hundreds is sharp. It rises with noise and
    ringing too, so it compares restorations of the *same* picture; it is no quality score
    (for that, ask people: ``unblur serve``'s blind A/B judgement).

    Args:
        image: float ``(H, W)`` or ``(H, W, C)`` (C in 1, 3) in ``[0, 1]``.
        crop_border: pixels left out on every side.

    Returns:
        The variance, >= 0.
    """
    img = np.asarray(image, dtype=np.float64)
    if img.ndim not in (2, 3):
        raise ValueError(f"image must have shape (H, W) or (H, W, C), got {img.shape}")
    luma = rgb_to_y(img) if img.ndim == 3 else img
    luma = _crop(luma * 255.0, crop_border)
    laplacian = ndimage.convolve(
        luma, np.array([[0, 1, 0], [1, -4, 1], [0, 1, 0]], float), mode="reflect"
    )
    return float(laplacian[1:-1, 1:-1].var()) if min(luma.shape) > 2 else 0.0
