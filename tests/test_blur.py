"""Tests for the blur forward model (unblur.blur).

All inputs are generated on the fly except the small real GoPro crop in
``tests/data/gopro_pair`` (see its README).
"""

from __future__ import annotations

import doctest
import itertools
import math
from pathlib import Path

import numpy as np
import pytest
import scipy.ndimage as ndi
import scipy.signal
from PIL import Image

from unblur import blur
from unblur.blur import (
    DegradationConfig,
    add_noise,
    average_frames,
    average_window,
    blur_image,
    boost_highlights,
    constant_field,
    degrade,
    field_blur,
    frame_pairs,
    jpeg_compress,
    linear_kernel,
    random_field,
    saturate,
    shake_kernel,
)

GOPRO = Path(__file__).parent / "data" / "gopro_pair"


def texture(height: int, width: int, channels: int | None = 3, seed: int = 0) -> np.ndarray:
    """Band-limited random texture in [0, 1] (float32), isotropic."""
    rng = np.random.default_rng(seed)
    shape = (height, width) if channels is None else (height, width, channels)
    noise = rng.random(shape)
    sigma = (1.5, 1.5) if channels is None else (1.5, 1.5, 0)
    smooth = ndi.gaussian_filter(noise, sigma)
    smooth = (smooth - smooth.min()) / (smooth.max() - smooth.min())
    return smooth.astype(np.float32)


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((np.asarray(a, np.float64) - np.asarray(b, np.float64)) ** 2))
    return math.inf if mse == 0 else 10 * math.log10(1 / mse)


def kernel_moments(kernel: np.ndarray) -> tuple[float, float, float, float]:
    """(angle in degrees mod 180 with y up, length from the spread, centroid x, centroid y)."""
    size = kernel.shape[0]
    c = size // 2
    y, x = np.mgrid[:size, :size]
    x = x - c
    y_up = -(y - c)
    k = kernel.astype(np.float64)
    mx, my = float((k * x).sum()), float((k * y_up).sum())
    cxx = float((k * (x - mx) ** 2).sum())
    cyy = float((k * (y_up - my) ** 2).sum())
    cxy = float((k * (x - mx) * (y_up - my)).sum())
    angle = 0.5 * math.degrees(math.atan2(2 * cxy, cxx - cyy)) % 180
    low, high = np.linalg.eigvalsh([[cxx, cxy], [cxy, cyy]])
    # A uniform segment of length L has variance L^2 / 12 along it; bilinear splatting adds
    # (nearly) the same variance along both axes, which the difference of eigenvalues removes.
    return angle, math.sqrt(12 * (high - low)), mx, my


def reference_splat(points: np.ndarray, size: int) -> np.ndarray:
    """Independent bilinear splat (np.add.at) used to check kernels against trajectories."""
    grid = np.zeros((size, size))
    c = size // 2
    for px, py in points.astype(np.float64) + c:
        x0, y0 = math.floor(px), math.floor(py)
        fx, fy = px - x0, py - y0
        for dx, dy, w in ((0, 0, (1 - fx) * (1 - fy)), (1, 0, fx * (1 - fy))):
            if w > 0:
                np.add.at(grid, (y0 + dy, x0 + dx), w)
        for dx, dy, w in ((0, 1, (1 - fx) * fy), (1, 1, fx * fy)):
            if w > 0:
                np.add.at(grid, (y0 + dy, x0 + dx), w)
    return grid / grid.sum()


# --------------------------------------------------------------------------------------------
# linear kernels
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("length", [0.0, 0.4, 1.0, 3.0, 7.5, 20.0, 35.0])
@pytest.mark.parametrize("angle", [0.0, 30.0, 90.0, 137.0])
def test_linear_kernel_is_a_normalised_odd_kernel(length: float, angle: float) -> None:
    k = linear_kernel(length, angle)
    assert k.dtype == np.float32
    assert k.ndim == 2 and k.shape[0] == k.shape[1] and k.shape[0] % 2 == 1
    assert k.min() >= 0
    assert k.sum() == pytest.approx(1.0, abs=1e-5)
    _, _, mx, my = kernel_moments(k)
    assert abs(mx) < 1e-5 and abs(my) < 1e-5  # centre of mass at the centre pixel
    # smallest odd size: the outer ring carries weight
    if k.shape[0] > 1:
        ring = np.concatenate([k[0], k[-1], k[:, 0], k[:, -1]])
        assert ring.max() > 0


