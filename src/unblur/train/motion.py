"""The motion task: :class:`unblur.models.motion_net.MotionNet` learns blur motion fields.

A config (YAML, ``task: motion``) names the network, the sample mix and the loop; the shared
loop (:mod:`unblur.train.loop`: AdamW, warm-up + cosine, clipping, EMA, checkpoints, logs,
stopping, DDP) trains it, and this task brings:

1. a pool of samples made once, seeded (:mod:`unblur.train.motion_data`: synthetic fields on
   the training photos, plus real averaged high-frame-rate frames with flow-based fields);
2. batches drawn from the pool with random flips and transposes (which transform the field
   with the image) and the head's loss (:func:`motion_loss`);
3. validation on a fixed set made from other photos: median end-point error per kind of
   field (sign-aware, full resolution, EMA weights); the best weights have the lowest mean.

Files as for every task: ``OUT/ckpt/last.safetensors`` (resume with ``--resume``),
``OUT/log.csv``, ``OUT/best_ema.safetensors`` and, at the end, ``OUT/final_ema.safetensors``
and ``OUT/summary.json``.
"""

from __future__ import annotations

import dataclasses
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from unblur import motion
from unblur.errors import InputError
from unblur.models.motion_net import SCALE, MotionNet
from unblur.progress import bar as progress_bar
from unblur.train.config import OptimConfig, TrainConfig, parse_dataclass, read_yaml
from unblur.train.data import derive_rng
from unblur.train.loop import Dist, ValResult, run
from unblur.train.motion_data import (
    HfrClip,
    MotionMix,
    MotionSample,
    doubled_quarter,
    load_photos,
    synth_motion_sample,
)

__all__ = ["MotionConfig", "MotionTask", "load_motion_config", "train_motion"]

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
class MotionLoopConfig(TrainConfig):
    """The shared loop (:class:`~unblur.train.config.TrainConfig`) plus the batch size."""

    steps: int = 20000
    val_every: int = 500
    ckpt_every: int = 500
    batch: int = 16

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.batch < 1:
            raise ValueError("batch must be >= 1")


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
    return parse_dataclass(MotionConfig, read_yaml(path), Path(path))


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
    for i in progress_bar(range(count), desc=what, unit="sample", level=1, enabled=not quiet):
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
        device = next(net.parameters()).device
        est, _ = net.field(x.permute(2, 0, 1)[None].to(device))
        vec = est[0].permute(1, 2, 0).float().cpu().numpy()
        epe = motion.endpoint_error(vec, sample.field)
        errors.setdefault(sample.kind, []).append(epe.ravel())
    scores = {k: float(np.median(np.concatenate(v))) for k, v in errors.items()}
    scores["score"] = float(np.mean(list(scores.values())))
    return scores


# --------------------------------------------------------------------------------------------
# the run
# --------------------------------------------------------------------------------------------


