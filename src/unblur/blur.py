"""The blur forward model: kernels, spatially varying motion blur, frame averaging, noise.

Everything here *makes* blur; :mod:`unblur.restoration.deconv` and the networks undo it. The
model is

.. math::

    y = \\operatorname{clip}\\big(\\mathcal{N}(B(x))\\big), \\qquad
    B(x) = k * x \\;\\text{(uniform blur)} \\quad\\text{or}\\quad
    B(x)(p) = \\int_{-1/2}^{1/2} x(p + t\\,v(p))\\,dt \\;\\text{(motion field)},

with ``x`` the sharp image in *linear light*, ``k`` a kernel, ``v`` a motion field,
``*`` true convolution and :math:`\\mathcal{N}` Poisson-Gaussian sensor noise. Pixels are
then re-encoded to sRGB and optionally JPEG-compressed (:func:`degrade` runs the whole chain).

Conventions (shared by the whole package):

* Images are float32 arrays ``(H, W)`` or ``(H, W, C)`` with values in ``[0, 1]``. Functions
  that model physics take and return **linear-light** images unless their docstring says sRGB.
* Kernels are float32 ``(k, k)`` with odd ``k``, non-negative, summing to 1, centred at
  ``(k // 2, k // 2)``. Blurring is true convolution,
  ``blur_image(x, k) == scipy.ndimage.convolve(x, k, mode="reflect")``.
* Coordinates are ``x`` to the right and ``y`` down (array order is ``(y, x)``). Angles are in
  degrees, counter-clockwise from ``+x`` as seen on screen (``y`` pointing up), so 90 degrees is
  a vertical streak.
* A motion field is float32 ``(H, W, 2)`` holding ``(dx, dy)`` in pixels: the full
  displacement, during the exposure, of the scene point seen at that pixel, centred on
  mid-exposure (the point moves from ``p - v/2`` to ``p + v/2``). Because the exposure is a
  time *average*, ``v`` and ``-v`` give exactly the same blur: the sign of a motion field
  cannot be recovered from a single blurred image and metrics should compare fields up to sign.
* Every random function takes a keyword-only ``rng`` (a :class:`numpy.random.Generator`, an
  integer seed, or ``None`` for fresh entropy) and never touches global random state.

References:
    G. Boracchi and A. Foi, "Modeling the performance of image restoration from motion blur",
    IEEE Trans. Image Processing 21(8), 2012 (camera-shake trajectories, :func:`shake_kernel`).

    S. Nah, T. H. Kim and K. M. Lee, "Deep multi-scale convolutional neural network for dynamic
    scene deblurring", CVPR 2017 (GoPro frame averaging, :func:`average_frames`).
"""

from __future__ import annotations

import dataclasses
import io
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import cv2
import numpy as np
from PIL import Image

__all__ = [
    "DegradationConfig",
    "MotionSample",
    "ShakeKernel",
    "add_noise",
    "average_frames",
    "average_window",
    "blur_image",
    "boost_highlights",
    "constant_field",
    "degrade",
    "field_blur",
    "field_frames",
    "frame_pairs",
    "jpeg_compress",
    "linear_kernel",
    "random_field",
    "saturate",
    "shake_kernel",
]

_SHAKE_REFERENCE_SAMPLES = 2000  # Boracchi & Foi's trajectory resolution

RngLike = np.random.Generator | int | None
"""A generator, an integer seed, or ``None`` for fresh OS entropy."""

BlurKind = Literal["linear", "shake", "field"]
Gamma = Literal["srgb"] | float | None

# np.pad modes that reproduce scipy.ndimage boundary modes.
_PAD_MODES: dict[str, str] = {
    "reflect": "symmetric",  # d c b a | a b c d | d c b a
    "mirror": "reflect",  # d c b | a b c d | c b a
    "nearest": "edge",  # a a a | a b c d | d d d
    "constant": "constant",  # 0 0 0 | a b c d | 0 0 0
    "wrap": "wrap",  # a b c d | a b c d | a b c d
}


# --------------------------------------------------------------------------------------------
# small helpers
# --------------------------------------------------------------------------------------------


def _as_rng(rng: RngLike) -> np.random.Generator:
    """Turn a generator, seed or ``None`` into a generator (a generator is used as is)."""
    if isinstance(rng, np.random.Generator):
        return rng
    if rng is None or (isinstance(rng, int | np.integer) and not isinstance(rng, bool)):
        return np.random.default_rng(rng)
    raise TypeError(f"rng must be a numpy Generator, an int seed or None, got {rng!r}")


def _check_image(image: np.ndarray, name: str = "image") -> np.ndarray:
    """Validate an ``(H, W)`` / ``(H, W, C)`` floating image and return it as float32."""
    if not isinstance(image, np.ndarray):
        raise ValueError(f"{name} must be a numpy array, got {type(image).__name__}")
    if image.ndim not in (2, 3) or image.shape[0] < 1 or image.shape[1] < 1:
        raise ValueError(f"{name} must have shape (H, W) or (H, W, C), got {image.shape}")
    if image.ndim == 3 and image.shape[2] < 1:
        raise ValueError(f"{name} has no channels: shape {image.shape}")
    if not np.issubdtype(image.dtype, np.floating):
        raise ValueError(
            f"{name} must be a floating-point array in [0, 1], got dtype {image.dtype} "
            "(convert integers with image.astype(np.float32) / 255)"
        )
    return np.asarray(image, dtype=np.float32)


def _check_kernel(kernel: np.ndarray) -> np.ndarray:
    """Validate a 2-D kernel with odd sides and finite values; return it as float32."""
    if not isinstance(kernel, np.ndarray) or kernel.ndim != 2:
        shape = getattr(kernel, "shape", type(kernel).__name__)
        raise ValueError(f"kernel must be a 2-D array, got {shape}")
    if kernel.shape[0] % 2 == 0 or kernel.shape[1] % 2 == 0:
        raise ValueError(f"kernel sides must be odd, got shape {kernel.shape}")
    if not np.all(np.isfinite(kernel)):
        raise ValueError("kernel contains NaN or infinite values")
    return np.asarray(kernel, dtype=np.float32)


def _check_odd_size(size: int, name: str = "size", minimum: int = 1) -> int:
    if isinstance(size, bool) or not isinstance(size, int | np.integer):
        raise ValueError(f"{name} must be an odd integer, got {size!r}")
    if size < minimum or size % 2 == 0:
        raise ValueError(f"{name} must be an odd integer >= {minimum}, got {size}")
    return int(size)


