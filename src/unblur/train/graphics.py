"""Sharp graphics drawn at random: text, flat shapes and lines on plain backgrounds.

Photos are what the training sources hold, and a network trained on them alone meets a slide,
a screenshot or a book cover as something it has never seen: large flat areas, saturated
colours, thin high-contrast strokes. The project run's weights met set14's ``ppt3`` (a book
cover) under spatially varying blur with ghosts around every letter, below the blurred input
(22.0 against 24.0 dB, while the shipped weights reach 26.4; BENCHMARKS.md, session 11). Video
calls show slides, dash-cams show road signs. :func:`draw_graphic` draws such a picture, with
nothing but Pillow and its built-in scalable font (the same on every machine):

* a background: white, a light or a dark colour, or a gradient between two;
* flat shapes (rectangles, ellipses, triangles; filled or outlined) and lines in random colours;
* lines of random text, 9 to 56 px high (some bold), and paragraphs of small lines, dark on
  light or light on dark;
* drawn at twice the size and shrunk with area averaging, so that edges are anti-aliased as
  rendered graphics are.

:class:`GraphicsSource` blurs them with the same forward model as the photos
(:func:`unblur.train.data.synthesize_pair`).

Example:
    >>> import numpy as np
    >>> picture = draw_graphic(64, np.random.default_rng(0))
    >>> picture.shape, picture.dtype
    ((64, 64, 3), dtype('uint8'))
"""

from __future__ import annotations

import string
from functools import lru_cache

import cv2
import numpy as np
from PIL import Image, ImageDraw, ImageFont

from unblur.train.data import BlurMix, SourcePair, synthesize_pair

__all__ = ["GraphicsSource", "draw_graphic"]

_LETTERS = string.ascii_letters + string.digits + "  .,:-%&?!()"


@lru_cache(maxsize=64)
def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    return ImageFont.load_default(size=size)


def _colour(rng: np.random.Generator, light: bool | None = None) -> tuple[int, int, int]:
    """A random colour; ``light`` True / False keeps it bright / dark."""
    if light is None:
        return tuple(int(c) for c in rng.integers(0, 256, 3))  # type: ignore[return-value]
    lo, hi = (170, 256) if light else (0, 90)
    return tuple(int(c) for c in rng.integers(lo, hi, 3))  # type: ignore[return-value]


def _background(side: int, rng: np.random.Generator) -> tuple[Image.Image, bool]:
    """The canvas and whether it is light."""
    kind = rng.random()
    if kind < 0.45:
        return Image.new("RGB", (side, side), (255, 255, 255)), True
    if kind < 0.7:
        return Image.new("RGB", (side, side), _colour(rng, light=True)), True
    if kind < 0.85:
        return Image.new("RGB", (side, side), _colour(rng, light=False)), False
    light = bool(rng.random() < 0.5)
    a, b = np.array(_colour(rng, light)), np.array(_colour(rng, light))
    ramp = np.linspace(0.0, 1.0, side)[:, None, None]
    pixels = (a * (1 - ramp) + b * ramp).repeat(side, axis=1)
    if rng.random() < 0.5:
        pixels = pixels.transpose(1, 0, 2)
    return Image.fromarray(pixels.round().astype(np.uint8)), light


def _shapes(draw: ImageDraw.ImageDraw, side: int, rng: np.random.Generator) -> None:
    for _ in range(int(rng.integers(0, 7))):
        x0, y0 = rng.integers(-side // 4, side, 2)
        w, h = rng.integers(side // 16, side // 2, 2)
        box = [int(x0), int(y0), int(x0 + w), int(y0 + h)]
        fill = _colour(rng) if rng.random() < 0.7 else None
        outline = _colour(rng) if fill is None or rng.random() < 0.3 else None
        width = int(rng.integers(2, 12))
        kind = rng.integers(3)
        if kind == 0:
            draw.rectangle(box, fill=fill, outline=outline, width=width)
        elif kind == 1:
            draw.ellipse(box, fill=fill, outline=outline, width=width)
        else:
            corners = [(int(x), int(y)) for x, y in rng.integers(box[0], box[2] + 1, (3, 2))]
            draw.polygon(corners, fill=fill, outline=outline, width=width)
    for _ in range(int(rng.integers(0, 4))):
        ends = [int(v) for v in rng.integers(0, side, 4)]
        draw.line(ends, fill=_colour(rng), width=int(rng.integers(2, 9)))


def _text(draw: ImageDraw.ImageDraw, side: int, light: bool, rng: np.random.Generator) -> None:
    def line(x: int, y: int, size: int, colour: tuple[int, int, int], bold: int) -> None:
        words = "".join(rng.choice(list(_LETTERS), int(rng.integers(3, 40))))
        draw.text(
            (x, y), words, fill=colour, font=_font(size), stroke_width=bold, stroke_fill=colour
        )

    def colour() -> tuple[int, int, int]:
        return _colour(rng, light=not light) if rng.random() < 0.8 else _colour(rng)

    for _ in range(int(rng.integers(1, 7))):  # headings and labels, 9 to 56 px once shrunk
        size = int(rng.integers(18, 113))
        x, y = (int(v) for v in rng.integers(-size, side, 2))
        line(x, y, size, colour(), int(rng.integers(0, 3)) if rng.random() < 0.3 else 0)
    if rng.random() < 0.5:  # a paragraph: small lines one under the other
        size = int(rng.integers(18, 41))
        x, y = (int(v) for v in rng.integers(-size, side - size, 2))
        ink = colour()
        for k in range(int(rng.integers(3, 12))):
            line(x, y + round(k * size * float(rng.uniform(1.15, 1.5))), size, ink, 0)


def draw_graphic(side: int, rng: np.random.Generator) -> np.ndarray:
    """A random ``side`` x ``side`` graphic: uint8 ``(side, side, 3)`` sRGB values."""
    big = 2 * side
    canvas, light = _background(big, rng)
    draw = ImageDraw.Draw(canvas)
    _shapes(draw, big, rng)
    _text(draw, big, light, rng)
    return cv2.resize(np.asarray(canvas), (side, side), interpolation=cv2.INTER_AREA)


class GraphicsSource:
    """Random graphics (:func:`draw_graphic`) blurred by the photos' forward model.

    Args:
        mix: the blur and its effects (:class:`unblur.train.data.BlurMix`).
    """

    name = "graphics"

    def __init__(self, mix: BlurMix | None = None) -> None:
        self.mix = mix if mix is not None else BlurMix()

    def sample(self, size: int, rng: np.random.Generator) -> SourcePair:
        """A random blurred/sharp pair of ``size`` x ``size`` pixels."""
        picture = draw_graphic(size + 2 * self.mix.margin, rng)
        pair = synthesize_pair(picture, size, self.mix, rng, centre=True)
        pair.info.update(source=self.name)
        return pair
