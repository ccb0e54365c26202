"""Deblurrer and deblur(): tiling, shapes, gray, precision, devices, model loading."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import save_file
from scenes import textured_scene

from unblur.errors import ConfigError, ModelError
from unblur.models import create_model, registry
from unblur.models.restore_net import NAFNet
from unblur.restoration import network
from unblur.restoration.network import Deblurrer, deblur, tile_grid


def tiny_net(seed: int = 0, **overrides: int) -> NAFNet:
    """A small random NAFNet whose blocks do something (beta, gamma not zero)."""
    args = {"width": 8, "enc_blocks": (1, 1), "middle_blocks": 1, "dec_blocks": (1, 1)}
    torch.manual_seed(seed)
    net = NAFNet(**{**args, **overrides})
    for name, p in net.named_parameters():
        if name.endswith(("beta", "gamma")):
            p.data.normal_(0.0, 0.2)
    return net.eval()


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    return float(10 * np.log10(1.0 / max(float(np.mean((a - b) ** 2)), 1e-20)))


@pytest.fixture
def photo() -> np.ndarray:
    return textured_scene(300, 420, 3, seed=7)


# --------------------------------------------------------------------------- tiles


@pytest.mark.parametrize("length", [1, 31, 128, 129, 300, 901])
@pytest.mark.parametrize(("tile", "overlap", "multiple"), [(128, 32, 1), (128, 32, 16), (64, 0, 8)])
def test_tile_grid_covers_inside_and_on_grid(
    length: int, tile: int, overlap: int, multiple: int
) -> None:
    starts = tile_grid(length, tile, overlap, multiple)
    assert starts[0] == 0
    assert starts == sorted(set(starts))
    assert all(s % multiple == 0 for s in starts)
    ends = [min(s + tile, length) for s in starts]
    assert ends[-1] == length
    assert all(s + tile <= length for s in starts[:-1])
    for end, start in zip(ends[:-1], starts[1:], strict=True):
        assert end - start >= overlap  # neighbours overlap enough


def test_tile_grid_step_must_fit_the_grid() -> None:
    with pytest.raises(ConfigError, match="32-pixel step"):
        tile_grid(500, 64, 40, 32)


def test_tiled_matches_whole_image(photo: np.ndarray) -> None:
    net = tiny_net()
    whole = Deblurrer(net, device="cpu", tile=None, local_pool=32).restore(photo)
    calls: list[tuple[int, int]] = []
    tiled = Deblurrer(net, device="cpu", tile=128, tile_overlap=32, local_pool=32).restore(
        photo, progress=lambda done, total: calls.append((done, total))
    )
    assert np.abs(whole - photo).mean() > 0.02  # the network does change the picture
    assert np.abs(tiled - whole).max() < 5e-3
    assert psnr(tiled, whole) > 60
    assert calls == [(i, 15) for i in range(1, 16)]  # 3 rows x 5 columns of tiles


def test_tiles_off_the_grid_would_disagree(photo: np.ndarray) -> None:
    """Why tiles start on multiples of ``net.multiple``: a shifted crop differs throughout."""
    net = tiny_net()
    net.set_local_pool(32)
    x = torch.from_numpy(photo).permute(2, 0, 1)[None]
    with torch.inference_mode():
        whole = net(x)[..., 40:120, 40:120]
        on_grid = net(x[..., 8:160, 8:160])[..., 32:112, 32:112]
        off_grid = net(x[..., 6:160, 6:160])[..., 34:114, 34:114]
    assert (on_grid - whole).abs().max() < 1e-4
    assert (off_grid - whole).abs().mean() > 1e-3


@pytest.mark.parametrize(
    "shape", [(1, 1, 3), (3, 3, 3), (17, 23, 3), (40, 900, 3), (129, 65, 3), (5, 300, 1)]
)
def test_any_size_round_trips(shape: tuple[int, int, int]) -> None:
    image = np.random.default_rng(0).random(shape, dtype=np.float32)
    out = Deblurrer(tiny_net(), device="cpu", tile=64, tile_overlap=16).restore(image)
    assert out.shape == shape
    assert out.dtype == np.float32
    assert np.isfinite(out).all() and out.min() >= 0 and out.max() <= 1


def test_gray_is_the_mean_of_replicated_rgb() -> None:
    gray = textured_scene(70, 90, 1, seed=1)[:, :, np.newaxis]
    deblurrer = Deblurrer(tiny_net(), device="cpu", tile=48, tile_overlap=16)
    out = deblurrer.restore(gray)
    assert out.shape == gray.shape
    rgb = deblurrer.restore(np.repeat(gray, 3, axis=2))
    expected = np.clip(np.mean(rgb, axis=2, keepdims=True), 0, 1)
    # the mean is taken before clipping, so only clipped pixels may differ
    assert np.median(np.abs(out - expected)) < 1e-6
    assert deblurrer.restore(gray[:, :, 0]).shape == gray.shape[:2]


def test_restore_tensor_matches_restore(photo: np.ndarray) -> None:
    deblurrer = Deblurrer(tiny_net(), device="cpu", tile=128, tile_overlap=32)
    batch = torch.from_numpy(np.stack([photo, photo[::-1].copy()])).permute(0, 3, 1, 2)
    out = deblurrer.restore_tensor(batch)
    assert out.shape == batch.shape and out.dtype == torch.float32
    np.testing.assert_allclose(out[0].permute(1, 2, 0).numpy(), deblurrer.restore(photo))
    # non-contiguous input gives the same answer
    flipped = photo[:, ::-1]
    assert not flipped.flags.c_contiguous
    np.testing.assert_allclose(
        deblurrer.restore(flipped), deblurrer.restore(np.ascontiguousarray(flipped))
    )


def test_bad_images() -> None:
    deblurrer = Deblurrer(tiny_net(), device="cpu")
    with pytest.raises(ValueError, match="floating point"):
        deblurrer.restore(np.zeros((8, 8, 3), np.uint8))
    with pytest.raises(ValueError, match=r"\(H, W, 3\)"):
        deblurrer.restore(np.zeros((8, 8, 4), np.float32))
    with pytest.raises(ValueError, match=r"\(B, 3, H, W\)"):
        deblurrer.restore_tensor(torch.zeros(3, 8, 8))


# --------------------------------------------------------------------------- precision, device


def test_bf16_on_cpu_runs_close_to_fp32(photo: np.ndarray) -> None:
    net = tiny_net()
    fp32 = Deblurrer(net, device="cpu", tile=128, local_pool=64).restore(photo)
    bf16 = Deblurrer(net, device="cpu", precision="bf16", tile=128, local_pool=64).restore(photo)
    assert bf16.dtype == np.float32
    assert psnr(bf16, fp32) > 30


def test_fp16_on_cpu_is_refused() -> None:
    with pytest.raises(ConfigError, match="fp16 needs a GPU"):
        Deblurrer(tiny_net(), device="cpu", precision="fp16")
    with pytest.raises(ConfigError, match="unknown precision"):
        Deblurrer(tiny_net(), device="cpu", precision="fp8")  # type: ignore[arg-type]


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_missing_cuda_is_a_clear_error() -> None:
    with pytest.raises(ConfigError, match="CUDA is not available"):
        Deblurrer(tiny_net(), device="cuda")
    with pytest.raises(ConfigError, match="CUDA is not available"):
        network.resolve_device("cuda:1")


def test_device_names() -> None:
    assert network.resolve_device("cpu") == torch.device("cpu")
    assert network.resolve_device("auto").type in ("cpu", "cuda", "mps")
    with pytest.raises(ConfigError, match="unknown device"):
        network.resolve_device("abacus")


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [
        ({"tile": -1}, "tile must be"),
        ({"tile": 64, "tile_overlap": 64}, "smaller than the tile"),
        ({"tile_overlap": -2}, ">= 0"),
        ({"local_pool": 2}, "local_pool"),
        ({"tile": 20, "tile_overlap": 18}, "4-pixel step"),
    ],
)
def test_bad_options(kwargs: dict[str, int], needle: str) -> None:
    with pytest.raises(ConfigError, match=needle):
        Deblurrer(tiny_net(), device="cpu", **kwargs)  # type: ignore[arg-type]


def test_local_pool_is_set_on_the_module() -> None:
    net = tiny_net()
    Deblurrer(net, device="cpu", local_pool=48)
    assert net.local_pool == 48
    Deblurrer(net, device="cpu")  # "auto" keeps the module's own setting
    assert net.local_pool == 48
    Deblurrer(net, device="cpu", local_pool=None)
    assert net.local_pool is None


def test_motion_models_are_refused() -> None:
    with pytest.raises(ModelError, match="motion input"):
        Deblurrer(tiny_net(motion_channels=2), device="cpu")


def test_any_module_works() -> None:
    class Halve(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x * 0.5

    image = np.full((50, 70, 3), 0.8, np.float32)
    out = Deblurrer(Halve(), device="cpu", tile=32, tile_overlap=8).restore(image)
    np.testing.assert_allclose(out, 0.4, atol=1e-6)
    with pytest.raises(ConfigError, match="set_local_pool"):
        Deblurrer(Halve(), device="cpu", local_pool=64)


# --------------------------------------------------------------------------- named models


@pytest.fixture
def weights_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A weights folder holding a random nafnet-fast, in place of the shipped one."""
    torch.manual_seed(3)
    net = create_model("nafnet-fast", pretrained=False)
    state = {k: v.contiguous() for k, v in net.state_dict().items()}
    save_file(state, str(tmp_path / "nafnet-fast.safetensors"))
    monkeypatch.setattr(registry, "WEIGHTS_DIR", tmp_path)
    network._cached.cache_clear()
    yield tmp_path
    network._cached.cache_clear()


