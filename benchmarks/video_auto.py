"""Calibrating ``auto`` (temporal or network per clip): its gains and PSNR per clip kind.

The clips of ``benchmarks/video.py`` (synthetic hand-held at duty 0.25, 0.5 and 1, a steady
pan at 0.5; real ``gopro-hfr-video`` 240 fps frames averaged into 30 fps frames, 8/8 and 4/8),
each restored with ``network``, ``temporal`` and ``auto``; prints, per clip, ``auto``'s
sharpness and motion gains (:mod:`unblur.video.temporal`), its choice, and each method's
mean PSNR.

Usage::

    python benchmarks/video_auto.py --frames 12 --photos 2 --gopro-frames 12 --threads 1
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import cv2
import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

import video as bench

from unblur.restoration.network import Deblurrer
from unblur.train.data import load_rgb8
from unblur.video.flow import estimate_duty
from unblur.video.synth import synth_video
from unblur.video.temporal import VideoRestorer


def run(name: str, blurred: list, sharp: list, net: Deblurrer) -> dict:
    duty = estimate_duty(blurred).duty
    row: dict = {"clip": name}
    for method in ("network", "temporal", "auto"):
        restorer = VideoRestorer(method, deblurrer=net, duty=duty)
        out = [o for i, f in enumerate(blurred) for _, o in restorer.push(f, i)]
        out += [o for _, o in restorer.flush()]
        row[method] = round(bench.score(sharp, out)["psnr"], 2)
        if method == "auto":
            row["sharpness_gain"] = round(restorer.gain or 0.0, 3)
            row["motion_gain"] = round(restorer.motion_gain or 0.0, 3)
            row["choice"] = restorer.method
    row["input"] = round(bench.score(sharp, blurred)["psnr"], 2)
    print(json.dumps(row), flush=True)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--frames", type=int, default=12)
    parser.add_argument("--photos", type=int, default=2)
    parser.add_argument("--gopro-frames", type=int, default=12)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    cv2.setNumThreads(args.threads)
    net = Deblurrer("nafnet-fast", device="cpu")
    rows = []
    for p, name in enumerate(bench.PHOTOS[: args.photos]):
        photo = load_rgb8(bench.DATA / "debian-wallpaper-photos" / "images" / name)
        for path, duty in bench.CLIPS:
            clip = synth_video(photo, size=(640, 360), frames=args.frames, duty=duty,
                               max_speed=14, path=path, rng=100 + p)  # fmt: skip
            rows.append(run(f"{name}, {path}, {duty}", clip.blurred, clip.sharp, net))
    for n, blurred, sharp in bench.gopro_clips(args.gopro_frames):
        rows.append(run(f"gopro-hfr 240->30 fps, {n}/8", blurred, sharp, net))
    best = [max(r["network"], r["temporal"]) - r["auto"] for r in rows]
    print(f"auto below the better of temporal/network: mean {np.mean(best):.2f} dB, "
          f"worst {max(best):.2f} dB")  # fmt: skip


if __name__ == "__main__":
    main()
