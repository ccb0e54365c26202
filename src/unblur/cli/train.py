"""``unblur train``: train the restoration network from a YAML config."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from unblur.cli._common import HelpFormatter, positive_int

DESCRIPTION = """\
Train the restoration network, or with a `task: motion` config a motion
network, described by a YAML config (see configs/).
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
  unblur train configs/motion-single.yaml --out checkpoints/motion-single
"""


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "train",
        help="train a restoration or motion network from a YAML config",
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


def _is_motion_config(path: Path) -> bool:
    """Whether a config is for a motion network (``task: motion``); unreadable ones are not."""
    import yaml

    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return False  # the restoration loader reports the problem
    return isinstance(raw, dict) and raw.get("task") == "motion"


def run(args: argparse.Namespace) -> int:
    from unblur.train import config as train_config

    if _is_motion_config(args.config):
        from unblur.train import motion

        config = motion.load_motion_config(args.config)
        train_fn = motion.train_motion
    else:
        from unblur.train import restoration

        config = restoration.load_config(args.config)
        train_fn = restoration.train
    config = train_config.with_overrides(
        config, steps=args.steps, data_root=args.data_root, out=args.out
    )
    summary = train_fn(
        config, config_path=args.config, resume=args.resume, device=args.device, quiet=args.quiet
    )
    if summary and not args.quiet:
        name = "epe" if "final_val_epe" in summary else "psnr"
        val = summary[f"final_val_{name}"]
        unit = "px" if name == "epe" else "dB"
        score = "" if val is None else f"; val {name.upper()} {val:.2f} {unit}"
        gain = (summary.get("final_val_extra") or {}).get("gain")
        if gain is not None:
            score += f" ({gain:+.2f})"
        print(
            f"unblur train: {summary['steps']} of {summary['target_steps']} steps "
            f"({summary['stopped']}) in {summary['session_seconds']:.0f} s{score}; "
            f"weights: {Path(config.out) / 'final_ema.safetensors'}",
            file=sys.stderr,
        )
    return 130 if summary.get("stopped") == "signal" else 0
