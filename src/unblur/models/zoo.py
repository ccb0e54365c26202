"""The built-in models. Each entry mirrors its section of MODELS.md."""

from __future__ import annotations

from unblur.models.registry import ModelSpec, register


def _nafnet_fast():
    from unblur.models.restore_net import NAFNet

    return NAFNet(
        width=16, enc_blocks=(1, 1, 2, 4), middle_blocks=4, dec_blocks=(1, 1, 1, 1), stem_stride=2
    )


def _nafnet_quality():
    from unblur.models.restore_net import NAFNet

    return NAFNet(
        width=24, enc_blocks=(1, 1, 2, 6), middle_blocks=6, dec_blocks=(1, 1, 1, 1), stem_stride=1
    )


register(
    ModelSpec(
        name="nafnet-fast",
        build=_nafnet_fast,
        weights="nafnet-fast.safetensors",
        task="restore",
        description="NAFNet-class U-Net, width 16, 2x2-folded stem: the fast CPU model",
        # channel-attention pooling for weights whose file does not say (the shipped file of
        # 2026-12-06): global over each 1024 px tile. On the gate's kinds at up to 720 px
        # (benchmarks/pooling.py) it beat 288 px windows on GOPR0374 by 0.11 dB and matched
        # them on the synthetic kinds; 192 px windows had scored 0.1 dB lower still
        meta={"config": "configs/nafnet-fast.yaml", "local_pool": None},
    )
)
register(
    ModelSpec(
        name="nafnet-polish",
        build=_nafnet_fast,
        weights="nafnet-polish.safetensors",
        # not a model for blurred photos: auto runs it on its own deconvolutions (BLIND_POLISH)
        task="polish",
        description="nafnet-fast trained to clean a deconvolution (ringing, noise): auto's "
        "learned clean-up",
        meta={"config": "configs/nafnet-polish.yaml", "local_pool": None},
    )
)
register(
    ModelSpec(
        name="nafnet-quality",
        build=_nafnet_quality,
        weights="nafnet-quality.safetensors",
        task="restore",
        description="NAFNet-class U-Net, width 24, full-resolution stem: the quality model",
        meta={"config": "configs/nafnet-quality.yaml"},
    )
)


def _motion_single():
    from unblur.models.motion_net import MotionNet

    return MotionNet(in_frames=1, width=24, head="classify")


def _motion_frames():
    from unblur.models.motion_net import MotionNet

    return MotionNet(in_frames=3, width=24, head="classify")


register(
    ModelSpec(
        name="motion-single",
        build=_motion_single,
        weights="motion-single.safetensors",
        task="motion",
        description="MotionNet: per-pixel blur motion field from one blurred image",
        meta={"config": "configs/motion-single.yaml"},
    )
)
register(
    ModelSpec(
        name="motion-frames",
        build=_motion_frames,
        weights="motion-frames.safetensors",
        task="motion",
        description="MotionNet: blur motion field of a video frame from it and its neighbours",
        meta={"config": "configs/motion-frames.yaml"},
    )
)
