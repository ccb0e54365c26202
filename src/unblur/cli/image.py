"""``unblur image``: restore blurred photos."""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

    from unblur.pipeline import Deblurrer

from unblur.cli._common import (
    HelpFormatter,
    add_common_io,
    add_kernel_size,
    check_kernel_size,
    ensure_folder,
    expand_inputs,
    plan_outputs,
    positive_int,
    run_batch,
)
from unblur.errors import ConfigError, InputError, UnblurError

CLASSICAL = ("hyperlaplacian", "wiener", "rl")
METHODS = ("auto", "net", "motion", "blind", *CLASSICAL)

# Mirrors of unblur.pipeline's defaults, kept here so that building the parser (and so
# ``unblur --version``) does not import torch; tests/test_cli.py checks they agree.
DEFAULT_MODEL = "nafnet-fast"
DEFAULT_TILE = 512
DEFAULT_TILE_OVERLAP = 64

DESCRIPTION = """\
Restore blurred photos.

Without a kernel (--method auto or net) the restoration network (--model)
restores each photo directly; large photos are processed in overlapping tiles
(--tile, --tile-overlap) blended without seams, so memory stays bounded. With
--kernel K (a .npy array or a grey image of the blur kernel, true-convolution
orientation) the known blur is undone by non-blind deconvolution in linear
light; --method auto then means hyperlaplacian, the best measured.
--method motion estimates the per-pixel motion field (as `unblur motion`)
and undoes it by spatially varying deconvolution; --method blind estimates
one uniform kernel from the photo.

Outputs: without -o, NAME_unblurred.EXT next to each input; -o FILE for one
input; -o FOLDER for several (created if needed). 16-bit, alpha, ICC and EXIF
are kept where the output format allows.

Several GPUs: launched by torchrun, each process takes every WORLD_SIZE-th
file (files[RANK::WORLD_SIZE]) and, with --device auto or cuda, the GPU
cuda:LOCAL_RANK; no process group is needed. Each process prints its own
summary and exit status.

examples:
  unblur image shot.jpg -o sharp.png
  unblur image photos/ --model nafnet-quality --half -o restored/
  unblur image shot.png --kernel kernel.npy -o sharp.png
  unblur image shot.jpg --method motion -o sharp.png
  unblur image photos/ --kernel kernel.png --method rl -o restored/
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
    from unblur.models import list_models

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
        help="auto: hyperlaplacian with --kernel, else net (the restoration network); "
        "motion: estimate the per-pixel motion field (motion-single network), then "
        "spatially varying hyperlaplacian; "
        "blind: estimate one uniform kernel from the image, then hyperlaplacian",
    )
    p.add_argument(
        "--kernel",
        type=Path,
        default=None,
        help="known blur kernel (.npy, or .png and other images) for the classical methods",
    )
    p.add_argument(
        "--space",
        choices=("linear", "srgb"),
        default="linear",
        help="classical, motion and blind methods: work in linear light (right for camera "
        "JPEGs) or on the stored values (right for data already linear, e.g. Levin's images)",
    )
    add_kernel_size(p)
    net = p.add_argument_group("restoration network (--method net)")
    net.add_argument(
        "--model", choices=list_models(task="restore"), default=DEFAULT_MODEL, help="network"
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


def resolve_method(method: str, kernel: Path | None) -> str:
    """The method to run: ``auto`` resolved; a kernel only with a classical method.

    Raises:
        UnblurError: ``--kernel`` with ``net``, or a classical method without ``--kernel``.
    """
    if method == "auto":
        return "hyperlaplacian" if kernel is not None else "net"
    if method in ("net", "motion", "blind") and kernel is not None:
        raise UnblurError(
            "--kernel is for the classical methods (" + ", ".join(CLASSICAL) + "); "
            f"--method {method} restores without one"
        )
    if method in CLASSICAL and kernel is None:
        raise UnblurError(
            f"--method {method} needs the blur kernel: pass --kernel K.npy|K.png "
            "(or use --method net, motion or blind, which need none)"
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

    from unblur.pipeline import Deblurrer, resolve_device

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
    )


def _blind(pixels: np.ndarray, kernel_size: int, space: str, path: Path) -> np.ndarray:
    """Estimate one uniform kernel (coarse-to-fine, L0 prior) and deconvolve with it."""
    from unblur import blind, io

    if min(pixels.shape[:2]) < 2 * kernel_size:
        raise InputError(
            f"image {pixels.shape[1]}x{pixels.shape[0]} is too small for --kernel-size "
            f"{kernel_size} (needs at least {2 * kernel_size} px a side)",
            path,
        )
    data = io.srgb_to_linear(pixels) if space == "linear" else pixels
    restored, _ = blind.deblur_blind(data, kernel_size)
    return io.linear_to_srgb(restored) if space == "linear" else restored


def _motion(pixels: np.ndarray, space: str, progress: bool) -> np.ndarray:
    """Estimate the per-pixel motion field and undo it by spatially varying deconvolution."""
    import numpy as np

    from unblur.motion_estimate import deblur_motion

    colour = pixels[..., :3] if pixels.shape[2] == 4 else pixels
    restored, _ = deblur_motion(colour, space=space, progress=progress)
    if pixels.shape[2] == 4:  # alpha passes through untouched
        restored = np.concatenate([restored, pixels[..., 3:]], axis=2)
    return restored


def run(args: argparse.Namespace) -> int:
    if args.quality > 100:
        raise UnblurError(f"--quality must be between 1 and 100, got {args.quality}")
    method = resolve_method(args.method, args.kernel)
    check_kernel_size(args.kernel_size)
    if args.tile and args.tile_overlap >= args.tile:
        raise ConfigError(
            f"--tile-overlap ({args.tile_overlap}) must be smaller than --tile ({args.tile})"
        )
    rank, world, local_rank = shard()
    import numpy as np

    from unblur import deconv, io

    kernel_raw = None
    if method in CLASSICAL:
        kernel_raw = load_kernel(args.kernel, max_pixels=args.max_pixels)
        deconv.validate_kernel(kernel_raw, name=str(args.kernel))  # empty / negative / zeros
    inputs = expand_inputs(args.inputs)
    outputs = plan_outputs(inputs, args.output, suffix="_unblurred", overwrite=args.overwrite)
    if args.output is not None and args.output.suffix.lower() not in io.SUPPORTED_EXTENSIONS:
        ensure_folder(args.output)
    out_for = dict(zip(inputs, outputs, strict=True))
    mine = inputs[rank::world]
    deblurrer = make_deblurrer(args, local_rank, world) if method == "net" else None

    def restore(path: Path) -> None:
        image = io.read_image(path, max_pixels=args.max_pixels)
        if deblurrer is not None:
            restored = deblurrer.restore(image.pixels, progress=not args.quiet)
        elif method == "blind":
            restored = _blind(image.pixels, args.kernel_size, args.space, path)
        elif method == "motion":
            restored = _motion(image.pixels, args.space, not args.quiet)
        else:
            kernel = deconv.validate_kernel(kernel_raw, image.pixels.shape, name=str(args.kernel))
            pixels = image.pixels
            if args.space == "linear":
                pixels = io.srgb_to_linear(pixels)
            restored = deconv.deconvolve(pixels, kernel, method=method)
            if args.space == "linear":
                restored = io.linear_to_srgb(restored)
        io.write_image(
            out_for[path],
            image.with_pixels(np.clip(restored, 0.0, 1.0).astype(np.float32)),
            quality=args.quality,
            overwrite=args.overwrite,
        )

    what = "images" if world == 1 else f"images (rank {rank} of {world})"
    return run_batch(mine, restore, what=what, quiet=args.quiet).exit_code()
