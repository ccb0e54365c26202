"""Video deblurring: streaming decode/encode, motion from consecutive frames, temporal
restoration, live mode.

* :mod:`unblur.video.stream`: PyAV decode and encode, audio/subtitle copy, timing, metadata;
* :mod:`unblur.video.frames`: folders of frames (GoPro / REDS layouts);
* :mod:`unblur.video.flow`: optical flow, the duty cycle, each frame's blur field;
* :mod:`unblur.video.temporal`: alignment and fusion of neighbours, the network;
* :mod:`unblur.video.api`: :func:`restore_video` (an iterator) and :func:`restore_file`;
* :mod:`unblur.video.live`: live sources at their own rate;
* :mod:`unblur.video.synth`: synthetic blurred videos with ground truth.

PyAV is imported only where video files are read or written.
"""

from __future__ import annotations

import importlib
from typing import Any

_LAZY = {
    "restore_video": "unblur.video.api",
    "restore_file": "unblur.video.api",
    "VideoFrame": "unblur.video.api",
    "VideoReport": "unblur.video.api",
    "VideoRestorer": "unblur.video.temporal",
    "FusionSettings": "unblur.video.temporal",
    "estimate_duty": "unblur.video.flow",
    "flow_blur_fields": "unblur.video.flow",
    "warping_error": "unblur.video.flow",
    "synth_video": "unblur.video.synth",
    "run_live": "unblur.video.live",
}

__all__ = list(_LAZY)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'unblur.video' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
