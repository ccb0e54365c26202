"""Pictures of blur motion fields and blur kernels, as saved by ``unblur motion``.

A motion field (float32 ``(H, W, 2)`` of ``(dx, dy)`` in pixels, ``y`` down; see
:mod:`unblur.motion`) is shown two ways at once:

* **colour** -- :func:`field_colours`: the hue gives the direction and the brightness the length.
  A streak has no sign (``v`` and ``-v`` are the same blur), so the hue is taken from the
  *doubled* angle: going round the colour wheel once is a half-turn of directions, and 0 and
  180 degrees get the same colour. Horizontal blur is red, 45 degrees (up-right) yellow-green,
  vertical cyan, 135 degrees (up-left) violet.
* **blur traces** -- :func:`field_picture` draws, on a regular grid, short line segments as long
  as the local streak and oriented along it: what a point light at the grid point would have
  smeared into. Traces are capped so that, outline included, they span at most ``0.9`` grid
  spacings and never collide; a capped trace gets end ticks and an amber core instead of a
  white one. The legend states the cap in pixels.

A legend under the picture shows the colour wheel, a length scale with example traces drawn
at the picture's scale, and the maximum and median length.

:func:`kernel_picture` draws a blur kernel large with the inferno colour map, and
:func:`side_by_side` puts pictures next to each other with a label over each.

All pictures are uint8 RGB ``(H, W, 3)``; inputs are float images in ``[0, 1]`` (sRGB
encoded, as :mod:`unblur.io` reads them) or uint8.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from unblur.motion import to_polar

__all__ = ["field_colours", "field_picture", "kernel_picture", "label_height", "side_by_side"]

# colours (RGB uint8)
_OUTLINE = (16, 16, 16)
_CORE = (250, 250, 250)
_CORE_CAPPED = (255, 196, 64)  # amber: the trace is shorter than the streak
_BACKGROUND = (28, 28, 28)
_TEXT = (235, 235, 235)
_FRAME = (150, 150, 150)

_FONT = cv2.FONT_HERSHEY_SIMPLEX
_FONT_CAP_HEIGHT = 22.0  # height in px of capital letters at font scale 1

_MIN_DISPLAY = 256  # images with a shorter side below this are enlarged
_MAX_ZOOM = 16
_CAP = 0.9  # traces, outline included, span at most this many grid spacings
_DIM_OFFSET = 0.12  # the image is shown as grey in [_DIM_OFFSET, _DIM_OFFSET + _DIM_GAIN]
_DIM_GAIN = 0.5
_COLOUR_OPACITY = 0.6  # opacity of the field colours over the dimmed image
_MID_GREY = _DIM_OFFSET + 0.5 * _DIM_GAIN  # what mid-grey looks like in the picture


# --------------------------------------------------------------------------------------------
# validation
# --------------------------------------------------------------------------------------------


def _check_field(field: np.ndarray) -> np.ndarray:
    """Validate a ``(H, W, 2)`` motion field with finite values; return it as float32."""
    f = np.asarray(field)
    if f.ndim != 3 or f.shape[2] != 2 or f.shape[0] < 1 or f.shape[1] < 1:
        raise ValueError(f"field must have shape (H, W, 2) of (dx, dy), got {f.shape}")
    if not np.issubdtype(f.dtype, np.number) or np.iscomplexobj(f):
        raise ValueError(f"field must hold real numbers, got dtype {f.dtype}")
    f = f.astype(np.float32)
    if not np.all(np.isfinite(f)):
        raise ValueError("field has NaN or infinite values")
    return f


def _check_positive(value: float | None, name: str) -> float | None:
    """Validate an optional finite number ``> 0``."""
    if value is None:
        return None
    if isinstance(value, bool) or not math.isfinite(value) or value <= 0:
        raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
    return float(value)


def _to_unit(image: np.ndarray, name: str) -> np.ndarray:
    """A float32 copy of a float image in ``[0, 1]`` (clipped) or of a uint8 image / 255."""
    img = np.asarray(image)
    if img.dtype == np.uint8:
        return img.astype(np.float32) / 255.0
    if not np.issubdtype(img.dtype, np.floating):
        raise ValueError(f"{name} must be a float array in [0, 1] or uint8, got dtype {img.dtype}")
    if not np.all(np.isfinite(img)):
        raise ValueError(f"{name} has NaN or infinite values")
    return np.clip(img, 0.0, 1.0).astype(np.float32)


def _grey(image: np.ndarray) -> np.ndarray:
    """Validated float32 ``(H, W)`` luma (Rec. 709 weights) of a grey or RGB image."""
    img = np.asarray(image)
    if img.ndim == 3 and img.shape[2] == 1:
        img = img[..., 0]
    if img.ndim == 3 and img.shape[2] == 3:
        rgb = _to_unit(img, "image")
        return rgb @ np.array([0.2126, 0.7152, 0.0722], dtype=np.float32)
    if img.ndim != 2:
        raise ValueError(f"image must have shape (H, W), (H, W, 1) or (H, W, 3), got {img.shape}")
    return _to_unit(img, "image")


def _rgb_uint8(panel: np.ndarray, name: str) -> np.ndarray:
    """A uint8 ``(H, W, 3)`` copy of a grey or RGB picture (uint8, or float in ``[0, 1]``)."""
    img = np.asarray(panel)
    if img.ndim == 3 and img.shape[2] == 1:
        img = img[..., 0]
    if img.ndim == 2:
        img = np.repeat(img[..., None], 3, axis=2)
    if img.ndim != 3 or img.shape[2] != 3 or img.shape[0] < 1 or img.shape[1] < 1:
        raise ValueError(f"{name} must have shape (H, W) or (H, W, 3), got {np.shape(panel)}")
    if img.dtype == np.uint8:
        return np.ascontiguousarray(img)
    return np.rint(_to_unit(img, name) * 255).astype(np.uint8)


# --------------------------------------------------------------------------------------------
# colours
# --------------------------------------------------------------------------------------------


def _hsv_to_rgb(hue: np.ndarray, value: np.ndarray) -> np.ndarray:
    """Fully saturated HSV to RGB: ``hue`` in degrees, ``value`` in ``[0, 1]``; float32."""
    h = np.mod(np.asarray(hue, dtype=np.float32), 360.0) / 60.0
    v = np.asarray(value, dtype=np.float32)
    out = np.empty((*np.broadcast_shapes(h.shape, v.shape), 3), dtype=np.float32)
    for channel, n in enumerate((5.0, 3.0, 1.0)):  # R, G, B
        k = np.mod(n + h, 6.0)
        out[..., channel] = v * (1.0 - np.clip(np.minimum(k, 4.0 - k), 0.0, 1.0))
    return out


def _overlay(
    base: np.ndarray, colours: np.ndarray, alpha: np.ndarray, fraction: np.ndarray
) -> np.ndarray:
    """``(1 - alpha * fraction) * base + alpha * colours`` as uint8 RGB (``base`` is grey).

    ``colours`` are :func:`field_colours` (value = ``fraction`` of the full length), so this is
    them blended over ``base`` with opacity ``alpha``, except that the base shows through in
    proportion to how dark the colour is: still parts show the image, not black.
    """
    a = alpha[..., None]
    keep = 1.0 - a * np.clip(fraction, 0.0, 1.0)[..., None]
    return np.rint((base[..., None] * keep + colours * a) * 255.0).astype(np.uint8)


def _default_max_length(length: np.ndarray) -> float:
    """99th-percentile length, at least 1 px."""
    return max(1.0, float(np.percentile(length, 99))) if length.size else 1.0


def field_colours(field: np.ndarray, *, max_length: float | None = None) -> np.ndarray:
    """Colour-code a motion field: hue from direction (modulo 180 degrees), value from length.

    The hue is twice the angle of :func:`unblur.motion.to_polar`, so a half-turn of
    directions goes once round the hue circle and ``v``, ``-v`` (the same blur) get the same
    colour: 0 degrees (horizontal) is red, 45 yellow-green, 90 (vertical) cyan, 135 violet.
    The HSV value is ``min(1, length / max_length)`` and the saturation is full, so a still
    pixel is black.

    Args:
        field: float ``(H, W, 2)`` motion field ``(dx, dy)`` in pixels, ``y`` down.
        max_length: Length in pixels shown at full brightness. Default: the field's
            99th-percentile length, at least 1 px.

    Returns:
        float32 ``(H, W, 3)`` RGB in ``[0, 1]``.

    Raises:
        ValueError: ``field`` not ``(H, W, 2)`` or not finite, ``max_length`` not ``> 0``.

    Example:
        >>> from unblur.blur import constant_field
        >>> field_colours(constant_field(2, 2, 5.0, 0.0))[0, 0].tolist()  # horizontal: red
        [1.0, 0.0, 0.0]
    """
    f = _check_field(field)
    max_length = _check_positive(max_length, "max_length")
    length, angle = to_polar(f)
    if max_length is None:
        max_length = _default_max_length(length)
    value = np.clip(length / np.float32(max_length), 0.0, 1.0)
    return _hsv_to_rgb(2.0 * angle, value)


# --------------------------------------------------------------------------------------------
# drawing helpers
# --------------------------------------------------------------------------------------------

_SHIFT = 4  # fractional bits of cv2 drawing coordinates
_ONE = 1 << _SHIFT


def _fixed(point: np.ndarray) -> tuple[int, int]:
    """A float ``(x, y)`` point as cv2 fixed-point coordinates."""
    return round(float(point[0]) * _ONE), round(float(point[1]) * _ONE)


@dataclass(frozen=True)
class _Pen:
    """Stroke widths in pixels of traces: the light core and the dark outline around it."""

    core: int
    outline: int

    @staticmethod
    def for_spacing(spacing: float) -> _Pen:
        """Widths that suit a grid of ``spacing`` display pixels."""
        core = max(1, round(spacing / 25))
        return _Pen(core, core + 2 * max(1, round(core * 0.5)))


def _draw_traces(
    canvas: np.ndarray, centres: np.ndarray, vectors: np.ndarray, cap: float, pen: _Pen
) -> None:
    """Draw blur traces in place: a dark outline pass, then a light core pass.

    Each trace is the segment ``centre ± v / 2`` (display pixels) drawn so that its visible
    core, round caps included, is ``|v|`` long; longer than ``cap`` it is shortened to ``cap``
    and gets end ticks and an amber core. Shorter than a pixel it is a dot.
    """
    shapes = []  # (kind, a, b, capped, ticks)
    for c, v in zip(centres, vectors, strict=True):
        length = float(np.hypot(v[0], v[1]))
        if length < 1.0:
            shapes.append(("dot", c, c, False, ()))
            continue
        capped = length > cap
        shown = min(length, cap)
        u = v / length
        half = 0.5 * max(0.0, shown - pen.core)  # round caps add core/2 at each end
        a, b = c - u * half, c + u * half
        ticks: tuple[tuple[np.ndarray, np.ndarray], ...] = ()
        if capped:
            n = np.array([-u[1], u[0]])
            t = max(2.0, 1.5 * pen.core + 1.0)
            ticks = tuple((e - n * t, e + n * t) for e in (a, b))
        shapes.append(("line", a, b, capped, ticks))

    dot_r = max(2.0, pen.core + 1.0)
    for width, is_core in ((pen.outline, False), (pen.core, True)):
        for kind, a, b, capped, ticks in shapes:
            colour = (_CORE_CAPPED if capped else _CORE) if is_core else _OUTLINE
            if kind == "dot":
                r = dot_r if is_core else dot_r + 0.5 * (pen.outline - pen.core)
                cv2.circle(canvas, _fixed(a), round(r * _ONE), colour, -1, cv2.LINE_AA, _SHIFT)
                continue
            cv2.line(canvas, _fixed(a), _fixed(b), colour, width, cv2.LINE_AA, _SHIFT)
            for p, q in ticks:
                cv2.line(canvas, _fixed(p), _fixed(q), colour, width, cv2.LINE_AA, _SHIFT)


def _font(px: float) -> tuple[float, int]:
    """cv2 font scale and thickness giving capitals ``px`` pixels high."""
    return px / _FONT_CAP_HEIGHT, max(1, round(px / 11))


def _text_width(text: str, px: float) -> int:
    """Width in pixels of ``text`` drawn with capitals ``px`` high."""
    scale, thick = _font(px)
    (w, _), _ = cv2.getTextSize(text, _FONT, scale, thick)
    return int(w)


def _put_text(
    canvas: np.ndarray,
    text: str,
    x: float,
    top: float,
    px: float,
    colour: tuple[int, int, int] = _TEXT,
    align: str = "left",
) -> None:
    """Draw ``text`` with its capitals' top at ``top``; ``align`` is left, centre or right."""
    scale, thick = _font(px)
    w = _text_width(text, px)
    if align == "centre":
        x -= w / 2
    elif align == "right":
        x -= w
    org = (round(x), round(top + px))
    cv2.putText(canvas, text, org, _FONT, scale, colour, thick, cv2.LINE_AA)


