"""Recreate the example shipped in ``examples/``: a camera-shake blur of a public-domain photo.

The sharp photo is scikit-image's ``astronaut`` (NASA, public domain). It is blurred in
linear light with a seeded camera-shake kernel, given 0.5% noise and saved as JPEG, so the
README's first command has a real-looking shaken shot and its kernel to work on.

    python examples/make_example.py
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from skimage import data

from unblur import blur, io

HERE = Path(__file__).resolve().parent


def main() -> None:
    sharp = data.astronaut().astype(np.float32) / 255.0
    shake = blur.shake_kernel(size=25, rng=7, length=22.0)
    linear = blur.blur_image(io.srgb_to_linear(sharp), shake.kernel)
    linear = blur.add_noise(linear, rng=7, gaussian_sigma=0.005)
    io.write_image(HERE / "astronaut_sharp.png", sharp)
    io.write_image(HERE / "astronaut_shake.jpg", io.linear_to_srgb(linear), quality=95)
    np.save(HERE / "astronaut_shake_kernel.npy", shake.kernel, allow_pickle=False)


if __name__ == "__main__":
    main()
