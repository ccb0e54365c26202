"""``unblur motion``: estimate the blur motion field of photos and draw it."""

from __future__ import annotations

import argparse
from pathlib import Path

from unblur.cli._common import (
    HelpFormatter,
    add_common_io,
    add_kernel_size,
    add_threads,
    apply_threads,
    check_kernel_size,
    ensure_folder,
    expand_inputs,
    plan_outputs,
    positive_int,
    run_batch,
)
from unblur.errors import InputError, OutputError, UnblurError

METHODS = ("auto", "cnn", "frames", "spectral", "blind")

DESCRIPTION = """\
Estimate how each part of a blurred photo moved during the exposure, and draw it.

The picture shows the image with the motion field over it: colour for the
direction (modulo 180 degrees: a streak has no sign), brightness for the
length, short blur-trace glyphs on a grid, and a legend. With --method blind
the estimated kernel is drawn beside it.

--field saves the raw field for programs: a float32 .npy array of shape
(H, W, 2) holding (dx, dy) in pixels, x to the right and y down, the same size
as the input image (a file for one input, a folder for several).

Methods: cnn (the single-image network, per pixel), frames (the two-frame
network: give the previous and next video frames with --frames), spectral
(one uniform straight blur from the power spectrum), blind (one full kernel,
coarse-to-fine); auto is frames with --frames, else cnn.

examples:
  unblur motion shot.jpg -o motion.png
  unblur motion shot.jpg -o motion.png --field motion.npy
  unblur motion frame_0101.png --frames frame_0100.png frame_0102.png -o motion.png
  unblur motion shot.jpg --method blind -o kernel.png
"""


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "motion",
        help="estimate and draw the blur motion field of photos",
        description=DESCRIPTION,
        formatter_class=HelpFormatter,
    )
    p.add_argument("inputs", nargs="+", type=Path, metavar="IN", help="image files or folders")
    p.add_argument("-o", "--output", type=Path, default=None, help="picture file (.png) or folder")
    p.add_argument("--method", choices=METHODS, default="auto", help="estimator")
    p.add_argument(
        "--frames",
        nargs=2,
        type=Path,
        default=None,
        metavar=("PREV", "NEXT"),
        help="the previous and next video frames (one input only)",
    )
    p.add_argument(
        "--field", type=Path, default=None, help="also save the raw field (.npy file or folder)"
    )
    add_kernel_size(p)
    p.add_argument(
        "--max-side",
        type=positive_int,
        default=1024,
        help="the networks work on the image shrunk to this long side",
    )
    add_common_io(p)
    add_threads(p)
    p.set_defaults(run=run)


def _field_paths(inputs: list[Path], field: Path | None, overwrite: bool) -> list[Path | None]:
    if field is None:
        return [None] * len(inputs)
    if field.suffix.lower() == ".npy" and not field.is_dir():
        if len(inputs) != 1:
            raise OutputError(f"{len(inputs)} inputs need a --field folder, not a file", field)
        paths = [field]
    else:
        if field.exists() and not field.is_dir():
            raise OutputError("--field must be a .npy file or a folder", field)
        ensure_folder(field)
        paths = [field / f"{p.stem}_motion.npy" for p in inputs]
    for path in paths:
        if path.exists() and not overwrite:
            raise OutputError("already exists; pass --overwrite to replace", path)
    return list(paths)


def run(args: argparse.Namespace) -> int:
    check_kernel_size(args.kernel_size)
    if args.method == "frames" and args.frames is None:
        raise UnblurError("--method frames needs --frames PREV NEXT")
    if args.frames is not None and args.method not in ("auto", "frames"):
        raise UnblurError(f"--frames is for --method frames, not {args.method}")
    inputs = expand_inputs(args.inputs, skip_suffix=None if args.output else "_motion")
    if args.frames is not None and len(inputs) != 1:
        raise UnblurError(f"--frames goes with one input image, got {len(inputs)}")
    field_paths = _field_paths(inputs, args.field, args.overwrite)
    outputs = plan_outputs(
        inputs, args.output, suffix="_motion", overwrite=args.overwrite, extension=".png"
    )

    apply_threads(args.threads)
    import numpy as np

    from unblur import io
    from unblur.motion.estimate import estimate_motion
    from unblur.motion.picture import field_picture, kernel_picture, side_by_side

    neighbours = None
    if args.frames is not None:
        neighbours = tuple(io.read_image(p, max_pixels=args.max_pixels).pixels for p in args.frames)

    out_for = dict(zip(inputs, outputs, strict=True))
    field_for = dict(zip(inputs, field_paths, strict=True))

    def work(path: Path) -> Path:
        out, field_path = out_for[path], field_for[path]
        for target in (out, field_path):
            if target is not None and target.exists() and not args.overwrite:
                raise OutputError("exists; pass --overwrite to replace it", target)
        image = io.read_image(path, max_pixels=args.max_pixels)
        pixels = image.pixels
        if pixels.shape[2] not in (1, 3, 4):
            raise InputError(f"cannot estimate motion of a {pixels.shape[2]}-channel image", path)
        try:
            estimate = estimate_motion(
                pixels,
                method=args.method,
                frames=neighbours,
                max_side=args.max_side,
                kernel_size=args.kernel_size,
            )
        except InputError as err:
            raise InputError(err.message, path) from None
        picture = field_picture(pixels[..., :3], estimate.field, confidence=estimate.confidence)
        if estimate.kernel is not None and estimate.method == "blind":
            kernel = kernel_picture(estimate.kernel, size=min(picture.shape[0], 512))
            picture = side_by_side([picture, kernel], ["motion field", "estimated kernel"])
        io.write_image(
            out, io.Image(pixels=picture.astype(np.float32) / 255.0), overwrite=args.overwrite
        )
        if field_path is not None:
            data = np.ascontiguousarray(estimate.field, dtype=np.float32)

            def save(tmp: Path) -> None:
                with tmp.open("wb") as fh:  # a file object: np.save adds no ".npy"
                    np.save(fh, data, allow_pickle=False)

            io.atomic_write(field_path, save, overwrite=args.overwrite)
        return out

    return run_batch(inputs, work, what="images", quiet=args.quiet).exit_code()
