"""Motion-network training: a tiny run on generated photos and frames, resume, config errors."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
from scenes import textured_scene

from unblur import io
from unblur.errors import ConfigError, InputError, OutputError
from unblur.models import load_weights
from unblur.train.motion import load_motion_config, train_motion
from unblur.train.motion_data import HfrClip

CONFIG = """\
task: motion
model: {in_frames: IN_FRAMES, width: 8, head: HEAD, length_bins: 4, angle_bins: 4}
data:
  data_root: ROOT
  photos: [photos]
  hfr: [frames]
  hfr_share: 0.3
  val_photos: [val]
  val_count: 3
  size: 32
  pool: 12
  mix: {max_length: 8.0, max_displacement: 8.0, scale: [1.0, 1.0]}
optim: {lr: 0.001, warmup: 2}
train: {steps: 4, batch: 2, val_every: 2, ckpt_every: 2, log_every: 1, threads: 1}
"""


@pytest.fixture(scope="module")
def data_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("motion-data")
    for folder, count in (("photos", 3), ("val", 2)):
        (root / folder).mkdir()
        for i in range(count):
            io.write_image(root / folder / f"{i}.png", textured_scene(80, 96, 3, seed=i + 10))
    (root / "frames").mkdir()
    scene = textured_scene(64, 120, 3, seed=99)
    for i in range(12):  # a camera panning 2 px a frame
        io.write_image(root / "frames" / f"{i:03d}.png", scene[:, 2 * i : 2 * i + 64])
    return root


def write_config(tmp_path: Path, root: Path, in_frames: int = 1, head: str = "classify") -> Path:
    text = CONFIG.replace("ROOT", str(root)).replace("IN_FRAMES", str(in_frames))
    path = tmp_path / "motion.yaml"
    path.write_text(text.replace("HEAD", head))
    return path


@pytest.mark.parametrize(("in_frames", "head"), [(1, "classify"), (3, "regress")])
def test_tiny_run_and_resume(tmp_path: Path, data_root: Path, in_frames: int, head: str) -> None:
    path = write_config(tmp_path, data_root, in_frames, head)
    config = dataclasses.replace(load_motion_config(path), out=str(tmp_path / "run"))
    summary = train_motion(config, config_path=path, quiet=True)
    run = tmp_path / "run"
    assert summary["steps"] == 4 and summary["stopped"] == "done"
    assert np.isfinite(summary["final_val_epe"]) and np.isfinite(summary["best_val_epe"])
    assert set(summary["final_val_sets"]) <= {"linear", "field", "still"}
    for name in ("final_ema.safetensors", "best_ema.safetensors", "summary.json", "log.csv"):
        assert (run / name).is_file(), name
    assert json.loads((run / "summary.json").read_text())["steps"] == 4
    net = config.model.build()
    load_weights(net, run / "final_ema.safetensors")  # plain, strict safetensors

    with pytest.raises(OutputError, match="--resume"):
        train_motion(config, quiet=True)
    longer = dataclasses.replace(config, train=dataclasses.replace(config.train, steps=6))
    assert train_motion(longer, resume=True, quiet=True)["steps"] == 6
    rows = (run / "log.csv").read_text().splitlines()
    assert rows[0].startswith("step,lr,loss,grad_norm,val_epe,") and rows[-1].startswith("6,")


def test_the_old_motion_checkpoint_resumes(tmp_path: Path) -> None:
    """The shipped motion checkpoints (written before the shared loop) load into it."""
    import json

    repo = Path(__file__).resolve().parents[1]
    state = json.loads((repo / "checkpoints/motion-single/ckpt/last.json").read_text())
    assert state["format"] == 1 and state["step"] > 0
    from unblur.train import loop

    config = load_motion_config(repo / "configs/motion-single.yaml")
    net = config.model.build()
    trainer_like = loop.ModelEMA(net, 0.999)
    from unblur.train.checkpoint import load_checkpoint
    from unblur.train.loop import _adamw, _param_groups

    groups, names = _param_groups(net, config.optim.weight_decay)
    loaded = load_checkpoint(
        repo / "checkpoints/motion-single/ckpt",
        model=net,
        ema=trainer_like.module,
        optimizer=_adamw(groups, config.optim),
        names=names,
    )
    assert loaded["step"] == state["step"]


def test_hfr_clip_field_follows_the_pan(data_root: Path) -> None:
    clip = HfrClip(data_root / "frames")
    _, motion = clip.window(2, 5)
    inner = motion[16:-16, 16:-16]
    # 2 px a frame over a 5-frame window: |v| = 5 * 2 = 10 px, horizontal
    assert abs(float(np.median(np.abs(inner[..., 0]))) - 10.0) < 1.5
    assert float(np.median(np.abs(inner[..., 1]))) < 1.0


def test_config_errors(tmp_path: Path, data_root: Path) -> None:
    path = write_config(tmp_path, data_root)
    text = path.read_text()
    path.write_text(text.replace("task: motion", "task: motion\nwhat: 1"))
    with pytest.raises(ConfigError, match="unknown key 'what'"):
        load_motion_config(path)
    path.write_text(text.replace("size: 32", "size: 30"))
    with pytest.raises(ConfigError, match="multiple of 16"):
        load_motion_config(path)
    path.write_text(text.replace("photos: [photos]", "photos: [nowhere]"))
    config = dataclasses.replace(load_motion_config(path), out=str(tmp_path / "r"))
    with pytest.raises(InputError, match="no such data folder"):
        train_motion(config, quiet=True)
    with pytest.raises(ConfigError, match="no such config file"):
        load_motion_config(tmp_path / "missing.yaml")


def test_shipped_motion_configs() -> None:
    repo = Path(__file__).resolve().parents[1]
    forbidden = ("kodak24", "levin09", "gopro-sample", "sun80")
    for name, in_frames in (("motion-single.yaml", 1), ("motion-frames.yaml", 3)):
        path = repo / "configs" / name
        config = load_motion_config(path)
        assert config.model.in_frames == in_frames and config.model.head == "classify"
        text = path.read_text()
        assert "unblur train" in text and "Expected metrics" in text
        used = (*config.data.photos, *config.data.hfr)
        assert not any(f in folder for f in forbidden for folder in used)
        assert not set(config.data.val_photos) & set(config.data.photos)