def test_linear_kernel_moments_give_angle_and_length() -> None:
    worst_angle = worst_length = 0.0
    for length in np.arange(5.0, 35.01, 1.7):
        for angle in np.arange(0.0, 360.0, 11.3):
            got_angle, got_length, _, _ = kernel_moments(linear_kernel(float(length), angle))
            diff = abs((got_angle - angle + 90) % 180 - 90)
            worst_angle = max(worst_angle, diff)
            worst_length = max(worst_length, abs(got_length - length))
    assert worst_angle < 2.0
    assert worst_length < 0.5


def test_linear_kernel_orientation_convention() -> None:
    c = 3
    vertical = linear_kernel(6, 90)
    assert vertical.shape == (7, 7)
    assert np.all(np.delete(vertical, c, axis=1) == 0)  # only the centre column
    horizontal = linear_kernel(6, 0)
    assert np.all(np.delete(horizontal, c, axis=0) == 0)
    diagonal = linear_kernel(6, 45)  # y up on screen: from bottom-left to top-right
    c = diagonal.shape[0] // 2
    assert diagonal[c - 2, c + 2] > 0 and diagonal[c + 2, c - 2] > 0
    assert diagonal[c - 2, c - 2] == 0 and diagonal[c + 2, c + 2] == 0
    np.testing.assert_allclose(linear_kernel(9, 20), linear_kernel(9, 200), atol=1e-7)


def test_linear_kernel_zero_length_is_delta_and_size_padding() -> None:
    np.testing.assert_array_equal(linear_kernel(0, 33), np.ones((1, 1), np.float32))
    padded = linear_kernel(0, 0, size=5)
    assert padded.shape == (5, 5) and padded[2, 2] == 1 and padded.sum() == 1
    small = linear_kernel(0.5, 0)  # sub-pixel: mostly the centre, a little to the sides
    assert small.shape == (3, 3) and small[1, 1] > 0.8 and small[1, 0] == small[1, 2] > 0
    big = linear_kernel(5, 0, size=11)
    assert linear_kernel(5, 0).shape == (7, 7)  # a length-L streak covers about L + 1 pixels
    np.testing.assert_allclose(big[2:9, 2:9], linear_kernel(5, 0), atol=1e-7)
    assert big.sum() == pytest.approx(big[2:9, 2:9].sum())


