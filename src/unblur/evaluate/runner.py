"""Run restoration methods over an evaluation set: scores, time, memory, pictures, resume.

For every sample and method, :func:`evaluate` restores the blurred picture through
:func:`unblur.restore` (one loaded network shared by all samples), rounds the result to the
source's bit depth as a saved file would be (the literature scores saved 8-bit outputs), and
scores it:

* with ground truth: PSNR and SSIM on RGB and on the BT.601 Y channel, after ``crop_border``;
  with ``shift`` > 0 also the shift-compensated PSNR of Levin et al. (real camera shake: the
  best PSNR over shifts of the output up to ``shift`` px with 15 px left out on every side,
  the defaults of :func:`unblur.metrics.shift_compensated_psnr` that ``benchmarks/`` use;
  pictures under 31 px a side get none);
* always: the no-reference :func:`unblur.metrics.sharpness`;
* cost: wall seconds per megapixel and the peak memory of the call (see :class:`PeakMemory`).

The blurred input itself is scored as the method ``blurred``: the baseline every gain is
measured from.

With a ``work_dir`` (the report folder), each result is a small JSON record in
``work_dir/cache/METHOD/SAMPLE.json`` together with the report's pictures of it (a zoomed crop,
the estimated kernel or motion field); a later run with the same settings skips what is
there, so a long set can be stopped and resumed. Records of other settings are recomputed.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import resource
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from unblur import io, metrics
from unblur.errors import InputError, UnblurError
from unblur.evaluate.datasets import Sample, load_kernel

if TYPE_CHECKING:
    from unblur.restoration.network import Deblurrer

__all__ = [
    "BASELINE",
    "EvalSettings",
    "MethodSpec",
    "PeakMemory",
    "SampleResult",
    "evaluate",
    "parse_methods",
    "slug",
]

BASELINE = "blurred"
RESTORE_METHODS = ("auto", "network", "kernel", "blind", "motion")
SHIFT_BORDER = 15  # metrics.shift_compensated_psnr's default border, as benchmarks/ use
RECORD_VERSION = 2  # bump when a record's meaning changes: older records are recomputed


@dataclass(frozen=True)
class MethodSpec:
    """A method as named on the command line: ``auto``, ``blind``, ``network:nafnet-fast``.

    Attributes:
        label: the name in tables and file names.
        method: the :func:`unblur.restore` method.
        model: the network for ``network`` and ``auto`` (``None``: the default).
    """

    label: str
    method: str
    model: str | None = None


def parse_methods(text: str) -> list[MethodSpec]:
    """Parse ``--methods``: comma-separated methods, ``network:MODEL`` names a model.

    Raises:
        UnblurError: an unknown method, a model on a method without a network, a repeat.
    """
    specs: list[MethodSpec] = []
    for item in (t.strip() for t in text.split(",")):
        if not item:
            continue
        method, _, model = item.partition(":")
        if method not in RESTORE_METHODS:
            raise UnblurError(
                f"unknown method {method!r} in --methods; choose from {', '.join(RESTORE_METHODS)}"
            )
        if model and method not in ("network", "auto"):
            raise UnblurError(f"--methods {item}: only network and auto take a model")
        spec = MethodSpec(item, method, model or None)
        if spec.label in (s.label for s in specs):
            raise UnblurError(f"--methods names {item} twice")
        specs.append(spec)
    if not specs:
        raise UnblurError("--methods names no method")
    return specs


@dataclass(frozen=True)
class EvalSettings:
    """What changes the numbers: a record made under other settings is recomputed.

    Attributes:
        crop_border: pixels left out on every side before PSNR/SSIM.
        shift: largest shift (px) of the shift-compensated PSNR; 0 leaves it out.
        kernel_size: odd kernel side for ``blind`` and ``auto``.
        crop_size: side of the zoomed crops in the report.
        motion_field: estimate and draw every sample's motion field for the report (with
            method ``motion``, the field that method estimated is drawn instead).
        device: torch device for the networks.
        max_pixels: decompression-bomb guard when reading.
    """

    crop_border: int = 0
    shift: float = 0.0
    kernel_size: int = 31
    crop_size: int = 160
    motion_field: bool = False
    device: str = "cpu"
    max_pixels: int = io.DEFAULT_MAX_PIXELS

    def shift_border(self) -> int:
        """Pixels the shift-compensated PSNR leaves out on every side: 15 (the default of
        :func:`unblur.metrics.shift_compensated_psnr`), or ``crop_border`` or the largest
        shift if more."""
        return max(SHIFT_BORDER, self.crop_border, int(np.ceil(self.shift)))

    def fingerprint(self, spec: MethodSpec) -> str:
        """A short hash of what a method's record depends on."""
        keys = {
            "version": RECORD_VERSION,
            "method": spec.label,
            "crop_border": self.crop_border,
            "shift": self.shift,
            "kernel_size": self.kernel_size,
            "crop_size": self.crop_size,
        }
        if self.shift > 0:
            keys["shift_border"] = self.shift_border()
        return hashlib.sha256(json.dumps(keys, sort_keys=True).encode()).hexdigest()[:16]


