from __future__ import annotations

import numpy as np
import pytest
from scenes import textured_scene
from scipy import ndimage

from unblur import metrics


def test_psnr_known_value() -> None:
    a = np.zeros((10, 10), np.float32)
    b = np.full((10, 10), 0.1, np.float32)
    assert metrics.psnr(a, b) == pytest.approx(20.0)
    assert metrics.psnr(a, a) == float("inf")


def test_psnr_crop_border() -> None:
    a = np.zeros((10, 10))
    b = a.copy()
    b[0] = 1.0
    assert metrics.psnr(a, b, crop_border=1) == float("inf")
    with pytest.raises(ValueError, match="leaves nothing"):
        metrics.psnr(a, b, crop_border=5)


def test_ssim() -> None:
    img = textured_scene(64, 64, 3)
    assert metrics.ssim(img, img) == pytest.approx(1.0)
    noisy = img + np.random.default_rng(0).normal(0, 0.05, img.shape)
    assert 0.2 < metrics.ssim(img, noisy) < 0.95


def test_shape_mismatch() -> None:
    with pytest.raises(ValueError, match="differ in shape"):
        metrics.psnr(np.zeros((4, 4)), np.zeros((4, 5)))


def test_shift_compensated_psnr_finds_subpixel_shift() -> None:
    ref = ndimage.gaussian_filter(textured_scene(96, 96, seed=1), 1.0)
    moved = ndimage.shift(ref, (2.0, -1.5), order=1, mode="nearest")
    plain = metrics.psnr(ref, moved, crop_border=15)
    compensated = metrics.shift_compensated_psnr(ref, moved)
    assert compensated > plain + 10
    assert compensated > 40