def test_linear_kernel_is_smooth_in_fractional_length() -> None:
    lengths = np.arange(5.0, 7.01, 0.1)
    spreads = [kernel_moments(linear_kernel(float(n), 25.0))[1] for n in lengths]
    assert np.all(np.diff(spreads) > 0)  # anti-aliasing: no plateaus between integers
    for a, b in itertools.pairwise(lengths):
        ka = linear_kernel(float(a), 25.0, size=9)
        kb = linear_kernel(float(b), 25.0, size=9)
        assert np.abs(ka - kb).sum() < 0.1


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"length": -1.0, "angle": 0.0}, "length"),
        ({"length": float("nan"), "angle": 0.0}, "length"),
        ({"length": 5.0, "angle": 0.0, "size": 4}, "size"),
        ({"length": 5.0, "angle": 0.0, "size": 3}, "too small"),
        ({"length": 5.0, "angle": 0.0, "supersample": 0}, "supersample"),
    ],
)
def test_linear_kernel_rejects_bad_arguments(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        linear_kernel(**kwargs)


# --------------------------------------------------------------------------------------------
# shake kernels
# --------------------------------------------------------------------------------------------


def test_shake_kernel_properties() -> None:
    for seed in range(5):
        shake = shake_kernel(size=31, rng=seed)
        k = shake.kernel
        assert k.shape == (31, 31) and k.dtype == np.float32
        assert k.min() >= 0 and k.sum() == pytest.approx(1.0, abs=1e-5)
        _, _, mx, my = kernel_moments(k)
        assert abs(mx) < 1e-3 and abs(my) < 1e-3
        traj = shake.trajectory
        assert traj.dtype == np.float32 and traj.shape == (2000, 2)
        assert np.abs(traj).max() <= 15 + 1e-5  # fits the support
        np.testing.assert_allclose(traj.mean(axis=0), 0, atol=1e-4)
        np.testing.assert_allclose(k, reference_splat(traj, 31), atol=1e-6)
        steps = np.hypot(*np.diff(traj.astype(np.float64), axis=0).T)
        assert shake.length == pytest.approx(steps.sum(), rel=1e-6)
        assert np.ptp(steps) < 1e-3  # constant speed


def test_shake_kernel_is_reproducible_and_seed_dependent() -> None:
    a = shake_kernel(size=25, rng=7)
    b = shake_kernel(size=25, rng=np.random.default_rng(7))
    np.testing.assert_array_equal(a.kernel, b.kernel)
    np.testing.assert_array_equal(a.trajectory, b.trajectory)
    c = shake_kernel(size=25, rng=8)
    assert not np.array_equal(a.kernel, c.kernel)


def test_shake_kernel_parameters() -> None:
    straight = shake_kernel(size=21, rng=3, anxiety=0.0, length=12.0)
    assert straight.length == pytest.approx(12.0, rel=1e-3)
    _, spread, _, _ = kernel_moments(straight.kernel)
    assert spread == pytest.approx(12.0, abs=0.5)  # anxiety 0: a straight segment
    partial = shake_kernel(size=21, rng=3, exposure=0.25, length=12.0)
    assert partial.trajectory.shape == (500, 2)
    full = shake_kernel(size=21, rng=3, length=12.0)
    # the partial exposure is the start of the same path (same draws), re-centred
    np.testing.assert_allclose(
        np.diff(partial.trajectory, axis=0), np.diff(full.trajectory[:500], axis=0), atol=1e-4
    )
    shrunk = shake_kernel(size=5, rng=0, anxiety=0.0, length=40.0)
    assert np.abs(shrunk.trajectory).max() <= 2 + 1e-5 and shrunk.length < 40


@pytest.mark.parametrize(
    "kwargs",
    [
        {"size": 30},
        {"size": 1},
        {"exposure": 0.0},
        {"exposure": 1.5},
        {"anxiety": -0.1},
        {"jerk_prob": 2.0},
        {"length": 0.0},
        {"samples": 1},
    ],
)
def test_shake_kernel_rejects_bad_arguments(kwargs: dict) -> None:
    with pytest.raises(ValueError, match=next(iter(kwargs))):
        shake_kernel(rng=0, **kwargs)


# --------------------------------------------------------------------------------------------
# uniform blur
# --------------------------------------------------------------------------------------------


def test_blur_image_is_true_convolution() -> None:
    image = texture(40, 50, channels=None)
    rng = np.random.default_rng(1)
    kernel = rng.random((7, 5)).astype(np.float32)  # asymmetric on purpose
    kernel /= kernel.sum()
    out = blur_image(image, kernel)
    assert out.dtype == np.float32 and out.shape == image.shape
    ref = scipy.signal.convolve2d(image.astype(np.float64), kernel, mode="same")
    np.testing.assert_allclose(out[3:-3, 2:-2], ref[3:-3, 2:-2], atol=1e-5)
    delta = np.zeros((15, 15), np.float32)
    delta[7, 7] = 1
    np.testing.assert_allclose(blur_image(delta, kernel)[4:11, 5:10], kernel, atol=1e-6)


@pytest.mark.parametrize("mode", ["reflect", "mirror", "nearest", "constant", "wrap"])
def test_blur_image_matches_ndimage_convolve_everywhere(mode: str) -> None:
    image = texture(23, 17, channels=None, seed=2)
    kernel = linear_kernel(30, 60)  # larger than the image
    ref = ndi.convolve(image.astype(np.float64), kernel.astype(np.float64), mode=mode)
    np.testing.assert_allclose(blur_image(image, kernel, mode=mode), ref, atol=1e-5)


def test_blur_image_colour_is_per_channel() -> None:
    image = texture(32, 32, channels=3, seed=3)
    kernel = shake_kernel(size=9, rng=0).kernel
    out = blur_image(image, kernel)
    for c in range(3):
        np.testing.assert_allclose(out[..., c], blur_image(image[..., c], kernel), atol=1e-6)
    five = texture(16, 16, channels=5, seed=4)
    assert blur_image(five, kernel).shape == five.shape


def test_blur_image_rejects_bad_arguments() -> None:
    image = texture(8, 8, channels=None)
    with pytest.raises(ValueError, match="odd"):
        blur_image(image, np.ones((4, 4), np.float32) / 16)
    with pytest.raises(ValueError, match="mode"):
        blur_image(image, linear_kernel(3, 0), mode="bogus")
    with pytest.raises(ValueError, match="uint8"):
        blur_image((image * 255).astype(np.uint8), linear_kernel(3, 0))
    with pytest.raises(ValueError, match="shape"):
        blur_image(np.zeros((2, 2, 2, 2), np.float32), linear_kernel(3, 0))


# --------------------------------------------------------------------------------------------
# spatially varying blur
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("length", "angle"), [(5.0, 0.0), (12.3, 37.0), (29.7, 143.0)])
def test_field_blur_constant_field_matches_kernel(length: float, angle: float) -> None:
    image = texture(96, 96, seed=5)
    kernel = linear_kernel(length, angle)
    by_kernel = blur_image(image, kernel)
    by_field = field_blur(image, constant_field(96, 96, length, angle))
    r = kernel.shape[0] // 2 + 1
    assert psnr(by_field[r:-r, r:-r], by_kernel[r:-r, r:-r]) > 40


