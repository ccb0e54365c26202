"""Training of the motion networks (:class:`unblur.models.motion_net.MotionNet`).

A config (YAML, ``task: motion``) names the network, the sample mix and the loop. The run:

1. builds a pool of samples once, seeded (:mod:`unblur.motion_data`: synthetic fields on the
   training photos, plus real averaged high-frame-rate frames with flow-based fields);
2. trains with AdamW, warm-up + cosine, gradient clipping and an EMA of the weights, on
   batches drawn from the pool with random flips and transposes (which transform the field
   with the image);
3. validates on a fixed set made from other photos (median end-point error, sign-aware, at
   full resolution, with the EMA weights);
4. writes ``OUT/ckpt/last.safetensors`` (resume with ``--resume``), ``OUT/log.csv`` and, at the
   end, ``OUT/final_ema.safetensors`` and ``OUT/summary.json``.

One process; the motion networks are small enough that data, not GPUs, limit them.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import math
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
import yaml
from tqdm import tqdm

from unblur import motion
from unblur.data import derive_rng
from unblur.errors import ConfigError, InputError, UnblurError
from unblur.io import atomic_write
from unblur.models.motion_net import SCALE, MotionNet
from unblur.motion_data import (
    HfrClip,
    MotionMix,
    MotionSample,
    doubled_quarter,
    load_photos,
    synth_motion_sample,
)
from unblur.train import (
    ModelEMA,
    OptimConfig,
    _adamw,
    _param_groups,
    _parse_dataclass,
    _StopFlag,
    hardware_string,
    load_checkpoint,
    lr_at,
    save_checkpoint,
    save_weights,
)

__all__ = ["MotionConfig", "load_motion_config", "train_motion"]

_POOL_TAG, _BATCH_TAG, _VAL_TAG, _INIT_TAG = 21, 22, 23, 24


@dataclass(frozen=True)
class MotionModelConfig:
    """:class:`~unblur.models.motion_net.MotionNet` arguments."""

    in_frames: int = 1
    width: int = 24
    head: str = "regress"
    max_length: float = 40.0
    length_bins: int = 16
    angle_bins: int = 12

    def build(self) -> MotionNet:
        return MotionNet(**dataclasses.asdict(self))


@dataclass(frozen=True)
class MotionDataConfig:
    """Where samples come from.

    Attributes:
        data_root: folder the other paths are relative to.
        photos: folders of sharp training photos (keep evaluation sets out).
        hfr: folders of consecutive sharp high-frame-rate frames (real samples).
        hfr_share: fraction of the pool made of real high-frame-rate samples.
        val_photos: folders of sharp photos for the validation set.
        val_count: validation samples.
        size: sample side in pixels (a multiple of 16).
        pool: samples in the training pool.
        mix: synthetic field kinds and sensor effects.
    """

    data_root: str = "../shared/data"
    photos: tuple[str, ...] = ("bsds500-train/images", "debian-wallpaper-photos/images")
    hfr: tuple[str, ...] = ("gopro-hfr-frames/GOPR0477_11_00",)
    hfr_share: float = 0.1
    val_photos: tuple[str, ...] = ("set14/images", "set5/images")
    val_count: int = 48
    size: int = 128
    pool: int = 16000
    mix: MotionMix = field(default_factory=MotionMix)

    def __post_init__(self) -> None:
        if self.size < 32 or self.size % 16:
            raise ValueError(f"size must be a multiple of 16 and >= 32, got {self.size}")
        if not 0 <= self.hfr_share <= 1:
            raise ValueError(f"hfr_share must be in [0, 1], got {self.hfr_share}")
        if self.pool < 1 or self.val_count < 1:
            raise ValueError("pool and val_count must be >= 1")


@dataclass(frozen=True)
class MotionLoopConfig:
    """The loop: steps, batch, EMA, cadence, seed, CPU threads, time limit."""

    steps: int = 20000
    batch: int = 16
    ema_decay: float = 0.999
    val_every: int = 500
    ckpt_every: int = 500
    log_every: int = 50
    seed: int = 0
    threads: int = 0
    max_minutes: float | None = None

    def __post_init__(self) -> None:
        if min(self.steps, self.batch, self.log_every) < 1:
            raise ValueError("steps, batch and log_every must be >= 1")
        if min(self.val_every, self.ckpt_every, self.seed, self.threads) < 0:
            raise ValueError("val_every, ckpt_every, seed and threads must be >= 0")


@dataclass(frozen=True)
class MotionConfig:
    """A motion-network training run (YAML with ``task: motion``)."""

    task: str
    model: MotionModelConfig = field(default_factory=MotionModelConfig)
    data: MotionDataConfig = field(default_factory=MotionDataConfig)
    optim: OptimConfig = field(default_factory=lambda: OptimConfig(lr=1e-3, warmup=300))
    train: MotionLoopConfig = field(default_factory=MotionLoopConfig)
    out: str = "runs/motion"

    def __post_init__(self) -> None:
        if self.task != "motion":
            raise ValueError(f"task must be 'motion', got {self.task!r}")


def load_motion_config(path: Path) -> MotionConfig:
    """Read a YAML motion-training config into a :class:`MotionConfig`.

    Raises:
        ConfigError: unreadable file, bad YAML, unknown or missing keys, bad values.
    """
    try:
        raw = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError("no such config file", path) from None
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as err:
        raise ConfigError(f"cannot read config ({type(err).__name__})", path) from None
    return _parse_dataclass(MotionConfig, raw, "", Path(path))


# --------------------------------------------------------------------------------------------
# data
# --------------------------------------------------------------------------------------------


@dataclass
class _Pool:
    images: np.ndarray  # uint8 (N, S, S, 3F)
    targets: np.ndarray  # float32 (N, 2, S/4, S/4) doubled-angle block means
    kinds: list[str]


def _stack(samples: list[MotionSample]) -> _Pool:
    images = np.stack([np.concatenate(list(s.frames), axis=2) for s in samples])
    targets = np.stack([doubled_quarter(s.field) for s in samples])
    return _Pool(images, targets, [s.kind for s in samples])


def _make_samples(
    count: int,
    photos: list[np.ndarray],
    clips: list[HfrClip],
    config: MotionConfig,
    seed: int,
    tag: int,
    quiet: bool,
    what: str,
    *,
    balanced: bool = False,
) -> list[MotionSample]:
    frames = config.model.in_frames == 3
    data = config.data
    kinds = sorted(k for k, w in data.mix.kinds.items() if w > 0)
    out = []
    for i in tqdm(range(count), desc=what, unit="sample", disable=quiet, leave=False):
        rng = derive_rng(tag, seed, i)
        if clips and rng.random() < data.hfr_share:
            clip = clips[int(rng.integers(len(clips)))]
            out.append(clip.sample(data.size, rng, frames=frames))
            continue
        photo = photos[int(rng.integers(len(photos)))]
        kind = kinds[i % len(kinds)] if balanced else None
        out.append(synth_motion_sample(photo, data.size, data.mix, rng, frames=frames, kind=kind))
    return out


def _augment(
    images: torch.Tensor, targets: torch.Tensor, rng: np.random.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """A random flip/transpose of a batch; the doubled-angle targets transform with it.

    With ``m = L (cos 2a, sin 2a)`` (``a`` with ``y`` up): a horizontal or vertical flip maps
    ``a -> 180 - a`` or ``-a``, both negating ``m_y``; a transpose maps ``a -> -90 - a``,
    negating ``m_x``.
    """
    hflip, vflip, transpose = (bool(b) for b in rng.integers(0, 2, 3))
    if hflip:
        images, targets = images.flip(-1), targets.flip(-1)
        targets = targets * torch.tensor([1.0, -1.0])[:, None, None]
    if vflip:
        images, targets = images.flip(-2), targets.flip(-2)
        targets = targets * torch.tensor([1.0, -1.0])[:, None, None]
    if transpose:
        images, targets = images.transpose(-1, -2), targets.transpose(-1, -2)
        targets = targets * torch.tensor([-1.0, 1.0])[:, None, None]
    return images.contiguous(), targets.contiguous()


def motion_loss(net: MotionNet, raw: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Training loss of a head's raw output against doubled-angle targets (pixels).

    ``regress``: L1 on ``m / SCALE`` and on the length ``|m| / SCALE``, plus the Laplace
    negative log-likelihood of the (detached) error under the predicted scale, which teaches
    the confidence without pulling on the estimate. ``classify``: cross-entropy with soft
    labels.
    """
    if net.head_kind == "regress":
        t = target / SCALE
        err = (raw[:, :2] - t).abs().sum(dim=1, keepdim=True)
        length_err = (raw[:, 2:3].abs() - torch.linalg.vector_norm(t, dim=1, keepdim=True)).abs()
        log_b = raw[:, 3:4].clamp(-6, 6)
        nll = err.detach() * torch.exp(-log_b) + 2 * log_b
        return err.mean() + length_err.mean() + 0.05 * nll.mean()
    labels = net.soft_labels(target)
    return -(labels * F.log_softmax(raw, dim=1)).sum(dim=1).mean()


