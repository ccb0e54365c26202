"""The evaluation sets' layouts: which blurred picture goes with which sharp one.

:func:`find_samples` recognises, from what is on disk:

* **flat pairs**: ``ROOT/blur/`` and ``ROOT/sharp/`` with the same file names (our
  ``unblur synth`` output, the shared ``gopro-sample`` and ``levin09``). The folder names
  ``blur``/``blurred``/``input`` and ``sharp``/``gt``/``GT``/``target`` are all understood.
* **GoPro's nested scenes**: ``ROOT/SCENE/blur/`` and ``ROOT/SCENE/sharp/`` (GOPRO_Large's
  ``test/`` folder), also one level deeper (``ROOT/test/SCENE/...``); a sample is named
  ``SCENE/FILE``.
* **list files** (RealBlur, HIDE): ``DATASET`` is a text file, one sample a line, paths
  relative to the file's folder (or absolute), separated by spaces, tabs or a comma. Two
  paths make a pair: the one under a folder named like a sharp folder (``gt``, ``sharp``,
  ``GT``, ``target``) is the reference; when neither or both are, the first is the
  reference, as in RealBlur's ``RealBlur_J_test_list.txt`` (``gt/gt_1.png blur/blur_1.png``).
  One path is a blurred picture without ground truth. Blank lines and ``#`` comments are
  skipped.
* **no ground truth**: a folder of blurred pictures (``ROOT/*.png``), or ``ROOT/blur/``
  without a sharp folder.

A known blur kernel is attached where one exists: ``ROOT/kernel/NAME.npy`` (``unblur
synth``), or in ``ROOT/kernels/`` a ``K.npy`` whose stem ends the sample's stem after an
underscore (Levin's ``im1_kernel3`` -> ``kernel3.npy``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from unblur.errors import InputError

__all__ = ["BLUR_FOLDERS", "SHARP_FOLDERS", "Sample", "find_samples", "load_kernel"]

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".webp", ".bmp")
BLUR_FOLDERS = ("blur", "blurred", "input")
SHARP_FOLDERS = ("sharp", "gt", "GT", "target")
_SHARP_NAMES = {name.lower() for name in SHARP_FOLDERS}


@dataclass(frozen=True)
class Sample:
    """One picture to restore and, where known, its sharp original and blur kernel.

    Attributes:
        name: unique within the set, ``/``-separated (``SCENE/FILE`` for nested scenes),
            without the extension.
        blurred: the blurred picture.
        sharp: the sharp original, or ``None`` (no ground truth).
        kernel: a ``.npy`` blur kernel (true convolution), or ``None``.
    """

    name: str
    blurred: Path
    sharp: Path | None = None
    kernel: Path | None = None


def _images(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def _child(root: Path, names: tuple[str, ...]) -> Path | None:
    for name in names:
        if (root / name).is_dir():
            return root / name
    return None


def _pair_folders(root: Path, prefix: str) -> list[Sample]:
    """Samples of one ``blur/`` + ``sharp/`` folder (sharp optional); names get ``prefix``."""
    blur = _child(root, BLUR_FOLDERS)
    assert blur is not None
    sharp = _child(root, SHARP_FOLDERS)
    samples = []
    for path in _images(blur):
        reference = None
        if sharp is not None:
            matches = [sharp / path.name, *(sharp / (path.stem + s) for s in IMAGE_SUFFIXES)]
            reference = next((m for m in matches if m.is_file()), None)
            if reference is None:
                raise InputError(f"no sharp picture for {path.name} in {sharp}", root)
        samples.append(Sample(prefix + path.stem, path, reference, _kernel_for(root, path.stem)))
    return samples


def _kernel_for(root: Path, stem: str) -> Path | None:
    own = root / "kernel" / f"{stem}.npy"
    if own.is_file():
        return own
    shared = root / "kernels"
    if shared.is_dir():
        for candidate in sorted(shared.glob("*.npy")):
            if stem.endswith("_" + candidate.stem):
                return candidate
    return None


def _scene_folders(root: Path, depth: int = 2) -> list[tuple[Path, str]]:
    """``(folder, name prefix)`` of every ``blur/`` + ``sharp/`` folder below ``root``."""
    found = []
    for child in sorted(p for p in root.iterdir() if p.is_dir()):
        if _child(child, BLUR_FOLDERS) and _child(child, SHARP_FOLDERS):
            found.append((child, f"{child.name}/"))
        elif depth > 1:
            found.extend(
                (folder, f"{child.name}/{prefix}")
                for folder, prefix in _scene_folders(child, depth - 1)
            )
    return found


def _list_file(path: Path) -> list[Sample]:
    base = path.parent
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise InputError(f"cannot read the list file ({err})", path) from None
    samples, names = [], set()
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        fields = [f for f in re.split(r"[\s,]+", line) if f]
        if len(fields) > 2:
            raise InputError(f"line {number} holds {len(fields)} paths; expected 1 or 2", path)
        if len(fields) == 1:
            blurred_field, sharp_field = fields[0], None
        else:
            first, second = ({part.lower() for part in Path(f).parts[:-1]} for f in fields)
            if _SHARP_NAMES & second and not _SHARP_NAMES & first:
                blurred_field, sharp_field = fields
            else:  # RealBlur's order: the reference first
                sharp_field, blurred_field = fields
        blurred = _resolve_listed(base, blurred_field, number, path)
        sharp = None if sharp_field is None else _resolve_listed(base, sharp_field, number, path)
        name = str(Path(blurred_field).with_suffix("")).replace("\\", "/").lstrip("/")
        if name in names:
            raise InputError(f"line {number}: {name} is listed twice", path)
        names.add(name)
        samples.append(Sample(name, blurred, sharp))
    return samples


def _resolve_listed(base: Path, field: str, number: int, listing: Path) -> Path:
    path = Path(field)
    path = path if path.is_absolute() else base / path
    if not path.is_file():
        raise InputError(f"line {number}: no such file {path}", listing)
    return path


def find_samples(dataset: Path) -> tuple[str, list[Sample]]:
    """Find the samples of an evaluation set in any of the layouts of the module docstring.

    Args:
        dataset: the set's folder, or a list file.

    Returns:
        ``(layout, samples)``: the layout's name (``flat``, ``scenes``, ``list``,
        ``no ground truth``) and the samples in a stable order.

    Raises:
        InputError: nothing there, an empty set, a blurred picture without its sharp one,
            a list file line that names no file.
    """
    if not dataset.exists():
        raise InputError("no such file or folder", dataset)
    if dataset.is_file():
        if dataset.suffix.lower() in IMAGE_SUFFIXES:
            raise InputError(
                "is one picture; give the folder of the set (blur/ and sharp/), "
                "a folder of blurred pictures, or a list file",
                dataset,
            )
        layout, samples = "list", _list_file(dataset)
    elif _child(dataset, BLUR_FOLDERS):
        samples = _pair_folders(dataset, "")
        layout = "flat" if _child(dataset, SHARP_FOLDERS) else "no ground truth"
    elif scenes := _scene_folders(dataset):
        layout = "scenes"
        samples = [s for folder, prefix in scenes for s in _pair_folders(folder, prefix)]
    else:
        layout = "no ground truth"
        samples = [Sample(p.stem, p) for p in _images(dataset)]
    if not samples:
        raise InputError(
            "holds no pictures to evaluate (expected blur/ + sharp/, SCENE/blur + "
            "SCENE/sharp, a list file, or a folder of blurred pictures)",
            dataset,
        )
    stems = [s.name for s in samples]
    if len(set(stems)) != len(stems):
        twice = next(n for n in stems if stems.count(n) > 1)
        raise InputError(f"two pictures are both named {twice} (different extensions?)", dataset)
    return layout, samples


def load_kernel(path: Path) -> np.ndarray:
    """A ``.npy`` kernel, never unpickled.

    Raises:
        InputError: not a readable array.
    """
    try:
        return np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as err:
        raise InputError(f"not a readable kernel array ({err})", path) from None