@dataclass
class SampleResult:
    """Everything measured on one sample.

    Attributes:
        name: the sample's name.
        width, height: its size in pixels.
        crop: ``(x, y, side)`` of the zoomed crop in the report.
        records: method label -> record (``BASELINE`` first); a record holds the scores
            (``psnr``, ``ssim``, ``psnr_y``, ``ssim_y``, ``psnr_shift``, ``sharpness``; absent
            without ground truth), ``seconds``, ``s_per_mp``, ``peak_mb``, what ran
            (``ran``, ``reason``), the pictures' paths relative to the work folder
            (``crop_file``, ``kernel_file``), or ``error`` when the method failed.
        files: report pictures of the sample (``thumb``, ``sharp_crop``, ``motion``), relative.
    """

    name: str
    width: int
    height: int
    crop: tuple[int, int, int]
    records: dict[str, dict[str, Any]] = field(default_factory=dict)
    files: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def slug(name: str) -> str:
    """A file-name-safe, unique stand-in for a sample or method name."""
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._") or "x"
    if safe == name:
        return safe
    return f"{safe[:60]}-{hashlib.sha1(name.encode()).hexdigest()[:6]}"


# ------------------------------------------------------------------------------- memory


def _status_kb(key: str) -> int | None:
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return None


def _release_free_memory() -> None:
    """Hand freed heap memory back to the system (glibc ``malloc_trim``), so that the resident
    size falls back to what is in use and a block's peak shows what the block needed, not
    only what it needed beyond memory freed earlier."""
    import ctypes
    import ctypes.util
    import gc

    gc.collect()
    name = ctypes.util.find_library("c")
    if name is None:
        return
    try:
        ctypes.CDLL(name).malloc_trim(0)
    except (OSError, AttributeError):  # not glibc
        pass


class PeakMemory:
    """The peak memory a block of code adds to the process, in MiB.

    On a CUDA device, torch's peak allocated memory during the block (reset at its start).
    On the CPU, the peak resident set size (Linux ``VmHWM``, reset at the start of the block
    through ``/proc/self/clear_refs``) less the resident size at the start: everything the
    block allocated, torch's and NumPy's buffers alike (freed heap memory is handed back to
    the system first, so that memory the allocator kept from earlier work does not hide the
    block's needs). Elsewhere ``getrusage``'s lifetime
    peak, which only shows a block that sets a new peak (``None`` when it cannot tell).
    """

    def __init__(self, device: str = "cpu") -> None:
        self.device = device
        self.mb: float | None = None
        self._start = 0
        self._resettable = False

    def __enter__(self) -> PeakMemory:
        if self.device.startswith("cuda"):
            import torch

            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            self._start = torch.cuda.memory_allocated()
            return self
        _release_free_memory()
        try:
            with open("/proc/self/clear_refs", "w", encoding="ascii") as f:
                f.write("5")  # reset VmHWM to the current RSS
            self._resettable = True
        except OSError:
            self._resettable = False
        rss = _status_kb("VmRSS")
        if self._resettable and rss is not None:
            self._start = rss * 1024
        else:
            self._start = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        return self

    def __exit__(self, *exc: object) -> None:
        if self.device.startswith("cuda"):
            import torch

            torch.cuda.synchronize()
            self.mb = (torch.cuda.max_memory_allocated() - self._start) / 2**20
            return
        peak = _status_kb("VmHWM") if self._resettable else None
        if peak is None:
            grown = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - self._start
            self.mb = grown / 2**20 if grown > 0 else None
        else:
            self.mb = max(0.0, (peak * 1024 - self._start) / 2**20)


