"""Motion from consecutive frames: optical flow, the duty cycle, and each frame's blur field.

The physical model (the same as :func:`unblur.blur.field_frames`): the scene moves by the
optical flow ``F`` per frame interval, and a frame is exposed for the fraction ``duty`` of that
interval, so its blur field is ``duty * v`` where ``v`` is the scene's velocity at the
frame's time in pixels per frame interval. With the flows to both neighbours,
``v_k = (F_{k->k+1} - F_{k->k-1}) / 2`` (the central difference, exact when the motion is a
parabola over the three frames: a camera that brakes and turns back has ``v = 0`` at the turn,
and that frame is sharp).

**The duty cycle** is estimated per clip from the frames themselves, by the commutativity of
blur. Two neighbouring frames ``a = k_a * x`` and ``b = k_b * x`` (``b`` warped onto ``a``)
see the same scene through different blurs ``k_a``, ``k_b`` (a hand-held camera speeds up and
slows down). Blurring ``a`` with ``b``'s kernel and ``b`` with ``a``'s gives the same picture
``k_a * k_b * x``, and only for the true duty cycle: for each candidate ``d``,

``r(d) = mean | field_blur(a, d v_b) - field_blur(b, d v_a) |``

is smallest at the true ``d``. A pair with the same motion in both frames (a steady pan) says
nothing (``r`` is then flat), so only pairs whose velocities differ count; a clip without
any (steady motion throughout) keeps the default duty cycle and says so.

Flow is OpenCV's DIS (Kroeger et al. 2016) on grey frames at a working width, as in
:class:`unblur.train.motion_data.HfrClip`. ``warping_error`` scores temporal consistency:
the mean difference between an output frame and the previous output warped onto it, over
pixels that the flow maps consistently both ways.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import cv2
import numpy as np

from unblur import blur

__all__ = [
    "DEFAULT_DUTY",
    "DUTY_GRID",
    "DutyEstimate",
    "DutyEstimator",
    "FlowEstimator",
    "FlowTrack",
    "compose",
    "estimate_duty",
    "flow_blur_fields",
    "noise_level",
    "resize_flow",
    "velocity",
    "warp",
    "warping_error",
]

DEFAULT_DUTY: float = 0.5
"""Duty cycle assumed when a clip does not reveal its own (steady motion, too few frames)."""

DUTY_GRID: np.ndarray = np.round(np.arange(0.05, 1.5001, 0.05), 2)
"""Candidate duty cycles tried by :class:`DutyEstimator`: beyond 1 too, as a check. A duty
cycle cannot exceed 1, so a residual still falling past 1.1 means something other than the
blur difference dominates it (misalignment the flow could not fix: parallax, large motion
between frames), and the clip's estimate is not trusted."""

PRESETS = {
    "ultrafast": cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST,
    "fast": cv2.DISOPTICAL_FLOW_PRESET_FAST,
    "medium": cv2.DISOPTICAL_FLOW_PRESET_MEDIUM,
}


# --------------------------------------------------------------------------- flow


