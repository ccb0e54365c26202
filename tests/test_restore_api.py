"""unblur.restore: the one restoration entry point and its auto rule."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from scenes import textured_scene

import unblur
from unblur import blur, export, io, metrics
from unblur.models import create_model, get_spec, load_weights
from unblur.restoration import auto
from unblur.restoration.api import POLISH_MODEL, Restoration, restore
from unblur.restoration.network import Deblurrer

REPO = Path(__file__).resolve().parents[1]


def _shaken(size: int = 256, seed: int = 3, length: float = 12.0) -> tuple[np.ndarray, ...]:
    grey = textured_scene(size, size, seed=seed)
    sharp = np.stack([grey, 0.9 * grey, 0.8 * grey], axis=2).astype(np.float32)
    kernel = blur.shake_kernel(size=17, rng=4, length=length).kernel
    blurred = io.linear_to_srgb(blur.blur_image(io.srgb_to_linear(sharp), kernel))
    return np.clip(blurred, 0, 1).astype(np.float32), sharp, kernel


def test_public_surface() -> None:
    assert unblur.restore is restore
    assert unblur.Restoration is Restoration
    assert "restore" in dir(unblur)


def test_kernel_method_and_auto_with_kernel_restore(tmp_path: Path) -> None:
    blurred, sharp, kernel = _shaken()
    before = metrics.psnr(sharp, blurred, crop_border=8)
    for method in ("kernel", "auto"):
        result = restore(blurred, method, kernel=kernel, space="linear")  # type: ignore[arg-type]
        assert result.method == "kernel" and result.space == "linear"
        assert result.kernel is not None and result.kernel.sum() == pytest.approx(1, abs=1e-5)
        assert metrics.psnr(sharp, result.pixels, crop_border=8) > before + 5
        assert result.seconds > 0 and "hyperlaplacian" in result.reason


def test_auto_deconvolves_uniform_camera_shake() -> None:
    blurred, sharp, _ = _shaken()
    result = restore(blurred, kernel_size=21)
    assert result.evidence is not None
    assert result.evidence.agreement_large >= auto.AGREEMENT_MIN, result.evidence
    assert result.evidence.spread <= auto.SPREAD_MAX, result.evidence
    assert result.method == "blind" and result.space == "linear"
    assert "agree" in result.reason and "linear light" in result.reason
    gain = metrics.shift_compensated_psnr(sharp, result.pixels) - metrics.shift_compensated_psnr(
        sharp, blurred
    )
    assert gain > 3.0, gain
    # it deconvolves as --method blind does (the larger window's kernel), not with a small
    # window's kernel
    direct = restore(blurred, "blind", kernel_size=21)
    assert result.kernel is not None and direct.kernel is not None
    np.testing.assert_array_equal(result.kernel, direct.kernel)
    # ... blended by the measured shares with the network's restoration and with the network
    # run on the deconvolution
    # the clean-up network: nafnet-polish where it ships (with the shares measured for it),
    # else the restoration network
    trained = get_spec(POLISH_MODEL).has_weights
    cleaner = POLISH_MODEL if trained else "nafnet-fast"
    share = auto.BLIND_SHARE_TRAINED if trained else auto.BLIND_SHARE
    polish = auto.BLIND_POLISH_TRAINED if trained else auto.BLIND_POLISH
    assert result.share == share and direct.share is None
    assert result.polish == polish > 0 and direct.polish is None
    network = restore(blurred, "network")
    assert result.polish_model == cleaner
    polished = Deblurrer(cleaner, device="cpu", tta="auto").restore(direct.pixels)
    expected = auto.blend(direct.pixels, network.pixels, share, polished, polish)
    np.testing.assert_allclose(result.pixels, expected, atol=1e-6)
    if share + polish < 1:  # the network's restoration of the photo has a share
        assert result.model == "nafnet-fast" and "+ network (nafnet-fast" in result.describe()
    else:  # ... or none, and is not run
        assert result.model is None and "+ network" not in result.describe()
        assert "the network's restoration" not in result.reason
    assert f"+ {cleaner} on the deconvolution ({polish:.0%})" in result.describe()
    assert f"blended: {share:.0%} this deconvolution" in result.reason
    assert f"{cleaner} run on the deconvolution" in result.reason


def test_auto_cleans_its_deconvolution_with_the_polish_network_where_it_ships(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from unblur.models import registry
    from unblur.restoration import network as network_module

    shipped = registry.WEIGHTS_DIR / "nafnet-fast.safetensors"
    folder = tmp_path / "weights"
    folder.mkdir()
    (folder / "nafnet-fast.safetensors").write_bytes(shipped.read_bytes())
    monkeypatch.setattr(registry, "WEIGHTS_DIR", folder)
    network_module._cached.cache_clear()
    blurred, _, _ = _shaken()
    try:
        without = restore(blurred, kernel_size=21, tta=False)
        assert without.method == "blind" and without.polish_model == "nafnet-fast"
        assert (without.share, without.polish) == (auto.BLIND_SHARE, auto.BLIND_POLISH)
        # a clean-up network ships: other weights of the same architecture (here: perturbed)
        torch.manual_seed(0)
        net = create_model("nafnet-fast", pretrained=False)
        load_weights(net, shipped)
        with torch.no_grad():
            for p in net.parameters():
                p.add_(0.01 * torch.randn_like(p))
        export.save_weights(folder / "nafnet-polish.safetensors", net, "nafnet-polish")
        network_module._cached.cache_clear()
        cleaned = restore(blurred, kernel_size=21, tta=False)
        assert cleaned.polish_model == POLISH_MODEL
        assert f"+ {POLISH_MODEL} on the deconvolution" in cleaned.describe()
        direct = restore(blurred, "blind", kernel_size=21)
        polished = Deblurrer(POLISH_MODEL, device="cpu").restore(direct.pixels)
        restored = Deblurrer("nafnet-fast", device="cpu").restore(blurred)
        # ... with the shares measured for a clean-up network trained for it
        assert (cleaned.share, cleaned.polish) == (
            auto.BLIND_SHARE_TRAINED,
            auto.BLIND_POLISH_TRAINED,
        )
        expected = auto.blend(
            direct.pixels, restored, auto.BLIND_SHARE_TRAINED, polished, auto.BLIND_POLISH_TRAINED
        )
        np.testing.assert_allclose(cleaned.pixels, expected, atol=1e-6)
        assert np.abs(cleaned.pixels - without.pixels).max() > 1e-3
        # other weights for the restoration: they clean up too (nothing is mixed)
        custom = restore(blurred, kernel_size=21, tta=False, weights=shipped)
        assert custom.polish_model == "nafnet-fast"
    finally:
        network_module._cached.cache_clear()


def test_auto_runs_the_network_when_the_blur_varies() -> None:
    # left half smeared horizontally, right half vertically: no one kernel fits
    grey = textured_scene(256, 512, seed=5)
    sharp = np.stack([grey] * 3, axis=2).astype(np.float32)
    lin = io.srgb_to_linear(sharp)
    left = blur.blur_image(lin, blur.linear_kernel(15, 0.0))
    right = blur.blur_image(lin, blur.linear_kernel(15, 90.0))
    mixed = np.concatenate([left[:, :256], right[:, 256:]], axis=1)
    blurred = np.clip(io.linear_to_srgb(mixed), 0, 1).astype(np.float32)
    result = restore(blurred, kernel_size=21)
    assert result.evidence is not None
    ev = result.evidence
    assert ev.agreement_large < auto.AGREEMENT_MIN or ev.spread > auto.SPREAD_MAX, ev
    assert result.method == "network" and result.model == "nafnet-fast"
    assert "disagree" in result.reason or "motion varies" in result.reason
    assert result.pixels.shape == blurred.shape
    assert metrics.psnr(sharp, result.pixels) >= metrics.psnr(sharp, blurred) - 0.1


def test_auto_on_a_tiny_or_flat_picture_uses_the_network() -> None:
    flat = np.full((40, 40, 3), 0.5, np.float32)
    result = restore(flat)
    assert result.method == "network" and "too small" in result.reason
    np.testing.assert_allclose(result.pixels, flat, atol=0.02)


def test_alpha_and_grey_pass_through() -> None:
    blurred, _, kernel = _shaken(128)
    rgba = np.concatenate([blurred, np.linspace(0, 1, 128 * 128).reshape(128, 128, 1)], axis=2)
    result = restore(rgba.astype(np.float32), "kernel", kernel=kernel)
    assert result.pixels.shape == (128, 128, 4)
    np.testing.assert_array_equal(result.pixels[..., 3], rgba[..., 3].astype(np.float32))
    grey = restore(blurred[..., 0], "kernel", kernel=kernel)
    assert grey.pixels.shape == (128, 128) and grey.space == "srgb"
    assert "grey picture" in grey.reason


def test_network_result_records_the_model() -> None:
    img = np.random.default_rng(0).random((64, 80, 3)).astype(np.float32)
    result = restore(img, "network", tta=False)
    assert (result.method, result.model, result.space, result.kernel, result.passes) == (
        "network",
        "nafnet-fast",
        None,
        None,
        1,
    )
    assert result.pixels.shape == img.shape and result.pixels.dtype == np.float32
    assert result.describe().startswith("network (nafnet-fast): asked for [")
    # tta: the shipped network's mean over the eight turns and flips, not the plain result
    from unblur.restoration.network import Deblurrer

    flipped = restore(img, "network", tta=True, device="cpu")
    expected = Deblurrer("nafnet-fast", device="cpu", tta=True).restore(img)
    np.testing.assert_allclose(flipped.pixels, expected, atol=1e-6)
    assert np.abs(flipped.pixels - result.pixels).max() > 1e-4
    assert flipped.passes == 8 and "averaged over 8 turns and flips" in flipped.describe()
    # by default a picture under 1.05 megapixels gets all eight
    default = restore(img, "network", device="cpu")
    assert default.passes == 8
    np.testing.assert_array_equal(default.pixels, flipped.pixels)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"method": "magic"}, "unknown method"),
        ({"method": "kernel"}, "needs the blur kernel"),
        ({"method": "network", "kernel": np.ones((3, 3))}, "a kernel is for"),
        ({"space": "lab"}, "unknown space"),
        ({"deconvolution": "fast"}, "unknown deconvolution"),
    ],
)
def test_bad_arguments_raise(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        restore(np.zeros((32, 32, 3), np.float32), **kwargs)


def test_bad_images_raise() -> None:
    with pytest.raises(ValueError, match="float"):
        restore(np.zeros((32, 32, 3), np.uint8), "network")
    with pytest.raises(ValueError, match="C in 1, 3, 4"):
        restore(np.zeros((32, 32, 2), np.float32), "network")


def test_kernel_agreement_is_shift_invariant_and_direction_aware() -> None:
    k = blur.linear_kernel(11, 30.0)
    shifted = np.roll(np.pad(k, 4), 3, axis=1)
    assert auto.kernel_agreement(k, shifted) == pytest.approx(1.0, abs=1e-6)
    other = blur.linear_kernel(11, 120.0)
    assert auto.kernel_agreement(k, other) < 0.4
    assert auto.kernel_agreement(k, np.zeros_like(k)) == 0.0


def test_choose_states_its_numbers() -> None:
    k = [np.eye(3)]

    def ev(agreement: float, noise: float = 0.001, spread: float = 0.2) -> auto.Evidence:
        return auto.Evidence(0.5, noise, k * 3, [(0, 0, 64)] * 3, 0, 0.4, agreement, k[0], spread)

    assert choose_method(ev(0.9)) == "blind"
    assert choose_method(ev(0.2)) == "network"
    method, reason = auto.choose(ev(0.9, noise=0.5))
    assert method == "network" and "noisy" in reason and "0.500" in reason
    method, reason = auto.choose(ev(0.9, spread=1.3))
    assert method == "network" and "motion varies" in reason and "1.30" in reason
    method, reason = auto.choose(ev(0.9, spread=float("nan")))  # not measured: kernels decide
    assert method == "blind" and "not measured" in reason


def test_a_noisy_picture_goes_to_the_network_without_kernels() -> None:
    blurred, _, _ = _shaken()
    clean = auto.uniform_blur_evidence(blurred, 21, workers=1)
    assert auto.choose(clean)[0] == "blind" and clean.noise <= auto.NOISE_MAX
    noisy = np.clip(blurred + np.random.default_rng(0).normal(0, 0.05, blurred.shape), 0, 1)
    noisy = noisy.astype(np.float32)
    skipped = auto.uniform_blur_evidence(noisy, 21, workers=1)
    assert skipped.noise > auto.NOISE_MAX
    assert skipped.kernels == [] and not np.isfinite(skipped.agreement_large)
    method, reason = auto.choose(skipped)
    assert method == "network" and "noisy" in reason and "not compared" in reason
    # asked for, the kernels are estimated anyway; the choice is the same
    full = auto.uniform_blur_evidence(noisy, 21, workers=1, all_kernels=True)
    assert len(full.kernels) >= 2 and np.isfinite(full.agreement_large)
    assert auto.choose(full)[0] == "network"
    result = restore(noisy, "auto", device="cpu", tta=False)
    assert result.method == "network" and "not compared" in result.reason


def test_blend_and_the_blind_share() -> None:
    a, b = np.zeros((4, 4, 3), np.float32), np.ones((4, 4, 3), np.float32)
    np.testing.assert_allclose(auto.blend(a, b, 0.7), 0.3)
    np.testing.assert_array_equal(auto.blend(a + 2, b, 1.0), 1.0)  # clipped
    with pytest.raises(ValueError, match="share"):
        auto.blend(a, b, 1.5)
    c = np.full_like(a, 0.5)
    np.testing.assert_allclose(auto.blend(a, b, 0.3, c, 0.4), 0.3 * 0 + 0.3 * 1 + 0.4 * 0.5)
    with pytest.raises(ValueError, match="sum"):
        auto.blend(a, b, 0.7, c, 0.4)
    with pytest.raises(ValueError, match="polished"):
        auto.blend(a, b, 0.3, None, 0.4)
    k = [np.eye(3)]

    def ev(agreement: float, noise: float = 0.001, spread: float = 0.2) -> auto.Evidence:
        return auto.Evidence(0.5, noise, k * 3, [(0, 0, 64)] * 3, 0, 0.4, agreement, k[0], spread)

    assert auto.blind_share(ev(0.95)) == auto.BLIND_SHARE < 1  # colour: blended
    assert auto.blind_share(ev(0.95), grey=True) == auto.BLIND_SHARE_GREY
    assert auto.blind_share(ev(0.2)) == 0.0  # the network alone
    assert auto.blind_share(ev(0.95, spread=5.0)) == auto.blind_share(ev(0.95, noise=0.5)) == 0
    assert auto.blind_polish(ev(0.95)) == auto.BLIND_POLISH  # colour: the network on it too
    assert auto.blind_polish(ev(0.95), grey=True) == auto.blind_polish(ev(0.2)) == 0.0
    assert auto.BLIND_SHARE + auto.BLIND_POLISH <= 1.0
    # a clean-up network trained for deconvolutions: its own shares, for colour pictures only
    assert auto.blind_share(ev(0.95), trained=True) == auto.BLIND_SHARE_TRAINED
    assert auto.blind_polish(ev(0.95), trained=True) == auto.BLIND_POLISH_TRAINED > 0
    assert auto.blind_share(ev(0.95), grey=True, trained=True) == auto.BLIND_SHARE_GREY
    assert auto.blind_polish(ev(0.95), grey=True, trained=True) == 0.0
    assert auto.BLIND_SHARE_TRAINED + auto.BLIND_POLISH_TRAINED <= 1.0


def test_evidence_records_each_window_agreement_and_texture() -> None:
    blurred, _, _ = _shaken()
    ev = auto.uniform_blur_evidence(blurred, 21, workers=1)
    assert len(ev.agreements) == len(ev.textures) == len(ev.kernels) >= 2
    assert ev.agreement_large == pytest.approx(float(np.median(ev.agreements)))
    assert all(t > 0 for t in ev.textures)
    # on three threads side by side: the very same evidence, in the same order
    threaded = auto.uniform_blur_evidence(blurred, 21, workers=3)
    assert threaded.windows == ev.windows and threaded.agreements == ev.agreements
    assert all(np.array_equal(a, b) for a, b in zip(threaded.kernels, ev.kernels, strict=True))
    assert np.array_equal(threaded.kernel, ev.kernel) and threaded.agreement == ev.agreement


def test_motion_spread_tells_uniform_from_varying_motion() -> None:
    grey = textured_scene(192, 192, seed=2)
    lin = io.srgb_to_linear(np.stack([grey] * 3, axis=2).astype(np.float32))
    uniform = np.clip(io.linear_to_srgb(blur.blur_image(lin, blur.linear_kernel(15, 30.0))), 0, 1)
    ring = np.zeros((192, 192, 2), np.float32)  # rotation about the centre: direction turns
    yy, xx = np.mgrid[:192, :192].astype(np.float32) - 95.5
    ring[..., 0], ring[..., 1] = -yy * 0.15, xx * 0.15
    turning = np.clip(io.linear_to_srgb(blur.field_blur(lin, ring)), 0, 1)
    still = auto.motion_spread(uniform.astype(np.float32))
    varying = auto.motion_spread(turning.astype(np.float32))
    assert still < auto.SPREAD_MAX < varying, (still, varying)
    assert auto.motion_spread(np.full((64, 64, 3), 0.5, np.float32)) >= 0.0


def choose_method(ev: auto.Evidence) -> str:
    return auto.choose(ev)[0]


def test_readme_python_example_runs(tmp_path: Path) -> None:
    text = (REPO / "README.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    assert blocks, "README has no Python example"
    code = "\n".join(blocks).replace('"examples/', f'"{REPO / "examples"}/')
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=600
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
