"""Check GoPro-style frame averaging against the real pairs it should reproduce.

``gopro-frameavg`` pairs named ``..._st_frame-S_n_avg-N.png`` average frames
``S+1 .. S+N`` of a 240 fps GoPro sequence; those whose frames lie in
``gopro-hfr-frames`` are rebuilt with :func:`unblur.blur.average_window` under
each linearisation and scored with PSNR against the shipped blur.

Usage::

    python benchmarks/frameavg.py --data ../shared/data
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

from unblur import blur, io, metrics

GAMMAS: tuple[str | float | None, ...] = (None, 2.2, "srgb")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data"
    )
    args = parser.parse_args()
    frames_dir = args.data / "gopro-hfr-frames"
    print(
        "| pair | frames | "
        + " | ".join(f"gamma={g}" for g in GAMMAS)
        + " | sharp = centre frame |"
    )
    print("|---|---|" + "---|" * len(GAMMAS) + "---|")
    for blur_path in sorted((args.data / "gopro-frameavg" / "blur").glob("*.png")):
        m = re.match(r"(?P<scene>.+)_st_frame-(?P<st>\d+)_n_avg-(?P<n>\d+)", blur_path.stem)
        if m is None:
            continue
        scene, st, n = m["scene"], int(m["st"]), int(m["n"])
        paths = [frames_dir / scene / f"{i:06d}.png" for i in range(st + 1, st + n + 1)]
        if not all(p.exists() for p in paths):
            continue
        frames = [io.read_image(p).pixels for p in paths]
        target = io.read_image(blur_path).pixels
        sharp_ref = io.read_image(args.data / "gopro-frameavg" / "sharp" / blur_path.name).pixels
        scores = []
        for gamma in GAMMAS:
            blurred, sharp = blur.average_window(frames, 0, n, gamma=gamma)
            scores.append(metrics.psnr(target, blurred))
        same = metrics.psnr(sharp_ref, sharp) == float("inf")
        print(
            f"| {blur_path.stem} | {st + 1}-{st + n} | "
            + " | ".join(f"{s:.1f}" for s in scores)
            + f" | {same} |"
        )


if __name__ == "__main__":
    main()
