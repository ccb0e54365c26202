"""Tests for unblur.io: reading, writing, metadata, colour curves and failures.

Every image is generated here, small, under ``tmp_path``.
"""

from __future__ import annotations

import errno
import functools
import os
import stat
import struct
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest
import tifffile
from PIL import Image as PILImage
from PIL import ImageCms, ImageOps, JpegImagePlugin

from unblur import io as uio
from unblur.errors import ImageTooLargeError, InputError, OutputError
from unblur.io import (
    DEFAULT_MAX_PIXELS,
    SUPPORTED_EXTENSIONS,
    Image,
    atomic_write,
    format_for_path,
    linear_to_srgb,
    read_image,
    srgb_to_linear,
    write_image,
)

MAKE_TAG = 0x010F
ORIENTATION_TAG = 0x0112
EXIF_IFD = 0x8769
DATETIME_ORIGINAL = 0x9003

# ----------------------------------------------------------------------------- helpers


@functools.cache
def srgb_icc() -> bytes:
    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


def exif_bytes(
    orientation: int | None = None, make: str = "UnblurCam", *, sub_ifd: bool = True
) -> bytes:
    exif = PILImage.Exif()
    exif[MAKE_TAG] = make
    if orientation is not None:
        exif[ORIENTATION_TAG] = orientation
    if sub_ifd:  # Pillow's libtiff writer cannot store one
        exif.get_ifd(EXIF_IFD)[DATETIME_ORIGINAL] = "2024:05:06 07:08:09"
    return exif.tobytes()


def pil_exif(path: Path) -> PILImage.Exif:
    with PILImage.open(path) as im:
        im.load()
        return im.getexif()


