"""Generated test scenes: piecewise-smooth images with edges and texture, no files needed."""

from __future__ import annotations

import numpy as np
from scipy import ndimage


def textured_scene(
    height: int = 128, width: int = 128, channels: int = 1, *, seed: int = 0
) -> np.ndarray:
    """A photo-like float32 scene in [0.05, 0.95]: shaded shapes, sharp edges and fine texture."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    out = np.empty((height, width, channels), np.float32)
    for c in range(channels):
        img = 0.3 + 0.2 * (xx / width) + 0.1 * (yy / height)
        for _ in range(14):
            cy, cx = rng.uniform(0, height), rng.uniform(0, width)
            ry, rx = rng.uniform(4, height / 4), rng.uniform(4, width / 4)
            value = rng.uniform(0.05, 0.95)
            if rng.random() < 0.5:
                mask = ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 < 1
            else:
                mask = (np.abs(yy - cy) < ry) & (np.abs(xx - cx) < rx)
            img[mask] = value
        texture = ndimage.gaussian_filter(rng.standard_normal((height, width)), 1.0)
        img = img + 0.04 * texture.astype(np.float32)
        out[..., c] = img
    out = np.clip(out, 0.05, 0.95)
    return out[..., 0] if channels == 1 else out
