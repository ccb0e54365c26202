"""What the subcommands share: finding input files, planning outputs, batch summaries."""

from __future__ import annotations

import argparse
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


def expand_inputs(paths: Iterable[Path]) -> list[Path]:
    """Expand folders to the image files directly inside them; keep files as given."""
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            found = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
            if not found:
                raise InputError("folder holds no images", path)
            files.extend(found)
        else:
            files.append(path)  # missing files are reported per file by the batch
    return files


def plan_outputs(
    inputs: list[Path], output: Path | None, *, suffix: str, overwrite: bool
) -> list[Path]:
    """Choose an output path for every input.

    * no ``-o``: next to the input, ``NAME<suffix>.EXT``;
    * ``-o`` with an image extension and a single input: that file;
    * otherwise ``-o`` is a folder (created if needed) receiving the inputs' names.

    Raises:
        OutputError: an output would replace an input (without ``overwrite``),
            two inputs map to one output, or ``-o`` is a file name for several inputs.
    """
    if output is None:
        outs = [p.with_name(f"{p.stem}{suffix}{p.suffix}") for p in inputs]
    elif output.suffix.lower() in IMAGE_SUFFIXES and not output.is_dir():
        if len(inputs) != 1:
            raise OutputError(f"{len(inputs)} inputs need an output folder, not a file", output)
        outs = [output]
    else:
        if output.exists() and not output.is_dir():
            raise OutputError("exists and is not a folder", output)
        outs = [output / p.name for p in inputs]
    resolved_inputs = {_resolve(p) for p in inputs}
    seen: dict[Path, Path] = {}
    for src, dst in zip(inputs, outs, strict=True):
        key = _resolve(dst)
        if key in resolved_inputs and not overwrite:
            raise OutputError("output would replace an input; pass --overwrite to allow it", dst)
        if key in seen:
            raise OutputError(f"both {seen[key]} and {src} would be written here", dst)
        seen[key] = src
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
    work: Callable[[Path], None],
    *,
    what: str,
    quiet: bool,
) -> BatchResult:
    """Run ``work`` on every item; a failing item is reported and the rest still run."""
    from tqdm import tqdm

    result = BatchResult()
    bar = tqdm(items, desc=what, unit="file", disable=quiet, file=sys.stderr)
    for item in bar:
        try:
            work(item)
        except UnblurError as err:
            result.failed.append((item, str(err)))
            bar.write(f"unblur: error: {err}", file=sys.stderr)
        else:
            result.done.append(item)
    bar.close()
    if len(items) > 1 or result.failed:
        summary = f"{len(result.done)} of {len(items)} {what} done"
        if result.failed:
            summary += "; failed: " + ", ".join(str(p) for p, _ in result.failed)
        print(summary, file=sys.stderr)
    return result