def test_field_blur_two_regions_blur_in_their_own_directions() -> None:
    image = texture(96, 128, channels=None, seed=6)
    field = np.zeros((96, 128, 2), np.float32)
    field[:, :64, 0] = 12  # left: horizontal motion
    field[:, 64:, 1] = 12  # right: vertical motion
    out = field_blur(image, field)

    def energy(region: np.ndarray) -> tuple[float, float]:
        return float(np.mean(np.diff(region, axis=1) ** 2)), float(
            np.mean(np.diff(region, axis=0) ** 2)
        )

    left_x, left_y = energy(out[16:-16, 8:48])
    right_x, right_y = energy(out[16:-16, 80:120])
    assert left_x < 0.2 * left_y  # horizontal streaks: little change along x
    assert right_y < 0.2 * right_x


def test_field_blur_identity_sign_symmetry_and_channels() -> None:
    image = texture(40, 40, seed=7)
    np.testing.assert_array_equal(field_blur(image, np.zeros((40, 40, 2), np.float32)), image)
    field = random_field(40, 40, rng=1, max_length=8).field
    np.testing.assert_array_equal(field_blur(image, field, samples=1), image)
    np.testing.assert_allclose(field_blur(image, field), field_blur(image, -field), atol=1e-5)
    gray = field_blur(image[..., 0], field)
    assert gray.shape == (40, 40)
    np.testing.assert_allclose(gray, field_blur(image, field)[..., 0], atol=1e-6)
    wide = np.concatenate([image, image[..., :2]], axis=2)  # 5 channels: remapped in chunks
    np.testing.assert_allclose(field_blur(wide, field)[..., 3:], field_blur(image, field)[..., :2])


