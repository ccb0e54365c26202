"""The ``unblur`` command line.

One module per subcommand, each with ``add_parser(subparsers)`` and
``run(args) -> int``. Heavy imports (numpy, torch) happen inside ``run`` so
that ``unblur --version`` and ``unblur --help`` answer at once.
"""

from __future__ import annotations

import argparse
import os
import sys
import traceback
from collections.abc import Sequence

from unblur import __version__
from unblur.cli import eval as eval_
from unblur.cli import export, image, live, motion, serve, synth, train, video
from unblur.errors import UnblurError

SUBCOMMANDS = (image, video, live, motion, synth, train, export, eval_, serve)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="unblur",
        description="Remove motion blur from photos: estimate the motion, restore the sharp image.",
    )
    parser.add_argument("--version", action="version", version=f"unblur {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module in SUBCOMMANDS:
        module.add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the process exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help(sys.stderr)
        return 2
    try:
        return int(args.run(args))
    except UnblurError as err:
        print(f"unblur: error: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("unblur: interrupted", file=sys.stderr)
        return 130
    except Exception as err:  # a bug: one line for the user, the traceback on request
        if os.environ.get("UNBLUR_DEBUG"):
            traceback.print_exc()
        print(
            f"unblur: internal error: {type(err).__name__}: {err} "
            "(set UNBLUR_DEBUG=1 for a traceback and please report it)",
            file=sys.stderr,
        )
        return 70
