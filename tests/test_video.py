"""Video restoration as a library: flow, duty cycle, fusion, the iterator API, memory."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from tests.scenes import textured_scene
from tests.video_clips import scene_frames, write_clip
from unblur.metrics import psnr
from unblur.motion.field import endpoint_error
from unblur.video import flow
from unblur.video.synth import synth_video
from unblur.video.temporal import METHODS, FusionSettings, VideoRestorer


@pytest.fixture(scope="module")
def handheld() -> object:
    """A small hand-held clip whose blur swings from frame to frame (duty cycle 1)."""
    photo = textured_scene(200, 260, 3, seed=3)
    return synth_video(
        photo, size=(96, 64), frames=10, duty=1.0, max_speed=8, rng=1, objects=0, noise=0.002
    )


@pytest.fixture(scope="module")
def deblurrer() -> object:
    from unblur.restoration.network import Deblurrer

    return Deblurrer("nafnet-fast", device="cpu")


def test_synth_video_ground_truth_matches_forward_model() -> None:
    photo = textured_scene(120, 160, 3, seed=1)
    clip = synth_video(photo, size=(64, 48), frames=4, duty=0.5, rng=0, noise=0, jpeg_quality=None)
    assert len(clip.blurred) == len(clip.sharp) == len(clip.fields) == 4
    assert clip.blurred[0].shape == (48, 64, 3) and clip.blurred[0].dtype == np.uint8
    assert clip.fields[0].shape == (48, 64, 2)
    # hand-held: the blur changes from frame to frame, and is half the motion per interval
    lengths = clip.blur_lengths()
    assert lengths.max() - lengths.min() > 0.5
    assert lengths.max() <= 0.5 * 12.0 * 1.2  # the cross-axis shake adds up to 20 %
    with pytest.raises(ValueError, match="duty"):
        synth_video(photo, size=(64, 48), duty=0.0)


def test_flow_blur_fields_recover_the_true_field(handheld: object) -> None:
    fields = list(flow.flow_blur_fields(handheld.blurred, duty=handheld.duty))
    assert len(fields) == len(handheld.fields)
    epe = [
        float(endpoint_error(f, t)[4:-4, 4:-4].mean())
        for f, t in zip(fields, handheld.fields, strict=True)
    ]
    assert np.median(epe) < 1.0, epe
    lengths = handheld.blur_lengths()
    assert float(np.mean(epe)) < 0.35 * float(np.mean(lengths))


def test_duty_cycle_is_estimated_from_the_frames() -> None:
    photo = textured_scene(240, 320, 3, seed=5)
    found = {}
    for duty in (0.3, 1.0):
        clip = synth_video(photo, size=(128, 96), frames=12, duty=duty, max_speed=10, rng=4,
                           objects=0, noise=0.002)  # fmt: skip
        found[duty] = flow.estimate_duty(clip.blurred)
        assert found[duty].identifiable and found[duty].pairs >= 3
    assert found[1.0].duty > 0.8
    assert found[0.3].duty < 0.55
    # a steady pan says nothing about the duty cycle: the default, and said so
    pan = synth_video(photo, size=(128, 96), frames=10, duty=0.5, path="pan", rng=2, objects=0)
    steady = flow.estimate_duty(pan.blurred)
    assert not steady.identifiable and steady.duty == flow.DEFAULT_DUTY
    assert "assumed" in steady.describe()


def test_temporal_beats_per_frame_restoration(handheld: object, deblurrer: object) -> None:
    sharp = [s.astype(np.float32) / 255 for s in handheld.sharp]
    duty = flow.estimate_duty(handheld.blurred).duty
    scores, steadiness = {}, {}
    for method in ("network", "temporal"):
        restorer = VideoRestorer(method, deblurrer=deblurrer, duty=duty)
        out = [o for i, f in enumerate(handheld.blurred) for _, o in restorer.push(f, i)]
        out += [o for _, o in restorer.flush()]
        assert len(out) == len(sharp)
        scores[method] = np.mean(
            [psnr(s, o, crop_border=4) for s, o in zip(sharp, out, strict=True)]
        )
        steadiness[method] = flow.warping_error(out, handheld.sharp)
    # measured 30.55 vs 29.34 dB, warping error 0.0061 vs 0.0129
    assert scores["temporal"] > scores["network"] + 0.8, scores
    assert steadiness["temporal"] < 0.7 * steadiness["network"], steadiness


class _Identity:
    """A stand-in for the network where only the method's choice is tested (fast)."""

    def restore(self, pixels: np.ndarray) -> np.ndarray:
        return pixels


