"""Training pairs for the network run on a deconvolution: kernels wrong as estimates are, and
photos deconvolved with them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from test_data import write_photos

from unblur import blur, io, metrics
from unblur.restoration import auto
from unblur.restoration.deconv import hyper_laplacian
from unblur.train import data
from unblur.train.deconvolved import DeconvolvedSource
from unblur.train.kernel_error import KernelError, perturb_kernel
from unblur.train.restoration import parse_config


def test_a_perturbed_kernel_is_a_kernel_close_to_the_truth() -> None:
    rng = np.random.default_rng(0)
    agreements = []
    for seed in range(30):
        true = blur.shake_kernel(size=25, rng=seed, length=float(rng.uniform(5, 20))).kernel
        estimate = perturb_kernel(true, rng)
        assert estimate.dtype == np.float32 and estimate.ndim == 2
        assert estimate.shape[0] == estimate.shape[1] and estimate.shape[0] % 2 == 1
        assert estimate.shape[0] >= true.shape[0]
        assert estimate.min() >= 0 and estimate.sum() == pytest.approx(1.0, abs=1e-5)
        if estimate.shape != true.shape:  # not the exact draw: thresholded as blind's are
            assert (estimate[estimate > 0] >= estimate.max() / 20 - 1e-7).all()
        agreements.append(auto.kernel_agreement(true, estimate))
    # as wrong as auto's estimates on kodak24 camera shake (median agreement 0.93 there)
    assert 0.85 < float(np.median(agreements)) < 0.98
    assert min(agreements) > 0.5 and sum(a > 0.999 for a in agreements) < 10
    # repeatable from the generator
    true = blur.linear_kernel(15, 30.0)
    a = perturb_kernel(true, np.random.default_rng(3))
    np.testing.assert_array_equal(a, perturb_kernel(true, np.random.default_rng(3)))


def test_kernel_error_ranges() -> None:
    true = blur.linear_kernel(11, 0.0)
    exact = perturb_kernel(true, np.random.default_rng(0), KernelError(exact_prob=1.0))
    np.testing.assert_allclose(exact, true / true.sum(), atol=1e-7)
    still = KernelError(turn=0, stretch=0, soften=0, speckle=0, exact_prob=0)
    same = perturb_kernel(true, np.random.default_rng(0), still)
    assert auto.kernel_agreement(true, same) > 0.999
    for bad in ({"turn": -1.0}, {"stretch": 1.0}, {"speckle": 1.5}, {"exact_prob": 2.0}):
        with pytest.raises(ValueError):
            KernelError(**bad)
    with pytest.raises(ValueError, match="odd side"):
        perturb_kernel(np.ones((4, 4)), np.random.default_rng(0))


def test_deconvolved_pairs_are_the_deconvolution_of_the_blurred_crop(tmp_path: Path) -> None:
    write_photos(tmp_path / "photos", 2, 150, 160)
    mix = data.BlurMix(kinds={"shake": 1.0}, length=(6.0, 10.0), read_noise=(0.0, 0.0))
    exact = KernelError(exact_prob=1.0)
    source = DeconvolvedSource(tmp_path / "photos", mix, error=exact)
    pair = source.sample(64, np.random.default_rng(5))
    assert pair.blur.shape == pair.sharp.shape == (64, 64, 3)
    assert pair.blur.dtype == pair.sharp.dtype == np.float32
    assert 0.0 <= pair.blur.min() and pair.blur.max() <= 1.0
    assert pair.info["kind"] == "shake" and pair.info["file"].startswith("photo")
    # with the true kernel the deconvolution is much closer to the sharp crop than the blur is
    kernel = pair.info["kernel"]
    blurred = io.linear_to_srgb(blur.blur_image(io.srgb_to_linear(pair.sharp), kernel))
    r = kernel.shape[0] // 2
    inner = (slice(r, -r), slice(r, -r))
    assert (
        metrics.psnr(pair.sharp[inner], pair.blur[inner])
        > metrics.psnr(pair.sharp[inner], np.clip(blurred, 0, 1)[inner]) + 3
    )
    # and it is what hyper_laplacian makes of the blurred region, cropped (the same draws)
    rng = np.random.default_rng(5)
    m = mix.margin
    choices = source.eligible(64 + 2 * m)
    photo = source.photos[choices[int(rng.integers(len(choices)))]]
    region = data.synthesize_pair(photo, 64 + 2 * m, mix, rng)
    rng.random()  # perturb_kernel's draw of the exact kernel
    expected = io.linear_to_srgb(hyper_laplacian(io.srgb_to_linear(region.blur), kernel))
    np.testing.assert_allclose(pair.blur, np.clip(expected, 0, 1)[m:-m, m:-m], atol=1e-5)
    np.testing.assert_array_equal(pair.sharp, region.sharp[m:-m, m:-m])
    # a wrong kernel leaves artefacts: further from the truth than the exact deconvolution
    wrong = DeconvolvedSource(
        tmp_path / "photos", mix, error=KernelError(turn=20, stretch=0.4, exact_prob=0.0)
    )
    off = wrong.sample(64, np.random.default_rng(5))
    np.testing.assert_array_equal(off.sharp, pair.sharp)  # the same crop
    assert metrics.psnr(off.sharp, off.blur) < metrics.psnr(pair.sharp, pair.blur)
    assert not np.array_equal(off.info["estimate"], pair.info["estimate"])


def test_deconvolved_source_needs_one_kernel_a_picture(tmp_path: Path) -> None:
    write_photos(tmp_path / "photos", 1, 150, 160)
    with pytest.raises(ValueError, match="'field' has none"):
        DeconvolvedSource(tmp_path / "photos", data.BlurMix(kinds={"field": 1.0, "shake": 1.0}))


def test_deconvolved_source_from_a_config(tmp_path: Path) -> None:
    write_photos(tmp_path / "photos", 2, 150, 160)
    raw = {
        "model": {"name": "nafnet-fast"},
        "data": {
            "data_root": str(tmp_path),
            "sources": [
                {
                    "kind": "deconvolved",
                    "path": "photos",
                    "blur": {"kinds": {"linear": 1.0}, "length": [4, 8]},
                    "error": {"turn": 3.0, "exact_prob": 0.0},
                }
            ],
        },
    }
    (spec,) = parse_config(raw).data.sources
    assert isinstance(spec, data.DeconvolvedSpec) and spec.error.turn == 3.0
    source = data.build_source(spec, tmp_path)
    assert isinstance(source, DeconvolvedSource) and source.error == spec.error
    pair = source.sample(48, np.random.default_rng(0))
    assert pair.blur.shape == (48, 48, 3) and pair.info["kind"] == "linear"
    raw["data"]["sources"][0]["error"]["wobble"] = 1
    with pytest.raises(Exception, match="wobble"):
        parse_config(raw)


def test_deconvolved_validation_set_is_fixed(tmp_path: Path) -> None:
    write_photos(tmp_path / "photos", 2, 120, 130)
    raw = {
        "model": {"name": "nafnet-fast"},
        "data": {
            "data_root": str(tmp_path),
            "sources": [{"kind": "synthetic", "path": "photos"}],
            "val": {
                "sets": [
                    {"name": "polish", "kind": "deconvolved", "path": "photos", "crop": 64},
                    {"name": "shake", "kind": "synthetic", "path": "photos", "crop": 64},
                ]
            },
        },
    }
    specs = parse_config(raw).data.val.sets
    assert isinstance(specs[0], data.DeconvolvedValSpec)
    first = data.build_val_set(specs, tmp_path, seed=0)
    again = data.build_val_set(specs, tmp_path, seed=0)
    assert [p.set_name for p in first] == ["polish"] * 2 + ["shake"] * 2
    for a, b in zip(first, again, strict=True):
        np.testing.assert_array_equal(a.blur, b.blur)
    polish = first[0]
    assert polish.blur.shape == polish.sharp.shape == (64, 64, 3)
    assert not np.array_equal(polish.blur, first[2].blur)  # a deconvolution, not the blur
    other = data.build_val_set(specs, tmp_path, seed=1)
    assert not np.array_equal(other[0].blur, polish.blur)
