"""Motion-field estimation: the networks against the spectral baseline; the blind kernel on Levin.

Synthetic sets from kodak24 (never trained on), seed 0, one sample per image:

* ``linear``: uniform linear blur, length U(5, 35) px, angle U(0, 180);
* ``varying``: :func:`unblur.blur.random_field` (translation, rotation, zoom, up to two moving
  objects), cap U(10, 35) px.

Each is made as a three-frame clip in linear light (:func:`unblur.blur.field_frames`: the
displacement between frames is the blur field over a duty cycle drawn from U(d, 1), with
``d = max(0.3, longest blur / 48 px)`` so that frames are at most 48 px apart, the two-frame
network's training range) plus 0.5% Gaussian noise; the single-image estimators see the
centre frame, the two-frame network also its neighbours. ``+ flips``: the network's
estimates averaged over the four flips of the input.
Errors are sign-aware (:mod:`unblur.motion`) and pooled over the pixels of all images, 16 px
from the border: median end-point error, median angle error (mod 180, where the true length
is over 3 px), median length error.

``--levin`` adds the blind kernel estimator's error ratio on Levin et al. 2009 (as
``benchmarks/blind.py``). PSNR gains of ``--method motion`` and ``--method blind`` come from
``benchmarks/restore_quality.py --models none --motion --blind``.

Usage::

    python benchmarks/motion.py --data ../shared/data [--limit 24] [--levin] [--json out.json]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import time
from pathlib import Path

import numpy as np
from tqdm import tqdm

from unblur import blur, io, motion
from unblur.motion.estimate import estimate_motion

BORDER = 16
MAX_DISPLACEMENT = 48.0  # px between frames: the two-frame network's training range
# name -> (estimate_motion method, test-time augmentation)
ESTIMATORS = {
    "cnn": ("cnn", False),
    "cnn + flips": ("cnn", True),
    "frames": ("frames", False),
    "frames + flips": ("frames", True),
    "spectral": ("spectral", False),
}


def make_clip(sharp: np.ndarray, kind: str, rng: np.random.Generator) -> tuple[list, np.ndarray]:
    """Three noisy sRGB frames and the true blur field of the centre one."""
    h, w = sharp.shape[:2]
    if kind == "linear":
        field = blur.constant_field(h, w, float(rng.uniform(5, 35)), float(rng.uniform(0, 180)))
    else:
        field = blur.random_field(h, w, rng=rng, max_length=float(rng.uniform(10, 35))).field
    # the duty cycle, within what the two-frame network was trained on: at least 0.3 and
    # large enough that frames are at most MAX_DISPLACEMENT px apart
    longest = float(np.max(np.hypot(field[..., 0], field[..., 1])))
    duty = float(rng.uniform(max(0.3, longest / MAX_DISPLACEMENT), 1.0))
    linear = io.srgb_to_linear(sharp)
    frames = blur.field_frames(linear, field / np.float32(duty), duty=duty)
    out = []
    for frame in frames:
        noisy = frame + rng.normal(0.0, 0.005, frame.shape).astype(np.float32)
        out.append(np.clip(io.linear_to_srgb(np.clip(noisy, 0, 1)), 0, 1).astype(np.float32))
    return out, field


def score(errors: dict[str, list[np.ndarray]]) -> dict[str, float]:
    epe = np.concatenate(errors["epe"])
    angle = np.concatenate(errors["angle"])
    length = np.concatenate(errors["length"])
    return {
        "median_epe_px": float(np.median(epe)),
        "mean_epe_px": float(np.mean(epe)),
        "median_angle_error_deg": float(np.median(angle)) if angle.size else float("nan"),
        "median_length_error_px": float(np.median(length)),
    }


def synthetic(data: Path, limit: int | None, quiet: bool) -> dict[str, dict[str, object]]:
    paths = sorted((data / "kodak24" / "images").glob("*.png"))[:limit]
    report: dict[str, dict[str, object]] = {}
    for kind in ("linear", "varying"):
        errors = {e: {"epe": [], "angle": [], "length": []} for e in ESTIMATORS}
        seconds = {e: 0.0 for e in ESTIMATORS}
        for i, path in enumerate(tqdm(paths, desc=kind, disable=quiet)):
            rng = np.random.default_rng([0, i, kind == "linear"])
            sharp = io.read_image(path).pixels[..., :3]
            (prev, cur, nxt), true = make_clip(sharp, kind, rng)
            inner = (slice(BORDER, -BORDER), slice(BORDER, -BORDER))
            true_in = true[inner]
            long_enough = np.hypot(true_in[..., 0], true_in[..., 1]) > 3
            for name, (method, tta) in ESTIMATORS.items():
                start = time.perf_counter()
                frames = (prev, nxt) if method == "frames" else None
                est = estimate_motion(cur, method=method, frames=frames, tta=tta).field[inner]
                seconds[name] += time.perf_counter() - start
                errors[name]["epe"].append(motion.endpoint_error(est, true_in).ravel())
                errors[name]["angle"].append(
                    motion.angle_error(est[long_enough], true_in[long_enough]).ravel()
                )
                errors[name]["length"].append(motion.length_error(est, true_in).ravel())
        report[kind] = {
            name: score(errors[name]) | {"seconds_per_image": seconds[name] / len(paths)}
            for name in ESTIMATORS
        }
    return report


def levin(data: Path) -> dict[str, object]:
    spec = importlib.util.spec_from_file_location(
        "blind_benchmark", Path(__file__).with_name("blind.py")
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    result = module.levin(data, None, "31")
    return {k: v for k, v in result.items() if k != "rows"}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data"
    )
    parser.add_argument("--limit", type=int, default=None, help="kodak24 images (default all)")
    parser.add_argument("--levin", action="store_true", help="also the blind estimator on Levin")
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--quiet", action="store_true")
    args = parser.parse_args()

    report: dict[str, object] = {"synthetic": synthetic(args.data, args.limit, args.quiet)}
    print(
        "| set | estimator | median EPE (px) | mean EPE (px) | median angle error (deg) "
        "| median length error (px) | s/image |"
    )
    print("|---|---|---|---|---|---|---|")
    for kind, table in report["synthetic"].items():  # type: ignore[union-attr]
        for name, r in table.items():
            print(
                f"| kodak24 {kind} | {name} | {r['median_epe_px']:.2f} | {r['mean_epe_px']:.2f} "
                f"| {r['median_angle_error_deg']:.1f} | {r['median_length_error_px']:.2f} "
                f"| {r['seconds_per_image']:.2f} |"
            )
    if args.levin:
        report["levin"] = levin(args.data)
        r = report["levin"]
        print(
            f"\nLevin et al. 2009, blind kernel (31 px): mean error ratio "
            f"{r['mean_error_ratio']:.2f}, share <= 3: {r['share_ratio_le_3']:.0%}, "
            f"{r['seconds_per_image']:.2f} s/image"
        )
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