# ------------------------------------------------------------------------------- scoring


def quantise(pixels: np.ndarray, bit_depth: int) -> np.ndarray:
    """Round to what a saved file of that depth holds (as the literature scores outputs)."""
    top = 255.0 if bit_depth == 8 else 65535.0
    return (np.rint(np.clip(pixels, 0.0, 1.0) * top) / top).astype(np.float32)


def score(sharp: np.ndarray | None, test: np.ndarray, settings: EvalSettings) -> dict[str, float]:
    """The metrics of one picture against its reference (the no-reference one without)."""
    out = {"sharpness": metrics.sharpness(test, crop_border=settings.crop_border)}
    if sharp is None:
        return out
    b = settings.crop_border
    out["psnr"] = metrics.psnr(sharp, test, crop_border=b)
    out["ssim"] = metrics.ssim(sharp, test, crop_border=b)
    out["psnr_y"] = metrics.psnr(sharp, test, crop_border=b, y_channel=True)
    out["ssim_y"] = metrics.ssim(sharp, test, crop_border=b, y_channel=True)
    border = settings.shift_border()
    if settings.shift > 0 and 2 * border < min(sharp.shape[:2]):
        out["psnr_shift"] = metrics.shift_compensated_psnr(
            sharp, test, max_shift=settings.shift, border=border
        )
    return out