def test_auto_picks_temporal_for_varying_blur_and_network_for_constant_blur() -> None:
    from unblur.video.temporal import AUTO_FRAMES

    deblurrer = _Identity()
    photo = textured_scene(200, 260, 3, seed=3)
    for path, want in (("handheld", "temporal"), ("pan", "network")):
        clip = synth_video(photo, size=(96, 64), frames=AUTO_FRAMES + 2, duty=1.0, max_speed=8,
                           rng=1, objects=0, noise=0.002, path=path)  # fmt: skip
        restorer = VideoRestorer("auto", deblurrer=deblurrer)
        assert restorer.delay == AUTO_FRAMES + 1
        counts = [len(restorer.push(f, i)) for i, f in enumerate(clip.blurred)]
        assert counts[:-1] == [0] * AUTO_FRAMES + [0]  # held until it has decided
        out = restorer.push(clip.blurred[0], "extra") + restorer.flush()
        assert sum(counts) + len(out) == len(clip.blurred) + 1
        # measured: sharpness gain 0.50, motion gain 0.50 (hand-held); 0.11, 0.01 (pan)
        assert restorer.method == want, (path, restorer.gain, restorer.motion_gain)
        assert restorer.requested == "auto"
    # too short to fill the window: decides at the end on what it has
    short = VideoRestorer("auto", deblurrer=deblurrer)
    got = [t for i, f in enumerate(clip.blurred[:3]) for t, _ in short.push(f, i)]
    got += [t for t, _ in short.flush()]
    assert got == [0, 1, 2] and short.method == "network"


def test_fusion_keeps_a_static_scene_steady_and_the_frame_where_alignment_fails() -> None:
    still = textured_scene(48, 64, 3, seed=2)
    rng = np.random.default_rng(0)
    frames = [np.clip(still + rng.normal(0, 0.02, still.shape), 0, 1).astype(np.float32)
              for _ in range(7)]  # fmt: skip
    restorer = VideoRestorer("fusion", duty=0.5)
    out = [o for i, f in enumerate(frames) for _, o in restorer.push(f, i)] + [
        o for _, o in restorer.flush()
    ]
    # averaging aligned frames of a static scene takes noise out and agrees frame to frame
    assert psnr(still, out[3]) > psnr(still, frames[3]) + 3
    assert np.abs(out[3] - out[4]).mean() < 0.5 * np.abs(frames[3] - frames[4]).mean()
    # a neighbour of another scene (a cut) gets no weight: the frame stays itself
    other = textured_scene(48, 64, 3, seed=9)
    cut = VideoRestorer("fusion", duty=0.5, settings=FusionSettings(radius=1))
    got = [o for i, f in enumerate([other, still, other]) for _, o in cut.push(f, i)]
    got += [o for _, o in cut.flush()]
    assert psnr(still, got[1]) > 35


def test_restorer_outputs_in_order_and_checks_input() -> None:
    with pytest.raises(ValueError, match="unknown method"):
        VideoRestorer("magic")
    with pytest.raises(ValueError, match="deblurrer"):
        VideoRestorer("temporal")
    assert METHODS == ("auto", "temporal", "fusion", "network", "none")
    restorer = VideoRestorer("fusion", duty=0.4)
    assert restorer.delay == 4
    frames = scene_frames(6, 40, 32)
    tags = [t for i, f in enumerate(frames) for t, _ in restorer.push(f, i)]
    assert tags == [0, 1]  # the rest waits for later neighbours
    tags += [t for t, _ in restorer.flush()]
    assert tags == list(range(6))
    with pytest.raises(ValueError, match="size changed"):
        r = VideoRestorer("none")
        r.push(frames[0])
        r.push(frames[0][:16])


def test_restore_video_iterator(tmp_path: Path) -> None:
    import unblur

    clip = write_clip(tmp_path / "c.mkv", scene_frames(8), fps=20, audio=False)
    got = list(unblur.restore_video(clip, method="fusion"))
    assert [f.index for f in got] == list(range(8))
    assert np.allclose([f.time for f in got], np.arange(8) / 20)
    assert got[0].pixels.dtype == np.float32 and got[0].pixels.shape == (48, 64, 3)
    # arrays in, from another program
    arrays = list(unblur.restore_video(scene_frames(5), method="none", fps=10))
    assert len(arrays) == 5 and arrays[4].time == pytest.approx(0.4)
    # the default, auto, says what it chose (a steady pan: every frame equally blurred)
    from unblur.video.api import restore_file

    report = restore_file(clip, tmp_path / "auto.mkv", deblurrer=_Identity())  # type: ignore[arg-type]
    assert report.frames == 8 and report.method.startswith("auto: network (sharpness gain")


def _rss_mb() -> float:
    with open(f"/proc/{os.getpid()}/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


@pytest.mark.skipif(not Path("/proc/self/statm").exists(), reason="needs Linux /proc")
def test_memory_stays_flat_on_a_long_clip(tmp_path: Path) -> None:
    """Streaming: resident memory after 300 frames is what it was after 60 (measured)."""
    from unblur.video.api import restore_file

    frames = scene_frames(300, 160, 120, speed=0.3)
    clip = write_clip(tmp_path / "long.mkv", frames, fps=30, audio=True)
    del frames
    marks: dict[int, float] = {}

    def mark(count: int) -> None:
        if count in (60, 300):
            marks[count] = _rss_mb()

    report = restore_file(clip, tmp_path / "out.mkv", method="fusion", duty=0.5, on_frame=mark)
    assert report.frames == 300
    # one float32 frame is 0.23 MB: holding every frame would add about 55 MB
    assert marks[300] - marks[60] < 8.0, marks
