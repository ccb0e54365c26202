"""Probe: restore large real blur at a smaller size and blend in its low frequencies.

The restoration network sharpens little on real blur longer than its training range. This
restores each validation picture at full size (``n``) and at ``scale`` of its size, where the
blur is shorter, scales that result back (``u``) and adds a share ``w`` of what it changes in
the low frequencies: ``n + w * (u - up(down(n)))``. Scored on the ship gate's validation kinds
made large (as ``benchmarks/pooling.py``), mean PSNR gain over the blurred input in dB.

Usage (from the repository root, about a minute on one core)::

    python benchmarks/half_size.py [--weights FILE] [--data ../shared/data]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2
import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import pooling

from unblur.metrics import psnr
from unblur.restoration.network import Deblurrer

VARIANTS = [(s, w) for s in (0.5, 0.67) for w in (0.25, 0.5, 0.75)]


def _resize(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    shrink = size[0] < image.shape[1]
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA if shrink else cv2.INTER_CUBIC)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--weights", type=Path, default=None, help="default: the shipped weights")
    p.add_argument("--data", type=Path, default=Path("../shared/data"))
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    gate = pooling._gate()
    sets = gate.build_restore_sets(args.data, gate.Sizes(crop=720, pair_crop=1280))
    net = Deblurrer("nafnet-fast", weights=args.weights, device="cpu")
    names = ["full size", *(f"{s} size, w = {w}" for s, w in VARIANTS)]
    print("| variant | " + " | ".join(sets) + " |\n" + "|---" * (len(sets) + 1) + "|")
    table: dict[str, list[float]] = {n: [] for n in names}
    for pairs in sets.values():
        gains: dict[str, list[float]] = {n: [] for n in names}
        for q in pairs:
            h, w = q.blur.shape[:2]
            base = psnr(q.sharp, q.blur)
            full = net.restore(q.blur)
            gains["full size"].append(psnr(q.sharp, full) - base)
            for scale in sorted({s for s, _ in VARIANTS}):
                small = (max(16, round(w * scale)), max(16, round(h * scale)))
                up = _resize(net.restore(_resize(q.blur, small)), (w, h))
                low = _resize(_resize(full, small), (w, h))
                for s, share in VARIANTS:
                    if s == scale:
                        out = np.clip(full + share * (up - low), 0, 1)
                        gains[f"{s} size, w = {share}"].append(psnr(q.sharp, out) - base)
        for n in names:
            table[n].append(float(np.mean(gains[n])))
    for n in names:
        print(f"| {n} | " + " | ".join(f"{g:+.2f}" for g in table[n]) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