def test_missing_shipped_weights_name_the_file(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(registry, "WEIGHTS_DIR", tmp_path / "empty")
    with pytest.raises(ModelError, match=r"no weights file yet \(expected .*nafnet-fast"):
        Deblurrer("nafnet-fast", device="cpu")
    with pytest.raises(ModelError, match="unknown model"):
        Deblurrer("nafnet-nope", device="cpu")


def test_named_model_with_weights(weights_dir: Path) -> None:
    image = textured_scene(40, 70, 3, seed=2)
    deblurrer = Deblurrer("nafnet-fast", device="cpu")
    assert deblurrer.local_pool is None  # the registry's choice: global in each tile
    assert network.default_local_pool("nafnet-quality") == network.DEFAULT_LOCAL_POOL
    assert "nafnet-fast" in repr(deblurrer)
    # a custom weights file for the same architecture
    custom = Deblurrer("nafnet-fast", weights=weights_dir / "nafnet-fast.safetensors")
    np.testing.assert_array_equal(custom.restore(image), deblurrer.restore(image))
    bad = weights_dir / "bad.safetensors"
    bad.write_bytes(b"not safetensors at all")
    with pytest.raises(ModelError, match=r"bad\.safetensors"):
        Deblurrer("nafnet-fast", weights=bad)


def test_pooling_window_comes_from_the_weights_metadata(weights_dir: Path) -> None:
    from unblur import export
    from unblur.train.checkpoint import save_checkpoint

    net = create_model("nafnet-fast", pretrained=False)
    for written, expected in (("96", 96), ("global", None)):
        path = weights_dir / f"pool-{written}.safetensors"
        export.save_weights(path, net, "nafnet-fast", metadata={"local_pool": written})
        assert network.weights_local_pool(path) == written
        assert Deblurrer("nafnet-fast", weights=path, device="cpu").local_pool == expected
        # asked for explicitly, the caller's window wins
        assert Deblurrer("nafnet-fast", weights=path, device="cpu", local_pool=64).local_pool == 64
    # a training checkpoint keeps it in its state; the shipped file here says nothing
    ckpt = save_checkpoint(
        weights_dir / "ckpt",
        model=net,
        ema=create_model("nafnet-fast", pretrained=False),
        optimizer=torch.optim.AdamW(net.parameters()),
        names=[n for n, _ in net.named_parameters()],
        state={"step": 3, "local_pool": "128"},
    )
    assert network.weights_local_pool(ckpt) == "128"
    assert network.weights_local_pool(weights_dir / "nafnet-fast.safetensors") is None
    assert network.weights_local_pool(weights_dir / "missing.safetensors") is None
    bad = weights_dir / "pool-bad.safetensors"
    export.save_weights(bad, net, "nafnet-fast", metadata={"local_pool": "wide"})
    with pytest.raises(ModelError, match="bad 'local_pool'"):
        Deblurrer("nafnet-fast", weights=bad, device="cpu")
    assert network.parse_local_pool(network.format_local_pool(None)) is None
    assert network.parse_local_pool(network.format_local_pool(288)) == 288


def _four_flips(net: torch.nn.Module, photo: np.ndarray) -> np.ndarray:
    x = torch.from_numpy(photo).permute(2, 0, 1)[None]
    with torch.no_grad():  # the network's own output for each flip, flipped back, unclipped
        flips = [net(x.flip(d)).flip(d) for d in ((), (-1,), (-2,), (-2, -1))]
    return torch.stack(flips).mean(0).clamp(0, 1)[0].permute(1, 2, 0).numpy()


def _eight_symmetries(net: torch.nn.Module, photo: np.ndarray) -> np.ndarray:
    """The square's eight symmetries built another way: four quarter turns, each mirrored."""
    x = torch.from_numpy(photo).permute(2, 0, 1)[None]
    outs = []
    with torch.no_grad():
        for k in range(4):
            for mirror in (False, True):
                t = torch.rot90(x, k, (-2, -1))
                t = t.flip(-1) if mirror else t
                y = net(t.contiguous())
                y = y.flip(-1) if mirror else y
                outs.append(torch.rot90(y, -k, (-2, -1)))
    return torch.stack(outs).mean(0).clamp(0, 1)[0].permute(1, 2, 0).numpy()


def test_tta_averages_the_eight_turns_and_flips(photo: np.ndarray) -> None:
    net = tiny_net(seed=3)
    plain = Deblurrer(net, device="cpu", tile=None, local_pool=None)
    tta = Deblurrer(net, device="cpu", tile=None, local_pool=None, tta=True)
    assert tta.tta and "tta=True" in repr(tta)
    assert (tta.passes_for(*photo.shape[:2]), tta.passes_for(9000, 9000)) == (8, 8)
    assert plain.passes_for(*photo.shape[:2]) == 1
    eight = tta.restore(photo)
    np.testing.assert_allclose(eight, _eight_symmetries(net, photo), atol=2e-5)
    assert psnr(eight, plain.restore(photo)) < 60  # the ensemble changes the result
    assert psnr(eight, _four_flips(net, photo)) < 60  # and the turns add to the flips
    # not square: the transposed passes are restored and turned back to the picture's shape
    wide = photo[:40]
    np.testing.assert_allclose(tta.restore(wide), _eight_symmetries(net, wide), atol=2e-5)
    # tiled, the eight-pass average still agrees with the whole picture's
    tiled = Deblurrer(net, device="cpu", tile=128, tile_overlap=48, local_pool=32, tta=True)
    whole = Deblurrer(net, device="cpu", tile=None, local_pool=32, tta=True)
    assert psnr(tiled.restore(photo), whole.restore(photo)) > 45
    # gray pictures too
    gray = photo[..., 1]
    assert tta.restore(gray).shape == gray.shape


def test_tta_auto_spends_by_the_picture_size(photo: np.ndarray) -> None:
    net = tiny_net(seed=3)
    height, width = photo.shape[:2]
    always = Deblurrer(net, device="cpu", tile=None, local_pool=None, tta=True)
    never = Deblurrer(net, device="cpu", tile=None, local_pool=None, tta=False)

    def auto(limit: int) -> Deblurrer:
        return Deblurrer(
            net, device="cpu", tile=None, local_pool=None, tta="auto", tta_max_pixels=limit
        )

    # all eight up to half the limit
    eights = auto(2 * height * width)
    assert "tta='auto'" in repr(eights)
    assert eights.passes_for(height, width) == 8 and eights.passes_for(height, width + 1) == 4
    np.testing.assert_array_equal(eights.restore(photo), always.restore(photo))
    # the four flips up to the limit
    fours = auto(height * width)
    assert fours.passes_for(height, width) == 4 and fours.passes_for(height, width + 1) == 1
    np.testing.assert_allclose(fours.restore(photo), _four_flips(net, photo), atol=2e-5)
    wider = np.concatenate([photo, photo[:, :8]], axis=1)  # over the limit: one pass
    np.testing.assert_array_equal(fours.restore(wider), never.restore(wider))
    # the default limit: 1280x720 gets eight passes, full HD four, a 12-megapixel photo one
    default = Deblurrer(net, device="cpu", tta="auto")
    passes = [default.passes_for(h, w) for h, w in ((720, 1280), (1080, 1920), (3000, 4000))]
    assert passes == [8, 4, 1]
    with pytest.raises(ConfigError, match="tta must be"):
        Deblurrer(net, device="cpu", tta="yes")  # type: ignore[arg-type]


def test_deblur_caches_the_model(weights_dir: Path) -> None:
    image = textured_scene(40, 70, 3, seed=2)
    first = deblur(image, model=network.DEFAULT_MODEL, device="cpu")
    again = deblur(image, device="cpu", tile=32, tile_overlap=0)
    assert first.shape == image.shape == again.shape
    info = network._cached.cache_info()
    assert (info.misses, info.hits) == (1, 1)
