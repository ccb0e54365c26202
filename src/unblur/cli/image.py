"""``unblur image``: restore blurred photos."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

    from unblur.restoration.network import Deblurrer

from unblur.cli._common import (
    HelpFormatter,
    add_common_io,
    add_kernel_size,
    add_threads,
    apply_threads,
    check_kernel_size,
    expand_inputs,
    plan_outputs,
    positive_int,
    run_batch,
)
from unblur.errors import ConfigError, InputError, UnblurError

SUFFIX = "_unblurred"

# Mirrors of unblur.restore's names and defaults, kept here so that building the parser (and so
# ``unblur --version``) does not import numpy or torch; tests/test_cli.py checks they agree.
METHODS = ("auto", "network", "kernel", "blind", "motion")
DECONVOLUTIONS = ("hyperlaplacian", "wiener", "rl")
SPACES = ("auto", "linear", "srgb")
DEFAULT_MODEL = "nafnet-fast"
DEFAULT_TILE = 1024
DEFAULT_TILE_OVERLAP = 64

DESCRIPTION = """\
Restore blurred photos (unblur.restore: one API, five methods).

--method auto (the default) chooses per photo: with --kernel it deconvolves
with that kernel; otherwise it estimates the blur kernel on several windows
of the photo and, when they agree and the noise is low (camera shake of a
static scene), deconvolves with it (blind; a colour photo's result is that
deconvolution blended with the network's restoration and with the network
run on the deconvolution, by measured shares); else it runs the restoration
network. --verbose prints the choice and its reason for every photo.

  network  the restoration network (--model); large photos go through
           overlapping tiles blended without seams, so memory stays bounded
  kernel   non-blind deconvolution with --kernel K (a .npy array or a grey
           image of the blur kernel), --deconvolution hyperlaplacian (best
           measured), wiener or rl
  blind    one uniform kernel estimated from the photo, then hyperlaplacian
  motion   the per-pixel motion field (as `unblur motion`), then spatially
           varying deconvolution
The classical methods work in linear light for colour photos and on the
stored values for grey ones (--space auto); --space overrides.

Outputs: without -o, NAME_unblurred.EXT next to each input (a folder's own
*_unblurred files are not taken as inputs); -o FILE for one input; -o FOLDER
for several (created if needed). Existing outputs are refused before any
work unless --overwrite. 16-bit, alpha, ICC and EXIF are kept where the
output format allows.

Several GPUs: launched by torchrun, each process takes every WORLD_SIZE-th
file (files[RANK::WORLD_SIZE]) and, with --device auto or cuda, the GPU
cuda:LOCAL_RANK; no process group is needed. Each process prints its own
summary and exit status.

examples:
  unblur image shot.jpg -o sharp.png --verbose
  unblur image photos/ --method network --half -o restored/
  unblur image shot.png --kernel kernel.npy -o sharp.png
  unblur image shot.jpg --method motion -o sharp.png
  unblur image photos/ --kernel kernel.png --deconvolution rl -o restored/
  torchrun --nproc_per_node 4 -m unblur image photos/ -o restored/