class MotionTask:
    """Samples from a seeded pool with flips, the head's loss, median end-point error."""

    score_name = "epe"
    higher_is_better = False

    def __init__(
        self, config: MotionConfig, *, device: torch.device, dist_info: Dist, quiet: bool
    ) -> None:
        self.config, self.device, self.dist, self.quiet = config, device, dist_info, quiet
        self.extra_columns: list[str] = []
        self.val_sets = sorted(k for k, w in config.data.mix.kinds.items() if w > 0)
        torch.manual_seed(int(derive_rng(_INIT_TAG, config.train.seed).integers(2**31)))
        self.model = config.model.build().to(device)
        data = config.data
        root = Path(data.data_root)
        self.photos = load_photos(_folders(root, data.photos), data.size)
        self.val_photos = load_photos(_folders(root, data.val_photos), data.size)
        if not self.photos or not self.val_photos:
            raise InputError(f"no photos of at least {data.size} px found", root)
        self.clips = [HfrClip(f) for f in _folders(root, data.hfr)] if data.hfr_share > 0 else []
        self.pool: _Pool | None = None
        self.val: list[MotionSample] = []

    def prepare(self, resume_state: dict[str, Any] | None) -> None:
        """The pool and the validation set are pure functions of the seed: made the same
        way for a fresh run and a resumed one."""
        c, seed = self.config, self.config.train.seed + self.dist.rank
        samples = _make_samples(
            c.data.pool, self.photos, self.clips, c, seed, _POOL_TAG, self.quiet, "pool"
        )
        self.pool = _stack(samples)
        if self.dist.main:
            no_clips = dataclasses.replace(c, data=dataclasses.replace(c.data, hfr_share=0.0))
            self.val = _make_samples(
                c.data.val_count,
                self.val_photos,
                [],
                no_clips,
                c.train.seed,
                _VAL_TAG,
                self.quiet,
                "val",
                balanced=True,
            )

    def loss(self, model: nn.Module, step: int) -> torch.Tensor:
        assert self.pool is not None
        rng = derive_rng(_BATCH_TAG, self.config.train.seed, self.dist.rank, step)
        idx = rng.integers(0, len(self.pool.kinds), self.config.train.batch)
        images = torch.from_numpy(self.pool.images[idx]).permute(0, 3, 1, 2).float() / 255
        targets = torch.from_numpy(self.pool.targets[idx])
        images, targets = _augment(images, targets, rng)
        # ``model`` may be wrapped (DDP, channels-last, compiled); the head is the task's own
        return motion_loss(self.model, model(images.to(self.device)), targets.to(self.device))

    def after_step(self, step: int) -> None:
        del step  # the pool is fixed

    def validate(self, model: nn.Module) -> ValResult | None:
        if not self.val:
            return None
        scores = field_errors(model, self.val)  # type: ignore[arg-type]
        score = scores.pop("score")
        return ValResult(score=score, sets=scores)

    def state(self) -> dict[str, Any]:
        return {
            "rng": {
                "pool": "numpy default_rng([21, seed + rank, i]) for pool sample i",
                "batch": "numpy default_rng([22, seed, rank, step]) for each step's batch",
                "val": "numpy default_rng([23, seed, i]) for validation sample i",
                "init": "torch.manual_seed from default_rng([24, seed])",
                "seed": self.config.train.seed,
            }
        }

    def weights_meta(self) -> dict[str, str]:
        return {}

    def summary(self) -> dict[str, Any]:
        return {"pool_samples": 0 if self.pool is None else len(self.pool.kinds)}

    def describe(self) -> str:
        n = 0 if self.pool is None else len(self.pool.kinds)
        return f"pool of {n} samples of {self.config.data.size} px; {len(self.val)} validation"

    def close(self) -> None:
        self.pool = None


def train_motion(
    config: MotionConfig,
    *,
    config_path: Path | None = None,
    resume: bool = False,
    quiet: bool = False,
    stop_at: int | None = None,
    device: str = "cpu",
) -> dict[str, Any]:
    """Train a motion network with the shared loop (:func:`unblur.train.loop.run`); returns
    the summary.

    Raises:
        UnblurError: missing data, an existing run without ``resume``, an unreadable
            checkpoint, divergence.
    """

    def make_task(dev: torch.device, dist_info: Dist, task_quiet: bool) -> MotionTask:
        return MotionTask(config, device=dev, dist_info=dist_info, quiet=task_quiet)

    summary = run(
        make_task,
        config,
        config_path=config_path,
        resume=resume,
        device=device,
        quiet=quiet,
        stop_at=stop_at,
    )
    if summary and not quiet:
        print(f"unblur train: motion val EPE {summary.get('final_val_sets')}", file=sys.stderr)
    return summary


def _folders(root: Path, names: tuple[str, ...]) -> list[Path]:
    folders = [root / n for n in names]
    for folder in folders:
        if not folder.is_dir():
            raise InputError("no such data folder", folder)
    return folders
