"""Graphics drawn at random for training: text, flat shapes, lines; blurred as photos are."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from unblur import blur, io
from unblur.train import data
from unblur.train.graphics import GraphicsSource, draw_graphic
from unblur.train.restoration import parse_config


def test_graphics_are_flat_areas_and_sharp_strokes() -> None:
    flat, strokes = [], []
    for seed in range(12):
        picture = draw_graphic(128, np.random.default_rng(seed))
        assert picture.shape == (128, 128, 3) and picture.dtype == np.uint8
        np.testing.assert_array_equal(picture, draw_graphic(128, np.random.default_rng(seed)))
        grey = picture.astype(np.float32).mean(2)
        gy, gx = np.gradient(grey)
        edges = np.hypot(gx, gy)
        flat.append(float((edges < 1.0).mean()))
        strokes.append(float((edges > 40).mean()))
    # mostly flat colour, with steep edges (text, shapes) on every picture
    assert np.median(flat) > 0.5
    assert min(strokes) > 0.0 and np.median(strokes) > 0.005
    assert not np.array_equal(
        draw_graphic(64, np.random.default_rng(0)), draw_graphic(64, np.random.default_rng(1))
    )


def test_graphics_source_blurs_with_the_forward_model() -> None:
    mix = data.BlurMix(kinds={"linear": 1.0}, length=(6.0, 10.0), read_noise=(0.0, 0.0))
    pair = GraphicsSource(mix).sample(64, np.random.default_rng(2))
    assert pair.blur.shape == pair.sharp.shape == (64, 64, 3)
    assert pair.info["source"] == "graphics" and pair.info["kind"] == "linear"
    kernel = pair.info["kernel"]
    expected = io.linear_to_srgb(blur.blur_image(io.srgb_to_linear(pair.sharp), kernel))
    r = kernel.shape[0] // 2
    inner = (slice(r, -r), slice(r, -r))
    np.testing.assert_allclose(pair.blur[inner], np.clip(expected, 0, 1)[inner], atol=2e-5)


def test_graphics_source_from_a_config(tmp_path: Path) -> None:
    raw = {
        "model": {"name": "nafnet-fast"},
        "data": {
            "data_root": str(tmp_path),
            "sources": [{"kind": "graphics", "weight": 0.5, "blur": {"kinds": {"shake": 1.0}}}],
        },
    }
    (spec,) = parse_config(raw).data.sources
    assert isinstance(spec, data.GraphicsSpec) and spec.weight == 0.5
    source = data.build_source(spec, tmp_path)  # no folder needed
    assert isinstance(source, GraphicsSource)
    assert source.sample(48, np.random.default_rng(0)).info["kind"] == "shake"
    raw["data"]["sources"][0]["fonts"] = "serif"
    with pytest.raises(Exception, match="fonts"):
        parse_config(raw)
