"""``unblur image``: restore blurred photos."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

from unblur.cli._common import (
    HelpFormatter,
    add_common_io,
    ensure_folder,
    expand_inputs,
    plan_outputs,
    positive_int,
    run_batch,
)
from unblur.errors import InputError, UnblurError

METHODS = ("hyperlaplacian", "wiener", "rl")

DESCRIPTION = """\
Restore blurred photos. With --kernel K (a .npy array or a grey image of the
blur kernel, true-convolution orientation) the known blur is undone by
non-blind deconvolution in linear light.

Outputs: without -o, NAME_unblurred.EXT next to each input; -o FILE for one
input; -o FOLDER for several (created if needed). 16-bit, alpha, ICC and EXIF
are kept where the output format allows.

examples:
  unblur image shot.png --kernel kernel.npy -o sharp.png
  unblur image photos/ --kernel kernel.png --method rl -o restored/
"""


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "image",
        help="restore blurred photos",
        description=DESCRIPTION,
        formatter_class=HelpFormatter,
    )
    p.add_argument("inputs", nargs="+", type=Path, metavar="IN", help="image files or folders")
    p.add_argument("-o", "--output", type=Path, default=None, help="output file or folder")
    p.add_argument(
        "--kernel",
        type=Path,
        default=None,
        help="known blur kernel (.npy, or .png and other images)",
    )
    p.add_argument(
        "--method", choices=METHODS, default="hyperlaplacian", help="deconvolution method"
    )
    p.add_argument(
        "--space",
        choices=("linear", "srgb"),
        default="linear",
        help="deconvolve in linear light (physical) or on the stored sRGB values",
    )
    p.add_argument("--quality", type=positive_int, default=95, help="JPEG/WebP quality (1-100)")
    add_common_io(p)
    p.set_defaults(run=run)


def load_kernel(path: Path, *, max_pixels: int) -> np.ndarray:
    """Read a kernel from ``.npy`` (never unpickled) or an image (grey levels, any scale)."""
    import numpy as np

    from unblur import io
    from unblur.errors import KernelError

    if not path.exists():
        raise KernelError("no such kernel file", path)
    if path.suffix.lower() == ".npy":
        try:
            kernel = np.load(path, allow_pickle=False)
        except ValueError as err:
            if "pickle" in str(err).lower():
                raise KernelError(
                    "kernel .npy holds Python objects; refusing to unpickle", path
                ) from None
            raise KernelError(f"not a readable .npy array ({err})", path) from None
        except (OSError, EOFError) as err:
            raise KernelError(f"not a readable .npy array ({err})", path) from None
        return np.asarray(kernel)
    try:
        img = io.read_image(path, max_pixels=max_pixels)
    except InputError as err:
        raise KernelError(err.message, path) from None
    return img.pixels.mean(axis=2)


def run(args: argparse.Namespace) -> int:
    if args.quality > 100:
        raise UnblurError(f"--quality must be between 1 and 100, got {args.quality}")
    if args.kernel is None:
        raise UnblurError(
            "no blur kernel given: pass --kernel K.npy|K.png (blind restoration without a "
            "kernel is not available in this version)"
        )
    import numpy as np

    from unblur import deconv, io

    kernel_raw = load_kernel(args.kernel, max_pixels=args.max_pixels)
    deconv.validate_kernel(kernel_raw, name=str(args.kernel))  # empty / negative / zeros
    inputs = expand_inputs(args.inputs)
    outputs = plan_outputs(inputs, args.output, suffix="_unblurred", overwrite=args.overwrite)
    if args.output is not None and args.output.suffix.lower() not in io.SUPPORTED_EXTENSIONS:
        ensure_folder(args.output)
    out_for = dict(zip(inputs, outputs, strict=True))

    def restore(path: Path) -> None:
        image = io.read_image(path, max_pixels=args.max_pixels)
        kernel = deconv.validate_kernel(kernel_raw, image.pixels.shape, name=str(args.kernel))
        pixels = image.pixels
        if args.space == "linear":
            pixels = io.srgb_to_linear(pixels)
        restored = deconv.deconvolve(pixels, kernel, method=args.method)
        if args.space == "linear":
            restored = io.linear_to_srgb(restored)
        io.write_image(
            out_for[path],
            image.with_pixels(np.clip(restored, 0.0, 1.0).astype(np.float32)),
            quality=args.quality,
            overwrite=args.overwrite,
        )

    return run_batch(inputs, restore, what="images", quiet=args.quiet).exit_code()
