"""The restoration task: NAFNet-class networks learn blurred -> sharp pairs.

A run is described by a YAML file (see ``configs/``) read into the dataclasses below with
:func:`load_config` (:mod:`unblur.train.config`: unknown keys and wrong types are one-line
:class:`~unblur.errors.ConfigError`\\ s that name the key and the file). :func:`train` runs it
with the shared loop (:mod:`unblur.train.loop`: AdamW, warm-up + cosine, EMA, checkpoints,
logs, stopping, DDP); this task brings:

* the model: a registry name or explicit :class:`~unblur.models.restore_net.NAFNet`
  arguments, optionally initialised from safetensors weights;
* the data: a pool of training pairs made once (:class:`~unblur.train.data.PairPool`) from
  synthetic, frame-averaged and real sources, every batch cut from it, a fraction remade
  every ``refresh_every`` steps;
* the loss (:class:`RestorationLoss`: PSNR, Charbonnier, FFT terms);
* validation: PSNR of the EMA weights on a fixed set, per set, and the gain over the blurred
  input.

Exact resume: every random draw is a pure function of the seed and a counter (the batch of
step ``s`` on rank ``r`` comes from ``derive_rng(TAG_BATCH, seed, r, s)``, the pool from its
seed and refresh count), the learning rate is a pure function of the step, and the
checkpoint holds the weights, the EMA weights and the AdamW moments bit for bit. So ``N``
steps in one go and ``N/2`` steps, a restart with ``--resume`` and ``N/2`` more give the same
weights, bit for bit, on the same machine and thread count. No random-generator state needs
saving; ``last.json`` records how each stream is seeded instead.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from unblur.errors import ConfigError
from unblur.train import data, device_blur
from unblur.train.config import (
    OptimConfig,
    TrainConfig,
    parse_dataclass,
    read_yaml,
)
from unblur.train.data import SourceSpec, ValSetSpec
from unblur.train.loop import Dist, ValResult, cores, run

__all__ = [
    "Config",
    "DataConfig",
    "LossConfig",
    "ModelConfig",
    "NAFNetConfig",
    "RestorationLoss",
    "RestorationTask",
    "ValConfig",
    "build_model",
    "charbonnier_loss",
    "fft_loss",
    "load_config",
    "parse_config",
    "psnr_loss",
    "train",
]


# --------------------------------------------------------------------------------------------
# configuration
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class NAFNetConfig:
    """Explicit :class:`~unblur.models.restore_net.NAFNet` arguments (e.g. tiny test models)."""

    width: int = 16
    enc_blocks: tuple[int, ...] = (1, 1, 1, 28)
    middle_blocks: int = 1
    dec_blocks: tuple[int, ...] = (1, 1, 1, 1)
    stem_stride: int = 1


@dataclass(frozen=True)
class ModelConfig:
    """Which network: a registry ``name`` or explicit ``nafnet`` arguments (exactly one).

    Attributes:
        name: a restoration model of :func:`unblur.models.list_models`.
        nafnet: explicit NAFNet arguments.
        init: safetensors weights to start from (relative to the working directory; not
            used when resuming).
    """

    name: str | None = None
    nafnet: NAFNetConfig | None = None
    init: str | None = None

    def __post_init__(self) -> None:
        if (self.name is None) == (self.nafnet is None):
            raise ValueError("give exactly one of 'name' and 'nafnet'")


@dataclass(frozen=True)
class ValConfig:
    """The fixed validation set.

    Attributes:
        seed: seed of the synthetic blur (independent of the training seed).
        sets: synthetic and real sets (:class:`~unblur.train.data.SyntheticValSpec`,
            :class:`~unblur.train.data.PairValSpec`).
        local_pool: validate with channel-attention pooling over windows of
            ``local_pool * patch`` pixels (``NAFNet.set_local_pool``); 0 (the default) for
            global pooling. The window is written into the weights' metadata, and
            inference (:class:`~unblur.restoration.network.Deblurrer`) uses it, so that the
            weights run as they were validated.
    """

    seed: int = 0
    sets: tuple[ValSetSpec, ...] = ()
    local_pool: float = 0.0

    def __post_init__(self) -> None:
        if self.seed < 0 or self.local_pool < 0:
            raise ValueError("seed and local_pool must be >= 0")


@dataclass(frozen=True)
class DataConfig:
    """Training data.

    Attributes:
        sources: where pairs come from (:class:`~unblur.train.data.SyntheticSpec`,
            :class:`~unblur.train.data.PairSpec`, :class:`~unblur.train.data.FrameSpec`); their
            paths are relative to ``data_root``.
        data_root: folder the source paths are relative to; a relative ``data_root`` is
            relative to the working directory (run from the repository root).
        pool_size: pairs kept in memory.
        pool_crop: side of each pooled pair.
        patch: side of the training crops cut from the pool (``<= pool_crop``).
        batch: crops per step and process.
        refresh_every: remake part of the pool every this many steps (0: never).
        refresh_fraction: share of the pool remade each time.
        workers: threads making pairs (0: one per core available to this process).
        val: the validation set.
    """

    sources: tuple[SourceSpec, ...]
    data_root: str = "../shared/data"
    pool_size: int = 3000
    pool_crop: int = 192
    patch: int = 128
    batch: int = 8
    refresh_every: int = 1000
    refresh_fraction: float = 0.05
    workers: int = 0
    val: ValConfig = field(default_factory=ValConfig)

    def __post_init__(self) -> None:
        if not self.sources:
            raise ValueError("sources: give at least one source")
        if any(not math.isfinite(s.weight) or s.weight < 0 for s in self.sources):
            raise ValueError("sources: weights must be >= 0")
        if sum(s.weight for s in self.sources) <= 0:
            raise ValueError("sources: the weights must not all be 0")
        if min(self.pool_size, self.pool_crop, self.patch, self.batch) < 1:
            raise ValueError("pool_size, pool_crop, patch and batch must be >= 1")
        if self.patch > self.pool_crop:
            raise ValueError(f"patch {self.patch} is larger than pool_crop {self.pool_crop}")
        if self.refresh_every < 0 or self.workers < 0:
            raise ValueError("refresh_every and workers must be >= 0")
        if not 0 < self.refresh_fraction <= 1:
            raise ValueError(f"refresh_fraction must be in (0, 1], got {self.refresh_fraction}")
        for spec in self.sources:
            if isinstance(spec, data.SyntheticSpec) and spec.on_device:
                device_blur.check_mix(spec.blur)
                need = device_blur.region_size(spec.blur, self.patch)
                if self.pool_crop < need:
                    raise ValueError(
                        f"pool_crop {self.pool_crop} is too small for on_device blur of "
                        f"{spec.path}: patch {self.patch} + twice the blur's reach needs {need}"
                    )


@dataclass(frozen=True)
class LossConfig:
    """Weights of the loss terms (0 switches a term off).

    Attributes:
        psnr: :func:`psnr_loss` (negative PSNR in dB, as NAFNet trains).
        charbonnier: :func:`charbonnier_loss`.
        fft: :func:`fft_loss` (L1 of the 2-D spectrum difference, as MIMO-UNet).
        charbonnier_eps: the Charbonnier epsilon.
    """

    psnr: float = 1.0
    charbonnier: float = 0.0
    fft: float = 0.0
    charbonnier_eps: float = 1e-3

    def __post_init__(self) -> None:
        weights = (self.psnr, self.charbonnier, self.fft)
        if any(w < 0 for w in weights) or sum(weights) <= 0:
            raise ValueError("loss weights must be >= 0 and not all 0")
        if self.charbonnier_eps <= 0:
            raise ValueError("charbonnier_eps must be > 0")


@dataclass(frozen=True)
class Config:
    """A training run: ``model``, ``data``, ``optim``, ``loss``, ``train`` and ``out``.

    ``out`` is the run folder (relative to the working directory).
    """

    model: ModelConfig
    data: DataConfig
    optim: OptimConfig = field(default_factory=OptimConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    out: str = "runs/train"


def load_config(path: Path) -> Config:
    """Read a YAML training config (``yaml.safe_load``) into a :class:`Config`.

    Raises:
        ConfigError: missing or unreadable file, bad YAML, unknown or missing keys, wrong
            types or values; the message names the key and the file.
    """
    return parse_config(read_yaml(path), Path(path))


def parse_config(raw: Any, path: Path | None = None) -> Config:
    """Check a parsed YAML document and turn it into a :class:`Config`.

    Args:
        raw: the document (a mapping).
        path: the file it came from, for messages.

    Raises:
        ConfigError: see :func:`load_config`.
    """
    return parse_dataclass(Config, raw, path)


# --------------------------------------------------------------------------------------------
# model and losses
# --------------------------------------------------------------------------------------------


def build_model(config: ModelConfig, *, path: Path | None = None) -> nn.Module:
    """The network a :class:`ModelConfig` describes, with ``init`` weights if given.

    Raises:
        ModelError: unknown model name, unreadable or unfitting ``init`` weights.
        ConfigError: NAFNet arguments it rejects.
    """
    from unblur.models import create_model, load_weights
    from unblur.models.restore_net import NAFNet

    if config.name is not None:
        model = create_model(config.name, pretrained=False)
    else:
        n = config.nafnet
        assert n is not None  # ModelConfig guarantees one of the two
        try:
            model = NAFNet(
                width=n.width,
                enc_blocks=n.enc_blocks,
                middle_blocks=n.middle_blocks,
                dec_blocks=n.dec_blocks,
                stem_stride=n.stem_stride,
            )
        except ValueError as err:
            raise ConfigError(f"model.nafnet: {err}", path) from None
    if config.init is not None:
        load_weights(model, config.init)
    return model.train()


def psnr_loss(pred: torch.Tensor, target: torch.Tensor, *, eps: float = 1e-8) -> torch.Tensor:
    """Negative PSNR in dB (data range 1), averaged over the batch: ``10 log10(MSE + eps)``.

    Shape:
        - pred, target: ``(B, C, H, W)``.
        - Output: scalar.
    """
    mse = (pred - target).pow(2).mean(dim=(1, 2, 3))
    return 10.0 * torch.log10(mse + eps).mean()


def charbonnier_loss(
    pred: torch.Tensor, target: torch.Tensor, *, eps: float = 1e-3
) -> torch.Tensor:
    """Charbonnier (smooth L1) loss ``mean(sqrt((pred - target)^2 + eps^2))``."""
    return torch.sqrt((pred - target).pow(2) + eps * eps).mean()


def fft_loss(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean absolute difference of the real and imaginary parts of the 2-D spectra.

    ``mean(|Re F(pred) - Re F(target)|, |Im ...|)`` with ``F = torch.fft.rfft2`` over the last
    two axes (unnormalised), the frequency loss of MIMO-UNet (Cho et al., ICCV 2021). Computed
    in float32.
    """
    diff = torch.fft.rfft2(pred.float()) - torch.fft.rfft2(target.float())
    return torch.view_as_real(diff).abs().mean()