# --------------------------------------------------------------------------------------------
# validation
# --------------------------------------------------------------------------------------------


@torch.no_grad()
def field_errors(net: MotionNet, samples: list[MotionSample]) -> dict[str, float]:
    """Median end-point error (px) over the pixels of each kind of sample, and ``score``.

    ``score`` is the mean of the per-kind medians, so that no kind (near-still samples have
    tiny errors) dominates the choice of the best weights.
    """
    net.eval()
    errors: dict[str, list[np.ndarray]] = {}
    for sample in samples:
        x = torch.from_numpy(np.concatenate(list(sample.frames), axis=2)).float() / 255
        est, _ = net.field(x.permute(2, 0, 1)[None])
        vec = est[0].permute(1, 2, 0).numpy()
        epe = motion.endpoint_error(vec, sample.field)
        errors.setdefault(sample.kind, []).append(epe.ravel())
    scores = {k: float(np.median(np.concatenate(v))) for k, v in errors.items()}
    scores["score"] = float(np.mean(list(scores.values())))
    return scores


# --------------------------------------------------------------------------------------------
# the run
# --------------------------------------------------------------------------------------------


def train_motion(
    config: MotionConfig,
    *,
    config_path: Path | None = None,
    resume: bool = False,
    quiet: bool = False,
    stop_at: int | None = None,
) -> dict[str, Any]:
    """Train a motion network (see the module docstring); returns the summary.

    Raises:
        UnblurError: missing data, an existing run without ``resume``, an unreadable
            checkpoint, divergence.
    """
    out = Path(config.out)
    ckpt_dir = out / "ckpt"
    if (ckpt_dir / "last.safetensors").exists() and not resume:
        raise InputError("a run already exists here; pass --resume to continue it", out)
    if resume and not (ckpt_dir / "last.safetensors").exists():
        raise InputError("nothing to resume (no ckpt/last.safetensors)", out)
    loop = config.train
    threads = torch.get_num_threads()
    if loop.threads:
        torch.set_num_threads(loop.threads)
    try:
        return _run(config, config_path, resume, quiet, stop_at, out, ckpt_dir)
    finally:
        torch.set_num_threads(threads)


