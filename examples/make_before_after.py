"""Recreate ``docs/before_after.jpg``, the README's first picture, with the shipped code.

Top: the shaken example photo (``examples/astronaut_shake.jpg``), what ``unblur image`` makes of
it with the default method (``auto``), and the sharp original. Bottom, for comparison on the
same photo: the restoration network alone and deconvolution with the true kernel. Each panel
is labelled with its PSNR against the sharp original; the rule ``auto`` applied is printed.

    python examples/make_before_after.py
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

import unblur
from unblur import io, metrics
from unblur.motion.picture import side_by_side

HERE = Path(__file__).resolve().parent
OUT = HERE.parent / "docs" / "before_after.jpg"


def main() -> None:
    blurred = io.read_image(HERE / "astronaut_shake.jpg").pixels
    sharp = io.read_image(HERE / "astronaut_sharp.png").pixels
    kernel = np.load(HERE / "astronaut_shake_kernel.npy", allow_pickle=False)
    auto = unblur.restore(blurred)
    network = unblur.restore(blurred, "network")
    known = unblur.restore(blurred, "kernel", kernel=kernel)
    print(f"auto: {auto.describe()}")
    chose = auto.method
    if auto.share is not None and auto.share < 1:  # blended: with the network's restoration,
        rest = 1.0 - auto.share - (auto.polish or 0.0)  # with a network on the deconvolution
        chose += " + network" if rest > 0 else ""
        chose += f" + {auto.polish_model}" if auto.polish else ""

    def label(text: str, image: np.ndarray) -> str:
        return f"{text}: {metrics.psnr(sharp, image):.1f} dB"

    crop = (slice(0, 320), slice(96, 416))  # the face and the helmet ring
    top = side_by_side(
        [blurred[crop], auto.pixels[crop], sharp[crop]],
        [
            label("shaken photo", blurred),
            label(f"unblur image (auto: {chose})", auto.pixels),
            "sharp original",
        ],
    )
    bottom = side_by_side(
        [network.pixels[crop], known.pixels[crop], np.abs(auto.pixels - sharp)[crop] * 4],
        [
            label("--method network", network.pixels),
            label("--kernel (the true one)", known.pixels),
            "auto's error x4",
        ],
    )
    gap = np.full((8, top.shape[1], 3), 255, np.uint8)
    picture = np.concatenate([top, gap, bottom[:, : top.shape[1]]], axis=0)
    io.write_image(OUT, picture.astype(np.float32) / 255.0, quality=90, overwrite=True)
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
