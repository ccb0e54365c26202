"""Restore whole photos with a network: device, precision and tiled inference.

:class:`Deblurrer` wraps a restoration network (by registry name, or any
``nn.Module`` that maps a ``(B, 3, H, W)`` image to a restored one of the same
shape) and runs it on images of any size:

* **device**: ``"auto"`` picks CUDA, then Apple's MPS, then the CPU; asking for
  a device that is not there is a one-line :class:`~unblur.errors.ConfigError`.
* **precision**: ``"fp32"``, or ``"fp16"`` / ``"bf16"`` through
  :func:`torch.autocast` (the weights stay float32; fp16 needs a GPU).
* **tiling**: large images are cut into ``tile`` x ``tile`` pieces overlapping
  by at least ``tile_overlap`` pixels, placed evenly so that every tile lies
  inside the image and starts on the network's downsampling grid (a multiple
  of ``model.multiple``: a U-Net is not shift invariant, and a tile shifted off
  the grid disagrees with the whole image everywhere, not just at its edges;
  on the grid, tiled and whole agree to about 80 dB PSNR when the overlap
  covers the network's context). Each tile's output is weighted by a separable raised-cosine
  ramp that falls towards the tile's inner edges (where it lacks context), and
  the weighted sum is divided by the sum of the weights, so that there are no
  seams. Only one tile is on the device at a time and the result is
  accumulated in place in the float32 output, so memory grows with the image
  only by the input and output arrays themselves.
* **local pooling**: NAFNet's channel attention pools globally while
  training; on inputs larger than its training crops it can pool over a window
  instead (Chu et al. 2022, "Improving image restoration by revisiting global
  information aggregation"), which also makes tiles agree with the whole image.
  ``local_pool`` sets the window, ``None`` pooling over the whole tile. By default
  it is the window the weights were validated with, written in their safetensors
  metadata (``local_pool``: pixels, or ``global``) by the training and the ship
  gate; for weights without it, the model's registry ``meta["local_pool"]``
  (nafnet-fast: ``None``, global over the 1024 px tiles, measured best on real
  GoPro-type frames and as good on the synthetic kinds), else
  ``DEFAULT_LOCAL_POOL`` = 1.5 x a 128 px crop.
* **turns and flips** (``tta``, the self-ensemble of Lim et al. 2017): the network also
  restores each tile flipped left-right, upside down and both, and the same four of its
  transpose (the eight symmetries of the square, each undone on the result), and the
  results are averaged. The four flips gain +0.03 to +0.14 dB on every evaluation set (+0.14
  on real GoPro blur), the four transposes +0.02 to +0.03 dB more (BENCHMARKS.md), at eight
  times the network's cost. ``tta=True`` runs all eight; ``tta="auto"`` spends at most
  four passes of a :data:`TTA_AUTO_MAX_PIXELS` picture: all eight up to half of it (1280x720
  and smaller), the four flips up to it (full HD), one pass above, where more would cost
  a minute (a 12-megapixel photo: 27 s with one pass, 87 s with four, on two CPU cores).

The network works on the stored (sRGB-encoded) values, as it was trained; gray
images are given to it as three equal channels and its output is averaged back
to one.

Example:
    >>> import numpy as np, torch
    >>> from unblur.models.restore_net import NAFNet
    >>> net = NAFNet(width=8, enc_blocks=(1, 1), middle_blocks=1, dec_blocks=(1, 1))
    >>> deblurrer = Deblurrer(net, device="cpu", tile=64, tile_overlap=16, local_pool=32)
    >>> deblurrer.restore(np.full((90, 150, 3), 0.5, np.float32)).shape
    (90, 150, 3)
"""

from __future__ import annotations

import contextlib
import functools
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from torch import nn

from unblur.errors import ConfigError, ModelError

