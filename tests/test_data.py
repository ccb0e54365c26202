"""Training data: sources, paired transforms, the pair pool and the validation set.

All data is generated here (no files from shared/data): small textured scenes written as
PNG with unblur.io.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from scenes import textured_scene

from unblur import blur, io
from unblur.errors import InputError
from unblur.train import data


def write_photos(folder: Path, count: int, height: int = 80, width: int = 96) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(count):
        path = folder / f"photo{i}.png"
        io.write_image(path, textured_scene(height, width, 3, seed=i))
        paths.append(path)
    return paths


def inverse(image: np.ndarray) -> np.ndarray:
    """A stand-in 'blur' that is a pixelwise function of the sharp image."""
    return (1.0 - image).astype(np.float32)


def write_pairs(base: Path, names: list[str], size: tuple[int, int] = (64, 72)) -> None:
    """blur/NAME and sharp/NAME under base, with blur = 1 - sharp."""
    for sub in ("blur", "sharp"):
        (base / sub).mkdir(parents=True, exist_ok=True)
    for i, name in enumerate(names):
        sharp = textured_scene(*size, 3, seed=10 + i)
        io.write_image(base / "sharp" / name, sharp)
        io.write_image(base / "blur" / name, inverse(sharp))


@pytest.fixture
def photos(tmp_path: Path) -> Path:
    write_photos(tmp_path / "photos", 3)
    return tmp_path / "photos"


def test_derive_rng_streams_are_distinct_and_repeatable() -> None:
    a = data.derive_rng(data.TAG_SLOT, 1, 2, 3).random(4)
    assert np.array_equal(a, data.derive_rng(data.TAG_SLOT, 1, 2, 3).random(4))
    assert not np.array_equal(a, data.derive_rng(data.TAG_BATCH, 1, 2, 3).random(4))
    assert not np.array_equal(a, data.derive_rng(data.TAG_SLOT, 1, 2, 4).random(4))
    with pytest.raises(ValueError, match="non-negative"):
        data.derive_rng(data.TAG_SLOT, -1)


@pytest.mark.parametrize("kind", ["linear", "shake"])
def test_synthetic_pair_is_the_known_kernel_applied_to_the_sharp_crop(photos: Path, kind) -> None:
    mix = data.BlurMix(kinds={kind: 1.0}, length=(5.0, 9.0), read_noise=(0.0, 0.0))
    source = data.SyntheticSource(photos, mix)
    pair = source.sample(48, np.random.default_rng(7))
    assert pair.blur.shape == pair.sharp.shape == (48, 48, 3)
    assert pair.blur.dtype == pair.sharp.dtype == np.float32
    assert 0.0 <= pair.blur.min() and pair.blur.max() <= 1.0
    kernel = pair.info["kernel"]
    expected = io.linear_to_srgb(blur.blur_image(io.srgb_to_linear(pair.sharp), kernel))
    r = kernel.shape[0] // 2  # the crop was blurred with real context around it
    inner = (slice(r, -r), slice(r, -r))
    np.testing.assert_allclose(pair.blur[inner], expected[inner], atol=2e-5)
    assert np.abs(pair.blur - pair.sharp).mean() > 0.005  # it is blurred


def test_synthetic_mix_draws_every_kind_and_effects(photos: Path) -> None:
    mix = data.BlurMix(
        kinds={"linear": 1.0, "shake": 1.0, "field": 1.0}, jpeg_prob=0.5, poisson_prob=0.5
    )
    source = data.SyntheticSource(photos, mix)
    rng = np.random.default_rng(0)
    infos = [source.sample(40, rng).info for _ in range(24)]
    assert {i["kind"] for i in infos} == {"linear", "shake", "field"}
    qualities = [i["jpeg_quality"] for i in infos]
    assert None in qualities and any(q is not None and 60 <= q <= 95 for q in qualities)


def test_synthetic_scale_shrinks_before_cropping(photos: Path) -> None:
    mix = data.BlurMix(kinds={"linear": 1.0}, length=(3.0, 3.0))
    source = data.SyntheticSource(photos, mix, scale=(0.5, 0.6))
    pair = source.sample(32, np.random.default_rng(1))
    assert pair.blur.shape == (32, 32, 3) and 0.5 <= pair.info["scale"] <= 0.6


def test_synthetic_skips_photos_smaller_than_the_crop(tmp_path: Path) -> None:
    folder = tmp_path / "mixed"
    write_photos(folder, 1, 40, 40)
    io.write_image(folder / "zbig.png", textured_scene(72, 72, 3, seed=5))
    source = data.SyntheticSource(folder)
    assert source.eligible(64) == [1]
    assert source.sample(64, np.random.default_rng(0)).info["file"] == "zbig.png"
    with pytest.raises(InputError, match="no photo is at least 96x96"):
        source.sample(96, np.random.default_rng(0))


def test_gray_and_alpha_images_become_rgb(tmp_path: Path) -> None:
    gray = textured_scene(20, 30, 1, seed=1)
    io.write_image(tmp_path / "gray.png", gray)
    rgba = np.dstack([textured_scene(20, 30, 3, seed=2), np.full((20, 30), 0.5, np.float32)])
    io.write_image(tmp_path / "rgba.png", rgba)
    g = data.load_rgb8(tmp_path / "gray.png")
    assert g.shape == (20, 30, 3) and g.dtype == np.uint8
    assert np.array_equal(g[..., 0], g[..., 2])
    assert data.load_rgb8(tmp_path / "rgba.png").shape == (20, 30, 3)


def test_missing_folder_is_named(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no such data folder") as err:
        data.SyntheticSource(tmp_path / "nope")
    assert "nope" in str(err.value)


def test_pair_source_flat_layout_crops_both_images_at_the_same_place(tmp_path: Path) -> None:
    write_pairs(tmp_path / "flat", ["a.png", "b.png"])
    source = data.PairSource(tmp_path / "flat")
    assert source.layout == "flat" and source.names == ["a.png", "b.png"]
    rng = np.random.default_rng(3)
    for _ in range(5):
        pair = source.sample(40, rng)
        assert pair.blur.shape == pair.sharp.shape == (40, 40, 3)
        np.testing.assert_allclose(pair.blur, inverse(pair.sharp), atol=1.5 / 255)


def test_pair_source_detects_gopro_nested_layout_and_filters(tmp_path: Path) -> None:
    root = tmp_path / "gopro"
    write_pairs(root / "GOPR0374_11_00", ["000001.png", "000002.png"])
    write_pairs(root / "GOPR0477_11_00", ["000001.png"])
    source = data.PairSource(root)
    assert source.layout == "nested"
    assert source.names == [
        "GOPR0374_11_00/000001.png",
        "GOPR0374_11_00/000002.png",
        "GOPR0477_11_00/000001.png",
    ]
    held_out = data.PairSource(root, exclude=["GOPR0374"])
    assert held_out.names == ["GOPR0477_11_00/000001.png"]
    only = data.PairSource(root, include=["GOPR0374"], exclude=["000002"])
    assert only.names == ["GOPR0374_11_00/000001.png"]
    with pytest.raises(InputError, match="no blurred/sharp pairs"):
        data.PairSource(root, include=["GOPR9999"])


def test_pair_source_errors_name_the_problem(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="neither blur/ and sharp/"):
        data.PairSource(tmp_path / "empty")
    write_pairs(tmp_path / "broken", ["a.png"])
    io.write_image(tmp_path / "broken" / "blur" / "orphan.png", textured_scene(64, 72, 3))
    with pytest.raises(InputError, match="no sharp partner") as err:
        data.PairSource(tmp_path / "broken")
    assert "orphan.png" in str(err.value)


def test_frame_source_averages_a_window_in_linear_light(tmp_path: Path) -> None:
    seq = tmp_path / "frames" / "seq1"
    seq.mkdir(parents=True)
    frames = []
    for i in range(9):  # a scene sliding right by one pixel per frame
        frame = np.roll(textured_scene(48, 64, 3, seed=0), i, axis=1)
        io.write_image(seq / f"{i:06d}.png", frame)
        frames.append(io.read_image(seq / f"{i:06d}.png").pixels)
    source = data.FrameSource(tmp_path / "frames", window=(3, 5))
    assert len(source.sequences) == 1
    for seed in range(4):
        pair = source.sample(32, np.random.default_rng(seed))
        info = pair.info
        n, start, top, left = info["window"], info["start"], info["top"], info["left"]
        assert 3 <= n <= 5
        want_blur, want_sharp = blur.average_window(frames, start, n, gamma="srgb")
        window = (slice(top, top + 32), slice(left, left + 32))
        np.testing.assert_allclose(pair.blur, want_blur[window], atol=1e-6)
        np.testing.assert_array_equal(pair.sharp, want_sharp[window])


def test_frame_source_can_average_the_stored_values(tmp_path: Path) -> None:
    seq = tmp_path / "frames"
    seq.mkdir()
    frames = []
    for i in range(6):
        frame = np.roll(textured_scene(40, 56, 3, seed=1), 2 * i, axis=1)
        io.write_image(seq / f"{i:06d}.png", frame)
        frames.append(io.read_image(seq / f"{i:06d}.png").pixels)
    with pytest.raises(ValueError, match="srgb_prob"):
        data.FrameSource(seq, window=(3, 5), srgb_prob=1.5)
    source = data.FrameSource(seq, window=(3, 5), srgb_prob=1.0)
    pair = source.sample(32, np.random.default_rng(3))
    info = pair.info
    assert info["space"] == "stored"
    window = (slice(info["top"], info["top"] + 32), slice(info["left"], info["left"] + 32))
    stored, _ = blur.average_window(frames, info["start"], info["window"], gamma=None)
    linear, _ = blur.average_window(frames, info["start"], info["window"], gamma="srgb")
    np.testing.assert_allclose(pair.blur, stored[window], atol=1e-6)
    assert np.abs(pair.blur - linear[window]).max() > 0.01  # the two averages differ
    mixed = data.FrameSource(seq, window=(3, 5), srgb_prob=0.5)
    spaces = {mixed.sample(24, np.random.default_rng(s)).info["space"] for s in range(16)}
    assert spaces == {"stored", "linear"}


def test_frame_source_noise_and_short_sequences(tmp_path: Path) -> None:
    write_photos(tmp_path / "frames", 4, 40, 40)  # the folder itself is one sequence
    with pytest.raises(InputError, match="no sequence of at least 7 frames"):
        data.FrameSource(tmp_path / "frames")
    source = data.FrameSource(tmp_path / "frames", window=(2, 9), noise=(0.02, 0.02))
    pair = source.sample(24, np.random.default_rng(0))
    clean, _ = blur.average_window(
        [io.read_image(p).pixels for p in data.list_images(tmp_path / "frames")],
        pair.info["start"],
        pair.info["window"],
    )
    assert pair.info["window"] <= 4
    assert np.abs(pair.blur - clean[:24, :24]).mean() > 0  # noise was added


def test_paired_augment_keeps_pairs_aligned_and_reaches_all_symmetries() -> None:
    rng = np.random.default_rng(0)
    sharp = rng.integers(0, 256, (3, 12, 12), dtype=np.uint8)
    pair = np.stack([255 - sharp, sharp])
    seen = set()
    for _ in range(64):
        aug = data.PairedAugment.sample(12, 12, 8, rng)
        out = aug(pair)
        assert out.shape == (2, 3, 8, 8)
        np.testing.assert_array_equal(out[0], 255 - out[1])
        tensor_out = aug(torch.from_numpy(pair))
        np.testing.assert_array_equal(tensor_out.numpy(), out)
        seen.add((aug.hflip, aug.vflip, aug.rot90))
    assert len(seen) == 8
    plain = data.PairedAugment.sample(12, 12, 8, rng, flips=False, rotate=False)
    np.testing.assert_array_equal(
        plain(pair), pair[..., plain.top : plain.top + 8, plain.left : plain.left + 8]
    )


def test_paired_crop_checks_sizes() -> None:
    rng = np.random.default_rng(0)
    a, b = np.zeros((10, 12, 3)), np.ones((10, 12, 3))
    ca, cb = data.paired_crop(a, b, 6, rng)
    assert ca.shape == cb.shape == (6, 6, 3)
    with pytest.raises(ValueError, match="differ"):
        data.paired_crop(a, np.zeros((10, 11, 3)), 6, rng)
    with pytest.raises(ValueError, match="does not fit"):
        data.paired_crop(a, b, 11, rng)


def make_pool(photos: Path, seed: int, workers: int = 1) -> data.PairPool:
    mix = data.BlurMix(kinds={"linear": 1.0, "field": 1.0}, length=(3.0, 7.0))
    return data.PairPool(
        [data.SyntheticSource(photos, mix)], [1.0], size=8, crop=32, seed=seed, workers=workers
    )


def test_pool_is_deterministic_from_its_seed_and_refresh_count(photos: Path) -> None:
    a, b, c = make_pool(photos, 3), make_pool(photos, 3, workers=2), make_pool(photos, 4)
    for pool in (a, b, c):
        pool.build()
    assert a.pairs.dtype == torch.uint8 and a.pairs.shape == (2, 8, 3, 32, 32)
    assert a.nbytes == 2 * 8 * 3 * 32 * 32
    assert torch.equal(a.pairs, b.pairs)  # threads do not change the content
    assert not torch.equal(a.pairs, c.pairs)
    before = a.pairs.clone()
    assert a.refresh(0.25) == 2
    a.refresh(0.25)
    changed = (a.pairs != before).flatten(2).any(dim=2).any(dim=0)
    assert 2 <= int(changed.sum()) <= 4
    d = make_pool(photos, 3)
    d.restore(2, 0.25)
    assert d.refreshes == 2 and torch.equal(d.pairs, a.pairs)


def test_staged_refreshes_match_immediate_ones(photos: Path) -> None:
    a, b = make_pool(photos, 1), make_pool(photos, 1)
    a.build()
    b.build()
    a.refresh(0.5)
    b.begin_refresh(0.5, background=True)
    assert b.pending and b.refreshes == 0
    with pytest.raises(RuntimeError, match="pending"):
        b.begin_refresh(0.5)
    assert b.finish_refresh() == 4 and not b.pending and b.refreshes == 1
    assert torch.equal(a.pairs, b.pairs)
    a.begin_refresh(0.5)
    c = make_pool(photos, 1)
    c.restore(1, 0.5, pending=True, background=True)
    a.finish_refresh()
    c.finish_refresh()
    assert torch.equal(a.pairs, c.pairs) and np.array_equal(a.versions, c.versions)
    c.close()
    with pytest.raises(RuntimeError, match="no refresh is pending"):
        c.finish_refresh()


def test_pool_batches(photos: Path) -> None:
    pool = make_pool(photos, 0)
    pool.build()
    blurred, sharp = pool.sample_batch(5, 24, np.random.default_rng(9))
    assert blurred.shape == sharp.shape == (5, 3, 24, 24)
    assert (
        blurred.dtype == torch.float32
        and 0.0 <= float(blurred.min()) <= float(blurred.max()) <= 1.0
    )
    again, _ = pool.sample_batch(5, 24, np.random.default_rng(9))
    assert torch.equal(blurred, again)
    with pytest.raises(ValueError, match="patch"):
        pool.sample_batch(2, 33, np.random.default_rng(0))


def test_pool_mixes_sources_by_weight(photos: Path, tmp_path: Path) -> None:
    write_pairs(tmp_path / "pairs", ["a.png"])
    sources = [data.SyntheticSource(photos), data.PairSource(tmp_path / "pairs")]
    pool = data.PairPool(sources, [1.0, 3.0], size=40, crop=32, seed=0)
    pool.build()
    share = float(np.mean(pool.origin == 1))
    assert 0.55 < share < 0.95
    with pytest.raises(ValueError, match="weights"):
        data.PairPool(sources, [0.0, 0.0], size=4, crop=32, seed=0)


def test_validation_set_is_fixed(photos: Path, tmp_path: Path) -> None:
    root = tmp_path
    write_pairs(root / "gopro" / "GOPR0374_11_00", ["1.png"])
    write_pairs(root / "gopro" / "GOPR0477_11_00", ["1.png"])
    specs = [
        data.SyntheticValSpec(name="syn", path="photos", crop=64, count=2),
        data.PairValSpec(name="real", path="gopro", crop=None, include=("GOPR0374",)),
    ]
    first = data.build_val_set(specs, root, seed=5)
    second = data.build_val_set(specs, root, seed=5)
    assert [(p.set_name, p.name) for p in first] == [
        ("syn", "photo0.png"),
        ("syn", "photo1.png"),
        ("real", "GOPR0374_11_00/1.png"),
    ]
    assert first[0].blur.shape == (64, 64, 3) and first[2].blur.shape == (64, 72, 3)
    for a, b in zip(first, second, strict=True):
        np.testing.assert_array_equal(a.blur, b.blur)
    other = data.build_val_set(specs, root, seed=6)
    assert not np.array_equal(first[0].blur, other[0].blur)
    with pytest.raises(ValueError, match="unique"):
        data.build_val_set([specs[0], specs[0]], root)


def test_build_source_from_specs(photos: Path, tmp_path: Path) -> None:
    write_pairs(tmp_path / "pairs", ["a.png"])
    assert isinstance(
        data.build_source(data.SyntheticSpec(path="photos"), tmp_path), data.SyntheticSource
    )
    pairs = data.build_source(data.PairSpec(path="pairs", exclude=("zzz",)), tmp_path)
    assert isinstance(pairs, data.PairSource) and len(pairs) == 1
    with pytest.raises(InputError, match="no such data folder"):
        data.build_source(data.FrameSpec(path="missing"), tmp_path)


def test_blur_mix_validation() -> None:
    with pytest.raises(ValueError, match="unknown blur kind"):
        data.BlurMix(kinds={"wobble": 1.0})
    with pytest.raises(ValueError, match="positive sum"):
        data.BlurMix(kinds={"shake": 0.0})
    with pytest.raises(ValueError, match="jpeg_prob"):
        data.BlurMix(jpeg_prob=1.5)
    with pytest.raises(ValueError, match="jpeg_quality"):
        data.BlurMix(jpeg_quality=(50, 120))


def test_synthetic_pairs_saturate_where_the_blurred_picture_does() -> None:
    """With a highlight boost the pair's sharp side is clipped as the blurred side is: a large
    blown-out area is white in both (it once was the original, which taught the network to
    tint saturated white)."""
    photo = np.full((96, 96, 3), 50, np.uint8)
    photo[16:80, 16:80] = (250, 245, 235)
    mix = data.BlurMix(
        kinds={"linear": 1.0}, length=(4.0, 4.0), read_noise=(0.0, 0.0), saturation_prob=1.0
    )
    pair = data.synthesize_pair(photo, 64, mix, np.random.default_rng(0), centre=True)
    inner = (slice(24, 40), slice(24, 40))
    np.testing.assert_allclose(pair.blur[inner], 1.0, atol=1e-6)
    np.testing.assert_allclose(pair.sharp[inner], 1.0, atol=1e-6)
    plain = data.synthesize_pair(
        photo, 64, data.BlurMix(kinds={"linear": 1.0}, length=(4.0, 4.0)), np.random.default_rng(0)
    )
    assert plain.sharp.max() < 0.99  # without the boost the sharp side is the photo
