"""Video deblurring: quality, motion fields, temporal consistency, speed and memory.

1. **Synthetic clips** (:func:`unblur.video.synth.synth_video`: a camera path and a moving
   object over real photos, sub-frame averaging in linear light, noise, JPEG) at 640x360:
   hand-held paths at duty cycles 0.25, 0.5 and 1, and a steady pan at 0.5. For each clip:

   * the duty cycle estimated from the frames against the true one;
   * motion fields, median end-point error (sign-aware, px) against the true blur field: the
     flow-based field (``duty * v``, estimated duty), the same with the true duty, the
     two-frame network ``motion-frames`` and the single-image network ``motion-single``;
   * restoration, mean PSNR / SSIM against the sharp frames (8 px border cropped), warping
     error between consecutive outputs (flow from the sharp frames), seconds per frame:
     the input, ``network`` (per frame), ``fusion``, ``temporal``.

2. **Real frames**: ``gopro-hfr-video`` (299 sharp 240 fps GoPro frames) averaged in linear
   light into 30 fps sequences, 8 of every 8 frames (duty 1, GoPro-style) and 4 of every 8
   (duty 0.5), the sharp frame the window's centre; shrunk to 640x360 for CPU time.

3. **Speed**: steady frames per second of ``restore_file`` (decode, restore, encode) on a
   generated 30 fps clip at 640x360 and 1280x720, per method and flow width; and live mode
   (``run_live``) on the clip played at its real rate: frames dropped and rate achieved.

4. **Peak memory** (``ru_maxrss``) of ``restore_file`` with ``fusion`` at 1280x720 on a short
   and a four times longer clip, each in its own process.

Usage::

    python benchmarks/video.py --frames 10 --photos 2 --threads 2 --json video.json
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import torch

from unblur import blur
from unblur.metrics import psnr, ssim
from unblur.motion.estimate import estimate_motion
from unblur.motion.field import endpoint_error
from unblur.restoration.network import Deblurrer
from unblur.train.data import load_rgb8
from unblur.video.flow import estimate_duty, flow_blur_fields, warping_error
from unblur.video.synth import synth_video
from unblur.video.temporal import VideoRestorer

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT.parent / "shared" / "data"
PHOTOS = ["plasma_Path.jpg", "mate_Garden.jpg", "plasma_Kite.jpg", "mate_Dune.jpg"]
CLIPS = [("handheld", 0.25), ("handheld", 0.5), ("handheld", 1.0), ("pan", 0.5)]
METHODS = ("network", "fusion", "temporal")
CROP = 8
NET: Deblurrer | None = None


def restore_all(method: str, frames: list[np.ndarray], duty: float, net: Deblurrer) -> tuple:
    restorer = VideoRestorer(method, deblurrer=net, duty=duty)
    start = time.perf_counter()
    out = [o for i, f in enumerate(frames) for _, o in restorer.push(f, i)]
    out += [o for _, o in restorer.flush()]
    return out, (time.perf_counter() - start) / len(frames)


def score(sharp: list[np.ndarray], out: list[np.ndarray]) -> dict:
    ref = [s.astype(np.float32) / 255 for s in sharp]
    test = [o.astype(np.float32) / 255 if o.dtype == np.uint8 else o for o in out]
    return {
        "psnr": float(
            np.mean([psnr(r, t, crop_border=CROP) for r, t in zip(ref, test, strict=True)])
        ),
        "ssim": float(
            np.mean([ssim(r, t, crop_border=CROP) for r, t in zip(ref, test, strict=True)])
        ),
        "warp": float(warping_error(test, sharp)),
    }


def motion_epe(
    blurred: list[np.ndarray], fields: list[np.ndarray], duty: float, true_duty: float
) -> dict:
    inner = range(1, len(blurred) - 1)  # frames with both neighbours, for every method alike

    def med(est: list[np.ndarray]) -> float:
        return float(np.median([endpoint_error(est[k], fields[k]).mean() for k in inner]))

    flow_est = list(flow_blur_fields(blurred, duty=duty))
    flow_true = list(flow_blur_fields(blurred, duty=true_duty))
    to_f = [b.astype(np.float32) / 255 for b in blurred]
    frames_net, single = {}, {}
    for k in inner:
        frames_net[k] = estimate_motion(
            to_f[k], method="frames", frames=(to_f[k - 1], to_f[k + 1])
        ).field
        single[k] = estimate_motion(to_f[k], method="cnn").field
    return {
        "flow": med(flow_est),
        "flow_true_duty": med(flow_true),
        "frames_net": float(
            np.median([endpoint_error(frames_net[k], fields[k]).mean() for k in inner])
        ),
        "single_net": float(
            np.median([endpoint_error(single[k], fields[k]).mean() for k in inner])
        ),
    }


def synthetic(args: argparse.Namespace, net: Deblurrer) -> list[dict]:
    rows = []
    for p, name in enumerate(PHOTOS[: args.photos]):
        photo = load_rgb8(DATA / "debian-wallpaper-photos" / "images" / name)
        for path, duty in CLIPS:
            clip = synth_video(photo, size=(640, 360), frames=args.frames, duty=duty,
                               max_speed=14, path=path, rng=100 + p)  # fmt: skip
            found = estimate_duty(clip.blurred)
            row = {"photo": name, "path": path, "duty": duty, "duty_est": found.duty,
                   "identifiable": found.identifiable,
                   "blur_px": float(np.mean(clip.blur_lengths()))}  # fmt: skip
            row["epe"] = motion_epe(clip.blurred, clip.fields, found.duty, duty)
            row["input"] = score(clip.sharp, clip.blurred)
            for method in METHODS:
                out, sec = restore_all(method, clip.blurred, found.duty, net)
                row[method] = {**score(clip.sharp, out), "s_per_frame": sec}
            rows.append(row)
            print(json.dumps(row), flush=True)
    return rows


def gopro_clips(count: int) -> Iterator[tuple[int, list[np.ndarray], list[np.ndarray]]]:
    """``(n, blurred, sharp)``: ``count`` 30 fps frames of 640x360, each the linear-light
    average of ``n`` of 8 consecutive 240 fps frames (``n`` = 8 then 4), and the sharp
    middle frames."""
    folder = DATA / "gopro-hfr-video" / "GOPR0477_11_00"
    paths = sorted(folder.glob("*.jpg"))[: 8 * count]
    frames = [cv2.resize(load_rgb8(p), (640, 360), interpolation=cv2.INTER_AREA) for p in paths]
    for n in (8, 4):
        blurred, sharp = [], []
        for start in range(0, len(frames) - 7, 8):
            window = [f.astype(np.float32) / 255 for f in frames[start : start + n]]
            avg = blur.average_frames(window, gamma="srgb")
            blurred.append(np.rint(avg * 255).astype(np.uint8))
            sharp.append(frames[start + n // 2])
        yield n, blurred, sharp


def gopro(args: argparse.Namespace, net: Deblurrer) -> list[dict]:
    rows = []
    for n, blurred, sharp in gopro_clips(args.gopro_frames):
        found = estimate_duty(blurred)
        row = {"set": f"gopro-hfr 240->30 fps, {n}/8 frames", "duty": n / 8,
               "duty_est": found.duty, "identifiable": found.identifiable,
               "input": score(sharp, blurred)}  # fmt: skip
        for method in METHODS:
            out, sec = restore_all(method, blurred, found.duty, net)
            row[method] = {**score(sharp, out), "s_per_frame": sec}
        rows.append(row)
        print(json.dumps(row), flush=True)
    return rows


def make_clip(path: Path, width: int, height: int, count: int) -> Path:
    import av

    photo = load_rgb8(DATA / "debian-wallpaper-photos" / "images" / PHOTOS[0])
    clip = synth_video(photo, size=(width, height), frames=min(count, 12), duty=0.5, rng=0,
                       objects=1)  # fmt: skip
    with av.open(str(path), "w") as out:
        s = out.add_stream("libx264", rate=30)
        s.width, s.height, s.pix_fmt = width, height, "yuv420p"
        s.options = {"crf": "20", "preset": "veryfast"}
        for i in range(count):
            f = clip.blurred[i % len(clip.blurred)] if (i // len(clip.blurred)) % 2 == 0 else \
                clip.blurred[len(clip.blurred) - 1 - i % len(clip.blurred)]  # fmt: skip
            frame = av.VideoFrame.from_ndarray(f, format="rgb24")
            frame.pts = i
            for p in s.encode(frame):
                out.mux(p)
        for p in s.encode():
            out.mux(p)
    return path


def speed(args: argparse.Namespace, tmp: Path) -> list[dict]:
    """Steady frames per second of restore_file (decode, restore, encode; model loading and
    the duty pre-pass left out), and live mode on a file played at 30 fps."""
    from unblur.video.api import restore_file
    from unblur.video.live import run_live
    from unblur.video.temporal import FusionSettings

    rows = []
    for width, height in ((640, 360), (1280, 720)):
        clip = make_clip(tmp / f"speed_{width}.mp4", width, height, args.speed_frames)
        runs = [("none", 640), ("fusion", 640), ("fusion", 320), ("network", 640),
                ("temporal", 640)]  # fmt: skip
        for method, work in runs:
            if method in ("network", "temporal") and width > 640 and not args.slow:
                continue
            count = args.speed_frames if method in ("none", "fusion") else 10
            report = restore_file(
                clip, tmp / f"out_{width}_{method}_{work}.mp4", method=method, duty=0.5,
                end=count / 30, deblurrer=NET if method in ("network", "temporal") else None,
                settings=FusionSettings(work_width=work), overwrite=True,
            )  # fmt: skip
            rows.append({"size": f"{width}x{height}", "method": method, "work_width": work,
                         "frames": report.frames, "fps": report.fps})  # fmt: skip
            print(json.dumps(rows[-1]), flush=True)
        for work in (320, 640):
            fast = VideoRestorer("fusion", duty=0.5, settings=FusionSettings(work_width=work))
            live = run_live(clip, tmp / f"live_{width}_{work}.mkv", overwrite=True, restorer=fast)
            rows.append({"size": f"{width}x{height}", "method": "live fusion (30 fps input)",
                         "work_width": work, "frames_in": live.frames_in,
                         "frames_out": live.frames_out, "dropped": live.dropped,
                         "fps": live.fps})  # fmt: skip
            print(json.dumps(rows[-1]), flush=True)
    return rows


MEMORY_CHILD = """
import resource, sys
from unblur.video.api import restore_file
restore_file(sys.argv[1], sys.argv[2], method="fusion", duty=0.5, overwrite=True)
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
"""


def memory(args: argparse.Namespace, tmp: Path) -> list[dict]:
    rows = []
    for count in (args.memory_frames, 4 * args.memory_frames):
        clip = make_clip(tmp / f"mem_{count}.mp4", 1280, 720, count)
        res = subprocess.run(
            [sys.executable, "-c", MEMORY_CHILD, str(clip), str(tmp / "mem_out.mp4")],
            check=True, capture_output=True, text=True,
        )  # fmt: skip
        rows.append(
            {"frames": count, "size": "1280x720", "peak_rss_mb": float(res.stdout.split()[-1])}
        )
        print(json.dumps(rows[-1]), flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--frames", type=int, default=10, help="frames per synthetic clip")
    parser.add_argument("--photos", type=int, default=2, help="photos for synthetic clips")
    parser.add_argument("--gopro-frames", type=int, default=8, help="30 fps GoPro frames")
    parser.add_argument("--speed-frames", type=int, default=60)
    parser.add_argument("--memory-frames", type=int, default=60)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--slow", action="store_true", help="also time the network at 720p")
    parser.add_argument("--skip", nargs="*", default=[], help="synthetic gopro speed memory")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    cv2.setNumThreads(args.threads)
    global NET
    net = NET = Deblurrer("nafnet-fast", device="cpu")
    import tempfile

    result: dict = {"cpu": platform.processor() or platform.machine(), "threads": args.threads}
    with tempfile.TemporaryDirectory() as tmp:
        if "synthetic" not in args.skip:
            result["synthetic"] = synthetic(args, net)
        if "gopro" not in args.skip:
            result["gopro"] = gopro(args, net)
        if "speed" not in args.skip:
            result["speed"] = speed(args, Path(tmp))
        if "memory" not in args.skip:
            result["memory"] = memory(args, Path(tmp))
    if args.json:
        args.json.write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
