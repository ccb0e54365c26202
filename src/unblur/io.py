"""Image input and output: files <-> float32 arrays, with metadata kept.

Dtype policy
------------
Every image in memory is an :class:`Image` whose ``pixels`` are ``float32`` of
shape ``(H, W, C)`` with ``C = 1`` (gray) or ``C = 3`` (RGB) and values in
``[0, 1]``. The values are *encoded as stored* in the file, which for almost all
photos means sRGB-encoded (gamma-compressed), not linear light. The blur forward
model ``y = k * x + n`` holds in linear light, so code that convolves or
deconvolves should go through :func:`srgb_to_linear` first and
:func:`linear_to_srgb` afterwards; both use the exact IEC 61966-2-1 curve.

Alpha is kept apart in ``Image.alpha`` (``float32`` ``(H, W)``) and is meant to
be passed through processing untouched. ``bit_depth`` records whether the source
held 8- or 16-bit samples, so that a 16-bit PNG or TIFF is written back with 16
bits. 8-bit data is scaled by ``1/255`` and 16-bit data by ``1/65535``; writing
clips to ``[0, 1]`` and rounds to nearest (``np.rint``), so that reading and
writing at the same bit depth is exact.

Metadata
--------
The ICC profile is passed through unchanged (the pixels stay in the colour space
it describes; only CMYK sources are converted, to sRGB). EXIF orientation is
applied to the pixels on reading, exactly like Pillow's
:func:`PIL.ImageOps.exif_transpose`, and the Orientation tag in the kept EXIF
bytes is reset to 1. What is written back depends on the format:

======  ==========  ======  ======  =====
format  16-bit      alpha   ICC     EXIF
======  ==========  ======  ======  =====
PNG     yes         yes     yes     yes
TIFF    yes         yes     yes     8-bit only
JPEG    no          no      yes     yes (up to 64 KiB)
WebP    no          yes     yes     yes
BMP     no          no      no      no
======  ==========  ======  ======  =====

16-bit TIFF is written by tifffile (zlib with a predictor) without EXIF; 8-bit
TIFF is written by Pillow, deflate-compressed, or uncompressed when it carries
EXIF (Pillow's compressing writer cannot store the EXIF sub-directories). From a
TIFF source only the descriptive tags (make, model, dates, artist, copyright,
software, description) and the Exif and GPS sub-directories are kept as EXIF.
Not kept anywhere: XMP, IPTC, PNG text chunks, resolution (DPI), and pages or
frames after the first.

Failures reach the caller as one-line :class:`~unblur.errors.InputError` or
:class:`~unblur.errors.OutputError` messages naming the file; no raw Pillow,
OpenCV or ``OSError`` escapes :func:`read_image` or :func:`write_image`.
"""

from __future__ import annotations

import errno
import io
import os
import re
import secrets
import stat
import struct
import threading
import warnings
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image as PILImage
from PIL import UnidentifiedImageError

from unblur.errors import ImageTooLargeError, InputError, OutputError, UnblurError

__all__ = [
    "DEFAULT_MAX_PIXELS",
    "SUPPORTED_EXTENSIONS",
    "Image",
    "atomic_write",
    "format_for_path",
    "linear_to_srgb",
    "read_image",
    "srgb_to_linear",
    "write_image",
]

DEFAULT_MAX_PIXELS: int = 200_000_000
"""Largest ``width * height`` :func:`read_image` decodes by default (decompression-bomb guard)."""

SUPPORTED_EXTENSIONS: dict[str, str] = {
    ".png": "PNG",
    ".jpg": "JPEG",
    ".jpeg": "JPEG",
    ".tif": "TIFF",
    ".tiff": "TIFF",
    ".webp": "WEBP",
    ".bmp": "BMP",
}
"""File extension (lower case, with the dot) -> format name, for writing."""

_SUPPORTED_FORMATS = ("BMP", "JPEG", "PNG", "TIFF", "WEBP")
_FORMAT_ALIASES = {"MPO": "JPEG"}  # Pillow calls camera JPEGs with a multi-picture index MPO
_SIXTEEN_BIT_FORMATS = frozenset({"PNG", "TIFF"})
_ALPHA_FORMATS = frozenset({"PNG", "TIFF", "WEBP"})
_ICC_FORMATS = frozenset({"PNG", "TIFF", "JPEG", "WEBP"})
_EXIF_FORMATS = frozenset({"PNG", "TIFF", "JPEG", "WEBP"})

_EXIF_HEADER = b"Exif\x00\x00"
_ORIENTATION_TAG = 0x0112
_JPEG_MAX_EXIF = 65533  # one APP1 segment: 65535 minus the two length bytes
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_ICC_PROFILE_TAG = 34675

# TIFF tags that describe the picture rather than the file layout: the only IFD0 tags
# of a TIFF source that are carried over as EXIF (plus the Exif and GPS sub-IFDs).
_TIFF_DESCRIPTIVE_TAGS = (270, 271, 272, 305, 306, 315, 316, 33432)
_EXIF_SUB_IFDS = (0x8769, 0x8825)
# TIFF layout tags that must never be copied from EXIF into a TIFF being written.
_TIFF_LAYOUT_TAGS = frozenset(
    {254, 255, 256, 257, 258, 259, 262, 263, 266, 273, 277, 278, 279, 280, 281, 284}
    | {317, 320, 322, 323, 324, 325, 330, 338, 339, 340, 341, 347}
    | {513, 514, 529, 530, 531, 532, _ICC_PROFILE_TAG}
)

# OpenCV refuses images over 2**30 pixels unless told otherwise before it is loaded;
# read_image applies its own limit, so OpenCV's must not be the one that fails.
_OPENCV_LIMITS = {
    "OPENCV_IO_MAX_IMAGE_PIXELS": str(1 << 40),
    "OPENCV_IO_MAX_IMAGE_WIDTH": str(1 << 24),
    "OPENCV_IO_MAX_IMAGE_HEIGHT": str(1 << 24),
}

_PILLOW_LOCK = threading.RLock()


# --------------------------------------------------------------------------- Image