def test_field_blur_rejects_bad_arguments() -> None:
    image = texture(10, 12)
    with pytest.raises(ValueError, match="field must have shape"):
        field_blur(image, np.zeros((12, 10, 2), np.float32))
    with pytest.raises(ValueError, match="field must have shape"):
        field_blur(image, np.zeros((10, 12, 3), np.float32))
    bad = np.zeros((10, 12, 2), np.float32)
    bad[0, 0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        field_blur(image, bad)
    with pytest.raises(ValueError, match="samples"):
        field_blur(image, np.zeros((10, 12, 2), np.float32), samples=0)


def test_random_field_shapes_bounds_and_reproducibility() -> None:
    sample = random_field(48, 64, rng=3, max_length=20, objects=(1, 3))
    field = sample.field
    assert field.shape == (48, 64, 2) and field.dtype == np.float32
    assert np.hypot(field[..., 0], field[..., 1]).max() <= 20 + 1e-4
    k = sample.masks.shape[0]
    assert 1 <= k <= 3 and sample.masks.shape == (k, 48, 64)
    assert sample.object_motion.shape == (k, 2)
    assert sample.masks.min() >= 0 and sample.masks.max() <= 1
    assert "objects" in sample.kind and "rotation" in sample.kind
    again = random_field(48, 64, rng=np.random.default_rng(3), max_length=20, objects=(1, 3))
    np.testing.assert_array_equal(field, again.field)
    other = random_field(48, 64, rng=4, max_length=20, objects=(1, 3))
    assert not np.array_equal(field, other.field)


def test_random_field_camera_motion_is_smooth() -> None:
    translation = random_field(30, 40, rng=5, rotation=False, zoom=False, objects=0)
    assert translation.kind == "translation" and translation.masks.shape == (0, 30, 40)
    np.testing.assert_allclose(
        translation.field, np.broadcast_to(translation.field[0, 0], (30, 40, 2)), atol=1e-4
    )
    affine = random_field(30, 40, rng=5, objects=0).field.astype(np.float64)
    # affine field: second differences vanish, and the largest vector is 30% to 100% of the cap
    assert np.abs(np.diff(affine, n=2, axis=0)).max() < 1e-3
    assert np.abs(np.diff(affine, n=2, axis=1)).max() < 1e-3
    assert 9 - 1e-4 <= np.hypot(affine[..., 0], affine[..., 1]).max() <= 30 + 1e-4
    zero = random_field(8, 8, rng=0, max_length=0)
    np.testing.assert_array_equal(zero.field, 0)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"height": 0, "width": 5}, "height"),
        ({"height": 5, "width": 5, "max_length": -1.0}, "max_length"),
        ({"height": 5, "width": 5, "objects": (3, 1)}, "objects"),
        ({"height": 5, "width": 5, "objects": -1}, "objects"),
    ],
)
def test_random_field_rejects_bad_arguments(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        random_field(rng=0, **kwargs)


# --------------------------------------------------------------------------------------------
# frame averaging
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("gamma", [None, 2.2, "srgb"])
def test_average_frames_of_identical_frames_is_identity(gamma: str | float | None) -> None:
    frame = texture(20, 30, seed=8)
    out = average_frames([frame] * 4, gamma=gamma)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, frame, atol=2e-6)


def test_average_frames_linearises() -> None:
    black, white = np.zeros((2, 2), np.float32), np.ones((2, 2), np.float32)
    assert average_frames([black, white], gamma=None)[0, 0] == pytest.approx(0.5)
    assert average_frames([black, white], gamma=2.0)[0, 0] == pytest.approx(0.5**0.5, abs=1e-6)
    # half the light of white is sRGB 0.7354
    assert average_frames([black, white], gamma="srgb")[0, 0] == pytest.approx(0.7354, abs=1e-4)


def test_average_frames_rejects_bad_arguments() -> None:
    frame = texture(4, 4)
    with pytest.raises(ValueError, match="empty"):
        average_frames([])
    with pytest.raises(ValueError, match=r"frames\[1\]"):
        average_frames([frame, texture(4, 5)])
    with pytest.raises(ValueError, match="gamma"):
        average_frames([frame], gamma="linear")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="gamma"):
        average_frames([frame], gamma=-1.0)
    with pytest.raises(ValueError, match="past the end"):
        average_window([frame] * 3, 1, 3)


