"""Tests for unblur.motion.picture: field colours, field pictures, kernel pictures, montages."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scenes import textured_scene
from scipy import ndimage

from unblur import blur
from unblur.motion.picture import (
    field_colours,
    field_picture,
    kernel_picture,
    label_height,
    side_by_side,
)

# --------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------


def _core_components(picture: np.ndarray, height: int) -> list[np.ndarray]:
    """``(N, 2)`` ``(x, y)`` coordinates of each white trace core in the image part."""
    top = picture[:height]
    mask = top.min(axis=2) > 200  # white cores; the colours under them are saturated
    labels, n = ndimage.label(mask)
    out = []
    for i in range(1, n + 1):
        ys, xs = np.nonzero(labels == i)
        out.append(np.stack([xs, ys], axis=1).astype(np.float64))
    return out


def _axis(points: np.ndarray) -> tuple[float, float, float]:
    """Principal angle (degrees in [0, 180), CCW with y up), major and minor extents."""
    x = points[:, 0] - points[:, 0].mean()
    y_up = -(points[:, 1] - points[:, 1].mean())
    cxx, cyy, cxy = (x * x).mean(), (y_up * y_up).mean(), (x * y_up).mean()
    angle = math.degrees(0.5 * math.atan2(2 * cxy, cxx - cyy)) % 180.0
    u = np.array([math.cos(math.radians(angle)), math.sin(math.radians(angle))])
    along = x * u[0] + y_up * u[1]
    across = -x * u[1] + y_up * u[0]
    return angle, float(np.ptp(along)) + 1, float(np.ptp(across)) + 1


def _angle_diff(a: float, b: float) -> float:
    d = abs(a - b) % 180.0
    return min(d, 180.0 - d)


def _saturation(picture: np.ndarray) -> np.ndarray:
    p = picture.astype(np.int32)
    return p.max(axis=2) - p.min(axis=2)


# --------------------------------------------------------------------------------------------
# field_colours
# --------------------------------------------------------------------------------------------


def test_field_colours_shape_range_dtype() -> None:
    field = blur.random_field(24, 32, rng=0).field
    col = field_colours(field)
    assert col.shape == (24, 32, 3) and col.dtype == np.float32
    assert col.min() >= 0.0 and col.max() <= 1.0


def test_field_colours_same_for_opposite_vectors() -> None:
    field = blur.random_field(24, 32, rng=1).field
    np.testing.assert_allclose(field_colours(field), field_colours(-field), atol=1e-5)


def test_field_colours_hue_wraps_at_180() -> None:
    a = field_colours(blur.constant_field(2, 2, 5.0, 0.0), max_length=5.0)[0, 0]
    b = field_colours(blur.constant_field(2, 2, 5.0, 179.9), max_length=5.0)[0, 0]
    c = field_colours(blur.constant_field(2, 2, 5.0, 90.0), max_length=5.0)[0, 0]
    np.testing.assert_allclose(a, b, atol=0.01)
    assert np.abs(a - c).max() > 0.9  # red vs cyan
    np.testing.assert_allclose(a, [1, 0, 0], atol=1e-6)


def test_field_colours_distinguish_four_directions() -> None:
    cols = [
        field_colours(blur.constant_field(1, 1, 5.0, deg), max_length=5.0)[0, 0]
        for deg in (0, 45, 90, 135)
    ]
    for i in range(4):
        for j in range(i + 1, 4):
            assert np.abs(cols[i] - cols[j]).max() > 0.5


def test_field_colours_zero_motion_is_black() -> None:
    assert np.all(field_colours(np.zeros((5, 6, 2), np.float32)) == 0)


def test_field_colours_brightness_grows_with_length() -> None:
    values = [
        field_colours(blur.constant_field(1, 1, length, 30.0), max_length=10.0)[0, 0].max()
        for length in (0.0, 2.0, 4.0, 6.0, 8.0, 10.0, 20.0)
    ]
    assert np.all(np.diff(values[:-1]) > 0)
    assert values[-2] == pytest.approx(1.0) and values[-1] == pytest.approx(1.0)  # saturates
    col = field_colours(blur.constant_field(1, 1, 4.0, 30.0), max_length=10.0)[0, 0]
    assert col.min() == pytest.approx(0.0, abs=1e-6)  # full saturation


def test_field_colours_default_scale_is_99th_percentile() -> None:
    field = blur.random_field(40, 40, rng=2, max_length=20.0).field
    length = np.hypot(field[..., 0], field[..., 1])
    p99 = float(np.percentile(length, 99))
    np.testing.assert_allclose(field_colours(field), field_colours(field, max_length=p99))


@pytest.mark.parametrize(
    ("field", "kwargs"),
    [
        (np.zeros((4, 4, 3)), {}),
        (np.zeros((4, 4)), {}),
        (np.full((4, 4, 2), np.nan), {}),
        (np.zeros((4, 4, 2)), {"max_length": 0.0}),
        (np.zeros((4, 4, 2)), {"max_length": -1.0}),
    ],
)
def test_field_colours_rejects_bad_input(field: np.ndarray, kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        field_colours(field, **kwargs)


# --------------------------------------------------------------------------------------------
# field_picture
# --------------------------------------------------------------------------------------------


def test_field_picture_shape_and_dtype() -> None:
    image = textured_scene(256, 320, 3)
    field = blur.random_field(256, 320, rng=0).field
    pic = field_picture(image, field, title="test")
    assert pic.dtype == np.uint8 and pic.ndim == 3 and pic.shape[2] == 3
    assert pic.shape[0] > 256 and pic.shape[1] >= 320


@pytest.mark.parametrize("angle", [0.0, 30.0, 45.0, 90.0, 135.0])
def test_traces_follow_the_motion(angle: float) -> None:
    image = np.full((256, 256), 0.5, np.float32)
    field = blur.constant_field(256, 256, 14.0, angle)
    pic = field_picture(image, field, grid=64)
    comps = _core_components(pic, 256)
    assert len(comps) == 16  # a 4 x 4 grid
    for pts in comps:
        theta, major, minor = _axis(pts)
        assert _angle_diff(theta, angle) < 8
        assert major > 2 * minor
        assert 14 - 3 <= major <= 14 + 2  # the trace is as long as the streak


def test_horizontal_traces_spread_along_x() -> None:
    image = textured_scene(256, 256, 1)
    plain = field_picture(image, blur.constant_field(256, 256, 16.0, 0.0), grid=64)
    comps = _core_components(plain, 256)
    assert comps
    for pts in comps:
        assert pts[:, 0].var() > 4 * pts[:, 1].var()


def test_long_motion_is_capped_and_marked() -> None:
    image = np.full((256, 256), 0.5, np.float32)

    def amber(pic: np.ndarray) -> np.ndarray:
        p = pic[:256].astype(np.int32)
        return (p[..., 0] > 200) & (p[..., 1] > 120) & (p[..., 2] < 110)

    short = field_picture(image, blur.constant_field(256, 256, 10.0, 0.0), grid=32)
    long = field_picture(image, blur.constant_field(256, 256, 100.0, 0.0), grid=32)
    assert amber(short).sum() == 0
    assert amber(long).sum() > 100
    # the capped trace (ticks included) stays inside its grid cell, and has ticks
    labels, n = ndimage.label(amber(long))
    assert n > 0
    for sl in ndimage.find_objects(labels):
        assert 20 <= sl[1].stop - sl[1].start < 32 * 0.9
        assert sl[0].stop - sl[0].start >= 4  # end ticks make it taller than the bare line


def test_field_picture_grey_input_matches_rgb() -> None:
    grey = textured_scene(64, 80, 1)
    field = blur.random_field(64, 80, rng=3).field
    a = field_picture(grey, field)
    b = field_picture(grey[..., None], field)
    c = field_picture(np.repeat(grey[..., None], 3, axis=2), field)
    np.testing.assert_array_equal(a, b)
    assert np.abs(a.astype(int) - c.astype(int)).max() <= 1


def test_field_picture_accepts_uint8_image() -> None:
    img = (textured_scene(64, 64, 3) * 255).astype(np.uint8)
    pic = field_picture(img, blur.random_field(64, 64, rng=4).field)
    assert pic.dtype == np.uint8


def test_field_picture_tiny_image_is_enlarged() -> None:
    image = textured_scene(32, 32, 3)
    field = blur.random_field(32, 32, rng=0).field
    pic = field_picture(image, field)
    assert pic.dtype == np.uint8 and pic.shape[2] == 3
    assert pic.shape[0] > 256 and pic.shape[1] >= 256  # 32 px enlarged 8 times


def test_zero_field_draws_dots_without_colour() -> None:
    image = np.full((256, 256), 0.5, np.float32)
    pic = field_picture(image, np.zeros((256, 256, 2), np.float32), grid=64)
    comps = _core_components(pic, 256)
    assert len(comps) == 16
    for pts in comps:
        _, major, minor = _axis(pts)
        assert major <= 10 and minor <= 10
    assert _saturation(pic[:256]).max() == 0  # no motion, no colour


def test_confidence_scales_colour_opacity() -> None:
    image = textured_scene(128, 128, 1)
    field = blur.random_field(128, 128, rng=5).field
    ones = np.ones((128, 128), np.float32)
    full = field_picture(image, field, grid=1000)
    same = field_picture(image, field, confidence=ones, grid=1000)
    half = field_picture(image, field, confidence=0.5 * ones, grid=1000)
    none = field_picture(image, field, confidence=0 * ones, grid=1000)
    np.testing.assert_array_equal(full, same)
    h = 256  # enlarged twice
    s_full, s_half, s_none = (_saturation(p[:h]).mean() for p in (full, half, none))
    assert s_full > s_half > s_none
    assert s_none < 2.0  # only the single trace has any colour left


@pytest.mark.parametrize(
    ("field_shape", "kwargs", "match"),
    [
        ((64, 65, 2), {}, "same size"),
        ((63, 64, 2), {}, "same size"),
        ((64, 64, 3), {}, "field"),
        ((64, 64, 2), {"confidence": np.ones((32, 32))}, "confidence"),
        ((64, 64, 2), {"max_length": 0.0}, "max_length"),
        ((64, 64, 2), {"grid": -4.0}, "grid"),
    ],
)
def test_field_picture_rejects_bad_input(
    field_shape: tuple[int, int, int], kwargs: dict[str, object], match: str
) -> None:
    image = np.zeros((64, 64, 3), np.float32)
    with pytest.raises(ValueError, match=match):
        field_picture(image, np.zeros(field_shape, np.float32), **kwargs)  # type: ignore[arg-type]


def test_field_picture_rejects_bad_image() -> None:
    field = np.zeros((8, 8, 2), np.float32)
    with pytest.raises(ValueError, match="image"):
        field_picture(np.zeros((8, 8, 4), np.float32), field)
    with pytest.raises(ValueError, match="image"):
        field_picture(np.zeros((8, 8), np.int32), field)


# --------------------------------------------------------------------------------------------
# kernel_picture
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("angle", "horizontal"), [(0.0, True), (90.0, False)])
def test_kernel_picture_line_kernel_is_a_band(angle: float, horizontal: bool) -> None:
    kernel = blur.linear_kernel(21, angle)
    pic = kernel_picture(kernel, size=256, title="line")
    assert pic.dtype == np.uint8 and pic.ndim == 3 and pic.shape[0] == pic.shape[1]
    assert pic.shape[0] >= 250
    p = pic.astype(np.int32)
    bright = (p[..., 0] > 180) & (p[..., 2] < 180)  # inferno's top end, not the grey text
    ys, xs = np.nonzero(bright)
    assert xs.size > 0
    wide, tall = np.ptp(xs), np.ptp(ys)
    if horizontal:
        assert wide > 150 and tall < 40
    else:
        assert tall > 150 and wide < 40


def test_kernel_picture_non_square_and_small_size() -> None:
    pic = kernel_picture(np.ones((3, 9)) / 27, size=64)
    assert pic.shape[0] == pic.shape[1] and pic.dtype == np.uint8


@pytest.mark.parametrize(
    "kernel", [np.ones(5), np.zeros((0, 3)), np.full((3, 3), np.nan), np.ones((3, 3), complex)]
)
def test_kernel_picture_rejects_bad_kernel(kernel: np.ndarray) -> None:
    with pytest.raises(ValueError):
        kernel_picture(kernel)


# --------------------------------------------------------------------------------------------
# side_by_side
# --------------------------------------------------------------------------------------------


def test_side_by_side_arithmetic() -> None:
    a = np.zeros((100, 50, 3), np.uint8)
    b = np.full((200, 80, 3), 255, np.uint8)
    c = np.full((50, 50), 0.5, np.float32)  # grey float panel
    out = side_by_side([a, b, c], ["a", "b", "a long label that must shrink"], gap=6)
    assert out.dtype == np.uint8
    assert out.shape == (200 + label_height(200), 100 + 80 + 200 + 2 * 6, 3)
    strip = label_height(200)
    # panel b sits unchanged after panel a (resized to 100 px wide) and a gap
    np.testing.assert_array_equal(out[strip:, 106:186], b)


def test_side_by_side_field_and_kernel() -> None:
    image = textured_scene(128, 128, 3)
    field_pic = field_picture(image, blur.constant_field(128, 128, 9.0, 20.0))
    kern_pic = kernel_picture(blur.linear_kernel(9, 20.0))
    out = side_by_side([field_pic, kern_pic], ["motion", "kernel"])
    hc = max(field_pic.shape[0], kern_pic.shape[0])
    assert out.shape[0] == hc + label_height(hc)


def test_side_by_side_rejects_bad_input() -> None:
    with pytest.raises(ValueError):
        side_by_side([], [])
    with pytest.raises(ValueError):
        side_by_side([np.zeros((4, 4, 3), np.uint8)], ["a", "b"])
    with pytest.raises(ValueError):
        side_by_side([np.zeros((4, 4, 2), np.uint8)], ["a"])
    with pytest.raises(ValueError):
        side_by_side([np.zeros((4, 4, 3), np.uint8)], ["a"], gap=-1)
