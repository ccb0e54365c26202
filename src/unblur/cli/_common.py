"""What the subcommands share: finding input files, planning outputs, batch summaries."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from unblur.errors import InputError, OutputError, UnblurError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".webp", ".bmp")


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Show defaults and keep the description's line breaks."""


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a number > 0, got {value}")
    return value


def add_kernel_size(parser: argparse.ArgumentParser) -> None:
    """``--kernel-size`` for the blind estimator; check it with :func:`check_kernel_size`."""
    parser.add_argument(
        "--kernel-size",
        type=positive_int,
        default=31,
        help="--method blind: side of the estimated kernel, larger than the blur (odd)",
    )


def check_kernel_size(size: int) -> None:
    """Raises: UnblurError (one line) unless ``size`` is odd and at least 3."""
    if size < 3 or size % 2 == 0:
        raise UnblurError(f"--kernel-size must be an odd number >= 3, got {size}")


def add_common_io(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--max-pixels",
        type=positive_int,
        default=200_000_000,
        help="refuse images with more pixels than this (decompression-bomb guard)",
    )
    parser.add_argument("--overwrite", action="store_true", help="replace existing files")
    parser.add_argument("--quiet", "-q", action="store_true", help="no progress bar")


def add_threads(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--threads",
        type=positive_int,
        default=None,
        metavar="N",
        help="CPU threads (default: the cores this process may use that are not already busy)",
    )


def default_threads() -> int:
    """Cores this process may use, less those busy with other work (1-minute load average):
    on 2 cores beside a training run, 2 threads ran 6 times slower than 1."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    cores = cores or 1
    try:
        busy = round(os.getloadavg()[0])
    except OSError:
        busy = 0
    return max(1, min(cores, cores - busy))


def apply_threads(threads: int | None) -> int:
    """Set torch's and OpenCV's thread counts (``None``: :func:`default_threads`)."""
    import cv2
    import torch

    n = threads or default_threads()
    torch.set_num_threads(n)
    cv2.setNumThreads(n)
    return n


def expand_inputs(paths: Iterable[Path], *, skip_suffix: str | None = None) -> list[Path]:
    """Expand folders to the image files directly inside them; keep files as given.

    ``skip_suffix``: leave out a folder's files whose name ends with it (``NAME_unblurred.png``:
    our own outputs from an earlier run, written next to the inputs).
    """
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            found = sorted(
                p
                for p in path.iterdir()
                if p.suffix.lower() in IMAGE_SUFFIXES
                and not (skip_suffix and p.stem.endswith(skip_suffix))
            )
            if not found:
                raise InputError("folder holds no images", path)
            files.extend(found)
        else:
            files.append(path)  # missing files are reported per file by the batch
    return files


def plan_outputs(
    inputs: list[Path],
    output: Path | None,
    *,
    suffix: str,
    overwrite: bool,
    extension: str | None = None,
) -> list[Path]:
    """Choose an output path for every input.

    * no ``-o``: next to the input, ``NAME<suffix>.EXT``;
    * ``-o`` with an image extension and a single input: that file;
    * otherwise ``-o`` is a folder (created here) receiving the inputs' names.

    ``extension`` (e.g. ``".png"``) replaces the inputs' extensions in the first and last
    cases.

    Everything that would make the writes fail is found here, before any work: existing
    outputs (without ``overwrite``), folders that cannot be created or written.

    Raises:
        OutputError: an output would replace an input (without ``overwrite``), an output
            exists (without ``overwrite``), two inputs map to one output, ``-o`` is a file
            name for several inputs or has no image extension for one, or a folder cannot be
            created or written.
    """
    if output is None:
        outs = [p.with_name(f"{p.stem}{suffix}{p.suffix}") for p in inputs]
    elif output.suffix.lower() in IMAGE_SUFFIXES and not output.is_dir():
        if len(inputs) != 1:
            raise OutputError(f"{len(inputs)} inputs need an output folder, not a file", output)
        outs = [output]
    elif output.suffix and len(inputs) == 1 and not output.is_dir():
        raise OutputError(
            f"{output.suffix!r} is not an image extension (use one of "
            f"{', '.join(IMAGE_SUFFIXES)}, or an existing folder)",
            output,
        )
    else:
        if output.exists() and not output.is_dir():
            raise OutputError("exists and is not a folder", output)
        outs = [output / p.name for p in inputs]
    if extension is not None and (output is None or outs[0] != output):
        outs = [o.with_suffix(extension) for o in outs]
    resolved_inputs = {_resolve(p) for p in inputs}
    seen: dict[Path, Path] = {}
    for src, dst in zip(inputs, outs, strict=True):
        key = _resolve(dst)
        if key in resolved_inputs and not overwrite:
            raise OutputError("output would replace an input; pass --overwrite to allow it", dst)
        if key in seen:
            raise OutputError(f"both {seen[key]} and {src} would be written here", dst)
        seen[key] = src
    if not overwrite:
        existing = [d for d in outs if d.exists() and _resolve(d) not in resolved_inputs]
        if existing:
            more = f" (and {len(existing) - 1} more)" if len(existing) > 1 else ""
            raise OutputError(f"already exists{more}; pass --overwrite to replace", existing[0])
    for folder in dict.fromkeys(d.parent for d in outs):
        ensure_folder(folder)
        if not os.access(folder, os.W_OK | os.X_OK):
            raise OutputError("folder is not writable", folder)
    return outs


def _resolve(path: Path) -> Path:
    try:
        return path.resolve()
    except OSError:
        return path.absolute()


def ensure_folder(path: Path) -> None:
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise OutputError(f"cannot create folder ({err.strerror or err})", path) from None


@dataclass
class BatchResult:
    done: list[Path] = field(default_factory=list)
    failed: list[tuple[Path, str]] = field(default_factory=list)

    def exit_code(self) -> int:
        return 1 if self.failed else 0


def run_batch(
    items: list[Path],
    work: Callable[[Path], Path | None],
    *,
    what: str,
    quiet: bool,
) -> BatchResult:
    """Run ``work`` on every item; a failing item is reported and the rest still run.

    ``work`` returns the path it wrote (or ``None``); a single-item run says where it wrote.
    """
    from unblur.progress import bar as progress_bar

    result = BatchResult()
    bar = progress_bar(items, desc=what, unit="file", enabled=not quiet and len(items) > 1)
    written = None
    for item in bar:
        try:
            written = work(item)
        except UnblurError as err:
            result.failed.append((item, str(err)))
            bar.write(f"unblur: error: {err}", file=sys.stderr)
        else:
            result.done.append(item)
    bar.close()
    if len(items) == 1 and result.done and written is not None and not quiet:
        print(f"wrote {written}", file=sys.stderr)
    if len(items) > 1 or result.failed:
        summary = f"{len(result.done)} of {len(items)} {what} done"
        if result.failed:
            summary += "; failed: " + ", ".join(str(p) for p, _ in result.failed)
        print(summary, file=sys.stderr)
    return result
