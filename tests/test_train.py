"""Training: configs, losses, schedule, the loop, checkpoints, exact resume, DDP and the CLI.

Every run here is a tiny NAFNet (width 8, two levels) on 32 px crops of generated photos, a
few steps long, on one CPU thread.
"""

from __future__ import annotations

import itertools
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import yaml
from safetensors import safe_open
from safetensors.torch import load_file, save_file
from scenes import textured_scene

from unblur import io
from unblur.cli import main
from unblur.errors import ConfigError, InputError, OutputError
from unblur.models import load_weights
from unblur.models.restore_net import NAFNet
from unblur.train import checkpoint, data, loop
from unblur.train import config as train_config
from unblur.train import restoration as train

REPO = Path(__file__).resolve().parents[1]
TINY_NAFNET = {"width": 8, "enc_blocks": [1, 1], "middle_blocks": 1, "dec_blocks": [1, 1]}


def tiny_config(tmp_path: Path, **sections: dict[str, Any]) -> Path:
    """Write generated photos and a tiny training config; ``sections`` update its sections."""
    photos = tmp_path / "data" / "photos"
    if not photos.exists():
        photos.mkdir(parents=True)
        for i in range(4):
            io.write_image(photos / f"p{i}.png", textured_scene(72, 80, 3, seed=i))
    raw: dict[str, Any] = {
        "model": {"nafnet": TINY_NAFNET},
        "data": {
            "data_root": str(tmp_path / "data"),
            "sources": [
                {
                    "kind": "synthetic",
                    "path": "photos",
                    "blur": {"kinds": {"linear": 1, "shake": 1}, "length": [3, 9]},
                }
            ],
            "pool_size": 12,
            "pool_crop": 48,
            "patch": 32,
            "batch": 4,
            "refresh_every": 3,
            "refresh_fraction": 0.25,
            "workers": 1,
            "val": {"sets": [{"name": "syn", "kind": "synthetic", "path": "photos", "crop": 48}]},
        },
        "optim": {"lr": 2e-3, "warmup": 2, "grad_clip": 1.0},
        "loss": {"psnr": 1.0, "fft": 0.05},
        "train": {"steps": 8, "val_every": 4, "ckpt_every": 4, "log_every": 2, "threads": 1},
        "out": str(tmp_path / "run"),
    }
    for name, values in sections.items():
        if isinstance(raw.get(name), dict):
            raw[name] = {**raw[name], **values}
        else:
            raw[name] = values
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def run_tiny(path: Path, **kwargs: Any) -> dict[str, Any]:
    config = train.load_config(path)
    out = kwargs.pop("out", None)
    steps = kwargs.pop("steps", None)
    config = train_config.with_overrides(config, out=out, steps=steps)
    return train.train(config, config_path=path, quiet=True, **kwargs)


# ------------------------------------------------------------------------------ config