class FlowEstimator:
    """Dense optical flow between frames of one size, at a working width.

    Args:
        height, width: frame size.
        work_width: frames wider than this are shrunk to it for the flow (faster, and steadier
            on long motions); flows stay in working pixels until :meth:`to_full`.
        preset: DIS preset, ``ultrafast``, ``fast`` or ``medium``.

    Example:
        >>> est = FlowEstimator(48, 64)
        >>> a = np.zeros((48, 64, 3), np.uint8); a[10:30, 10:30] = 255
        >>> b = np.roll(a, 2, axis=1)
        >>> est.flow(est.grey(a), est.grey(b)).shape
        (48, 64, 2)
    """

    def __init__(
        self, height: int, width: int, *, work_width: int = 640, preset: str = "fast"
    ) -> None:
        if preset not in PRESETS:
            raise ValueError(f"unknown DIS preset {preset!r}; choose from {', '.join(PRESETS)}")
        self.height, self.width = height, width
        self.scale = min(1.0, work_width / width) if work_width > 0 else 1.0
        self.small = (max(8, round(width * self.scale)), max(8, round(height * self.scale)))
        self._dis = cv2.DISOpticalFlow_create(PRESETS[preset])

    def grey(self, frame: np.ndarray) -> np.ndarray:
        """uint8 grey frame at the working size (from uint8 or float [0, 1] RGB)."""
        if frame.dtype != np.uint8:
            frame = np.rint(np.clip(frame, 0.0, 1.0) * 255.0).astype(np.uint8)
        grey = cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY) if frame.ndim == 3 else frame
        if (grey.shape[1], grey.shape[0]) != self.small:
            grey = cv2.resize(grey, self.small, interpolation=cv2.INTER_AREA)
        return grey

    def flow(self, grey0: np.ndarray, grey1: np.ndarray) -> np.ndarray:
        """Flow ``F`` with ``grey0(p) ~ grey1(p + F(p))``, float32 ``(h, w, 2)``, working pixels."""
        return self._dis.calc(grey0, grey1, None).astype(np.float32, copy=False)

    def to_full(self, flow: np.ndarray) -> np.ndarray:
        """A working-size flow (or any ``(h, w, 2)`` field) at the frame's size and scale."""
        return resize_flow(flow, self.height, self.width)


def resize_flow(flow: np.ndarray, height: int, width: int) -> np.ndarray:
    """Resize a flow field and scale its vectors with it (x and y separately)."""
    h, w = flow.shape[:2]
    if (h, w) == (height, width):
        return flow
    out = cv2.resize(flow, (width, height), interpolation=cv2.INTER_LINEAR)
    out[..., 0] *= width / w
    out[..., 1] *= height / h
    return out


def _grid(height: int, width: int) -> np.ndarray:
    grid = np.empty((height, width, 2), np.float32)
    grid[..., 0] = np.arange(width, dtype=np.float32)[None, :]
    grid[..., 1] = np.arange(height, dtype=np.float32)[:, None]
    return grid


_GRIDS: dict[tuple[int, int], np.ndarray] = {}


def _cached_grid(height: int, width: int) -> np.ndarray:
    key = (height, width)
    if key not in _GRIDS:
        if len(_GRIDS) > 8:
            _GRIDS.clear()
        _GRIDS[key] = _grid(height, width)
    return _GRIDS[key]


def warp(
    image: np.ndarray, flow: np.ndarray, *, cubic: bool = False, need_valid: bool = True
) -> tuple[np.ndarray, np.ndarray | None]:
    """Sample ``image`` at ``p + flow(p)``: the image brought onto the flow's reference frame.

    Args:
        image: ``(H, W)`` or ``(H, W, C)`` array, the flow's size.
        flow: float32 ``(H, W, 2)``.
        cubic: bicubic instead of bilinear interpolation (keeps more detail).

        need_valid: compute the mask (else ``None`` is returned for it).

    Returns:
        ``(warped, valid)``: the warped image (borders replicated) and a float32 ``(H, W)``
        mask, 1 where ``p + flow(p)`` lies inside the image.
    """
    h, w = flow.shape[:2]
    coords = _cached_grid(h, w) + flow
    mode = cv2.INTER_CUBIC if cubic else cv2.INTER_LINEAR
    if image.ndim == 3 and image.shape[2] > 4:
        warped = np.stack(
            [cv2.remap(image[..., c], coords, None, mode, borderMode=cv2.BORDER_REPLICATE)
             for c in range(image.shape[2])],
            axis=2,
        )  # fmt: skip
    else:
        warped = cv2.remap(image, coords, None, mode, borderMode=cv2.BORDER_REPLICATE)
        if image.ndim == 3 and warped.ndim == 2:
            warped = warped[..., None]
    if not need_valid:
        return warped, None
    x, y = coords[..., 0], coords[..., 1]
    valid = ((x >= 0) & (x <= w - 1) & (y >= 0) & (y <= h - 1)).astype(np.float32)
    return warped, valid


