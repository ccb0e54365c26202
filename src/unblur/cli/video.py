"""``unblur video``: restore a blurred video (or folders of frames), streaming."""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

from unblur.cli._common import HelpFormatter, add_threads, apply_threads, positive_int
from unblur.errors import UnblurError

# Mirrors of unblur.video's names and defaults, kept here so that building the parser does
# not import numpy, torch or PyAV; tests/test_video_cli.py checks they agree.
METHODS = ("auto", "temporal", "fusion", "network", "none")
DEFAULT_RADIUS = 2
DEFAULT_WORK_WIDTH = 640

DESCRIPTION = """\
Restore a blurred video, frame by frame with its neighbours, as a stream:
memory stays flat whatever the length.

Methods:
  auto      temporal or network, chosen per clip from its first 10 frames
            (the default): temporal when their motion, hence their blur,
            varies enough that some frames are much sharper than their
            neighbours (a hand-held camera), network when every frame is
            about equally blurred (steady motion: fusing neighbours then
            gains nothing and its misalignment costs); the summary line
            says which and why ("auto: network (sharpness gain
            0.14, motion gain 0.54)")
  temporal  neighbouring frames are aligned with optical flow and fused,
            each pixel taken mostly from the sharpest well-aligned frames
            (the blur of each frame is its motion, from the flow, times the
            duty cycle, estimated from the clip); then the restoration
            network where blur remains
  fusion    the fusion alone: the fast path, about live speed at 640x360
  network   the restoration network on each frame alone
  none      no restoration: a plain re-encode
--duty D gives the duty cycle (exposure time / frame interval) instead of
estimating it.

Kept: frame rate and variable frame timing, resolution, rotation, colour
tags; audio and subtitle streams are copied untouched (--no-audio,
--no-subtitles leave them out). The encoder follows the input's codec at the
input's bit rate; --codec, --crf, --bitrate, --preset override.

Folders of frames in and out: IN may be a folder of frames, or a dataset of
sequences (REDS: IN/000/*.png; GoPro: IN/SEQ/blur/*.png); -o a folder
(mirrored, one PNG per frame) or a video file (one sequence, at --fps).

The output is written to a temporary file and renamed when done. It never
replaces the input, and an existing output is refused unless --overwrite. A
corrupt or truncated input, or a frame size change, stops with an error
after the frames before it were restored: the output is closed and plays.
Ctrl-C does the same.

examples:
  unblur video shaky.mp4 -o steady.mp4
  unblur video shaky.mp4 -o fast.mp4 --method fusion --start 10 --end 0:25
  unblur video GOPRO_Large/test/ -o restored/ --method temporal
  unblur video frames/ -o clip.mkv --fps 24 --codec ffv1
"""


def parse_time(text: str) -> float:
    """Seconds from ``12.5``, ``1:02.5`` or ``0:01:02.5``."""
    if not re.fullmatch(r"\d+(\.\d*)?|(\d+:){1,2}\d+(\.\d*)?", text.strip()):
        raise argparse.ArgumentTypeError(f"expected seconds or [H:]M:S, got {text!r}")
    seconds = 0.0
    for part in text.strip().split(":"):
        seconds = seconds * 60 + float(part)
    return seconds