def test_shipped_configs_parse() -> None:
    configs = sorted((REPO / "configs").glob("*.yaml"))
    assert {p.name for p in configs} >= {
        "nafnet-fast.yaml",
        "nafnet-quality.yaml",
        "nafnet-fast-gpu.yaml",
    }
    forbidden = ("kodak24", "levin09", "gopro-sample", "sun80")
    for path in configs:
        if "task: motion" in path.read_text():
            continue  # tests/test_motion_train.py checks those
        config = train.load_config(path)
        assert config.model.name in ("nafnet-fast", "nafnet-quality")
        text = path.read_text()
        assert "unblur train" in text and "Expected metrics" in text
        for source in config.data.sources:
            assert not any(f in source.path for f in forbidden), (path, source)
            assert "GOPR0374" not in getattr(source, "include", ())
        if all(isinstance(s, data.DeconvolvedValSpec) for s in config.data.val.sets):
            # a clean-up network (nafnet-polish): trained and validated on deconvolutions
            assert all(isinstance(s, data.DeconvolvedSpec) for s in config.data.sources), path
            continue
        assert any("GOPR0374" in getattr(s, "include", ()) for s in config.data.val.sets)


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        ({"optimm": {}}, "unknown key 'optimm'"),
        ({"optim": {"learning_rate": 1}}, "unknown key 'optim.learning_rate'"),
        ({"train": {"steps": "ten"}}, "train.steps must be an integer"),
        ({"train": {"steps": 1.5}}, "train.steps must be an integer"),
        ({"loss": {"l2": 1.0}}, "unknown key 'loss.l2'"),
        ({"loss": {"psnr": 0.0, "fft": 0.0}}, "loss: loss weights must be >= 0 and not all 0"),
        ({"optim": {"betas": [0.9]}}, "optim.betas must be a list of 2 values"),
        ({"model": {"name": "nafnet-fast", "nafnet": TINY_NAFNET}}, "exactly one of"),
        ({"model": {"nafnet": {"width": 8, "depth": 3}}}, "unknown key 'model.nafnet.depth'"),
    ],
)
def test_config_errors_name_the_key_and_file(tmp_path: Path, edit, message) -> None:
    path = tiny_config(tmp_path, **edit)
    with pytest.raises(ConfigError) as err:
        train.load_config(path)
    assert message in str(err.value)
    assert str(path) in str(err.value) and "\n" not in str(err.value)


def test_config_source_keys_depend_on_kind(tmp_path: Path) -> None:
    raw = yaml.safe_load(tiny_config(tmp_path).read_text())
    raw["data"]["sources"][0]["include"] = ["x"]  # a pair-source option on a synthetic source
    with pytest.raises(ConfigError, match=r"unknown key 'data.sources\[0\].include'"):
        train.parse_config(raw, tmp_path / "x.yaml")
    raw["data"]["sources"][0] = {"kind": "video", "path": "photos"}
    with pytest.raises(ConfigError, match=r"data.sources\[0\].kind must be one of"):
        train.parse_config(raw)
    raw["data"]["sources"][0] = {"kind": "pairs", "path": "p", "include": ["GOPR0477"]}
    config = train.parse_config(raw)
    assert config.data.sources[0] == data.PairSpec(path="p", include=("GOPR0477",))


def test_config_reads_exponents_without_a_dot(tmp_path: Path) -> None:
    path = tiny_config(tmp_path)
    path.write_text(path.read_text().replace("lr: 0.002", "lr: 2e-3"))
    assert train.load_config(path).optim.lr == 2e-3