@dataclass(eq=False, repr=False)
class Image:
    """An image in memory: float32 pixels in [0, 1] plus the metadata to write it back.

    Attributes:
        pixels: ``(H, W, C)`` float array, ``C`` is 1 (gray) or 3 (RGB), values in
            ``[0, 1]`` encoded as stored (normally sRGB). A ``(H, W)`` array is taken as
            gray. Converted to ``float32``.
        alpha: ``(H, W)`` float array in ``[0, 1]`` or ``None``; passed through
            processing untouched.
        bit_depth: 8 or 16, the sample depth of the source.
        icc_profile: the embedded ICC profile, raw bytes, or ``None``.
        exif: raw EXIF as in a JPEG APP1 segment (``b"Exif\\0\\0"`` followed by a
            TIFF structure) with Orientation reset to 1, or ``None``.
        source_format: ``"PNG"``, ``"JPEG"``, ``"TIFF"``, ``"WEBP"``, ``"BMP"`` or
            ``None`` for images that did not come from a file.

    Raises:
        ValueError: on a bad shape, a bit depth other than 8 or 16, or alpha whose
            size differs from the pixels'.
        TypeError: if pixels or alpha are not floating point (use :meth:`from_array`
            for uint8 and uint16 data).
    """

    pixels: np.ndarray
    alpha: np.ndarray | None = None
    bit_depth: int = 8
    icc_profile: bytes | None = None
    exif: bytes | None = None
    source_format: str | None = None

    def __post_init__(self) -> None:
        pixels = np.asarray(self.pixels)
        if pixels.ndim == 2:
            pixels = pixels[:, :, np.newaxis]
        if pixels.ndim != 3 or pixels.shape[2] not in (1, 3):
            raise ValueError(
                f"pixels must have shape (H, W), (H, W, 1) or (H, W, 3), got {pixels.shape}"
            )
        if not np.issubdtype(pixels.dtype, np.floating):
            raise TypeError(
                f"pixels must be floating point in [0, 1], got {pixels.dtype}; "
                "use Image.from_array for integer data"
            )
        self.pixels = pixels.astype(np.float32, copy=False)
        if self.alpha is not None:
            alpha = np.asarray(self.alpha)
            if alpha.ndim == 3 and alpha.shape[2] == 1:
                alpha = alpha[:, :, 0]
            if alpha.shape != self.pixels.shape[:2]:
                raise ValueError(
                    f"alpha has shape {alpha.shape} but pixels are "
                    f"{self.pixels.shape[0]}x{self.pixels.shape[1]}"
                )
            if not np.issubdtype(alpha.dtype, np.floating):
                raise TypeError(f"alpha must be floating point in [0, 1], got {alpha.dtype}")
            self.alpha = alpha.astype(np.float32, copy=False)
        if self.bit_depth not in (8, 16):
            raise ValueError(f"bit_depth must be 8 or 16, got {self.bit_depth!r}")

    def __repr__(self) -> str:
        parts = [f"{self.height}x{self.width}x{self.channels}", f"{self.bit_depth}-bit"]
        if self.alpha is not None:
            parts.append("alpha")
        if self.source_format:
            parts.append(self.source_format)
        if self.icc_profile:
            parts.append(f"icc={len(self.icc_profile)}B")
        if self.exif:
            parts.append(f"exif={len(self.exif)}B")
        return f"Image({', '.join(parts)})"

    @property
    def height(self) -> int:
        """Number of rows."""
        return int(self.pixels.shape[0])

    @property
    def width(self) -> int:
        """Number of columns."""
        return int(self.pixels.shape[1])

    @property
    def channels(self) -> int:
        """Colour channels, 1 or 3 (alpha not counted)."""
        return int(self.pixels.shape[2])

    def with_pixels(self, pixels: np.ndarray) -> Image:
        """Return a copy with new pixels and the same metadata and alpha.

        Args:
            pixels: float array ``(H, W)``, ``(H, W, 1)`` or ``(H, W, 3)``; if this image
                has alpha, ``H`` and ``W`` must match it.

        Returns:
            A new :class:`Image`; ``self`` is unchanged.

        Raises:
            ValueError: if the shape is invalid or does not match the alpha channel.
        """
        return replace(self, pixels=pixels)

    @classmethod
    def from_array(cls, array: np.ndarray, *, bit_depth: int | None = None) -> Image:
        """Build an :class:`Image` from a plain array.

        Args:
            array: ``(H, W)``, ``(H, W, 1)`` gray, ``(H, W, 2)`` gray + alpha,
                ``(H, W, 3)`` RGB or ``(H, W, 4)`` RGBA. Floating point values are taken
                as ``[0, 1]``; ``uint8`` is divided by 255 and ``uint16`` by 65535.
            bit_depth: bit depth to record; by default 16 for ``uint16`` input, else 8.

        Returns:
            The image, with no ICC profile or EXIF.

        Raises:
            ValueError: on an unsupported shape or dtype.
        """
        arr = np.asarray(array)
        if arr.ndim == 2:
            arr = arr[:, :, np.newaxis]
        if arr.ndim != 3 or not 1 <= arr.shape[2] <= 4:
            raise ValueError(
                f"image array must be (H, W) or (H, W, C) with C in 1..4, got {arr.shape}"
            )
        if arr.dtype == np.uint8:
            values, depth = _from_uint(arr, 8), 8
        elif arr.dtype == np.uint16:
            values, depth = _from_uint(arr, 16), 16
        elif np.issubdtype(arr.dtype, np.floating):
            values, depth = arr.astype(np.float32, copy=False), 8
        else:
            raise ValueError(f"image array must be float, uint8 or uint16, got {arr.dtype}")
        channels = arr.shape[2]
        alpha = values[:, :, -1] if channels in (2, 4) else None
        color = values[:, :, : 1 if channels <= 2 else 3]
        return cls(
            pixels=color,
            alpha=alpha,
            bit_depth=depth if bit_depth is None else bit_depth,
        )


# --------------------------------------------------------------------------- colour


def srgb_to_linear(x: np.ndarray) -> np.ndarray:
    """Decode sRGB values to linear light with the exact IEC 61966-2-1 curve.

    ``x / 12.92`` for ``x <= 0.04045``, else ``((x + 0.055) / 1.055) ** 2.4``. Values
    outside ``[0, 1]`` are not clipped (the first branch also covers negatives).

    Args:
        x: float array of any shape, sRGB-encoded.

    Returns:
        float32 array of the same shape, linear light.

    Raises:
        TypeError: if ``x`` is not floating point (scale integer data to [0, 1] first).

    Example:
        >>> float(srgb_to_linear(np.float32(0.5)))  # doctest: +ELLIPSIS
        0.214041...
    """
    x = _as_float32(x, "srgb_to_linear")
    curved = x > np.float32(0.04045)
    out = np.empty_like(x)
    np.divide(x, np.float32(12.92), out=out, where=~curved)
    base = (x + np.float32(0.055)) / np.float32(1.055)
    np.power(base, np.float32(2.4), out=out, where=curved)
    return out