__all__ = [
    "DEFAULT_LOCAL_POOL",
    "DEFAULT_MODEL",
    "DEFAULT_TILE",
    "DEFAULT_TILE_OVERLAP",
    "LOCAL_POOL_KEY",
    "PASSES",
    "PRECISIONS",
    "TTA_AUTO_MAX_PIXELS",
    "Deblurrer",
    "cached_deblurrer",
    "check_tta",
    "deblur",
    "default_local_pool",
    "format_local_pool",
    "load_restore_model",
    "parse_local_pool",
    "passes_name",
    "resolve_device",
    "tile_grid",
    "weights_local_pool",
]

DEFAULT_MODEL: str = "nafnet-fast"
"""The restoration model used when none is named."""

DEFAULT_TILE: int = 1024
"""Tile side in pixels used by default (the command line's ``--tile``). With global pooling
in each tile, larger tiles gave more on real GoPro-type frames (GOPR0374, 1280x720: +0.59 dB
at 512, +0.63 at 1024), for about 0.23 GB more peak memory than 512 px tiles on the CPU
(benchmarks/restore_speed.py: 1.1 GB for a 24-megapixel photo)."""

DEFAULT_TILE_OVERLAP: int = 64
"""Least overlap between neighbouring tiles, in pixels."""

DEFAULT_LOCAL_POOL: int = 192
"""Channel-attention pooling window for registered models whose spec does not name one:
1.5 x the 128-pixel training crop."""

LOCAL_POOL_KEY: str = "local_pool"
"""Safetensors metadata key (and training-state key) of the channel-attention pooling window
the weights were validated with: a number of input pixels, or ``global``."""

Precision = Literal["fp32", "fp16", "bf16"]
PRECISIONS: tuple[str, ...] = ("fp32", "fp16", "bf16")

TTA_AUTO_MAX_PIXELS: int = 2_100_000
"""Largest picture (width x height) that ``tta="auto"`` restores with the four flips: 1920x1080
(2.07 MP) and smaller; it restores pictures of at most half of it (1280x720 and smaller) with
all eight turns and flips, the same network time. On two CPU cores a 1280x720 frame took
1.2 s with one pass and 3.9 s with four, a 4000x3000 photo 27 s and 87 s (BENCHMARKS.md,
"The flips by default")."""

Tta = bool | Literal["auto"]
"""Whether a :class:`Deblurrer` averages over the turns and flips: always (all eight), never,
or ``"auto"`` (:meth:`Deblurrer.passes_for`)."""

ProgressCallback = Callable[[int, int], None]
"""Called as ``progress(done, total)`` after each tile."""

_AUTO = "auto"

_FLIPS: tuple[tuple[int, ...], ...] = ((), (-1,), (-2,), (-2, -1))
"""The flips of the self-ensemble: none, left-right, upside down, both; the eight passes
add them to the transpose too."""

PASSES: tuple[int, ...] = (1, 4, 8)
"""How many network passes a tile can be averaged over: itself, its four flips, or the
four flips of it and of its transpose."""


def passes_name(passes: int) -> str:
    """How people read a self-ensemble of ``passes`` network passes ("" for one pass)."""
    return {1: "", 4: "averaged over 4 flips", 8: "averaged over 8 turns and flips"}[passes]


def check_tta(tta: object) -> Tta:
    """``True``, ``False`` or ``"auto"``, as given.

    Raises:
        ConfigError: anything else.
    """
    if tta == _AUTO:
        return _AUTO
    if isinstance(tta, bool | np.bool_):
        return bool(tta)
    raise ConfigError(f"tta must be True, False or 'auto', got {tta!r}")


# --------------------------------------------------------------------------- devices


