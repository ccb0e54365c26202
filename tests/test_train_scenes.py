"""Moving scenes rendered from still photos (unblur.train.scenes) and their training source."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from scenes import textured_scene
from test_data import write_photos

from unblur import metrics
from unblur.train import data
from unblur.train.restoration import parse_config
from unblur.train.scenes import SceneMotion, render_scene

STILL = {"travel": (0.0, 0.0), "turn": 0.0, "zoom": 0.0, "objects": (0, 0), "noise": (0.0, 0.0)}


def motion(**changes: object) -> SceneMotion:
    return SceneMotion(**{**STILL, "srgb_prob": 1.0, **changes})  # type: ignore[arg-type]


def dot_image(size: int = 96) -> np.ndarray:
    image = np.zeros((size, size, 3), np.float32)
    image[size // 2, size // 2] = 1.0
    return image


def spread(image: np.ndarray) -> tuple[np.ndarray, float, float]:
    """Centroid and the extent (sqrt(12 * variance): a segment's length) along and across
    the principal axis of an image's mass."""
    weight = image.mean(axis=2)
    ys, xs = np.nonzero(weight > 0)
    w = weight[ys, xs] / weight[ys, xs].sum()
    centre = np.array([xs @ w, ys @ w])
    d = np.stack([xs - centre[0], ys - centre[1]], 1)
    evals = np.linalg.eigvalsh((d * w[:, None]).T @ d)
    return centre, float(np.sqrt(12 * evals[1])), float(np.sqrt(12 * evals[0]))


def test_a_still_scene_is_its_own_sharp_crop() -> None:
    photo = textured_scene(120, 140, 3, seed=0)
    rng = np.random.default_rng(0)
    blurred, sharp, info = render_scene(photo, [photo], 64, motion(window=(5, 9)), rng)
    m = motion().margin(64)
    top, left = (120 - min(120, 64 + 2 * m)) // 2, (140 - min(140, 64 + 2 * m)) // 2
    y, x = (min(120, 64 + 2 * m) - 64) // 2, (min(140, 64 + 2 * m) - 64) // 2
    want = photo[top + y : top + y + 64, left + x : left + x + 64]
    np.testing.assert_array_equal(sharp, want)  # t = 0: the photo's own pixels
    np.testing.assert_allclose(blurred, want, atol=1e-6)
    assert info["objects"] == 0 and 5 <= info["window"] <= 9


def test_the_camera_path_smears_a_dot_into_a_segment_of_its_length() -> None:
    for seed in range(3):
        rng = np.random.default_rng(seed)
        blurred, sharp, info = render_scene(
            dot_image(), [], 96, motion(window=(11, 11), travel=(20.0, 20.0), bend=0.0), rng
        )
        assert info["travel"] == pytest.approx(20.0)
        centre, along, across = spread(blurred)
        # 11 frames at t = -0.5 .. 0.5 step 0.1: the dot at 11 points 2 px apart (bilinear
        # weights spread each a little), centred on where it is at t = 0
        np.testing.assert_allclose(centre, [48.0, 48.0], atol=0.3)
        assert 20.0 <= along <= 23.5
        assert across < 1.5
        assert blurred.sum() == pytest.approx(sharp.sum(), rel=0.02)  # stored values averaged


def test_a_turn_blurs_the_corners_more_than_the_centre() -> None:
    image = np.zeros((129, 129, 3), np.float32)
    image[64, 64] = image[10, 10] = 1.0
    rng = np.random.default_rng(1)
    m = motion(window=(13, 13), turn=8.0)
    while True:  # a turn of at least 4 degrees
        blurred, _, info = render_scene(image, [], 129, m, rng)
        if abs(info["turn"]) >= 4:
            break
    centre = blurred[54:75, 54:75]
    corner = blurred[:21, :21]
    assert spread(centre)[1] < 1.5  # the centre of the turn stays put
    # a point 76 px from the centre moves 76 * |turn| px in radians
    assert spread(corner)[1] == pytest.approx(76 * np.radians(abs(info["turn"])), rel=0.25)


def test_objects_move_on_their_own_and_the_background_stays_sharp() -> None:
    photo = np.full((160, 160, 3), 0.5, np.float32)
    pieces = [np.ones((64, 64, 3), np.float32)]
    rng = np.random.default_rng(2)
    m = motion(objects=(1, 1), object_size=(0.3, 0.3), object_travel=(20.0, 20.0))
    blurred, sharp, info = render_scene(photo, pieces, 96, m, rng)
    assert info["objects"] == 1
    inside = sharp.mean(axis=2) > 0.99  # the object, sharp, at t = 0
    assert 100 < inside.sum() < 0.3**2 * 96**2
    smeared = np.abs(blurred - 0.5).mean(axis=2) > 1e-4
    untouched = np.abs(blurred - 0.5).mean(axis=2) < 1e-6
    # the blur reaches beyond the object's sharp outline, but not far (20 px of travel)
    assert smeared.sum() > inside.sum() * 1.2
    assert untouched.sum() > 0.5 * 96**2
    assert not np.array_equal(blurred, sharp)


def test_linear_light_and_noise() -> None:
    photo = textured_scene(100, 100, 3, seed=3)
    stored = render_scene(
        photo, [], 64, motion(travel=(12.0, 12.0), srgb_prob=1.0), np.random.default_rng(4)
    )
    linear = render_scene(
        photo, [], 64, motion(travel=(12.0, 12.0), srgb_prob=0.0), np.random.default_rng(4)
    )
    assert stored[2]["space"] == "stored" and linear[2]["space"] == "linear"
    np.testing.assert_array_equal(stored[1], linear[1])
    assert 0.002 < np.abs(stored[0] - linear[0]).mean()  # the two averages differ
    noisy = render_scene(
        photo, [], 64, motion(srgb_prob=0.0, noise=(0.02, 0.02)), np.random.default_rng(4)
    )
    assert 0.005 < np.std(noisy[0] - noisy[1]) < 0.05
    assert stored[2]["jpeg_quality"] is None  # no JPEG unless asked
    plain = render_scene(photo, [], 64, motion(travel=(12.0, 12.0)), np.random.default_rng(5))
    jpeg = render_scene(
        photo,
        [],
        64,
        motion(travel=(12.0, 12.0), jpeg_prob=1.0, jpeg_quality=(40, 50)),
        np.random.default_rng(5),
    )
    assert 40 <= jpeg[2]["jpeg_quality"] <= 50
    np.testing.assert_array_equal(jpeg[1], plain[1])  # the same scene, compressed
    assert 25 < metrics.psnr(plain[0], jpeg[0]) < 45


def test_rendering_is_a_function_of_the_generator() -> None:
    photo = textured_scene(100, 120, 3, seed=5)
    m = SceneMotion()
    a = render_scene(photo, [photo], 48, m, np.random.default_rng(9))
    b = render_scene(photo, [photo], 48, m, np.random.default_rng(9))
    np.testing.assert_array_equal(a[0], b[0])
    assert a[2] == b[2]
    for blurred, sharp, _ in (a, b):
        assert blurred.dtype == sharp.dtype == np.float32
        assert 0.0 <= blurred.min() and blurred.max() <= 1.0


def test_bad_motion_and_small_backgrounds_are_refused() -> None:
    with pytest.raises(ValueError, match="travel"):
        SceneMotion(travel=(10.0, 5.0))
    with pytest.raises(ValueError, match="window"):
        SceneMotion(window=(0, 3))
    with pytest.raises(ValueError, match="srgb_prob"):
        SceneMotion(srgb_prob=2.0)
    with pytest.raises(ValueError, match="jpeg_quality"):
        SceneMotion(jpeg_quality=(90, 101))
    with pytest.raises(ValueError, match="smaller than 64x64"):
        render_scene(
            np.zeros((50, 80, 3), np.float32), [], 64, SceneMotion(), np.random.default_rng()
        )


def test_scene_source_from_a_config(tmp_path: Path) -> None:
    write_photos(tmp_path / "photos", 3, 90, 110)
    raw = {
        "model": {"name": "nafnet-fast"},
        "data": {
            "data_root": str(tmp_path),
            "sources": [
                {
                    "kind": "scenes",
                    "path": "photos",
                    "scale": [0.8, 1.0],
                    "motion": {"window": [3, 5], "objects": [1, 2]},
                }
            ],
        },
    }
    config = parse_config(raw)
    (spec,) = config.data.sources
    assert isinstance(spec, data.SceneSpec) and spec.motion.window == (3, 5)
    source = data.build_source(spec, tmp_path)
    assert isinstance(source, data.SceneSource) and len(source) == 3
    pair = source.sample(48, np.random.default_rng(0))
    assert pair.blur.shape == pair.sharp.shape == (48, 48, 3)
    assert pair.info["kind"] == "scenes" and 1 <= pair.info["objects"] <= 2
    assert pair.info["file"].startswith("photo")
    raw["data"]["sources"][0]["motion"]["speed"] = 3
    with pytest.raises(Exception, match="speed"):
        parse_config(raw)
