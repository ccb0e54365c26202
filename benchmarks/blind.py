"""Benchmark the classical motion estimators: blind kernels on Levin et al. 2009, spectral lines.

Two protocols:

* Levin et al. 2009 (``levin09``: 4 images x 8 real camera-shake kernels, grey 255x255). The
  blind estimator (:func:`unblur.restoration.blind.estimate_kernel`) runs with ``--kernel-size``
  (default 31 for every image; ``true`` uses each true kernel's side, made odd), and the image is
  restored by :func:`unblur.restoration.deconv.hyper_laplacian` with the estimated and with the true
  kernel. Levin's error ratio is ``SSD(estimated) / SSD(true)`` on shift-compensated errors,
  computed from :func:`unblur.metrics.shift_compensated_psnr` as
  ``10 ** ((psnr_true - psnr_est) / 10)``. Reported: mean ratio, share with ratio <= 3 (Levin
  et al.'s "success" criterion), mean seconds per image (estimation only, one core).
  Published mean ratios (their own non-blind steps): Krishnan et al. 2011 ~2.45, Cho & Lee
  2009 1.79, Pan et al. 2016 1.26.
* Spectral linear-blur estimation (:func:`unblur.motion.estimate_linear_spectral`) on the
  ``kodak24`` photographs in grey, each blurred by :func:`unblur.blur.linear_kernel` with a
  length uniform in [5, 35] px and a uniform angle (seed 0), plus 0.5% Gaussian noise.
  Reported: median angle error (modulo 180 degrees, cases with length > 3 px) and median
  length error.

Usage::

    python benchmarks/blind.py --data ../shared/data [--limit N] [--kernel-size 31|true]
        [--json out.json]
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

import argparse
import json
import time
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from unblur import blur, metrics, motion
from unblur.restoration import blind, deconv


def _read_grey(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("L"), np.float32) / 255.0


def levin(data: Path, limit: int | None, kernel_size: str) -> dict[str, object]:
    """Blind kernel estimation on Levin et al. 2009, scored by the error ratio."""
    root = data / "levin09"
    names = sorted(p.stem for p in (root / "blur").glob("im*_kernel*.png"))
    if limit is not None:
        names = names[:: max(1, len(names) // limit)][:limit]  # spread over images and kernels
    rows = []
    for name in names:
        blurred = _read_grey(root / "blur" / f"{name}.png")
        sharp = _read_grey(root / "sharp" / f"{name}.png")
        true_kernel = np.load(root / "kernels" / f"{name.split('_')[1]}.npy")
        side = true_kernel.shape[0] + 1 - true_kernel.shape[0] % 2
        size = side if kernel_size == "true" else int(kernel_size)
        start = time.perf_counter()
        kernel = blind.estimate_kernel(blurred, size).kernel
        seconds = time.perf_counter() - start
        psnr_est = metrics.shift_compensated_psnr(sharp, deconv.hyper_laplacian(blurred, kernel))
        psnr_true = metrics.shift_compensated_psnr(
            sharp, deconv.hyper_laplacian(blurred, true_kernel)
        )
        ratio = 10.0 ** ((psnr_true - psnr_est) / 10.0)
        rows.append(
            {
                "image": name,
                "kernel_size": size,
                "psnr_blurred": metrics.shift_compensated_psnr(sharp, blurred),
                "psnr_estimated": psnr_est,
                "psnr_true": psnr_true,
                "error_ratio": ratio,
                "seconds": seconds,
            }
        )
        print(
            f"  {name}: ratio {ratio:.2f} ({psnr_est:.2f} vs {psnr_true:.2f} dB, {seconds:.2f} s)"
        )
    ratios = np.array([r["error_ratio"] for r in rows])
    return {
        "images": len(rows),
        "kernel_size": kernel_size,
        "mean_error_ratio": float(ratios.mean()),
        "share_ratio_le_3": float(np.mean(ratios <= 3.0)),
        "max_error_ratio": float(ratios.max()),
        "mean_psnr_estimated": float(np.mean([r["psnr_estimated"] for r in rows])),
        "mean_psnr_true": float(np.mean([r["psnr_true"] for r in rows])),
        "seconds_per_image": float(np.mean([r["seconds"] for r in rows])),
        "rows": rows,
    }


def spectral(data: Path, limit: int | None) -> dict[str, object]:
    """Spectral linear-blur estimation on synthetic blur of kodak24 (seed 0)."""
    paths = sorted((data / "kodak24" / "images").glob("*.png"))[:limit]
    rng = np.random.default_rng(0)
    rows = []
    for path in paths:
        sharp = _read_grey(path)
        length = float(rng.uniform(5.0, 35.0))
        angle = float(rng.uniform(0.0, 180.0))
        blurred = blur.blur_image(sharp, blur.linear_kernel(length, angle))
        blurred = np.clip(blurred + rng.normal(0.0, 0.005, blurred.shape), 0, 1).astype(np.float32)
        start = time.perf_counter()
        est = motion.estimate_linear_spectral(blurred)
        seconds = time.perf_counter() - start
        true = motion.from_polar(length, angle)
        rows.append(
            {
                "image": path.stem,
                "length": length,
                "angle": angle,
                "est_length": est.length,
                "est_angle": est.angle,
                "confidence": est.confidence,
                "angle_error": float(motion.angle_error(est.vector, true)),
                "length_error": abs(est.length - length),
                "seconds": seconds,
            }
        )
    angle_errors = [r["angle_error"] for r in rows if r["length"] > 3.0]
    length_errors = [r["length_error"] for r in rows]
    return {
        "images": len(rows),
        "median_angle_error_deg": float(np.median(angle_errors)),
        "median_length_error_px": float(np.median(length_errors)),
        "share_within_5deg_2px": float(
            np.mean([r["angle_error"] < 5 and r["length_error"] < 2 for r in rows])
        ),
        "seconds_per_image": float(np.mean([r["seconds"] for r in rows])),
        "rows": rows,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data"), help="data folder")
    parser.add_argument("--limit", type=int, default=None, help="images per protocol")
    parser.add_argument(
        "--kernel-size",
        default="31",
        help="blind kernel side: an odd integer, or 'true' for each true kernel's side",
    )
    parser.add_argument("--skip-levin", action="store_true", help="only the spectral protocol")
    parser.add_argument("--json", type=Path, default=None, help="write all numbers here")
    args = parser.parse_args()
    if args.kernel_size != "true" and not args.kernel_size.isdigit():
        parser.error(f"--kernel-size must be an odd integer or 'true', got {args.kernel_size!r}")
    cv2.setNumThreads(1)

    out: dict[str, object] = {}
    spec = spectral(args.data, args.limit)
    out["spectral_kodak24"] = spec
    print("\n### Spectral linear-blur estimation (kodak24, grey, lengths 5-35 px, seed 0)\n")
    print("| images | median angle error | median length error | within 5° & 2 px | s/image |")
    print("|---:|---:|---:|---:|---:|")
    print(
        f"| {spec['images']} | {spec['median_angle_error_deg']:.2f}° "
        f"| {spec['median_length_error_px']:.2f} px | {spec['share_within_5deg_2px']:.0%} "
        f"| {spec['seconds_per_image']:.3f} |"
    )
    if not args.skip_levin:
        print("\nLevin et al. 2009:")
        lev = levin(args.data, args.limit, args.kernel_size)
        out["levin09"] = lev
        print(
            f"\n### Blind kernel estimation, Levin et al. 2009 (kernel size {args.kernel_size})\n"
        )
        print(
            "| images | mean error ratio | ratio <= 3 | max ratio | PSNR est. kernel "
            "| PSNR true kernel | s/image |"
        )
        print("|---:|---:|---:|---:|---:|---:|---:|")
        print(
            f"| {lev['images']} | {lev['mean_error_ratio']:.2f} | {lev['share_ratio_le_3']:.0%} "
            f"| {lev['max_error_ratio']:.2f} | {lev['mean_psnr_estimated']:.2f} dB "
            f"| {lev['mean_psnr_true']:.2f} dB | {lev['seconds_per_image']:.2f} |"
        )
    if args.json is not None:
        args.json.write_text(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