def compose(flow_ab: np.ndarray, flow_bc: np.ndarray) -> np.ndarray:
    """The flow ``a -> c`` from ``a -> b`` and ``b -> c``: ``F_ab(p) + F_bc(p + F_ab(p))``."""
    moved, _ = warp(flow_bc, flow_ab, need_valid=False)
    return flow_ab + moved


def velocity(
    forward: np.ndarray | None,
    backward: np.ndarray | None,
    forward2: np.ndarray | None = None,
    backward2: np.ndarray | None = None,
) -> np.ndarray:
    """Scene velocity at a frame, in pixels per frame interval, from its flows to the frames
    1 (``forward``, ``backward``) and 2 (``forward2``, ``backward2``) after and before it.

    With all four: the five-point derivative ``(8 (F+1 - F-1) - (F+2 - F-2)) / 12``, exact
    for motion that is a polynomial of degree 4 or less over the five frames (a hand-held
    camera's velocity turns within a few frames; the three-point central difference
    ``(F+1 - F-1) / 2`` flattens those turns and so underestimates how much the blur
    changes between frames). With the two nearest: the central difference; with one: it.
    """
    if forward is not None and backward is not None:
        if forward2 is not None and backward2 is not None:
            return (8.0 * (forward - backward) - (forward2 - backward2)) / 12.0
        return 0.5 * (forward - backward)
    if forward is not None:
        return forward
    if backward is not None:
        return -backward
    raise ValueError("velocity needs at least one of the flows to the neighbours")


class FlowTrack:
    """A sliding window of frames (their working-size greys) and the flows between them.

    Frames are pushed in order and addressed by their index in the stream; both flows
    between consecutive frames are computed once, and longer ones are composed from them.

    Args:
        estimator: the :class:`FlowEstimator` for the frames' size.
    """

    def __init__(self, estimator: FlowEstimator) -> None:
        self.est = estimator
        self.first = 0  # stream index of greys[0]
        self.greys: list[np.ndarray] = []
        self.fwd: list[np.ndarray] = []  # fwd[i]: frame first+i -> first+i+1
        self.bwd: list[np.ndarray] = []  # bwd[i]: frame first+i+1 -> first+i
        self._composed: dict[tuple[int, int], np.ndarray] = {}

    @property
    def end(self) -> int:
        """One past the index of the last frame pushed."""
        return self.first + len(self.greys)

    def push(self, frame: np.ndarray) -> int:
        """Add the next frame (RGB); returns its index."""
        grey = self.est.grey(frame)
        if self.greys:
            self.fwd.append(self.est.flow(self.greys[-1], grey))
            self.bwd.append(self.est.flow(grey, self.greys[-1]))
        self.greys.append(grey)
        return self.end - 1

    def grey(self, i: int) -> np.ndarray:
        return self.greys[i - self.first]

    def flow(self, i: int, j: int) -> np.ndarray:
        """The flow from frame ``i`` to frame ``j`` (both in the window), working pixels."""
        if i == j:
            return np.zeros((*self.greys[0].shape, 2), np.float32)
        if abs(i - j) == 1:
            return self.fwd[i - self.first] if j > i else self.bwd[j - self.first]
        key = (i, j)
        if key not in self._composed:
            step = 1 if j > i else -1
            self._composed[key] = compose(self.flow(i, j - step), self.flow(j - step, j))
        return self._composed[key]

    def has(self, i: int) -> bool:
        return self.first <= i < self.end

    def velocity(self, i: int, *, final: bool = False) -> np.ndarray | None:
        """Velocity of frame ``i`` (working pixels per frame interval), or ``None`` while its
        later neighbours are still to come (``final``: the stream has ended, use what there
        is)."""
        if not final and not self.has(i + 2):
            return None
        near = [self.flow(i, i + o) if self.has(i + o) else None for o in (1, -1, 2, -2)]
        if near[0] is None and near[1] is None:
            return np.zeros((*self.greys[0].shape, 2), np.float32)
        return velocity(*near)

    def drop_before(self, i: int) -> None:
        """Forget frames before index ``i``."""
        n = max(0, min(i - self.first, len(self.greys)))
        if n:
            del self.greys[:n]
            del self.fwd[:n]
            del self.bwd[:n]
            self.first += n
            self._composed = {k: v for k, v in self._composed.items() if min(k) >= self.first}


