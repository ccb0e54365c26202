"""How the restoration network runs on large pictures: pooling window, tile size, flips.

NAFNet's channel attention pools globally in training (crops of 128-256 px). On a larger
picture it can pool over the whole tile, or over a sliding window (``local_pool``), and the
tile size then sets how much of the picture one pooling sees. This scores the choices on the
ship gate's validation kinds, made larger than in the gate so that the choice matters:

* ``gopro0374``: the real GoPro-type pairs of scene GOPR0374 (validation, never trained on),
  centre ``--pair-crop`` px (default: the whole 1280x720 frames);
* ``shake``, ``varying``, ``noisy``: set14 (+ set5) photos blurred as the gate blurs them,
  centre ``--crop`` px (default 720: most photos whole).

Only validation data: the evaluation sets (gopro-sample, kodak24, sun80) stay for
``restore_quality.py``. Mean PSNR gain over the blurred input, in dB.

Usage (from the repository root; about 1 minute a variant on one core)::

    python benchmarks/pooling.py [--variants 288@512 global@512 global@1024 global@1024+tta]
        [--weights FILE] [--data ../shared/data] [--crop 720] [--pair-crop 1280]

A variant is ``WINDOW@TILE`` with WINDOW a number of pixels or ``global`` and TILE a number of
pixels or ``whole``; ``+tta`` adds the eight turns and flips (``unblur image --tta``; the
four flips until 2026-12-07).
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
import time
from pathlib import Path

import numpy as np
import torch

from unblur.metrics import psnr
from unblur.restoration.network import Deblurrer

HERE = Path(__file__).resolve().parent
DEFAULT_VARIANTS = ("288@512", "global@512", "global@1024", "global@whole", "global@1024+tta")


def _gate():
    spec = importlib.util.spec_from_file_location("ship_gate", HERE / "ship_gate.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def parse_variant(text: str) -> tuple[int | None, int | None, bool]:
    """``"288@512+tta"`` -> ``(288, 512, True)``; ``global`` / ``whole`` give ``None``."""
    body, tta = (text[: -len("+tta")], True) if text.endswith("+tta") else (text, False)
    window, _, tile = body.partition("@")
    if not tile:
        raise argparse.ArgumentTypeError(f"variant {text!r}: expected WINDOW@TILE[+tta]")
    try:
        pool = None if window == "global" else int(window)
        side = None if tile == "whole" else int(tile)
    except ValueError:
        raise argparse.ArgumentTypeError(f"variant {text!r}: expected WINDOW@TILE[+tta]") from None
    return pool, side, tta


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--variants", nargs="+", default=list(DEFAULT_VARIANTS))
    p.add_argument("--model", default="nafnet-fast")
    p.add_argument("--weights", type=Path, default=None, help="default: the shipped weights")
    p.add_argument("--data", type=Path, default=Path("../shared/data"))
    p.add_argument("--crop", type=int, default=720, help="centre crop of the synthetic sets")
    p.add_argument("--pair-crop", type=int, default=1280, help="centre crop of the real pairs")
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args(argv)
    variants = [(v, *parse_variant(v)) for v in args.variants]
    torch.set_num_threads(args.threads)

    gate = _gate()
    sizes = gate.Sizes(crop=args.crop, pair_crop=args.pair_crop)
    sets = gate.build_restore_sets(args.data, sizes)
    inputs = {n: [float(psnr(q.sharp, q.blur)) for q in pairs] for n, pairs in sets.items()}
    shapes = {n: sorted({q.blur.shape[:2] for q in pairs}) for n, pairs in sets.items()}
    print(f"model {args.model}, weights {args.weights or 'shipped'}; sizes: {shapes}\n")
    print("| window @ tile | " + " | ".join(sets) + " | s |")
    print("|---" * (len(sets) + 2) + "|")
    for name, pool, tile, tta in variants:
        net = Deblurrer(
            args.model, weights=args.weights, device="cpu", local_pool=pool, tile=tile, tta=tta
        )
        start = time.perf_counter()
        gains = []
        for set_name, pairs in sets.items():
            scores = [float(psnr(q.sharp, net.restore(q.blur))) for q in pairs]
            gains.append(float(np.mean(scores) - np.mean(inputs[set_name])))
        cells = " | ".join(f"{g:+.3f}" for g in gains)
        print(f"| {name} | {cells} | {time.perf_counter() - start:.0f} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
