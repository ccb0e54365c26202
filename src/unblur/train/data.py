"""Training data: blurred/sharp pair sources, paired transforms, an in-memory pair pool.

Four kinds of source make ``(blur, sharp)`` pairs, all sRGB float32 ``(S, S, 3)`` arrays in
``[0, 1]`` with the blur aligned pixel for pixel with its sharp target:

* :class:`SyntheticSource` crops sharp photos and blurs them with the forward model
  (:func:`unblur.blur.degrade`: linear light, a mix of linear / camera-shake / spatially
  varying motion, Poisson-Gaussian noise, highlight saturation) and optionally JPEG.
* :class:`PairSource` crops real pairs, in a flat ``blur/`` + ``sharp/`` layout or GoPro's
  nested ``SCENE/blur/`` + ``SCENE/sharp/`` layout (detected), optionally filtered by name.
* :class:`FrameSource` averages a random window of consecutive sharp video frames in linear
  light (:func:`unblur.blur.average_window`): GoPro-style blur with the centre frame as target.
* :class:`SceneSource` renders such frames from still photos (:mod:`unblur.train.scenes`: a
  camera path with turn and zoom, objects crossing the scene) and averages them alike.

Making a pair costs milliseconds to tens of milliseconds of CPU, as much as a training step of
a small network, so training does not make pairs per step: :class:`PairPool` makes ``N`` pairs
once (uint8, ``(2, N, 3, C, C)``) and :meth:`PairPool.sample_batch` cuts random sub-crops with
random flips and 90-degree turns from it, which costs almost nothing. :meth:`PairPool.refresh`
remakes a fraction of the pool now and then so that long runs keep seeing new data.

Determinism: every random draw comes from a :class:`numpy.random.Generator` seeded from a tag
and a fixed-length tuple of integers (:func:`derive_rng`), never from global state. Slot ``i``
of a pool in its ``v``-th version is a pure function of ``(seed, stream, i, v)``, and the slots
remade by the ``k``-th refresh are a pure function of ``(seed, stream, k)``; so a pool is
rebuilt exactly from its seed and refresh count (:meth:`PairPool.restore`), which is what makes
resumed training bit-identical to an uninterrupted run.

Images are read with :func:`unblur.io.read_image` and cached decoded as uint8 RGB (gray is
replicated to three channels, alpha is dropped, 16-bit sources are rounded to 8 bits), since
the training sets are small. Photos smaller than the crop asked for are skipped, never
upscaled: an upscaled photo is soft, and the network would learn that soft is sharp.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

import cv2
import numpy as np
import torch

from unblur import blur, io
from unblur.errors import InputError
from unblur.progress import bar as progress_bar
from unblur.train.kernel_error import KernelError
from unblur.train.scenes import SceneMotion, render_scene

__all__ = [
    "BlurMix",
    "DeconvolvedSpec",
    "DeconvolvedValSpec",
    "FrameSource",
    "FrameSpec",
    "GraphicsSpec",
    "PairPool",
    "PairSource",
    "PairSpec",
    "PairValSpec",
    "PairedAugment",
    "SceneSource",
    "SceneSpec",
    "Source",
    "SourcePair",
    "SourceSpec",
    "SyntheticSource",
    "SyntheticSpec",
    "SyntheticValSpec",
    "ValPair",
    "ValSetSpec",
    "build_source",
    "build_val_set",
    "derive_rng",
    "list_images",
    "load_rgb8",
    "paired_crop",
]

BLUR_KINDS = ("linear", "shake", "field")

# Tags that keep the random streams of different purposes apart. numpy's SeedSequence treats
# [a, b] and [a, b, 0] alike, so every stream is seeded from a tag plus exactly four integers.
TAG_SLOT = 1
TAG_REFRESH = 2
TAG_BATCH = 3
TAG_VAL = 4


def derive_rng(tag: int, *values: int) -> np.random.Generator:
    """A generator seeded from a purpose tag and up to four non-negative integers.

    Args:
        tag: which stream (pool slot, refresh, batch, validation, ...).
        *values: the stream's coordinates, e.g. ``(seed, rank, step)``; padded to four.

    Returns:
        A fresh :class:`numpy.random.Generator`; equal arguments give equal streams.

    Raises:
        ValueError: more than four values, or a negative one.
    """
    if len(values) > 4:
        raise ValueError(f"at most four values, got {len(values)}")
    words = [int(tag), *(int(v) for v in values), *([0] * (4 - len(values)))]
    if any(w < 0 for w in words):
        raise ValueError(f"seeds must be non-negative integers, got {words}")
    return np.random.default_rng(words)


# --------------------------------------------------------------------------------------------
# image files
# --------------------------------------------------------------------------------------------


def list_images(folder: Path) -> list[Path]:
    """Image files directly inside ``folder`` (by extension, hidden files skipped), sorted."""
    return sorted(
        p
        for p in folder.iterdir()
        if p.is_file()
        and not p.name.startswith(".")
        and p.suffix.lower() in io.SUPPORTED_EXTENSIONS
    )


def load_rgb8(path: Path) -> np.ndarray:
    """Read an image as uint8 RGB ``(H, W, 3)``: gray replicated, alpha dropped, 16 bit rounded.

    Raises:
        InputError: the file cannot be read as an image (from :func:`unblur.io.read_image`).
    """
    pixels = io.read_image(path).pixels
    if pixels.shape[2] == 1:
        pixels = np.repeat(pixels, 3, axis=2)
    return to_uint8(pixels)


def to_uint8(image: np.ndarray) -> np.ndarray:
    """Float image in ``[0, 1]`` to uint8 (clipped, rounded to nearest)."""
    return np.rint(np.clip(image, 0.0, 1.0) * 255.0).astype(np.uint8)


def to_float(image: np.ndarray) -> np.ndarray:
    """uint8 image to float32 in ``[0, 1]`` (exactly as :func:`unblur.io.read_image` scales)."""
    return image.astype(np.float32) / np.float32(255.0)


def _check_folder(folder: Path) -> Path:
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError("no such data folder", folder)
    return folder


def _progress(items: Sequence[Any], what: str, quiet: bool) -> Any:
    return progress_bar(items, desc=what, unit="file", level=1, enabled=not quiet)


# --------------------------------------------------------------------------------------------
# paired transforms
# --------------------------------------------------------------------------------------------


def crop_offsets(height: int, width: int, size: int, rng: np.random.Generator) -> tuple[int, int]:
    """Uniform random ``(top, left)`` of a ``size`` x ``size`` window inside ``height x width``.

    Raises:
        ValueError: the window does not fit.
    """
    if size < 1 or size > height or size > width:
        raise ValueError(f"a {size}x{size} crop does not fit a {height}x{width} image")
    return int(rng.integers(0, height - size + 1)), int(rng.integers(0, width - size + 1))


def paired_crop(
    blurred: np.ndarray, sharp: np.ndarray, size: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Crop a blurred image and its sharp target at the same random place.

    Args:
        blurred: ``(H, W, C)`` array.
        sharp: array of the same height and width.
        size: side of the square crop.
        rng: generator for the position (drawn once, used for both).

    Returns:
        The two ``(size, size, C)`` crops (views).

    Raises:
        ValueError: the images differ in size or are smaller than ``size``.
    """
    if blurred.shape[:2] != sharp.shape[:2]:
        raise ValueError(f"pair sizes differ: {blurred.shape[:2]} vs {sharp.shape[:2]}")
    top, left = crop_offsets(blurred.shape[0], blurred.shape[1], size, rng)
    window = (slice(top, top + size), slice(left, left + size))
    return blurred[window], sharp[window]