"""


def non_negative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a number >= 0, got {value}")
    return value


def add_parser(sub: argparse._SubParsersAction) -> None:
    from unblur.models import get_spec, list_models

    p = sub.add_parser(
        "image",
        help="restore blurred photos",
        description=DESCRIPTION,
        formatter_class=HelpFormatter,
    )
    p.add_argument("inputs", nargs="+", type=Path, metavar="IN", help="image files or folders")
    p.add_argument("-o", "--output", type=Path, default=None, help="output file or folder")
    p.add_argument(
        "--method",
        choices=METHODS,
        default="auto",
        help="how to restore (see above); auto chooses per photo",
    )
    p.add_argument(
        "--kernel",
        type=Path,
        default=None,
        help="known blur kernel (.npy, or .png and other images): --method kernel",
    )
    p.add_argument(
        "--deconvolution",
        choices=DECONVOLUTIONS,
        default="hyperlaplacian",
        help="--method kernel: the non-blind deconvolution",
    )
    p.add_argument(
        "--space",
        choices=SPACES,
        default="auto",
        help="classical methods: linear light (camera photos), srgb (the stored values: data "
        "already linear, e.g. Levin's), or auto (colour: linear, grey: srgb)",
    )
    p.add_argument(
        "--verbose", "-v", action="store_true", help="print the method chosen and why, per photo"
    )
    add_kernel_size(p)
    net = p.add_argument_group("restoration network (--method network, and auto)")
    net.add_argument(
        "--model",
        choices=[n for n in list_models(task="restore") if get_spec(n).has_weights],
        default=DEFAULT_MODEL,
        help="network (those with shipped weights)",
    )
    net.add_argument(
        "--weights",
        type=Path,
        default=None,
        metavar="FILE",
        help="safetensors weights for --model's architecture instead of the shipped ones",
    )
    net.add_argument(
        "--device", default="auto", help="auto (cuda, else mps, else cpu), cpu, cuda, cuda:N, mps"
    )
    net.add_argument(
        "--tile",
        type=non_negative_int,
        default=DEFAULT_TILE,
        metavar="N",
        help="tile side in pixels (0: whole image at once)",
    )
    net.add_argument(
        "--tile-overlap",
        type=non_negative_int,
        default=DEFAULT_TILE_OVERLAP,
        metavar="N",
        help="least overlap between tiles in pixels",
    )
    net.add_argument(
        "--half", action="store_true", help="half precision: fp16 on a GPU, bf16 on the CPU"
    )
    net.add_argument(
        "--tta",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="also restore the picture turned and flipped seven ways and average (+0.05 to +0.17 "
        "dB, 8x the network's time); default: all eight up to 1280x720, the four flips up to "
        "2.1 megapixels (full HD), one pass for larger pictures",
    )
    p.add_argument("--quality", type=positive_int, default=95, help="JPEG/WebP quality (1-100)")
    add_common_io(p)
    add_threads(p)
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


def check_method(method: str, kernel: Path | None) -> str:
    """The method to run (``auto`` with a kernel is ``kernel``).

    Raises:
        UnblurError: ``--kernel`` with a method that estimates its own blur, or ``--method
            kernel`` without ``--kernel``.
    """
    if method == "auto" and kernel is not None:
        return "kernel"
    if method in ("network", "motion", "blind") and kernel is not None:
        raise UnblurError(
            f"--kernel is for --method kernel (or auto); --method {method} restores without one"
        )
    if method == "kernel" and kernel is None:
        raise UnblurError(
            "--method kernel needs the blur kernel: pass --kernel K.npy|K.png "
            "(or use --method auto, network, motion or blind, which need none)"
        )
    return method


def shard() -> tuple[int, int, int]:
    """``(rank, world_size, local_rank)`` from torchrun's environment; ``(0, 1, 0)`` alone.

    Raises:
        ConfigError: the variables are not whole numbers or are inconsistent.
    """
    names = ("RANK", "WORLD_SIZE", "LOCAL_RANK")
    try:
        world = int(os.environ.get("WORLD_SIZE", "1") or "1")
        rank = int(os.environ.get("RANK", "0") or "0")
        local_rank = int(os.environ.get("LOCAL_RANK", str(rank)) or "0")
    except ValueError:
        shown = ", ".join(f"{n}={os.environ.get(n)!r}" for n in names)
        raise ConfigError(f"bad torchrun environment: {shown}") from None
    if world < 1 or not 0 <= rank < world or local_rank < 0:
        raise ConfigError(f"bad torchrun environment: RANK={rank}, WORLD_SIZE={world}")
    return rank, world, local_rank


def make_deblurrer(args: argparse.Namespace, local_rank: int, world: int) -> Deblurrer:
    """Load the network once, on this process's device."""
    import torch

    from unblur.restoration.network import Deblurrer, resolve_device

    device = args.device
    if world > 1 and device in ("auto", "cuda") and torch.cuda.is_available():
        device = f"cuda:{local_rank}"
    dev = resolve_device(device)
    precision = "fp32"
    if args.half:
        precision = "fp16" if dev.type in ("cuda", "mps") else "bf16"
    return Deblurrer(
        args.model,
        weights=args.weights,
        device=dev,
        precision=precision,  # type: ignore[arg-type]
        tile=args.tile,
        tile_overlap=args.tile_overlap,
        tta="auto" if args.tta is None else args.tta,
    )


def run(args: argparse.Namespace) -> int:
    if args.quality > 100:
        raise UnblurError(f"--quality must be between 1 and 100, got {args.quality}")
    method = check_method(args.method, args.kernel)
    check_kernel_size(args.kernel_size)
    if args.tile and args.tile_overlap >= args.tile:
        raise ConfigError(
            f"--tile-overlap ({args.tile_overlap}) must be smaller than --tile ({args.tile})"
        )
    rank, world, local_rank = shard()
    inputs = expand_inputs(args.inputs, skip_suffix=None if args.output else SUFFIX)
    outputs = plan_outputs(inputs, args.output, suffix=SUFFIX, overwrite=args.overwrite)
    out_for = dict(zip(inputs, outputs, strict=True))
    apply_threads(args.threads)

    from unblur import io
    from unblur.restoration import deconv
    from unblur.restoration.api import restore

    kernel_raw = None
    if method == "kernel":
        kernel_raw = load_kernel(args.kernel, max_pixels=args.max_pixels)
        deconv.validate_kernel(kernel_raw, name=str(args.kernel))  # empty / negative / zeros
    mine = inputs[rank::world]
    needs_net = method == "network" or (method == "auto" and kernel_raw is None)
    deblurrer = make_deblurrer(args, local_rank, world) if needs_net else None

    def restore_one(path: Path) -> Path:
        image = io.read_image(path, max_pixels=args.max_pixels)
        kernel = None
        if kernel_raw is not None:
            kernel = deconv.validate_kernel(kernel_raw, image.pixels.shape, name=str(args.kernel))
        try:
            result = restore(
                image.pixels,
                args.method,
                kernel=kernel,
                deblurrer=deblurrer,
                deconvolution=args.deconvolution,
                space=args.space,
                kernel_size=args.kernel_size,
                device=args.device,
                progress=not args.quiet,
            )
        except InputError as err:  # e.g. too small for --kernel-size: name the file
            raise InputError(err.message, path) from None
        if args.verbose:
            print(f"{path}: {result.describe()}", file=sys.stderr)
        io.write_image(
            out_for[path],
            image.with_pixels(result.pixels),  # float32 in [0, 1] already
            quality=args.quality,
            overwrite=args.overwrite,
        )
        return out_for[path]

    what = "images" if world == 1 else f"images (rank {rank} of {world})"
    return run_batch(mine, restore_one, what=what, quiet=args.quiet).exit_code()
