"""The torch forward model (unblur.train.torch_blur) against the NumPy one (unblur.blur, io)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scenes import textured_scene

from unblur import io
from unblur.blur import blur_image, linear_kernel, shake_kernel
from unblur.train.torch_blur import (
    PAD_MODES,
    add_noise_batch,
    blur_batch,
    kernels_to_tensor,
    linear_to_srgb,
    srgb_to_linear,
    synthesize,
)

H, W = 40, 52


def _kernels() -> list[np.ndarray]:
    return [
        linear_kernel(9.5, 30.0),
        shake_kernel(size=15, rng=3).kernel,
        np.ones((1, 1), np.float32),
    ]


def _images(channels: int = 3) -> np.ndarray:
    """(3, H, W, C) float32 sRGB images: two textured scenes and uniform noise."""
    rng = np.random.default_rng(0)
    return np.stack(
        [
            textured_scene(H, W, channels, seed=1).reshape(H, W, channels),
            textured_scene(H, W, channels, seed=2).reshape(H, W, channels),
            rng.random((H, W, channels), dtype=np.float32),
        ]
    )


def _to_torch(images: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(images.transpose(0, 3, 1, 2)))


def _to_numpy(batch: torch.Tensor) -> np.ndarray:
    return batch.numpy().transpose(0, 2, 3, 1)


# --------------------------------------------------------------------------------------------
# sRGB
# --------------------------------------------------------------------------------------------


def test_srgb_curves_match_io() -> None:
    x = np.concatenate([np.linspace(-0.1, 1.1, 4001, dtype=np.float32), [0.04045, 0.0031308]])
    x = x.astype(np.float32)
    t = torch.from_numpy(x)
    np.testing.assert_allclose(srgb_to_linear(t).numpy(), io.srgb_to_linear(x), rtol=0, atol=1e-6)
    np.testing.assert_allclose(linear_to_srgb(t).numpy(), io.linear_to_srgb(x), rtol=0, atol=1e-6)
    assert linear_to_srgb(torch.ones(1)).item() == 1.0
    assert linear_to_srgb(torch.zeros(1)).item() == 0.0


def test_srgb_round_trip_and_dtypes() -> None:
    x = torch.linspace(0, 1, 1001)
    assert torch.max(torch.abs(linear_to_srgb(srgb_to_linear(x)) - x)).item() < 1e-6
    assert torch.max(torch.abs(srgb_to_linear(linear_to_srgb(x)) - x)).item() < 1e-6
    for dtype in (torch.bfloat16, torch.float16, torch.float64):
        y = srgb_to_linear(x.to(dtype))
        assert y.dtype == dtype
        assert linear_to_srgb(y).dtype == dtype
        tol = 1e-6 if dtype == torch.float64 else 1e-2
        assert torch.max(torch.abs(y.float() - srgb_to_linear(x))).item() < tol


def test_srgb_rejects_integers() -> None:
    with pytest.raises(TypeError, match="floating"):
        srgb_to_linear(torch.zeros(3, dtype=torch.uint8))


# --------------------------------------------------------------------------------------------
# kernels and blur
# --------------------------------------------------------------------------------------------


def test_kernels_to_tensor_pads_centred() -> None:
    ks = _kernels()
    t = kernels_to_tensor(ks)
    size = max(k.shape[0] for k in ks)
    assert t.shape == (3, 1, size, size) and t.dtype == torch.float32
    np.testing.assert_allclose(t.sum(dim=(1, 2, 3)).numpy(), [k.sum() for k in ks], atol=1e-6)
    c = size // 2
    for k, padded in zip(ks, t[:, 0].numpy(), strict=True):
        r = k.shape[0] // 2
        np.testing.assert_array_equal(padded[c - r : c + r + 1, c - r : c + r + 1], k)
        assert padded[c, c] == k[r, r]
    assert t[2, 0, c, c].item() == 1.0
    big = kernels_to_tensor(ks, 21, dtype=torch.float64)
    assert big.shape == (3, 1, 21, 21) and big.dtype == torch.float64
    np.testing.assert_allclose(big.sum(dim=(1, 2, 3)).numpy(), 1.0, atol=1e-6)


def test_kernels_to_tensor_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="odd"):
        kernels_to_tensor([np.ones((4, 4), np.float32) / 16])
    with pytest.raises(ValueError, match="smaller"):
        kernels_to_tensor(_kernels(), 5)
    with pytest.raises(ValueError, match="odd"):
        kernels_to_tensor(_kernels(), 22)
    with pytest.raises(ValueError, match="2-D"):
        kernels_to_tensor([np.ones(3, np.float32)])
    with pytest.raises(ValueError, match="at least one"):
        kernels_to_tensor([])


def test_blur_batch_matches_blur_image() -> None:
    images = _images()
    ks = _kernels()
    out = _to_numpy(blur_batch(_to_torch(images), kernels_to_tensor(ks)))
    for image, k, got in zip(images, ks, out, strict=True):
        want = blur_image(image, k, mode="reflect")
        assert np.max(np.abs(got - want)) < 1e-5
    np.testing.assert_array_equal(out[2], images[2])  # the delta kernel


@pytest.mark.parametrize("mode", PAD_MODES)
def test_blur_batch_modes_and_kernels_larger_than_image(mode: str) -> None:
    rng = np.random.default_rng(1)
    images = rng.random((2, 7, 9, 2), dtype=np.float32)
    ks = [linear_kernel(14.0, 70.0), shake_kernel(size=19, rng=5).kernel]  # larger than 7x9
    out = _to_numpy(blur_batch(_to_torch(images), kernels_to_tensor(ks), mode=mode))
    for image, k, got in zip(images, ks, out, strict=True):
        assert np.max(np.abs(got - blur_image(image, k, mode=mode))) < 1e-5


def test_blur_batch_is_true_convolution() -> None:
    x = torch.zeros(1, 1, 9, 9)
    x[0, 0, 4, 4] = 1.0
    k = torch.zeros(1, 1, 3, 3)
    k[0, 0, 0, 2] = 1.0  # kernel entry up-right of centre
    out = blur_batch(x, k)
    assert out[0, 0, 3, 5].item() == 1.0  # an impulse response reproduces the kernel


def test_blur_batch_keeps_dtype() -> None:
    x = _to_torch(_images()).to(torch.bfloat16)
    out = blur_batch(x, kernels_to_tensor(_kernels()))
    assert out.dtype == torch.bfloat16 and out.shape == x.shape


def test_blur_batch_rejects_bad_input() -> None:
    x = torch.rand(3, 3, 8, 8)
    k = kernels_to_tensor(_kernels())
    with pytest.raises(ValueError, match=r"\(B, C, H, W\)"):
        blur_batch(x[0], k)
    with pytest.raises(ValueError, match="one kernel per image"):
        blur_batch(x, k[:2])
    with pytest.raises(ValueError, match="odd"):
        blur_batch(x, torch.ones(3, 1, 4, 4) / 16)
    with pytest.raises(ValueError, match=r"\(B, 1, ky, kx\)"):
        blur_batch(x, k[:, 0])
    with pytest.raises(ValueError, match="mode"):
        blur_batch(x, k, mode="symmetric")
    with pytest.raises(TypeError, match="floating"):
        blur_batch(x.to(torch.uint8), k)


# --------------------------------------------------------------------------------------------
# noise
# --------------------------------------------------------------------------------------------


def test_gaussian_noise_statistics() -> None:
    n = 3 * 64 * 64  # samples per image
    x = torch.full((2, 3, 64, 64), 0.5)
    sigma = torch.tensor([0.02, 0.05])
    out = add_noise_batch(
        x, gaussian_sigma=sigma, poisson_scale=None, generator=torch.Generator().manual_seed(0)
    )
    noise = (out - x).reshape(2, -1).double()
    for s, row in zip(sigma.tolist(), noise, strict=True):
        assert abs(row.mean().item()) < 5 * s / np.sqrt(n)
        assert abs(row.std().item() - s) < 5 * s * np.sqrt(0.5 / n)  # std error of the std


def test_poisson_noise_statistics() -> None:
    n = 3 * 64 * 64
    x = torch.full((2, 3, 64, 64), 0.3)
    scale = torch.tensor([100.0, 0.0])  # shot noise on the first sample only
    out = add_noise_batch(
        x, gaussian_sigma=0.0, poisson_scale=scale, generator=torch.Generator().manual_seed(1)
    )
    shot = (out[0] - x[0]).reshape(-1).double()
    s = np.sqrt(0.3 / 100.0)
    assert abs(shot.mean().item()) < 5 * s / np.sqrt(n)
    assert abs(shot.std().item() - s) < 5 * s * np.sqrt(0.5 / n) + 1e-3  # Poisson is not normal
    assert torch.equal(out[1], x[1])
    levels = torch.unique(out[0] * 100.0)
    assert torch.allclose(levels, levels.round(), atol=1e-4)  # counts of photo-electrons


def test_noise_zero_is_identity_and_clips() -> None:
    x = _to_torch(_images())
    gen = torch.Generator().manual_seed(0)
    assert torch.equal(add_noise_batch(x, gaussian_sigma=0.0, poisson_scale=None, generator=gen), x)
    assert torch.equal(
        add_noise_batch(x, gaussian_sigma=torch.zeros(3), poisson_scale=0.0, generator=gen), x
    )
    noisy = add_noise_batch(x, gaussian_sigma=0.5, poisson_scale=None, generator=gen)
    assert noisy.min().item() == 0.0 and noisy.max().item() == 1.0
    raw = add_noise_batch(x, gaussian_sigma=0.5, poisson_scale=None, generator=gen, clip=False)
    assert raw.min().item() < 0.0 and raw.max().item() > 1.0


def test_noise_is_reproducible() -> None:
    x = _to_torch(_images())

    def draw(seed: int) -> torch.Tensor:
        return add_noise_batch(
            x,
            gaussian_sigma=torch.tensor([0.01, 0.02, 0.03]),
            poisson_scale=torch.tensor([50.0, 0.0, 500.0]),
            generator=torch.Generator().manual_seed(seed),
        )

    assert torch.equal(draw(7), draw(7))
    assert not torch.equal(draw(7), draw(8))


def test_noise_rejects_bad_levels() -> None:
    x = torch.rand(3, 1, 4, 4)
    gen = torch.Generator()
    with pytest.raises(ValueError, match=r"gaussian_sigma must .*\(3,\)"):
        add_noise_batch(x, gaussian_sigma=torch.zeros(2), poisson_scale=None, generator=gen)
    with pytest.raises(ValueError, match="poisson_scale must be finite and >= 0"):
        add_noise_batch(x, gaussian_sigma=0.0, poisson_scale=-1.0, generator=gen)
    with pytest.raises(ValueError, match=r"\(B, C, H, W\)"):
        add_noise_batch(x[0], gaussian_sigma=0.0, poisson_scale=None, generator=gen)


# --------------------------------------------------------------------------------------------
# the chain
# --------------------------------------------------------------------------------------------


def test_synthesize_matches_numpy_chain_without_noise() -> None:
    images = _images()
    ks = _kernels()
    out = synthesize(
        _to_torch(images),
        kernels_to_tensor(ks),
        gaussian_sigma=torch.zeros(3),
        poisson_scale=None,
        generator=torch.Generator().manual_seed(0),
    )
    got = _to_numpy(out)
    for image, k, g in zip(images, ks, got, strict=True):
        want = io.linear_to_srgb(blur_image(io.srgb_to_linear(image), k, mode="reflect"))
        assert np.max(np.abs(g - want)) < 1e-5
    assert out.min().item() >= 0.0 and out.max().item() <= 1.0


def test_synthesize_with_noise_is_seeded_and_keeps_dtype() -> None:
    x = _to_torch(_images()).to(torch.bfloat16)
    k = kernels_to_tensor(_kernels())

    def run(seed: int) -> torch.Tensor:
        return synthesize(
            x,
            k,
            gaussian_sigma=torch.tensor([0.0, 0.01, 0.02]),
            poisson_scale=torch.tensor([0.0, 200.0, 1000.0]),
            generator=torch.Generator().manual_seed(seed),
        )

    a = run(3)
    assert a.dtype == torch.bfloat16 and a.shape == x.shape
    assert torch.equal(a, run(3))
    assert 0.0 <= a.min().item() and a.max().item() <= 1.0


def test_synthesize_rejects_bad_input() -> None:
    k = kernels_to_tensor(_kernels())
    gen = torch.Generator()
    with pytest.raises(ValueError, match=r"\(B, C, H, W\)"):
        synthesize(torch.rand(3, 8, 8), k, gaussian_sigma=0.0, poisson_scale=None, generator=gen)
    with pytest.raises(ValueError, match="one kernel per image"):
        synthesize(torch.rand(2, 3, 8, 8), k, gaussian_sigma=0.0, poisson_scale=None, generator=gen)