def _fmt(x: float) -> str:
    """A length for labels: one decimal below 100 px, none above."""
    return f"{x:.1f}" if x < 100 else f"{x:.0f}"


# --------------------------------------------------------------------------------------------
# legend
# --------------------------------------------------------------------------------------------


def _wheel_block(size: int, text_px: float, pen: _Pen) -> np.ndarray:
    """Colour wheel: hue = doubled direction, value = radius, with traces round the rim."""
    block = np.full((size, size, 3), _BACKGROUND, dtype=np.uint8)
    radius = 0.25 * size
    cx, cy = 0.5 * size - 0.5, 0.42 * size
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    dx, dy = xx - cx, yy - cy
    r = np.hypot(dx, dy)
    angle = np.degrees(np.arctan2(-dy, dx))  # CCW with y up
    fraction = np.clip(r / radius, 0.0, 1.0)
    alpha = np.full(fraction.shape, _COLOUR_OPACITY, dtype=np.float32)
    base = np.full(fraction.shape, _MID_GREY, dtype=np.float32)
    disc = _overlay(base, _hsv_to_rgb(2.0 * angle, fraction), alpha, fraction)
    cover = np.clip(radius - r + 0.5, 0.0, 1.0)[..., None]
    block[:] = np.rint(cover * disc + (1.0 - cover) * block).astype(np.uint8)
    # traces just outside the rim, every 30 degrees: opposite ones are parallel (mod 180)
    glyph = 0.1 * size
    ring = radius + 0.5 * glyph + 0.03 * size
    centres, vectors = [], []
    for deg in range(0, 360, 30):
        u = np.array([math.cos(math.radians(deg)), -math.sin(math.radians(deg))])
        centres.append(np.array([cx, cy]) + ring * u)
        vectors.append(glyph * u)
    small = _Pen(max(1, pen.core), max(1, pen.core) + 2)
    _draw_traces(block, np.array(centres), np.array(vectors), math.inf, small)
    _put_text(block, "direction", cx, 0.86 * size, text_px, align="centre")
    return block


