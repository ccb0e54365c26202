"""``unblur export``: a restoration network to ONNX, or its weights to safetensors."""

from __future__ import annotations

import argparse
from pathlib import Path

from unblur.cli._common import HelpFormatter, positive_int
from unblur.errors import ConfigError

# Mirrors of unblur.restoration.network.DEFAULT_MODEL and unblur.export's constants, so that
# building the parser does not import torch; tests/test_cli.py checks they agree.
DEFAULT_MODEL = "nafnet-fast"
MIN_OPSET = 18
TOLERANCE = 1e-3
INSTALL_HINT = 'pip install "unblur[export]"'

DESCRIPTION = f"""\
Export a restoration network.

--onnx OUT.onnx writes an ONNX graph (torch.export based, opset {MIN_OPSET} or
newer) with dynamic batch, height and width: input "image" (B, 3, H, W)
float32 in [0, 1], sRGB as stored; output "restored", same shape, not clipped.
The graph pads to the network's size multiple (32 for nafnet-fast, 16 for
nafnet-quality) by reflection and crops back, as the PyTorch model does, so
any size from that multiple up works. Channel attention pools globally by
default (as in training); --local-pool N bakes in pooling over N pixels, as
unblur's own inference uses on large images, and the graph then needs H and W
greater than N. With --check (the default) onnxruntime runs the graph on a
random batch and the export fails if it differs from PyTorch by more than
{TOLERANCE:g}. Needs the export extra: {INSTALL_HINT}

--safetensors OUT writes the weights alone (--dtype fp16 for a half-size copy;
loading converts back to float32), for example the EMA weights of a training
checkpoint (--from-checkpoint CKPT --ema takes its params_ema.* tensors;
without --ema, its params.* tensors).

examples:
  unblur export --model nafnet-fast --onnx nafnet-fast.onnx
  unblur export --model nafnet-fast --from-checkpoint runs/fast/last.safetensors --ema \\
      --safetensors src/unblur/models/weights/nafnet-fast.safetensors
  unblur export --model nafnet-quality --weights mine.safetensors --onnx q.onnx --local-pool 192
"""


def add_parser(sub: argparse._SubParsersAction) -> None:
    from unblur.models import list_models

    p = sub.add_parser(
        "export",
        help="export a network to ONNX, or its weights to safetensors",
        description=DESCRIPTION,
        formatter_class=HelpFormatter,
    )
    p.add_argument(
        "--model", choices=list_models(task="restore"), default=DEFAULT_MODEL, help="network"
    )
    source = p.add_mutually_exclusive_group()
    source.add_argument(
        "--weights",
        type=Path,
        default=None,
        metavar="FILE",
        help="safetensors weights for --model (default: its shipped weights)",
    )
    source.add_argument(
        "--from-checkpoint",
        type=Path,
        default=None,
        metavar="CKPT",
        help="take the weights from a training checkpoint (last.safetensors)",
    )
    p.add_argument(
        "--ema", action="store_true", help="with --from-checkpoint: its EMA weights (params_ema.*)"
    )
    p.add_argument("--onnx", type=Path, default=None, metavar="OUT", help="write an ONNX graph")
    p.add_argument(
        "--opset", type=positive_int, default=MIN_OPSET, help=f"ONNX opset (>= {MIN_OPSET})"
    )
    p.add_argument(
        "--check",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="compare onnxruntime's output with PyTorch's",
    )
    p.add_argument(
        "--local-pool",
        type=int,
        default=0,
        metavar="N",
        help="channel-attention pooling window in pixels baked into the graph (0: global)",
    )
    p.add_argument(
        "--safetensors", type=Path, default=None, metavar="OUT", help="write the weights"
    )
    p.add_argument(
        "--dtype",
        choices=("fp32", "fp16", "bf16"),
        default="fp32",
        help="tensor type of the --safetensors copy",
    )
    p.add_argument("--overwrite", action="store_true", help="replace existing files")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    if args.onnx is None and args.safetensors is None:
        raise ConfigError("nothing to export: pass --onnx OUT.onnx and/or --safetensors OUT")
    if args.ema and args.from_checkpoint is None:
        raise ConfigError("--ema needs --from-checkpoint CKPT")
    if args.opset < MIN_OPSET:
        raise ConfigError(
            f"--opset {args.opset} is too old: the exporter writes opset {MIN_OPSET} or newer"
        )
    if args.local_pool < 0:
        raise ConfigError(f"--local-pool must be >= 0, got {args.local_pool}")
    if args.onnx is not None and args.safetensors is not None:
        if args.onnx.resolve() == args.safetensors.resolve():
            raise ConfigError("--onnx and --safetensors name the same file", args.onnx)
    for path in (args.onnx, args.safetensors):
        if path is not None and path.exists() and not args.overwrite:
            raise ConfigError("already exists; pass --overwrite to replace it", path)

    from unblur import export
    from unblur.models import get_spec
    from unblur.restoration.network import LOCAL_POOL_KEY, load_restore_model, weights_local_pool

    if args.onnx is not None:
        export.require_onnx(runtime=args.check)
    if args.from_checkpoint is not None:
        prefix = "params_ema." if args.ema else "params."
        model = load_restore_model(args.model, args.from_checkpoint, prefix=prefix)
    else:
        model = load_restore_model(args.model, args.weights)
    if args.safetensors is not None:
        source = args.from_checkpoint or args.weights or get_spec(args.model).weights_path
        pool = None if source is None else weights_local_pool(source)
        export.save_weights(
            args.safetensors,
            model,
            args.model,
            dtype=args.dtype,
            overwrite=args.overwrite,
            metadata=None if pool is None else {LOCAL_POOL_KEY: pool},
        )
        print(f"wrote {args.safetensors} ({args.dtype})")
    if args.onnx is not None:
        diff = export.export_onnx(
            model,
            args.onnx,
            opset=args.opset,
            local_pool=args.local_pool or None,
            check=args.check,
            overwrite=args.overwrite,
        )
        checked = "" if diff is None else f"; onnxruntime vs PyTorch: max abs diff {diff:.2e}"
        print(f"wrote {args.onnx} (opset {args.opset}{checked})")
    return 0
