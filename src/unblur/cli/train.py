"""``unblur train``: train the restoration network from a YAML config."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from unblur.cli._common import HelpFormatter, positive_int

DESCRIPTION = """\
Train the restoration network described by a YAML config (see configs/).
Writes OUT/log.csv, OUT/ckpt/last.safetensors (+ last.json) for --resume,
OUT/best_ema.safetensors, and at the end OUT/final_ema.safetensors (the EMA
weights, loadable with unblur.models.load_weights) and OUT/summary.json.
Ctrl-C stops after the current step with a checkpoint; Ctrl-C again quits.

Several processes (one per GPU, or CPU processes with gloo):
  python -m torch.distributed.run --standalone --nproc_per_node 2 \\
      -m unblur train CONFIG

examples:
  unblur train configs/nafnet-fast.yaml
  unblur train configs/nafnet-fast.yaml --resume
  unblur train configs/nafnet-fast.yaml --steps 20 --out /tmp/smoke
"""


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "train",
        help="train the restoration network from a YAML config",
        description=DESCRIPTION,
        formatter_class=HelpFormatter,
    )
    p.add_argument("config", type=Path, metavar="CONFIG", help="YAML training config")
    p.add_argument("--resume", action="store_true", help="continue from OUT/ckpt/last.safetensors")
    p.add_argument(
        "--steps", type=positive_int, default=None, help="override train.steps (schedule length)"
    )
    p.add_argument(
        "--data-root", type=Path, default=None, help="override data.data_root (source folders)"
    )
    p.add_argument("--out", type=Path, default=None, help="override out (the run folder)")
    p.add_argument(
        "--device", choices=("auto", "cpu", "cuda"), default="auto", help="where to train"
    )
    p.add_argument("--quiet", "-q", action="store_true", help="no progress bar or messages")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from unblur import train

    config = train.load_config(args.config)
    config = train.with_overrides(config, steps=args.steps, data_root=args.data_root, out=args.out)
    summary = train.train(
        config, config_path=args.config, resume=args.resume, device=args.device, quiet=args.quiet
    )
    if summary and not args.quiet:
        val = summary["final_val_psnr"]
        score = "" if val is None else f"; val PSNR {val:.2f} dB ({summary['final_val_gain']:+.2f})"
        print(
            f"unblur train: {summary['steps']} of {summary['target_steps']} steps "
            f"({summary['stopped']}) in {summary['session_seconds']:.0f} s{score}; "
            f"weights: {Path(config.out) / 'final_ema.safetensors'}",
            file=sys.stderr,
        )
    return 130 if summary.get("stopped") == "signal" else 0