def test_average_window_and_frame_pairs() -> None:
    frames = [np.full((3, 3), i / 10, np.float32) for i in range(10)]
    blurred, sharp = average_window(frames, 2, 4, gamma=None)
    np.testing.assert_allclose(blurred, np.mean([f[0, 0] for f in frames[2:6]]), atol=1e-6)
    np.testing.assert_array_equal(sharp, frames[4])  # start + n // 2
    pairs = list(frame_pairs(frames, 3, gamma=None))
    assert len(pairs) == 3
    np.testing.assert_array_equal(pairs[2][1], frames[7])
    assert len(list(frame_pairs(frames, 3, stride=1))) == 8
    with pytest.raises(ValueError, match="stride"):
        frame_pairs(frames, 3, stride=0)  # checked eagerly, not on first next()


def load_png(path: Path) -> np.ndarray:
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"), dtype=np.float32) / 255


def test_average_frames_reproduces_real_gopro_blur() -> None:
    frames = [load_png(GOPRO / f"frame_{i:06d}.png") for i in range(166, 174)]
    shipped_blur = load_png(GOPRO / "blur.png")
    shipped_sharp = load_png(GOPRO / "sharp.png")
    blurred, sharp = average_window(frames, 0, 8, gamma=2.2)
    np.testing.assert_array_equal(sharp, shipped_sharp)
    # measured: gamma 2.2 -> 53.1 dB, sRGB curve -> 51.2 dB, no linearisation -> 34.3 dB
    assert psnr(blurred, shipped_blur) >= 50
    assert psnr(average_frames(frames, gamma="srgb"), shipped_blur) >= 48
    assert psnr(average_frames(frames, gamma=None), shipped_blur) <= 40
    # the generator truncated to 8 bits: flooring reproduces the stored values (1 of 27648 off)
    stored = np.round(shipped_blur * 255)
    assert np.mean(np.floor(blurred * 255 + 1e-3) == stored) > 0.999
    assert psnr(shipped_blur, shipped_sharp) < 25  # the crop really is blurred


# --------------------------------------------------------------------------------------------
# sensor effects
# --------------------------------------------------------------------------------------------


def test_add_noise_gaussian_statistics() -> None:
    image = np.full((256, 256), 0.5, np.float32)
    noisy = add_noise(image, rng=0, gaussian_sigma=0.05, clip=False)
    assert noisy.dtype == np.float32
    assert float(np.std(noisy)) == pytest.approx(0.05, rel=0.05)
    assert float(np.mean(noisy)) == pytest.approx(0.5, abs=1e-3)


def test_add_noise_poisson_statistics() -> None:
    image = np.full((256, 256), 0.3, np.float32)
    noisy = add_noise(image, rng=1, poisson_scale=100.0, clip=False)
    assert float(np.mean(noisy)) == pytest.approx(0.3, rel=0.01)
    assert float(np.var(noisy)) == pytest.approx(0.3 / 100, rel=0.05)
    assert np.allclose(noisy * 100, np.round(noisy * 100), atol=1e-3)  # photon counts


def test_add_noise_clipping_reproducibility_and_noop() -> None:
    image = texture(32, 32, seed=9)
    np.testing.assert_array_equal(add_noise(image, rng=0), image)
    a = add_noise(image, rng=5, gaussian_sigma=0.2, poisson_scale=50)
    b = add_noise(image, rng=5, gaussian_sigma=0.2, poisson_scale=50)
    np.testing.assert_array_equal(a, b)
    assert a.min() >= 0 and a.max() <= 1
    assert add_noise(image, rng=5, gaussian_sigma=0.2, clip=False).min() < 0
    with pytest.raises(ValueError, match="gaussian_sigma"):
        add_noise(image, gaussian_sigma=-0.1)
    with pytest.raises(ValueError, match="poisson_scale"):
        add_noise(image, poisson_scale=-1.0)
    with pytest.raises(TypeError, match="rng"):
        add_noise(image, rng="seed")  # type: ignore[arg-type]


