"""Errors that reach users as one-line messages.

Every error the command line reports to a user is an :class:`UnblurError`; its
message is a single line that names the file (where there is one) and the
problem. Anything else escaping the CLI is a bug.
"""

from __future__ import annotations

from pathlib import Path


class UnblurError(Exception):
    """Base class: a problem with the user's input or environment, not a bug."""

    def __init__(self, message: str, path: str | Path | None = None) -> None:
        self.path = None if path is None else Path(path)
        self.message = " ".join(str(message).split())  # always one line
        super().__init__(f"{self.path}: {self.message}" if self.path is not None else self.message)


class InputError(UnblurError):
    """An input file is missing, unreadable, truncated, hostile or unsupported."""


class ImageTooLargeError(InputError):
    """An image has more pixels than the configured limit (decompression bomb guard)."""


class KernelError(UnblurError):
    """A blur kernel is empty, negative, all zeros or larger than the image."""


class OutputError(UnblurError):
    """An output cannot be written (same as an input, not writable, disk full)."""


class ConfigError(UnblurError):
    """A configuration file or option is invalid."""


class ModelError(UnblurError):
    """A model name is unknown or a weights file is invalid."""
