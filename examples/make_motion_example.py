"""Recreate the motion example: a spatially varying blur of the astronaut photo, and its picture.

``examples/astronaut_motion.jpg`` is scikit-image's ``astronaut`` (NASA, public domain)
blurred in linear light along a seeded motion field (camera translation, rotation and zoom
plus a moving object; :func:`unblur.blur.random_field`), with 0.5% noise, saved as JPEG;
``examples/astronaut_motion_field.npy`` is the true field (float32 ``(H, W, 2)``, ``(dx, dy)``
in pixels). ``docs/motion.jpg`` shows the true field next to the one ``unblur motion``
estimates from the blurred photo alone.

    python examples/make_motion_example.py
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from skimage import data

from unblur import blur, io
from unblur.motion.estimate import estimate_motion
from unblur.motion.picture import field_picture, side_by_side

HERE = Path(__file__).resolve().parent


def main() -> None:
    sharp = data.astronaut().astype(np.float32) / 255.0
    motion = blur.random_field(512, 512, rng=11, max_length=24.0, objects=1)
    linear = blur.field_blur(io.srgb_to_linear(sharp), motion.field)
    linear = blur.add_noise(linear, rng=11, gaussian_sigma=0.005)
    blurred = io.linear_to_srgb(linear)
    io.write_image(HERE / "astronaut_motion.jpg", blurred, quality=95)
    np.save(HERE / "astronaut_motion_field.npy", motion.field, allow_pickle=False)

    blurred = io.read_image(HERE / "astronaut_motion.jpg").pixels  # as a user would have it
    estimate = estimate_motion(blurred)
    longest = float(np.percentile(np.hypot(*motion.field.transpose(2, 0, 1)), 99))
    true_pic = field_picture(blurred, motion.field, max_length=longest, title="true field")
    est_pic = field_picture(
        blurred,
        estimate.field,
        confidence=estimate.confidence,
        max_length=longest,
        title="estimated (motion-single)",
    )
    both = side_by_side([true_pic, est_pic], ["true motion", "unblur motion"])
    io.write_image(HERE.parent / "docs" / "motion.jpg", both.astype(np.float32) / 255, quality=90)


if __name__ == "__main__":
    main()