# --------------------------------------------------------------------------- duty cycle


@dataclass(frozen=True)
class DutyEstimate:
    """A clip's duty cycle (exposure time over frame interval) and the evidence for it.

    Attributes:
        duty: the estimate in ``(0, 1]``; :data:`DEFAULT_DUTY` when not identifiable.
        pairs: frame pairs whose motion differed enough to count.
        identifiable: whether there was evidence (else ``duty`` is the default).
        curve: mean cross-blur residual per candidate of :data:`DUTY_GRID` (empty if none).
    """

    duty: float
    pairs: int
    identifiable: bool
    curve: tuple[float, ...] = ()

    def describe(self) -> str:
        if not self.identifiable and self.pairs >= 3:
            return (
                f"duty cycle {self.duty:.2f} assumed (the frames did not agree on one: "
                "misalignment between them dominates)"
            )
        if not self.identifiable:
            return (
                f"duty cycle {self.duty:.2f} assumed (too few frames, or the motion never "
                "changes enough between frames to measure it)"
            )
        return f"duty cycle {self.duty:.2f} estimated from {self.pairs} frame pairs"


class DutyEstimator:
    """Accumulates the cross-blur residual curve over frame pairs (module docstring).

    Args:
        min_difference: least mean difference between the two frames' blur-relevant motion
            (in working pixels per frame interval) for a pair to count.
        min_pairs: pairs needed before the estimate is trusted.
        grid: candidate duty cycles.
    """

    def __init__(
        self,
        *,
        min_difference: float = 1.0,
        min_pairs: int = 3,
        grid: np.ndarray = DUTY_GRID,
    ) -> None:
        self.grid = np.asarray(grid, np.float64)
        self.min_difference = min_difference
        self.min_pairs = min_pairs
        self.total = np.zeros(len(self.grid))
        self.pairs = 0

    def add(
        self,
        a: np.ndarray,
        b: np.ndarray,
        velocity_a: np.ndarray,
        velocity_b: np.ndarray,
        flow_ab: np.ndarray,
    ) -> bool:
        """Add the pair ``(a, b)``: grey float images (linear light) at one size, their
        velocity fields and the flow ``a -> b``, all in the same pixels. Returns whether the
        pair counted."""
        wb, valid = warp(b, flow_ab, cubic=True)
        vb, _ = warp(velocity_b, flow_ab, need_valid=False)
        diff = np.hypot(*np.moveaxis(velocity_a - vb, -1, 0))
        # keep pixels away from the borders and where the warp lands inside
        reach = int(np.ceil(np.abs(velocity_a).max() + np.abs(vb).max())) + 2
        mask = valid > 0
        mask[:reach], mask[-reach:], mask[:, :reach], mask[:, -reach:] = False, False, False, False
        if mask.sum() < 64 or float(diff[mask].mean()) < self.min_difference:
            return False
        # photometric check on low-passed frames: occlusions and flow failures out
        sigma = 1.0 + 0.5 * float(max(np.abs(velocity_a).max(), np.abs(vb).max()))
        lo_a = cv2.GaussianBlur(a, (0, 0), sigma)
        lo_b = cv2.GaussianBlur(wb, (0, 0), sigma)
        err = np.abs(lo_a - lo_b)
        mask &= err < max(0.02, 3 * float(np.median(err[mask])))
        if mask.sum() < 64:
            return False
        # the residual's noise part shrinks as d grows (blur averages noise away), which would
        # pull the estimate up: subtract it, measured on white noise of each frame's level
        rng = np.random.default_rng(self.pairs)
        noise_a = rng.standard_normal(a.shape).astype(np.float32) * np.float32(noise_level(a))
        noise_b = rng.standard_normal(a.shape).astype(np.float32) * np.float32(noise_level(b))
        curve = np.empty(len(self.grid))
        for i, d in enumerate(self.grid):
            fa, fb = velocity_a * np.float32(d), vb * np.float32(d)
            resid = blur.field_blur(a, fb) - blur.field_blur(wb, fa)
            noise = blur.field_blur(noise_a, fb) - blur.field_blur(noise_b, fa)
            curve[i] = float(np.mean(resid[mask] ** 2) - np.mean(noise[mask] ** 2))
        # each pair counts alike: its curve relative to its own range
        span = curve.max() - curve.min()
        if span <= 0:
            return False
        self.total += (curve - curve.min()) / span
        self.pairs += 1
        return True

    @property
    def ready(self) -> bool:
        return self.pairs >= self.min_pairs

    def estimate(self) -> DutyEstimate:
        """The current estimate (the default until ``min_pairs`` pairs counted)."""
        if not self.pairs:
            return DutyEstimate(DEFAULT_DUTY, 0, False)
        curve = self.total / self.pairs
        i = int(np.argmin(curve))
        duty = float(self.grid[i])
        # parabolic refinement between grid points
        if 0 < i < len(curve) - 1:
            c0, c1, c2 = curve[i - 1], curve[i], curve[i + 1]
            denom = c0 - 2 * c1 + c2
            if denom > 0:
                step = float(self.grid[1] - self.grid[0])
                duty += float(np.clip(0.5 * (c0 - c2) / denom, -0.5, 0.5)) * step
        if not self.ready or duty > 1.1:
            return DutyEstimate(DEFAULT_DUTY, self.pairs, False, tuple(curve))
        duty = float(np.clip(duty, self.grid[0], 1.0))
        return DutyEstimate(round(duty, 3), self.pairs, True, tuple(curve))


