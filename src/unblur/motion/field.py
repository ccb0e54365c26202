"""Motion fields: their representation and sign-aware errors.

Conventions (the same as :mod:`unblur.blur`):

* A motion field is float32 ``(H, W, 2)`` holding ``(dx, dy)`` in pixels, ``x`` to the right
  and ``y`` down: the full displacement, during the exposure, of the scene point seen at that
  pixel, centred on mid-exposure (the point moves from ``p - v/2`` to ``p + v/2``). The helpers
  here accept any array of shape ``(..., 2)``.
* A streak looks the same traversed either way, so ``v`` and ``-v`` are the same blur and a
  direction is only defined modulo 180 degrees. The **canonical** form of a vector flips it so
  that ``dx > 0``, or ``dx == 0`` and ``dy >= 0``; errors between fields are taken up to sign.
* Polar form: ``length = |v|`` and ``angle`` in degrees in ``[0, 180)``, counter-clockwise from
  ``+x`` as seen on screen (``y`` up), as :func:`unblur.blur.linear_kernel` takes it:
  ``dx = length * cos(angle)``, ``dy = -length * sin(angle)``.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "angle_error",
    "canonical",
    "endpoint_error",
    "from_polar",
    "length_error",
    "to_polar",
]


# --------------------------------------------------------------------------------------------
# representation
# --------------------------------------------------------------------------------------------


def _check_vectors(field: np.ndarray, name: str = "field") -> np.ndarray:
    """Validate an array of ``(dx, dy)`` vectors, shape ``(..., 2)``; return it as float64."""
    f = np.asarray(field)
    if f.ndim < 1 or f.shape[-1] != 2:
        raise ValueError(f"{name} must have shape (..., 2) of (dx, dy), got {f.shape}")
    if not np.issubdtype(f.dtype, np.number) or np.iscomplexobj(f):
        raise ValueError(f"{name} must hold real numbers, got dtype {f.dtype}")
    f = f.astype(np.float64)
    if not np.all(np.isfinite(f)):
        raise ValueError(f"{name} has NaN or infinite values")
    return f


def canonical(field: np.ndarray) -> np.ndarray:
    """Flip each vector to the canonical one of ``±v``: ``dx > 0``, or ``dx == 0`` and ``dy >= 0``.

    Args:
        field: ``(..., 2)`` array of ``(dx, dy)`` in pixels (typically ``(H, W, 2)``).

    Returns:
        float32 array of the same shape.

    Example:
        >>> canonical(np.array([[-1.0, 2.0], [0.0, -3.0]])).tolist()
        [[1.0, -2.0], [0.0, 3.0]]
    """
    f = _check_vectors(field)
    dx, dy = f[..., 0], f[..., 1]
    flip = (dx < 0) | ((dx == 0) & (dy < 0))
    out = np.where(flip[..., None], -f, f)
    return (out + 0.0).astype(np.float32)  # + 0.0 turns -0.0 into 0.0


def to_polar(field: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Length and direction of motion vectors.

    Args:
        field: ``(..., 2)`` array of ``(dx, dy)`` in pixels, ``y`` down.

    Returns:
        ``(length, angle)`` float32 arrays of shape ``field.shape[:-1]``: length in pixels and
        angle in degrees in ``[0, 180)``, counter-clockwise from ``+x`` with ``y`` up (as
        :func:`unblur.blur.linear_kernel`). A zero vector has angle 0.

    Example:
        >>> length, angle = to_polar(np.array([0.0, -5.0]))
        >>> float(length), float(angle)
        (5.0, 90.0)
    """
    f = _check_vectors(field)
    length = np.hypot(f[..., 0], f[..., 1])
    angle = np.mod(np.degrees(np.arctan2(-f[..., 1], f[..., 0])), 180.0)
    angle = np.where(angle >= 180.0, 0.0, angle)  # mod can round up to exactly 180
    return length.astype(np.float32), angle.astype(np.float32)