@dataclass(frozen=True)
class PairedAugment:
    """A crop and a symmetry of the square, sampled once and applied to every image of a sample.

    Applied in this order: crop ``size`` x ``size`` at ``(top, left)``, flip left-right
    (``hflip``), flip top-bottom (``vflip``), turn 90 degrees counter-clockwise (``rot90``).
    The three flags reach all eight symmetries of the square. Blur is a property of the whole
    pair, so the same transform on blurred and sharp images keeps them aligned and keeps the
    pair consistent (a rotated blur is the blur of the rotated scene).

    Attributes:
        top: first row of the crop.
        left: first column of the crop.
        size: side of the crop.
        hflip: mirror left-right.
        vflip: mirror top-bottom.
        rot90: turn by 90 degrees.

    Example:
        >>> aug = PairedAugment(top=0, left=1, size=2, hflip=True, vflip=False, rot90=False)
        >>> aug(torch.arange(9).reshape(1, 3, 3)).tolist()
        [[[2, 1], [5, 4]]]
    """

    top: int
    left: int
    size: int
    hflip: bool = False
    vflip: bool = False
    rot90: bool = False

    @classmethod
    def sample(
        cls,
        height: int,
        width: int,
        size: int,
        rng: np.random.Generator,
        *,
        flips: bool = True,
        rotate: bool = True,
    ) -> PairedAugment:
        """Draw a random crop position and, optionally, a random symmetry.

        Args:
            height: image height.
            width: image width.
            size: crop side.
            rng: generator (three more draws whatever the flags, so streams stay aligned).
            flips: allow flips.
            rotate: allow the 90-degree turn (for square crops).

        Returns:
            The transform.
        """
        top, left = crop_offsets(height, width, size, rng)
        coins = rng.random(3) < 0.5
        return cls(
            top=top,
            left=left,
            size=size,
            hflip=bool(coins[0] and flips),
            vflip=bool(coins[1] and flips),
            rot90=bool(coins[2] and rotate),
        )

    def __call__(self, image: np.ndarray | torch.Tensor) -> np.ndarray | torch.Tensor:
        """Apply to an array or CPU tensor whose last two axes are height and width.

        Arrays give views where possible; tensors give a new contiguous tensor (the work is
        done by numpy, which is much faster than torch for these small copies).
        """
        if isinstance(image, torch.Tensor):
            return torch.from_numpy(np.ascontiguousarray(self(image.numpy())))
        out = image[..., self.top : self.top + self.size, self.left : self.left + self.size]
        if self.hflip:
            out = out[..., ::-1]
        if self.vflip:
            out = out[..., ::-1, :]
        if self.rot90:
            out = np.rot90(out, 1, axes=(-2, -1))
        return out


# --------------------------------------------------------------------------------------------
# sources
# --------------------------------------------------------------------------------------------


@dataclass
class SourcePair:
    """One sample of a source.

    Attributes:
        blur: float32 ``(S, S, 3)`` sRGB blurred image in ``[0, 1]``.
        sharp: float32 ``(S, S, 3)`` sRGB sharp target, aligned with ``blur``.
        info: how it was made (file, blur kind, length, kernel, JPEG quality, ...).
    """

    blur: np.ndarray
    sharp: np.ndarray
    info: dict[str, Any] = field(default_factory=dict)


class Source(Protocol):
    """Anything that makes aligned ``(blur, sharp)`` crops from a generator."""

    name: str

    def sample(self, size: int, rng: np.random.Generator) -> SourcePair:
        """A random ``size`` x ``size`` pair."""
        ...


