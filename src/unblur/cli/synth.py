"""``unblur synth``: make blurred/sharp training or test pairs with known ground truth."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

from unblur.cli._common import HelpFormatter, add_common_io, ensure_folder, positive_int
from unblur.errors import InputError, UnblurError

KINDS = ("linear", "shake", "field", "frames", "scenes")

DESCRIPTION = """\
Blur sharp photos with unblur's forward model (in linear light, with noise)
and write OUT/blur/, OUT/sharp/ and the ground truth under the same names:

  linear, shake  OUT/kernel/NAME.npy  float32 kernel, true convolution
  field          OUT/motion/NAME.npy  float32 (H, W, 2) field of (dx, dy) px
  frames         SHARP_DIR holds consecutive video frames; each blur is the
                 linear-light mean of --window frames, sharp its centre frame
  scenes         the same from one photo: --window frames of a camera that
                 travels --length px, turns and zooms, with pieces of the photo
                 and the next one crossing it; the pair is the photo less a
                 margin the camera needs on each side

examples:
  unblur synth photos/ -o pairs/ --kind shake --count 100 --seed 1
  unblur synth video_frames/ -o pairs/ --kind frames --window 9
  unblur synth photos/ -o pairs/ --kind scenes --window 11 --length 5 40
"""


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "synth",
        help="make blurred/sharp pairs with ground truth",
        description=DESCRIPTION,
        formatter_class=HelpFormatter,
    )
    p.add_argument("sharp_dir", type=Path, metavar="SHARP_DIR", help="folder of sharp images")
    p.add_argument("-o", "--output", type=Path, required=True, help="output folder")
    p.add_argument("--kind", choices=KINDS, default="shake", help="blur model")
    p.add_argument("--seed", type=int, default=0, help="random seed (same seed, same output)")
    p.add_argument(
        "--count", type=positive_int, default=None, help="pairs to make (default: one per image)"
    )
    p.add_argument(
        "--length",
        type=float,
        nargs=2,
        default=(5.0, 30.0),
        metavar=("MIN", "MAX"),
        help="blur length range in pixels",
    )
    p.add_argument("--noise", type=float, default=0.01, help="largest read-noise sigma (linear)")
    p.add_argument(
        "--jpeg",
        type=int,
        nargs=2,
        default=None,
        metavar=("QMIN", "QMAX"),
        help="re-compress the blurred image as JPEG with quality in this range",
    )
    p.add_argument(
        "--window", type=positive_int, default=9, help="frames averaged (--kind frames, scenes)"
    )
    add_common_io(p)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from unblur.cli._common import IMAGE_SUFFIXES, run_batch

    if not args.sharp_dir.is_dir():
        raise InputError("not a folder of sharp images", args.sharp_dir)
    sources = sorted(p for p in args.sharp_dir.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not sources:
        raise InputError("folder holds no images", args.sharp_dir)
    lo, hi = args.length
    if not 0 <= lo <= hi:
        raise UnblurError(f"--length needs 0 <= MIN <= MAX, got {lo} {hi}")
    if args.noise < 0:
        raise UnblurError(f"--noise must be >= 0, got {args.noise}")
    if args.jpeg is not None and not 1 <= args.jpeg[0] <= args.jpeg[1] <= 100:
        raise UnblurError(f"--jpeg needs 1 <= QMIN <= QMAX <= 100, got {args.jpeg}")
    out = args.output
    truth_dir = {"linear": "kernel", "shake": "kernel", "field": "motion"}.get(args.kind)
    for sub in ("blur", "sharp", *([truth_dir] if truth_dir else [])):
        ensure_folder(out / sub)
    if args.kind == "frames":
        return _frames(args, sources, out)
    if args.kind == "scenes":
        return _scenes(args, sources, out)

    import numpy as np

    from unblur import blur, io

    config = blur.DegradationConfig(
        kind=args.kind,
        length=(max(lo, 1.0) if args.kind == "shake" else lo, hi),
        gaussian_sigma=(0.0, args.noise),
        jpeg_quality=None if args.jpeg is None else tuple(args.jpeg),
    )
    count = args.count or len(sources)
    jobs = [(i, sources[i % len(sources)]) for i in range(count)]
    by_name = {}
    for i, src in jobs:
        name = f"{src.stem}_{i:04d}" if count != len(sources) else src.stem
        by_name[out / "blur" / f"{name}.png"] = (i, src, name)

    def make(target: Path) -> None:
        i, src, name = by_name[target]
        image = io.read_image(src, max_pixels=args.max_pixels)
        sharp = image.pixels
        blurred, truth = blur.degrade(sharp, config, rng=np.random.default_rng([args.seed, i]))
        io.write_image(
            out / "sharp" / f"{name}.png",
            truth["sharp"],  # the picture itself, unless saturated highlights were boosted
            bit_depth=image.bit_depth,
            overwrite=args.overwrite,
        )
        io.write_image(target, blurred, bit_depth=image.bit_depth, overwrite=args.overwrite)
        key = "kernel" if truth_dir == "kernel" else "field"
        _save_npy(out / truth_dir / f"{name}.npy", truth[key].astype(np.float32), args.overwrite)

    return run_batch(list(by_name), make, what="pairs", quiet=args.quiet).exit_code()


def _save_npy(path: Path, array: np.ndarray, overwrite: bool) -> None:
    import numpy as np

    from unblur import io
    from unblur.errors import OutputError

    if path.exists() and not overwrite:
        raise OutputError("exists; pass --overwrite to replace it", path)

    def write(tmp: Path) -> None:
        with open(tmp, "wb") as fh:
            np.save(fh, array, allow_pickle=False)

    io.atomic_write(path, write)


def _frames(args: argparse.Namespace, frames: list[Path], out: Path) -> int:
    import numpy as np

    from unblur import blur, io
    from unblur.cli._common import run_batch

    n = args.window
    if len(frames) < n:
        raise InputError(f"needs at least --window {n} frames, found {len(frames)}", args.sharp_dir)
    starts = list(range(0, len(frames) - n + 1, n))
    if args.count is not None:
        starts = starts[: args.count]
    targets = {out / "blur" / f"{frames[s + n // 2].stem}.png": s for s in starts}

    def make(target: Path) -> None:
        s = targets[target]
        images = [io.read_image(p, max_pixels=args.max_pixels) for p in frames[s : s + n]]
        shapes = {im.pixels.shape for im in images}
        if len(shapes) != 1:
            raise InputError(f"frames differ in size: {sorted(shapes)}", frames[s])
        blurred, sharp = blur.average_window([im.pixels for im in images], 0, n, gamma="srgb")
        rng = np.random.default_rng([args.seed, s])
        if args.noise > 0:
            lin = io.srgb_to_linear(blurred)
            lin = blur.add_noise(lin, rng=rng, gaussian_sigma=float(rng.uniform(0, args.noise)))
            blurred = io.linear_to_srgb(lin)
        depth = images[0].bit_depth
        io.write_image(
            out / "sharp" / target.name, sharp, bit_depth=depth, overwrite=args.overwrite
        )
        io.write_image(target, blurred, bit_depth=depth, overwrite=args.overwrite)

    return run_batch(list(targets), make, what="pairs", quiet=args.quiet).exit_code()


def _scenes(args: argparse.Namespace, sources: list[Path], out: Path) -> int:
    import numpy as np

    from unblur import io
    from unblur.cli._common import run_batch
    from unblur.train.scenes import SceneMotion, render_scene

    lo, hi = args.length
    motion = SceneMotion(
        window=(args.window, args.window),
        travel=(lo, hi),
        object_travel=(lo, hi),
        noise=(0.0, args.noise),
        jpeg_prob=0.0 if args.jpeg is None else 1.0,
        jpeg_quality=(60, 95) if args.jpeg is None else tuple(args.jpeg),
    )
    count = args.count or len(sources)
    by_name = {}
    for i in range(count):
        src = sources[i % len(sources)]
        name = f"{src.stem}_{i:04d}" if count != len(sources) else src.stem
        by_name[out / "blur" / f"{name}.png"] = (i, src)

    def make(target: Path) -> None:
        i, src = by_name[target]
        image = io.read_image(src, max_pixels=args.max_pixels)
        pixels = _rgb(image.pixels)
        other = sources[(sources.index(src) + 1) % len(sources)]
        pieces = [pixels]
        if other != src:
            pieces.append(_rgb(io.read_image(other, max_pixels=args.max_pixels).pixels))
        h, w = pixels.shape[:2]
        margin = motion.margin(h, w)
        size = (h - 2 * margin, w - 2 * margin)
        if min(size) < 16:
            raise InputError(f"too small for {hi:g} px of camera travel ({w}x{h})", src)
        rng = np.random.default_rng([args.seed, i])
        blurred, sharp, _ = render_scene(pixels, pieces, size, motion, rng)
        io.write_image(
            out / "sharp" / target.name, sharp, bit_depth=image.bit_depth, overwrite=args.overwrite
        )
        io.write_image(target, blurred, bit_depth=image.bit_depth, overwrite=args.overwrite)

    return run_batch(list(by_name), make, what="pairs", quiet=args.quiet).exit_code()


def _rgb(pixels: np.ndarray) -> np.ndarray:
    """``(H, W, 1)`` grey or ``(H, W, 3)`` colour pixels (as ``io.Image`` holds them) as colour."""
    import numpy as np

    return np.repeat(pixels, 3, axis=2) if pixels.shape[2] == 1 else pixels