def _check_range(value: Sequence[float], name: str, low: float = 0.0) -> tuple[float, float]:
    """Validate a ``(lo, hi)`` pair with ``low <= lo <= hi`` (both finite)."""
    try:
        lo, hi = (float(v) for v in value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a (low, high) pair of numbers, got {value!r}") from None
    if not (math.isfinite(lo) and math.isfinite(hi)) or lo < low or hi < lo:
        raise ValueError(f"{name} must satisfy {low} <= low <= high, got {value!r}")
    return lo, hi


def _srgb_to_linear(image: np.ndarray) -> np.ndarray:
    """Decode sRGB values to linear light with the exact IEC 61966-2-1 curve (float32)."""
    x = np.asarray(image, dtype=np.float32)
    low = x / np.float32(12.92)
    high = ((np.maximum(x, 0.04045) + np.float32(0.055)) / np.float32(1.055)) ** np.float32(2.4)
    return np.where(x <= 0.04045, low, high).astype(np.float32, copy=False)


def _linear_to_srgb(image: np.ndarray) -> np.ndarray:
    """Encode linear light to sRGB with the exact IEC 61966-2-1 curve (float32)."""
    x = np.asarray(image, dtype=np.float32)
    low = x * np.float32(12.92)
    high = np.float32(1.055) * np.maximum(x, 0.0031308) ** np.float32(1 / 2.4) - np.float32(0.055)
    return np.where(x <= 0.0031308, low, high).astype(np.float32, copy=False)


def _linearise(image: np.ndarray, gamma: Gamma) -> np.ndarray:
    if gamma is None:
        return image
    if gamma == "srgb":
        return _srgb_to_linear(image)
    return np.power(np.maximum(image, 0.0), np.float32(gamma), dtype=np.float32)


def _delinearise(image: np.ndarray, gamma: Gamma) -> np.ndarray:
    if gamma is None:
        return image
    if gamma == "srgb":
        return _linear_to_srgb(image)
    return np.power(np.maximum(image, 0.0), np.float32(1.0 / gamma), dtype=np.float32)


def _check_gamma(gamma: Gamma) -> Gamma:
    if gamma is None or gamma == "srgb":
        return gamma
    if isinstance(gamma, bool) or not isinstance(gamma, int | float):
        raise ValueError(f"gamma must be 'srgb', a positive number or None, got {gamma!r}")
    if not (math.isfinite(gamma) and gamma > 0):
        raise ValueError(f"gamma must be 'srgb', a positive number or None, got {gamma!r}")
    return float(gamma)


def _splat(points: np.ndarray, size: int) -> np.ndarray:
    """Bilinearly splat equally weighted ``(x, y)`` offsets into a ``size x size`` grid.

    Offsets are relative to the centre pixel ``(size // 2, size // 2)``. Bilinear splatting
    preserves the centre of mass exactly: the grid's centroid equals the points' mean.
    Returns float64 weights summing to 1.
    """
    half = size // 2
    pts = np.clip(np.asarray(points, dtype=np.float64), -half, half) + half
    x0 = np.minimum(np.floor(pts[:, 0]), size - 1)
    y0 = np.minimum(np.floor(pts[:, 1]), size - 1)
    fx = pts[:, 0] - x0
    fy = pts[:, 1] - y0
    x0i = x0.astype(np.intp)
    y0i = y0.astype(np.intp)
    x1i = np.minimum(x0i + 1, size - 1)  # only ever clipped where its weight fx is 0
    y1i = np.minimum(y0i + 1, size - 1)
    index = np.concatenate([y0i * size + x0i, y0i * size + x1i, y1i * size + x0i, y1i * size + x1i])
    weight = np.concatenate([(1 - fx) * (1 - fy), fx * (1 - fy), (1 - fx) * fy, fx * fy])
    grid = np.bincount(index, weights=weight, minlength=size * size).reshape(size, size)
    return grid / grid.sum()


# --------------------------------------------------------------------------------------------
# kernels
# --------------------------------------------------------------------------------------------


def linear_kernel(
    length: float, angle: float, *, size: int | None = None, supersample: int = 8
) -> np.ndarray:
    """Uniform linear motion-blur kernel (a line segment), anti-aliased.

    The kernel is the normalised image of a segment of ``length`` pixels through the kernel
    centre at ``angle``: ``ceil(length * supersample)`` equally spaced points (midpoint rule over
    the segment, symmetric about the centre) are bilinearly splatted, so the kernel varies
    smoothly with fractional lengths and angles. Its centre of mass is exactly the centre pixel
    and its second moment along the streak is ``length**2 / 12`` plus the splat's own spread.
    Because of that bilinear footprint a streak of length ``L`` covers about ``L + 1`` pixels
    (length 2 gives ``[1/4, 1/2, 1/4]``), exactly what bilinear sampling along a motion vector
    produces: blurring with this kernel equals :func:`field_blur` with the constant field from
    :func:`constant_field` (same ``length`` and ``angle``).

    Args:
        length: Segment length in pixels, ``>= 0``. Lengths below one pixel give a
            (nearly) delta kernel; ``0`` gives an exact delta.
        angle: Direction in degrees, counter-clockwise from ``+x`` with ``y`` pointing up on
            screen (0 = horizontal streak, 90 = vertical streak). Only ``angle mod 180``
            matters.
        size: Odd side of the kernel. ``None`` picks the smallest odd size holding the
            segment; a given size must be at least that.
        supersample: Points per pixel of length (``>= 1``).

    Returns:
        float32 ``(size, size)`` kernel, non-negative, summing to 1.

    Raises:
        ValueError: ``length`` negative or not finite, ``size`` even or too small,
            ``supersample < 1``.

    Example:
        >>> k = linear_kernel(2, 0)
        >>> k.shape, float(k.sum())
        ((3, 3), 1.0)
        >>> k[1].tolist()
        [0.25, 0.5, 0.25]
        >>> linear_kernel(4, 90)[:, 2].round(3).tolist()
        [0.125, 0.25, 0.25, 0.25, 0.125]
    """
    if not math.isfinite(length) or length < 0:
        raise ValueError(f"length must be a finite number >= 0, got {length!r}")
    if not math.isfinite(angle):
        raise ValueError(f"angle must be finite, got {angle!r}")
    if isinstance(supersample, bool) or not isinstance(supersample, int) or supersample < 1:
        raise ValueError(f"supersample must be an integer >= 1, got {supersample!r}")
    n = max(1, math.ceil(length * supersample))
    t = (np.arange(n, dtype=np.float64) + 0.5) / n - 0.5
    theta = math.radians(angle)
    direction = np.array([math.cos(theta), -math.sin(theta)])  # screen y up -> array y down
    points = (t * length)[:, None] * direction[None, :]
    half = max(0, math.ceil(float(np.abs(points).max()) - 1e-6))
    needed = 2 * half + 1
    if size is None:
        size = needed
    else:
        size = _check_odd_size(size)
        if size < needed:
            raise ValueError(
                f"size {size} is too small for a length-{length} kernel at {angle} degrees "
                f"(needs at least {needed})"
            )
    return _splat(points, size).astype(np.float32)


@dataclass(frozen=True)
class ShakeKernel:
    """A camera-shake kernel and the trajectory it was drawn from.

    Attributes:
        kernel: float32 ``(size, size)`` kernel, non-negative, summing to 1, centre of mass at
            the centre pixel.
        trajectory: float32 ``(N, 2)`` image-plane positions ``(x, y)`` in pixels (y down),
            equally spaced in time over the exposure, relative to the kernel centre, with mean
            zero. The kernel is exactly the bilinear splat of these points.
        anxiety: Random-walk perturbation strength used (Boracchi & Foi's "anxiety").
        jerk_prob: Jerk probability parameter used (per-step probability is
            ``jerk_prob * anxiety``).
        length: Path length of ``trajectory`` in pixels (after any shrinking to fit).
        exposure: Fraction of the simulated trajectory that was used.
    """

    kernel: np.ndarray
    trajectory: np.ndarray
    anxiety: float
    jerk_prob: float
    length: float
    exposure: float


def shake_kernel(
    *,
    size: int = 31,
    rng: RngLike = None,
    anxiety: float | None = None,
    jerk_prob: float | None = None,
    length: float | None = None,
    exposure: float = 1.0,
    samples: int = 2000,
) -> ShakeKernel:
    """Random camera-shake kernel from a random-walk trajectory (Boracchi & Foi 2012).

    The trajectory ``x_t`` (complex, pixels) follows the model of Boracchi & Foi (2012): a
    velocity ``v_t`` of constant speed ``step = length / (samples - 1)`` updated each step by

    ``dv = jerk + anxiety * (g * (n_x + i n_y) - c * x_t) * step``,

    with Gaussian ``n``, a random gain ``g ~ U(0, 10)``, a centripetal pull ``c ~ U(0, 0.7)``
    back towards the start (inertia that keeps the path compact), and, with probability
    ``jerk_prob * anxiety`` per step, an impulsive jerk ``2 v exp(i (pi + U(-1/2, 1/2)))``
    that roughly reverses the motion. These per-step constants are those of the reference
    2000-sample path; other ``samples`` values rescale them (noise by ``sqrt``, pull and jerk
    rate linearly) so that ``samples`` only changes the time resolution. The first
    ``exposure`` fraction of the path is kept (partial exposure), shifted so its mean is at the
    kernel centre, shrunk uniformly if it does not fit the support, and bilinearly splatted,
    so the kernel's centre of mass is exactly the centre pixel.

    Args:
        size: Odd kernel side, ``>= 3``.
        rng: Generator or seed.
        anxiety: Perturbation strength in ``[0, 1]``; ``None`` draws ``U(0, 0.01)`` (around the
            value 0.005 recommended with the reference code; at 0.1 paths curl into small
            knots). ``0`` gives a straight line.
        jerk_prob: Jerk probability parameter in ``[0, 1]``; ``None`` draws ``U(0, 0.2)``.
        length: Path length in pixels over the full exposure (``> 0``); ``None`` draws
            ``U(1, 2) * (size - 1)``. The curling path usually spans much less than its
            length; shrinking to fit can shorten it, and the actual value is returned.
        exposure: Fraction of the trajectory kept, in ``(0, 1]``.
        samples: Trajectory samples over the full exposure, ``>= 2``.

    Returns:
        A :class:`ShakeKernel`. The hyper-parameters are always drawn in the same order, so
        fixing one of them (e.g. ``length``) keeps the rest of the draw unchanged for a seed.

    Raises:
        ValueError: for any out-of-range argument (the value is named).
    """
    size = _check_odd_size(size, minimum=3)
    if isinstance(samples, bool) or not isinstance(samples, int) or samples < 2:
        raise ValueError(f"samples must be an integer >= 2, got {samples!r}")
    if not (math.isfinite(exposure) and 0 < exposure <= 1):
        raise ValueError(f"exposure must be in (0, 1], got {exposure!r}")
    if anxiety is not None and not (math.isfinite(anxiety) and 0 <= anxiety <= 1):
        raise ValueError(f"anxiety must be in [0, 1], got {anxiety!r}")
    if jerk_prob is not None and not (math.isfinite(jerk_prob) and 0 <= jerk_prob <= 1):
        raise ValueError(f"jerk_prob must be in [0, 1], got {jerk_prob!r}")
    if length is not None and not (math.isfinite(length) and length > 0):
        raise ValueError(f"length must be a finite number > 0, got {length!r}")

    gen = _as_rng(rng)
    draws = gen.random(7)
    anxiety = float(0.01 * draws[0]) if anxiety is None else float(anxiety)
    jerk_prob = float(0.2 * draws[1]) if jerk_prob is None else float(jerk_prob)
    length = float((1.0 + draws[2]) * (size - 1)) if length is None else float(length)
    centripetal = 0.7 * float(draws[3])
    gain = 10.0 * float(draws[4])
    start_angle = 2 * math.pi * float(draws[5])

    steps = samples - 1
    step = length / steps
    # Boracchi & Foi's constants are per step of a 2000-sample path; rescale them so that
    # `samples` only refines the time discretisation of the same process.
    ratio = (_SHAKE_REFERENCE_SAMPLES - 1) / steps
    jerks = (gen.random(steps) < min(1.0, jerk_prob * anxiety * ratio)).tolist()
    jerk_turn = (math.pi + gen.random(steps) - 0.5).tolist()
    noise = gen.standard_normal((steps, 2))
    kick_scale = anxiety * gain * step * math.sqrt(ratio)
    kick = (kick_scale * (noise[:, 0] + 1j * noise[:, 1])).tolist()
    pull = anxiety * centripetal * step * ratio

    # Inherently sequential (velocity depends on position); plain complex scalars keep it fast.
    path = [0j] * samples
    pos = 0j
    vel = complex(math.cos(start_angle), math.sin(start_angle)) * step
    for i in range(steps):
        dv = kick[i] - pull * pos
        if jerks[i]:
            dv += 2 * vel * complex(math.cos(jerk_turn[i]), math.sin(jerk_turn[i]))
        new = vel + dv
        speed = abs(new)
        vel = new * (step / speed) if speed > 0 else vel
        pos = pos + vel
        path[i + 1] = pos

    used = max(1, round(exposure * samples))
    traj = np.array(path[:used], dtype=np.complex128)
    traj -= traj.mean()
    extent = float(max(np.abs(traj.real).max(), np.abs(traj.imag).max()))
    half = size // 2
    if extent > half:
        traj *= half / extent
    trajectory = np.stack([traj.real, traj.imag], axis=1).astype(np.float32)
    np.clip(trajectory, -half, half, out=trajectory)  # float32 rounding must not leave the support
    kernel = _splat(trajectory, size).astype(np.float32)
    path_length = float(np.sum(np.hypot(*np.diff(trajectory.astype(np.float64), axis=0).T)))
    return ShakeKernel(
        kernel=kernel,
        trajectory=trajectory,
        anxiety=anxiety,
        jerk_prob=jerk_prob,
        length=path_length,
        exposure=float(exposure),
    )


# --------------------------------------------------------------------------------------------
# blurring
# --------------------------------------------------------------------------------------------


def blur_image(image: np.ndarray, kernel: np.ndarray, *, mode: str = "reflect") -> np.ndarray:
    """Convolve an image with a kernel, channel by channel: ``y = k * x``.

    True convolution (the kernel is flipped relative to correlation), identical to
    ``scipy.ndimage.convolve(x, k, mode=mode)`` per channel and to
    ``scipy.signal.convolve2d(x, k, mode="same")`` away from the borders. Implemented as an
    explicit pad followed by ``cv2.filter2D`` (which switches to a DFT for large kernels).

    Args:
        image: float ``(H, W)`` or ``(H, W, C)`` image (linear light for physical blur).
        kernel: 2-D kernel with odd sides. It is not renormalised.
        mode: Boundary handling, with scipy.ndimage's names: ``"reflect"`` (half-sample
            symmetric), ``"mirror"``, ``"nearest"``, ``"constant"`` (zeros) or ``"wrap"``.
            Kernels larger than the image are fine.

    Returns:
        float32 array of the image's shape.

    Raises:
        ValueError: non-float image, bad kernel shape, unknown ``mode``.
    """
    image = _check_image(image)
    kernel = _check_kernel(kernel)
    if mode not in _PAD_MODES:
        raise ValueError(f"mode must be one of {sorted(_PAD_MODES)}, got {mode!r}")
    ry, rx = kernel.shape[0] // 2, kernel.shape[1] // 2
    flipped = np.ascontiguousarray(kernel[::-1, ::-1])
    planes = image[..., None] if image.ndim == 2 else image
    height, width = image.shape[:2]
    out = np.empty(planes.shape, dtype=np.float32)
    for c in range(planes.shape[2]):
        padded = np.pad(planes[..., c], ((ry, ry), (rx, rx)), mode=_PAD_MODES[mode])
        filtered = cv2.filter2D(padded, cv2.CV_32F, flipped, borderType=cv2.BORDER_CONSTANT)
        out[..., c] = filtered[ry : ry + height, rx : rx + width]
    return out[..., 0] if image.ndim == 2 else out


def constant_field(height: int, width: int, length: float, angle: float) -> np.ndarray:
    """Spatially constant motion field equivalent to :func:`linear_kernel` ``(length, angle)``.

    Args:
        height: Field height in pixels.
        width: Field width in pixels.
        length: Motion length in pixels (``>= 0``).
        angle: Degrees counter-clockwise from ``+x`` with ``y`` up on screen.

    Returns:
        float32 ``(height, width, 2)`` field filled with
        ``(length * cos(angle), -length * sin(angle))``.
    """
    if not math.isfinite(length) or length < 0:
        raise ValueError(f"length must be a finite number >= 0, got {length!r}")
    if height < 1 or width < 1:
        raise ValueError(f"height and width must be >= 1, got {height}x{width}")
    theta = math.radians(angle)
    vec = np.array([length * math.cos(theta), -length * math.sin(theta)], dtype=np.float32)
    return np.broadcast_to(vec, (height, width, 2)).copy()


def _check_field(field: np.ndarray, image: np.ndarray, name: str) -> np.ndarray:
    """A finite float32 ``(H, W, 2)`` field of the image's size, or a ValueError naming it."""
    if not isinstance(field, np.ndarray) or field.shape != (*image.shape[:2], 2):
        shape = getattr(field, "shape", type(field).__name__)
        raise ValueError(f"{name} must have shape {(*image.shape[:2], 2)} (H, W, 2), got {shape}")
    field = np.asarray(field, dtype=np.float32)
    if not np.all(np.isfinite(field)):
        raise ValueError(f"{name} contains NaN or infinite values")
    return field


def _pixel_grid(height: int, width: int) -> np.ndarray:
    """float32 ``(H, W, 2)`` pixel coordinates ``(x, y)``, as ``cv2.remap`` takes them."""
    grid = np.empty((height, width, 2), dtype=np.float32)
    grid[..., 0] = np.arange(width, dtype=np.float32)[None, :]
    grid[..., 1] = np.arange(height, dtype=np.float32)[:, None]
    return grid


def _channel_chunks(image: np.ndarray) -> list[np.ndarray]:
    """The image as contiguous ``(H, W, <=4)`` chunks: ``cv2.remap`` takes 4 channels at most."""
    planes = image[..., None] if image.ndim == 2 else image
    return [np.ascontiguousarray(planes[..., c : c + 4]) for c in range(0, planes.shape[2], 4)]


def _remap(chunk: np.ndarray, coords: np.ndarray) -> np.ndarray:
    """Bilinear sampling of a chunk at ``coords``, reflecting at the borders; keeps its shape."""
    warped = cv2.remap(chunk, coords, None, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    return warped.reshape(chunk.shape)


def field_blur(image: np.ndarray, field: np.ndarray, *, samples: int | None = None) -> np.ndarray:
    """Spatially varying motion blur along a motion field.

    ``y(p) = mean_i x(p + t_i v(p))`` with ``t_i = (i + 1/2) / n - 1/2``, ``i = 0..n-1``: the
    midpoint rule for the exposure average ``integral_{-1/2}^{1/2} x(p + t v(p)) dt``. Each
    sample is read with ``cv2.remap`` (bilinear, ``BORDER_REFLECT`` = scipy's ``"reflect"``).
    For a constant field this is convolution with the matching :func:`linear_kernel`. The
    model is a "gather" blur: each output pixel averages along its own motion vector (exact for
    smooth fields; at motion boundaries it does not model occlusion). ``v`` and ``-v`` give the
    same result.

    Args:
        image: float ``(H, W)`` or ``(H, W, C)`` linear-light image.
        field: float ``(H, W, 2)`` motion field ``(dx, dy)`` in pixels.
        samples: Samples along each vector; default ``2 * ceil(max |v|) + 1`` (at most half a
            pixel between samples, so streaks have no gaps), ``1`` when the field is zero.

    Returns:
        float32 array of the image's shape.

    Raises:
        ValueError: shape mismatch between image and field, non-finite field, ``samples < 1``.
    """
    image = _check_image(image)
    field = _check_field(field, image, "field")
    if samples is None:
        max_len = float(np.sqrt(np.max(np.sum(field.astype(np.float64) ** 2, axis=2))))
        samples = 2 * math.ceil(max_len) + 1
    elif isinstance(samples, bool) or not isinstance(samples, int) or samples < 1:
        raise ValueError(f"samples must be an integer >= 1, got {samples!r}")

    grid = _pixel_grid(*image.shape[:2])
    chunks = _channel_chunks(image)
    acc = [np.zeros(chunk.shape, dtype=np.float32) for chunk in chunks]
    coords = np.empty_like(grid)
    for i in range(samples):
        t = np.float32((i + 0.5) / samples - 0.5)
        np.multiply(field, t, out=coords)
        coords += grid
        for chunk, total in zip(chunks, acc, strict=True):
            total += _remap(chunk, coords)
    out = np.concatenate(acc, axis=2) if len(acc) > 1 else acc[0]
    out *= np.float32(1.0 / samples)
    return out[..., 0] if image.ndim == 2 else out


def field_frames(
    image: np.ndarray,
    displacement: np.ndarray,
    *,
    duty: float,
    offsets: Sequence[float] = (-1.0, 0.0, 1.0),
    samples: int | None = None,
) -> list[np.ndarray]:
    """Consecutive blurred video frames of a scene moving along a displacement field.

    Frame ``k`` (``k`` in ``offsets``) sees the scene displaced by ``k * D`` and is exposed for
    the fraction ``duty`` of the frame interval:
    ``y_k(p) = mean_i x(p + (k + duty * t_i) D(p))``, ``t_i = (i + 1/2) / n - 1/2``. Its blur
    is :func:`field_blur` with the field ``duty * D``; the frame-to-frame displacement is
    ``D``. Like :func:`field_blur` this is a gather model: each pixel follows its own vector.

    Args:
        image: float ``(H, W)`` or ``(H, W, C)`` linear-light image.
        displacement: float ``(H, W, 2)`` frame-to-frame displacement ``(dx, dy)`` in pixels.
        duty: exposure time over frame interval, in ``(0, 1]``.
        offsets: frame times in frame intervals, ``0`` the reference frame.
        samples: samples per frame; default ``2 * ceil(duty * max |D|) + 1``.

    Returns:
        One float32 image of the input's shape per offset.

    Raises:
        ValueError: bad shapes, non-finite values, ``duty`` outside ``(0, 1]``.
    """
    image = _check_image(image)
    if not (isinstance(duty, int | float) and 0.0 < float(duty) <= 1.0):
        raise ValueError(f"duty must be in (0, 1], got {duty!r}")
    disp = _check_field(displacement, image, "displacement")
    grid = _pixel_grid(*image.shape[:2])
    blur_field = disp * np.float32(duty)
    frames = []
    for k in offsets:
        if not math.isfinite(k):
            raise ValueError(f"offsets must be finite, got {k!r}")
        if k == 0:
            shifted = image
        else:  # the frame's sharp view: the scene moved by k * D
            coords = grid + disp * np.float32(k)
            shifted = np.concatenate([_remap(c, coords) for c in _channel_chunks(image)], axis=2)
            shifted = shifted[..., 0] if image.ndim == 2 else shifted
        frames.append(field_blur(shifted, blur_field, samples=samples))
    return frames


# --------------------------------------------------------------------------------------------
# motion fields
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MotionSample:
    """A ground-truth motion field with the parameters it was made from.

    Attributes:
        field: float32 ``(H, W, 2)`` motion field ``(dx, dy)`` in pixels.
        kind: Components present, joined by ``"+"``, e.g. ``"translation+rotation+objects"``.
        masks: float32 ``(K, H, W)`` soft masks (alpha in ``[0, 1]``) of the moving objects,
            in pasting order (later objects are on top).
        object_motion: float32 ``(K, 2)`` translation ``(dx, dy)`` of each object.
        camera: Camera-motion parameters after scaling: ``translation`` ``(dx, dy)``,
            ``rotation`` (radians over the exposure, positive = clockwise on screen),
            ``rotation_centre`` ``(x, y)``, ``zoom`` (relative scale change over the
            exposure), ``zoom_centre`` ``(x, y)``.
    """

    field: np.ndarray
    kind: str
    masks: np.ndarray
    object_motion: np.ndarray
    camera: dict[str, Any] = dataclasses.field(default_factory=dict)


def _object_mask(height: int, width: int, gen: np.random.Generator) -> np.ndarray:
    """Draw one smooth-edged ellipse or star-shaped polygon as a float32 alpha mask."""
    short = min(height, width)
    draws = gen.random(16)
    cx, cy = draws[0] * (width - 1), draws[1] * (height - 1)
    radius = max(2.0, (0.1 + 0.2 * draws[2]) * short)
    canvas = np.zeros((height, width), dtype=np.uint8)
    if draws[3] < 0.5:
        axes = (round(radius), max(1, round(radius * (0.4 + 0.6 * draws[4]))))
        cv2.ellipse(
            canvas, (round(cx), round(cy)), axes, float(draws[5] * 180), 0, 360, 255, cv2.FILLED
        )
    else:
        n = 5 + int(draws[6] * 5)  # 5..9 vertices
        angles = np.sort(draws[7] * 2 * np.pi + np.linspace(0, 2 * np.pi, n, endpoint=False))
        radii = radius * (0.5 + 0.5 * gen.random(n))
        pts = np.stack([cx + radii * np.cos(angles), cy + radii * np.sin(angles)], axis=1)
        cv2.fillPoly(canvas, [np.round(pts).astype(np.int32)], 255)
    sigma = max(0.8, 0.01 * short)
    alpha = cv2.GaussianBlur(canvas.astype(np.float32) / 255, (0, 0), sigma)
    return np.clip(alpha, 0, 1)


def random_field(
    height: int,
    width: int,
    *,
    rng: RngLike = None,
    max_length: float = 30.0,
    rotation: bool = True,
    zoom: bool = True,
    objects: int | tuple[int, int] = (0, 2),
) -> MotionSample:
    """Random smooth motion field: camera motion plus independently moving objects.

    Camera motion during the exposure is a small affine motion of the image plane,

    ``v(p) = T + theta * R90 (p - c_r) + s * (p - c_z)``,

    translation ``T``, in-plane rotation ``theta`` about a random centre ``c_r`` and zoom ``s``
    about a random centre ``c_z`` (centres may lie a little outside the frame), scaled so the
    largest ``|v|`` in the frame is ``U(0.3, 1) * max_length``. Then ``K`` objects (random
    ellipses / star-shaped polygons with Gaussian-softened edges), each with its own
    translation of length ``U(0.3, 1) * max_length``, are alpha-blended over it. Every vector
    is a convex combination of vectors no longer than ``max_length``, so ``|v| <= max_length``.

    Args:
        height: Field height in pixels.
        width: Field width in pixels.
        rng: Generator or seed.
        max_length: Cap on ``|v|`` in pixels (``>= 0``).
        rotation: Include in-plane rotation.
        zoom: Include zoom.
        objects: Exact number of objects, or an inclusive ``(low, high)`` range to draw from.

    Returns:
        A :class:`MotionSample` with the field, its kind, object masks and parameters.

    Raises:
        ValueError: non-positive size, negative ``max_length``, bad ``objects``.
    """
    for name, value in (("height", height), ("width", width)):
        if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    if not (math.isfinite(max_length) and max_length >= 0):
        raise ValueError(f"max_length must be a finite number >= 0, got {max_length!r}")
    if isinstance(objects, int | np.integer) and not isinstance(objects, bool):
        lo_obj = hi_obj = int(objects)
    elif isinstance(objects, tuple | list) and len(objects) == 2:
        lo_obj, hi_obj = (int(v) for v in objects)
    else:
        raise ValueError(f"objects must be an int or a (low, high) pair, got {objects!r}")
    if lo_obj < 0 or hi_obj < lo_obj:
        raise ValueError(f"objects must satisfy 0 <= low <= high, got {objects!r}")

    gen = _as_rng(rng)
    h, w = int(height), int(width)
    scale = float(max(h, w))
    d = gen.random(9)  # always drawn in the same order: flags do not shift the stream
    phi = 2 * math.pi * d[0]
    trans = np.array([math.cos(phi), math.sin(phi)]) * d[1] * scale
    theta = (2 * d[2] - 1) if rotation else 0.0
    c_rot = np.array([(1.5 * d[3] - 0.25) * (w - 1), (1.5 * d[4] - 0.25) * (h - 1)])
    s_zoom = (2 * d[5] - 1) if zoom else 0.0
    c_zoom = np.array([(1.5 * d[6] - 0.25) * (w - 1), (1.5 * d[7] - 0.25) * (h - 1)])

    def affine(px: np.ndarray, py: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        vx = trans[0] - theta * (py - c_rot[1]) + s_zoom * (px - c_zoom[0])
        vy = trans[1] + theta * (px - c_rot[0]) + s_zoom * (py - c_zoom[1])
        return vx, vy

    # |affine| is convex, so its maximum over the frame is at a corner.
    cx = np.array([0.0, w - 1, 0.0, w - 1])
    cy = np.array([0.0, 0.0, h - 1, h - 1])
    peak = float(np.max(np.hypot(*affine(cx, cy))))
    target = (0.3 + 0.7 * d[8]) * max_length
    factor = target / peak if peak > 0 else 0.0
    trans, theta, s_zoom = trans * factor, theta * factor, s_zoom * factor

    xs = np.arange(w, dtype=np.float64)[None, :]
    ys = np.arange(h, dtype=np.float64)[:, None]
    vx, vy = affine(xs, ys)
    field = np.empty((h, w, 2), dtype=np.float32)
    field[..., 0] = vx
    field[..., 1] = vy

    count = int(gen.integers(lo_obj, hi_obj + 1))
    masks = np.zeros((count, h, w), dtype=np.float32)
    motion = np.zeros((count, 2), dtype=np.float32)
    for k in range(count):
        alpha = _object_mask(h, w, gen)
        psi, mag = gen.random(2)
        vec = np.array([math.cos(2 * math.pi * psi), math.sin(2 * math.pi * psi)])
        motion[k] = vec * (0.3 + 0.7 * mag) * max_length
        masks[k] = alpha
        field += alpha[..., None] * (motion[k] - field)

    parts = ["translation"]
    parts += ["rotation"] if rotation else []
    parts += ["zoom"] if zoom else []
    parts += ["objects"] if count else []
    camera = {
        "translation": (float(trans[0]), float(trans[1])),
        "rotation": float(theta),
        "rotation_centre": (float(c_rot[0]), float(c_rot[1])),
        "zoom": float(s_zoom),
        "zoom_centre": (float(c_zoom[0]), float(c_zoom[1])),
    }
    return MotionSample(
        field=field, kind="+".join(parts), masks=masks, object_motion=motion, camera=camera
    )


# --------------------------------------------------------------------------------------------
# frame averaging (GoPro)
# --------------------------------------------------------------------------------------------


def average_frames(frames: Sequence[np.ndarray], *, gamma: Gamma = "srgb") -> np.ndarray:
    """Synthesise real motion blur by averaging consecutive high-frame-rate frames.

    ``y = g^-1( mean_i g(f_i) )`` where ``f_i`` are the stored (sRGB-encoded) frames and ``g``
    the linearising curve: the GoPro recipe of Nah, Kim & Lee (CVPR 2017), who average 7-13
    frames of 240 fps video after approximating the camera response by ``g(x) = x ** 2.2``.

    Args:
        frames: Non-empty sequence of float images in ``[0, 1]``, all the same shape.
        gamma: ``"srgb"`` for the exact sRGB curve, a positive float ``g`` for ``x ** g``, or
            ``None`` to average the stored values directly.

    Returns:
        float32 image in ``[0, 1]``, same shape as each frame.

    Raises:
        ValueError: empty sequence, frames of different shapes, bad ``gamma``.
    """
    gamma = _check_gamma(gamma)
    if len(frames) == 0:
        raise ValueError("frames is empty: need at least one frame to average")
    first = _check_image(frames[0], "frames[0]")
    total = np.zeros(first.shape, dtype=np.float64)
    for i, frame in enumerate(frames):
        frame = _check_image(frame, f"frames[{i}]")
        if frame.shape != first.shape:
            raise ValueError(
                f"frames[{i}] has shape {frame.shape}, but frames[0] has {first.shape}"
            )
        total += _linearise(frame, gamma)
    mean = (total / len(frames)).astype(np.float32)
    return np.clip(_delinearise(mean, gamma), 0.0, 1.0)


def average_window(
    frames: Sequence[np.ndarray], start: int, n: int, *, gamma: Gamma = "srgb"
) -> tuple[np.ndarray, np.ndarray]:
    """Blurred/sharp pair from ``n`` consecutive frames starting at index ``start``.

    The blur averages ``frames[start : start + n]`` (see :func:`average_frames`); the sharp
    target is ``frames[start + n // 2]``, the centre frame (for even ``n`` the later of the two
    middle frames). This matches the GoPro-style pairs in ``gopro-frameavg``: a file named
    ``..._st_frame-S_n_avg-8`` averages frames ``S+1 .. S+8`` and its sharp image is frame
    ``S+5``, i.e. ``start`` indexes frame ``S+1``.

    Args:
        frames: Consecutive frames (float images in ``[0, 1]``, sRGB-encoded as stored).
        start: Index of the first averaged frame.
        n: Number of frames to average, ``>= 1``.
        gamma: Linearisation, as in :func:`average_frames`.

    Returns:
        ``(blurred, sharp)``, both float32.

    Raises:
        ValueError: window outside the sequence, ``n < 1``.
    """
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be an integer >= 1, got {n!r}")
    if isinstance(start, bool) or not isinstance(start, int) or start < 0:
        raise ValueError(f"start must be an integer >= 0, got {start!r}")
    if start + n > len(frames):
        raise ValueError(f"window start={start}, n={n} runs past the end of {len(frames)} frames")
    window = frames[start : start + n]
    return average_frames(window, gamma=gamma), _check_image(frames[start + n // 2], "sharp")


def frame_pairs(
    frames: Sequence[np.ndarray], n: int, *, stride: int | None = None, gamma: Gamma = "srgb"
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Yield ``(blurred, sharp)`` pairs from successive windows of ``n`` frames.

    Windows start at ``0, stride, 2 * stride, ...`` while they fit; each pair is
    :func:`average_window` ``(frames, start, n)``.

    Args:
        frames: Consecutive sharp frames (float images in ``[0, 1]``).
        n: Frames per window, ``>= 1``.
        stride: Distance between window starts, ``>= 1``; default ``n`` (no overlap).
        gamma: Linearisation, as in :func:`average_frames`.

    Returns:
        A lazy iterator of ``(blurred, sharp)`` float32 pairs (arguments are checked at once).

    Raises:
        ValueError: ``n`` or ``stride`` below 1, bad ``gamma``.
    """
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be an integer >= 1, got {n!r}")
    stride = n if stride is None else stride
    if isinstance(stride, bool) or not isinstance(stride, int) or stride < 1:
        raise ValueError(f"stride must be an integer >= 1, got {stride!r}")
    gamma = _check_gamma(gamma)
    starts = range(0, len(frames) - n + 1, stride)
    return (average_window(frames, start, n, gamma=gamma) for start in starts)


# --------------------------------------------------------------------------------------------
# sensor effects
# --------------------------------------------------------------------------------------------


def add_noise(
    image: np.ndarray,
    *,
    rng: RngLike = None,
    poisson_scale: float = 0.0,
    gaussian_sigma: float = 0.0,
    clip: bool = True,
) -> np.ndarray:
    """Poisson-Gaussian sensor noise on a linear-light image.

    ``y = Poisson(a * x) / a + N(0, sigma^2)`` with ``a = poisson_scale`` (photo-electrons at
    full scale; the shot-noise variance is ``x / a``). The Poisson term is skipped when
    ``a == 0``; negative inputs are treated as 0 for it.

    Args:
        image: float linear-light image.
        rng: Generator or seed.
        poisson_scale: ``a >= 0``; larger means less shot noise.
        gaussian_sigma: Read-noise standard deviation ``>= 0`` (in units of full scale).
        clip: Clip the result to ``[0, 1]``.

    Returns:
        float32 noisy image, same shape.
    """
    image = _check_image(image)
    if not (math.isfinite(poisson_scale) and poisson_scale >= 0):
        raise ValueError(f"poisson_scale must be a finite number >= 0, got {poisson_scale!r}")
    if not (math.isfinite(gaussian_sigma) and gaussian_sigma >= 0):
        raise ValueError(f"gaussian_sigma must be a finite number >= 0, got {gaussian_sigma!r}")
    gen = _as_rng(rng)
    out = image.astype(np.float64)
    if poisson_scale > 0:
        out = gen.poisson(np.maximum(out, 0.0) * poisson_scale) / poisson_scale
    if gaussian_sigma > 0:
        out = out + gen.normal(0.0, gaussian_sigma, size=out.shape)
    out = out.astype(np.float32)
    return np.clip(out, 0.0, 1.0) if clip else out


def saturate(image: np.ndarray, *, gain: float = 1.0, threshold: float = 1.0) -> np.ndarray:
    """Highlight clipping: ``y = min(gain * x, threshold)``.

    Use on linear light: boosting a scene (``gain > 1``) with a high ``threshold`` and clipping
    to 1 only after the blur makes the saturated streaks of light sources; see also
    :func:`boost_highlights`, which boosts only the brightest pixels.

    Args:
        image: float linear-light image.
        gain: Positive multiplier.
        threshold: Positive clipping level.

    Returns:
        float32 image, same shape.
    """
    image = _check_image(image)
    if not (math.isfinite(gain) and gain > 0):
        raise ValueError(f"gain must be a finite number > 0, got {gain!r}")
    if not (math.isfinite(threshold) and threshold > 0):
        raise ValueError(f"threshold must be a finite number > 0, got {threshold!r}")
    return np.minimum(image * np.float32(gain), np.float32(threshold))


def boost_highlights(image: np.ndarray, *, gain: float, knee: float = 0.8) -> np.ndarray:
    """Turn near-white pixels into over-range light sources (values above 1).

    ``y = x * (1 + (gain - 1) * w)`` with ``w = clip((max_c x - knee) / (1 - knee), 0, 1)``:
    pixels whose brightest channel is below ``knee`` are unchanged, the brightest become up to
    ``gain`` times brighter. Blurring the result and clipping at 1 gives the bright saturated
    streaks that real photographs of lights show (an 8-bit image has lost that energy).

    Args:
        image: float linear-light image.
        gain: Boost of the brightest pixels, ``>= 1``.
        knee: Linear level where boosting starts, in ``[0, 1)``.

    Returns:
        float32 image, same shape, possibly with values above 1.
    """
    image = _check_image(image)
    if not (math.isfinite(gain) and gain >= 1):
        raise ValueError(f"gain must be a finite number >= 1, got {gain!r}")
    if not (math.isfinite(knee) and 0 <= knee < 1):
        raise ValueError(f"knee must be in [0, 1), got {knee!r}")
    peak = image if image.ndim == 2 else image.max(axis=2)
    weight = np.clip((peak - knee) / (1 - knee), 0, 1)
    if image.ndim == 3:
        weight = weight[..., None]
    return (image * (1 + (gain - 1) * weight)).astype(np.float32)


def jpeg_compress(image: np.ndarray, *, quality: int) -> np.ndarray:
    """JPEG round trip in memory (Pillow, default 4:2:0 chroma subsampling for colour).

    Args:
        image: sRGB float image in ``[0, 1]``: ``(H, W)``, ``(H, W, 1)`` or ``(H, W, 3)``.
        quality: Pillow JPEG quality, an integer in ``1..100``.

    Returns:
        float32 decoded image, same shape, quantised to multiples of 1/255.
    """
    image = _check_image(image)
    if isinstance(quality, bool) or not isinstance(quality, int | np.integer):
        raise ValueError(f"quality must be an integer in 1..100, got {quality!r}")
    if not 1 <= quality <= 100:
        raise ValueError(f"quality must be in 1..100, got {quality}")
    if image.ndim == 3 and image.shape[2] not in (1, 3):
        raise ValueError(f"JPEG needs 1 or 3 channels, got shape {image.shape}")
    pixels = np.round(np.clip(image, 0, 1) * 255).astype(np.uint8)
    squeezed = pixels[..., 0] if pixels.ndim == 3 and pixels.shape[2] == 1 else pixels
    buffer = io.BytesIO()
    Image.fromarray(squeezed).save(buffer, format="JPEG", quality=int(quality))
    buffer.seek(0)
    with Image.open(buffer) as decoded:
        out = np.asarray(decoded, dtype=np.float32) / np.float32(255)
    return out.reshape(image.shape)


# --------------------------------------------------------------------------------------------
# full pipeline
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DegradationConfig:
    """Parameter ranges for :func:`degrade`; every ``(low, high)`` range is drawn uniformly.

    Attributes:
        kind: ``"linear"`` (uniform straight blur), ``"shake"`` (camera-shake kernel) or
            ``"field"`` (spatially varying :func:`random_field`).
        length: Blur length range in pixels: segment length (linear), path length (shake) or
            the ``max_length`` cap (field).
        angle: Angle range in degrees for ``"linear"``.
        kernel_size: Odd kernel side. Shake kernels get exactly this size (``None``: the
            smallest odd size >= length + 2); linear kernels at least this size (grown when the
            segment needs more, ``None``: just large enough).
        shake_exposure: Exposure fraction range for ``"shake"``.
        field_rotation: Camera rotation in ``"field"`` motion.
        field_zoom: Camera zoom in ``"field"`` motion.
        field_objects: Inclusive range of moving objects in ``"field"`` motion.
        saturation_prob: Probability of boosting highlights before the blur (saturated light
            streaks after the final clip).
        highlight_gain: Range of the highlight boost (see :func:`boost_highlights`).
        gaussian_sigma: Read-noise standard deviation range (linear light).
        poisson_scale: Shot-noise scale range (see :func:`add_noise`), or ``None`` for none.
        jpeg_quality: Inclusive JPEG quality range, or ``None`` for no compression.
    """

    kind: BlurKind = "linear"
    length: tuple[float, float] = (5.0, 30.0)
    angle: tuple[float, float] = (0.0, 180.0)
    kernel_size: int | None = None
    shake_exposure: tuple[float, float] = (0.5, 1.0)
    field_rotation: bool = True
    field_zoom: bool = True
    field_objects: tuple[int, int] = (0, 2)
    saturation_prob: float = 0.0
    highlight_gain: tuple[float, float] = (2.0, 8.0)
    gaussian_sigma: tuple[float, float] = (0.0, 0.01)
    poisson_scale: tuple[float, float] | None = None
    jpeg_quality: tuple[int, int] | None = None

    def __post_init__(self) -> None:
        if self.kind not in ("linear", "shake", "field"):
            raise ValueError(f"kind must be 'linear', 'shake' or 'field', got {self.kind!r}")
        ranges: dict[str, tuple[float, float]] = {
            "length": _check_range(self.length, "length"),
            "angle": _check_range(self.angle, "angle", low=-math.inf),
            "shake_exposure": _check_range(self.shake_exposure, "shake_exposure"),
            "highlight_gain": _check_range(self.highlight_gain, "highlight_gain", low=1.0),
            "gaussian_sigma": _check_range(self.gaussian_sigma, "gaussian_sigma"),
        }
        if self.kind == "shake" and ranges["length"][0] <= 0:
            raise ValueError(f"length must be > 0 for kind 'shake', got {self.length!r}")
        if ranges["shake_exposure"][0] <= 0 or ranges["shake_exposure"][1] > 1:
            raise ValueError(f"shake_exposure must lie in (0, 1], got {self.shake_exposure!r}")
        for name, value in ranges.items():
            object.__setattr__(self, name, value)
        if self.kernel_size is not None:
            _check_odd_size(self.kernel_size, "kernel_size", minimum=3)
        lo_obj, hi_obj = _check_range(self.field_objects, "field_objects")
        if lo_obj != int(lo_obj) or hi_obj != int(hi_obj):
            raise ValueError(f"field_objects must be integers, got {self.field_objects!r}")
        object.__setattr__(self, "field_objects", (int(lo_obj), int(hi_obj)))
        if not (0 <= self.saturation_prob <= 1):
            raise ValueError(f"saturation_prob must be in [0, 1], got {self.saturation_prob!r}")
        if self.poisson_scale is not None:
            scale = _check_range(self.poisson_scale, "poisson_scale")
            if scale[0] <= 0:
                raise ValueError(f"poisson_scale must be > 0, got {self.poisson_scale!r}")
            object.__setattr__(self, "poisson_scale", scale)
        if self.jpeg_quality is not None:
            q_lo, q_hi = _check_range(self.jpeg_quality, "jpeg_quality", low=1)
            if q_hi > 100 or q_lo != int(q_lo) or q_hi != int(q_hi):
                raise ValueError(
                    f"jpeg_quality must be integers in 1..100, got {self.jpeg_quality!r}"
                )
            object.__setattr__(self, "jpeg_quality", (int(q_lo), int(q_hi)))


def degrade(
    sharp_srgb: np.ndarray, config: DegradationConfig, *, rng: RngLike = None
) -> tuple[np.ndarray, dict[str, Any]]:
    """Synthesise a realistic blurred photo from a sharp one.

    Pipeline: sRGB -> linear light -> optional highlight boost (:func:`boost_highlights`) ->
    blur (:func:`linear_kernel` / :func:`shake_kernel` via :func:`blur_image`, or
    :func:`random_field` via :func:`field_blur`) -> Poisson-Gaussian noise
    (:func:`add_noise`) -> clip to ``[0, 1]`` (sensor saturation) -> sRGB -> optional JPEG.

    Args:
        sharp_srgb: Sharp sRGB float image in ``[0, 1]``, ``(H, W)`` or ``(H, W, C)``.
        config: Parameter ranges.
        rng: Generator or seed; a seed makes the output reproducible.

    Returns:
        ``(blurred_srgb, truth)``. ``truth`` always has ``"kind"``, ``"length"``, ``"sharp"``
        (the sharp sRGB picture that goes with the blurred one: ``sharp_srgb`` itself, or,
        after a highlight boost, the boosted light clipped at 1 as the same exposure without
        motion records it: a blown-out highlight is white in the sharp photo too),
        ``"highlight_gain"`` (``None`` when not applied), ``"gaussian_sigma"``,
        ``"poisson_scale"`` (0 when none) and ``"jpeg_quality"`` (``None`` when none); plus
        ``"kernel"`` and ``"angle"`` (linear), ``"kernel"``, ``"trajectory"`` and
        ``"exposure"`` (shake), or ``"field"``, ``"masks"`` and ``"motion_kind"`` (field).
        Kernels and fields act on linear light.
    """
    image = _check_image(sharp_srgb, "sharp_srgb")
    if not isinstance(config, DegradationConfig):
        raise ValueError(f"config must be a DegradationConfig, got {type(config).__name__}")
    gen = _as_rng(rng)
    linear = _srgb_to_linear(np.clip(image, 0, 1))
    truth: dict[str, Any] = {"kind": config.kind, "highlight_gain": None, "sharp": image}

    if config.saturation_prob > 0 and gen.random() < config.saturation_prob:
        gain = float(gen.uniform(*config.highlight_gain))
        linear = boost_highlights(linear, gain=gain)
        truth["highlight_gain"] = gain
        # the target of a pair: the sensor saturates in the sharp exposure as in the blurred
        # one (the original picture there would teach a network to darken and tint every
        # saturated area, for it cannot know what lay under the clipping)
        sharp = np.clip(_linear_to_srgb(np.clip(linear, 0.0, 1.0)), 0.0, 1.0)
        truth["sharp"] = sharp.astype(np.float32)

    length = float(gen.uniform(*config.length))
    if config.kind == "linear":
        angle = float(gen.uniform(*config.angle))
        kernel = linear_kernel(length, angle)
        if config.kernel_size is not None:
            kernel = linear_kernel(length, angle, size=max(config.kernel_size, kernel.shape[0]))
        blurred = blur_image(linear, kernel)
        truth.update(kernel=kernel, length=length, angle=angle)
    elif config.kind == "shake":
        size = config.kernel_size or 2 * math.ceil((length + 1) / 2) + 1
        exposure = float(gen.uniform(*config.shake_exposure))
        shake = shake_kernel(size=size, rng=gen, length=length, exposure=exposure)
        blurred = blur_image(linear, shake.kernel)
        truth.update(
            kernel=shake.kernel,
            trajectory=shake.trajectory,
            length=shake.length,
            exposure=exposure,
        )
    else:
        motion = random_field(
            image.shape[0],
            image.shape[1],
            rng=gen,
            max_length=length,
            rotation=config.field_rotation,
            zoom=config.field_zoom,
            objects=config.field_objects,
        )
        blurred = field_blur(linear, motion.field)
        truth.update(field=motion.field, masks=motion.masks, motion_kind=motion.kind, length=length)

    sigma = float(gen.uniform(*config.gaussian_sigma))
    scale = 0.0 if config.poisson_scale is None else float(gen.uniform(*config.poisson_scale))
    noisy = add_noise(blurred, rng=gen, poisson_scale=scale, gaussian_sigma=sigma, clip=True)
    truth.update(gaussian_sigma=sigma, poisson_scale=scale, jpeg_quality=None)
    out = np.clip(_linear_to_srgb(noisy), 0.0, 1.0)
    if config.jpeg_quality is not None:
        quality = int(gen.integers(config.jpeg_quality[0], config.jpeg_quality[1] + 1))
        out = jpeg_compress(out, quality=quality)
        truth["jpeg_quality"] = quality
    return out, truth