def resolve_device(device: str | torch.device = _AUTO) -> torch.device:
    """Turn ``"auto"``, ``"cpu"``, ``"cuda"``, ``"cuda:N"`` or ``"mps"`` into a device that exists.

    Args:
        device: ``"auto"`` takes CUDA if available, else MPS, else the CPU.

    Returns:
        The :class:`torch.device`; plain ``"cuda"`` becomes the current CUDA device.

    Raises:
        ConfigError: unknown name, or a device that this machine or this build of
            torch does not have.

    Example:
        >>> resolve_device("cpu")
        device(type='cpu')
    """
    if isinstance(device, torch.device):
        name = str(device)
    else:
        name = str(device).strip().lower()
    if name == _AUTO:
        if torch.cuda.is_available():
            return torch.device("cuda", torch.cuda.current_device())
        if _mps_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        dev = torch.device(name)
    except (RuntimeError, ValueError):
        raise ConfigError(
            f"unknown device {device!r}; use auto, cpu, cuda, cuda:N or mps"
        ) from None
    if dev.type == "cpu":
        return dev
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError(
                f"device {name!r} asked for, but CUDA is not available (no NVIDIA GPU, or "
                f"torch {torch.__version__} was built without CUDA); use --device cpu or auto"
            )
        count = torch.cuda.device_count()
        index = torch.cuda.current_device() if dev.index is None else dev.index
        if index >= count:
            raise ConfigError(f"device {name!r} asked for, but there are {count} CUDA devices")
        return torch.device("cuda", index)
    if dev.type == "mps":
        if not _mps_available():
            raise ConfigError(
                f"device {name!r} asked for, but Apple's MPS is not available on this machine"
            )
        return dev
    raise ConfigError(f"unsupported device {name!r}; use auto, cpu, cuda, cuda:N or mps")


def _mps_available() -> bool:
    backend = getattr(torch.backends, "mps", None)
    return bool(backend is not None and backend.is_available())


def _autocast(device: torch.device, precision: str) -> contextlib.AbstractContextManager[object]:
    if precision == "fp32":
        return contextlib.nullcontext()
    dtype = torch.float16 if precision == "fp16" else torch.bfloat16
    return torch.autocast(device_type=device.type, dtype=dtype)


def _check_precision(precision: str, device: torch.device) -> None:
    if precision not in PRECISIONS:
        raise ConfigError(f"unknown precision {precision!r}; use one of {', '.join(PRECISIONS)}")
    if precision == "fp16" and device.type not in ("cuda", "mps"):
        raise ConfigError(
            f"fp16 needs a GPU (cuda or mps), not {device.type}; use bf16 or fp32 on the CPU"
        )


# --------------------------------------------------------------------------- models


def load_restore_model(
    name: str = DEFAULT_MODEL, weights: str | Path | None = None, *, prefix: str = ""
) -> nn.Module:
    """Build a registered restoration model and load its weights (never unpickled).

    Args:
        name: registry name of a ``task="restore"`` model, e.g. ``"nafnet-fast"``, or of
            a ``task="polish"`` one (the same kind of network, trained to clean a
            deconvolution: ``"nafnet-polish"``).
        weights: a safetensors file for that architecture; ``None`` loads the shipped
            weights (``unblur/models/weights/<name>.safetensors``).
        prefix: only load tensors whose names start with this (stripped), e.g.
            ``"params_ema."`` in a training checkpoint.

    Returns:
        The model on the CPU, in eval mode, float32.

    Raises:
        ModelError: unknown or non-restoration name, shipped weights missing (the
            message names the expected file), or a weights file that does not fit.
    """
    from unblur.models.registry import create_model, get_spec, load_weights

    spec = get_spec(name)
    if spec.task not in ("restore", "polish"):
        raise ModelError(f"model {name!r} is a {spec.task} model, not a restoration model")
    model = create_model(name, pretrained=False)
    if weights is None:
        path = spec.weights_path
        if path is None or not path.is_file():
            shown = path if path is not None else f"{name}.safetensors"
            raise ModelError(
                f"model {name!r} has no weights file yet (expected {shown}); "
                "pass a weights file with --weights FILE, or train the model first"
            )
        weights = path
    load_weights(model, weights, prefix=prefix)
    return model.eval()


def format_local_pool(size: int | None) -> str:
    """The metadata text of a pooling window: ``"global"`` or its size in pixels."""
    return "global" if size is None else str(int(size))


