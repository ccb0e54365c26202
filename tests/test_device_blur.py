"""Pairs blurred on the training device (unblur.train.device_blur), run here on CPU tensors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from scenes import textured_scene

from unblur import blur, io
from unblur.errors import ConfigError
from unblur.train import data, device_blur
from unblur.train import restoration as train
from unblur.train.data import BlurMix

MIX = BlurMix(kinds={"shake": 1.0, "linear": 1.0}, length=(3.0, 9.0), read_noise=(0.0, 0.0))


def test_drawn_kernels_follow_the_mix() -> None:
    rng = np.random.default_rng(0)
    kernels, sigma, scale = device_blur.draw_degradations(MIX, 40, rng)
    assert len(kernels) == 40 and np.all(sigma == 0) and np.all(scale == 0)
    for k in kernels:
        assert k.ndim == 2 and k.shape[0] % 2 == 1 and k.shape[1] % 2 == 1
        assert k.sum() == pytest.approx(1.0, abs=1e-5) and k.min() >= 0
        # no kernel reaches past the region's margin
        assert max(k.shape) // 2 <= MIX.margin
    again = device_blur.draw_degradations(MIX, 40, np.random.default_rng(0))[0]
    assert all(np.array_equal(a, b) for a, b in zip(kernels, again, strict=True))
    noisy = BlurMix(kinds={"linear": 1.0}, read_noise=(0.01, 0.02), poisson_prob=1.0)
    _, sigma, scale = device_blur.draw_degradations(noisy, 20, rng)
    assert np.all((sigma >= 0.01) & (sigma <= 0.02)) and np.all(scale >= 2000)


def test_blurred_regions_match_the_numpy_forward_model() -> None:
    """Without noise, the device chain is unblur.blur's: linearise, convolve, re-encode."""
    sharp = np.clip(textured_scene(60, 60, 3, seed=3), 0, 1).astype(np.float32)
    regions = torch.from_numpy(sharp.transpose(2, 0, 1).copy())[None]
    rng = np.random.default_rng(5)
    blurred, crop = device_blur.blur_regions(regions, MIX, 32, rng)
    assert blurred.shape == crop.shape == (1, 3, 32, 32)
    kernel = device_blur.draw_degradations(MIX, 1, np.random.default_rng(5))[0][0]
    expected = io.linear_to_srgb(blur.blur_image(io.srgb_to_linear(sharp), kernel))
    centre = expected[14:46, 14:46].transpose(2, 0, 1)
    np.testing.assert_allclose(blurred[0].numpy(), centre, atol=2e-5)
    np.testing.assert_array_equal(crop[0].numpy(), sharp[14:46, 14:46].transpose(2, 0, 1))