def duty_value(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not 0 < value <= 1:
        raise argparse.ArgumentTypeError(f"the duty cycle is in (0, 1], got {value}")
    return value


def bitrate_value(text: str) -> int:
    match = re.fullmatch(r"(\d+(?:\.\d+)?)([kKmM]?)", text.strip())
    if not match:
        raise argparse.ArgumentTypeError(f"expected bits per second like 4M or 800k, got {text!r}")
    scale = {"": 1, "k": 1_000, "m": 1_000_000}[match.group(2).lower()]
    return int(float(match.group(1)) * scale)


def add_encoder_options(p: argparse.ArgumentParser, *, preset: str | None) -> None:
    enc = p.add_argument_group("encoder (default: like the input's)")
    enc.add_argument("--codec", default=None, help="video encoder, e.g. libx264, libx265, ffv1")
    enc.add_argument("--crf", type=int, default=None, help="constant quality (lower is better)")
    enc.add_argument(
        "--bitrate", type=bitrate_value, default=None, help="video bit rate, e.g. 4M, 800k"
    )
    enc.add_argument("--preset", default=preset, help="encoder speed preset (libx264/libx265)")
    enc.add_argument(
        "--output-format", default=None, metavar="FMT", help="FFmpeg output format (mpegts...)"
    )


def add_restoration_options(
    p: argparse.ArgumentParser, *, default: str, work_width: int = DEFAULT_WORK_WIDTH
) -> None:
    p.add_argument("--method", choices=METHODS, default=default, help="how to restore")
    p.add_argument(
        "--duty", type=duty_value, default=None, help="duty cycle (default: estimated per clip)"
    )
    p.add_argument(
        "--radius", type=int, default=DEFAULT_RADIUS, help="neighbours fused on each side"
    )
    p.add_argument(
        "--work-width",
        type=positive_int,
        default=work_width,
        help="optical flow and the fusion weights run on frames shrunk to this width",
    )
    net = p.add_argument_group("restoration network (auto, temporal, network)")
    net.add_argument("--model", default="nafnet-fast", help="restoration network")
    net.add_argument("--weights", type=Path, default=None, metavar="FILE", help="its weights")
    net.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N, mps")
    net.add_argument("--half", action="store_true", help="fp16 on a GPU, bf16 on the CPU")
    net.add_argument("--tile", type=int, default=1024, metavar="N", help="tile side (0: whole)")
    add_threads(p)


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "video",
        help="restore a blurred video or folders of frames",
        description=DESCRIPTION,
        formatter_class=HelpFormatter,
    )
    p.add_argument("input", metavar="IN", help="video file, stream URL, or folder of frames")
    p.add_argument("-o", "--output", required=True, help="video file or folder")
    add_restoration_options(p, default="auto")
    p.add_argument("--start", type=parse_time, default=None, metavar="T", help="start at T")
    p.add_argument("--end", type=parse_time, default=None, metavar="T", help="stop at T")
    p.add_argument("--fps", type=float, default=30.0, help="frame rate of folders of frames")
    p.add_argument("--no-audio", action="store_true", help="leave the audio streams out")
    p.add_argument("--no-subtitles", action="store_true", help="leave the subtitles out")
    p.add_argument("--format", default=None, metavar="FMT", help="FFmpeg input format")
    add_encoder_options(p, preset=None)
    p.add_argument("--max-pixels", type=positive_int, default=200_000_000, help="frame guard")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress bar, no summary")
    p.set_defaults(run=run)


def build_restorer_parts(args: argparse.Namespace) -> tuple[object, object]:
    """``(deblurrer or None, FusionSettings)`` from the restoration options."""
    from unblur.video.temporal import USES_NETWORK, FusionSettings

    if not 0 <= args.radius <= 8:
        raise UnblurError(f"--radius must be between 0 and 8, got {args.radius}")
    settings = FusionSettings(radius=args.radius, work_width=args.work_width)
    deblurrer = None
    if args.method in USES_NETWORK:
        from unblur.restoration.network import resolve_device
        from unblur.video.api import make_deblurrer

        dev = resolve_device(args.device)
        precision = "fp32"
        if args.half:
            precision = "fp16" if dev.type in ("cuda", "mps") else "bf16"
        deblurrer = make_deblurrer(
            args.model, weights=args.weights, device=str(dev), precision=precision,
            tile=args.tile or None,
        )  # fmt: skip
    return deblurrer, settings


def encoder_settings(args: argparse.Namespace) -> object:
    from unblur.video.stream import EncoderSettings

    if args.crf is not None and args.bitrate is not None:
        raise UnblurError("--crf and --bitrate are two ways to set the quality; give one")
    return EncoderSettings(codec=args.codec, crf=args.crf, bitrate=args.bitrate, preset=args.preset)


def run(args: argparse.Namespace) -> int:
    if args.start is not None and args.end is not None and args.end <= args.start:
        raise UnblurError(f"--end ({args.end:g} s) must be after --start ({args.start:g} s)")
    if args.fps <= 0:
        raise UnblurError(f"--fps must be > 0, got {args.fps}")
    from unblur.video.api import Interrupted, check_paths, restore_file

    check_paths(args.input, args.output, overwrite=args.overwrite)  # before loading anything
    encoder = encoder_settings(args)
    apply_threads(args.threads)
    deblurrer, settings = build_restorer_parts(args)
    try:
        report = restore_file(
            args.input, args.output, method=args.method, duty=args.duty, start=args.start,
            end=args.end, fps=args.fps, deblurrer=deblurrer, settings=settings,
            encoder=encoder, copy_audio=not args.no_audio,
            copy_subtitles=not args.no_subtitles, overwrite=args.overwrite,
            input_format=args.format, output_format=args.output_format,
            max_pixels=args.max_pixels, progress=not args.quiet,
        )  # fmt: skip
    except Interrupted as stop:
        done = stop.report
        where = f"; the {done.frames} frames restored so far are in {done.output}"
        print(f"unblur: interrupted{where if done.frames else ''}", file=sys.stderr)
        return 130
    if not args.quiet:
        duty = f", {report.duty.describe()}" if report.duty is not None else ""
        print(
            f"wrote {report.output}: {report.frames} frames, {report.method}"
            f"{duty}, {report.fps:.1f} fps",
            file=sys.stderr,
        )
    return 0