def from_polar(length: np.ndarray | float, angle: np.ndarray | float) -> np.ndarray:
    """Canonical motion vectors from lengths and angles (the inverse of :func:`to_polar`).

    Args:
        length: Lengths in pixels (``>= 0``), any shape broadcastable with ``angle``.
        angle: Degrees counter-clockwise from ``+x`` with ``y`` up; any value (only
            ``angle mod 180`` matters).

    Returns:
        float32 ``(..., 2)`` array of canonical ``(dx, dy)``.

    Raises:
        ValueError: negative or non-finite lengths, non-finite angles.

    Example:
        >>> from_polar(2.0, 90.0).tolist()
        [0.0, 2.0]
    """
    length_arr = np.asarray(length, dtype=np.float64)
    angle_arr = np.asarray(angle, dtype=np.float64)
    if not np.all(np.isfinite(length_arr)) or np.any(length_arr < 0):
        raise ValueError(f"lengths must be finite and >= 0, got min {np.min(length_arr)!r}")
    if not np.all(np.isfinite(angle_arr)):
        raise ValueError("angles must be finite")
    theta = np.radians(np.mod(angle_arr, 180.0))
    dx = length_arr * np.cos(theta)
    dy = -length_arr * np.sin(theta)
    dx = np.where(np.abs(dx) <= 1e-9 * np.maximum(length_arr, 1e-300), 0.0, dx)  # 90 degrees
    return canonical(np.stack(np.broadcast_arrays(dx, dy), axis=-1))


def _pair(est: np.ndarray, true: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    e = _check_vectors(est, "est")
    t = _check_vectors(true, "true")
    try:
        e, t = np.broadcast_arrays(e, t)
    except ValueError:
        raise ValueError(f"est and true shapes differ: {e.shape} vs {t.shape}") from None
    return e, t


def endpoint_error(est: np.ndarray, true: np.ndarray) -> np.ndarray:
    """Sign-aware end-point error ``min(|e - t|, |e + t|)`` per vector, in pixels.

    Args:
        est: ``(..., 2)`` estimated ``(dx, dy)``.
        true: ``(..., 2)`` true ``(dx, dy)``, same or broadcastable shape.

    Returns:
        float32 array of shape ``(...)``.
    """
    e, t = _pair(est, true)
    minus = np.hypot(*np.moveaxis(e - t, -1, 0))
    plus = np.hypot(*np.moveaxis(e + t, -1, 0))
    return np.minimum(minus, plus).astype(np.float32)


def angle_error(est: np.ndarray, true: np.ndarray) -> np.ndarray:
    """Direction error in degrees modulo 180, in ``[0, 90]``, per vector.

    A zero vector has angle 0 (see :func:`to_polar`), so filter on the true length (say
    ``> 3`` px) before averaging: short streaks have no meaningful direction.

    Args:
        est: ``(..., 2)`` estimated ``(dx, dy)``.
        true: ``(..., 2)`` true ``(dx, dy)``.

    Returns:
        float32 array of shape ``(...)``.
    """
    e, t = _pair(est, true)
    _, ae = to_polar(e)
    _, at = to_polar(t)
    diff = np.abs(ae.astype(np.float64) - at.astype(np.float64))
    return np.minimum(diff, 180.0 - diff).astype(np.float32)


def length_error(est: np.ndarray, true: np.ndarray) -> np.ndarray:
    """Absolute length error ``| |e| - |t| |`` per vector, in pixels.

    Args:
        est: ``(..., 2)`` estimated ``(dx, dy)``.
        true: ``(..., 2)`` true ``(dx, dy)``.

    Returns:
        float32 array of shape ``(...)``.
    """
    e, t = _pair(est, true)
    le = np.hypot(e[..., 0], e[..., 1])
    lt = np.hypot(t[..., 0], t[..., 1])
    return np.abs(le - lt).astype(np.float32)
