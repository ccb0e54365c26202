"""Progress bars for long work: one line per level, and none of tqdm's cursor control when
standard error is not a terminal (a log file or a pipe gets no bar at all)."""

from __future__ import annotations

import sys
from collections.abc import Iterable
from typing import Any

__all__ = ["bar", "interactive"]


def interactive() -> bool:
    """True when standard error is a terminal (bars can redraw in place)."""
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):
        return False


def bar(
    iterable: Iterable[Any] | None = None,
    *,
    desc: str,
    unit: str = "it",
    total: int | None = None,
    level: int = 0,
    enabled: bool = True,
) -> Any:
    """A tqdm bar on standard error, on its own line ``level`` (0: the outer loop).

    Inner levels (tiles inside an image, patches inside a deconvolution) vanish when done, so
    that a batch leaves one line per level, not one per image. Disabled when ``enabled`` is
    false (``--quiet``) or standard error is not a terminal.
    """
    from tqdm import tqdm

    return tqdm(
        iterable,
        desc=desc,
        unit=unit,
        total=total,
        position=level,
        leave=level == 0,
        disable=not (enabled and interactive()),
        file=sys.stderr,
        dynamic_ncols=True,
    )