def test_config_yaml_and_file_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such config file"):
        train.load_config(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("model: [1, 2\n")
    with pytest.raises(ConfigError, match="invalid YAML at line 2"):
        train.load_config(bad)
    bad.write_text("- 1\n")
    with pytest.raises(ConfigError, match="must be a mapping"):
        train.load_config(bad)


# ------------------------------------------------------------------------------ pieces


def test_lr_schedule_warms_up_then_follows_a_cosine() -> None:
    optim = train_config.OptimConfig(lr=1e-3, warmup=10, min_lr=1e-6)
    lrs = [loop.lr_at(s, optim, 100) for s in range(100)]
    assert lrs[0] == pytest.approx(1e-4) and lrs[9] == pytest.approx(1e-3)
    assert lrs[10] == pytest.approx(1e-3) and lrs[99] == pytest.approx(1e-6)
    assert all(a >= b for a, b in itertools.pairwise(lrs[10:]))
    assert lrs[10 + 89 // 2] == pytest.approx((1e-3 + 1e-6) / 2, rel=0.05)


def test_losses() -> None:
    gen = torch.Generator().manual_seed(0)
    a, b = torch.rand(2, 3, 8, 8, generator=gen), torch.rand(2, 3, 8, 8, generator=gen)
    mse = (a - b).pow(2).mean(dim=(1, 2, 3))
    assert float(train.psnr_loss(a, b)) == pytest.approx(float((10 * torch.log10(mse)).mean()))
    assert float(train.fft_loss(a, a)) == 0.0 and float(train.fft_loss(a, b)) > 0
    assert float(train.charbonnier_loss(a, a, eps=1e-3)) == pytest.approx(1e-3)
    total = train.RestorationLoss(train.LossConfig(psnr=1.0, fft=0.5))(a, b)
    assert float(total) == pytest.approx(
        float(train.psnr_loss(a, b) + 0.5 * train.fft_loss(a, b)), rel=1e-6
    )


def test_ema_follows_the_weights() -> None:
    model = torch.nn.Linear(2, 2)
    ema = loop.ModelEMA(model, decay=0.5)
    with torch.no_grad():
        model.weight.add_(1.0)
    before = ema.module.weight.clone()
    ema.update(model, 1)  # decay min(0.5, 2 / 11): moves 9/11 of the way
    expected = before + (model.weight - before) * (1 - 2 / 11)
    torch.testing.assert_close(ema.module.weight, expected)
    assert not ema.module.weight.requires_grad


# ------------------------------------------------------------------------------ training


def fixed_batch_loss(weights: dict[str, torch.Tensor], batch: tuple[torch.Tensor, ...]) -> float:
    model = NAFNet(width=8, enc_blocks=(1, 1), middle_blocks=1, dec_blocks=(1, 1))
    model.load_state_dict(weights)
    with torch.no_grad():
        return float(train.psnr_loss(model(batch[0]), batch[1]))


def test_training_lowers_the_loss_and_writes_safetensors(tmp_path: Path) -> None:
    path = tiny_config(tmp_path, train={"steps": 30, "val_every": 10, "ckpt_every": 10})
    summary = run_tiny(path)
    out = tmp_path / "run"
    assert summary["steps"] == 30 and summary["stopped"] == "done"
    assert summary["final_val_psnr"] is not None and summary["input_val_psnr"] is not None
    assert json.loads((out / "summary.json").read_text()) == summary

    # the loss on a fixed batch went down from the seeded initial weights
    torch.manual_seed(0)
    initial = NAFNet(width=8, enc_blocks=(1, 1), middle_blocks=1, dec_blocks=(1, 1)).state_dict()
    ckpt = load_file(out / "ckpt" / "last.safetensors")
    params = {k.removeprefix("params."): v for k, v in ckpt.items() if k.startswith("params.")}
    pool = data.PairPool(
        [data.SyntheticSource(tmp_path / "data" / "photos")], [1.0], size=8, crop=32, seed=99
    )
    pool.build()
    batch = pool.sample_batch(8, 32, np.random.default_rng(0), augment=False)
    assert fixed_batch_loss(params, batch) < fixed_batch_loss(initial, batch) - 1.0

    # every weights file is safetensors: params, params_ema and optim groups, stable names
    prefixes = {k.split(".")[0] for k in ckpt}
    assert prefixes == {"params", "params_ema", "optim"}
    assert "optim.intro.weight.exp_avg_sq" in ckpt and "optim.intro.weight.step" in ckpt
    with safe_open(str(out / "ckpt" / "last.safetensors"), "pt") as f:
        state = json.loads(f.metadata()["unblur_state"])
    assert state == json.loads((out / "ckpt" / "last.json").read_text())
    assert state["step"] == 30 and state["pool"]["refreshes"] == 9 and state["pool"]["pending"]

    # final_ema holds the EMA weights (not the raw ones) and loads into a fresh model
    final = load_file(out / "final_ema.safetensors")
    ema = {k.removeprefix("params_ema."): v for k, v in ckpt.items() if k.startswith("params_ema.")}
    assert final.keys() == ema.keys() == params.keys()
    assert all(torch.equal(final[k], ema[k]) for k in final)
    assert any(not torch.equal(final[k], params[k]) for k in final)
    model = NAFNet(width=8, enc_blocks=(1, 1), middle_blocks=1, dec_blocks=(1, 1))
    load_weights(model, out / "final_ema.safetensors")
    load_weights(model, out / "best_ema.safetensors")
    # the weights and the state say how they were validated, for inference to do the same
    assert state["local_pool"] == "global"  # val.local_pool 0: global pooling
    for name in ("final_ema.safetensors", "best_ema.safetensors"):
        with safe_open(str(out / name), "pt") as f:
            assert f.metadata()["local_pool"] == "global"

    rows = (out / "log.csv").read_text().splitlines()
    assert rows[0].startswith("step,lr,loss,grad_norm,val_psnr,val_gain,sec_per_step,wall")
    assert rows[-1].startswith("30,") and len(rows) == 1 + 15
    assert yaml.safe_load((out / "config.yaml").read_text())["train"]["steps"] == 30


def test_resume_is_bit_exact(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tiny_config(tmp_path)
    straight = run_tiny(path, out=tmp_path / "straight")
    first = run_tiny(path, out=tmp_path / "split", stop_at=4)
    assert first["steps"] == 4 and first["stopped"] == "stop_at"
    # the second half also exercises the split checkpoint (optimizer state in its own file)
    monkeypatch.setattr(checkpoint, "CHECKPOINT_LIMIT_BYTES", 1)
    second = run_tiny(path, out=tmp_path / "split", resume=True)
    assert second["steps"] == straight["steps"] == 8
    assert sorted(p.name for p in (tmp_path / "split" / "ckpt").iterdir()) == [
        "last.json",
        "last.safetensors",
        "optim-00000008.safetensors",
    ]
    a = load_file(tmp_path / "straight" / "ckpt" / "last.safetensors")
    b = load_file(tmp_path / "split" / "ckpt" / "last.safetensors")
    b |= load_file(tmp_path / "split" / "ckpt" / "optim-00000008.safetensors")
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a), [k for k in a if not torch.equal(a[k], b[k])]
    assert second["final_val_psnr"] == straight["final_val_psnr"]
    steps = [
        line.split(",")[0] for line in (tmp_path / "split" / "log.csv").read_text().splitlines()
    ]
    assert steps == ["step", "2", "4", "6", "8"]


def test_slim_checkpoint_resumes_as_a_warm_restart(tmp_path: Path) -> None:
    path = tiny_config(tmp_path)
    run_tiny(path, out=tmp_path / "run", stop_at=4)
    ckpt = tmp_path / "run" / "ckpt"
    full = load_file(ckpt / "last.safetensors")
    before, after = checkpoint.slim(ckpt)
    assert after < before / 2
    slimmed = load_file(ckpt / "last.safetensors")
    assert set(slimmed) == {k for k in full if k.startswith("params_ema.")}
    state = json.loads((ckpt / "last.json").read_text())
    assert state["slim"] is True and state["step"] == 4
    second = run_tiny(path, out=tmp_path / "run", resume=True)
    assert second["steps"] == 8 and second["stopped"] == "done"
    steps = [line.split(",")[0] for line in (tmp_path / "run" / "log.csv").read_text().split()]
    assert steps[0] == "step" and steps[-1] == "8"
    with pytest.raises(InputError, match="not a valid safetensors"):
        (tmp_path / "bad").mkdir()
        (tmp_path / "bad" / "last.safetensors").write_bytes(b"nope")
        checkpoint.slim(tmp_path / "bad")


def _run_to_step_4(tmp_path: Path) -> tuple[Path, Path, dict[str, torch.Tensor]]:
    """A tiny run stopped at step 4: its config, its checkpoint folder and its EMA weights."""
    path = tiny_config(tmp_path)
    run_tiny(path, out=tmp_path / "run", stop_at=4)
    ckpt = tmp_path / "run" / "ckpt"
    ema = {
        k[len("params_ema.") :]: v
        for k, v in load_file(ckpt / "last.safetensors").items()
        if k.startswith("params_ema.")
    }
    return path, ckpt, ema


def test_slim_checkpoint_can_refer_to_the_shipped_weights(tmp_path: Path) -> None:
    path, ckpt, ema = _run_to_step_4(tmp_path)
    shipped = tmp_path / "shipped.safetensors"
    save_file(ema, shipped)
    other = tmp_path / "other.safetensors"
    save_file({k: v + 1 for k, v in ema.items()}, other)
    with pytest.raises(InputError, match="not this checkpoint's EMA weights"):
        checkpoint.slim(ckpt, same_as=other)
    before, after = checkpoint.slim(ckpt, same_as=shipped)
    assert after < 4096 < before
    assert load_file(ckpt / "last.safetensors") == {}
    state = json.loads((ckpt / "last.json").read_text())
    assert state["ema_file"] == "../../shipped.safetensors" and state["slim"] is True
    assert state["ema_sha256"] == checkpoint.tensors_sha256(ema)
    # slimmed again (the stop script after a ship), a reference stays one: no tensors written
    _, again = checkpoint.slim(ckpt)
    assert again < 4096 and load_file(ckpt / "last.safetensors") == {}
    assert json.loads((ckpt / "last.json").read_text()) == state
    second = run_tiny(path, out=tmp_path / "run", resume=True)
    assert second["steps"] == 8 and second["stopped"] == "done"
    # a reference checkpoint whose weights file changed is refused, not silently resumed
    checkpoint.slim(ckpt)  # back to the tensors (step 8), then refer to a file ...
    ema8 = {k[len("params_ema.") :]: v for k, v in load_file(ckpt / "last.safetensors").items()}
    save_file(ema8, shipped)
    checkpoint.slim(ckpt, same_as=shipped)
    save_file(ema, shipped)  # ... that is then replaced
    with pytest.raises(InputError, match="have changed"):
        run_tiny(path, out=tmp_path / "run", resume=True, steps=10)


def test_slim_checkpoint_can_restart_from_other_weights(tmp_path: Path) -> None:
    """restart_from: the run goes on from weights that are not its own EMA (e.g. shipped
    weights averaged from it): the checkpoint refers to them, and resuming starts from them."""
    path, ckpt, ema = _run_to_step_4(tmp_path)
    other = tmp_path / "mean.safetensors"
    save_file({k: v * 0.5 for k, v in ema.items()}, other)
    wrong = tmp_path / "wrong.safetensors"
    save_file({next(iter(ema)): torch.zeros(2)}, wrong)
    with pytest.raises(InputError, match="architecture"):
        checkpoint.slim(ckpt, restart_from=wrong)
    with pytest.raises(InputError, match="not both"):
        checkpoint.slim(ckpt, same_as=other, restart_from=other)
    before, after = checkpoint.slim(ckpt, restart_from=other)
    assert after < 4096 < before
    state = json.loads((ckpt / "last.json").read_text())
    assert state["ema_file"] == "../../mean.safetensors" and state["step"] == 4
    assert state["ema_sha256"] == checkpoint.tensors_sha256(load_file(other))
    second = run_tiny(path, out=tmp_path / "run", resume=True)
    assert second["steps"] == 8 and second["stopped"] == "done"


def test_a_forked_run_goes_on_from_the_same_state(tmp_path: Path) -> None:
    """fork copies the checkpoint and log; a reference to shipped weights still resolves from a
    folder at another depth, and both runs then continue identically."""
    path, ckpt, ema = _run_to_step_4(tmp_path)
    save_file(ema, tmp_path / "shipped.safetensors")
    checkpoint.slim(ckpt, same_as=tmp_path / "shipped.safetensors")
    new = tmp_path / "exp" / "deeper" / "fork"
    assert checkpoint.fork(tmp_path / "run", new) == 4
    state = json.loads((new / "ckpt" / "last.json").read_text())
    assert state["ema_file"] == "../../../../shipped.safetensors"
    assert (new / "log.csv").read_bytes() == (tmp_path / "run" / "log.csv").read_bytes()
    with pytest.raises(InputError, match="already holds a checkpoint"):
        checkpoint.fork(tmp_path / "run", new)
    with pytest.raises(InputError):
        checkpoint.fork(tmp_path / "nothing", tmp_path / "other")
    a = run_tiny(path, out=tmp_path / "run", resume=True)
    b = run_tiny(path, out=new, resume=True)
    assert a["steps"] == b["steps"] == 8
    ea = load_file(tmp_path / "run" / "final_ema.safetensors")
    eb = load_file(new / "final_ema.safetensors")
    assert all(torch.equal(ea[k], eb[k]) for k in ea)
    # the command line: one line out, one line for an error
    proc = subprocess.run(
        [sys.executable, "-m", "unblur.train.checkpoint", "fork", str(tmp_path / "run"), str(new)],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 1 and proc.stderr.count("\n") == 1
    assert "already holds a checkpoint" in proc.stderr


def test_mean_weights_averages_files_and_checkpoints(tmp_path: Path) -> None:
    """mean averages plain weights and a checkpoint's EMA weights (also one that refers to a
    weights file), keeps the first weights file's metadata, and refuses other shapes."""
    _, ckpt, ema = _run_to_step_4(tmp_path)
    a = tmp_path / "a.safetensors"
    save_file({k: v + 1 for k, v in ema.items()}, a, metadata={"local_pool": "global"})
    out = tmp_path / "mean.safetensors"
    assert checkpoint.mean_weights([a, ckpt / "last.safetensors"], out) == len(ema)
    mean = load_file(out)
    assert all(torch.allclose(mean[k], ema[k] + 0.5, atol=1e-6) for k in ema)
    with safe_open(str(out), framework="pt") as f:
        meta = f.metadata()
    assert meta["local_pool"] == "global" and meta["soup"] == "a.safetensors, last.safetensors"
    save_file(ema, tmp_path / "shipped.safetensors")
    checkpoint.slim(ckpt, same_as=tmp_path / "shipped.safetensors")
    checkpoint.mean_weights([ckpt / "last.safetensors", a, a], out)
    assert all(torch.allclose(load_file(out)[k], ema[k] + 2 / 3, atol=1e-6) for k in ema)
    # weighted: 0.3 of a (ema + 1) and 0.7 of the checkpoint (ema)
    checkpoint.mean_weights([a, ckpt / "last.safetensors"], out, shares=[0.3, 0.7])
    assert all(torch.allclose(load_file(out)[k], ema[k] + 0.3, atol=1e-6) for k in ema)
    with safe_open(str(out), framework="pt") as f:
        assert f.metadata()["soup_shares"] == "0.3, 0.7"
    for shares in ([0.5, 0.6], [0.5], [1.5, -0.5]):
        with pytest.raises(InputError, match="shares must be"):
            checkpoint.mean_weights([a, ckpt / "last.safetensors"], out, shares=shares)
    key = next(iter(ema))
    save_file({**ema, key: torch.zeros(3)}, tmp_path / "other.safetensors")
    with pytest.raises(InputError, match="differ in names or shapes"):
        checkpoint.mean_weights([a, tmp_path / "other.safetensors"], out)
    with pytest.raises(InputError, match="at least two"):
        checkpoint.mean_weights([a], out)
    # a checkpoint folder or its run folder stands for its last.safetensors
    checkpoint.mean_weights([a, ckpt], out, shares=[0.3, 0.7])
    assert all(torch.allclose(load_file(out)[k], ema[k] + 0.3, atol=1e-6) for k in ema)
    checkpoint.mean_weights([a, ckpt.parent], out, shares=[0.3, 0.7])
    assert all(torch.allclose(load_file(out)[k], ema[k] + 0.3, atol=1e-6) for k in ema)
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="without a training checkpoint"):
        checkpoint.mean_weights([a, tmp_path / "empty"], out)
    proc = subprocess.run(
        [sys.executable, "-m", "unblur.train.checkpoint", "mean", str(out), str(a), "nope.st"],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 1 and proc.stderr.count("\n") == 1
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "unblur.train.checkpoint",
            "mean",
            str(out),
            str(a),
            str(a),
            "--shares",
            "0.25",
            "0.75",
        ],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0 and proc.stdout.count("\n") == 1
    assert all(torch.allclose(load_file(out)[k], ema[k] + 1, atol=1e-6) for k in ema)


def test_runs_are_not_overwritten_and_resume_needs_a_checkpoint(tmp_path: Path) -> None:
    path = tiny_config(tmp_path, train={"steps": 2, "val_every": 0, "ckpt_every": 0})
    with pytest.raises(InputError, match="nothing to resume"):
        run_tiny(path, resume=True)
    run_tiny(path)
    with pytest.raises(OutputError, match="pass --resume"):
        run_tiny(path)


def test_time_budget_stops_cleanly(tmp_path: Path) -> None:
    path = tiny_config(tmp_path, train={"steps": 1000, "max_minutes": 1e-6})
    summary = run_tiny(path)
    assert summary["stopped"] == "time budget" and summary["steps"] == 0
    assert (tmp_path / "run" / "final_ema.safetensors").is_file()
    assert (tmp_path / "run" / "ckpt" / "last.safetensors").is_file()


def test_training_leaves_global_torch_state_alone(tmp_path: Path) -> None:
    threads = torch.get_num_threads()
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    run_tiny(tiny_config(tmp_path, train={"steps": 1, "threads": 1}))
    assert torch.get_num_threads() == threads
    assert torch.equal(torch.rand(3), expected)


def test_model_init_weights(tmp_path: Path) -> None:
    source = NAFNet(width=8, enc_blocks=(1, 1), middle_blocks=1, dec_blocks=(1, 1))
    with torch.no_grad():
        source.intro.weight.fill_(0.25)
    weights = tmp_path / "init.safetensors"
    checkpoint.save_weights(weights, source, {})
    config = train.ModelConfig(nafnet=train.NAFNetConfig(**TINY_NAFNET), init=str(weights))
    model = train.build_model(config)
    assert torch.equal(model.intro.weight, source.intro.weight) and model.training


def test_sigint_stops_after_a_step_with_a_checkpoint(tmp_path: Path) -> None:
    path = tiny_config(
        tmp_path, train={"steps": 100_000, "val_every": 0, "ckpt_every": 0, "log_every": 1}
    )
    env = {**os.environ, "PYTHONWARNINGS": "error"}
    env.pop("UNBLUR_DEBUG", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "unblur", "train", str(path), "--quiet"],
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    log = tmp_path / "run" / "log.csv"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and proc.poll() is None:
        if log.exists() and len(log.read_text().splitlines()) >= 3:
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "Traceback" not in err and "stopping after this step" in err
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["stopped"] == "signal" and summary["steps"] >= 2
    state = json.loads((tmp_path / "run" / "ckpt" / "last.json").read_text())
    assert state["step"] == summary["steps"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_two_process_gloo_ddp_run(tmp_path: Path) -> None:
    path = tiny_config(tmp_path, train={"steps": 4, "val_every": 2, "ckpt_every": 2, "threads": 1})
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    env.pop("UNBLUR_DEBUG", None)
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nnodes",
        "1",
        "--nproc_per_node",
        "2",
        "--master_addr",
        "127.0.0.1",
        "--master_port",
        str(free_port()),
        "-m",
        "unblur",
        "train",
        str(path),
        "--device",
        "cpu",
        "--quiet",
    ]
    proc = subprocess.run(command, capture_output=True, text=True, env=env, timeout=240)
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["steps"] == 4 and "2 process(es)" in summary["hardware"]
    state = json.loads((tmp_path / "run" / "ckpt" / "last.json").read_text())
    assert state["world_size"] == 2 and state["step"] == 4
    load_weights(
        NAFNet(width=8, enc_blocks=(1, 1), middle_blocks=1, dec_blocks=(1, 1)),
        tmp_path / "run" / "final_ema.safetensors",
    )


# ------------------------------------------------------------------------------ CLI


def cli_error(capsys: pytest.CaptureFixture[str], *args: str | Path) -> str:
    assert main(["train", *map(str, args)]) == 1
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("unblur: error:"), err
    assert "Traceback" not in err
    return lines[0]


def test_cli_errors_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert "no such config file" in cli_error(capsys, tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("train: {steps: [\n")
    assert "invalid YAML" in cli_error(capsys, bad)
    path = tiny_config(tmp_path, train={"stepz": 3})
    assert "unknown key 'train.stepz'" in cli_error(capsys, path)
    path = tiny_config(tmp_path)
    line = cli_error(capsys, path, "--data-root", tmp_path / "elsewhere", "--quiet")
    assert "no such data folder" in line and str(tmp_path / "elsewhere" / "photos") in line


def test_cli_trains_and_resumes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tiny_config(tmp_path, train={"steps": 2, "val_every": 0, "log_every": 1})
    out = tmp_path / "cli-run"
    assert main(["train", str(path), "--out", str(out), "--device", "cpu", "--steps", "2"]) == 0
    assert "unblur train: 2 of 2 steps (done)" in capsys.readouterr().err
    args = ["train", str(path), "--out", str(out), "--steps", "3", "--resume", "--quiet"]
    assert main(args) == 0
    err = capsys.readouterr().err
    assert "config differs" in err  # --steps changed the schedule: said, not fatal
    assert json.loads((out / "summary.json").read_text())["steps"] == 3


def test_cli_help_and_subprocess_error(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONWARNINGS": "error"}
    env.pop("UNBLUR_DEBUG", None)
    proc = subprocess.run(
        [sys.executable, "-m", "unblur", "train", str(tmp_path / "nope.yaml")],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines() == [
        f"unblur: error: {tmp_path / 'nope.yaml'}: no such config file"
    ]


@pytest.mark.parametrize("option", ["channels_last", "bf16"])
def test_speed_options_train_the_same_run(
    tmp_path: Path, option: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A speed option only: same config hash, nearly the same weights as the plain run (the
    weights stay float32; bf16 autocast only nudges them), and the validation (float32 on the
    CPU) scores them alike. bf16 runs here even on a CPU without native bfloat16 (emulated)."""
    monkeypatch.setattr(loop, "native_cpu_bf16", lambda: True)
    plain_path = tiny_config(tmp_path)
    plain = run_tiny(plain_path, out=tmp_path / "plain", steps=4)
    train_options = {"steps": 8, "val_every": 4, "ckpt_every": 4, "log_every": 2, "threads": 1}
    fast_path = tiny_config(tmp_path, train={**train_options, option: True})
    fast = run_tiny(fast_path, out=tmp_path / "fast", steps=4)
    assert fast["config_hash"] == plain["config_hash"]
    a = load_file(tmp_path / "plain" / "final_ema.safetensors")
    b = load_file(tmp_path / "fast" / "final_ema.safetensors")
    assert a.keys() == b.keys()
    assert all(t.dtype == torch.float32 for t in b.values())
    worst = max(float((a[k] - b[k]).abs().max()) for k in a)
    if option == "bf16":
        assert 0 < worst < 1e-2, worst  # bf16 arithmetic did run, and only nudged the weights
    else:
        assert worst < 1e-3, worst
    assert abs(fast["final_val_psnr"] - plain["final_val_psnr"]) < 0.05


def test_bf16_falls_back_to_float32_without_native_bf16(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """On a CPU without AMX or AVX512-BF16 (emulated bfloat16: a step 13x slower), a bf16
    config trains in float32, exactly as the plain run, and says so in one line."""
    monkeypatch.setattr(loop, "native_cpu_bf16", lambda: False)
    train_options = {"steps": 8, "val_every": 4, "ckpt_every": 4, "log_every": 2, "threads": 1}
    run_tiny(tiny_config(tmp_path, train=train_options), out=tmp_path / "plain", steps=4)
    capsys.readouterr()
    bf16 = tiny_config(tmp_path, train={**train_options, "bf16": True})
    run_tiny(bf16, out=tmp_path / "bf16", steps=4)
    err = capsys.readouterr().err
    assert "no native bfloat16" in err and "training in float32" in err
    a = load_file(tmp_path / "plain" / "final_ema.safetensors")
    b = load_file(tmp_path / "bf16" / "final_ema.safetensors")
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert isinstance(loop.native_cpu_bf16(), bool)
