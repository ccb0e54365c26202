"""``unblur live``: restore a live video source into a sink, at the source's rate."""

from __future__ import annotations

import argparse
import sys

from unblur.cli._common import HelpFormatter, apply_threads
from unblur.cli.video import (
    add_encoder_options,
    add_restoration_options,
    build_restorer_parts,
    encoder_settings,
    parse_time,
)
from unblur.errors import UnblurError

LIVE_WORK_WIDTH = 320  # half the flow resolution of `unblur video`: twice the speed

DESCRIPTION = """\
Restore a live video: any FFmpeg input (a file, a camera, a network stream)
processed at its own rate. A file plays at its real rate. When the
restoration falls behind, frames are dropped (only the newest waits), and
the count is reported with the frames per second achieved. The output keeps
each frame's time, with gaps where frames were dropped; video only.

The default method is fusion, the fast path, with the optical flow at 320
pixels wide (see `unblur video --help` for the methods; auto, temporal and
network run the restoration network and are far slower than real time on a
CPU).

examples:
  unblur live clip.mp4 -o restored.mkv
  unblur live /dev/video0 --format v4l2 -o webcam.mkv --duration 30
  unblur live tcp://127.0.0.1:5000 -o out.mkv
  unblur live rtsp://127.0.0.1:8554/cam -o udp://127.0.0.1:5001 --output-format mpegts
"""


def key_value(text: str) -> tuple[str, str]:
    if "=" not in text:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    key, value = text.split("=", 1)
    return key, value


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "live",
        help="restore a live video source at its own rate",
        description=DESCRIPTION,
        formatter_class=HelpFormatter,
    )
    p.add_argument("source", metavar="SOURCE", help="file, device or URL (any FFmpeg input)")
    p.add_argument("-o", "--output", required=True, metavar="SINK", help="output file or URL")
    add_restoration_options(p, default="fusion", work_width=LIVE_WORK_WIDTH)
    p.add_argument("--format", default=None, metavar="FMT", help="FFmpeg input format (v4l2...)")
    p.add_argument(
        "--option",
        type=key_value,
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="FFmpeg input option (repeatable)",
    )
    p.add_argument("--duration", type=parse_time, default=None, metavar="T", help="stop after T")
    p.add_argument(
        "--timeout", type=float, default=10.0, help="seconds to wait for data from a stream"
    )
    p.add_argument(
        "--no-pace",
        action="store_true",
        help="take frames as fast as they decode instead of at their timestamps",
    )
    add_encoder_options(p, preset="veryfast")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output file")
    p.add_argument("--quiet", "-q", action="store_true", help="no status line")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from unblur.progress import interactive
    from unblur.video.api import check_paths
    from unblur.video.live import LiveReport, run_live
    from unblur.video.temporal import VideoRestorer

    if args.timeout <= 0:
        raise UnblurError(f"--timeout must be > 0, got {args.timeout}")
    check_paths(args.source, args.output, overwrite=args.overwrite)
    encoder = encoder_settings(args)
    apply_threads(args.threads)
    deblurrer, settings = build_restorer_parts(args)
    restorer = VideoRestorer(args.method, deblurrer=deblurrer, duty=args.duty, settings=settings)
    show = not args.quiet and interactive()

    def status(report: LiveReport) -> None:
        if show:
            print(f"\r{report.describe()}", end="", file=sys.stderr, flush=True)

    try:
        report = run_live(
            args.source, args.output, restorer=restorer, input_format=args.format,
            input_options=dict(args.option), output_format=args.output_format,
            encoder=encoder, overwrite=args.overwrite, duration=args.duration,
            pace=not args.no_pace, timeout=args.timeout, on_status=status,
        )  # fmt: skip
    except KeyboardInterrupt as stop:
        done = getattr(stop, "report", None)
        if show:
            print(file=sys.stderr)
        summary = f"; {done.describe()}; wrote {args.output}" if done else ""
        print(f"unblur: interrupted{summary}", file=sys.stderr)
        return 130
    if show:
        print(file=sys.stderr)
    if report.broken is not None:
        print(
            f"unblur: error: {args.source}: {report.broken.describe()}; "
            f"{report.describe()}; wrote {args.output}",
            file=sys.stderr,
        )
        return 1
    if not args.quiet:
        print(f"live: {report.describe()}; wrote {args.output}", file=sys.stderr)
    return 0
