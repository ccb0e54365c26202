"""Recreate the example video: real GoPro motion blur at 30 frames per second.

``examples/street_gopro.mp4`` is 1.2 s of hand-held street video (GoPro sequence
GOPR0477_11_00 of Nah, Kim & Lee's GOPRO_Large, CC BY 4.0): each of its 37 frames is the
average of 8 consecutive 240 fps frames in linear light (``unblur.blur.average_frames``), as
a 30 fps camera with its shutter open the whole frame would have taken it, at 640x360, H.264
(CRF 18). Its sharp middle frames are not shipped; the benchmark (``benchmarks/video.py``)
scores against them.

    python examples/make_video_example.py [--data ../shared/data]
"""

from __future__ import annotations

import argparse
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np

from unblur import blur
from unblur.train.data import load_rgb8

HERE = Path(__file__).resolve().parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=HERE.parent.parent / "shared" / "data")
    args = parser.parse_args()
    paths = sorted((args.data / "gopro-hfr-video" / "GOPR0477_11_00").glob("*.jpg"))
    out = HERE / "street_gopro.mp4"
    tmp = out.with_name(".street_gopro.tmp.mp4")
    with av.open(str(tmp), "w") as container:
        stream = container.add_stream("libx264", rate=30)
        stream.width, stream.height, stream.pix_fmt = 640, 360, "yuv420p"
        stream.time_base = Fraction(1, 30)
        stream.options = {"crf": "18", "preset": "slow"}
        for k, start in enumerate(range(0, len(paths) - 7, 8)):
            window = [
                cv2.resize(load_rgb8(p), (640, 360), interpolation=cv2.INTER_AREA) / 255.0
                for p in paths[start : start + 8]
            ]
            frame = np.rint(blur.average_frames(window, gamma="srgb") * 255).astype(np.uint8)
            picture = av.VideoFrame.from_ndarray(frame, format="rgb24")
            picture.pts = k
            container.mux(stream.encode(picture))
        container.mux(stream.encode())
    tmp.replace(out)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
