"""How far the restoration network's GoPro skill carries beyond its one training scene.

The gopro recipe trains on one real scene, GOPR0477 (its 299 consecutive 240 fps frames,
averaged, plus the frame-averaged pairs of ``gopro-frameavg``). This scores the network on the
``gopro-frameavg`` pairs of that scene (seen in training) and of GOPR0374 (never seen, the
validation scene): a large gap says the GoPro-type gain is bounded by the variety of the
training scenes, not by steps or capacity.

Usage (from the repository root; about 20 s on one core)::

    python benchmarks/scene_gap.py [--weights FILE] [--data ../shared/data] [--tta]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

from unblur import io
from unblur.metrics import psnr
from unblur.restoration.network import Deblurrer

SCENES = {"GOPR0477": "training scene", "GOPR0374": "validation scene, never trained on"}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default="nafnet-fast")
    p.add_argument("--weights", type=Path, default=None, help="default: the shipped weights")
    p.add_argument("--data", type=Path, default=Path("../shared/data"))
    p.add_argument("--tta", action="store_true", help="average over the eight turns and flips")
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    root = args.data / "gopro-frameavg"
    if not (root / "blur").is_dir():
        sys.exit(f"scene_gap: no {root}/blur (pass --data)")
    net = Deblurrer(args.model, weights=args.weights, device="cpu", tta=args.tta)
    print("| scene | pair | input (dB) | restored (dB) | gain (dB) |")
    print("|---|---|---:|---:|---:|")
    means = {}
    for scene, what in SCENES.items():
        gains = []
        for path in sorted((root / "blur").glob(f"{scene}*.png")):
            blurred = io.read_image(path).pixels
            sharp = io.read_image(root / "sharp" / path.name).pixels
            before = float(psnr(sharp, blurred))
            after = float(psnr(sharp, net.restore(blurred)))
            gains.append(after - before)
            cells = [f"{scene} ({what})", path.stem, f"{before:.2f}", f"{after:.2f}"]
            print("| " + " | ".join(cells) + f" | {gains[-1]:+.2f} |")
        means[scene] = float(np.mean(gains))
    print()
    print(", ".join(f"{s}: mean gain {g:+.2f} dB" for s, g in means.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