def linear_to_srgb(x: np.ndarray) -> np.ndarray:
    """Encode linear-light values as sRGB (inverse of :func:`srgb_to_linear`).

    The input is clipped to ``[0, 1]`` first; then ``12.92 x`` for
    ``x <= 0.0031308``, else ``1.055 x ** (1 / 2.4) - 0.055``.

    Args:
        x: float array of any shape, linear light.

    Returns:
        float32 array of the same shape, sRGB-encoded, in ``[0, 1]``.

    Raises:
        TypeError: if ``x`` is not floating point.
    """
    x = np.clip(_as_float32(x, "linear_to_srgb"), np.float32(0.0), np.float32(1.0))
    curved = x > np.float32(0.0031308)
    out = np.empty_like(x)
    np.multiply(x, np.float32(12.92), out=out, where=~curved)
    # 1.055 p - 0.055 written as 1.055 (p - 1) + 1, so that 1 maps exactly to 1
    np.power(x, np.float32(1 / 2.4), out=out, where=curved)
    np.subtract(out, np.float32(1.0), out=out, where=curved)
    np.multiply(out, np.float32(1.055), out=out, where=curved)
    np.add(out, np.float32(1.0), out=out, where=curved)
    return out


def _as_float32(x: np.ndarray, name: str) -> np.ndarray:
    arr = np.asarray(x)
    if not np.issubdtype(arr.dtype, np.floating):
        raise TypeError(f"{name} expects floating point values in [0, 1], got {arr.dtype}")
    return np.asarray(arr, dtype=np.float32)


def _from_uint(arr: np.ndarray, depth: int) -> np.ndarray:
    return arr.astype(np.float32) / np.float32(255.0 if depth == 8 else 65535.0)


def _to_uint(x: np.ndarray, depth: int) -> np.ndarray:
    """Clip to [0, 1], scale and round to nearest (never truncate)."""
    if np.isnan(x).any():
        raise ValueError("image contains NaN values; refusing to write it")
    top, dtype = (255.0, np.uint8) if depth == 8 else (65535.0, np.uint16)
    return np.rint(np.clip(x, 0.0, 1.0) * np.float32(top)).astype(dtype)


# --------------------------------------------------------------------------- EXIF


def _normalize_exif(raw: bytes | None) -> bytes | None:
    """Return EXIF as ``b"Exif\\0\\0" + TIFF`` or ``None`` if it is not a TIFF structure."""
    if not raw:
        return None
    body = raw[len(_EXIF_HEADER) :] if raw.startswith(_EXIF_HEADER) else raw
    if body[:4] not in (b"II*\x00", b"MM\x00*"):
        return None
    return _EXIF_HEADER + body


def _orientation_entry(exif: bytes) -> tuple[int, str] | None:
    """Find IFD0's Orientation entry: (offset of its value in ``exif``, byte order)."""
    base = len(_EXIF_HEADER)
    tiff = memoryview(exif)[base:]
    if len(tiff) < 8:
        return None
    order = "<" if bytes(tiff[:2]) == b"II" else ">"
    (ifd,) = struct.unpack_from(order + "I", tiff, 4)
    if ifd + 2 > len(tiff):
        return None
    (count,) = struct.unpack_from(order + "H", tiff, ifd)
    for i in range(count):
        entry = ifd + 2 + 12 * i
        if entry + 12 > len(tiff):
            return None
        tag, kind, n = struct.unpack_from(order + "HHI", tiff, entry)
        if tag == _ORIENTATION_TAG:
            return (base + entry + 8, order) if kind == 3 and n == 1 else None
    return None


def _exif_orientation(exif: bytes | None) -> int:
    """EXIF orientation (1..8) of normalised EXIF bytes; 1 when absent or invalid."""
    if exif is None:
        return 1
    found = _orientation_entry(exif)
    if found is None:
        return 1
    offset, order = found
    (value,) = struct.unpack_from(order + "H", exif, offset)
    return value if 1 <= value <= 8 else 1


def _exif_reset_orientation(exif: bytes | None) -> bytes | None:
    """Set Orientation to 1 in place of the old value; every other byte is kept.

    Not ``PIL.Image.Exif``: re-serialising through it drops maker notes and sub-IFDs that it
    cannot parse; patching the two bytes keeps the camera's EXIF whole.
    """
    if exif is None:
        return None
    found = _orientation_entry(exif)
    if found is None:
        return exif
    offset, order = found
    patched = bytearray(exif)
    struct.pack_into(order + "H", patched, offset, 1)
    return bytes(patched)


def _tiff_source_exif(im: PILImage.Image) -> bytes | None:
    """EXIF for a TIFF source: its descriptive IFD0 tags and Exif/GPS sub-IFDs."""
    source = im.getexif()
    kept = PILImage.Exif()
    for tag in _TIFF_DESCRIPTIVE_TAGS:
        if tag in source:
            kept[tag] = source[tag]
    for tag in _EXIF_SUB_IFDS:
        if tag in source and (sub := source.get_ifd(tag)):
            kept[tag] = sub
    return kept.tobytes() if len(kept) else None


def _tiff_output_exif(exif: bytes) -> PILImage.Exif:
    """EXIF for Pillow's TIFF writer without tags that describe the file layout."""
    out = PILImage.Exif()
    out.load(exif)
    for tag in _TIFF_LAYOUT_TAGS & set(out):
        del out[tag]
    return out


def _apply_orientation(arr: np.ndarray, orientation: int) -> np.ndarray:
    """Transpose ``(H, W, ...)`` data as :func:`PIL.ImageOps.exif_transpose` would.

    Not Pillow's own function: 16-bit PNG and TIFF are decoded by OpenCV and tifffile into
    arrays, which ``exif_transpose`` (PIL images only) cannot turn; one array path serves all.
    """
    if orientation == 2:  # mirror left-right
        arr = arr[:, ::-1]
    elif orientation == 3:  # rotate 180
        arr = arr[::-1, ::-1]
    elif orientation == 4:  # mirror top-bottom
        arr = arr[::-1]
    elif orientation == 5:  # transpose
        arr = arr.swapaxes(0, 1)
    elif orientation == 6:  # rotate 90 clockwise
        arr = np.rot90(arr, -1)
    elif orientation == 7:  # transverse
        arr = arr[::-1, ::-1].swapaxes(0, 1)
    elif orientation == 8:  # rotate 90 counter-clockwise
        arr = np.rot90(arr, 1)
    return np.ascontiguousarray(arr)


