"""Every registered model: shapes, finiteness, gradients; the registry; hostile weights files."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from unblur.errors import ModelError
from unblur.models import create_model, get_spec, list_models, load_weights
from unblur.models.restore_net import NAFNet

ALL_MODELS = list_models()
RESTORE_MODELS = list_models(task="restore")


def tiny(**overrides: int) -> NAFNet:
    args = {"width": 8, "enc_blocks": (1, 1), "middle_blocks": 1, "dec_blocks": (1, 1)}
    return NAFNet(**{**args, **overrides})


def perturbed(model: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """Give the zero-initialised residual scales (beta, gamma) random values."""
    gen = torch.Generator().manual_seed(seed)
    for name, p in model.named_parameters():
        if name.endswith(("beta", "gamma")):
            p.data.copy_(torch.randn(p.shape, generator=gen) * 0.1)
    return model


def save_state(model: torch.nn.Module, path: Path, prefix: str = "") -> Path:
    save_file({prefix + k: v.contiguous() for k, v in model.state_dict().items()}, str(path))
    return path


# --------------------------------------------------------------------------- registry


def test_list_models() -> None:
    assert {"nafnet-fast", "nafnet-quality"} <= set(ALL_MODELS)
    assert ALL_MODELS == sorted(ALL_MODELS)
    restore = list_models(task="restore")
    assert {"nafnet-fast", "nafnet-quality"} <= set(restore)
    assert all(get_spec(n).task == "restore" for n in restore)
    assert list_models(task="no-such-task") == []
    assert {"motion-single", "motion-frames"} <= set(list_models(task="motion"))


def test_unknown_name() -> None:
    with pytest.raises(ModelError, match=r"unknown model 'nafnet-huge'.*nafnet-fast"):
        create_model("nafnet-huge", pretrained=False)
    with pytest.raises(ModelError, match="unknown model"):
        get_spec("")


@pytest.mark.parametrize("name", ALL_MODELS)
def test_pretrained_needs_shipped_weights(name: str) -> None:
    path = get_spec(name).weights_path
    if path is not None and path.is_file():
        assert not create_model(name).training
    else:
        with pytest.raises(ModelError, match="no shipped weights"):
            create_model(name)


# --------------------------------------------------------------------------- every restore model


@pytest.mark.parametrize("name", RESTORE_MODELS)
@pytest.mark.parametrize(
    "shape", [(1, 3, 17, 23), (1, 3, 8, 8), (1, 3, 32, 200), (2, 3, 40, 56), (1, 3, 1, 1)]
)
def test_shape_and_finite(name: str, shape: tuple[int, ...]) -> None:
    model = perturbed(create_model(name, pretrained=False))
    x = torch.rand(*shape, generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        y = model(x)
    assert y.shape == x.shape
    assert torch.isfinite(y).all()


@pytest.mark.parametrize("name", RESTORE_MODELS)
def test_every_parameter_gets_a_gradient(name: str) -> None:
    # At initialisation the residual scales beta and gamma are zero, which blocks the
    # gradient of every convolution inside the blocks; give them values first (as one
    # optimiser step would), then every parameter must receive a gradient.
    torch.manual_seed(0)
    model = perturbed(create_model(name, pretrained=False)).train()
    x = torch.rand(2, 3, 32, 48)
    target = torch.rand(2, 3, 32, 48)
    torch.nn.functional.l1_loss(model(x), target).backward()
    grads = {n: p.grad for n, p in model.named_parameters()}
    dead = [n for n, g in grads.items() if g is None or not torch.isfinite(g).all() or not g.any()]
    assert dead == []


@pytest.mark.parametrize("name", RESTORE_MODELS)
def test_weights_round_trip(name: str, tmp_path: Path) -> None:
    torch.manual_seed(0)
    source = create_model(name, pretrained=False)
    for p in source.parameters():
        p.data.add_(torch.randn_like(p) * 0.01)
    path = save_state(source, tmp_path / "w.safetensors")
    target = create_model(name, pretrained=False)
    load_weights(target, path)
    for (k, a), b in zip(source.state_dict().items(), target.state_dict().values(), strict=True):
        assert torch.equal(a, b), k
    # a half-precision copy loads too (converted to the model's float32)
    half = tmp_path / "half.safetensors"
    save_file({k: v.half().contiguous() for k, v in source.state_dict().items()}, str(half))
    load_weights(target, half)
    assert next(target.parameters()).dtype == torch.float32


def test_motion_channels_variant() -> None:
    model = tiny(motion_channels=3)
    image, motion = torch.rand(2, 3, 21, 30), torch.rand(2, 3, 21, 30)
    assert model(image, motion).shape == image.shape
    with pytest.raises(ValueError, match="motion input"):
        model(image)
    with pytest.raises(ValueError, match="motion input"):
        model(image, motion[:, :2])
    with pytest.raises(ValueError, match="height and width"):
        model(image, motion[..., :20, :])


def test_bad_image_shape() -> None:
    with pytest.raises(ValueError, match=r"\(B, 3, H, W\)"):
        tiny()(torch.rand(1, 4, 16, 16))


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [
        ({"enc_blocks": (1, 1), "dec_blocks": (1,)}, "same length"),
        ({"stem_stride": 3}, "stem_stride"),
        ({"width": 7}, "even"),
    ],
)
def test_bad_architecture_arguments(kwargs: dict[str, object], needle: str) -> None:
    with pytest.raises(ValueError, match=needle):
        tiny(**kwargs)  # type: ignore[arg-type]


def test_local_pool_validation() -> None:
    model = tiny()
    with pytest.raises(ValueError, match=">= 4"):
        model.set_local_pool(2)
    model.set_local_pool(32)
    assert {b.sca.pool_size for b in model.encoders[0]} == {32}
    assert {b.sca.pool_size for b in model.middle} == {8}
    model.set_local_pool(None)
    assert {m.pool_size for m in model.modules() if hasattr(m, "pool_size")} == {None}


# --------------------------------------------------------------------------- hostile weights


def test_missing_and_truncated_files(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="no such weights file"):
        load_weights(tiny(), tmp_path / "nope.safetensors")
    good = save_state(tiny(), tmp_path / "good.safetensors")
    cut = tmp_path / "cut.safetensors"
    cut.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(ModelError, match="not a valid safetensors"):
        load_weights(tiny(), cut)
    empty = tmp_path / "empty.safetensors"
    empty.write_bytes(b"")
    with pytest.raises(ModelError, match="not a valid safetensors"):
        load_weights(tiny(), empty)


def test_wrong_shapes_and_keys(tmp_path: Path) -> None:
    wide = save_state(tiny(width=16), tmp_path / "wide.safetensors")
    with pytest.raises(ModelError, match="has shape"):
        load_weights(tiny(), wide)
    state = {k: v.contiguous() for k, v in tiny().state_dict().items()}
    extra = tmp_path / "extra.safetensors"
    save_file({**state, "stowaway": torch.zeros(1)}, str(extra))
    with pytest.raises(ModelError, match="1 unexpected"):
        load_weights(tiny(), extra)
    missing = tmp_path / "missing.safetensors"
    save_file({k: v for k, v in state.items() if k != "intro.weight"}, str(missing))
    with pytest.raises(ModelError, match=r"1 missing \(e\.g\. intro\.weight\)"):
        load_weights(tiny(), missing)
    deeper = save_state(tiny(enc_blocks=(1, 1, 1), dec_blocks=(1, 1, 1)), tmp_path / "d.st")
    with pytest.raises(ModelError, match="do not fit"):
        load_weights(tiny(), deeper)


def test_prefix_selects_a_group(tmp_path: Path) -> None:
    torch.manual_seed(1)
    raw, ema = tiny(), tiny()
    for p in ema.parameters():
        p.data.normal_()
    tensors = {f"params.{k}": v.contiguous() for k, v in raw.state_dict().items()}
    tensors |= {f"params_ema.{k}": v.contiguous() for k, v in ema.state_dict().items()}
    tensors["optim.step"] = torch.zeros(1)
    ckpt = tmp_path / "last.safetensors"
    save_file(tensors, str(ckpt))
    model = tiny()
    load_weights(model, ckpt, prefix="params_ema.")
    assert torch.equal(model.intro.weight, ema.intro.weight)
    with pytest.raises(ModelError, match="unexpected"):
        load_weights(tiny(), ckpt)  # the whole checkpoint is not a weights file


class _Payload:
    """Unpickling this creates a file: proof that a pickle was executed."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str, str]]:
        return (open, (str(self.marker), "w"))


@pytest.mark.parametrize("how", ["torch.save", "pickle"])
def test_pickles_are_never_unpickled(tmp_path: Path, how: str) -> None:
    marker = tmp_path / "pwned"
    payload = _Payload(marker)
    # the payload is real: unpickling it does create the marker
    pickle.loads(pickle.dumps(payload)).close()
    assert marker.exists()
    marker.unlink()

    path = tmp_path / "weights.safetensors"  # the name lies; the content is a pickle
    if how == "torch.save":
        torch.save({"intro.weight": payload}, path)
    else:
        path.write_bytes(pickle.dumps({"intro.weight": payload}))
    with pytest.raises(ModelError, match="not a valid safetensors"):
        load_weights(tiny(), path)
    assert not marker.exists()