def parse_local_pool(text: str) -> int | None:
    """The pooling window written by :func:`format_local_pool` (``None``: global).

    Raises:
        ModelError: neither ``global`` nor a positive whole number.
    """
    value = str(text).strip().lower()
    if value == "global":
        return None
    if not value.isdigit() or int(value) < 1:
        raise ModelError(f"bad {LOCAL_POOL_KEY!r} in the weights' metadata: {text!r}")
    return int(value)


def weights_local_pool(path: str | Path) -> str | None:
    """The pooling window written in a weights file or a training checkpoint, if any.

    Only the safetensors header is read: plain weights keep the window as metadata
    ``local_pool``, a training checkpoint in its state (metadata ``unblur_state``, JSON).
    ``None`` when the file says nothing, is missing, or is not safetensors (loading the
    weights reports that).
    """
    import json

    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), framework="pt", device="cpu") as f:
            meta = dict(f.metadata() or {})
    except (SafetensorError, OSError, ValueError, RuntimeError):
        return None
    if LOCAL_POOL_KEY in meta:
        return meta[LOCAL_POOL_KEY]
    try:
        state = json.loads(meta.get("unblur_state", "{}"))
    except ValueError:
        return None
    value = state.get(LOCAL_POOL_KEY) if isinstance(state, dict) else None
    return None if value is None else str(value)


def default_local_pool(name: str, weights: str | Path | None = None) -> int | None:
    """The pooling window a named model runs with by default (``None``: global).

    The window written in ``weights`` (else in the shipped file), else the registry's
    ``meta["local_pool"]``, else :data:`DEFAULT_LOCAL_POOL`.

    Raises:
        ModelError: unknown model, or a bad window in the metadata.
    """
    from unblur.models.registry import get_spec

    spec = get_spec(name)
    path = Path(weights) if weights is not None else spec.weights_path
    written = None if path is None else weights_local_pool(path)
    if written is not None:
        return parse_local_pool(written)
    value = spec.meta.get(LOCAL_POOL_KEY, DEFAULT_LOCAL_POOL)
    return None if value is None else int(value)


# --------------------------------------------------------------------------- tiles


def tile_grid(length: int, tile: int, overlap: int, multiple: int = 1) -> list[int]:
    """Start offsets of tiles covering ``length`` pixels, evenly spread, all inside.

    Every start is a multiple of ``multiple``, so that each tile sees the network's
    downsampling grid exactly where the whole image would (a U-Net is not shift
    invariant: a tile shifted by a pixel gives a different result). The first tile
    starts at 0 and the last ends at ``length`` (it may be shorter than ``tile``);
    neighbouring tiles overlap by at least ``overlap`` pixels.

    Args:
        length: image size along the axis.
        tile: tile size along the axis (``>= 1``).
        overlap: least overlap, ``0 <= overlap < tile``.
        multiple: the network's size multiple (``model.multiple``; 1 for none).

    Returns:
        Sorted start offsets; ``[0]`` if one tile covers everything.

    Raises:
        ConfigError: ``tile - overlap`` is less than ``multiple``.

    Example:
        >>> tile_grid(300, 128, 32)
        [0, 86, 172]
        >>> tile_grid(300, 128, 32, multiple=16)
        [0, 96, 176]
    """
    if length <= tile:
        return [0]
    stride = (tile - overlap) // multiple * multiple
    if stride < multiple:
        raise ConfigError(
            f"tile {tile} with overlap {overlap} leaves less than the network's "
            f"{multiple}-pixel step; use a larger tile or a smaller overlap"
        )
    last = math.ceil((length - tile) / multiple) * multiple
    n = 1 + math.ceil(last / stride)
    return [round(i * last / (n - 1) / multiple) * multiple for i in range(n)]