def test_saturate_and_boost_highlights() -> None:
    image = np.array([[0.1, 0.5, 0.9]], np.float32)
    np.testing.assert_allclose(saturate(image, gain=2.0), [[0.2, 1.0, 1.0]])
    np.testing.assert_allclose(saturate(image, gain=4.0, threshold=3.0), [[0.4, 2.0, 3.0]])
    with pytest.raises(ValueError, match="gain"):
        saturate(image, gain=0.0)
    with pytest.raises(ValueError, match="threshold"):
        saturate(image, threshold=-1.0)
    boosted = boost_highlights(image, gain=4.0, knee=0.8)
    np.testing.assert_allclose(boosted[0, :2], image[0, :2])  # below the knee: unchanged
    assert boosted[0, 2] == pytest.approx(0.9 * 2.5)  # halfway from knee to 1: half the boost
    with pytest.raises(ValueError, match="gain"):
        boost_highlights(image, gain=0.5)


def test_jpeg_compress() -> None:
    image = texture(64, 64, seed=10)
    out = jpeg_compress(image, quality=90)
    assert out.dtype == np.float32 and out.shape == image.shape
    assert not np.allclose(out, image, atol=1 / 255)
    assert psnr(out, image) > 30
    assert psnr(jpeg_compress(image, quality=10), image) < psnr(out, image)
    gray = texture(32, 32, channels=None)
    assert jpeg_compress(gray, quality=75).shape == (32, 32)
    assert jpeg_compress(gray[..., None], quality=75).shape == (32, 32, 1)
    for bad in (0, 101):
        with pytest.raises(ValueError, match="quality"):
            jpeg_compress(image, quality=bad)
    with pytest.raises(ValueError, match="quality"):
        jpeg_compress(image, quality=9.5)  # type: ignore[arg-type]


def test_srgb_curve_round_trip_and_reference_values() -> None:
    x = np.linspace(0, 1, 1001, dtype=np.float32)
    np.testing.assert_allclose(blur._linear_to_srgb(blur._srgb_to_linear(x)), x, atol=2e-6)
    assert float(blur._srgb_to_linear(np.float32(0.5))) == pytest.approx(0.214041, abs=1e-6)
    assert float(blur._srgb_to_linear(np.float32(0.04))) == pytest.approx(0.04 / 12.92)
    assert float(blur._linear_to_srgb(np.float32(0.18))) == pytest.approx(0.461356, abs=1e-5)


# --------------------------------------------------------------------------------------------
# full pipeline
# --------------------------------------------------------------------------------------------

TRUTH_KEYS = {
    "linear": {"kernel", "angle"},
    "shake": {"kernel", "trajectory", "exposure"},
    "field": {"field", "masks", "motion_kind"},
}
COMMON_KEYS = {"kind", "length", "sharp", "highlight_gain", "gaussian_sigma", "poisson_scale"}


@pytest.mark.parametrize("kind", ["linear", "shake", "field"])
def test_degrade_is_reproducible_and_reports_truth(kind: str) -> None:
    sharp = texture(48, 56, seed=11)
    config = DegradationConfig(
        kind=kind,  # type: ignore[arg-type]
        length=(4.0, 10.0),
        saturation_prob=0.5,
        poisson_scale=(200.0, 1000.0),
        jpeg_quality=(70, 95),
    )
    out, truth = degrade(sharp, config, rng=12)
    again, truth_again = degrade(sharp, config, rng=np.random.default_rng(12))
    np.testing.assert_array_equal(out, again)
    assert truth.keys() == truth_again.keys()
    assert out.shape == sharp.shape and out.dtype == np.float32
    assert out.min() >= 0 and out.max() <= 1
    assert TRUTH_KEYS[kind] | COMMON_KEYS | {"jpeg_quality"} <= truth.keys()
    assert truth["kind"] == kind and 70 <= truth["jpeg_quality"] <= 95
    for other in set(TRUTH_KEYS) - {kind}:
        assert not (TRUTH_KEYS[other] - TRUTH_KEYS[kind]) & truth.keys()
    if kind == "field":
        assert truth["field"].shape == (48, 56, 2)
    else:
        k = truth["kernel"]
        assert k.shape[0] % 2 == 1 and k.sum() == pytest.approx(1, abs=1e-5)
    different, _ = degrade(sharp, config, rng=13)
    assert not np.array_equal(out, different)
    assert psnr(out, sharp) < 35  # it did degrade the image