def noise_level(image: np.ndarray) -> float:
    """Standard deviation of white noise in a grey image: the median absolute response to
    Immerkaer's (1996) Laplacian difference kernel, which cancels smooth content (the median,
    not his mean, so that edges and texture count less)."""
    kernel = np.array([[1, -2, 1], [-2, 4, -2], [1, -2, 1]], np.float32)
    response = cv2.filter2D(image.astype(np.float32), -1, kernel)[1:-1, 1:-1]
    return float(np.median(np.abs(response)) / (0.6745 * 6.0))


def estimate_duty(
    frames: Iterable[np.ndarray],
    *,
    max_frames: int = 24,
    work_width: int = 320,
    preset: str = "medium",
    enough: int = 8,
) -> DutyEstimate:
    """Estimate a clip's duty cycle from its first ``max_frames`` frames (module docstring).

    Args:
        frames: RGB frames (uint8, or float in [0, 1] sRGB), all one size.
        max_frames: frames looked at at most.
        work_width: width the frames are shrunk to for the test.
        preset: DIS preset for the flows.
        enough: stop once this many frame pairs counted.

    Returns:
        A :class:`DutyEstimate`.
    """
    track: FlowTrack | None = None
    duty = DutyEstimator()
    for count, frame in enumerate(frames):
        if count >= max_frames:
            break
        if track is None:
            track = FlowTrack(
                FlowEstimator(frame.shape[0], frame.shape[1], work_width=work_width, preset=preset)
            )
        track.push(frame)
        k = track.end - 4  # pair (k, k + 1): k + 1 has both its later neighbours now
        if k >= 0:
            _add_pair(duty, track, k)
            track.drop_before(k - 1)
            if duty.pairs >= enough:
                break
    return duty.estimate()