def _ramp(size: int, ramp: int, *, left: bool, right: bool) -> np.ndarray:
    """Blending weights of one tile along one axis: raised-cosine ramps at inner edges."""
    w = np.ones(size, np.float32)
    r = min(ramp, size // 2)
    if r > 0:
        t = (np.arange(r, dtype=np.float64) + 0.5) / r
        up = (np.sin(0.5 * np.pi * t) ** 2).astype(np.float32)  # in (0, 1)
        if left:
            w[:r] = np.minimum(w[:r], up)
        if right:
            w[size - r :] = np.minimum(w[size - r :], up[::-1])
    return w


@dataclass(frozen=True)
class _Axis:
    """Tiles along one axis: their start offsets and blending weights."""

    length: int
    spans: list[tuple[int, int]]  # (start, stop)
    weights: list[np.ndarray]

    @classmethod
    def build(cls, length: int, tile: int | None, overlap: int, multiple: int) -> _Axis:
        if not tile or length <= tile:
            return cls(length, [(0, length)], [np.ones(length, np.float32)])
        starts = tile_grid(length, tile, overlap, multiple)
        spans = [(s, min(s + tile, length)) for s in starts]
        weights = [
            _ramp(stop - start, overlap, left=start > 0, right=stop < length)
            for start, stop in spans
        ]
        return cls(length, spans, weights)

    def total(self) -> np.ndarray:
        """Sum of the weights of all tiles at each position (> 0 everywhere)."""
        acc = np.zeros(self.length, np.float32)
        for (start, stop), w in zip(self.spans, self.weights, strict=True):
            acc[start:stop] += w
        return acc


def _check_tiling(tile: int | None, overlap: int, multiple: int = 1) -> None:
    if tile is not None and (isinstance(tile, bool) or tile < 0):
        raise ConfigError(f"tile must be a size in pixels, 0 or None (whole image), got {tile!r}")
    if overlap < 0:
        raise ConfigError(f"tile overlap must be >= 0, got {overlap}")
    if tile and overlap >= tile:
        raise ConfigError(f"tile overlap ({overlap}) must be smaller than the tile ({tile})")
    if tile and (tile - overlap) // multiple < 1:
        raise ConfigError(
            f"tile {tile} with overlap {overlap} leaves less than the network's "
            f"{multiple}-pixel step; use a larger tile or a smaller overlap"
        )


# --------------------------------------------------------------------------- Deblurrer


class Deblurrer:
    """A restoration network ready to restore images of any size.

    Args:
        model: a registered restoration model name (see ``list_models("restore")``),
            or an ``nn.Module`` mapping ``(B, 3, H, W)`` to ``(B, 3, H, W)``. A module is
            used as given: moved to ``device`` and put in eval mode, in place.
        weights: a safetensors file for the named model's architecture instead of
            its shipped weights; only with a model name.
        device: ``"auto"`` (CUDA, else MPS, else CPU), ``"cpu"``, ``"cuda"``,
            ``"cuda:N"`` or ``"mps"``.
        precision: ``"fp32"``; ``"fp16"`` (CUDA or MPS only) or ``"bf16"`` run the
            network under :func:`torch.autocast`.
        tile: tile side in pixels; ``None`` or 0 runs the whole image at once.
        tile_overlap: least overlap between neighbouring tiles, in pixels.
        local_pool: channel-attention pooling window in input pixels, passed to the
            model's ``set_local_pool`` (``None``: global pooling). ``"auto"``: for a
            named model, the window written in its weights' metadata, else the
            registry's ``meta["local_pool"]``, else :data:`DEFAULT_LOCAL_POOL`; a
            module's own setting is left alone.
        tta: also restore each tile flipped left-right, upside down and both, and those four
            of its transpose, and average the eight results (eight times the cost);
            ``"auto"``: at most four passes' worth of a ``tta_max_pixels`` picture
            (:meth:`passes_for`).
        tta_max_pixels: the largest picture ``tta="auto"`` flips (width x height); it
            turns and flips pictures up to half of it.

    Raises:
        ModelError: unknown model, missing or unfit weights, a model that needs a
            motion input.
        ConfigError: unavailable device, fp16 on the CPU, bad tile sizes or pool.

    Example:
        >>> from unblur.models.restore_net import NAFNet
        >>> d = Deblurrer(NAFNet(width=8, enc_blocks=(1,), dec_blocks=(1,)), device="cpu")
        >>> d.restore_tensor(torch.rand(2, 3, 20, 30)).shape
        torch.Size([2, 3, 20, 30])
    """

    def __init__(
        self,
        model: str | nn.Module = DEFAULT_MODEL,
        *,
        weights: str | Path | None = None,
        device: str | torch.device = _AUTO,
        precision: Precision = "fp32",
        tile: int | None = DEFAULT_TILE,
        tile_overlap: int = DEFAULT_TILE_OVERLAP,
        local_pool: int | Literal["auto"] | None = _AUTO,
        tta: Tta = False,
        tta_max_pixels: int = TTA_AUTO_MAX_PIXELS,
    ) -> None:
        self.device = resolve_device(device)
        _check_precision(precision, self.device)
        _check_tiling(tile, tile_overlap)
        if isinstance(model, nn.Module):
            if weights is not None:
                raise ConfigError("weights= is only for a model name, not a module")
            self.name = type(model).__name__
            net = model
            if local_pool == _AUTO:
                local_pool = getattr(net, "local_pool", None)
        else:
            self.name = str(model)
            net = load_restore_model(self.name, weights)
            if local_pool == _AUTO:
                local_pool = default_local_pool(self.name, weights)
        if getattr(net, "motion_channels", 0):
            raise ModelError(
                f"model {self.name!r} needs a motion input, which Deblurrer does not give yet"
            )
        if local_pool is not None and not hasattr(net, "set_local_pool"):
            raise ConfigError(f"model {self.name!r} has no set_local_pool; use local_pool=None")
        _check_tiling(tile, tile_overlap, int(getattr(net, "multiple", 1)))
        self.net = net.to(self.device).eval()
        self.precision: str = precision
        self.tile: int | None = tile or None
        self.tile_overlap = int(tile_overlap)
        self.local_pool: int | None = None if local_pool is None else int(local_pool)
        self.tta: Tta = check_tta(tta)
        self.tta_max_pixels = int(tta_max_pixels)
        self._apply_local_pool()

    def __repr__(self) -> str:
        return (
            f"Deblurrer(model={self.name!r}, device='{self.device}', "
            f"precision={self.precision!r}, tile={self.tile}, "
            f"tile_overlap={self.tile_overlap}, local_pool={self.local_pool}, tta={self.tta!r})"
        )

    def passes_for(self, height: int, width: int) -> int:
        """How many network passes a ``height`` x ``width`` picture's tiles are averaged over
        (:data:`PASSES`): 8 with ``tta=True``, 1 with ``False``; ``"auto"`` spends at most four
        passes of a ``tta_max_pixels`` picture: 8 up to half of it, 4 up to it, else 1."""
        if self.tta != _AUTO:
            return 8 if self.tta else 1
        pixels = height * width
        return 8 if 2 * pixels <= self.tta_max_pixels else 4 if pixels <= self.tta_max_pixels else 1

    def _apply_local_pool(self) -> None:
        if not hasattr(self.net, "set_local_pool"):
            return
        try:
            self.net.set_local_pool(self.local_pool)
        except ValueError as err:
            raise ConfigError(f"local_pool: {err}") from None

    # ------------------------------------------------------------------- numpy

    def restore(
        self, image: np.ndarray, *, progress: bool | ProgressCallback = False
    ) -> np.ndarray:
        """Restore one image.

        Args:
            image: float array in [0, 1], sRGB-encoded as stored, ``(H, W)``,
                ``(H, W, 1)`` or ``(H, W, 3)``.
            progress: ``True`` shows a progress bar over the tiles (when there are
                several); a callable is called as ``progress(done, total)``.

        Returns:
            float32 array of the same shape, clipped to [0, 1].

        Raises:
            ValueError: on a bad shape or a non-float array.
        """
        return self._restore_array(image, self.tile, self.tile_overlap, progress)

    def _restore_array(
        self,
        image: np.ndarray,
        tile: int | None,
        overlap: int,
        progress: bool | ProgressCallback,
    ) -> np.ndarray:
        arr = np.asarray(image)
        if not np.issubdtype(arr.dtype, np.floating):
            raise ValueError(f"image must be floating point in [0, 1], got {arr.dtype}")
        squeeze = arr.ndim == 2
        if squeeze:
            arr = arr[:, :, np.newaxis]
        if arr.ndim != 3 or arr.shape[2] not in (1, 3) or min(arr.shape[:2]) < 1:
            raise ValueError(f"image must be (H, W), (H, W, 1) or (H, W, 3), got {arr.shape}")
        arr = np.asarray(arr, dtype=np.float32)
        if any(stride < 0 for stride in arr.strides):  # torch cannot view flipped arrays
            arr = arr.copy()
        out = np.zeros(arr.shape, np.float32)
        # channel-first views of both: zero copies
        self._run(
            torch.from_numpy(arr).permute(2, 0, 1),
            torch.from_numpy(out).permute(2, 0, 1),
            tile,
            overlap,
            progress,
        )
        return out[:, :, 0] if squeeze else out

    # ------------------------------------------------------------------- torch

    def restore_tensor(
        self, images: torch.Tensor, *, progress: bool | ProgressCallback = False
    ) -> torch.Tensor:
        """Restore a batch of images given as a tensor.

        Args:
            images: float tensor in [0, 1] on any device.
            progress: as for :meth:`restore`.

        Returns:
            float32 tensor of the same shape on the same device, clipped to [0, 1].

        Shape:
            - Input: (B, 3, H, W) (or (B, 1, H, W), restored as gray).
            - Output: same as the input.

        Raises:
            ValueError: on a bad shape or a non-float tensor.
        """
        if images.ndim != 4 or images.shape[1] not in (1, 3):
            raise ValueError(f"expected a (B, 3, H, W) tensor, got {tuple(images.shape)}")
        if not images.is_floating_point():
            raise ValueError(f"images must be floating point in [0, 1], got {images.dtype}")
        out = torch.zeros(images.shape, dtype=torch.float32)
        for b in range(images.shape[0]):
            self._run(images[b], out[b], self.tile, self.tile_overlap, progress)
        return out.to(images.device)

    # ------------------------------------------------------------------- core

    def _run(
        self,
        src: torch.Tensor,
        out: torch.Tensor,
        tile: int | None,
        overlap: int,
        progress: bool | ProgressCallback,
    ) -> None:
        """Restore ``src`` (C, H, W) into the float32 CPU tensor ``out`` (C, H, W), in place."""
        multiple = int(getattr(self.net, "multiple", 1))
        _check_tiling(tile, overlap, multiple)
        channels, height, width = src.shape
        rows = _Axis.build(height, tile, overlap, multiple)
        cols = _Axis.build(width, tile, overlap, multiple)
        total = len(rows.spans) * len(cols.spans)
        passes = self.passes_for(height, width)
        self._apply_local_pool()
        with torch.inference_mode(), _progress(progress, total) as step:
            if total == 1:
                out.copy_(self._forward(src, channels, passes))
                step()
                out.clamp_(0.0, 1.0)
                return
            for (y0, y1), wy in zip(rows.spans, rows.weights, strict=True):
                for (x0, x1), wx in zip(cols.spans, cols.weights, strict=True):
                    restored = self._forward(src[:, y0:y1, x0:x1], channels, passes)
                    restored.mul_(torch.from_numpy(np.outer(wy, wx)))
                    out[:, y0:y1, x0:x1].add_(restored)
                    step()
            # the weights are separable, so is their sum: divide rows, then columns
            out.div_(torch.from_numpy(rows.total())[None, :, None])
            out.div_(torch.from_numpy(cols.total())[None, None, :])
            out.clamp_(0.0, 1.0)

    def _forward(self, piece: torch.Tensor, channels: int, passes: int = 1) -> torch.Tensor:
        """One tile (C, h, w) through the network, averaged over ``passes`` of its turns and
        flips (:data:`PASSES`), each undone on the result; returns float32 (C, h, w) on the
        CPU."""
        x = piece.to(self.device, dtype=torch.float32, non_blocking=True).unsqueeze(0)
        if channels == 1:
            x = x.expand(-1, 3, -1, -1)
        with _autocast(self.device, self.precision):
            if passes == 1:
                y = self.net(x.contiguous())
            else:
                y = torch.zeros(x.shape, dtype=torch.float32, device=x.device)
                for turned in (False, True)[: passes // 4]:
                    t = x.transpose(-2, -1) if turned else x
                    for dims in _FLIPS:
                        out = self.net(t.flip(dims).contiguous()).float().flip(dims)
                        y += out.transpose(-2, -1) if turned else out
                y /= passes
        y = y.float()
        if channels == 1:
            y = y.mean(1, keepdim=True)
        return y[0].cpu()


@contextlib.contextmanager
def _progress(progress: bool | ProgressCallback, total: int) -> Iterator[Callable[[], None]]:
    if callable(progress):
        done = 0

        def call() -> None:
            nonlocal done
            done += 1
            progress(done, total)

        yield call
    elif progress and total > 1:
        from unblur.progress import bar as progress_bar

        bar = progress_bar(total=total, desc="tiles", unit="tile", level=1)
        try:
            yield lambda: bar.update(1)
        finally:
            bar.close()
    else:
        yield lambda: None


# --------------------------------------------------------------------------- function


@functools.lru_cache(maxsize=4)
def _cached(
    model: str, device: str, precision: str, weights: str | None = None, tta: Tta = False
) -> Deblurrer:
    return Deblurrer(model, weights=weights, device=device, precision=precision, tta=tta)  # type: ignore[arg-type]


def cached_deblurrer(
    model: str = DEFAULT_MODEL,
    *,
    weights: str | Path | None = None,
    device: str = _AUTO,
    precision: Precision = "fp32",
    tta: Tta = False,
) -> Deblurrer:
    """The :class:`Deblurrer` for ``(model, weights, device, precision, tta)``, loaded once and
    kept (the four most recent), with the default tiling."""
    path = None if weights is None else str(weights)
    return _cached(model, str(device), precision, path, check_tta(tta))


def deblur(
    image: np.ndarray,
    *,
    model: str = DEFAULT_MODEL,
    device: str = _AUTO,
    precision: Precision = "fp32",
    tile: int | None = DEFAULT_TILE,
    tile_overlap: int = DEFAULT_TILE_OVERLAP,
    tta: Tta = False,
) -> np.ndarray:
    """Restore a blurred photo with a restoration network, in one call.

    The loaded :class:`Deblurrer` is kept per ``(model, device, precision, tta)``, so
    later calls do not load the weights again.

    Args:
        image: float array in [0, 1], sRGB-encoded as stored, ``(H, W)``,
            ``(H, W, 1)`` or ``(H, W, 3)``.
        model: registered restoration model name.
        device: ``"auto"``, ``"cpu"``, ``"cuda"``, ``"cuda:N"`` or ``"mps"``.
        precision: ``"fp32"``, ``"fp16"`` (GPU only) or ``"bf16"``.
        tile: tile side in pixels; ``None`` or 0 for the whole image at once.
        tile_overlap: least overlap between tiles, in pixels.
        tta: average over the picture's eight turns and flips (eight times the cost);
            ``"auto"``: as :meth:`Deblurrer.passes_for` (eight passes up to 1280x720, four
            flips up to :data:`TTA_AUTO_MAX_PIXELS`).

    Returns:
        float32 array of the same shape, clipped to [0, 1].

    Raises:
        ModelError: unknown model or no weights for it.
        ConfigError: unavailable device, fp16 on the CPU, bad tile sizes.

    Example:
        >>> import unblur
        >>> photo = unblur.read_image("shot.jpg")  # doctest: +SKIP
        >>> sharp = unblur.deblur(photo.pixels)  # doctest: +SKIP
    """
    deblurrer = _cached(model, str(device), precision, None, check_tta(tta))
    return deblurrer._restore_array(image, tile or None, tile_overlap, False)