def _config(tmp_path: Path, **source: object) -> Path:
    photos = tmp_path / "data" / "photos"
    photos.mkdir(parents=True, exist_ok=True)
    for i in range(3):
        io.write_image(photos / f"p{i}.png", textured_scene(72, 80, 3, seed=i))
    raw = {
        "model": {"nafnet": {"width": 8, "enc_blocks": [1], "middle_blocks": 1, "dec_blocks": [1]}},
        "data": {
            "data_root": str(tmp_path / "data"),
            "sources": [
                {
                    "kind": "synthetic",
                    "path": "photos",
                    "weight": 1.0,
                    "blur": {"kinds": {"linear": 1}, "length": [3, 9]},
                },
                {
                    "kind": "synthetic",
                    "path": "photos",
                    "weight": 3.0,
                    "on_device": True,
                    "blur": {"kinds": {"shake": 1, "linear": 1}, "length": [3, 9]},
                    **source,
                },
            ],
            "pool_size": 16,
            "pool_crop": 56,
            "patch": 32,
            "batch": 8,
            "refresh_every": 0,
            "workers": 1,
            "val": {"sets": []},
        },
        "train": {"steps": 3, "val_every": 0, "ckpt_every": 0, "log_every": 1, "threads": 1},
        "out": str(tmp_path / "run"),
    }
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def test_pool_sets_device_slots_apart_and_training_runs(tmp_path: Path) -> None:
    path = _config(tmp_path)
    config = train.load_config(path)
    sources = [data.build_source(s, Path(config.data.data_root)) for s in config.data.sources]
    assert sources[1].on_device and not sources[0].on_device
    pool = data.PairPool(sources, [1.0, 3.0], size=16, crop=56, seed=0, workers=1)
    pool.build()
    device_slots = pool.origin == 1
    assert 0 < device_slots.sum() < 16
    # a device slot holds its sharp crop twice; a CPU slot a blurred pair
    assert torch.equal(pool.pairs[0, device_slots], pool.pairs[1, device_slots])
    assert not torch.equal(pool.pairs[0, ~device_slots], pool.pairs[1, ~device_slots])
    region = device_blur.region_size(config.data.sources[1].blur, 32)
    blurred, _, parts = pool.sample_parts(8, 32, np.random.default_rng(1), regions={1: region})
    assert blurred.shape[0] + sum(p.shape[0] for p in parts.values()) == 8
    assert set(parts) == {1} and parts[1].shape[1:] == (3, region, region)
    # without device sources, sample_parts is sample_batch, draw for draw
    a = pool.sample_batch(8, 32, np.random.default_rng(2))
    b = pool.sample_parts(8, 32, np.random.default_rng(2))
    assert all(torch.equal(x, y) for x, y in zip(a, b[:2], strict=True)) and b[2] == {}

    task = train.RestorationTask(
        config, device=torch.device("cpu"), dist_info=train.Dist(), quiet=True
    )
    task.prepare(None)
    assert task.regions == {1: region}
    model = task.model
    first = task.loss(model, 0)
    assert torch.isfinite(first) and first.requires_grad
    assert torch.equal(first, task.loss(model, 0))  # a pure function of the step
    summary = train.train(config, config_path=path, quiet=True)
    assert summary["steps"] == 3 and summary["stopped"] == "done"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"blur": {"kinds": {"field": 1}}}, "on_device makes shake and linear blur only"),
        ({"blur": {"kinds": {"shake": 1}, "jpeg_prob": 0.5}}, "no JPEG"),
        ({"blur": {"kinds": {"shake": 1}, "length": [3, 40]}}, "pool_crop 56 is too small"),
    ],
)
def test_config_refuses_what_the_device_cannot_make(
    tmp_path: Path, change: dict[str, object], message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        train.load_config(_config(tmp_path, **change))


def test_the_gpu_config_trains_end_to_end_on_a_tiny_cpu_run(tmp_path: Path) -> None:
    """configs/nafnet-fast-gpu.yaml as shipped (its sources, on_device ones included, and its
    validation sets), on generated data laid out like gpu_data/, shrunk to a few CPU steps."""
    import dataclasses

    from unblur.train import config as train_config

    root = tmp_path / "gpu_data"
    for folder in ("bsds500-train/images", "debian-wallpaper-photos/images", "set14/images"):
        (root / folder).mkdir(parents=True)
        for i in range(2):
            io.write_image(root / folder / f"p{i}.png", textured_scene(120, 128, 3, seed=i))
    scene = np.clip(textured_scene(120, 160, 3, seed=7), 0, 1)
    frames = root / "gopro-hfr-video" / "GOPR0477_11_00"
    frames.mkdir(parents=True)
    for i in range(14):  # a camera pan, one pixel a frame
        io.write_image(frames / f"{i + 1:06d}.png", scene[:, i : i + 128])
    for kind in ("blur", "sharp"):
        (root / "gopro-frameavg" / kind).mkdir(parents=True)
        io.write_image(root / "gopro-frameavg" / kind / "GOPR0374_a.png", scene[:, :128])
    repo = Path(__file__).resolve().parents[1]
    config = train.load_config(repo / "configs" / "nafnet-fast-gpu.yaml")
    assert {i for i, s in enumerate(config.data.sources) if getattr(s, "on_device", False)}
    d = dataclasses.replace(
        config.data, pool_size=8, pool_crop=112, patch=64, batch=4, refresh_every=2, workers=1
    )
    d = dataclasses.replace(
        d,
        val=dataclasses.replace(
            d.val,
            sets=tuple(
                dataclasses.replace(s, crop=64) if hasattr(s, "blur") else s for s in d.val.sets
            ),
        ),
    )
    loop = dataclasses.replace(config.train, steps=3, val_every=3, ckpt_every=3, max_minutes=2)
    config = dataclasses.replace(config, data=d, train=loop)
    config = train_config.with_overrides(config, data_root=root, out=tmp_path / "run")
    summary = train.train(config, quiet=True)
    assert summary["steps"] == 3 and summary["stopped"] == "done"
    assert set(summary["final_val_sets"]) == {"set14_shake", "gopro0374"}
    assert (tmp_path / "run" / "final_ema.safetensors").is_file()