def test_boosted_highlights_saturate_in_the_sharp_target_too() -> None:
    """A blown-out area is white in the sharp exposure as in the blurred one: the pair must not
    ask a network to turn saturated white into the colour that lay under the clipping."""
    sharp = np.full((64, 64, 3), 0.2, np.float32)
    sharp[8:56, 8:56] = (0.97, 0.95, 0.9)  # a large bright, slightly warm area
    config = DegradationConfig(
        kind="linear",
        length=(6.0, 6.0),
        saturation_prob=1.0,
        highlight_gain=(4.0, 4.0),
        gaussian_sigma=(0.0, 0.0),
    )
    out, truth = degrade(sharp, config, rng=0)
    assert truth["highlight_gain"] == 4.0
    target = truth["sharp"]
    assert target.shape == sharp.shape and target.dtype == np.float32
    inner = (slice(20, 44), slice(20, 44))
    np.testing.assert_allclose(out[inner], 1.0, atol=1e-6)  # saturated in the blurred picture
    np.testing.assert_allclose(target[inner], 1.0, atol=1e-6)  # and in the sharp one
    np.testing.assert_allclose(target[:4], sharp[:4], atol=1e-6)  # dark pixels: not boosted
    assert psnr(out[inner], target[inner]) > 60 > psnr(out[inner], sharp[inner])


def test_degrade_without_noise_matches_the_forward_model() -> None:
    sharp = texture(40, 40, seed=12)
    config = DegradationConfig(
        kind="linear", length=(7.0, 7.0), angle=(30.0, 30.0), gaussian_sigma=(0.0, 0.0)
    )
    out, truth = degrade(sharp, config, rng=0)
    assert truth["jpeg_quality"] is None and truth["highlight_gain"] is None
    linear = blur._srgb_to_linear(sharp)
    expected = blur._linear_to_srgb(np.clip(blur_image(linear, linear_kernel(7.0, 30.0)), 0, 1))
    np.testing.assert_allclose(out, expected, atol=1e-6)
    assert truth["sharp"] is sharp  # no highlight boost: the sharp picture is the input
    sized = DegradationConfig(kind="linear", length=(3.0, 3.0), kernel_size=15)
    assert degrade(sharp, sized, rng=0)[1]["kernel"].shape == (15, 15)
    shake = DegradationConfig(kind="shake", length=(9.0, 9.0), kernel_size=21)
    assert degrade(sharp, shake, rng=0)[1]["kernel"].shape == (21, 21)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"kind": "gaussian"}, "kind"),
        ({"length": (10.0, 5.0)}, "length"),
        ({"length": (-1.0, 5.0)}, "length"),
        ({"kind": "shake", "length": (0.0, 5.0)}, "length"),
        ({"kernel_size": 8}, "kernel_size"),
        ({"kernel_size": 1}, "kernel_size"),
        ({"field_objects": (0.5, 2)}, "field_objects"),
        ({"saturation_prob": 1.5}, "saturation_prob"),
        ({"gaussian_sigma": (0.0,)}, "gaussian_sigma"),
        ({"shake_exposure": (0.5, 2.0)}, "shake_exposure"),
        ({"poisson_scale": (0.0, 10.0)}, "poisson_scale"),
        ({"jpeg_quality": (0, 90)}, "jpeg_quality"),
        ({"jpeg_quality": (50, 101)}, "jpeg_quality"),
        ({"highlight_gain": (0.5, 2.0)}, "highlight_gain"),
    ],
)
def test_degradation_config_rejects_bad_values(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        DegradationConfig(**kwargs)


def test_docstring_examples() -> None:
    result = doctest.testmod(blur, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0
