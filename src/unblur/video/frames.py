"""Folders of frames, as research datasets store videos (GoPro, REDS).

A *sequence* is a folder whose image files, sorted by name (numbers compared as numbers),
are consecutive frames. A dataset folder holds sequences:

* the folder itself holds images: one sequence;
* REDS: ``ROOT/000/00000000.png ...``: every subfolder holding images is a sequence;
* GoPro: ``ROOT/GOPR0372_07_00/blur/000047.png ...`` (with ``sharp/`` beside it): the
  ``blur`` folder of every subfolder is the sequence (``sharp`` is the ground truth and is
  never taken as input).

Outputs mirror the input: the same relative folders and file names under the output folder.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from unblur.errors import InputError, OutputError

__all__ = ["find_sequences", "is_frame_folder", "list_frames", "read_frames"]

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".webp", ".bmp")
_GROUND_TRUTH = ("sharp", "gt", "sharp_gamma")


def _natural(path: Path) -> list[object]:
    return [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", path.name)]


def list_frames(folder: Path) -> list[Path]:
    """Image files directly inside ``folder``, in frame order (hidden files skipped)."""
    return sorted(
        (
            p
            for p in Path(folder).iterdir()
            if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in IMAGE_SUFFIXES
        ),
        key=_natural,
    )


def is_frame_folder(path: Path) -> bool:
    """True for a folder that holds frames or sequences of frames."""
    return Path(path).is_dir()


def find_sequences(root: Path) -> list[Path]:
    """The sequences under ``root`` (module docstring), as relative folders (``.`` for root).

    Raises:
        InputError: no sequence found.
    """
    root = Path(root)
    if list_frames(root):
        return [Path(".")]
    found: list[Path] = []
    for sub in sorted((p for p in root.iterdir() if p.is_dir()), key=_natural):
        if sub.name.lower() in _GROUND_TRUTH or sub.name.startswith("."):
            continue
        if (sub / "blur").is_dir() and list_frames(sub / "blur"):
            found.append(sub.relative_to(root) / "blur")
        elif list_frames(sub):
            found.append(sub.relative_to(root))
    if not found:
        raise InputError(
            "holds no frames (images) and no sequences (subfolders of frames, or "
            "GoPro-style SEQUENCE/blur/ folders)",
            root,
        )
    return found


def read_frames(
    folder: Path, *, max_pixels: int = 200_000_000
) -> Iterator[tuple[Path, np.ndarray]]:
    """``(path, uint8 RGB frame)`` for every frame of a sequence, one at a time.

    Raises:
        InputError: an unreadable frame, or one whose size differs from the first.
    """
    from unblur import io

    size = None
    for path in list_frames(folder):
        image = io.read_image(path, max_pixels=max_pixels)
        pixels = image.pixels
        if pixels.shape[2] == 1:
            pixels = np.repeat(pixels, 3, axis=2)
        frame = np.rint(np.clip(pixels, 0, 1) * 255).astype(np.uint8)
        if size is None:
            size = frame.shape[:2]
        elif frame.shape[:2] != size:
            raise InputError(
                f"frame size changes from {size[1]}x{size[0]} to {frame.shape[1]}x{frame.shape[0]}",
                path,
            )
        yield path, frame


def check_outputs(paths: list[Path], *, overwrite: bool, inputs: set[Path]) -> None:
    """Refuse outputs that exist (without ``overwrite``) or would replace an input."""
    for path in paths:
        resolved = path.resolve()
        if resolved in inputs:
            raise OutputError("output would replace an input frame", path)
        if path.exists() and not overwrite:
            raise OutputError("already exists; pass --overwrite to replace", path)
