from __future__ import annotations

import numpy as np
import pytest
from scenes import textured_scene
from scipy import ndimage

from unblur import blur, metrics
from unblur.errors import KernelError
from unblur.restoration import deconv

METHODS = ("hyperlaplacian", "wiener", "rl")
# Measured gains on this generated scene: 9.9 (hyper-Laplacian), 3.4 (Wiener), 3.2 dB (RL).
MIN_GAIN_DB = {"hyperlaplacian": 8.0, "wiener": 2.5, "rl": 2.5}


@pytest.fixture(scope="module")
def blurred_pair() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    sharp = textured_scene(128, 128, seed=0)
    kernel = blur.shake_kernel(size=15, rng=3, length=12.0).kernel
    rng = np.random.default_rng(1)
    observed = blur.blur_image(sharp, kernel) + rng.normal(0, 0.005, sharp.shape)
    return sharp, observed.astype(np.float32), kernel


@pytest.mark.parametrize("method", METHODS)
def test_true_kernel_raises_psnr(blurred_pair, method: str) -> None:
    sharp, observed, kernel = blurred_pair
    restored = deconv.deconvolve(observed, kernel, method=method)
    assert restored.dtype == np.float32
    assert restored.shape == observed.shape
    assert np.isfinite(restored).all()
    gain = metrics.psnr(sharp, restored, crop_border=4) - metrics.psnr(
        sharp, observed, crop_border=4
    )
    assert gain >= MIN_GAIN_DB[method], f"{method} gained only {gain:.2f} dB"


def test_hyperlaplacian_beats_the_others(blurred_pair) -> None:
    sharp, observed, kernel = blurred_pair
    scores = {
        m: metrics.psnr(sharp, deconv.deconvolve(observed, kernel, method=m), crop_border=4)
        for m in METHODS
    }
    assert scores["hyperlaplacian"] > max(scores["wiener"], scores["rl"])


FIXED = {
    "hyperlaplacian": lambda y, k: deconv.hyper_laplacian(y, k, lam=2000.0),
    "wiener": lambda y, k: deconv.wiener(y, k, nsr=0.01),
    "rl": lambda y, k: deconv.richardson_lucy(y, k, damping=0.01, iterations=20),
}


@pytest.mark.parametrize("method", METHODS)
def test_colour_is_per_channel(method: str) -> None:
    rgb = textured_scene(64, 80, 3, seed=2)
    kernel = blur.linear_kernel(7, 30)
    observed = blur.blur_image(rgb, kernel)
    out = FIXED[method](observed, kernel)
    assert out.shape == rgb.shape
    green = FIXED[method](np.ascontiguousarray(observed[..., 1]), kernel)
    np.testing.assert_allclose(out[..., 1], green, atol=1e-5)


def test_no_ringing_frames_the_image() -> None:
    # a uniform image blurred by a long kernel must come back uniform, borders included
    flat = np.full((64, 96), 0.6, np.float32)
    kernel = blur.linear_kernel(21, 0)
    for method in METHODS:
        out = deconv.deconvolve(blur.blur_image(flat, kernel), kernel, method=method)
        assert np.abs(out - 0.6).max() < 0.01, method


def test_borders_restored_as_well_as_the_middle(blurred_pair) -> None:
    sharp, observed, kernel = blurred_pair
    out = deconv.hyper_laplacian(observed, kernel)
    err = np.abs(out - sharp)
    assert err[:8].mean() < 3 * err[32:-32, 32:-32].mean()


def test_wiener_explicit_nsr_and_rl_options(blurred_pair) -> None:
    sharp, observed, kernel = blurred_pair
    weak = deconv.wiener(observed, kernel, nsr=1e-6)
    strong = deconv.wiener(observed, kernel, nsr=1.0)
    # almost no regularisation amplifies noise; too much leaves the blur
    assert np.std(np.diff(weak, axis=1)) > np.std(np.diff(strong, axis=1))
    one = deconv.richardson_lucy(observed, kernel, iterations=1, damping=0)
    many = deconv.richardson_lucy(observed, kernel, iterations=30, damping=0, tol=0)
    assert metrics.psnr(sharp, many) > metrics.psnr(sharp, one)


def test_shrinkage_table_matches_brute_force() -> None:
    alpha, beta = 2.0 / 3.0, 8.0
    grid = np.linspace(0, 2.0, 4001)
    for v in (0.0, 0.05, 0.2, 0.35, 0.5, 1.0, 1.7):
        energy = np.abs(grid) ** alpha + beta / 2 * (grid - v) ** 2
        best = grid[np.argmin(energy)]
        got = float(deconv._shrink(np.array([v, -v], np.float32), alpha, beta)[0])
        assert got == pytest.approx(best, abs=2e-3)
        assert float(deconv._shrink(np.array([-v], np.float32), alpha, beta)[0]) == pytest.approx(
            -got, abs=1e-6
        )


def test_estimate_noise() -> None:
    rng = np.random.default_rng(0)
    scene = blur.blur_image(textured_scene(256, 256, seed=4), blur.linear_kernel(9, 45))
    for sigma in (0.005, 0.02):
        noisy = scene + rng.normal(0, sigma, scene.shape).astype(np.float32)
        assert deconv.estimate_noise(noisy) == pytest.approx(sigma, rel=0.15)


