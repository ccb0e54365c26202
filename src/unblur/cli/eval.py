"""``unblur eval``: score restoration methods on a set, with a report to look at."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from unblur.cli._common import (
    HelpFormatter,
    add_common_io,
    add_kernel_size,
    add_threads,
    positive_int,
)
from unblur.errors import OutputError, UnblurError

DEFAULT_METHODS = "auto,network"

DESCRIPTION = """\
Score restoration methods on an evaluation set and write a report.

DATASET is one of:
  a folder with blur/ and sharp/ (same file names; also blurred|input and gt|GT|target)
  GoPro's nested scenes: SCENE/blur and SCENE/sharp (GOPRO_Large's test/ folder)
  a RealBlur/HIDE list file: one 'SHARP BLURRED' pair a line, paths relative to the file
  a folder of blurred pictures without ground truth (or blur/ alone)
A known kernel per picture (kernel/NAME.npy, or Levin's kernels/kernelJ.npy) enables
--methods kernel.

Every method runs through unblur.restore (as `unblur image` does); its output is rounded
to the source's bit depth, as a saved file, and scored: PSNR and SSIM on RGB and on the
BT.601 Y channel (after --crop-border), the shift-compensated PSNR with --shift (real
camera shake: use --shift 5 for Levin et al.'s set), a no-reference sharpness (variance of
the Laplacian; the only score without ground truth), seconds per megapixel and peak memory.
`network:MODEL` in --methods names a model.

--report DIR writes DIR/index.html: the summary table, plots (each picture's score by
method; quality against speed), zoomed crops of blurred / each method / sharp for every
picture, estimated kernels and motion fields; results.json and results.csv beside it. The
run is resumable: what DIR already holds for the same settings is skipped.

examples:
  unblur eval ../shared/data/gopro-sample --methods auto,network,blind --report out/gopro
  unblur eval ../shared/data/levin09 --methods blind,kernel --shift 5 --report out/levin
  unblur eval RealBlur_J_test_list.txt --methods network --json realblur.json --limit 50
"""


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "eval",
        help="score restoration methods on a set; HTML report",
        description=DESCRIPTION,
        formatter_class=HelpFormatter,
    )
    p.add_argument("dataset", type=Path, metavar="DATASET", help="set folder or list file")
    p.add_argument(
        "--methods",
        default=DEFAULT_METHODS,
        help="comma-separated: auto, network[:MODEL], kernel, blind, motion",
    )
    p.add_argument("--report", type=Path, default=None, metavar="DIR", help="report folder")
    p.add_argument("--json", type=Path, default=None, metavar="FILE", help="results as JSON")
    p.add_argument("--limit", type=positive_int, default=None, metavar="N", help="first N only")
    p.add_argument(
        "--crop-border", type=int, default=0, metavar="N", help="pixels left out on every side"
    )
    p.add_argument(
        "--shift",
        type=float,
        default=0.0,
        metavar="PX",
        help="also score PSNR after the best shift up to PX pixels (real shake: 5); 0: off",
    )
    p.add_argument(
        "--crop-size", type=positive_int, default=160, metavar="N", help="report crops' side"
    )
    p.add_argument(
        "--motion-field",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="with --report: estimate and draw every picture's motion field",
    )
    add_kernel_size(p)
    p.add_argument(
        "--device", default="auto", help="auto (cuda, else mps, else cpu), cpu, cuda, cuda:N"
    )
    add_common_io(p)  # --max-pixels, --overwrite (an existing --json file), --quiet
    add_threads(p)
    p.set_defaults(run=run)


def check_report_folder(folder: Path) -> None:
    """A report folder is new, empty, or an earlier report (resumed); nothing else.

    Raises:
        OutputError: it is a file, or a folder with other contents.
    """
    if not folder.exists():
        return
    if not folder.is_dir():
        raise OutputError("exists and is not a folder", folder)
    ours = (folder / "cache").is_dir() or (folder / "results.json").is_file()
    if not ours and any(folder.iterdir()):
        raise OutputError(
            "is a folder with other files; give a new or empty folder (or an earlier report, "
            "to resume it)",
            folder,
        )


def markdown_table(summary: dict[str, dict[str, Any]], labels: list[str], key: str) -> str:
    """The summary as a markdown table, for the terminal and BENCHMARKS.md."""
    from unblur.evaluate.runner import BASELINE

    def f(v: Any, d: int = 2) -> str:
        return "–" if v is None else f"{v:.{d}f}"

    scores = [
        s
        for s in ("psnr", "ssim", "psnr_y", "ssim_y", "psnr_shift", "sharpness")
        if any(summary[m].get(s) is not None for m in summary)
    ]
    names = {
        "psnr": "PSNR",
        "ssim": "SSIM",
        "psnr_y": "PSNR-Y",
        "ssim_y": "SSIM-Y",
        "psnr_shift": "PSNR (shift)",
        "sharpness": "sharpness",
    }
    head = ["method", "n", *(names[s] for s in scores), "gain", "s/MP", "peak MiB"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for label in [BASELINE, *labels]:
        row = summary[label]
        gain = (
            "–"
            if row["gain"] is None or label == BASELINE
            else (f"{row['gain']:+.2f}" + (f" ± {row['gain_ci']:.2f}" if row["gain_ci"] else ""))
        )
        cells = [
            label,
            str(row["n"]),
            *(
                f(row[s], 4 if s.startswith("ssim") else 0 if s == "sharpness" else 2)
                for s in scores
            ),
            gain,
            f(row["s_per_mp"]),
            f(row["peak_mb"], 0),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    from unblur.cli._common import apply_threads, check_kernel_size
    from unblur.evaluate.datasets import find_samples
    from unblur.evaluate.runner import EvalSettings, parse_methods

    methods = parse_methods(args.methods)
    check_kernel_size(args.kernel_size)
    if args.crop_border < 0:
        raise UnblurError(f"--crop-border must be >= 0, got {args.crop_border}")
    if args.shift < 0 or args.shift > 50:
        raise UnblurError(f"--shift must be between 0 and 50 pixels, got {args.shift}")
    if args.json is not None:
        if args.json.is_dir():
            raise OutputError("is a folder; --json needs a file name", args.json)
        if args.json.exists() and not args.overwrite:
            raise OutputError("already exists; pass --overwrite to replace", args.json)
    if args.report is not None:
        check_report_folder(args.report)
    layout, samples = find_samples(args.dataset)
    if args.limit:
        samples = samples[: args.limit]
    if any(m.method == "kernel" for m in methods) and not any(s.kernel for s in samples):
        raise UnblurError(
            f"--methods kernel needs known kernels, and {args.dataset} has none "
            "(kernel/NAME.npy or kernels/K.npy)"
        )
    threads = apply_threads(args.threads)

    from unblur.evaluate import report
    from unblur.evaluate.runner import environment, evaluate
    from unblur.restoration.network import resolve_device

    device = str(resolve_device(args.device))
    settings = EvalSettings(
        crop_border=args.crop_border,
        shift=args.shift,
        kernel_size=args.kernel_size,
        crop_size=args.crop_size,
        motion_field=args.motion_field and args.report is not None,
        device=device,
        max_pixels=args.max_pixels,
    )
    if args.report is not None:
        args.report.mkdir(parents=True, exist_ok=True)
    results, counts = evaluate(
        samples, methods, settings, work_dir=args.report, progress=not args.quiet
    )
    labels = [m.label for m in methods]
    info = {
        "dataset": str(args.dataset),
        "layout": layout,
        "settings": {
            "methods": labels,
            "crop_border": settings.crop_border,
            "shift": settings.shift,
            "kernel_size": settings.kernel_size,
            "device": device,
            "threads": threads,
        },
        "environment": environment(),
    }
    summary = report.summarise(results, labels)
    print(markdown_table(summary, labels, report.quality_key(results)))
    if not args.quiet and counts["reused"]:
        print(
            f"{counts['reused']} results reused from {args.report}, {counts['computed']} computed",
            file=sys.stderr,
        )
    if args.report is not None:
        page = report.write_report(args.report, results, labels, info)
        if not args.quiet:
            print(f"wrote {page}", file=sys.stderr)
    if args.json is not None:
        document = report.results_document(results, labels, info)
        report.write_json(args.json, document, overwrite=True)
        if not args.quiet:
            print(f"wrote {args.json}", file=sys.stderr)
    if counts["skipped"]:
        print(f"unblur: {counts['skipped']} picture(s) skipped (see above)", file=sys.stderr)
    return 1 if counts["failed"] or counts["skipped"] else 0