def _add_pair(duty: DutyEstimator, track: FlowTrack, k: int) -> bool:
    va, vb = track.velocity(k, final=True), track.velocity(k + 1)
    if va is None or vb is None:
        return False
    lin = [blur._srgb_to_linear(track.grey(i).astype(np.float32) / 255.0) for i in (k, k + 1)]
    return duty.add(lin[0], lin[1], va, vb, track.flow(k, k + 1))


def flow_blur_fields(
    frames: Iterable[np.ndarray],
    *,
    duty: float,
    work_width: int = 640,
    preset: str = "medium",
) -> Iterator[np.ndarray]:
    """Blur field of every frame from the optical flow: ``duty * v_k`` at the frame's size.

    Streams: holds five frames' greys and their flows at a time (each frame's velocity
    waits for the two frames after it). The fields are in the convention of
    :mod:`unblur.motion.field` (full displacement over the exposure).

    Args:
        frames: RGB frames, all one size.
        duty: the exposure's share of the frame interval.
        work_width: width of the flow computation.
        preset: DIS preset.

    Yields:
        float32 ``(H, W, 2)`` fields, one per frame, in order.
    """
    track: FlowTrack | None = None
    done = 0
    for frame in frames:
        if track is None:
            est = FlowEstimator(
                frame.shape[0], frame.shape[1], work_width=work_width, preset=preset
            )
            track = FlowTrack(est)
        track.push(frame)
        while (v := track.velocity(done)) is not None:
            yield track.est.to_full(v) * np.float32(duty)
            done += 1
            track.drop_before(done - 2)
    while track is not None and done < track.end:
        v = track.velocity(done, final=True)
        assert v is not None
        yield track.est.to_full(v) * np.float32(duty)
        done += 1


# --------------------------------------------------------------------------- consistency


def warping_error(
    outputs: Iterable[np.ndarray],
    references: Iterable[np.ndarray] | None = None,
    *,
    work_width: int = 640,
) -> float:
    """Temporal consistency: mean ``|O_k - warp(O_{k-1})|`` over consistently-flowing pixels.

    The flow between consecutive frames comes from ``references`` (e.g. the sharp ground
    truth, so that every method is judged by the same motion) or else from the outputs;
    pixels where the forward and backward flows disagree by more than 0.5 px + 5 % (occlusions)
    or that leave the frame are left out (Lai et al. 2018, "Learning blind video temporal
    consistency").

    Args:
        outputs: float RGB frames in [0, 1].
        references: frames the flow is taken from, aligned with ``outputs``.
        work_width: flow working width.

    Returns:
        The mean absolute difference in [0, 1] units (lower is steadier).
    """
    refs = itertools.repeat(None) if references is None else references
    est: FlowEstimator | None = None
    prev = prev_grey = None
    total, count = 0.0, 0
    for out, ref in zip(outputs, refs, strict=False):
        out = np.asarray(out, np.float32)
        if est is None:
            est = FlowEstimator(out.shape[0], out.shape[1], work_width=work_width, preset="medium")
        grey = est.grey(out if ref is None else np.asarray(ref))
        if prev is not None:
            fwd = est.to_full(est.flow(grey, prev_grey))  # current -> previous
            bwd = est.to_full(est.flow(prev_grey, grey))
            back, _ = warp(bwd, fwd, need_valid=False)
            gap = np.hypot(*np.moveaxis(fwd + back, -1, 0))
            mag = np.hypot(*np.moveaxis(fwd, -1, 0))
            warped, valid = warp(prev, fwd)
            mask = (valid > 0) & (gap < 0.5 + 0.05 * mag)
            if mask.any():
                total += float(np.abs(out - warped)[mask].mean())
                count += 1
        prev, prev_grey = out, grey
    return total / count if count else 0.0
