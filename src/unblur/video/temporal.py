"""Restoring a video frame by frame with its neighbours: alignment, lucky fusion, the network.

A hand-held camera speeds up and slows down, so within a few frames some are much sharper
than others ("lucky" frames, as in lucky imaging). For each frame ``c`` this module:

1. **aligns** its neighbours ``c - R .. c + R`` to it with optical flow
   (:class:`unblur.video.flow.FlowTrack`: DIS between consecutive frames, composed for the
   farther ones) and bicubic warping;
2. **predicts each aligned neighbour's blur** at every pixel from the physics: the blur
   length is ``duty * |v_j|``, the frame's velocity times the duty cycle
   (:mod:`unblur.video.flow`), brought onto frame ``c`` by the same flow;
3. **checks the alignment**: the flows both ways must agree (an occlusion, a cut or a
   flow failure breaks that), and the low-passed warped neighbour must match the low-passed
   frame (low-passing hides the blur difference but not a wrong flow or an object the flow
   missed); where either fails, the neighbour gets no weight;
4. **fuses**: each pixel is a weighted mean of the aligned frames, the weight falling with
   how much more blurred a frame is than the sharpest well-aligned one there,
   ``w_j = conf_j * exp(-((L_j - L_min) / s)^2 / 2)`` with ``s = 0.75 + 0.15 L_min`` px. The
   frame itself always takes part with full confidence, so where every neighbour fails the
   output is the frame. Frames equally sharp are averaged, which also takes noise out; where
   the scene is static and steady, consecutive outputs average nearly the same aligned
   frames, so they agree (no flicker);
5. optionally **restores the fused frame with the network** (``temporal``), which removes
   the blur that even the sharpest neighbour had.

Methods: ``auto`` (the default: ``temporal`` or ``network``, chosen per clip from its first
frames, below), ``temporal`` (fusion, then the network), ``fusion`` (fusion alone: the fast
path), ``network`` (the network on every frame alone: the per-frame baseline), ``none``
(frames passed through: a plain re-encode).

``auto``: lucky imaging only helps when some frames are much sharper than their neighbours
(a hand-held camera); with steady motion every frame is equally blurred and fusing them only
adds residual misalignment. So ``auto`` holds the first :data:`AUTO_FRAMES` frames and
measures two things over them: the *sharpness gain* (:func:`sharpness_gain`: how much
sharper, by the variance of the Laplacian, the sharpest frame within ``R`` of each frame
looks) and the *motion gain* (:func:`lucky_gain`: the same from the flow's speeds, i.e.
the predicted blur lengths). Only when both reach their thresholds does it run
``temporal``, else ``network``; the choice is then kept for the whole clip
(:attr:`VideoRestorer.method`). Clips shorter than that decide on what they have. The
motion alone is not enough: on real GoPro footage the flow's speeds swing as much as a
hand-held synthetic clip's (motion gain 0.53) while the frames' sharpness barely does
(sharpness gain 0.13-0.14), and fusion loses there.

:class:`VideoRestorer` takes frames one at a time and returns the restored ones in order,
``R + 2`` frames later (a frame's velocity needs the two frames after it), holding only those
frames: memory does not grow with the length of the video.
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import cv2
import numpy as np

from unblur import blur
from unblur.video.flow import (
    DEFAULT_DUTY,
    DutyEstimate,
    DutyEstimator,
    FlowEstimator,
    FlowTrack,
    resize_flow,
    warp,
)
from unblur.video.flow import noise_level as flow_noise_level

if TYPE_CHECKING:
    from unblur.restoration.network import Deblurrer

__all__ = ["AUTO_FRAMES", "AUTO_MOTION_THRESHOLD", "AUTO_THRESHOLD", "METHODS",
           "FusionSettings", "VideoRestorer", "lucky_gain", "sharpness_gain"]  # fmt: skip

METHODS = ("auto", "temporal", "fusion", "network", "none")
USES_FLOW = ("auto", "temporal", "fusion")
USES_NETWORK = ("auto", "temporal", "network")

#: ``auto`` decides from the sharpness and speeds of this many first frames (held until
#: then: a one-time start-up delay of ``AUTO_FRAMES + 1`` frames; memory stays bounded).
AUTO_FRAMES = 10
#: ``auto`` runs ``temporal`` when :func:`sharpness_gain` is at least ``AUTO_THRESHOLD`` and
#: :func:`lucky_gain` (the flow's speeds) at least ``AUTO_MOTION_THRESHOLD``, else ``network``.
#: Calibrated with ``python benchmarks/video_auto.py --frames 12 --photos 2 --gopro-frames 12
#: --threads 1`` (BENCHMARKS.md, Video; sharpness gain / motion gain, temporal - network dB):
#: synthetic hand-held with 3.5-7 px blur (plasma_Path) 0.34-0.37 / 0.53, +1.8 to +2.3 dB;
#: hand-held with 1-4 px blur (mate_Garden) 0.05-0.11 / 0.50-0.52, +0.64 to +0.75 dB;
#: steady pans 0.04-0.07 / 0.00, +0.12 and +0.14 dB; real GoPro 240->30 fps averages
#: 0.13-0.14 / 0.53, -0.35 (8/8) and -0.78 dB (4/8). The motion gain alone cannot tell
#: GoPro from hand-held; the sharpness gain puts the threshold at 0.2, between GoPro's 0.14
#: and the strong hand-held clips' 0.34, which gives up the short-blur hand-held clips'
#: +0.6-0.75 dB (the frames look too alike to be sure) rather than lose 0.35-0.78 dB on
#: real footage. The motion threshold keeps compression or lighting flicker on a steady pan
#: (a tiny H.264 pan in the tests: sharpness gain 0.22, motion gain 0.03) from counting.
AUTO_THRESHOLD = 0.2
AUTO_MOTION_THRESHOLD = 0.2


def lucky_gain(speeds: list[float], radius: int) -> float:
    """How much sharper the sharpest neighbour is, on average, relative to the mean blur.

    ``speeds[j]`` is frame ``j``'s typical motion (px per frame interval; its blur length is
    the duty cycle times it). For each frame, the drop from its speed to the lowest within
    ``radius`` frames of it; their mean over the mean speed plus 1 px (so that a still
    camera, with nothing to gain, scores near 0). 0: every frame equally blurred (a steady
    pan); near 1: each frame has a nearly sharp neighbour (a hand-held camera).
    """
    if not speeds:
        return 0.0
    s = np.asarray(speeds, np.float64)
    drops = [s[j] - s[max(0, j - radius) : j + radius + 1].min() for j in range(len(s))]
    return float(np.mean(drops) / (s.mean() + 1.0))


def sharpness_gain(sharpness: list[float], radius: int) -> float:
    """How much sharper the sharpest neighbour looks, on average: the mean over frames of
    ``log(max(sharpness within radius) / sharpness)``, ``sharpness`` being each frame's
    variance of the Laplacian (:func:`unblur.metrics.sharpness`'s measure; consecutive frames
    show the same scene, so the content cancels). 0: every frame equally sharp."""
    if not sharpness:
        return 0.0
    s = np.log(np.maximum(np.asarray(sharpness, np.float64), 1e-12))
    return float(np.mean([s[max(0, j - radius) : j + radius + 1].max() - s[j]
                          for j in range(len(s))]))  # fmt: skip


@dataclass(frozen=True)
class FusionSettings:
    """How neighbours are aligned and fused.

    Attributes:
        radius: neighbours on each side (``R``).
        work_width: optical flow is computed on frames shrunk to this width.
        preset: DIS preset (``ultrafast``, ``fast``, ``medium``).
        tolerance: alignment tolerance: mean absolute difference of the low-passed aligned
            frames (in [0, 1] units) at which a neighbour's confidence falls to ``1/e``.
        duty_width: width at which the duty cycle is estimated while streaming.
        sharp_below: ``temporal``: where the fused frame's remaining blur is shorter than
            this (pixels) it is kept as it is; the network's share grows to all of it over
            the next 2 pixels.
    """

    radius: int = 2
    work_width: int = 640
    preset: str = "fast"
    tolerance: float = 0.035
    duty_width: int = 320
    sharp_below: float = 1.0

    def __post_init__(self) -> None:
        if not 0 <= self.radius <= 8:
            raise ValueError(f"radius must be between 0 and 8, got {self.radius}")
        if self.work_width < 16:
            raise ValueError(f"work_width must be >= 16, got {self.work_width}")
        if self.tolerance <= 0:
            raise ValueError(f"tolerance must be > 0, got {self.tolerance}")


def _to_uint8(frame: np.ndarray) -> np.ndarray:
    if frame.dtype == np.uint8:
        return frame
    return np.rint(np.clip(frame, 0.0, 1.0) * 255.0).astype(np.uint8)


def _to_float(frame: np.ndarray) -> np.ndarray:
    return frame.astype(np.float32) * np.float32(1 / 255)


def _as_float(frame: np.ndarray) -> np.ndarray:
    arr = np.asarray(frame)
    if arr.ndim != 3 or arr.shape[2] != 3:
        raise ValueError(f"frames must be (H, W, 3) RGB, got shape {arr.shape}")
    if arr.dtype == np.uint8:
        return arr.astype(np.float32) * np.float32(1 / 255)
    if not np.issubdtype(arr.dtype, np.floating):
        raise ValueError(f"frames must be uint8 or float in [0, 1], got {arr.dtype}")
    return arr.astype(np.float32, copy=False)


class VideoRestorer:
    """Restore a stream of frames in order (module docstring).

    Args:
        method: ``auto``, ``temporal``, ``fusion``, ``network`` or ``none``.
        deblurrer: the loaded network for ``auto``, ``temporal`` and ``network`` (load it
            once and reuse it across frames).
        duty: the clip's duty cycle; ``None`` estimates it from the first frames while
            streaming (until then :data:`unblur.video.flow.DEFAULT_DUTY`).
        settings: alignment and fusion settings.

    Attributes:
        method: the method in use: the one asked for, except that ``auto`` becomes
            ``temporal`` or ``network`` once it has decided (``requested`` keeps ``auto``).
        gain: ``auto``'s :func:`lucky_gain` once it has decided, else ``None``.

    Raises:
        ValueError: an unknown method, or a network method without a deblurrer.

    Example:
        >>> restorer = VideoRestorer("fusion", duty=0.5)
        >>> frames = [np.full((32, 48, 3), 0.5, np.float32) for _ in range(6)]
        >>> out = [r for i, f in enumerate(frames) for r in restorer.push(f, i)]
        >>> out += restorer.flush()
        >>> [tag for tag, _ in out]
        [0, 1, 2, 3, 4, 5]
    """

    def __init__(
        self,
        method: str = "auto",
        *,
        deblurrer: Deblurrer | None = None,
        duty: float | None = None,
        settings: FusionSettings | None = None,
    ) -> None:
        if method not in METHODS:
            raise ValueError(f"unknown method {method!r}; choose from {', '.join(METHODS)}")
        if method in USES_NETWORK and deblurrer is None:
            raise ValueError(f"method {method!r} needs a deblurrer (the restoration network)")
        if duty is not None and not 0 < duty <= 1:
            raise ValueError(f"duty must be in (0, 1], got {duty}")
        self.method = method
        self.requested = method
        self.gain: float | None = None
        self.motion_gain: float | None = None
        self.deblurrer = deblurrer
        self.settings = settings or FusionSettings()
        self._fixed_duty = duty
        self._duty = DutyEstimator()
        self._track: FlowTrack | None = None
        self._frames: dict[int, np.ndarray] = {}
        self._tags: dict[int, Hashable | Any] = {}
        self._velocity: dict[int, np.ndarray] = {}
        self._length_cache: dict[int, tuple[np.float32, np.ndarray]] = {}
        self._duty_value = np.float32(duty if duty is not None else DEFAULT_DUTY)
        self._next = 0  # next frame index to output
        self._pushed = 0
        self._shape: tuple[int, int] | None = None

    # ------------------------------------------------------------------ public

    @property
    def duty(self) -> DutyEstimate:
        """The duty cycle in use: the given one, or the running estimate."""
        if self._fixed_duty is not None:
            return DutyEstimate(self._fixed_duty, 0, True)
        return self._duty.estimate()

    @property
    def delay(self) -> int:
        """Frames between pushing a frame and getting it back (``auto``, until it has
        decided: ``AUTO_FRAMES + 1``, once)."""
        if self.method == "auto":
            return max(AUTO_FRAMES + 1, self.settings.radius + 2)
        return self.settings.radius + 2 if self.method in USES_FLOW else 0

    def push(self, frame: np.ndarray, tag: Any = None) -> list[tuple[Any, np.ndarray]]:
        """Add the next frame (uint8, or float sRGB in [0, 1], ``(H, W, 3)``).

        Returns:
            ``(tag, restored)`` pairs for the frames now complete, in order: float32
            ``(H, W, 3)`` in [0, 1].

        Raises:
            ValueError: a frame of another size than the first.
        """
        pixels = _as_float(frame)
        if self._shape is None:
            self._shape = pixels.shape[:2]
        elif pixels.shape[:2] != self._shape:
            raise ValueError(
                f"frame size changed from {self._shape[1]}x{self._shape[0]} "
                f"to {pixels.shape[1]}x{pixels.shape[0]}"
            )
        index = self._pushed
        self._pushed += 1
        if self.method not in USES_FLOW:
            self._next = self._pushed
            return [(tag, self._single(pixels))]
        if self._track is None:
            h, w = self._shape
            est = FlowEstimator(
                h, w, work_width=self.settings.work_width, preset=self.settings.preset
            )
            self._track = FlowTrack(est)
        self._frames[index] = _to_uint8(frame)
        self._tags[index] = tag
        self._track.push(frame)
        self._update_lengths(final=False)
        if self.method == "auto":
            if len(self._velocity) < AUTO_FRAMES:
                return []
            return self._decide()
        return self._emit(final=False)

    def flush(self) -> list[tuple[Any, np.ndarray]]:
        """The frames still held, restored (call once the stream has ended)."""
        if self.method not in USES_FLOW or self._track is None:
            return []
        self._update_lengths(final=True)
        if self.method == "auto":
            out = self._decide()
            if self.method not in USES_FLOW:
                return out
            return out + self._emit(final=True)
        return self._emit(final=True)

    # ------------------------------------------------------------------ internals

    def _decide(self) -> list[tuple[Any, np.ndarray]]:
        """``auto``: choose ``temporal`` or ``network`` from the frames held so far, and
        return the held frames that are now complete."""
        track = self._track
        assert track is not None
        scale = float(track.est.scale)
        held = sorted(self._velocity)[:AUTO_FRAMES]
        speeds = [
            float(np.median(np.hypot(self._velocity[j][..., 0], self._velocity[j][..., 1]))) / scale
            for j in held
        ]
        sharpness = [
            float(cv2.Laplacian(track.grey(j).astype(np.float32) / 255, cv2.CV_32F).var())
            for j in held
        ]
        self.motion_gain = lucky_gain(speeds, self.settings.radius)
        self.gain = sharpness_gain(sharpness, self.settings.radius)
        if self.gain >= AUTO_THRESHOLD and self.motion_gain >= AUTO_MOTION_THRESHOLD:
            self.method = "temporal"
            return self._emit(final=False)
        self.method = "network"
        out = [
            (self._tags.pop(j), self._single(_to_float(self._frames[j])))
            for j in sorted(self._frames)
        ]
        self._next = self._pushed
        self._track = None
        self._frames.clear()
        self._tags.clear()
        self._velocity.clear()
        self._length_cache.clear()
        return out

    def _single(self, pixels: np.ndarray) -> np.ndarray:
        if self.method == "none":
            return pixels
        assert self.deblurrer is not None
        return self.deblurrer.restore(pixels)

    def _update_lengths(self, *, final: bool) -> None:
        """Velocities of the frames whose later neighbours have arrived (all, if ``final``);
        while the duty cycle is being estimated, each new pair of them goes to it."""
        track = self._track
        assert track is not None
        for j in range(max(track.first, self._next - self.settings.radius), track.end):
            if j in self._velocity:
                continue
            v = track.velocity(j, final=final)
            if v is None:
                break
            self._velocity[j] = v
            if self._fixed_duty is None and not self._duty.ready and j - 1 in self._velocity:
                self._add_duty_pair(j - 1)
        self._duty_value = np.float32(self.duty.duty)

    def _add_duty_pair(self, k: int) -> None:
        track = self._track
        assert track is not None
        va, vb = self._velocity[k], self._velocity[k + 1]
        flow = track.flow(k, k + 1)
        ga, gb = track.grey(k), track.grey(k + 1)
        h, w = ga.shape
        scale = min(1.0, self.settings.duty_width / w)
        if scale < 1.0:
            size = (max(8, round(w * scale)), max(8, round(h * scale)))
            ga = cv2.resize(ga, size, interpolation=cv2.INTER_AREA)
            gb = cv2.resize(gb, size, interpolation=cv2.INTER_AREA)
            va, vb = (resize_flow(v, size[1], size[0]) for v in (va, vb))
            flow = resize_flow(flow, size[1], size[0])
        lin = [blur._srgb_to_linear(g.astype(np.float32) / 255.0) for g in (ga, gb)]
        self._duty.add(lin[0], lin[1], va, vb, flow)

    def _length(self, j: int) -> np.ndarray:
        """Blur length map of frame ``j`` in working pixels (kept per duty value)."""
        cached = self._length_cache.get(j)
        if cached is not None and cached[0] == self._duty_value:
            return cached[1]
        v = self._velocity[j]
        length = (np.hypot(v[..., 0], v[..., 1]) * self._duty_value).astype(np.float32)
        self._length_cache[j] = (self._duty_value, length)
        return length

    def _emit(self, *, final: bool) -> list[tuple[Any, np.ndarray]]:
        track = self._track
        assert track is not None
        r = self.settings.radius
        out = []
        while self._next < self._pushed:
            c = self._next
            last = min(c + r, self._pushed - 1) if final else c + r
            if not all(j in self._velocity for j in range(max(0, c - r), last + 1)):
                break
            fused, residual = self._fuse(c, range(max(0, c - r), last + 1))
            if self.method == "temporal":
                fused = self._network_where_blurred(fused, residual)
            out.append((self._tags.pop(c), fused))
            self._next += 1
            keep = self._next - r
            for j in [j for j in self._frames if j < keep]:
                del self._frames[j]
            for j in [j for j in self._velocity if j < keep]:
                del self._velocity[j]
                self._length_cache.pop(j, None)
            track.drop_before(min(keep, self._next) - 2)
        return out

    def _network_where_blurred(self, fused: np.ndarray, residual: np.ndarray) -> np.ndarray:
        """The network's restoration of the fused frame where blur remains, the fused frame
        where it is (nearly) sharp: the network degrades sharp pictures slightly, and a
        sharp neighbour restores them better than it does."""
        assert self.deblurrer is not None and self._track is not None
        h, w = fused.shape[:2]
        length = residual / np.float32(self._track.est.scale)  # frame pixels
        share = np.clip((length - self.settings.sharp_below) / 2.0, 0.0, 1.0)
        if not share.any():
            return fused
        restored = self.deblurrer.restore(fused)
        if share.shape != (h, w):
            share = cv2.resize(share, (w, h), interpolation=cv2.INTER_LINEAR)
        return fused + share[..., None] * (restored - fused)

    def _fuse(self, c: int, window: range) -> tuple[np.ndarray, np.ndarray]:
        """Frame ``c`` fused with its aligned neighbours, and the blur length left in it
        (working pixels, at the working size)."""
        track = self._track
        assert track is not None
        centre = self._frames[c]
        len_c = self._length(c)
        if len(window) == 1:
            return _to_float(centre), len_c
        grey_c = track.grey(c).astype(np.float32) * np.float32(1 / 255)
        noise = flow_noise_level(grey_c)
        images, confs, lengths = [centre], [np.ones_like(len_c)], [len_c]
        for j in window:
            if j == c:
                continue
            flow = track.flow(c, j)
            grey_j, valid = warp(track.grey(j).astype(np.float32) * np.float32(1 / 255), flow)
            len_j, _ = warp(self._length(j), flow, need_valid=False)
            back, _ = warp(track.flow(j, c), flow, need_valid=False)
            gap = np.hypot(*np.moveaxis(flow + back, -1, 0))  # forward-backward disagreement
            reach = 1.0 + 0.05 * np.hypot(*np.moveaxis(flow, -1, 0))
            conf = self._confidence(grey_c, grey_j, valid, len_c, len_j, noise)
            conf *= np.exp(-np.square(gap / reach))
            confs.append(conf)
            lengths.append(len_j)
            images.append(warp(self._frames[j], track.est.to_full(flow), cubic=True,
                               need_valid=False)[0])  # fmt: skip
        conf = np.stack(confs)
        length = np.stack(lengths)
        trusted = np.where(conf > 0.5, length, np.inf)
        best = np.minimum(trusted.min(axis=0), len_c)
        spread = 0.75 + 0.15 * best
        weights = conf * np.exp(-0.5 * np.square((length - best) / spread))
        weights /= weights.sum(axis=0, keepdims=True)
        h, w = centre.shape[:2]
        out = np.zeros(centre.shape, np.float32)
        for image, wt in zip(images, weights, strict=True):
            if wt.shape != (h, w):
                wt = cv2.resize(wt, (w, h), interpolation=cv2.INTER_LINEAR)
            out += image * (wt[..., None] * np.float32(1 / 255))
        residual = (weights * length).sum(axis=0)
        return np.clip(out, 0.0, 1.0), residual

    def _confidence(
        self,
        grey_c: np.ndarray,
        grey_j: np.ndarray,
        valid: np.ndarray,
        len_c: np.ndarray,
        len_j: np.ndarray,
        noise: float,
    ) -> np.ndarray:
        """How much neighbour ``j`` may contribute at each pixel, in [0, 1].

        Two checks. The coarse one: low-passed (so that a blur difference does not count),
        the aligned neighbour must match the frame; otherwise the flow is wrong there. The
        fine one, where the neighbour is not sharper than the frame (so that averaging it in
        could only take noise out): at full detail it must match to within the noise;
        otherwise the residual misalignment would soften the frame more than the averaging
        cleans it (steady motion with clean frames, e.g. GoPro's averaged frames).
        """
        sigma = 1.0 + 0.3 * float(np.median(np.maximum(len_c, len_j)))
        low_c = cv2.GaussianBlur(grey_c, (0, 0), sigma)
        low_j = cv2.GaussianBlur(grey_j, (0, 0), sigma)
        err = cv2.GaussianBlur(np.abs(low_c - low_j), (0, 0), 1.5)
        coarse = np.exp(-np.square(err / self.settings.tolerance))
        fine_err = cv2.GaussianBlur(np.abs(grey_c - grey_j), (0, 0), 1.0)
        fine = np.exp(-np.square(fine_err / (2.5 * noise + 0.004)))
        similar = np.exp(-0.5 * np.square(np.maximum(len_c - len_j, 0.0)))
        return valid * coarse * (1.0 - similar * (1.0 - fine))