def _folders(root: Path, names: tuple[str, ...]) -> list[Path]:
    folders = [root / n for n in names]
    for folder in folders:
        if not folder.is_dir():
            raise InputError("no such data folder", folder)
    return folders


def _run(
    config: MotionConfig,
    config_path: Path | None,
    resume: bool,
    quiet: bool,
    stop_at: int | None,
    out: Path,
    ckpt_dir: Path,
) -> dict[str, Any]:
    loop, data = config.train, config.data
    root = Path(data.data_root)
    photos = load_photos(_folders(root, data.photos), data.size)
    val_photos = load_photos(_folders(root, data.val_photos), data.size)
    if not photos or not val_photos:
        raise InputError(f"no photos of at least {data.size} px found", root)
    clips = [HfrClip(f) for f in _folders(root, data.hfr)] if data.hfr_share > 0 else []
    pool = _stack(
        _make_samples(data.pool, photos, clips, config, loop.seed, _POOL_TAG, quiet, "pool")
    )
    no_clip_config = dataclasses.replace(config, data=dataclasses.replace(data, hfr_share=0.0))
    val = _make_samples(
        data.val_count,
        val_photos,
        [],
        no_clip_config,
        loop.seed,
        _VAL_TAG,
        quiet,
        "val",
        balanced=True,
    )

    torch.manual_seed(int(derive_rng(_INIT_TAG, loop.seed).integers(2**31)))
    net = config.model.build()
    ema = ModelEMA(net, loop.ema_decay)
    groups, names = _param_groups(net, config.optim.weight_decay)
    optimizer = _adamw(groups, config.optim)
    step, best, elapsed_before = 0, math.inf, 0.0
    if resume:
        state = load_checkpoint(
            ckpt_dir, model=net, ema=ema.module, optimizer=optimizer, names=names
        )
        step, best = int(state["step"]), float(state.get("best_epe", math.inf))
        elapsed_before = float(state.get("seconds", 0.0))
    out.mkdir(parents=True, exist_ok=True)
    if config_path is not None:
        (out / "config.yaml").write_text(Path(config_path).read_text(encoding="utf-8"))
    log_path = out / "log.csv"
    new_log = not log_path.exists() or not resume
    log_file = log_path.open("w" if new_log else "a", newline="")
    writer = csv.writer(log_file)
    if new_log:
        writer.writerow(["step", "loss", "lr", "val_epe", "seconds"])

    stop = _StopFlag()
    stop.install()
    start = time.monotonic()
    target = loop.steps if stop_at is None else min(loop.steps, stop_at)
    bar = tqdm(total=target, initial=step, desc="train", unit="step", disable=quiet)
    running, val_epe, reason = 0.0, None, "done"

    def checkpoint() -> None:
        state = {
            "format": 1,
            "step": step,
            "best_epe": best,
            "seconds": elapsed_before + time.monotonic() - start,
        }
        save_checkpoint(
            ckpt_dir, model=net, ema=ema.module, optimizer=optimizer, names=names, state=state
        )

    try:
        while step < target:
            rng = derive_rng(_BATCH_TAG, loop.seed, step)
            idx = rng.integers(0, len(pool.kinds), loop.batch)
            images = torch.from_numpy(pool.images[idx]).permute(0, 3, 1, 2).float() / 255
            targets = torch.from_numpy(pool.targets[idx])
            images, targets = _augment(images, targets, rng)
            net.train()
            for group in optimizer.param_groups:
                group["lr"] = lr_at(step, config.optim, loop.steps)
            loss = motion_loss(net, net(images), targets)
            if not torch.isfinite(loss):
                raise UnblurError(f"training diverged at step {step} (loss {loss.item()})")
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if config.optim.grad_clip:
                torch.nn.utils.clip_grad_norm_(net.parameters(), config.optim.grad_clip)
            optimizer.step()
            step += 1
            ema.update(net, step)
            running += loss.item()
            val_epe = None
            if (loop.val_every and step % loop.val_every == 0) or step == target:
                val_epe = field_errors(ema.module, val)["score"]
                if val_epe < best:
                    best = val_epe
                    save_weights(out / "best_ema.safetensors", ema.module, {"step": str(step)})
            if step % loop.log_every == 0 or val_epe is not None:
                seconds = elapsed_before + time.monotonic() - start
                n = loop.log_every if step % loop.log_every == 0 else 1
                writer.writerow(
                    [
                        step,
                        f"{running / n:.5f}",
                        f"{optimizer.param_groups[0]['lr']:.3g}",
                        "" if val_epe is None else f"{val_epe:.4f}",
                        f"{seconds:.1f}",
                    ]
                )
                log_file.flush()
                bar.set_postfix(loss=f"{running / n:.4f}", epe=f"{best:.2f}")
                running = 0.0
            bar.update(1)
            if loop.ckpt_every and step % loop.ckpt_every == 0:
                checkpoint()
            if stop.signum is not None:
                reason = "signal"
                break
            minutes = (time.monotonic() - start) / 60
            if loop.max_minutes is not None and minutes >= loop.max_minutes:
                reason = "time"
                break
        else:
            reason = "done" if step >= loop.steps else "stop_at"
        checkpoint()
    finally:
        bar.close()
        log_file.close()
        stop.restore()

    scores = field_errors(ema.module, val)
    save_weights(out / "final_ema.safetensors", ema.module, {"step": str(step)})
    summary = {
        "steps": step,
        "target_steps": loop.steps,
        "stopped": reason,
        "val_epe": scores,
        "best_val_epe": best,
        "seconds": elapsed_before + time.monotonic() - start,
        "hardware": hardware_string(torch.device("cpu"), 1),
        "params": sum(p.numel() for p in net.parameters()),
        "config": str(config_path) if config_path else None,
    }
    text = json.dumps(summary, indent=2)
    atomic_write(out / "summary.json", lambda tmp: tmp.write_text(text + "\n"))
    if not quiet:
        print(f"unblur train: motion val EPE {scores}", file=sys.stderr)
    return summary