def _scale_block(
    height: int, text_px: float, max_length: float, zoom: float, cap: float, pen: _Pen
) -> np.ndarray:
    """Length scale: a brightness ramp 0..max_length and example traces at picture scale."""
    labels = ["0", _fmt(max_length / 2), f"{_fmt(max_length)} px"]
    heading = "length: colour, trace"
    pad = round(0.1 * height)
    width = max(
        round(1.9 * height),
        2 * _text_width(labels[2], text_px) + 3 * pad,
        _text_width(heading, text_px) + 2 * pad,
    )
    block = np.full((height, width, 3), _BACKGROUND, dtype=np.uint8)
    x0, x1 = pad, width - 1 - pad
    _put_text(block, heading, x0, 0.04 * height, text_px)
    y0, y1 = round(0.24 * height), round(0.36 * height)
    # the picture's colours for lengths 0..max_length (x) and directions 0..180 degrees (y)
    fraction = np.linspace(0.0, 1.0, x1 - x0 + 1, dtype=np.float32)[None, :]
    hue = np.linspace(0.0, 360.0, y1 - y0, endpoint=False, dtype=np.float32)[:, None]
    colours = _hsv_to_rgb(hue, fraction)
    alpha = np.full(colours.shape[:2], _COLOUR_OPACITY, dtype=np.float32)
    block[y0:y1, x0 : x1 + 1] = _overlay(
        np.full(colours.shape[:2], _MID_GREY, np.float32), colours, alpha, fraction
    )
    cv2.rectangle(block, (x0 - 1, y0 - 1), (x1 + 1, y1), _FRAME, 1)
    ticks = [x0, 0.5 * (x0 + x1), x1]
    for x, label, align in zip(ticks, labels, ("left", "centre", "right"), strict=True):
        cv2.line(block, (round(x), y1), (round(x), y1 + max(2, pad // 2)), _FRAME, 1)
        _put_text(block, label, x, y1 + 0.09 * height, text_px, align=align)
    # example traces for 0, max/2 and max, drawn at the picture's scale (capped like there)
    cy = 0.78 * height
    lengths = np.array([0.0, max_length / 2, max_length]) * zoom
    centres = np.array([[x, cy] for x in ticks], dtype=np.float64)
    centres[0, 0] += pen.outline
    centres[2, 0] -= 0.5 * min(lengths[2], cap) + pen.outline
    vectors = np.stack([lengths, np.zeros(3)], axis=1)
    _draw_traces(block, centres, vectors, cap, pen)
    return block


def _text_block(height: int, text_px: float, lines: list[str]) -> np.ndarray:
    """Left-aligned lines of text, vertically centred."""
    pad = round(0.1 * height)
    width = max(_text_width(line, text_px) for line in lines) + 2 * pad
    block = np.full((height, width, 3), _BACKGROUND, dtype=np.uint8)
    step = 1.65 * text_px
    top = 0.5 * (height - (len(lines) - 1) * step - text_px)
    for i, line in enumerate(lines):
        _put_text(block, line, pad, top + i * step, text_px)
    return block


def _flow(blocks: list[np.ndarray], width: int) -> np.ndarray:
    """Lay equal-height blocks out left to right, wrapping into rows no wider than ``width``."""
    width = max(width, *(b.shape[1] for b in blocks))
    rows: list[list[np.ndarray]] = [[]]
    used = 0
    for b in blocks:
        if rows[-1] and used + b.shape[1] > width:
            rows.append([])
            used = 0
        rows[-1].append(b)
        used += b.shape[1]
    height = blocks[0].shape[0]
    out = np.full((height * len(rows), width, 3), _BACKGROUND, dtype=np.uint8)
    for i, row in enumerate(rows):
        x = 0
        for b in row:
            out[i * height : (i + 1) * height, x : x + b.shape[1]] = b
            x += b.shape[1]
    return out


# --------------------------------------------------------------------------------------------
# field picture
# --------------------------------------------------------------------------------------------


def _grid_positions(n_pixels: int, spacing: float) -> np.ndarray:
    """Integer pixel positions of grid points ``spacing`` apart, centred in ``n_pixels``."""
    count = max(1, math.floor(n_pixels / spacing))
    start = 0.5 * (n_pixels - 1 - (count - 1) * spacing)
    return np.clip(np.floor(start + spacing * np.arange(count) + 0.5), 0, n_pixels - 1).astype(
        np.int64
    )


def field_picture(
    image: np.ndarray,
    field: np.ndarray,
    *,
    confidence: np.ndarray | None = None,
    max_length: float | None = None,
    grid: float | None = None,
    title: str | None = None,
) -> np.ndarray:
    """Picture of a motion field over its image, with blur traces and a legend.

    The top part is the image in dimmed grey, ``g``, under the colours ``c`` of
    :func:`field_colours` (HSV value ``f = min(1, length / max_length)``) with opacity
    ``a = 0.6`` (times ``confidence`` where given): ``(1 - a f) g + a c``, i.e. the colours
    blended over the image except that the image shows through where the colour is dark, so
    still parts show the plain image and fast parts a strong colour. Over it, at the points of
    a regular grid, **blur traces**: anti-aliased segments centred on the grid point, along
    the local motion (the field's value at that pixel) and as long as the streak, ``|v|``
    pixels, with a dark outline and a light core so they read on any background. A trace
    that, outline included, would span more than ``0.9 * grid`` is shortened to that and drawn
    with end ticks and an amber core (white otherwise), so neighbours never touch; the legend
    gives the cap in pixels. Motion under a pixel draws a dot. Under the image, a legend
    (wrapped to the picture's
    width, which it widens only if the image is very narrow): the colour wheel (hue = doubled
    direction, so opposite rim traces, which are parallel, share a colour; value = length),
    a length scale from 0 to ``max_length`` px with example traces drawn at the picture's
    scale, and the maximum and median length.

    Images with a shorter side under 256 px are enlarged by an integer factor
    ``z = ceil(256 / min(H, W))`` (at most 16, nearest neighbour) before drawing; traces are
    then ``z |v|`` display pixels long. Line widths, fonts and the legend grow with the
    picture size.

    Args:
        image: ``(H, W)``, ``(H, W, 1)`` or ``(H, W, 3)`` image, float in ``[0, 1]`` or uint8.
        field: float ``(H, W, 2)`` motion field ``(dx, dy)`` in pixels, ``y`` down.
        confidence: Optional ``(H, W)`` confidence in ``[0, 1]`` (clipped): the opacity of the
            colours is scaled by it.
        max_length: Length in pixels at full colour and at the end of the scale.
            Default: the field's 99th-percentile length, at least 1 px.
        grid: Spacing of the traces in image pixels. Default: ``max(24, min(H, W) / 16)``
            display pixels, divided by the enlargement ``z``.
        title: Optional first line of the legend text.

    Returns:
        uint8 RGB ``(H2, W2, 3)`` picture with ``H2 > z H`` and ``W2 >= z W``.

    Raises:
        ValueError: bad shapes (``field`` or ``confidence`` not matching the image), values
            that are not finite, ``max_length`` or ``grid`` not ``> 0``.
    """
    grey = _grey(image)
    f = _check_field(field)
    h, w = grey.shape
    if f.shape[:2] != (h, w):
        raise ValueError(
            f"field has shape {f.shape[:2]} (H, W) but the image has {(h, w)}; "
            "they must be the same size"
        )
    alpha = np.full((h, w), _COLOUR_OPACITY, dtype=np.float32)
    if confidence is not None:
        conf = np.asarray(confidence)
        if conf.ndim == 3 and conf.shape[2] == 1:
            conf = conf[..., 0]
        if conf.shape != (h, w):
            raise ValueError(f"confidence must have shape {(h, w)} (H, W), got {conf.shape}")
        alpha *= _to_unit(conf, "confidence")
    max_length = _check_positive(max_length, "max_length")
    grid = _check_positive(grid, "grid")

    length, _ = to_polar(f)
    if max_length is None:
        max_length = _default_max_length(length)
    colours = field_colours(f, max_length=max_length)
    picture = _overlay(_DIM_OFFSET + _DIM_GAIN * grey, colours, alpha, length / max_length)

    zoom = min(_MAX_ZOOM, math.ceil(_MIN_DISPLAY / min(h, w))) if min(h, w) < _MIN_DISPLAY else 1
    if zoom > 1:
        picture = cv2.resize(picture, (w * zoom, h * zoom), interpolation=cv2.INTER_NEAREST)
    hd, wd = picture.shape[:2]
    spacing = grid * zoom if grid is not None else max(24.0, min(hd, wd) / 16)
    pen = _Pen.for_spacing(spacing)
    cap = max(1.0, _CAP * spacing - (pen.outline - pen.core))  # outlines stay apart

    ys = _grid_positions(h, spacing / zoom)
    xs = _grid_positions(w, spacing / zoom)
    gy, gx = np.meshgrid(ys, xs, indexing="ij")
    centres = (np.stack([gx.ravel(), gy.ravel()], axis=1) + 0.5) * zoom - 0.5
    vectors = f[gy.ravel(), gx.ravel()].astype(np.float64) * zoom
    _draw_traces(picture, centres, vectors, cap, pen)

    legend_h = max(110, round(0.12 * max(hd, wd)))
    text_px = 0.1 * legend_h
    lines = [title] if title else []
    lines += [
        f"length: max {_fmt(float(length.max()))}, median {_fmt(float(np.median(length)))} px",
        "colour: direction (mod 180 deg)",
        f"colour strength: full at {_fmt(max_length)} px",
        f"trace = streak; amber |-|: capped at {_fmt(cap / zoom)} px",
    ]
    blocks = [
        _wheel_block(legend_h, text_px, pen),
        _scale_block(legend_h, text_px, max_length, zoom, cap, pen),
        _text_block(legend_h, text_px, lines),
    ]
    legend = _flow(blocks, wd)
    out = np.full((hd + legend.shape[0], legend.shape[1], 3), _BACKGROUND, dtype=np.uint8)
    x = (legend.shape[1] - wd) // 2
    out[:hd, x : x + wd] = picture
    out[hd:] = legend
    return out


# --------------------------------------------------------------------------------------------
# kernel picture
# --------------------------------------------------------------------------------------------


def kernel_picture(kernel: np.ndarray, *, size: int = 256, title: str | None = None) -> np.ndarray:
    """Picture of a blur kernel: inferno colours scaled to its maximum, enlarged, captioned.

    The kernel (negative values clipped to 0) is divided by its maximum, coloured with
    OpenCV's inferno map (black = 0, pale yellow = max), enlarged by nearest neighbour by the
    integer factor closest to ``size / max(kh, kw)`` (at least 1), framed, with small ticks
    on the frame at the kernel's centre row and column, and captioned ``"kernel KHxKW px"``
    (under ``title``, if given). The picture is square.

    Args:
        kernel: 2-D float array, non-negative, summing to about 1.
        size: Approximate side in pixels of the enlarged kernel (``>= 8``).
        title: Optional line over the caption.

    Returns:
        uint8 RGB ``(S, S, 3)`` picture.

    Raises:
        ValueError: ``kernel`` not a non-empty 2-D array of finite numbers, ``size < 8``.
    """
    k = np.asarray(kernel)
    if k.ndim != 2 or k.size == 0:
        raise ValueError(f"kernel must be a non-empty 2-D array, got shape {k.shape}")
    if not np.issubdtype(k.dtype, np.number) or np.iscomplexobj(k):
        raise ValueError(f"kernel must hold real numbers, got dtype {k.dtype}")
    if isinstance(size, bool) or not isinstance(size, int | np.integer) or size < 8:
        raise ValueError(f"size must be an integer >= 8, got {size!r}")
    k = np.clip(k.astype(np.float64), 0.0, None)
    if not np.all(np.isfinite(k)):
        raise ValueError("kernel has NaN or infinite values")
    kh, kw = k.shape
    peak = float(k.max())
    unit = k / peak if peak > 0 else k
    bgr = cv2.applyColorMap(np.rint(unit * 255).astype(np.uint8), cv2.COLORMAP_INFERNO)
    rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
    factor = max(1, round(size / max(kh, kw)))
    big = np.repeat(np.repeat(rgb, factor, axis=0), factor, axis=1)
    bh, bw = big.shape[:2]

    side_k = max(bh, bw)
    text_px = max(9.0, 0.05 * side_k)
    margin = max(6, round(0.06 * side_k))
    lines = ([title] if title else []) + [f"kernel {kh}x{kw} px"]
    caption_h = round((len(lines) * 1.65 + 0.3) * text_px)
    needed = max(_text_width(line, text_px) for line in lines) + 2 * margin
    side = max(side_k + 2 * margin + caption_h, needed)
    out = np.full((side, side, 3), _BACKGROUND, dtype=np.uint8)
    y0 = margin + (side_k - bh) // 2
    x0 = (side - bw) // 2
    out[y0 : y0 + bh, x0 : x0 + bw] = big
    frame = max(1, round(side_k / 256))
    cv2.rectangle(
        out, (x0 - frame, y0 - frame), (x0 + bw - 1 + frame, y0 + bh - 1 + frame), _FRAME, frame
    )
    tick = max(3, round(0.03 * side_k))
    cx = x0 + (kw // 2) * factor + factor // 2
    cy = y0 + (kh // 2) * factor + factor // 2
    cv2.line(out, (cx, y0 - frame - tick), (cx, y0 - frame - 1), _FRAME, frame)
    cv2.line(out, (cx, y0 + bh + frame), (cx, y0 + bh + frame + tick - 1), _FRAME, frame)
    cv2.line(out, (x0 - frame - tick, cy), (x0 - frame - 1, cy), _FRAME, frame)
    cv2.line(out, (x0 + bw + frame, cy), (x0 + bw + frame + tick - 1, cy), _FRAME, frame)
    top = margin + side_k + margin + 0.3 * text_px
    for i, line in enumerate(lines):
        _put_text(out, line, side / 2, top + i * 1.65 * text_px, text_px, align="centre")
    return out


# --------------------------------------------------------------------------------------------
# montage
# --------------------------------------------------------------------------------------------


def label_height(height: int) -> int:
    """Height in pixels of the label strip :func:`side_by_side` puts over panels ``height`` high."""
    return max(24, round(0.045 * height))


def side_by_side(panels: list[np.ndarray], labels: list[str], *, gap: int = 8) -> np.ndarray:
    """Put pictures next to each other, each under a label strip.

    Every panel is resized to the tallest panel's height ``Hc`` (width in proportion, rounded;
    nearest neighbour when enlarging, so kernels stay crisp, area averaging when shrinking).
    The result has height ``Hc + label_height(Hc)`` and width ``sum(widths) + gap * (n - 1)``.

    Args:
        panels: Pictures, uint8 or float in ``[0, 1]``, ``(H, W)`` or ``(H, W, 3)``.
        labels: One label per panel (may be empty strings).
        gap: Pixels of background between panels (``>= 0``).

    Returns:
        uint8 RGB montage.

    Raises:
        ValueError: no panels, a different number of labels, bad panel shapes, ``gap < 0``.
    """
    if len(panels) == 0:
        raise ValueError("side_by_side needs at least one panel")
    if len(labels) != len(panels):
        raise ValueError(f"got {len(panels)} panels but {len(labels)} labels")
    if isinstance(gap, bool) or not isinstance(gap, int | np.integer) or gap < 0:
        raise ValueError(f"gap must be an integer >= 0, got {gap!r}")
    imgs = [_rgb_uint8(p, f"panels[{i}]") for i, p in enumerate(panels)]
    hc = max(p.shape[0] for p in imgs)
    resized = []
    for p in imgs:
        ph, pw = p.shape[:2]
        nw = max(1, round(pw * hc / ph))
        if (ph, pw) != (hc, nw):
            interp = cv2.INTER_NEAREST if hc > ph else cv2.INTER_AREA
            p = cv2.resize(p, (nw, hc), interpolation=interp)
        resized.append(p)
    strip = label_height(hc)
    width = sum(p.shape[1] for p in resized) + gap * (len(resized) - 1)
    out = np.full((hc + strip, width, 3), _BACKGROUND, dtype=np.uint8)
    x = 0
    for p, label in zip(resized, labels, strict=True):
        pw = p.shape[1]
        out[strip:, x : x + pw] = p
        if label:
            px = 0.5 * strip
            fit = (pw - 8) / max(1, _text_width(label, px))
            px = max(6.0, px * min(1.0, fit))
            _put_text(out, label, x + pw / 2, 0.5 * (strip - px), px, align="centre")
        x += pw + gap
    return out