# --------------------------------------------------------------------------- PNG chunks


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    """Serialise one PNG chunk: length, type, data, CRC-32 of type + data."""
    if len(kind) != 4:
        raise ValueError(f"PNG chunk type must be 4 bytes, got {kind!r}")
    crc = zlib.crc32(kind + data) & 0xFFFFFFFF
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)


def _png_chunks(data: bytes) -> Iterator[tuple[bytes, bytes]]:
    """Yield ``(type, data)`` for each chunk of a PNG file, checking CRCs.

    Raises:
        ValueError: if the signature, a length or a CRC is wrong.
    """
    if not data.startswith(_PNG_SIGNATURE):
        raise ValueError("not a PNG file")
    pos = len(_PNG_SIGNATURE)
    while pos < len(data):
        if pos + 12 > len(data):
            raise ValueError("truncated PNG chunk header")
        length, kind = struct.unpack_from(">I4s", data, pos)
        end = pos + 12 + length
        if end > len(data):
            raise ValueError(f"truncated PNG chunk {kind!r}")
        body = data[pos + 8 : end - 4]
        (crc,) = struct.unpack_from(">I", data, end - 4)
        if crc != zlib.crc32(kind + body) & 0xFFFFFFFF:
            raise ValueError(f"bad CRC in PNG chunk {kind!r}")
        yield kind, body
        if kind == b"IEND":
            return
        pos = end


def _png_insert_chunks(png: bytes, chunks: list[bytes]) -> bytes:
    """Insert serialised chunks right after IHDR (before any PLTE or IDAT)."""
    ihdr_end = len(_PNG_SIGNATURE) + 8 + 13 + 4
    if not png.startswith(_PNG_SIGNATURE) or png[12:16] != b"IHDR":
        raise ValueError("not a PNG file starting with IHDR")
    return png[:ihdr_end] + b"".join(chunks) + png[ihdr_end:]


def _png_metadata_chunks(icc_profile: bytes | None, exif: bytes | None) -> list[bytes]:
    chunks = []
    if icc_profile:
        # name, NUL, compression method 0 (zlib), compressed profile
        chunks.append(_png_chunk(b"iCCP", b"ICC Profile\x00\x00" + zlib.compress(icc_profile)))
    if exif:
        chunks.append(_png_chunk(b"eXIf", exif[len(_EXIF_HEADER) :]))
    return chunks


def _encode_png16_gray_alpha(arr: np.ndarray) -> bytes:
    """Encode ``(H, W, 2)`` uint16 gray + alpha as PNG (OpenCV cannot write two channels).

    Every row uses filter type 2 ("Up"): each byte minus the byte above, modulo 256.
    """
    h, w, _ = arr.shape
    raw = np.ascontiguousarray(arr, dtype=">u2").view(np.uint8).reshape(h, w * 4)
    filtered = raw.copy()
    filtered[1:] -= raw[:-1]
    rows = np.concatenate([np.full((h, 1), 2, dtype=np.uint8), filtered], axis=1)
    ihdr = struct.pack(">IIBBBBB", w, h, 16, 4, 0, 0, 0)
    return (
        _PNG_SIGNATURE
        + _png_chunk(b"IHDR", ihdr)
        + _png_chunk(b"IDAT", zlib.compress(rows.tobytes(), 6))
        + _png_chunk(b"IEND", b"")
    )


# --------------------------------------------------------------------------- reading


@dataclass
class _Header:
    """What Pillow tells from a file before any pixel is decoded."""

    format: str
    width: int
    height: int
    icc_profile: bytes | None
    exif: bytes | None
    orientation: int
    photometric: int | None = None  # TIFF only


def read_image(
    path: str | os.PathLike[str], *, max_pixels: int | None = DEFAULT_MAX_PIXELS
) -> Image:
    """Read a PNG, JPEG, TIFF, WebP or BMP file into an :class:`Image`.

    8- and 16-bit gray, gray + alpha, RGB and RGBA are read as such (alpha kept
    apart); palette images become RGB or RGBA, CMYK becomes RGB (through the embedded
    ICC profile when it is a CMYK one, after which the profile is sRGB). EXIF
    orientation is applied to the pixels. The size is checked against ``max_pixels``
    from the header, before anything is decoded. 16-bit PNG and TIFF are decoded by
    OpenCV and tifffile, since Pillow cannot hold 16-bit colour; multi-page TIFF and
    animated files give their first frame.

    Pillow's own ``MAX_IMAGE_PIXELS`` is set to ``max_pixels`` while Pillow reads the
    file, and its warnings are silenced, so that the limit is enforced here, with a
    message that names the option to raise it. Both are process-wide settings: they
    are changed under a module lock and restored afterwards, so concurrent calls of
    this function are safe, but other threads using Pillow or ``warnings`` at the same
    moment may see them. OpenCV's own limit (``OPENCV_IO_MAX_IMAGE_PIXELS``) is
    raised before OpenCV is first imported, unless the environment sets it.

    Args:
        path: the file to read.
        max_pixels: largest ``width * height`` accepted; ``None`` for no limit.

    Returns:
        The image: float32 pixels in [0, 1] as stored (normally sRGB), its alpha,
        bit depth, ICC profile, EXIF (orientation reset to 1) and format.

    Raises:
        InputError: the file is missing, a directory, empty, truncated or corrupt, not
            an image, or in an unsupported format or pixel layout.
        ImageTooLargeError: the image has more than ``max_pixels`` pixels.
        ValueError: ``max_pixels`` is not positive.
    """
    path = Path(path)
    if max_pixels is not None and max_pixels < 1:
        raise ValueError(f"max_pixels must be positive or None, got {max_pixels}")
    _check_input_file(path)
    try:
        with _pillow_limits(max_pixels):
            header, decoded = _read_with_pillow(path, max_pixels)
        if decoded is None:  # outside the lock: OpenCV and tifffile do not need it
            decoded = _read_without_pillow(path, header)
    except UnblurError:
        raise
    except PILImage.DecompressionBombError as exc:
        match = re.search(r"\((\d+) pixels\)", str(exc))
        size = f"{match.group(1)} pixels" if match else "image"
        raise ImageTooLargeError(
            f"{size} exceeds the limit of {max_pixels}; pass --max-pixels to allow it", path
        ) from exc
    except MemoryError as exc:
        raise InputError("not enough memory to decode the image", path) from exc
    except PermissionError as exc:
        raise InputError("permission denied", path) from exc
    except Exception as exc:  # Pillow, OpenCV and tifffile raise many types on bad data
        raise InputError(f"truncated or corrupt image ({_describe(exc)})", path) from exc

    color, alpha, icc_profile = decoded
    depth = 16 if color.dtype == np.uint16 else 8
    color = _apply_orientation(color, header.orientation)
    pixels = _from_uint(color, depth)
    alpha_f = None
    if alpha is not None:
        alpha_f = _from_uint(_apply_orientation(alpha, header.orientation), depth)
    return Image(
        pixels=pixels,
        alpha=alpha_f,
        bit_depth=depth,
        icc_profile=icc_profile,
        exif=_exif_reset_orientation(header.exif),
        source_format=header.format,
    )