def choose_crop(blurred: np.ndarray, sharp: np.ndarray | None, side: int) -> tuple[int, int, int]:
    """``(x, y, side)`` of the square where the blur matters most: the largest mean
    difference between blurred and sharp, or without a reference the most detail (gradient
    energy) of the blurred picture."""
    from scipy import ndimage

    grey = metrics.rgb_to_y(blurred[..., :3] if blurred.shape[-1] >= 3 else blurred)
    h, w = grey.shape
    side = int(min(side, h, w))
    if sharp is not None:
        energy = np.abs(grey - metrics.rgb_to_y(sharp[..., :3] if sharp.shape[-1] >= 3 else sharp))
    else:
        gy, gx = np.gradient(grey)
        energy = np.hypot(gx, gy)
    # a coarse search is plenty: every quarter crop
    local = ndimage.uniform_filter(energy, size=side, mode="constant")
    half = side // 2
    stride = max(1, side // 4)
    ys = np.arange(half, h - side + half + 1, stride)
    xs = np.arange(half, w - side + half + 1, stride)
    grid = local[np.ix_(ys, xs)]
    iy, ix = np.unravel_index(int(np.argmax(grid)), grid.shape)
    return int(xs[ix] - half), int(ys[iy] - half), side


def _crop(pixels: np.ndarray, box: tuple[int, int, int]) -> np.ndarray:
    x, y, side = box
    return pixels[y : y + side, x : x + side]


# ------------------------------------------------------------------------------- running


@dataclass
class _Context:
    settings: EvalSettings
    work_dir: Path | None
    progress: bool = False
    sample_motion: bool = False  # draw each sample's estimated motion field
    deblurrers: dict[str | None, Deblurrer] = field(default_factory=dict)

    def deblurrer(self, model: str | None) -> Deblurrer:
        if model not in self.deblurrers:  # loaded once, shared by every sample
            from unblur.restoration.network import DEFAULT_MODEL, cached_deblurrer

            self.deblurrers[model] = cached_deblurrer(  # turns and flips as unblur image
                model or DEFAULT_MODEL, device=self.settings.device, tta="auto"
            )
        return self.deblurrers[model]

    def path(self, *parts: str) -> Path:
        assert self.work_dir is not None
        return self.work_dir.joinpath(*parts)


def _write_json(path: Path, data: object) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(data, indent=1, allow_nan=True)
    io.atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _save_picture(ctx: _Context, rel: str, pixels: np.ndarray) -> str:
    target = ctx.path(rel)
    target.parent.mkdir(parents=True, exist_ok=True)
    io.write_image(target, pixels, quality=88)
    return rel


def _restore_one(
    ctx: _Context, spec: MethodSpec, blurred: np.ndarray, kernel: np.ndarray | None
) -> tuple[dict[str, Any], np.ndarray | None, Any]:
    """Run one method on one picture: (record without scores, pixels, the Restoration)."""
    from unblur.restoration.api import restore

    s = ctx.settings
    if spec.method == "kernel" and kernel is None:
        return {"error": "no known kernel for this picture"}, None, None
    deblurrer = ctx.deblurrer(spec.model) if spec.method in ("network", "auto") else None
    memory = PeakMemory(s.device)
    start = time.perf_counter()
    try:
        with memory:
            result = restore(
                blurred,
                spec.method,  # type: ignore[arg-type]
                kernel=kernel if spec.method == "kernel" else None,
                deblurrer=deblurrer,
                kernel_size=s.kernel_size,
                device=s.device,
                progress=ctx.progress,  # an inner bar over tiles or patches, on a terminal
            )
    except (UnblurError, ValueError) as err:
        return {"error": str(err)}, None, None
    seconds = time.perf_counter() - start
    megapixels = blurred.shape[0] * blurred.shape[1] / 1e6
    record = {
        "ran": result.method,
        "reason": result.reason,
        "model": result.model,
        "passes": result.passes,  # turns and flips averaged (tta)
        "seconds": seconds,
        "s_per_mp": seconds / megapixels,
        "peak_mb": memory.mb,
    }
    return record, result.pixels, result


def _method_pictures(
    ctx: _Context, sample_slug: str, label: str, result: Any, restored: np.ndarray, box: tuple
) -> dict[str, str]:
    from unblur.motion.picture import field_picture, kernel_picture

    files = {
        "crop_file": _save_picture(
            ctx, f"images/{sample_slug}/{slug(label)}.png", _crop(restored, box)
        )
    }
    if result.kernel is not None:
        how = "known" if result.method == "kernel" else "estimated"
        picture = kernel_picture(result.kernel, size=160, title=f"{label}: {how}")
        files["kernel_file"] = _save_picture(
            ctx, f"images/{sample_slug}/{slug(label)}_kernel.png", picture.astype(np.float32) / 255
        )
    if result.motion is not None:
        picture = field_picture(_display(restored), _display_field(result.motion.field, restored))
        files["field_file"] = _save_picture(
            ctx, f"images/{sample_slug}/{slug(label)}_field.jpg", picture.astype(np.float32) / 255
        )
    return files


_DISPLAY_SIDE = 640


def _display_scale(pixels: np.ndarray) -> float:
    return min(1.0, _DISPLAY_SIDE / max(pixels.shape[:2]))


def _display(pixels: np.ndarray) -> np.ndarray:
    import cv2

    scale = _display_scale(pixels)
    colour = pixels[..., :3] if pixels.shape[-1] >= 3 else pixels[..., 0]
    if scale == 1.0:
        return colour
    size = (round(pixels.shape[1] * scale), round(pixels.shape[0] * scale))
    return cv2.resize(colour, size, interpolation=cv2.INTER_AREA)


def _display_field(motion: np.ndarray, pixels: np.ndarray) -> np.ndarray:
    import cv2

    scale = _display_scale(pixels)
    if scale == 1.0:
        return motion
    size = (round(pixels.shape[1] * scale), round(pixels.shape[0] * scale))
    return cv2.resize(motion, size, interpolation=cv2.INTER_AREA) * scale


def _thumbnail(blurred: np.ndarray, box: tuple[int, int, int]) -> np.ndarray:
    """The blurred picture, small, with the crop's square drawn on it."""
    import cv2

    small = np.ascontiguousarray(_display(blurred))
    if small.ndim == 2:
        small = np.repeat(small[..., None], 3, axis=2)
    small = (np.clip(small, 0, 1) * 255).astype(np.uint8)
    scale = _display_scale(blurred)
    x, y, side = (round(v * scale) for v in box)
    cv2.rectangle(small, (x, y), (x + side - 1, y + side - 1), (255, 200, 0), 2)
    return small.astype(np.float32) / 255


def _sample_pictures(
    ctx: _Context, sample_slug: str, blurred: np.ndarray, sharp: np.ndarray | None, box: tuple
) -> dict[str, str]:
    files = {}
    thumb = f"images/{sample_slug}/thumb.jpg"
    files["thumb"] = (
        thumb if ctx.path(thumb).is_file() else _save_picture(ctx, thumb, _thumbnail(blurred, box))
    )
    files["blurred_crop"] = _save_picture(
        ctx, f"images/{sample_slug}/{BASELINE}.png", _crop(blurred, box)
    )
    if sharp is not None:
        files["sharp_crop"] = _save_picture(
            ctx, f"images/{sample_slug}/sharp.png", _crop(sharp, box)
        )
    if ctx.sample_motion:
        rel = f"images/{sample_slug}/estimated_motion.jpg"
        if ctx.path(rel).is_file():
            files["motion"] = rel
        else:
            from unblur.motion.estimate import estimate_motion
            from unblur.motion.picture import field_picture

            try:
                estimate = estimate_motion(blurred[..., :3], device=ctx.settings.device)
            except UnblurError:
                return files  # too small for the motion network: no picture
            picture = field_picture(_display(blurred), _display_field(estimate.field, blurred))
            files["motion"] = _save_picture(ctx, rel, picture.astype(np.float32) / 255)
    return files


def read_pair(
    sample: Sample, max_pixels: int = io.DEFAULT_MAX_PIXELS
) -> tuple[np.ndarray, np.ndarray | None, int]:
    """``(blurred, sharp or None, bit depth)`` of a sample; a grey picture against a colour
    one is compared in colour.

    Raises:
        InputError: unreadable, or blurred and sharp of two sizes.
    """
    blurred_image = io.read_image(sample.blurred, max_pixels=max_pixels)
    blurred = blurred_image.pixels
    sharp = None
    if sample.sharp is not None:
        sharp = io.read_image(sample.sharp, max_pixels=max_pixels).pixels
        if sharp.shape[:2] != blurred.shape[:2]:
            raise InputError(
                f"sharp picture is {sharp.shape[1]}x{sharp.shape[0]} but the blurred one is "
                f"{blurred.shape[1]}x{blurred.shape[0]}",
                sample.sharp,
            )
        if sharp.shape[2] != blurred.shape[2]:  # grey against colour: compare in colour
            sharp = np.broadcast_to(sharp, blurred.shape).copy() if sharp.shape[2] == 1 else sharp
            blurred = np.broadcast_to(blurred, sharp.shape).copy()
    return blurred, sharp, blurred_image.bit_depth


def evaluate(
    samples: list[Sample],
    methods: list[MethodSpec],
    settings: EvalSettings,
    *,
    work_dir: Path | None = None,
    progress: bool = True,
    on_error: Callable[[str], None] | None = None,
) -> tuple[list[SampleResult], dict[str, int]]:
    """Restore and score every sample with every method.

    Args:
        samples: from :func:`unblur.evaluate.datasets.find_samples`.
        methods: from :func:`parse_methods`.
        settings: what changes the numbers.
        work_dir: where records and pictures go (the report folder); records already there
            with the same settings are reused. ``None``: nothing is written or reused.
        progress: show a progress bar over samples x methods.
        on_error: called with a one-line message for each method that failed on a sample
            (default: printed to standard error).

    Returns:
        ``(results, counts)``: one :class:`SampleResult` per sample that could be read;
        ``counts`` has ``computed``, ``reused`` and ``failed`` method runs, and ``skipped``
        samples (a picture that cannot be read, or a blurred/sharp pair of two sizes: said
        through ``on_error``, and the rest goes on).
    """
    from unblur.progress import bar

    report = on_error or (lambda message: print(f"unblur: {message}", file=sys.stderr))
    # with method motion the field it estimates (the same network's) is drawn instead
    sample_motion = settings.motion_field and not any(m.method == "motion" for m in methods)
    ctx = _Context(settings, work_dir, progress, sample_motion)
    counts = {"computed": 0, "reused": 0, "failed": 0, "skipped": 0}
    results: list[SampleResult] = []
    total = len(samples) * (len(methods) + 1)
    with _bar(bar, total, progress) as tick:
        for sample in samples:
            try:
                results.append(_evaluate_sample(ctx, sample, methods, counts, report, tick))
            except InputError as err:  # one bad picture does not stop the rest
                counts["skipped"] += 1
                report(f"{sample.name}: skipped: {err}")
                for _ in range(len(methods) + 1):
                    tick(f"{sample.name}: skipped")
    return results, counts


@contextmanager
def _bar(make: Any, total: int, enabled: bool) -> Iterator[Callable[[str], None]]:
    b = make(total=total, desc="evaluating", unit="run", enabled=enabled)

    def tick(what: str) -> None:
        b.set_postfix_str(what, refresh=False)
        b.update(1)

    try:
        yield tick
    finally:
        b.close()


def _evaluate_sample(
    ctx: _Context,
    sample: Sample,
    methods: list[MethodSpec],
    counts: dict[str, int],
    report: Callable[[str], None],
    tick: Callable[[str], None],
) -> SampleResult:
    s = ctx.settings
    sample_slug = slug(sample.name)
    cached: dict[str, dict[str, Any]] = {}
    if ctx.work_dir is not None:
        for spec in [MethodSpec(BASELINE, BASELINE), *methods]:
            record = _read_json(ctx.path("cache", slug(spec.label), f"{sample_slug}.json"))
            if (
                isinstance(record, dict)
                and record.get("fingerprint") == s.fingerprint(spec)
                and all(ctx.path(f).is_file() for k, f in record.items() if k.endswith("_file"))
            ):
                cached[spec.label] = record
        meta = _read_json(ctx.path("cache", "samples", f"{sample_slug}.json"))
        if (
            isinstance(meta, dict)
            and len(cached) == len(methods) + 1
            and meta.get("fingerprint") == s.fingerprint(MethodSpec("samples", "samples"))
            and (not ctx.sample_motion or "motion" in meta["files"])
            and all(ctx.path(f).is_file() for f in meta["files"].values())
        ):
            for spec in [MethodSpec(BASELINE, BASELINE), *methods]:
                counts["reused"] += 1
                tick(f"{sample.name}: {spec.label} (done before)")
            return SampleResult(
                sample.name,
                meta["width"],
                meta["height"],
                tuple(meta["crop"]),
                {label: cached[label] for label in [BASELINE, *(m.label for m in methods)]},
                meta["files"],
            )

    blurred, sharp, depth = read_pair(sample, s.max_pixels)
    kernel = load_kernel(sample.kernel) if sample.kernel is not None else None
    box = choose_crop(blurred, sharp, s.crop_size)
    result = SampleResult(sample.name, blurred.shape[1], blurred.shape[0], box)
    if ctx.work_dir is not None:
        result.files = _sample_pictures(ctx, sample_slug, blurred, sharp, box)
    baseline = {"ran": BASELINE, **score(sharp, blurred, s)}
    if ctx.work_dir is not None:
        baseline["crop_file"] = result.files["blurred_crop"]
    result.records[BASELINE] = baseline
    tick(f"{sample.name}: {BASELINE}")
    for spec in methods:
        if spec.label in cached:
            result.records[spec.label] = cached[spec.label]
            counts["reused"] += 1
            tick(f"{sample.name}: {spec.label} (done before)")
            continue
        record, pixels, restoration = _restore_one(ctx, spec, blurred, kernel)
        if pixels is None:
            counts["failed"] += 1
            report(f"{sample.name}: {spec.label} failed: {record['error']}")
        else:
            restored = quantise(pixels, depth)
            record.update(score(sharp, restored, s))
            if ctx.work_dir is not None:
                record.update(
                    _method_pictures(ctx, sample_slug, spec.label, restoration, restored, box)
                )
            counts["computed"] += 1
        result.records[spec.label] = record
        if ctx.work_dir is not None and pixels is not None:
            _write_json(
                ctx.path("cache", slug(spec.label), f"{sample_slug}.json"),
                {**record, "fingerprint": s.fingerprint(spec)},
            )
        tick(f"{sample.name}: {spec.label}")
    if ctx.work_dir is not None:
        _write_json(
            ctx.path("cache", slug(BASELINE), f"{sample_slug}.json"),
            {**baseline, "fingerprint": s.fingerprint(MethodSpec(BASELINE, BASELINE))},
        )
        _write_json(
            ctx.path("cache", "samples", f"{sample_slug}.json"),
            {
                "name": sample.name,
                "width": result.width,
                "height": result.height,
                "crop": list(box),
                "files": result.files,
                "fingerprint": s.fingerprint(MethodSpec("samples", "samples")),
            },
        )
    return result


def environment() -> dict[str, Any]:
    """Where the numbers were measured: for the report's footnote."""
    import platform

    import torch

    from unblur import __version__

    return {
        "unblur": __version__,
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "cpu": platform.processor() or platform.machine(),
        "cores": os.cpu_count(),
        "python": platform.python_version(),
    }