@dataclass(frozen=True)
class BlurMix:
    """How :class:`SyntheticSource` blurs: a mix of blur kinds and ranges of the other effects.

    Each sample draws a kind with probability proportional to its weight, then its parameters
    uniformly from the ranges (see :class:`unblur.blur.DegradationConfig`). Poisson noise and
    JPEG are applied to a random fraction of the samples (``poisson_prob``, ``jpeg_prob``):
    :func:`unblur.blur.degrade` always applies them when configured, so the draw is made here
    and JPEG is applied with :func:`unblur.blur.jpeg_compress` after the blur.

    Attributes:
        kinds: blur kind (``linear``, ``shake``, ``field``) -> weight (``>= 0``, some ``> 0``).
        length: blur length range in pixels (segment, path length or field cap).
        read_noise: Gaussian read-noise sigma range, linear light.
        poisson_prob: probability of shot noise.
        poisson_scale: photo-electrons at full scale (larger: less noise), when there is some.
        jpeg_prob: probability of a JPEG round trip.
        jpeg_quality: inclusive JPEG quality range.
        saturation_prob: probability of boosting highlights before the blur (light streaks).
    """

    kinds: dict[str, float] = field(
        default_factory=lambda: {"shake": 0.5, "linear": 0.2, "field": 0.3}
    )
    length: tuple[float, float] = (3.0, 30.0)
    read_noise: tuple[float, float] = (0.0, 0.01)
    poisson_prob: float = 0.0
    poisson_scale: tuple[float, float] = (2000.0, 20000.0)
    jpeg_prob: float = 0.0
    jpeg_quality: tuple[int, int] = (60, 95)
    saturation_prob: float = 0.0

    def __post_init__(self) -> None:
        unknown = sorted(set(self.kinds) - set(BLUR_KINDS))
        if unknown:
            raise ValueError(f"unknown blur kind {unknown[0]!r}; choose from {BLUR_KINDS}")
        weights = list(self.kinds.values())
        if any(not math.isfinite(w) or w < 0 for w in weights) or sum(weights) <= 0:
            raise ValueError(f"kinds weights must be >= 0 with a positive sum, got {self.kinds}")
        for name in ("poisson_prob", "jpeg_prob", "saturation_prob"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {value}")
        lo, hi = self.jpeg_quality
        if not 1 <= lo <= hi <= 100:
            raise ValueError(f"jpeg_quality must satisfy 1 <= low <= high <= 100, got {lo, hi}")
        self.degradations()  # blur.DegradationConfig validates the other ranges

    @property
    def margin(self) -> int:
        """Context pixels kept around a crop while blurring, so crops have no border effects."""
        return math.ceil(self.length[1] / 2) + 2

    def degradations(self) -> dict[tuple[str, bool], blur.DegradationConfig]:
        """The forward-model settings for every (kind, with Poisson noise) combination.

        Raises:
            ValueError: a range the forward model rejects (named by it).
        """
        out: dict[tuple[str, bool], blur.DegradationConfig] = {}
        for kind, weight in self.kinds.items():
            if weight <= 0:
                continue
            length = self.length
            if kind == "shake":  # a shake path needs a positive length
                length = (max(self.length[0], 1.0), max(self.length[1], 1.0))
            for poisson in (False, True):
                out[kind, poisson] = blur.DegradationConfig(
                    kind=kind,  # type: ignore[arg-type]
                    length=length,
                    saturation_prob=self.saturation_prob,
                    gaussian_sigma=self.read_noise,
                    poisson_scale=self.poisson_scale if poisson else None,
                    jpeg_quality=None,
                )
        return out


def shrunk_region(
    photo: np.ndarray,
    size: int,
    margin: int,
    rng: np.random.Generator,
    *,
    scale: tuple[float, float] = (1.0, 1.0),
    centre: bool = False,
) -> tuple[np.ndarray, float]:
    """A region of ``size + 2 * margin`` pixels (less where the photo ends) of a photo, shrunk
    by a random factor from ``scale`` (area interpolation; raised where needed to fit).

    Returns:
        ``(region, factor)``: uint8 ``(h, w, 3)`` with ``min(h, w) >= size``, and the factor.
    """
    height, width = photo.shape[:2]
    factor = max(float(rng.uniform(*scale)), size / min(height, width))
    want = math.ceil((size + 2 * margin) / factor)
    rh, rw = min(height, want), min(width, want)
    if centre:
        top, left = (height - rh) // 2, (width - rw) // 2
    else:
        top, left = int(rng.integers(0, height - rh + 1)), int(rng.integers(0, width - rw + 1))
    region = photo[top : top + rh, left : left + rw]
    if factor < 1.0:
        th, tw = max(size, round(rh * factor)), max(size, round(rw * factor))
        region = cv2.resize(region, (tw, th), interpolation=cv2.INTER_AREA)
    return region, factor


def synthesize_pair(
    photo: np.ndarray,
    size: int,
    mix: BlurMix,
    rng: np.random.Generator,
    *,
    scale: tuple[float, float] = (1.0, 1.0),
    centre: bool = False,
) -> SourcePair:
    """Blur a crop of a sharp photo with a random degradation of ``mix``.

    A region of ``size + 2 * mix.margin`` pixels (less where the photo ends) is taken around
    the crop, optionally shrunk by a random factor from ``scale`` (area interpolation), blurred
    and noised by :func:`unblur.blur.degrade`, and the central ``size`` x ``size`` crop of it is
    returned, so the blur near the crop's edges sees real image content.

    Args:
        photo: uint8 ``(H, W, 3)`` sharp photo with ``min(H, W) >= size``.
        size: side of the pair.
        mix: blur kinds and effect ranges.
        rng: generator for every draw.
        scale: range of the shrink factor, in ``(0, 1]``; raised where needed to fit.
        centre: take the crop at the centre of the photo (validation) instead of at random.

    Returns:
        The pair; ``info`` has ``kind``, ``length``, ``jpeg_quality``, ``scale`` and, for
        uniform blur, the linear-light ``kernel``.

    Raises:
        ValueError: the photo is smaller than ``size``.
    """
    height, width = photo.shape[:2]
    if min(height, width) < size:
        raise ValueError(f"a {size}px crop does not fit a {height}x{width} photo")
    configs = mix.degradations()
    kinds = sorted({kind for kind, _ in configs})
    weights = np.array([mix.kinds[k] for k in kinds], dtype=np.float64)
    kind = kinds[int(rng.choice(len(kinds), p=weights / weights.sum()))]
    poisson = bool(rng.random() < mix.poisson_prob)
    region, factor = shrunk_region(photo, size, mix.margin, rng, scale=scale, centre=centre)
    sharp = to_float(region)
    blurred, truth = blur.degrade(sharp, configs[kind, poisson], rng=rng)
    quality = None
    if rng.random() < mix.jpeg_prob:
        quality = int(rng.integers(mix.jpeg_quality[0], mix.jpeg_quality[1] + 1))
    cy, cx = (sharp.shape[0] - size) // 2, (sharp.shape[1] - size) // 2
    window = (slice(cy, cy + size), slice(cx, cx + size))
    blurred = blurred[window]
    if quality is not None:  # after the crop, so that the 8x8 JPEG grid is the crop's
        blurred = blur.jpeg_compress(np.ascontiguousarray(blurred), quality=quality)
    info = {
        "kind": kind,
        "length": truth["length"],
        "jpeg_quality": quality,
        "scale": factor,
        "kernel": truth.get("kernel"),
    }
    target = truth["sharp"][window]  # clipped like the blurred picture where it saturates
    return SourcePair(np.ascontiguousarray(blurred), np.ascontiguousarray(target), info)


class SyntheticSource:
    """Sharp photos blurred by the forward model (:func:`synthesize_pair`).

    All photos of the folder are decoded at construction and kept as uint8. A sample picks a
    photo uniformly among those at least as large as the crop (smaller ones are skipped, not
    upscaled), crops it at random, optionally shrinks it by a random factor in ``scale`` (to
    train on the detail of high-resolution photos at a scale closer to that of the test
    images), and blurs it with a random degradation of ``mix``.

    Args:
        folder: folder of sharp photos (files directly inside it).
        mix: blur kinds and effect ranges (default :class:`BlurMix`).
        scale: range of the random shrink factor, ``0 < low <= high <= 1``.
        on_device: make sharp crops only (both images of the pair are the sharp crop); the
            training step blurs them on its device (:mod:`unblur.train.device_blur`).
        quiet: no progress bar while decoding.

    Raises:
        InputError: the folder is missing or holds no images, or an image is unreadable.
        ValueError: a bad ``scale``.
    """

    def __init__(
        self,
        folder: Path,
        mix: BlurMix | None = None,
        *,
        scale: tuple[float, float] = (1.0, 1.0),
        on_device: bool = False,
        quiet: bool = True,
    ) -> None:
        folder = _check_folder(folder)
        if not 0.0 < scale[0] <= scale[1] <= 1.0:
            raise ValueError(f"scale must satisfy 0 < low <= high <= 1, got {scale}")
        files = list_images(folder)
        if not files:
            raise InputError("folder holds no images", folder)
        self.name = folder.name if folder.name != "images" else folder.parent.name
        self.folder = folder
        self.mix = mix if mix is not None else BlurMix()
        self.scale = (float(scale[0]), float(scale[1]))
        self.on_device = on_device
        self.files = files
        self.photos = [load_rgb8(p) for p in _progress(files, f"reading {self.name}", quiet)]
        self._eligible: dict[int, list[int]] = {}

    def __len__(self) -> int:
        return len(self.photos)

    def eligible(self, size: int) -> list[int]:
        """Indices of the photos whose shorter side is at least ``size``.

        Raises:
            InputError: none is large enough.
        """
        if size not in self._eligible:
            fits = [i for i, p in enumerate(self.photos) if min(p.shape[:2]) >= size]
            if not fits:
                raise InputError(f"no photo is at least {size}x{size} pixels", self.folder)
            self._eligible[size] = fits
        return self._eligible[size]

    def sample(self, size: int, rng: np.random.Generator) -> SourcePair:
        """A random blurred/sharp pair of ``size`` x ``size`` pixels (with ``on_device``, the
        sharp crop twice)."""
        choices = self.eligible(size)
        index = choices[int(rng.integers(len(choices)))]
        if self.on_device:
            region, factor = shrunk_region(self.photos[index], size, 0, rng, scale=self.scale)
            cy, cx = (region.shape[0] - size) // 2, (region.shape[1] - size) // 2
            sharp = to_float(np.ascontiguousarray(region[cy : cy + size, cx : cx + size]))
            pair = SourcePair(sharp, sharp, {"kind": "on_device", "scale": factor})
        else:
            pair = synthesize_pair(self.photos[index], size, self.mix, rng, scale=self.scale)
        pair.info.update(source=self.name, file=self.files[index].name)
        return pair


def _name_selected(name: str, include: Sequence[str], exclude: Sequence[str]) -> bool:
    if include and not any(s in name for s in include):
        return False
    return not any(s in name for s in exclude)


def find_pairs(
    folder: Path, *, include: Sequence[str] = (), exclude: Sequence[str] = ()
) -> tuple[str, list[tuple[str, Path, Path]]]:
    """Find blurred/sharp file pairs under ``folder``, in either layout.

    * flat: ``folder/blur/NAME`` and ``folder/sharp/NAME``; a pair's name is ``NAME``;
    * nested (GoPro): ``folder/SCENE/blur/NAME`` and ``folder/SCENE/sharp/NAME``; a pair's
      name is ``SCENE/NAME``.

    A pair is kept if its name contains one of ``include`` (when given) and none of
    ``exclude``.

    Returns:
        ``(layout, pairs)``: ``"flat"`` or ``"nested"``, and sorted ``(name, blur, sharp)``.

    Raises:
        InputError: the folder is missing, has neither layout, a blurred file has no sharp
            partner, or the filter leaves nothing.
    """
    folder = _check_folder(folder)
    if (folder / "blur").is_dir() and (folder / "sharp").is_dir():
        layout, scenes = "flat", [(None, folder)]
    else:
        layout = "nested"
        scenes = [
            (d.name, d)
            for d in sorted(folder.iterdir())
            if (d / "blur").is_dir() and (d / "sharp").is_dir()
        ]
        if not scenes:
            raise InputError(
                "holds neither blur/ and sharp/ nor SCENE/blur/ and SCENE/sharp/ folders", folder
            )
    pairs = []
    for scene, base in scenes:
        for blurred in list_images(base / "blur"):
            name = blurred.name if scene is None else f"{scene}/{blurred.name}"
            if not _name_selected(name, include, exclude):
                continue
            sharp = base / "sharp" / blurred.name
            if not sharp.is_file():
                raise InputError("blurred image has no sharp partner of the same name", blurred)
            pairs.append((name, blurred, sharp))
    if not pairs:
        raise InputError(
            f"no blurred/sharp pairs (include={list(include)}, exclude={list(exclude)})", folder
        )
    return layout, pairs


class PairSource:
    """Real blurred/sharp pairs (e.g. GoPro), cropped at the same random place.

    Both layouts of :func:`find_pairs` are accepted. All pairs are decoded at construction
    and kept as uint8; pairs smaller than a requested crop are skipped.

    Args:
        folder: root of the pairs.
        include: keep only pairs whose name contains one of these substrings.
        exclude: drop pairs whose name contains one of these (e.g. a held-out scene).
        quiet: no progress bar while decoding.

    Raises:
        InputError: see :func:`find_pairs`; a pair whose images differ in size.
    """

    def __init__(
        self,
        folder: Path,
        *,
        include: Sequence[str] = (),
        exclude: Sequence[str] = (),
        quiet: bool = True,
    ) -> None:
        self.layout, found = find_pairs(folder, include=include, exclude=exclude)
        self.folder = Path(folder)
        self.name = self.folder.name
        self.names = [name for name, _, _ in found]
        self.pairs: list[tuple[np.ndarray, np.ndarray]] = []
        for _, blurred, sharp in _progress(found, f"reading {self.name}", quiet):
            b, s = load_rgb8(blurred), load_rgb8(sharp)
            if b.shape != s.shape:
                raise InputError(f"blurred {b.shape[:2]} and sharp {s.shape[:2]} differ", blurred)
            self.pairs.append((b, s))

    def __len__(self) -> int:
        return len(self.pairs)

    def sample(self, size: int, rng: np.random.Generator) -> SourcePair:
        """A random ``size`` x ``size`` crop of a random pair, same place in both images.

        Raises:
            InputError: no pair is large enough.
        """
        fits = [i for i, (b, _) in enumerate(self.pairs) if min(b.shape[:2]) >= size]
        if not fits:
            raise InputError(f"no pair is at least {size}x{size} pixels", self.folder)
        index = fits[int(rng.integers(len(fits)))]
        blurred, sharp = paired_crop(*self.pairs[index], size, rng)
        info = {"source": self.name, "file": self.names[index], "kind": "real"}
        return SourcePair(to_float(blurred), to_float(sharp), info)


class FrameSource:
    """GoPro-style blur from consecutive sharp frames, averaged in linear light.

    Each subfolder holding images is one sequence (frames in name order); if the folder
    itself holds images it is the one sequence. A sample draws a window length ``n`` from
    ``window`` (inclusive), a sequence (weighted by its number of windows), a start and a crop
    position; the blur is the linear-light mean of the ``n`` cropped frames
    (:func:`unblur.blur.average_window`, exact sRGB curve) and the target is the centre frame
    (for even ``n`` the later of the two middle ones). With probability ``srgb_prob`` the
    stored (sRGB-encoded) values are averaged instead, as GOPRO_Large's ``blur/`` folder does.
    Optional Gaussian read noise (sigma drawn from ``noise``, linear light) makes the average as
    noisy as a single exposure.

    Args:
        folder: the sequence folder, or a folder of sequence folders.
        window: inclusive range of frames per window, ``1 <= low <= high``.
        noise: range of the read-noise sigma, ``(0, 0)`` for none.
        srgb_prob: probability of averaging the stored values rather than linear light.
        quiet: no progress bar while decoding.

    Raises:
        InputError: missing folder, no sequence as long as ``window[0]``, frames of different
            sizes, unreadable frames.
        ValueError: a bad ``window`` or ``noise``.
    """

    def __init__(
        self,
        folder: Path,
        *,
        window: tuple[int, int] = (7, 13),
        noise: tuple[float, float] = (0.0, 0.0),
        srgb_prob: float = 0.0,
        quiet: bool = True,
    ) -> None:
        folder = _check_folder(folder)
        if not 0.0 <= srgb_prob <= 1.0:
            raise ValueError(f"srgb_prob must be in [0, 1], got {srgb_prob}")
        if not 1 <= window[0] <= window[1]:
            raise ValueError(f"window must satisfy 1 <= low <= high, got {window}")
        if not 0.0 <= noise[0] <= noise[1]:
            raise ValueError(f"noise must satisfy 0 <= low <= high, got {noise}")
        self.folder = folder
        self.name = folder.name
        self.window = (int(window[0]), int(window[1]))
        self.noise = (float(noise[0]), float(noise[1]))
        self.srgb_prob = float(srgb_prob)
        dirs = (
            [folder] if list_images(folder) else sorted(d for d in folder.iterdir() if d.is_dir())
        )
        self.sequences: list[list[np.ndarray]] = []
        for d in dirs:
            files = list_images(d)
            if len(files) < self.window[0]:
                continue
            frames = [load_rgb8(p) for p in _progress(files, f"reading {d.name}", quiet)]
            if len({f.shape for f in frames}) != 1:
                raise InputError("frames of the sequence differ in size", d)
            self.sequences.append(frames)
        if not self.sequences:
            raise InputError(f"no sequence of at least {self.window[0]} frames", folder)

    def __len__(self) -> int:
        return sum(len(s) for s in self.sequences)

    def sample(self, size: int, rng: np.random.Generator) -> SourcePair:
        """A random ``size`` x ``size`` averaged-frames pair.

        Raises:
            InputError: the frames are smaller than ``size``.
        """
        n = int(rng.integers(self.window[0], self.window[1] + 1))
        counts = np.array([max(0, len(s) - n + 1) for s in self.sequences], dtype=np.float64)
        if counts.sum() == 0:  # n longer than every sequence: use the longest whole
            counts = np.array([len(s) for s in self.sequences], dtype=np.float64)
        seq = self.sequences[int(rng.choice(len(self.sequences), p=counts / counts.sum()))]
        n = min(n, len(seq))
        start = int(rng.integers(0, len(seq) - n + 1))
        height, width = seq[0].shape[:2]
        if min(height, width) < size:
            raise InputError(f"frames are smaller than {size}x{size}", self.folder)
        top, left = crop_offsets(height, width, size, rng)
        crops = [to_float(f[top : top + size, left : left + size]) for f in seq[start : start + n]]
        stored = self.srgb_prob > 0 and bool(rng.random() < self.srgb_prob)
        blurred, sharp = blur.average_window(crops, 0, n, gamma=None if stored else "srgb")
        sigma = float(rng.uniform(*self.noise))
        if sigma > 0:
            noisy = blur.add_noise(io.srgb_to_linear(blurred), rng=rng, gaussian_sigma=sigma)
            blurred = io.linear_to_srgb(noisy)
        info = {
            "source": self.name,
            "kind": "frames",
            "window": n,
            "space": "stored" if stored else "linear",
            "start": start,
            "top": top,
            "left": left,
        }
        return SourcePair(blurred, sharp, info)


class SceneSource:
    """GoPro-style blur of moving scenes rendered from sharp photos
    (:func:`unblur.train.scenes.render_scene`).

    A sample picks a photo at least as large as the crop as the background (shrunk by a
    random factor in ``scale``, as :class:`SyntheticSource` does), and cuts the moving objects
    from photos of the same folder.

    Args:
        folder: folder of sharp photos (files directly inside it).
        motion: the scenes' motion ranges (default :class:`~unblur.train.scenes.SceneMotion`).
        scale: range of the background's random shrink factor, ``0 < low <= high <= 1``.
        quiet: no progress bar while decoding.

    Raises:
        InputError: the folder is missing or holds no images, or an image is unreadable.
        ValueError: a bad ``scale``.
    """

    def __init__(
        self,
        folder: Path,
        motion: SceneMotion | None = None,
        *,
        scale: tuple[float, float] = (1.0, 1.0),
        quiet: bool = True,
    ) -> None:
        self.photos = SyntheticSource(folder, scale=scale, quiet=quiet)
        self.name = self.photos.name
        self.motion = motion if motion is not None else SceneMotion()

    def __len__(self) -> int:
        return len(self.photos)

    def sample(self, size: int, rng: np.random.Generator) -> SourcePair:
        """A random ``size`` x ``size`` pair of a moving scene.

        Raises:
            InputError: no photo is at least ``size`` x ``size``.
        """
        choices = self.photos.eligible(size)
        index = choices[int(rng.integers(len(choices)))]
        region, factor = shrunk_region(
            self.photos.photos[index], size, self.motion.margin(size), rng, scale=self.photos.scale
        )
        blurred, sharp, info = render_scene(
            to_float(region), self.photos.photos, size, self.motion, rng
        )
        info.update(source=self.name, file=self.photos.files[index].name, scale=factor)
        return SourcePair(blurred, sharp, info)


# --------------------------------------------------------------------------------------------
# source specifications (what a training config names)
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SyntheticSpec:
    """A :class:`SyntheticSource` in a config. ``path`` is relative to the data root."""

    path: str
    kind: Literal["synthetic"] = "synthetic"
    weight: float = 1.0
    blur: BlurMix = field(default_factory=BlurMix)
    scale: tuple[float, float] = (1.0, 1.0)
    on_device: bool = False


@dataclass(frozen=True)
class PairSpec:
    """A :class:`PairSource` in a config. ``path`` is relative to the data root."""

    path: str
    kind: Literal["pairs"] = "pairs"
    weight: float = 1.0
    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()


@dataclass(frozen=True)
class FrameSpec:
    """A :class:`FrameSource` in a config. ``path`` is relative to the data root."""

    path: str
    kind: Literal["frames"] = "frames"
    weight: float = 1.0
    window: tuple[int, int] = (7, 13)
    noise: tuple[float, float] = (0.0, 0.0)
    srgb_prob: float = 0.0


@dataclass(frozen=True)
class SceneSpec:
    """A :class:`SceneSource` in a config. ``path`` is relative to the data root."""

    path: str
    kind: Literal["scenes"] = "scenes"
    weight: float = 1.0
    motion: SceneMotion = field(default_factory=SceneMotion)
    scale: tuple[float, float] = (1.0, 1.0)


@dataclass(frozen=True)
class DeconvolvedSpec:
    """A :class:`unblur.train.deconvolved.DeconvolvedSource` in a config: photos blurred by one
    kernel and deconvolved with a wrong estimate of it. ``path`` is relative to the data root."""

    path: str
    kind: Literal["deconvolved"] = "deconvolved"
    weight: float = 1.0
    blur: BlurMix = field(default_factory=lambda: BlurMix(kinds={"shake": 0.7, "linear": 0.3}))
    scale: tuple[float, float] = (1.0, 1.0)
    error: KernelError = field(default_factory=KernelError)


@dataclass(frozen=True)
class GraphicsSpec:
    """A :class:`unblur.train.graphics.GraphicsSource` in a config: graphics drawn at random
    (text, flat shapes, lines), blurred by the forward model; no folder (``path`` is unused)."""

    kind: Literal["graphics"] = "graphics"
    path: str = ""
    weight: float = 1.0
    blur: BlurMix = field(default_factory=BlurMix)


SourceSpec = SyntheticSpec | PairSpec | FrameSpec | SceneSpec | DeconvolvedSpec | GraphicsSpec


def build_source(spec: SourceSpec, root: Path, *, quiet: bool = True) -> Source:
    """Make the source a spec describes; relative paths are taken under ``root``.

    Raises:
        InputError: missing folder or unreadable data (the path is named).
    """
    if isinstance(spec, GraphicsSpec):
        from unblur.train.graphics import GraphicsSource

        return GraphicsSource(spec.blur)
    folder = Path(root) / spec.path
    if isinstance(spec, SyntheticSpec):
        return SyntheticSource(
            folder, spec.blur, scale=spec.scale, on_device=spec.on_device, quiet=quiet
        )
    if isinstance(spec, PairSpec):
        return PairSource(folder, include=spec.include, exclude=spec.exclude, quiet=quiet)
    if isinstance(spec, SceneSpec):
        return SceneSource(folder, spec.motion, scale=spec.scale, quiet=quiet)
    if isinstance(spec, DeconvolvedSpec):
        from unblur.train.deconvolved import DeconvolvedSource

        return DeconvolvedSource(folder, spec.blur, scale=spec.scale, error=spec.error, quiet=quiet)
    return FrameSource(
        folder, window=spec.window, noise=spec.noise, srgb_prob=spec.srgb_prob, quiet=quiet
    )


# --------------------------------------------------------------------------------------------
# the pool
# --------------------------------------------------------------------------------------------


@dataclass
class _MadePairs:
    pairs: np.ndarray  # uint8 (2, n, 3, C, C)
    origin: np.ndarray  # source index of each pair


@dataclass
class _StagedRefresh:
    slots: np.ndarray
    versions: np.ndarray
    made: _MadePairs | None = None
    future: Future[_MadePairs] | None = None


class PairPool:
    """``N`` pre-made pairs in memory, cut into random training batches at almost no cost.

    The pool is one uint8 tensor ``pairs`` of shape ``(2, N, 3, C, C)`` (index 0: blurred,
    1: sharp); it takes ``6 * N * C * C`` bytes (3000 pairs of 192 px: 0.66 GB). Slot ``i``
    holds a pair from source ``j`` with probability ``weights[j] / sum(weights)``, made with
    the generator ``derive_rng(TAG_SLOT, seed, stream, i, version[i])``.

    Refreshing is staged: :meth:`begin_refresh` draws the slots of refresh number ``k`` with
    ``derive_rng(TAG_REFRESH, seed, stream, k)`` and makes their new pairs aside (now, or in
    background threads), :meth:`finish_refresh` swaps them in. Training begins refresh ``k``
    at one refresh point and finishes it at the next, so on a GPU the pairs are made while the
    network trains, and the content of the pool at any step depends only on the seeds and on
    how many refreshes were finished and begun (:meth:`restore`), never on timing.

    Args:
        sources: where pairs come from.
        weights: relative frequency of each source, ``>= 0`` with a positive sum.
        size: number of pairs ``N``.
        crop: side ``C`` of each pair.
        seed: base seed (``>= 0``).
        stream: a second seed (``>= 0``), e.g. the rank of a distributed process, so that
            every process has its own pool.
        workers: threads that make pairs (the forward model mostly releases the GIL).
        quiet: no progress bar.

    Raises:
        ValueError: bad sizes, weights or seeds.
    """

    def __init__(
        self,
        sources: Sequence[Source],
        weights: Sequence[float],
        *,
        size: int,
        crop: int,
        seed: int,
        stream: int = 0,
        workers: int = 1,
        quiet: bool = True,
    ) -> None:
        if len(sources) == 0 or len(sources) != len(weights):
            raise ValueError(f"need one weight per source, got {len(sources)} and {len(weights)}")
        w = np.asarray(weights, dtype=np.float64)
        if not np.all(np.isfinite(w)) or np.any(w < 0) or w.sum() <= 0:
            raise ValueError(f"weights must be >= 0 with a positive sum, got {list(weights)}")
        if size < 1 or crop < 1 or workers < 1:
            raise ValueError(f"size, crop and workers must be >= 1, got {size}, {crop}, {workers}")
        if seed < 0 or stream < 0:
            raise ValueError(f"seed and stream must be >= 0, got {seed}, {stream}")
        self.sources = list(sources)
        self.probs = w / w.sum()
        self.size, self.crop = int(size), int(crop)
        self.seed, self.stream = int(seed), int(stream)
        self.workers, self.quiet = int(workers), quiet
        self.pairs = torch.zeros((2, self.size, 3, self.crop, self.crop), dtype=torch.uint8)
        self.versions = np.zeros(self.size, dtype=np.int64)
        self.origin = np.full(self.size, -1, dtype=np.int64)  # source of each slot
        self.refreshes = 0  # refreshes finished
        self._staged: _StagedRefresh | None = None
        self._executor: ThreadPoolExecutor | None = None

    @property
    def nbytes(self) -> int:
        """Memory held by the pairs, in bytes."""
        return self.pairs.numel() * self.pairs.element_size()

    @property
    def pending(self) -> bool:
        """Whether a refresh has begun and not yet finished."""
        return self._staged is not None

    def build(self) -> None:
        """Make every slot at its current version (the initial build)."""
        slots = np.arange(self.size)
        self._store(slots, self._make(slots, self.versions[slots], "making pairs"))

    def refresh(self, fraction: float) -> int:
        """Remake a random ``fraction`` of the slots (at least one) at once.

        Same as :meth:`begin_refresh` followed by :meth:`finish_refresh`.

        Returns:
            The number of slots remade.
        """
        self.begin_refresh(fraction)
        return self.finish_refresh()

    def begin_refresh(self, fraction: float, *, background: bool = False) -> None:
        """Choose the slots of the next refresh and make their new pairs aside.

        Args:
            fraction: share of the pool to remake, in ``(0, 1]``.
            background: make them in background threads (for a GPU run, where the CPU is
                otherwise idle); else now, in this call.

        Raises:
            RuntimeError: a refresh is already pending.
        """
        if self._staged is not None:
            raise RuntimeError("finish the pending refresh before beginning another")
        slots = self._refresh_slots(self.refreshes + 1, fraction)
        versions = self.versions[slots] + 1
        if background:
            self._executor = self._executor or ThreadPoolExecutor(max_workers=1)
            # few threads: pure-Python parts of the forward model hold the GIL, which the
            # training loop needs to launch its GPU kernels
            threads = min(self.workers, 4)
            future = self._executor.submit(self._make, slots, versions, None, threads)
            self._staged = _StagedRefresh(slots, versions, future=future)
        else:
            self._staged = _StagedRefresh(slots, versions, made=self._make(slots, versions, None))

    def finish_refresh(self) -> int:
        """Swap the pending refresh's pairs in (waiting for them if needed).

        Returns:
            The number of slots remade.

        Raises:
            RuntimeError: no refresh is pending.
        """
        staged = self._staged
        if staged is None:
            raise RuntimeError("no refresh is pending")
        made = staged.made if staged.future is None else staged.future.result()
        assert made is not None
        self._staged = None
        self.versions[staged.slots] = staged.versions
        self._store(staged.slots, made)
        self.refreshes += 1
        return len(staged.slots)

    def restore(
        self, refreshes: int, fraction: float, *, pending: bool = False, background: bool = False
    ) -> None:
        """Rebuild the pool exactly as it is after ``refreshes`` finished refreshes.

        Costs one build, whatever the number of refreshes (only the slot choices are replayed).

        Args:
            refreshes: finished refreshes.
            fraction: their fraction.
            pending: a further refresh had begun (it is begun again).
            background: make that pending refresh in background threads.
        """
        self.close()
        self._staged = None
        self.versions[:] = 0
        for k in range(1, refreshes + 1):
            self.versions[self._refresh_slots(k, fraction)] += 1
        self.refreshes = refreshes
        self.build()
        if pending:
            self.begin_refresh(fraction, background=background)

    def close(self) -> None:
        """Wait for background work and release its thread (the pool stays usable)."""
        if self._executor is not None:
            self._executor.shutdown(wait=True)
            self._executor = None

    def _refresh_slots(self, number: int, fraction: float) -> np.ndarray:
        if not 0.0 < fraction <= 1.0:
            raise ValueError(f"fraction must be in (0, 1], got {fraction}")
        rng = derive_rng(TAG_REFRESH, self.seed, self.stream, number)
        count = max(1, round(fraction * self.size))
        return np.sort(rng.choice(self.size, size=count, replace=False))

    def _make(
        self,
        slots: np.ndarray,
        versions: np.ndarray,
        what: str | None,
        threads: int | None = None,
    ) -> _MadePairs:
        pairs = np.empty((2, len(slots), 3, self.crop, self.crop), dtype=np.uint8)
        origin = np.empty(len(slots), dtype=np.int64)

        def make(index: int) -> None:
            slot, version = int(slots[index]), int(versions[index])
            rng = derive_rng(TAG_SLOT, self.seed, self.stream, slot, version)
            j = int(rng.choice(len(self.sources), p=self.probs))
            pair = self.sources[j].sample(self.crop, rng)
            pairs[0, index] = to_uint8(pair.blur).transpose(2, 0, 1)
            pairs[1, index] = to_uint8(pair.sharp).transpose(2, 0, 1)
            origin[index] = j

        bar = progress_bar(
            total=len(slots),
            desc=what or "pairs",
            unit="pair",
            level=1,
            enabled=not self.quiet and what is not None,
        )
        with ThreadPoolExecutor(max_workers=threads or self.workers) as pool:
            for _ in pool.map(make, range(len(slots))):
                bar.update()
        bar.close()
        return _MadePairs(pairs, origin)

    def _store(self, slots: np.ndarray, made: _MadePairs) -> None:
        self.pairs.numpy()[:, slots] = made.pairs  # the numpy view shares the tensor's memory
        self.origin[slots] = made.origin

    def sample_batch(
        self,
        batch: int,
        patch: int,
        rng: np.random.Generator,
        *,
        device: torch.device | None = None,
        augment: bool = True,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """A batch of random sub-crops with random symmetries (:class:`PairedAugment`).

        Args:
            batch: number of samples ``B``.
            patch: side ``P <= C`` of each crop.
            rng: generator for slots, positions and symmetries.
            device: where the batch goes (uint8 is moved, then converted there).
            augment: flips and 90-degree turns; without, only crops.

        Returns:
            ``(blurred, sharp)``, float32 ``(B, 3, P, P)`` in ``[0, 1]``.

        Raises:
            ValueError: ``patch`` larger than the pool's crops, ``batch < 1``.
        """
        blurred, sharp, _ = self.sample_parts(batch, patch, rng, device=device, augment=augment)
        return blurred, sharp

    def sample_parts(
        self,
        batch: int,
        patch: int,
        rng: np.random.Generator,
        *,
        regions: dict[int, int] | None = None,
        device: torch.device | None = None,
        augment: bool = True,
    ) -> tuple[torch.Tensor, torch.Tensor, dict[int, torch.Tensor]]:
        """:meth:`sample_batch`, with the slots of sources made on the device set apart.

        Args:
            batch, patch, rng, device, augment: as :meth:`sample_batch` (for the slots of the
                other sources, the same draws in the same order).
            regions: source index -> side ``R`` (``patch <= R <= C``): the slots of these
                sources give crops of ``R`` pixels of their sharp image, to be blurred on the
                device (:func:`unblur.train.device_blur.blur_regions`).

        Returns:
            ``(blurred, sharp, parts)``: the pairs of the other slots, float32
            ``(B', 3, P, P)``, and per source of ``regions`` its sharp regions, float32
            ``(n, 3, R, R)`` in ``[0, 1]`` (``B' + sum(n) == batch``).
        """
        regions = regions or {}
        sides = [patch, *regions.values()]
        if batch < 1 or not all(1 <= side <= self.crop for side in sides):
            raise ValueError(
                f"need batch >= 1 and 1 <= patch, region <= {self.crop}, got {batch}, {sides}"
            )
        slots = rng.integers(0, self.size, size=batch)
        apart = [int(self.origin[s]) in regions for s in slots]
        pin = device is not None and torch.device(device).type == "cuda"
        plain = batch - sum(apart)
        out = torch.empty((2, plain, 3, patch, patch), dtype=torch.uint8, pin_memory=pin)
        store, target = self.pairs.numpy(), out.numpy()
        crops: dict[int, list[np.ndarray]] = {}
        k = 0
        for slot, aside in zip(slots, apart, strict=True):
            source = int(self.origin[slot])
            side = regions[source] if aside else patch
            aug = PairedAugment.sample(
                self.crop, self.crop, side, rng, flips=augment, rotate=augment
            )
            if aside:
                crops.setdefault(source, []).append(np.ascontiguousarray(aug(store[1, int(slot)])))
            else:
                target[:, k] = aug(store[:, int(slot)])
                k += 1
        if device is not None:
            out = out.to(device, non_blocking=True)
        images = out.float().div_(255.0)
        parts = {
            source: torch.from_numpy(np.stack(found)).to(device or "cpu").float().div_(255.0)
            for source, found in sorted(crops.items())
        }
        return images[0], images[1], parts


# --------------------------------------------------------------------------------------------
# validation
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SyntheticValSpec:
    """Held-out photos blurred once with a fixed seed: centre crops of ``crop`` pixels."""

    name: str
    path: str
    kind: Literal["synthetic"] = "synthetic"
    crop: int = 256
    count: int | None = None
    blur: BlurMix = field(default_factory=lambda: BlurMix(kinds={"shake": 1.0}))


@dataclass(frozen=True)
class PairValSpec:
    """Held-out real pairs: centre crops of ``crop`` pixels, or whole images (``None``)."""

    name: str
    path: str
    kind: Literal["pairs"] = "pairs"
    crop: int | None = None
    count: int | None = None
    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()


@dataclass(frozen=True)
class DeconvolvedValSpec:
    """Held-out photos blurred by one kernel and deconvolved with a wrong estimate of it, once
    with a fixed seed (:func:`unblur.train.deconvolved.deconvolved_pair`): centre crops of
    ``crop`` pixels. What the network sees where ``auto`` runs it on a deconvolution."""

    name: str
    path: str
    kind: Literal["deconvolved"] = "deconvolved"
    crop: int = 256
    count: int | None = None
    blur: BlurMix = field(default_factory=lambda: BlurMix(kinds={"shake": 1.0}))
    error: KernelError = field(default_factory=KernelError)


ValSetSpec = SyntheticValSpec | PairValSpec | DeconvolvedValSpec


@dataclass(frozen=True)
class ValPair:
    """One validation pair: float32 ``(H, W, 3)`` sRGB images in ``[0, 1]``."""

    set_name: str
    name: str
    blur: np.ndarray
    sharp: np.ndarray


def _centre(image: np.ndarray, size: int | None) -> np.ndarray:
    if size is None:
        return image
    h, w = image.shape[:2]
    ch, cw = min(size, h), min(size, w)
    top, left = (h - ch) // 2, (w - cw) // 2
    return image[top : top + ch, left : left + cw]


def _val_pair(
    spec: SyntheticValSpec | DeconvolvedValSpec,
    photo: np.ndarray,
    path: Path,
    rng: np.random.Generator,
) -> SourcePair:
    """One fixed validation pair of a synthetic spec: the photo's centre crop, blurred (and,
    for a deconvolved spec, deconvolved with a wrong kernel, away from the borders)."""
    if isinstance(spec, SyntheticValSpec):
        return synthesize_pair(photo, min(spec.crop, *photo.shape[:2]), spec.blur, rng, centre=True)
    from unblur.train.deconvolved import deconvolved_pair

    size = min(spec.crop, min(photo.shape[:2]) - 2 * spec.blur.margin)
    if size < 16:
        raise InputError(f"too small for a {spec.name} validation crop", path)
    return deconvolved_pair(photo, size, spec.blur, spec.error, rng, centre=True)


def build_val_set(
    specs: Sequence[ValSetSpec], root: Path, *, seed: int = 0, quiet: bool = True
) -> list[ValPair]:
    """The fixed validation pairs: the same list for the same specs, files and seed.

    Synthetic sets take the centre ``crop`` (or the largest centred square that fits, for a
    smaller photo) of each of the first ``count`` photos in name order and blur it with
    ``derive_rng(TAG_VAL, seed, set_index, photo_index)``. Pair sets take the centre ``crop``
    (or the whole image) of the first ``count`` selected pairs.

    Args:
        specs: the sets, each with a unique name.
        root: data root; relative paths are taken under it.
        seed: validation seed (independent of the training seed).
        quiet: no progress bars.

    Returns:
        The pairs, set by set, in name order.

    Raises:
        InputError: missing folders or unreadable images.
        ValueError: two sets with one name.
    """
    names = [s.name for s in specs]
    if len(set(names)) != len(names):
        raise ValueError(f"validation set names must be unique, got {names}")
    out: list[ValPair] = []
    for k, spec in enumerate(specs):
        folder = _check_folder(Path(root) / spec.path)
        if isinstance(spec, SyntheticValSpec | DeconvolvedValSpec):
            files = list_images(folder)[: spec.count]
            if not files:
                raise InputError("folder holds no images", folder)
            for i, path in enumerate(_progress(files, f"validation {spec.name}", quiet)):
                photo = load_rgb8(path)
                rng = derive_rng(TAG_VAL, seed, k, i)
                pair = _val_pair(spec, photo, path, rng)
                out.append(ValPair(spec.name, path.name, pair.blur, pair.sharp))
        else:
            _, found = find_pairs(folder, include=spec.include, exclude=spec.exclude)
            for name, blurred, sharp in _progress(found[: spec.count], spec.name, quiet):
                b, s = load_rgb8(blurred), load_rgb8(sharp)
                if b.shape != s.shape:
                    raise InputError(
                        f"blurred {b.shape[:2]} and sharp {s.shape[:2]} differ", blurred
                    )
                out.append(
                    ValPair(
                        spec.name,
                        name,
                        to_float(_centre(b, spec.crop)),
                        to_float(_centre(s, spec.crop)),
                    )
                )
    return out