class RestorationLoss(nn.Module):
    """The weighted sum of the loss terms of a :class:`LossConfig`."""

    def __init__(self, config: LossConfig) -> None:
        super().__init__()
        self.config = config

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        c = self.config
        pred, target = pred.float(), target.float()
        total = pred.new_zeros(())
        if c.psnr:
            total = total + c.psnr * psnr_loss(pred, target)
        if c.charbonnier:
            total = total + c.charbonnier * charbonnier_loss(pred, target, eps=c.charbonnier_eps)
        if c.fft:
            total = total + c.fft * fft_loss(pred, target)
        return total


# --------------------------------------------------------------------------------------------
# the task
# --------------------------------------------------------------------------------------------


def _psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    mse = float((a.double() - b.double()).pow(2).mean())
    return float("inf") if mse == 0 else -10.0 * math.log10(mse)


def _by_set(scores: list[tuple[str, float]]) -> dict[str, float]:
    names = dict.fromkeys(n for n, _ in scores)
    return {n: float(np.mean([v for m, v in scores if m == n])) for n in names}


class RestorationTask:
    """Pairs from a pool, the restoration loss, PSNR validation (see the module docstring)."""

    score_name = "psnr"
    higher_is_better = True

    def __init__(
        self,
        config: Config,
        *,
        device: torch.device,
        dist_info: Dist,
        config_path: Path | None = None,
        quiet: bool = False,
    ) -> None:
        self.config, self.device, self.dist = config, device, dist_info
        self.extra_columns = ["gain"]
        self.model = build_model(config.model, path=config_path).to(device)
        root = Path(config.data.data_root)
        self.sources = [data.build_source(s, root, quiet=quiet) for s in config.data.sources]
        self.val_pairs = self._val_pairs(root, quiet)
        self.val_sets = list(dict.fromkeys(name for name, _, _ in self.val_pairs))
        # the blurred inputs' PSNR, once: one value per validation pair
        self.input_psnr = [_psnr(blurred, sharp) for _, blurred, sharp in self.val_pairs]
        self.loss_fn = RestorationLoss(config.loss)
        d = config.data
        self.regions = {  # sources whose pairs are blurred on the device, and their regions
            i: device_blur.region_size(spec.blur, d.patch)
            for i, spec in enumerate(d.sources)
            if isinstance(spec, data.SyntheticSpec) and spec.on_device
        }
        workers = d.workers or max(1, cores() // dist_info.world)
        self.pool = data.PairPool(
            self.sources,
            [s.weight for s in d.sources],
            size=d.pool_size,
            crop=d.pool_crop,
            seed=config.train.seed,
            stream=dist_info.rank,
            workers=workers,
            quiet=quiet,
        )

    def _val_pairs(self, root: Path, quiet: bool) -> list[tuple[str, torch.Tensor, torch.Tensor]]:
        val = self.config.data.val
        if not self.dist.main or not val.sets:
            return []
        pairs = data.build_val_set(val.sets, root, seed=val.seed, quiet=quiet)

        def tensor(image: np.ndarray) -> torch.Tensor:
            return torch.from_numpy(image.transpose(2, 0, 1).copy())[None].to(self.device)

        return [(p.set_name, tensor(p.blur), tensor(p.sharp)) for p in pairs]

    def prepare(self, resume_state: dict[str, Any] | None) -> None:
        if resume_state is not None:
            self.pool.restore(
                int(resume_state["pool"]["refreshes"]),
                self.config.data.refresh_fraction,
                pending=bool(resume_state["pool"]["pending"]),
                background=self.device.type == "cuda",
            )
        else:
            self.pool.build()

    def loss(self, model: nn.Module, step: int) -> torch.Tensor:
        d, seed = self.config.data, self.config.train.seed
        rng = data.derive_rng(data.TAG_BATCH, seed, self.dist.rank, step)
        blurred, sharp, parts = self.pool.sample_parts(
            d.batch, d.patch, rng, regions=self.regions, device=self.device
        )
        for source, regions in parts.items():  # sources made on the device: blur them now
            spec = d.sources[source]
            assert isinstance(spec, data.SyntheticSpec)
            made, truth = device_blur.blur_regions(regions, spec.blur, d.patch, rng)
            blurred, sharp = torch.cat([blurred, made]), torch.cat([sharp, truth])
        return self.loss_fn(model(blurred), sharp)

    def after_step(self, step: int) -> None:
        d = self.config.data
        if d.refresh_every and step % d.refresh_every == 0:
            if self.pool.pending:  # begun at the previous refresh point
                self.pool.finish_refresh()
            self.pool.begin_refresh(d.refresh_fraction, background=self.device.type == "cuda")

    def validate(self, model: nn.Module) -> ValResult | None:
        if not self.val_pairs:
            return None
        if hasattr(model, "set_local_pool"):
            model.set_local_pool(self.local_pool(model))
        scores, gains = [], []
        for (name, blurred, sharp), before in zip(self.val_pairs, self.input_psnr, strict=True):
            restored = model(blurred).float().clamp_(0.0, 1.0)
            value = _psnr(restored, sharp)
            scores.append((name, value))
            gains.append(value - before)
        return ValResult(
            score=float(np.mean([v for _, v in scores])),
            sets=_by_set(scores),
            extra={"gain": float(np.mean(gains))},
        )

    def local_pool(self, model: nn.Module) -> int | None:
        """The validation's pooling window in pixels (``None``: global)."""
        factor = self.config.data.val.local_pool
        if factor <= 0:
            return None
        return max(int(getattr(model, "multiple", 1)), round(factor * self.config.data.patch))

    def weights_meta(self) -> dict[str, str]:
        from unblur.restoration.network import LOCAL_POOL_KEY, format_local_pool

        if not hasattr(self.model, "set_local_pool"):
            return {}
        return {LOCAL_POOL_KEY: format_local_pool(self.local_pool(self.model))}

    def state(self) -> dict[str, Any]:
        return {
            **self.weights_meta(),
            "rng": {
                "batch": "numpy default_rng([3, seed, rank, step, 0]) for the batch of each step",
                "pool": "numpy default_rng([1, seed, rank, slot, version]) for each pool slot",
                "refresh": "numpy default_rng([2, seed, rank, k, 0]) for the k-th refresh, "
                "begun at refresh point k and finished at refresh point k + 1",
                "init": "torch.manual_seed(seed) before the model is built",
                "seed": self.config.train.seed,
            },
            "pool": {
                "refreshes": self.pool.refreshes,
                "pending": self.pool.pending,
                "size": self.pool.size,
            },
        }

    def summary(self) -> dict[str, Any]:
        names = [name for name, _, _ in self.val_pairs]
        return {
            "pool_bytes": self.pool.nbytes,
            "input_val_psnr": float(np.mean(self.input_psnr)) if self.input_psnr else None,
            "input_val_sets": _by_set(list(zip(names, self.input_psnr, strict=True))) or None,
        }

    def describe(self) -> str:
        p = self.pool
        return (
            f"pool of {p.size} pairs of {p.crop} px ({p.nbytes / 2**20:.0f} MiB); "
            f"{len(self.val_pairs)} validation pairs"
        )

    def close(self) -> None:
        self.pool.close()


def train(
    config: Config,
    *,
    config_path: Path | None = None,
    resume: bool = False,
    device: str = "auto",
    quiet: bool = False,
    stop_at: int | None = None,
) -> dict[str, Any]:
    """Train (or, with ``resume``, continue training) the network a config describes.

    Under ``torchrun`` (``WORLD_SIZE > 1``) this joins the process group (NCCL on CUDA, gloo on
    CPU) and leaves it at the end.

    Args:
        config: the run (see :func:`load_config`, :func:`with_overrides`).
        config_path: the file it came from (recorded in the summary).
        resume: continue from ``OUT/ckpt/last.safetensors``.
        device: ``"auto"`` (CUDA if available), ``"cpu"`` or ``"cuda"``.
        quiet: no progress bars or progress messages.
        stop_at: stop after this step as if interrupted (checkpoint and final files written;
            no final validation), e.g. to split a schedule over sessions.

    Returns:
        The summary also written to ``OUT/summary.json`` (an empty dict on ranks other than 0).

    Raises:
        UnblurError: bad config, missing data, unreadable checkpoint, an existing run without
            ``resume``, divergence.
    """

    def make_task(dev: torch.device, dist_info: Dist, task_quiet: bool) -> RestorationTask:
        return RestorationTask(
            config, device=dev, dist_info=dist_info, config_path=config_path, quiet=task_quiet
        )

    return run(
        make_task,
        config,
        config_path=config_path,
        resume=resume,
        device=device,
        quiet=quiet,
        stop_at=stop_at,
    )