def test_two_region_spatially_varying_deconvolution() -> None:
    sharp = textured_scene(160, 192, seed=5)
    field = np.zeros((160, 192, 2), np.float32)
    field[:, :96] = (11.0, 0.0)  # left half moves horizontally
    field[:, 96:] = (0.0, 11.0)  # right half vertically
    observed = blur.field_blur(sharp, field)
    restored = deconv.deconvolve_field(observed, field, patch=64)
    left, right = np.s_[8:-8, 8:80], np.s_[8:-8, 112:-8]
    # measured: +3.7 dB on the left half, +8.1 dB on the right
    for region, least in ((left, 3.0), (right, 6.0)):
        gain = metrics.psnr(sharp[region], restored[region]) - metrics.psnr(
            sharp[region], observed[region]
        )
        assert gain > least
    # one uniform kernel cannot do this: it fails on the other half
    uniform = deconv.deconvolve(observed, blur.linear_kernel(11, 0))
    assert (
        metrics.psnr(sharp[right], restored[right]) > metrics.psnr(sharp[right], uniform[right]) + 4
    )


def test_field_kernel_handles_sign_ambiguity() -> None:
    field = np.zeros((32, 32, 2), np.float32)
    field[:, :, 0] = 9.0
    field[::2, :, 0] = -9.0  # v and -v mixed: the same streak
    k = deconv.field_kernel(field, slice(0, 32), slice(0, 32))
    np.testing.assert_allclose(k, blur.linear_kernel(9, 0, size=k.shape[0]), atol=1e-6)


def test_deconvolve_field_rejects_bad_fields() -> None:
    img = textured_scene(32, 32)
    with pytest.raises(ValueError, match="shape"):
        deconv.deconvolve_field(img, np.zeros((16, 16, 2), np.float32))
    bad = np.zeros((32, 32, 2), np.float32)
    bad[0, 0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        deconv.deconvolve_field(img, bad)


@pytest.mark.parametrize(
    ("kernel", "message"),
    [
        (np.zeros((0, 0)), "empty"),
        (np.zeros((5, 5)), "all zeros"),
        (np.array([[0.5, -0.5, 1.0]]), "negative"),
        (np.full((3, 3), np.nan), "NaN"),
        (np.ones((3, 3, 3, 3)), "2-D"),
        (np.ones((41, 41)), "larger than the image"),
    ],
)
def test_bad_kernels_are_refused(kernel: np.ndarray, message: str) -> None:
    with pytest.raises(KernelError, match=message):
        deconv.validate_kernel(kernel, (32, 32))


def test_kernel_is_normalised_and_made_odd() -> None:
    k = deconv.validate_kernel(np.ones((4, 6)) * 3)
    assert k.shape == (5, 7)
    assert k.dtype == np.float32
    assert float(k.sum()) == pytest.approx(1.0)


def test_integer_images_are_refused() -> None:
    with pytest.raises(ValueError, match="float"):
        deconv.wiener(np.zeros((8, 8), np.uint8), np.ones((3, 3)))


def test_unknown_method() -> None:
    with pytest.raises(ValueError, match="unknown deconvolution method"):
        deconv.deconvolve(np.zeros((8, 8), np.float32), np.ones((3, 3)), method="magic")  # type: ignore[arg-type]


def test_lam_scale_trades_sharpness_for_robustness(blurred_pair) -> None:
    """A smaller data weight smooths more: less high-frequency energy, and 1.0 is the default."""
    _, blurred, kernel = blurred_pair
    default = deconv.hyper_laplacian(blurred, kernel)
    np.testing.assert_array_equal(default, deconv.hyper_laplacian(blurred, kernel, lam_scale=1.0))
    soft = deconv.deconvolve(blurred, kernel, lam_scale=0.1)

    def detail(x: np.ndarray) -> float:
        return float(np.mean(np.abs(np.diff(x, axis=1))))

    assert detail(soft) < detail(default)
    with pytest.raises(ValueError, match="lam_scale"):
        deconv.hyper_laplacian(blurred, kernel, lam_scale=0.0)


@pytest.mark.parametrize("method", METHODS)
def test_origin_mass_restores_in_place_a_kernel_known_up_to_a_shift(blurred_pair, method) -> None:
    """A blind estimate is only known up to a shift, and re-centred by whole pixels: about its
    centre pixel it moves the picture by what is left over; about its centre of mass it does
    not (a phase ramp, exact to a fraction of a pixel)."""
    sharp, observed, kernel = blurred_pair
    moved = ndimage.shift(np.pad(kernel.astype(np.float64), 3), (1.5, -0.5), order=1)
    assert deconv.mass_offset(moved) == pytest.approx((1.5, -0.5), abs=1e-6)
    assert deconv.mass_offset(kernel) == pytest.approx((0.0, 0.0), abs=1e-6)

    def score(k: np.ndarray, origin: str) -> float:
        out = deconv.deconvolve(observed, k, method=method, origin=origin)  # type: ignore[arg-type]
        return metrics.psnr(sharp, out, crop_border=8)

    in_place = score(kernel, "centre")
    # the true kernel's centre of mass is its centre pixel: the two conventions agree
    assert score(kernel, "mass") == pytest.approx(in_place, abs=0.05)
    # the moved kernel: about its centre pixel the picture moves, about its mass it stays
    assert score(moved, "mass") > score(moved, "centre") + 3.0
    assert score(moved, "mass") > in_place - 1.5


def test_unknown_origin() -> None:
    with pytest.raises(ValueError, match="origin"):
        deconv.hyper_laplacian(np.zeros((8, 8), np.float32), np.ones((3, 3)), origin="middle")  # type: ignore[arg-type]