def _describe(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _check_input_file(path: Path) -> None:
    try:
        info = path.stat()
    except FileNotFoundError as exc:
        raise InputError("no such file", path) from exc
    except NotADirectoryError as exc:
        raise InputError("no such file (a parent is not a directory)", path) from exc
    except PermissionError as exc:
        raise InputError("permission denied", path) from exc
    except OSError as exc:
        raise InputError(f"cannot access file ({exc.strerror or exc})", path) from exc
    if stat.S_ISDIR(info.st_mode):
        raise InputError("is a directory, not an image file", path)
    if not stat.S_ISREG(info.st_mode):
        raise InputError("not a regular file", path)
    if info.st_size == 0:
        raise InputError("empty file", path)


@contextmanager
def _pillow_limits(max_pixels: int | None) -> Iterator[None]:
    """Give Pillow our pixel limit and silence its warnings for the duration."""
    with _PILLOW_LOCK, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        saved = PILImage.MAX_IMAGE_PIXELS
        PILImage.MAX_IMAGE_PIXELS = max_pixels
        try:
            yield
        finally:
            PILImage.MAX_IMAGE_PIXELS = saved


_Decoded = tuple[np.ndarray, np.ndarray | None, bytes | None]  # color (H,W,C), alpha, ICC


def _read_with_pillow(path: Path, max_pixels: int | None) -> tuple[_Header, _Decoded | None]:
    """Open with Pillow; decode unless the samples are 16-bit (then return ``None``)."""
    try:
        im = PILImage.open(path)
    except UnidentifiedImageError as exc:
        if _looks_like_tiff(path):  # a layout Pillow has no mode for, e.g. 16-bit gray + alpha
            return _tiff_header_tifffile(path, max_pixels), None
        raise InputError("not an image file (unrecognised format)", path) from exc
    with im:
        fmt = _FORMAT_ALIASES.get(str(im.format), str(im.format))
        if fmt not in _SUPPORTED_FORMATS:
            raise InputError(
                f"unsupported image format {im.format}; supported: "
                + ", ".join(_SUPPORTED_FORMATS),
                path,
            )
        width, height = im.size
        _check_pixel_limit(path, width, height, max_pixels)
        header = _Header(
            format=fmt,
            width=width,
            height=height,
            icc_profile=im.info.get("icc_profile") or None,
            exif=None,
            orientation=1,
        )
        if fmt == "TIFF":
            tags = im.tag_v2  # type: ignore[attr-defined]
            header.photometric = tags.get(262)
            header.orientation = _valid_orientation(tags.get(_ORIENTATION_TAG))
            header.exif = _tiff_source_exif(im)
            if _tiff_is_sixteen_bit(path, tags):
                return header, None
        elif fmt == "PNG" and _png_is_sixteen_bit(path):
            return header, None
        im.load()
        if fmt == "TIFF":
            # Pillow may transpose TIFFs itself while loading; it then drops the tag
            header.orientation = _valid_orientation(im.tag_v2.get(_ORIENTATION_TAG))  # type: ignore[attr-defined]
        else:
            header.exif = _normalize_exif(im.info.get("exif"))
            header.orientation = _exif_orientation(header.exif)
        return header, _pillow_to_arrays(im, header.icc_profile, path)


def _check_pixel_limit(path: Path, width: int, height: int, max_pixels: int | None) -> None:
    if max_pixels is not None and width * height > max_pixels:
        raise ImageTooLargeError(
            f"image of {width}x{height} = {width * height} pixels exceeds the limit of "
            f"{max_pixels}; pass --max-pixels to allow it",
            path,
        )


def _looks_like_tiff(path: Path) -> bool:
    with path.open("rb") as f:
        magic = f.read(4)
    return magic in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")


def _tiff_header_tifffile(path: Path, max_pixels: int | None) -> _Header:
    """Header of a TIFF that Pillow cannot open, read by tifffile (no pixels decoded)."""
    import tifffile

    with tifffile.TiffFile(path) as tif:
        page = tif.pages.first
        width, height = int(page.imagewidth), int(page.imagelength)
        _check_pixel_limit(path, width, height, max_pixels)
        if page.dtype not in (np.dtype(np.uint8), np.dtype(np.uint16)):
            raise InputError(
                f"unsupported TIFF sample type {page.dtype}; convert to 8- or 16-bit unsigned",
                path,
            )
        icc = page.tags.valueof(_ICC_PROFILE_TAG)
        orientation = page.tags.valueof(_ORIENTATION_TAG, 1)
        photometric = int(page.photometric)
    return _Header(
        format="TIFF",
        width=width,
        height=height,
        icc_profile=bytes(icc) if icc is not None else None,
        exif=None,
        orientation=_valid_orientation(orientation),
        photometric=photometric,
    )


def _valid_orientation(value: Any) -> int:
    return value if isinstance(value, int) and 1 <= value <= 8 else 1


def _png_is_sixteen_bit(path: Path) -> bool:
    with path.open("rb") as f:
        head = f.read(26)
    return len(head) == 26 and head[12:16] == b"IHDR" and head[24] == 16


def _tiff_is_sixteen_bit(path: Path, tags: Any) -> bool:
    bits = tags.get(258, (1,))
    bits = tuple(bits) if isinstance(bits, tuple | list) else (bits,)
    formats = tags.get(339, (1,))
    formats = tuple(formats) if isinstance(formats, tuple | list) else (formats,)
    if any(f != 1 for f in formats) and max(bits) >= 16:
        raise InputError(
            "unsupported TIFF sample format (signed or floating point); "
            "convert to 8- or 16-bit unsigned",
            path,
        )
    if max(bits) > 16:
        raise InputError(f"unsupported TIFF bit depth {max(bits)}; convert to 8- or 16-bit", path)
    return max(bits) == 16


def _pillow_to_arrays(im: PILImage.Image, icc_profile: bytes | None, path: Path) -> _Decoded:
    """Convert a loaded 8-bit Pillow image to (color uint8 (H,W,C), alpha, ICC)."""
    mode = im.mode
    transparent = im.info.get("transparency") is not None
    if mode == "CMYK":
        im, icc_profile = _cmyk_to_rgb(im, icc_profile)
        mode = "RGB"
    if mode in ("1", "L"):
        target = "LA" if transparent else "L"
    elif mode in ("LA", "La"):
        target = "LA"
    elif mode == "P":
        palette_alpha = im.palette is not None and "A" in im.palette.mode
        target = "RGBA" if transparent or palette_alpha else "RGB"
    elif mode in ("PA", "RGBA", "RGBa"):
        target = "RGBA"
    elif mode == "RGB":
        target = "RGBA" if transparent else "RGB"
    elif mode in ("RGBX", "YCbCr", "HSV"):
        target = "RGB"
    else:
        raise InputError(f"unsupported pixel mode {mode}", path)
    if im.mode != target:
        im = im.convert(target)
    arr = np.asarray(im)
    if arr.ndim == 2:
        arr = arr[:, :, np.newaxis]
    if target in ("LA", "RGBA"):
        return arr[:, :, :-1], arr[:, :, -1], icc_profile
    return arr, None, icc_profile


def _cmyk_to_rgb(
    im: PILImage.Image, icc_profile: bytes | None
) -> tuple[PILImage.Image, bytes | None]:
    """CMYK -> RGB, through the embedded profile when it is a CMYK one.

    With a usable CMYK profile the result is sRGB and carries an sRGB profile;
    otherwise Pillow's naive conversion is used and the profile is dropped (it
    described CMYK values that no longer exist).
    """
    if icc_profile:
        converted = _cmyk_through_profile(im, icc_profile)
        if converted is not None:
            return converted
    return im.convert("RGB"), None


def _cmyk_through_profile(
    im: PILImage.Image, icc_profile: bytes
) -> tuple[PILImage.Image, bytes] | None:
    """Convert with LittleCMS to sRGB; ``None`` if the profile is not a usable CMYK one."""
    from PIL import ImageCms

    try:
        source = ImageCms.ImageCmsProfile(io.BytesIO(icc_profile))
        if source.profile.xcolor_space.strip() != "CMYK":
            return None
        srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB"))
        converted = ImageCms.profileToProfile(im, source, srgb, outputMode="RGB")
    except (ImageCms.PyCMSError, OSError, ValueError, TypeError):
        return None  # broken profile: the caller falls back to the naive conversion
    return (converted, srgb.tobytes()) if converted is not None else None


def _cv2() -> Any:
    """Import OpenCV with its pixel limits lifted (our own limit has been checked)."""
    for name, value in _OPENCV_LIMITS.items():
        os.environ.setdefault(name, value)
    import cv2

    return cv2


def _read_without_pillow(path: Path, header: _Header) -> _Decoded:
    """Decode a 16-bit PNG (OpenCV) or a TIFF (tifffile, OpenCV as fallback).

    TIFFs come here when they hold 16-bit samples or a layout Pillow cannot open;
    the result is uint16 or uint8 as stored.
    """
    if header.format == "TIFF":
        try:
            color, alpha = _read_tiff_tifffile(path)
        except InputError:
            raise
        except (ValueError, KeyError, ImportError, NotImplementedError):
            # e.g. LZW or PackBits without the optional imagecodecs package
            color, alpha = _read_cv2(path, header, gray=header.photometric in (0, 1))
            if header.photometric == 0:
                color = np.iinfo(color.dtype).max - color
    else:
        data = path.read_bytes()
        gray = data[25] in (0, 4)  # IHDR colour type: 0 gray, 4 gray + alpha
        color, alpha = _read_cv2(path, header, gray=gray, data=data)
        header.exif = _normalize_exif(_png_find_chunk(data, b"eXIf"))
        header.orientation = _exif_orientation(header.exif)
    return color, alpha, header.icc_profile


def _png_find_chunk(data: bytes, kind: bytes) -> bytes | None:
    """Body of the first chunk of ``kind``; ``None`` if absent or the file is malformed."""
    try:
        for found, body in _png_chunks(data):
            if found == kind:
                return body
    except ValueError:
        return None
    return None


def _read_cv2(
    path: Path, header: _Header, *, gray: bool, data: bytes | None = None
) -> tuple[np.ndarray, np.ndarray | None]:
    cv2 = _cv2()
    buffer = np.frombuffer(data if data is not None else path.read_bytes(), dtype=np.uint8)
    arr = cv2.imdecode(buffer, cv2.IMREAD_UNCHANGED)
    if arr is None:
        limit = int(os.environ.get("OPENCV_IO_MAX_IMAGE_PIXELS", str(1 << 30)))
        if header.width * header.height > min(limit, 1 << 30):
            raise ImageTooLargeError(
                f"image of {header.width * header.height} pixels exceeds OpenCV's decoding "
                "limit; set OPENCV_IO_MAX_IMAGE_PIXELS before starting",
                path,
            )
        raise InputError("truncated or corrupt image (OpenCV could not decode it)", path)
    if arr.dtype not in (np.uint8, np.uint16) or arr.shape[:2] != (header.height, header.width):
        raise InputError(
            f"truncated or corrupt image (decoded {arr.dtype} {arr.shape}, expected "
            f"{header.height}x{header.width})",
            path,
        )
    if arr.ndim == 2:
        arr = arr[:, :, np.newaxis]
    channels = arr.shape[2]
    alpha = arr[:, :, -1] if channels in (2, 4) else None
    if channels >= 3:
        color = arr[:, :, 2::-1]  # BGR -> RGB
        if gray:
            color = color[:, :, :1]
    else:
        color = arr[:, :, :1]
    return np.ascontiguousarray(color), None if alpha is None else np.ascontiguousarray(alpha)


def _read_tiff_tifffile(path: Path) -> tuple[np.ndarray, np.ndarray | None]:
    """First page of a uint8 or uint16 gray or RGB TIFF, with alpha if it has one."""
    import tifffile

    with tifffile.TiffFile(path) as tif:
        page = tif.pages.first
        arr = page.asarray()
        axes = page.axes
        photometric = int(page.photometric)
        extras = tuple(int(e) for e in page.extrasamples)
    if "S" not in axes:
        arr = arr[..., np.newaxis]
        axes += "S"
    arr = np.moveaxis(arr, axes.index("S"), -1)
    if arr.ndim != 3 or arr.dtype not in (np.uint8, np.uint16):
        raise InputError(f"unsupported TIFF layout {axes} of {arr.dtype}", path)
    if photometric in (0, 1):  # min-is-white, min-is-black
        base = 1
    elif photometric == 2:
        base = 3
    else:
        raise InputError(f"unsupported TIFF photometric interpretation {photometric}", path)
    if arr.shape[2] < base:
        raise InputError("TIFF has fewer samples than its colour space needs", path)
    color = arr[:, :, :base]
    if photometric == 0:
        color = np.iinfo(color.dtype).max - color
    alpha = None
    if extras and extras[0] in (1, 2) and arr.shape[2] > base:  # associated / unassociated
        alpha = arr[:, :, base]
        if extras[0] == 1:
            color = _unpremultiply(color, alpha)
    return np.ascontiguousarray(color), None if alpha is None else np.ascontiguousarray(alpha)


def _unpremultiply(color: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """Undo associated (premultiplied) alpha; fully transparent pixels become 0."""
    top = float(np.iinfo(color.dtype).max)
    a = alpha.astype(np.float64)[:, :, np.newaxis]
    out = np.divide(color * top, a, out=np.zeros(color.shape, np.float64), where=a > 0)
    return np.rint(np.clip(out, 0, top)).astype(color.dtype)


# --------------------------------------------------------------------------- writing


def format_for_path(path: str | os.PathLike[str]) -> str:
    """Format name to write ``path`` in, from its extension.

    Args:
        path: output file name.

    Returns:
        One of ``"PNG"``, ``"JPEG"``, ``"TIFF"``, ``"WEBP"``, ``"BMP"``.

    Raises:
        OutputError: the extension is not one of :data:`SUPPORTED_EXTENSIONS`.
    """
    path = Path(path)
    fmt = SUPPORTED_EXTENSIONS.get(path.suffix.lower())
    if fmt is None:
        raise OutputError(
            f"unknown image extension {path.suffix or '(none)'!r}; supported: "
            + ", ".join(sorted(SUPPORTED_EXTENSIONS)),
            path,
        )
    return fmt


def write_image(
    path: str | os.PathLike[str],
    image: Image | np.ndarray,
    *,
    bit_depth: int | None = None,
    quality: int = 95,
    overwrite: bool = True,
) -> Path:
    """Write an image atomically, in the format its extension names.

    16-bit output is possible for PNG and TIFF; JPEG, WebP and BMP are always 8-bit.
    Alpha is written for PNG, TIFF and WebP and dropped for JPEG and BMP. The ICC
    profile is written for PNG, TIFF, JPEG and WebP; EXIF for PNG, JPEG, WebP and
    8-bit TIFF (16-bit TIFF is written by tifffile without EXIF; 8-bit TIFF with EXIF
    is written uncompressed; JPEG EXIF over 64 KiB is dropped). EXIF is always
    written with Orientation 1, since the pixels are stored upright. The file
    appears complete or not at all (:func:`atomic_write`).

    Args:
        path: output file; ``.png``, ``.jpg``/``.jpeg``, ``.tif``/``.tiff``, ``.webp``
            or ``.bmp``.
        image: an :class:`Image`, or an array accepted by :meth:`Image.from_array`
            (float arrays default to 8-bit output, uint16 arrays to 16-bit).
        bit_depth: 8 or 16; default the image's own (8 for formats that cannot do 16).
        quality: JPEG and WebP quality, 1..100. At 90 and above JPEG chroma is not
            subsampled (4:4:4), below it is 4:2:0.
        overwrite: if False, refuse to replace an existing file.

    Returns:
        The path written.

    Raises:
        OutputError: unknown extension, 16 bits asked of an 8-bit format, the file
            exists and ``overwrite`` is False, or the write failed (disk full,
            directory not writable or missing).
        ValueError: bad ``bit_depth`` or ``quality``, a bad array, or NaN pixels.
    """
    path = Path(path)
    fmt = format_for_path(path)
    img = image if isinstance(image, Image) else Image.from_array(image)
    if bit_depth is not None and bit_depth not in (8, 16):
        raise ValueError(f"bit_depth must be 8, 16 or None, got {bit_depth!r}")
    if not 1 <= quality <= 100:
        raise ValueError(f"quality must be in 1..100, got {quality!r}")
    if fmt not in _SIXTEEN_BIT_FORMATS:
        if bit_depth == 16:
            raise OutputError(
                f"{fmt} cannot store 16-bit samples; write .png or .tif, or ask for 8 bits",
                path,
            )
        depth = 8
    else:
        depth = img.bit_depth if bit_depth is None else bit_depth
    if not overwrite and os.path.lexists(path):
        raise OutputError("already exists; pass --overwrite to replace it", path)

    exif = _exif_reset_orientation(_normalize_exif(img.exif)) if fmt in _EXIF_FORMATS else None
    icc = img.icc_profile if fmt in _ICC_FORMATS else None
    alpha = img.alpha if fmt in _ALPHA_FORMATS else None
    if depth == 16 and fmt == "PNG":
        writer: Callable[[Path], None] = _png16_writer(img.pixels, alpha, icc, exif)
    elif depth == 16:
        writer = _tiff16_writer(img.pixels, alpha, icc)
    else:
        writer = _pillow_writer(fmt, img.pixels, alpha, icc, exif, quality)
    return atomic_write(path, writer, overwrite=overwrite)


def _png16_writer(
    pixels: np.ndarray, alpha: np.ndarray | None, icc: bytes | None, exif: bytes | None
) -> Callable[[Path], None]:
    """16-bit PNG: OpenCV's encoder, then iCCP and eXIf chunks inserted by hand.

    Pillow cannot write 16-bit colour PNG, and OpenCV's encoder writes no metadata, so the two
    chunks are spliced in after IHDR (each a length, type, data and CRC).
    """
    color = _to_uint(pixels, 16)
    planes = color[:, :, ::-1] if color.shape[2] == 3 else color  # RGB -> BGR
    if alpha is not None:
        planes = np.dstack([planes, _to_uint(alpha, 16)])

    def write(tmp: Path) -> None:
        if planes.shape[2] == 2:
            data = _encode_png16_gray_alpha(planes)
        else:
            cv2 = _cv2()
            ok, buffer = cv2.imencode(
                ".png", np.ascontiguousarray(planes), [cv2.IMWRITE_PNG_COMPRESSION, 6]
            )
            if not ok:
                raise ValueError("OpenCV could not encode the image as PNG")
            data = buffer.tobytes()
        tmp.write_bytes(_png_insert_chunks(data, _png_metadata_chunks(icc, exif)))

    return write


def _tiff16_writer(
    pixels: np.ndarray, alpha: np.ndarray | None, icc: bytes | None
) -> Callable[[Path], None]:
    color = _to_uint(pixels, 16)
    planes = color if alpha is None else np.dstack([color, _to_uint(alpha, 16)])
    if planes.shape[2] == 1:
        planes = planes[:, :, 0]

    def write(tmp: Path) -> None:
        import tifffile

        tifffile.imwrite(
            tmp,
            planes,
            photometric="rgb" if pixels.shape[2] == 3 else "minisblack",
            planarconfig="contig",
            extrasamples=("unassalpha",) if alpha is not None else None,
            compression="zlib",
            predictor=True,
            metadata=None,
            software=False,
            iccprofile=icc,
        )

    return write


def _pillow_writer(
    fmt: str,
    pixels: np.ndarray,
    alpha: np.ndarray | None,
    icc: bytes | None,
    exif: bytes | None,
    quality: int,
) -> Callable[[Path], None]:
    color = _to_uint(pixels, 8)
    if fmt == "WEBP" and color.shape[2] == 1:  # WebP has no gray mode
        color = np.repeat(color, 3, axis=2)
    planes = color if alpha is None else np.dstack([color, _to_uint(alpha, 8)])
    # Pillow infers L, LA, RGB or RGBA from the shape of uint8 data
    im = PILImage.fromarray(planes[:, :, 0] if planes.shape[2] == 1 else planes)
    params: dict[str, Any] = {}
    if icc:
        params["icc_profile"] = icc
    if fmt == "PNG":
        params["compress_level"] = 6
    elif fmt == "JPEG":
        params["quality"] = quality
        params["subsampling"] = "4:4:4" if quality >= 90 else "4:2:0"
    elif fmt == "WEBP":
        params["quality"] = quality
    elif fmt == "TIFF" and not exif:
        # Pillow compresses through libtiff, which cannot write EXIF sub-directories;
        # with EXIF its own writer is used, which only writes uncompressed files.
        params["compression"] = "tiff_adobe_deflate"
    if exif and fmt == "TIFF":
        params["exif"] = _tiff_output_exif(exif)
    elif exif and not (fmt == "JPEG" and len(exif) > _JPEG_MAX_EXIF):
        params["exif"] = exif

    def write(tmp: Path) -> None:
        im.save(tmp, format=fmt, **params)

    return write


# --------------------------------------------------------------------------- atomic write


def atomic_write(
    path: str | os.PathLike[str],
    write_fn: Callable[[Path], None],
    *,
    overwrite: bool = True,
) -> Path:
    """Write a file so that it appears complete or not at all.

    ``write_fn`` writes a temporary file named ``.<name>.tmp-<random>`` in the same
    directory; it is flushed to disk (``fsync``) and renamed over ``path`` with
    :func:`os.replace`, which is atomic on one file system. On any failure the
    temporary file is removed. The new file gets the mode of the file it replaces,
    or the usual ``0o666`` less the umask.

    Args:
        path: the final file.
        write_fn: called with the temporary path (an existing empty file) to write.
        overwrite: if False, fail instead of replacing an existing file; checked at
            the moment of the rename where the file system supports hard links.

    Returns:
        ``path`` as a :class:`~pathlib.Path`.

    Raises:
        OutputError: the write failed; disk full, a directory that is missing or not
            writable, or any error raised by ``write_fn`` (chained as the cause).
    """
    path = Path(path)
    if path.is_dir():
        raise OutputError("is a directory", path)
    tmp = _create_temp(path)
    try:
        with suppress(OSError):  # keep the replaced file's permissions, if there is one
            os.chmod(tmp, stat.S_IMODE(os.stat(path).st_mode))
        write_fn(tmp)
        with tmp.open("rb+") as f:
            os.fsync(f.fileno())
        _move_into_place(tmp, path, overwrite)
    except BaseException as exc:
        with suppress(OSError):  # report the original error, not a failed clean-up
            tmp.unlink()
        if isinstance(exc, UnblurError) or not isinstance(exc, Exception):
            raise
        raise _output_error(path, exc) from exc
    _fsync_directory(path.parent)
    return path


def _create_temp(path: Path) -> Path:
    for _ in range(100):
        tmp = path.with_name(f".{path.name}.tmp-{secrets.token_hex(4)}")
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        except FileExistsError:
            continue
        except OSError as exc:
            raise _output_error(path, exc) from exc
        os.close(fd)
        return tmp
    raise OutputError("cannot create a temporary file next to it", path)


def _move_into_place(tmp: Path, path: Path, overwrite: bool) -> None:
    if overwrite:
        os.replace(tmp, path)
        return
    try:
        os.link(tmp, path)  # fails if path exists, unlike a rename
    except FileExistsError as exc:
        raise OutputError("already exists; pass --overwrite to replace it", path) from exc
    except OSError as exc:
        if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EMLINK):
            raise
        if os.path.lexists(path):  # no hard links here: check, then rename
            raise OutputError("already exists; pass --overwrite to replace it", path) from exc
        os.replace(tmp, path)
    else:
        tmp.unlink()


def _fsync_directory(directory: Path) -> None:
    """Make the rename durable; not possible (nor needed) everywhere, so best effort."""
    if os.name != "posix":
        return
    with suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _output_error(path: Path, exc: BaseException) -> OutputError:
    if isinstance(exc, OSError):
        code = exc.errno
        if code in (errno.ENOSPC, errno.EDQUOT):
            return OutputError("disk full (no space left on device)", path)
        if code in (errno.EACCES, errno.EPERM):
            return OutputError("directory not writable (permission denied)", path)
        if code == errno.EROFS:
            return OutputError("directory not writable (read-only file system)", path)
        if code == errno.ENOENT:
            return OutputError("directory does not exist", path)
        if code == errno.ENOTDIR:
            return OutputError("directory does not exist (a parent is a file)", path)
        if code == errno.EISDIR:
            return OutputError("is a directory", path)
        return OutputError(f"cannot write file ({exc.strerror or exc})", path)
    return OutputError(f"cannot write image ({_describe(exc)})", path)