def u8(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    return rng.integers(0, 256, size=shape, dtype=np.uint8)


def u16_full_range(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    """uint16 noise that uses the whole range, not just multiples of 257."""
    arr = rng.integers(0, 65536, size=shape, dtype=np.uint16)
    flat = arr.reshape(-1)
    flat[:4] = (0, 65535, 1, 65534)
    assert np.count_nonzero(arr % 257) > arr.size // 2
    return arr


def to_u8(x: np.ndarray) -> np.ndarray:
    return np.rint(x * 255).astype(np.uint8)


def to_u16(x: np.ndarray) -> np.ndarray:
    return np.rint(x * 65535).astype(np.uint16)


def png_ihdr(path: Path) -> tuple[int, int]:
    """(bit depth, colour type) from a PNG header."""
    head = path.read_bytes()[:26]
    return head[24], head[25]


def leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if ".tmp-" in p.name)


CHANNEL_LAYOUTS = {"gray": 1, "gray_alpha": 2, "rgb": 3, "rgba": 4}


def split(arr: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    c = arr.shape[2]
    color = arr[:, :, : 1 if c <= 2 else 3]
    return color, (arr[:, :, -1] if c in (2, 4) else None)


# ----------------------------------------------------------------------------- round trips


@pytest.mark.parametrize("layout", CHANNEL_LAYOUTS)
@pytest.mark.parametrize("ext", [".png", ".tif", ".tiff", ".bmp"])
def test_lossless_8bit_round_trip(tmp_path: Path, ext: str, layout: str) -> None:
    arr = u8(np.random.default_rng(1), (9, 7, CHANNEL_LAYOUTS[layout]))
    path = write_image(tmp_path / f"img{ext}", arr)
    img = read_image(path)
    color, alpha = split(arr)
    assert img.pixels.dtype == np.float32
    assert img.bit_depth == 8
    assert img.source_format == SUPPORTED_EXTENSIONS[ext]
    np.testing.assert_array_equal(to_u8(img.pixels), color)
    if alpha is None or ext == ".bmp":  # BMP drops alpha
        assert img.alpha is None
    else:
        assert img.alpha is not None and img.alpha.dtype == np.float32
        np.testing.assert_array_equal(to_u8(img.alpha), alpha)


@pytest.mark.parametrize("layout", CHANNEL_LAYOUTS)
@pytest.mark.parametrize("ext", [".jpg", ".jpeg", ".webp"])
def test_lossy_8bit_round_trip(tmp_path: Path, ext: str, layout: str) -> None:
    # smooth content so that lossy coding stays close
    y, x = np.mgrid[0:16, 0:24]
    base = (x * 8 + y * 4).astype(np.uint8)
    arr = np.dstack([base, 255 - base, base // 2, (x * 10).astype(np.uint8)])
    arr = arr[:, :, : CHANNEL_LAYOUTS[layout]]
    img = read_image(write_image(tmp_path / f"img{ext}", arr, quality=100))
    color, alpha = split(arr)
    expected_channels = 3 if ext == ".webp" else color.shape[2]  # WebP has no gray
    assert img.pixels.shape == (16, 24, expected_channels)
    error = np.abs(img.pixels - color / 255.0)
    assert error.mean() < 0.02 and error.max() < 0.12  # WebP subsamples chroma
    if ext == ".webp" and alpha is not None:
        assert img.alpha is not None
        assert np.abs(img.alpha - alpha / 255.0).max() < 0.12
    else:
        assert img.alpha is None


@pytest.mark.parametrize("layout", CHANNEL_LAYOUTS)
@pytest.mark.parametrize("ext", [".png", ".tif"])
def test_16bit_round_trip_is_exact(tmp_path: Path, ext: str, layout: str) -> None:
    arr = u16_full_range(np.random.default_rng(2), (11, 6, CHANNEL_LAYOUTS[layout]))
    path = write_image(tmp_path / f"img{ext}", arr)
    img = read_image(path)
    color, alpha = split(arr)
    assert img.bit_depth == 16
    np.testing.assert_array_equal(to_u16(img.pixels), color)
    if alpha is None:
        assert img.alpha is None
    else:
        assert img.alpha is not None
        np.testing.assert_array_equal(to_u16(img.alpha), alpha)
    # and once more through an Image: 16 bits in, 16 bits out by default
    again = read_image(write_image(tmp_path / f"again{ext}", img))
    np.testing.assert_array_equal(again.pixels, img.pixels)


def test_16bit_png_header_and_other_readers(tmp_path: Path) -> None:
    arr = u16_full_range(np.random.default_rng(3), (5, 4, 3))
    path = write_image(tmp_path / "rgb16.png", arr)
    assert png_ihdr(path) == (16, 2)
    decoded = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    np.testing.assert_array_equal(decoded[:, :, ::-1], arr)
    gray_alpha = write_image(tmp_path / "ga16.png", arr[:, :, :2])
    assert png_ihdr(gray_alpha) == (16, 4)
    with PILImage.open(gray_alpha) as im:  # a valid PNG for another decoder too
        im.load()
        assert im.size == (4, 5)


def test_16bit_tiff_readable_by_tifffile(tmp_path: Path) -> None:
    arr = u16_full_range(np.random.default_rng(4), (5, 4, 4))
    path = write_image(tmp_path / "rgba16.tif", arr)
    with tifffile.TiffFile(path) as tif:
        page = tif.pages.first
        np.testing.assert_array_equal(page.asarray(), arr)
        assert int(page.photometric) == 2
        assert tuple(int(e) for e in page.extrasamples) == (2,)


def test_explicit_bit_depth(tmp_path: Path) -> None:
    arr = u16_full_range(np.random.default_rng(5), (4, 4, 3))
    img = Image.from_array(arr)
    eight = write_image(tmp_path / "eight.png", img, bit_depth=8)
    assert png_ihdr(eight)[0] == 8
    np.testing.assert_array_equal(to_u8(read_image(eight).pixels), to_u8(img.pixels))
    sixteen = write_image(tmp_path / "sixteen.png", np.zeros((3, 3)), bit_depth=16)
    assert png_ihdr(sixteen)[0] == 16
    # 16-bit images become 8-bit JPEGs silently; asking for 16 explicitly is an error
    assert read_image(write_image(tmp_path / "a.jpg", img)).bit_depth == 8
    with pytest.raises(OutputError, match="cannot store 16-bit"):
        write_image(tmp_path / "b.jpg", img, bit_depth=16)
    with pytest.raises(ValueError, match="bit_depth"):
        write_image(tmp_path / "c.png", img, bit_depth=12)


def test_float_arrays_are_rounded_and_clipped(tmp_path: Path) -> None:
    k = np.arange(0, 255, dtype=np.float32)
    x = np.concatenate([(k + 0.49) / 255, (k + 0.51) / 255, [-0.5, 1.5, np.inf, -np.inf]])
    img = read_image(write_image(tmp_path / "r.png", x.reshape(1, -1).astype(np.float32)))
    got = to_u8(img.pixels[0, :, 0])
    np.testing.assert_array_equal(got[:255], k.astype(np.uint8))  # not truncated up
    np.testing.assert_array_equal(got[255:510], k.astype(np.uint8) + 1)  # rounded, not truncated
    np.testing.assert_array_equal(got[510:], [0, 255, 255, 0])
    with pytest.raises(ValueError, match="NaN"):
        write_image(tmp_path / "nan.png", np.full((2, 2), np.nan))
    assert not (tmp_path / "nan.png").exists()


@pytest.mark.parametrize("dtype", [np.int32, np.bool_, np.complex64])
def test_bad_array_dtype(tmp_path: Path, dtype: type) -> None:
    with pytest.raises(ValueError, match="float, uint8 or uint16"):
        write_image(tmp_path / "x.png", np.zeros((2, 2), dtype=dtype))


@pytest.mark.parametrize("shape", [(4,), (2, 2, 5), (1, 2, 2, 3)])
def test_bad_array_shape(tmp_path: Path, shape: tuple[int, ...]) -> None:
    with pytest.raises(ValueError, match=r"shape|must be"):
        write_image(tmp_path / "x.png", np.zeros(shape, np.float32))


def test_non_ascii_paths(tmp_path: Path) -> None:
    rng = np.random.default_rng(6)
    for name, arr in (
        ("bild_ü.png", u8(rng, (3, 3, 3))),
        ("звезда.png", u16_full_range(rng, (3, 3, 3))),
    ):
        img = read_image(write_image(tmp_path / name, arr))
        assert img.pixels.shape == (3, 3, 3)


# ----------------------------------------------------------------------------- pixel layouts


def test_16bit_gray_png_from_pillow(tmp_path: Path) -> None:
    arr = u16_full_range(np.random.default_rng(7), (6, 5))
    path = tmp_path / "gray16.png"
    PILImage.fromarray(arr).save(path)
    img = read_image(path)
    assert (img.bit_depth, img.channels) == (16, 1)
    np.testing.assert_array_equal(to_u16(img.pixels[:, :, 0]), arr)


@pytest.mark.parametrize("channels", [1, 3])
def test_16bit_lzw_tiff_falls_back_to_opencv(tmp_path: Path, channels: int) -> None:
    # tifffile needs the optional imagecodecs package for LZW; OpenCV decodes it instead
    arr = u16_full_range(np.random.default_rng(8), (6, 5, channels))
    path = tmp_path / "lzw.tif"
    ok, buf = cv2.imencode(".tif", arr[:, :, ::-1] if channels == 3 else arr[:, :, 0])
    assert ok
    path.write_bytes(buf.tobytes())
    img = read_image(path)
    assert (img.bit_depth, img.channels) == (16, channels)
    np.testing.assert_array_equal(to_u16(img.pixels), arr)


def test_16bit_tiff_planar_and_min_is_white(tmp_path: Path) -> None:
    rng = np.random.default_rng(9)
    arr = u16_full_range(rng, (3, 5, 4))  # samples first: planar configuration 2
    planar = tmp_path / "planar.tif"
    tifffile.imwrite(planar, arr, photometric="rgb", planarconfig="separate", metadata=None)
    img = read_image(planar)
    np.testing.assert_array_equal(to_u16(img.pixels), np.moveaxis(arr, 0, -1))
    gray = u16_full_range(rng, (5, 4))
    white = tmp_path / "white.tif"
    tifffile.imwrite(white, gray, photometric="miniswhite", metadata=None)
    np.testing.assert_array_equal(to_u16(read_image(white).pixels[:, :, 0]), 65535 - gray)


def test_16bit_tiff_associated_alpha_is_unpremultiplied(tmp_path: Path) -> None:
    color = np.full((2, 2, 3), 40000, np.uint16)
    alpha = np.array([[65535, 32768], [0, 16384]], np.uint16)
    premultiplied = np.rint(color * (alpha[:, :, None] / 65535.0)).astype(np.uint16)
    path = tmp_path / "assoc.tif"
    tifffile.imwrite(
        path, np.dstack([premultiplied, alpha]), photometric="rgb", extrasamples=("assocalpha",)
    )
    img = read_image(path)
    assert img.alpha is not None
    np.testing.assert_array_equal(to_u16(img.alpha), alpha)
    assert np.abs(img.pixels[0, 0] - 40000 / 65535).max() < 1e-6
    assert np.abs(img.pixels[0, 1] - 40000 / 65535).max() < 3 / 65535
    np.testing.assert_array_equal(img.pixels[1, 0], 0)


def test_palette_without_transparency(tmp_path: Path) -> None:
    palette = [10, 20, 30, 200, 100, 0, 5, 250, 128]
    im = PILImage.new("P", (3, 2))
    im.putpalette(palette)
    im.putdata([0, 1, 2, 2, 1, 0])
    path = tmp_path / "p.png"
    im.save(path)
    img = read_image(path)
    assert img.channels == 3 and img.alpha is None
    expected = np.array(palette, np.uint8).reshape(3, 3)[[[0, 1, 2], [2, 1, 0]]]
    np.testing.assert_array_equal(to_u8(img.pixels), expected)


@pytest.mark.parametrize("ext", [".png", ".bmp"])
def test_palette_with_transparency_index(tmp_path: Path, ext: str) -> None:
    im = PILImage.new("P", (2, 2))
    im.putpalette([0, 0, 0, 255, 0, 0])
    im.putdata([0, 1, 1, 0])
    path = tmp_path / f"p{ext}"
    if ext == ".png":
        im.save(path, transparency=0)
    else:
        im.save(path)
    img = read_image(path)
    np.testing.assert_array_equal(to_u8(img.pixels[0, 1]), [255, 0, 0])
    if ext == ".png":
        assert img.alpha is not None
        np.testing.assert_array_equal(to_u8(img.alpha), [[0, 255], [255, 0]])
    else:
        assert img.alpha is None


def test_palette_with_alpha_palette(tmp_path: Path) -> None:
    im = PILImage.new("P", (2, 1))
    im.putpalette([0, 0, 255, 255, 255, 0, 0, 128], rawmode="RGBA")
    im.putdata([0, 1])
    path = tmp_path / "pa.png"
    im.save(path)
    img = read_image(path)
    assert img.alpha is not None
    np.testing.assert_array_equal(to_u8(img.alpha), [[255, 128]])
    np.testing.assert_array_equal(to_u8(img.pixels), [[[0, 0, 255], [255, 0, 0]]])


def test_gray_with_transparent_value_and_one_bit(tmp_path: Path) -> None:
    gray = tmp_path / "trns.png"
    PILImage.fromarray(np.array([[0, 5], [5, 9]], np.uint8)).save(gray, transparency=5)
    img = read_image(gray)
    assert img.channels == 1 and img.alpha is not None
    np.testing.assert_array_equal(to_u8(img.alpha), [[255, 0], [0, 255]])
    bilevel = tmp_path / "bits.png"
    PILImage.fromarray(np.array([[True, False], [False, True]])).save(bilevel)
    img = read_image(bilevel)
    np.testing.assert_array_equal(img.pixels[:, :, 0], [[1, 0], [0, 1]])


@pytest.mark.parametrize("ext", [".jpg", ".tif"])
def test_cmyk_is_converted_to_rgb(tmp_path: Path, ext: str) -> None:
    cmyk = np.zeros((8, 8, 4), np.uint8)
    cmyk[:4, :, 0] = 255  # cyan on top
    cmyk[4:, :, 3] = 255  # black below
    path = tmp_path / f"cmyk{ext}"
    PILImage.frombytes("CMYK", (8, 8), cmyk.tobytes()).save(path)
    img = read_image(path)
    assert img.channels == 3 and img.icc_profile is None
    tol = 0.05 if ext == ".jpg" else 1e-6
    assert np.abs(img.pixels[1, 1] - [0, 1, 1]).max() < tol
    assert np.abs(img.pixels[6, 6] - [0, 0, 0]).max() < tol


def test_cmyk_with_a_non_cmyk_profile_falls_back(tmp_path: Path) -> None:
    path = tmp_path / "cmyk.tif"
    PILImage.new("CMYK", (3, 3), (0, 255, 0, 0)).save(path, icc_profile=srgb_icc())
    img = read_image(path)
    assert img.icc_profile is None  # the profile described values that are gone
    assert np.abs(img.pixels[0, 0] - [1, 0, 1]).max() < 1e-6


def test_mpo_camera_jpeg_reads_as_jpeg(tmp_path: Path) -> None:
    path = tmp_path / "camera.jpg"
    im = PILImage.new("RGB", (8, 6), (200, 10, 10))
    im.save(path, "MPO", save_all=True, append_images=[im])
    img = read_image(path)
    assert img.source_format == "JPEG" and img.pixels.shape == (6, 8, 3)


# ----------------------------------------------------------------------------- orientation


def labelled_image(height: int = 4, width: int = 6) -> np.ndarray:
    """Every pixel different, so that any transpose is visible."""
    arr = np.arange(height * width * 3, dtype=np.uint8).reshape(height, width, 3)
    return arr * 3


@pytest.mark.parametrize("orientation", range(1, 9))
def test_orientation_matches_pillow_exif_transpose(tmp_path: Path, orientation: int) -> None:
    path = tmp_path / "o.png"
    PILImage.fromarray(labelled_image()).save(path, exif=exif_bytes(orientation))
    with PILImage.open(path) as im:
        expected = np.asarray(ImageOps.exif_transpose(im))
    img = read_image(path)
    np.testing.assert_array_equal(to_u8(img.pixels), expected)
    assert uio._exif_orientation(img.exif) == 1
    out = write_image(tmp_path / "out.png", img)
    exif = pil_exif(out)
    assert exif[ORIENTATION_TAG] == 1
    assert exif[MAKE_TAG] == "UnblurCam"


@pytest.mark.parametrize("orientation", [3, 6])
def test_jpeg_orientation_as_a_viewer_shows_it(tmp_path: Path, orientation: int) -> None:
    stored = np.zeros((32, 48, 3), np.uint8)  # wide, black; red block top-left
    stored[:16, :16] = (255, 0, 0)
    path = tmp_path / "o.jpg"
    PILImage.fromarray(stored).save(path, exif=exif_bytes(orientation), quality=95)
    img = read_image(path)
    red = img.pixels[:, :, 0] > 0.5
    if orientation == 6:  # rotate 90 clockwise: tall, red block top-right
        assert img.pixels.shape == (48, 32, 3)
        assert red[:16, 16:].all() and not red[:, :16].any() and not red[16:].any()
    else:  # rotate 180: red block bottom-right
        assert img.pixels.shape == (32, 48, 3)
        assert red[16:, 32:].all() and not red[:16].any() and not red[:, :32].any()
    out = write_image(tmp_path / "out.jpg", img)
    exif = pil_exif(out)
    assert exif[ORIENTATION_TAG] == 1 and exif[MAKE_TAG] == "UnblurCam"
    assert exif.get_ifd(EXIF_IFD)[DATETIME_ORIGINAL] == "2024:05:06 07:08:09"
    with PILImage.open(out) as im:
        assert im.size == (img.width, img.height)


def test_orientation_rotates_alpha_too(tmp_path: Path) -> None:
    rgba = np.zeros((2, 3, 4), np.uint8)
    rgba[0, 0] = (255, 255, 255, 255)
    path = tmp_path / "a.png"
    PILImage.fromarray(rgba).save(path, exif=exif_bytes(6))
    img = read_image(path)
    assert img.alpha is not None and img.alpha.shape == (3, 2)
    np.testing.assert_array_equal(img.alpha, [[0, 1], [0, 0], [0, 0]])
    np.testing.assert_array_equal(img.pixels[:, :, 0], img.alpha)


def test_16bit_png_orientation(tmp_path: Path) -> None:
    arr = u16_full_range(np.random.default_rng(10), (3, 5, 3))
    ok, buf = cv2.imencode(".png", np.ascontiguousarray(arr[:, :, ::-1]))
    assert ok
    chunk = uio._png_chunk(b"eXIf", exif_bytes(6)[6:])
    path = tmp_path / "o16.png"
    path.write_bytes(uio._png_insert_chunks(buf.tobytes(), [chunk]))
    img = read_image(path)
    np.testing.assert_array_equal(to_u16(img.pixels), np.rot90(arr, -1))
    assert uio._exif_orientation(img.exif) == 1
    out = write_image(tmp_path / "out16.png", img)
    exif = pil_exif(out)
    assert exif[ORIENTATION_TAG] == 1 and exif[MAKE_TAG] == "UnblurCam"


@pytest.mark.parametrize("compression", [None, "tiff_adobe_deflate", "tiff_lzw"])
@pytest.mark.parametrize("orientation", [3, 6, 7])
def test_8bit_tiff_orientation(tmp_path: Path, compression: str | None, orientation: int) -> None:
    path = tmp_path / "o.tif"
    labelled = PILImage.fromarray(labelled_image())
    labelled.save(path, exif=exif_bytes(orientation, sub_ifd=False), compression=compression)
    reference = tmp_path / "o.png"
    labelled.save(reference, exif=exif_bytes(orientation))
    with PILImage.open(reference) as im:
        expected = np.asarray(ImageOps.exif_transpose(im))
    np.testing.assert_array_equal(to_u8(read_image(path).pixels), expected)


def test_16bit_tiff_orientation(tmp_path: Path) -> None:
    arr = u16_full_range(np.random.default_rng(11), (3, 5, 3))
    path = tmp_path / "o16.tif"
    tifffile.imwrite(path, arr, photometric="rgb", extratags=[(274, "H", 1, 8, True)])
    img = read_image(path)
    np.testing.assert_array_equal(to_u16(img.pixels), np.rot90(arr, 1))


def minimal_exif(order: str, orientation: int) -> bytes:
    """EXIF with one IFD0 entry, Orientation, in the given byte order ("<" or ">")."""
    magic = b"II*\x00" if order == "<" else b"MM\x00*"
    entry = struct.pack(order + "HHIH2x", ORIENTATION_TAG, 3, 1, orientation)
    return b"Exif\x00\x00" + magic + struct.pack(order + "IH", 8, 1) + entry + b"\x00" * 4


@pytest.mark.parametrize("order", ["<", ">"])
def test_exif_orientation_helpers(order: str) -> None:
    exif = minimal_exif(order, 6)
    assert uio._exif_orientation(exif) == 6
    reset = uio._exif_reset_orientation(exif)
    assert reset == minimal_exif(order, 1)  # only the value changed
    loaded = PILImage.Exif()
    loaded.load(reset)
    assert loaded[ORIENTATION_TAG] == 1
    assert uio._exif_orientation(minimal_exif(order, 9)) == 1  # out of range
    assert uio._normalize_exif(exif[6:]) == exif  # the APP1 prefix is added


def test_exif_helpers_on_real_and_broken_data() -> None:
    pillow_made = exif_bytes(8)
    assert uio._exif_orientation(pillow_made) == 8
    reset = uio._exif_reset_orientation(pillow_made)
    assert reset is not None and uio._exif_orientation(reset) == 1
    assert sum(a != b for a, b in zip(pillow_made, reset, strict=True)) == 1
    assert uio._exif_orientation(exif_bytes(None)) == 1
    assert uio._exif_reset_orientation(exif_bytes(None)) == exif_bytes(None)
    assert uio._normalize_exif(b"Exif\x00\x00garbage") is None
    assert uio._normalize_exif(b"") is None
    truncated = b"Exif\x00\x00II*\x00\xff\xff\xff\x00"  # IFD0 offset past the end
    assert uio._exif_orientation(truncated) == 1
    assert uio._exif_orientation(minimal_exif("<", 6)[:20]) == 1  # entry cut short


def test_corrupt_exif_is_dropped_without_warnings(tmp_path: Path) -> None:
    path = tmp_path / "bad_exif.jpg"
    PILImage.new("RGB", (4, 4)).save(path, exif=b"Exif\x00\x00not a tiff header")
    img = read_image(path)  # warnings are errors in this suite
    assert img.exif is None


# ----------------------------------------------------------------------------- metadata


@pytest.mark.parametrize(
    ("ext", "bit_depth"),
    [(".png", 8), (".png", 16), (".jpg", 8), (".tif", 8), (".tif", 16), (".webp", 8)],
)
def test_icc_profile_is_kept(tmp_path: Path, ext: str, bit_depth: int) -> None:
    img = Image(
        pixels=np.random.default_rng(12).random((6, 5, 3), dtype=np.float32),
        bit_depth=bit_depth,
        icc_profile=srgb_icc(),
    )
    back = read_image(write_image(tmp_path / f"icc{ext}", img))
    assert back.bit_depth == bit_depth
    assert back.icc_profile == srgb_icc()
    with PILImage.open(tmp_path / f"icc{ext}") as im:  # other readers see it too
        assert im.info.get("icc_profile") == srgb_icc()


def test_icc_profile_read_from_source(tmp_path: Path) -> None:
    path = tmp_path / "src.jpg"
    PILImage.new("RGB", (4, 4)).save(path, icc_profile=srgb_icc())
    assert read_image(path).icc_profile == srgb_icc()
    bmp = write_image(tmp_path / "x.bmp", read_image(path))
    assert read_image(bmp).icc_profile is None  # BMP cannot carry it


@pytest.mark.parametrize(
    ("ext", "bit_depth"), [(".jpg", 8), (".png", 8), (".png", 16), (".webp", 8), (".tif", 8)]
)
def test_exif_is_kept(tmp_path: Path, ext: str, bit_depth: int) -> None:
    src = tmp_path / "src.jpg"
    PILImage.new("RGB", (6, 4), (1, 2, 3)).save(src, exif=exif_bytes(1, make="Kept"))
    img = read_image(src)
    assert img.exif is not None and img.exif.startswith(b"Exif\x00\x00")
    out = write_image(tmp_path / f"out{ext}", replace_depth(img, bit_depth))
    back = read_image(out)
    assert back.exif is not None
    exif = PILImage.Exif()
    exif.load(back.exif)
    assert exif[MAKE_TAG] == "Kept"
    assert exif.get_ifd(EXIF_IFD)[DATETIME_ORIGINAL] == "2024:05:06 07:08:09"


def replace_depth(img: Image, bit_depth: int) -> Image:
    return Image(
        pixels=img.pixels,
        alpha=img.alpha,
        bit_depth=bit_depth,
        icc_profile=img.icc_profile,
        exif=img.exif,
        source_format=img.source_format,
    )


def test_exif_from_tiff_source_keeps_descriptive_tags_only(tmp_path: Path) -> None:
    path = tmp_path / "src.tif"
    PILImage.new("RGB", (6, 4)).save(path, exif=exif_bytes(3, make="TiffCam"))
    img = read_image(path)
    assert img.pixels.shape == (4, 6, 3)
    assert img.exif is not None
    exif = PILImage.Exif()
    exif.load(img.exif)
    assert exif[MAKE_TAG] == "TiffCam"
    assert 273 not in exif and 256 not in exif  # no strip offsets, no width
    jpg = write_image(tmp_path / "out.jpg", img)
    assert pil_exif(jpg)[MAKE_TAG] == "TiffCam"


def test_16bit_tiff_without_exif_is_documented_behaviour(tmp_path: Path) -> None:
    img = Image(pixels=np.zeros((2, 2, 3), np.float32), bit_depth=16, exif=exif_bytes(1))
    assert read_image(write_image(tmp_path / "x.tif", img)).exif is None


def test_jpeg_quality_and_subsampling(tmp_path: Path) -> None:
    arr = u8(np.random.default_rng(13), (64, 64, 3))
    low = write_image(tmp_path / "low.jpg", arr, quality=30)
    high = write_image(tmp_path / "high.jpg", arr, quality=95)
    assert low.stat().st_size < high.stat().st_size
    with PILImage.open(high) as im:
        assert JpegImagePlugin.get_sampling(im) == 0  # 4:4:4
    with PILImage.open(low) as im:
        assert JpegImagePlugin.get_sampling(im) == 2  # 4:2:0
    for bad in (0, 101):
        with pytest.raises(ValueError, match="quality"):
            write_image(tmp_path / "bad.jpg", arr, quality=bad)


def test_webp_quality_changes_size(tmp_path: Path) -> None:
    arr = u8(np.random.default_rng(14), (64, 64, 3))
    low = write_image(tmp_path / "low.webp", arr, quality=20)
    high = write_image(tmp_path / "high.webp", arr, quality=95)
    assert low.stat().st_size < high.stat().st_size


# ----------------------------------------------------------------------------- sRGB curves


def test_srgb_known_values() -> None:
    x = np.array([0.0, 0.04045, 0.5, 1.0], np.float32)
    expected = np.array([0.0, 0.04045 / 12.92, 0.21404114, 1.0], np.float32)
    np.testing.assert_allclose(srgb_to_linear(x), expected, rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(linear_to_srgb(expected), x, rtol=1e-6, atol=1e-7)
    assert linear_to_srgb(np.float32(1.0)) == 1.0
    assert float(srgb_to_linear(np.float32(0.5))) == pytest.approx(0.21404114, rel=1e-6)


def test_srgb_round_trip_and_continuity() -> None:
    x = np.linspace(0, 1, 4097, dtype=np.float32)
    lin = srgb_to_linear(x)
    assert np.all(np.diff(lin) >= 0)
    assert np.abs(linear_to_srgb(lin) - x).max() < 2e-6
    eps = np.float32(1e-6)
    below, above = srgb_to_linear(np.array([0.04045 - eps, 0.04045 + eps], np.float32))
    assert abs(above - below) < 1e-5  # the two pieces meet
    below, above = linear_to_srgb(np.array([0.0031308 - eps, 0.0031308 + eps], np.float32))
    assert abs(above - below) < 1e-4


@pytest.mark.parametrize("shape", [(), (5,), (2, 3), (2, 3, 4), (1, 2, 3, 4, 5)])
def test_srgb_shapes_and_dtypes(shape: tuple[int, ...]) -> None:
    x = np.random.default_rng(15).random(shape)  # float64 in
    for fn in (srgb_to_linear, linear_to_srgb):
        y = fn(x)
        assert y.shape == shape and y.dtype == np.float32
    np.testing.assert_allclose(
        srgb_to_linear(x), srgb_to_linear(x.astype(np.float32)), rtol=1e-6, atol=1e-8
    )


def test_srgb_input_is_not_modified_and_linear_clips() -> None:
    x = np.array([-1.0, 0.2, 2.0], np.float32)
    keep = x.copy()
    np.testing.assert_array_equal(linear_to_srgb(x)[[0, 2]], [0.0, 1.0])
    srgb_to_linear(x)
    np.testing.assert_array_equal(x, keep)
    assert srgb_to_linear(np.array([-0.5], np.float32))[0] == pytest.approx(-0.5 / 12.92)


def test_srgb_rejects_integers() -> None:
    with pytest.raises(TypeError, match="floating point"):
        srgb_to_linear(np.array([0, 255], np.uint8))
    with pytest.raises(TypeError, match="floating point"):
        linear_to_srgb(np.array([1]))


# ----------------------------------------------------------------------------- bad input


def assert_one_line(exc: BaseException, path: Path) -> None:
    text = str(exc)
    assert "\n" not in text
    assert text.startswith(str(path))


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "missing.png"
    with pytest.raises(InputError, match="no such file") as info:
        read_image(path)
    assert_one_line(info.value, path)
    parent_is_file = tmp_path / "file.txt"
    parent_is_file.write_text("x")
    with pytest.raises(InputError, match="no such file"):
        read_image(parent_is_file / "below.png")


def test_directory(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="is a directory") as info:
        read_image(tmp_path)
    assert_one_line(info.value, tmp_path)


def test_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.png"
    path.touch()
    with pytest.raises(InputError, match="empty file") as info:
        read_image(path)
    assert_one_line(info.value, path)


@pytest.mark.parametrize(
    ("name", "arr"),
    [
        ("rgb8.png", np.full((32, 32, 3), 0.3, np.float32)),
        ("rgb8.jpg", np.random.default_rng(16).random((32, 32, 3))),
        ("rgb8.webp", np.random.default_rng(17).random((32, 32, 3))),
        ("rgb8.bmp", np.random.default_rng(18).random((32, 32, 3))),
        ("rgb8.tif", np.random.default_rng(19).random((32, 32, 3))),
        ("rgb16.png", u16_full_range(np.random.default_rng(20), (32, 32, 3))),
        ("rgb16.tif", u16_full_range(np.random.default_rng(21), (32, 32, 3))),
        ("ga16.tif", u16_full_range(np.random.default_rng(22), (32, 32, 2))),
    ],
)
def test_truncated_file(tmp_path: Path, name: str, arr: np.ndarray) -> None:
    full = write_image(tmp_path / name, arr).read_bytes()
    path = tmp_path / f"cut_{name}"
    path.write_bytes(full[: len(full) // 2])
    with pytest.raises(InputError, match="truncated or corrupt image") as info:
        read_image(path)
    assert_one_line(info.value, path)


def test_corrupt_png_data(tmp_path: Path) -> None:
    full = bytearray(write_image(tmp_path / "x.png", np.zeros((16, 16, 3))).read_bytes())
    idat = full.index(b"IDAT")
    full[idat + 6 : idat + 16] = b"\xff" * 10
    path = tmp_path / "corrupt.png"
    path.write_bytes(bytes(full))
    with pytest.raises(InputError, match="truncated or corrupt image"):
        read_image(path)


@pytest.mark.parametrize("content", [b"hello, world\n", b"\x00" * 100, b"\x89PNG\r\n\x1a\n"])
def test_not_an_image(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "notes.png"
    path.write_bytes(content)
    with pytest.raises(InputError, match=r"not an image file|truncated or corrupt") as info:
        read_image(path)
    assert_one_line(info.value, path)


def test_text_file_is_not_an_image(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("hello")
    with pytest.raises(InputError, match=r"not an image file \(unrecognised format\)"):
        read_image(path)


@pytest.mark.parametrize("fmt", ["GIF", "ICO", "PPM", "TGA"])
def test_unsupported_format(tmp_path: Path, fmt: str) -> None:
    path = tmp_path / "image.png"  # the extension does not matter for reading
    PILImage.new("RGB", (8, 8), (1, 2, 3)).save(path, format=fmt)
    with pytest.raises(InputError, match=f"unsupported image format {fmt}; supported: ") as info:
        read_image(path)
    assert "PNG" in str(info.value) and "JPEG" in str(info.value)
    assert_one_line(info.value, path)


def test_unsupported_sample_format(tmp_path: Path) -> None:
    path = tmp_path / "float.tif"
    tifffile.imwrite(path, np.zeros((4, 4), np.float32))
    with pytest.raises(InputError, match="unsupported"):
        read_image(path)
    path32 = tmp_path / "u32.tif"
    tifffile.imwrite(path32, np.zeros((4, 4, 3), np.uint32), photometric="rgb")
    with pytest.raises(InputError, match="unsupported"):
        read_image(path32)


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root reads anything")
def test_unreadable_file(tmp_path: Path) -> None:
    path = write_image(tmp_path / "x.png", np.zeros((2, 2)))
    path.chmod(0)
    with pytest.raises(InputError, match="permission denied"):
        read_image(path)


# ----------------------------------------------------------------------------- pixel limit


@pytest.mark.parametrize(
    "name", ["rgb8.png", "rgb8.jpg", "rgb16.png", "rgb16.tif", "ga16.tif", "rgb8.webp"]
)
def test_pixel_limit(tmp_path: Path, name: str) -> None:
    arr = np.zeros((8, 10, 2 if name.startswith("ga") else 3), np.float32)
    img = Image.from_array(arr, bit_depth=16 if "16" in name else 8)
    path = write_image(tmp_path / name, img)
    saved = PILImage.MAX_IMAGE_PIXELS
    for limit in (79, 40, 10):  # just over, twice over (Pillow's own error), far over
        with pytest.raises(ImageTooLargeError, match="exceeds the limit of") as info:
            read_image(path, max_pixels=limit)
        assert "pass --max-pixels" in str(info.value)
        assert isinstance(info.value, InputError)
        assert_one_line(info.value, path)
    assert read_image(path, max_pixels=80).pixels.shape[:2] == (8, 10)
    assert read_image(path, max_pixels=None).pixels.shape[:2] == (8, 10)
    assert PILImage.MAX_IMAGE_PIXELS == saved  # restored, also after errors


def test_pixel_limit_message_and_default(tmp_path: Path) -> None:
    path = write_image(tmp_path / "x.png", np.zeros((8, 10)))
    with pytest.raises(ImageTooLargeError, match=r"10x8 = 80 pixels exceeds the limit of 79"):
        read_image(path, max_pixels=79)
    assert DEFAULT_MAX_PIXELS == 200_000_000
    with pytest.raises(ValueError, match="max_pixels"):
        read_image(path, max_pixels=0)


def test_concurrent_reads_keep_pillow_settings(tmp_path: Path) -> None:
    from concurrent.futures import ThreadPoolExecutor

    path = write_image(tmp_path / "x.png", np.zeros((8, 10, 3)))
    path16 = write_image(tmp_path / "x16.png", np.zeros((8, 10, 3), np.uint16))
    saved = PILImage.MAX_IMAGE_PIXELS

    def read(i: int) -> str:
        try:
            read_image(path16 if i % 3 == 0 else path, max_pixels=79 if i % 2 else None)
        except ImageTooLargeError:
            return "large"
        return "ok"

    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(read, range(24)))
    assert results == ["large" if i % 2 else "ok" for i in range(24)]
    assert PILImage.MAX_IMAGE_PIXELS == saved


def test_pillow_limit_above_its_default(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Pillow's default limit lower than ours must not reject what we allow
    monkeypatch.setattr(PILImage, "MAX_IMAGE_PIXELS", 20)
    path = write_image(tmp_path / "x.png", np.zeros((8, 10)))
    assert read_image(path).pixels.shape == (8, 10, 1)
    assert PILImage.MAX_IMAGE_PIXELS == 20


# ----------------------------------------------------------------------------- writing


def test_supported_extensions_and_unknown_extension(tmp_path: Path) -> None:
    assert SUPPORTED_EXTENSIONS[".jpeg"] == "JPEG" and SUPPORTED_EXTENSIONS[".tiff"] == "TIFF"
    assert format_for_path("A.JPG") == "JPEG"
    for name in ("out.gif", "out"):
        with pytest.raises(OutputError, match=r"unknown image extension .*supported: .*\.png"):
            write_image(tmp_path / name, np.zeros((2, 2)))
    assert list(tmp_path.iterdir()) == []


def test_overwrite(tmp_path: Path) -> None:
    path = tmp_path / "out.png"
    path.write_bytes(b"precious")
    with pytest.raises(OutputError, match="exists; pass --overwrite") as info:
        write_image(path, np.zeros((2, 2)), overwrite=False)
    assert_one_line(info.value, path)
    assert path.read_bytes() == b"precious"
    assert leftovers(tmp_path) == []
    write_image(path, np.zeros((2, 2)))  # overwrite=True is the default
    assert read_image(path).pixels.shape == (2, 2, 1)
    fresh = write_image(tmp_path / "fresh.png", np.zeros((2, 2)), overwrite=False)
    assert fresh.exists() and leftovers(tmp_path) == []


def test_atomic_write_no_clobber_at_rename(tmp_path: Path) -> None:
    path = tmp_path / "race.bin"

    def racing_writer(tmp: Path) -> None:
        path.write_bytes(b"someone else")  # appears after any early check
        tmp.write_bytes(b"mine")

    with pytest.raises(OutputError, match="exists"):
        atomic_write(path, racing_writer, overwrite=False)
    assert path.read_bytes() == b"someone else"
    assert leftovers(tmp_path) == []


def test_atomic_write_success_and_temp_name(tmp_path: Path) -> None:
    seen: list[Path] = []

    def writer(tmp: Path) -> None:
        seen.append(tmp)
        assert tmp.exists()
        tmp.write_bytes(b"data")

    out = atomic_write(str(tmp_path / "f.bin"), writer)
    assert out == tmp_path / "f.bin" and out.read_bytes() == b"data"
    assert seen[0].parent == tmp_path
    assert seen[0].name.startswith(".f.bin.tmp-")
    assert not seen[0].exists()


def test_atomic_write_permissions(tmp_path: Path) -> None:
    path = atomic_write(tmp_path / "new.bin", lambda tmp: tmp.write_bytes(b"x"))
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~umask
    path.chmod(0o640)
    atomic_write(path, lambda tmp: tmp.write_bytes(b"y"))
    assert stat.S_IMODE(path.stat().st_mode) == 0o640


@pytest.mark.parametrize(
    ("error", "message"),
    [
        (OSError(errno.ENOSPC, "No space left on device"), "disk full"),
        (OSError(errno.EDQUOT, "Disk quota exceeded"), "disk full"),
        (PermissionError(errno.EACCES, "Permission denied"), "directory not writable"),
        (OSError(errno.EROFS, "Read-only file system"), "directory not writable"),
        (OSError(errno.EIO, "Input/output error"), "cannot write file"),
        (ValueError("encoder exploded"), "cannot write image"),
    ],
)
def test_atomic_write_failure_cleans_up(tmp_path: Path, error: Exception, message: str) -> None:
    path = tmp_path / "out.bin"
    path.write_bytes(b"old")

    def failing(tmp: Path) -> None:
        tmp.write_bytes(b"partial")
        raise error

    with pytest.raises(OutputError, match=message) as info:
        atomic_write(path, failing)
    assert info.value.__cause__ is error
    assert_one_line(info.value, path)
    assert path.read_bytes() == b"old"
    assert leftovers(tmp_path) == []


def test_atomic_write_interrupt_propagates_and_cleans_up(tmp_path: Path) -> None:
    def interrupted(tmp: Path) -> None:
        tmp.write_bytes(b"partial")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        atomic_write(tmp_path / "out.bin", interrupted)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "name", ["x.png", "x.jpg", "x.tif", "x.webp", "x.bmp", "x16.png", "x16.tif"]
)
def test_disk_full_while_writing_image(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    real_fsync = os.fsync

    def full_fsync(fd: int) -> None:  # delayed-allocation errors surface at fsync
        real_fsync(fd)
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", full_fsync)
    img = Image.from_array(np.zeros((4, 4, 3), np.float32), bit_depth=16 if "16" in name else 8)
    with pytest.raises(OutputError, match="disk full"):
        write_image(tmp_path / name, img)
    assert list(tmp_path.iterdir()) == []


def test_disk_full_inside_pillow_save(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def full_save(self: PILImage.Image, fp: Path, *args: object, **kwargs: object) -> None:
        Path(fp).write_bytes(b"\x89PNG partial")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(PILImage.Image, "save", full_save)
    with pytest.raises(OutputError, match="disk full"):
        write_image(tmp_path / "x.png", np.zeros((4, 4)))
    assert list(tmp_path.iterdir()) == []


def test_encoder_errors_become_output_errors(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken_encoder(*args: object, **kwargs: object) -> None:
        raise cv2.error("OpenCV(5.0.0) encoder exploded")

    monkeypatch.setattr(cv2, "imencode", broken_encoder)
    with pytest.raises(OutputError, match=r"cannot write image .*encoder exploded") as info:
        write_image(tmp_path / "x.png", np.zeros((4, 4, 3), np.uint16))
    assert_one_line(info.value, tmp_path / "x.png")
    assert list(tmp_path.iterdir()) == []


def test_disk_full_inside_tifffile(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def full_imwrite(path: Path, *args: object, **kwargs: object) -> None:
        Path(path).write_bytes(b"II*\x00 partial")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(tifffile, "imwrite", full_imwrite)
    with pytest.raises(OutputError, match="disk full"):
        write_image(tmp_path / "x.tif", np.zeros((4, 4, 3), np.uint16))
    assert list(tmp_path.iterdir()) == []


def test_directory_under_a_file(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(OutputError, match="directory") as info:
        write_image(blocker / "out.png", np.zeros((2, 2)))
    assert_one_line(info.value, blocker / "out.png")


def test_missing_directory(tmp_path: Path) -> None:
    with pytest.raises(OutputError, match="directory does not exist"):
        write_image(tmp_path / "nope" / "out.png", np.zeros((2, 2)))


def test_target_is_a_directory(tmp_path: Path) -> None:
    (tmp_path / "dir.png").mkdir()
    with pytest.raises(OutputError, match="is a directory"):
        write_image(tmp_path / "dir.png", np.zeros((2, 2)))


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root writes anywhere")
def test_unwritable_directory(tmp_path: Path) -> None:
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        with pytest.raises(OutputError, match="directory not writable"):
            write_image(locked / "out.png", np.zeros((2, 2)))
    finally:
        locked.chmod(0o700)


# ----------------------------------------------------------------------------- Image


def test_image_properties_and_with_pixels() -> None:
    img = Image(
        pixels=np.zeros((4, 5, 3), np.float32),
        alpha=np.ones((4, 5), np.float32),
        bit_depth=16,
        icc_profile=b"icc",
        exif=b"exif",
        source_format="PNG",
    )
    assert (img.height, img.width, img.channels) == (4, 5, 3)
    assert repr(img) == "Image(4x5x3, 16-bit, alpha, PNG, icc=3B, exif=4B)"
    gray = img.with_pixels(np.ones((4, 5), np.float64))
    assert gray.channels == 1 and gray.pixels.dtype == np.float32
    assert (gray.alpha is img.alpha, gray.bit_depth, gray.icc_profile, gray.exif) == (
        True,
        16,
        b"icc",
        b"exif",
    )
    assert gray.source_format == "PNG"
    assert img.pixels.shape == (4, 5, 3)  # unchanged
    with pytest.raises(ValueError, match="alpha"):
        img.with_pixels(np.zeros((5, 4, 3), np.float32))
    no_alpha = Image(pixels=np.zeros((4, 5, 1), np.float32))
    assert no_alpha.with_pixels(np.zeros((8, 10, 3), np.float32)).height == 8


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"pixels": np.zeros((2, 2, 2), np.float32)}, ValueError),
        ({"pixels": np.zeros((2, 2, 4), np.float32)}, ValueError),
        ({"pixels": np.zeros(4, np.float32)}, ValueError),
        ({"pixels": np.zeros((2, 2, 3), np.uint8)}, TypeError),
        ({"pixels": np.zeros((2, 2), np.float32), "bit_depth": 12}, ValueError),
        ({"pixels": np.zeros((2, 2), np.float32), "alpha": np.zeros((2, 3))}, ValueError),
        ({"pixels": np.zeros((2, 2), np.float32), "alpha": np.zeros((2, 2), np.uint8)}, TypeError),
    ],
)
def test_image_validation(kwargs: dict[str, object], error: type[Exception]) -> None:
    with pytest.raises(error):
        Image(**kwargs)  # type: ignore[arg-type]


def test_from_array() -> None:
    rgba16 = np.full((2, 3, 4), 65535, np.uint16)
    img = Image.from_array(rgba16)
    assert (img.channels, img.bit_depth, img.alpha is not None) == (3, 16, True)
    assert img.pixels.max() == 1.0
    gray_alpha = Image.from_array(np.zeros((2, 3, 2), np.uint8))
    assert (gray_alpha.channels, gray_alpha.bit_depth) == (1, 8)
    assert gray_alpha.alpha is not None
    assert Image.from_array(np.zeros((2, 3), np.float64), bit_depth=16).bit_depth == 16


# ----------------------------------------------------------------------------- PNG chunks


def test_png_chunk_layout() -> None:
    chunk = uio._png_chunk(b"tEXt", b"key\x00value")
    length, kind = struct.unpack(">I4s", chunk[:8])
    assert (length, kind) == (9, b"tEXt")
    assert chunk[8:-4] == b"key\x00value"
    assert struct.unpack(">I", chunk[-4:])[0] == zlib.crc32(b"tEXtkey\x00value")
    # the CRC of an empty IEND is a well-known constant
    assert uio._png_chunk(b"IEND", b"")[-4:] == bytes.fromhex("AE426082")
    with pytest.raises(ValueError):
        uio._png_chunk(b"abc", b"")


def test_png_insert_and_parse_chunks(tmp_path: Path) -> None:
    ok, buf = cv2.imencode(".png", np.zeros((3, 4), np.uint16))
    assert ok
    metadata = uio._png_metadata_chunks(srgb_icc(), exif_bytes(1))
    png = uio._png_insert_chunks(buf.tobytes(), metadata)
    kinds = [kind for kind, _ in uio._png_chunks(png)]
    assert kinds[:3] == [b"IHDR", b"iCCP", b"eXIf"] and kinds[-1] == b"IEND"
    iccp = dict(uio._png_chunks(png))[b"iCCP"]
    name, rest = iccp.split(b"\x00", 1)
    assert name == b"ICC Profile" and rest[0] == 0
    assert zlib.decompress(rest[1:]) == srgb_icc()
    path = tmp_path / "x.png"
    path.write_bytes(png)
    with PILImage.open(path) as im:
        im.load()
        assert im.info["icc_profile"] == srgb_icc()
        assert im.getexif()[MAKE_TAG] == "UnblurCam"
    broken = bytearray(png)
    broken[40] ^= 0xFF  # inside the iCCP data: CRC no longer matches
    with pytest.raises(ValueError, match="CRC"):
        list(uio._png_chunks(bytes(broken)))
    with pytest.raises(ValueError):
        list(uio._png_chunks(png[:-6]))
    with pytest.raises(ValueError):
        uio._png_insert_chunks(b"GIF89a....", [])
