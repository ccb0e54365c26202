"""Training the restoration network: YAML configs, the loop, EMA, checkpoints, exact resume, DDP.

A run is described by a YAML file (see ``configs/``) read into the dataclasses below with
:func:`load_config`; unknown keys and wrong types are :class:`~unblur.errors.ConfigError`\\ s
that name the key and the file. :func:`train` then:

* builds the model (a registry name or explicit :class:`~unblur.models.restore_net.NAFNet`
  arguments, optionally initialised from a safetensors file) and AdamW (weight decay on conv
  weights only), with a linear warm-up and a cosine decay (:func:`lr_at`), gradient clipping
  and an exponential moving average of the weights (:class:`ModelEMA`);
* makes a pool of training pairs once (:class:`~unblur.data.PairPool`) and cuts every batch
  from it, remaking a fraction of it every ``refresh_every`` steps;
* validates the EMA weights on a fixed set every ``val_every`` steps (PSNR, and its gain over
  the blurred input) and logs to ``OUT/log.csv`` (and TensorBoard, if installed);
* checkpoints to ``OUT/ckpt/last.safetensors`` (+ ``last.json``), keeps the best EMA weights in
  ``OUT/best_ema.safetensors`` and, at the end, writes ``OUT/final_ema.safetensors`` (EMA
  weights, loadable with :func:`unblur.models.load_weights`) and ``OUT/summary.json``.

Exact resume: every random draw is a pure function of the seed and a counter (the batch of
step ``s`` on rank ``r`` comes from ``derive_rng(TAG_BATCH, seed, r, s)``, the pool from its
seed and refresh count), the learning rate is a pure function of the step, and the
checkpoint holds the weights, the EMA weights and the AdamW moments bit for bit. So ``N``
steps in one go and ``N/2`` steps, a restart with ``--resume`` and ``N/2`` more give the same
weights, bit for bit, on the same machine and thread count. No random-generator state needs
saving; ``last.json`` records how each stream is seeded instead.

Stopping: ``train.max_minutes`` (a time budget for the whole call, pool building included),
SIGINT or SIGTERM stop after the current step with a checkpoint and the final files (a second
Ctrl-C quits at once, without saving). Under ``torchrun`` (``WORLD_SIZE > 1``) each process
trains on its own pool (seed stream = rank) inside DistributedDataParallel; rank 0 alone
validates, logs and writes files.
"""

from __future__ import annotations

import contextlib
import copy
import csv
import dataclasses
import hashlib
import json
import math
import os
import platform
import signal
import sys
import threading
import time
import types
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Union, get_args, get_origin, get_type_hints

import numpy as np
import torch
import yaml
from torch import nn

from unblur import data
from unblur.data import SourceSpec, ValSetSpec
from unblur.errors import ConfigError, InputError, ModelError, OutputError, UnblurError
from unblur.io import atomic_write

__all__ = [
    "CHECKPOINT_LIMIT_BYTES",
    "Config",
    "DataConfig",
    "LossConfig",
    "ModelConfig",
    "ModelEMA",
    "NAFNetConfig",
    "OptimConfig",
    "RestorationLoss",
    "TrainConfig",
    "ValConfig",
    "build_model",
    "charbonnier_loss",
    "fft_loss",
    "load_checkpoint",
    "load_config",
    "lr_at",
    "parse_config",
    "psnr_loss",
    "save_checkpoint",
    "train",
    "with_overrides",
]

CHECKPOINT_LIMIT_BYTES = 50 * 1024 * 1024
"""Above this, the optimizer state goes to a file of its own next to ``last.safetensors``."""

_STATE_KEY = "unblur_state"
_FORMAT = 1
_MAX_SKIPPED = 20  # consecutive steps with a non-finite gradient before giving up


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
        sets: synthetic and real sets (:class:`~unblur.data.SyntheticValSpec`,
            :class:`~unblur.data.PairValSpec`).
        local_pool: validate with channel-attention pooling over windows of
            ``local_pool * patch`` pixels (``NAFNet.set_local_pool``, as for inference on
            large images); 0 for global pooling.
    """

    seed: int = 0
    sets: tuple[ValSetSpec, ...] = ()
    local_pool: float = 1.5

    def __post_init__(self) -> None:
        if self.seed < 0 or self.local_pool < 0:
            raise ValueError("seed and local_pool must be >= 0")


@dataclass(frozen=True)
class DataConfig:
    """Training data.

    Attributes:
        sources: where pairs come from (:class:`~unblur.data.SyntheticSpec`,
            :class:`~unblur.data.PairSpec`, :class:`~unblur.data.FrameSpec`); their paths are
            relative to ``data_root``.
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


@dataclass(frozen=True)
class OptimConfig:
    """AdamW with a linear warm-up to ``lr`` and a cosine decay to ``min_lr`` (:func:`lr_at`).

    Attributes:
        lr: peak learning rate.
        betas: AdamW betas.
        weight_decay: decoupled weight decay of convolution weights (not of biases, norms
            or NAFNet's residual scales).
        warmup: steps of linear warm-up.
        min_lr: learning rate at the last step.
        grad_clip: largest global gradient norm (0: no clipping).
    """

    lr: float = 5e-4
    betas: tuple[float, float] = (0.9, 0.9)
    weight_decay: float = 1e-4
    warmup: int = 500
    min_lr: float = 1e-6
    grad_clip: float = 0.5

    def __post_init__(self) -> None:
        if not (self.lr > 0 and 0 <= self.min_lr <= self.lr):
            raise ValueError(f"need lr > 0 and 0 <= min_lr <= lr, got {self.lr}, {self.min_lr}")
        if not all(0 <= b < 1 for b in self.betas):
            raise ValueError(f"betas must be in [0, 1), got {self.betas}")
        if self.weight_decay < 0 or self.warmup < 0 or self.grad_clip < 0:
            raise ValueError("weight_decay, warmup and grad_clip must be >= 0")


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
class TrainConfig:
    """The loop.

    Attributes:
        steps: optimizer steps of the whole schedule.
        ema_decay: EMA decay (warmed up as ``min(decay, (1 + n) / (10 + n))`` after ``n``
            updates).
        val_every: validate every this many steps (0: at the end only).
        ckpt_every: checkpoint every this many steps (0: at the end only).
        log_every: CSV row and progress-bar update every this many steps.
        seed: seed of weights, pool and batches.
        threads: torch CPU threads per process (0: torch's default).
        max_minutes: stop cleanly after this many minutes of this call (``None``: no limit).
    """

    steps: int = 200_000
    ema_decay: float = 0.999
    val_every: int = 1000
    ckpt_every: int = 1000
    log_every: int = 50
    seed: int = 0
    threads: int = 0
    max_minutes: float | None = None

    def __post_init__(self) -> None:
        if self.steps < 1 or self.log_every < 1:
            raise ValueError("steps and log_every must be >= 1")
        if not 0 <= self.ema_decay < 1:
            raise ValueError(f"ema_decay must be in [0, 1), got {self.ema_decay}")
        if min(self.val_every, self.ckpt_every, self.seed, self.threads) < 0:
            raise ValueError("val_every, ckpt_every, seed and threads must be >= 0")
        if self.max_minutes is not None and not self.max_minutes > 0:
            raise ValueError(f"max_minutes must be > 0, got {self.max_minutes}")


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
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError("no such config file", path) from None
    except (OSError, UnicodeDecodeError) as err:
        raise ConfigError(f"cannot read config ({err})", path) from None
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(err, "problem", None) or type(err).__name__
        raise ConfigError(f"invalid YAML{where}: {problem}", path) from None
    return parse_config(raw, path)


def parse_config(raw: Any, path: Path | None = None) -> Config:
    """Check a parsed YAML document and turn it into a :class:`Config`.

    Args:
        raw: the document (a mapping).
        path: the file it came from, for messages.

    Raises:
        ConfigError: see :func:`load_config`.
    """
    return _parse_dataclass(Config, raw, "", path)


def with_overrides(
    config: Config,
    *,
    steps: int | None = None,
    data_root: str | Path | None = None,
    out: str | Path | None = None,
) -> Config:
    """The config with command-line overrides applied (``None`` keeps a value)."""
    if steps is not None:
        config = dataclasses.replace(config, train=dataclasses.replace(config.train, steps=steps))
    if data_root is not None:
        new_data = dataclasses.replace(config.data, data_root=str(data_root))
        config = dataclasses.replace(config, data=new_data)
    if out is not None:
        config = dataclasses.replace(config, out=str(out))
    return config


def _key(where: str, name: str) -> str:
    return f"{where}.{name}" if where else name


def _type_name(tp: Any) -> str:
    if tp is type(None):
        return "null"
    if isinstance(tp, type):
        return {
            "str": "a string",
            "int": "an integer",
            "float": "a number",
            "bool": "true/false",
        }.get(tp.__name__, tp.__name__)
    return str(tp).replace("typing.", "")


def _parse_dataclass(cls: type, value: Any, where: str, path: Path | None) -> Any:
    if not isinstance(value, dict):
        raise ConfigError(f"{where or 'the config'} must be a mapping, got {value!r}", path)
    hints = get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    for key in value:
        if key not in fields:
            known = ", ".join(fields)
            raise ConfigError(f"unknown key {_key(where, str(key))!r} (known: {known})", path)
    missing = [
        name
        for name, f in fields.items()
        if name not in value
        and f.default is dataclasses.MISSING
        and f.default_factory is dataclasses.MISSING
    ]
    if missing:
        raise ConfigError(f"missing key {_key(where, missing[0])!r}", path)
    parsed = {
        name: _parse_value(hints[name], item, _key(where, name), path)
        for name, item in value.items()
    }
    try:
        return cls(**parsed)
    except ValueError as err:
        raise ConfigError(f"{where or 'config'}: {err}", path) from None


def _parse_tagged(options: Sequence[type], value: Any, where: str, path: Path | None) -> Any:
    """A union of dataclasses told apart by their ``kind`` field."""
    kinds = {get_args(get_type_hints(cls)["kind"])[0]: cls for cls in options}
    if not isinstance(value, dict) or value.get("kind") not in kinds:
        got = value.get("kind") if isinstance(value, dict) else value
        raise ConfigError(f"{where}.kind must be one of {sorted(kinds)}, got {got!r}", path)
    return _parse_dataclass(kinds[value["kind"]], value, where, path)


def _parse_value(tp: Any, value: Any, where: str, path: Path | None) -> Any:
    origin, args = get_origin(tp), get_args(tp)
    if origin in (Union, types.UnionType):
        options = [a for a in args if a is not type(None)]
        if value is None and len(options) < len(args):
            return None
        if len(options) > 1:
            return _parse_tagged(options, value, where, path)
        return _parse_value(options[0], value, where, path)
    if dataclasses.is_dataclass(tp):
        return _parse_dataclass(tp, value, where, path)
    if origin is Literal:
        if value not in args:
            raise ConfigError(f"{where} must be one of {list(args)}, got {value!r}", path)
        return value
    if origin is tuple:
        return _parse_tuple(args, value, where, path)
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{where} must be a mapping, got {value!r}", path)
        return {
            _parse_value(args[0], k, f"{where} key", path): _parse_value(
                args[1], v, f"{where}.{k}", path
            )
            for k, v in value.items()
        }
    return _parse_scalar(tp, value, where, path)


def _parse_tuple(
    args: tuple[Any, ...], value: Any, where: str, path: Path | None
) -> tuple[Any, ...]:
    if not isinstance(value, list | tuple):
        raise ConfigError(f"{where} must be a list, got {value!r}", path)
    if len(args) == 2 and args[1] is Ellipsis:
        return tuple(_parse_value(args[0], v, f"{where}[{i}]", path) for i, v in enumerate(value))
    if len(value) != len(args):
        raise ConfigError(f"{where} must be a list of {len(args)} values, got {value!r}", path)
    return tuple(
        _parse_value(t, v, f"{where}[{i}]", path)
        for i, (t, v) in enumerate(zip(args, value, strict=True))
    )


def _parse_scalar(tp: Any, value: Any, where: str, path: Path | None) -> Any:
    ok = {
        bool: isinstance(value, bool),
        int: isinstance(value, int) and not isinstance(value, bool),
        float: isinstance(value, int | float) and not isinstance(value, bool),
        str: isinstance(value, str),
    }
    if tp not in ok:
        raise TypeError(f"unsupported config type {tp!r} at {where}")  # a bug, not user input
    if tp is float and isinstance(value, str):  # PyYAML reads 5e-4 (no dot) as text
        with contextlib.suppress(ValueError):
            value, ok[float] = float(value), True
    if not ok[tp]:
        raise ConfigError(f"{where} must be {_type_name(tp)}, got {value!r}", path)
    if tp is float:
        if not math.isfinite(value):
            raise ConfigError(f"{where} must be finite, got {value!r}", path)
        return float(value)
    return value


def _plain(value: Any) -> Any:
    """A config as plain YAML/JSON data (tuples as lists)."""
    if dataclasses.is_dataclass(value):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def config_hash(config: Config) -> str:
    """SHA-256 of what shapes the training (not ``out``, ``data_root``, ``max_minutes``)."""
    plain = _plain(config)
    plain.pop("out")
    plain["data"].pop("data_root")
    plain["train"].pop("max_minutes")
    return hashlib.sha256(json.dumps(plain, sort_keys=True).encode()).hexdigest()


# --------------------------------------------------------------------------------------------
# model, losses, schedule, EMA
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


def lr_at(step: int, optim: OptimConfig, total: int) -> float:
    """Learning rate of the update with 0-based index ``step`` out of ``total``.

    Linear warm-up ``lr * (step + 1) / warmup`` for ``step < warmup``, then a cosine from
    ``lr`` down to ``min_lr`` at the last step.
    """
    if step < optim.warmup:
        return optim.lr * (step + 1) / optim.warmup
    span = max(1, total - 1 - optim.warmup)
    t = min(1.0, (step - optim.warmup) / span)
    return optim.min_lr + 0.5 * (optim.lr - optim.min_lr) * (1.0 + math.cos(math.pi * t))


class ModelEMA:
    """Exponential moving average of a model's weights (and a copy of its buffers).

    After the ``n``-th update the average moves towards the weights by ``1 - d`` with
    ``d = min(decay, (1 + n) / (10 + n))``, so early averages are not stuck at the
    initial weights.

    Args:
        model: the model being trained (not wrapped in DistributedDataParallel).
        decay: the long-run decay.
    """

    def __init__(self, model: nn.Module, decay: float) -> None:
        self.module = copy.deepcopy(model).eval().requires_grad_(False)
        self.decay = decay

    @torch.no_grad()
    def update(self, model: nn.Module, updates: int) -> None:
        """Move towards ``model``'s weights after its ``updates``-th optimizer step."""
        d = min(self.decay, (1.0 + updates) / (10.0 + updates))
        ema = list(self.module.parameters())
        current = [p.detach() for p in model.parameters()]
        torch._foreach_lerp_(ema, current, 1.0 - d)
        for b_ema, b in zip(self.module.buffers(), model.buffers(), strict=True):
            b_ema.copy_(b)


def _adamw(groups: list[dict[str, Any]], optim: OptimConfig) -> torch.optim.AdamW:
    """AdamW, fused where torch has it (CPU and CUDA: about 5x faster steps than the loop)."""
    try:
        return torch.optim.AdamW(
            groups, lr=optim.lr, betas=optim.betas, weight_decay=optim.weight_decay, fused=True
        )
    except (RuntimeError, ValueError):  # an older torch or an unsupported device
        return torch.optim.AdamW(
            groups, lr=optim.lr, betas=optim.betas, weight_decay=optim.weight_decay
        )


def _param_groups(model: nn.Module, weight_decay: float) -> tuple[list[dict[str, Any]], list[str]]:
    """AdamW groups (decay on conv weights only) and the parameter names in optimizer order."""
    decay = [(n, p) for n, p in model.named_parameters() if p.ndim > 1 and n.endswith("weight")]
    names = {n for n, _ in decay}
    rest = [(n, p) for n, p in model.named_parameters() if n not in names]
    groups = [
        {"params": [p for _, p in group], "weight_decay": wd}
        for group, wd in ((decay, weight_decay), (rest, 0.0))
        if group
    ]
    return groups, [n for n, _ in decay] + [n for n, _ in rest]


# --------------------------------------------------------------------------------------------
# checkpoints
# --------------------------------------------------------------------------------------------


def _tensors_bytes(tensors: dict[str, torch.Tensor]) -> int:
    return sum(t.numel() * t.element_size() for t in tensors.values())


def _cpu(tensors: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    return {prefix + k: v.detach().to("cpu").contiguous() for k, v in tensors.items()}


def _save_safetensors(
    path: Path, tensors: dict[str, torch.Tensor], metadata: dict[str, str]
) -> None:
    from safetensors.torch import save

    blob = save(tensors, metadata=metadata)  # bytes: atomic_write keeps the usual file mode
    atomic_write(path, lambda tmp: tmp.write_bytes(blob))


def _read_safetensors(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), framework="pt", device="cpu") as f:
            return {k: f.get_tensor(k) for k in f.keys()}, dict(f.metadata() or {})
    except FileNotFoundError:
        raise InputError("checkpoint file is missing", path) from None
    except (SafetensorError, OSError, ValueError, RuntimeError) as err:
        reason = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise InputError(f"not a valid safetensors checkpoint ({reason})", path) from None


def optimizer_tensors(
    optimizer: torch.optim.Optimizer, names: Sequence[str]
) -> dict[str, torch.Tensor]:
    """AdamW state as flat tensors named ``optim.<parameter name>.<state key>``."""
    state = optimizer.state_dict()["state"]
    out: dict[str, torch.Tensor] = {}
    for index, name in enumerate(names):
        for key, value in state.get(index, {}).items():
            out[f"optim.{name}.{key}"] = torch.as_tensor(value).detach().to("cpu").contiguous()
    return out


def load_optimizer_tensors(
    optimizer: torch.optim.Optimizer, names: Sequence[str], tensors: dict[str, torch.Tensor]
) -> None:
    """Inverse of :func:`optimizer_tensors` (parameters without state stay without)."""
    state_dict = optimizer.state_dict()
    state: dict[int, dict[str, torch.Tensor]] = {}
    for index, name in enumerate(names):
        prefix = f"optim.{name}."
        entries = {k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)}
        if entries:
            state[index] = entries
    state_dict["state"] = state
    optimizer.load_state_dict(state_dict)


def save_checkpoint(
    directory: Path,
    *,
    model: nn.Module,
    ema: nn.Module,
    optimizer: torch.optim.Optimizer,
    names: Sequence[str],
    state: dict[str, Any],
) -> Path:
    """Write ``directory/last.safetensors`` and ``last.json`` atomically.

    The safetensors file holds ``params.*`` (weights), ``params_ema.*`` (EMA weights) and
    ``optim.*`` (AdamW state, :func:`optimizer_tensors`) and, as metadata, the training
    ``state`` as JSON (the authoritative copy; ``last.json`` is the same for people and
    tools). If the file would exceed :data:`CHECKPOINT_LIMIT_BYTES`, the optimizer state goes
    to ``optim-<step>.safetensors`` instead, written first and named in the state, so that an
    interrupted save never pairs weights with another step's moments; older ones are removed.

    Returns:
        The path of ``last.safetensors``.
    """
    directory.mkdir(parents=True, exist_ok=True)
    tensors = _cpu(model.state_dict(), "params.") | _cpu(ema.state_dict(), "params_ema.")
    optim = optimizer_tensors(optimizer, names)
    state = dict(state)
    if _tensors_bytes(tensors) + _tensors_bytes(optim) > CHECKPOINT_LIMIT_BYTES:
        state["optim_file"] = f"optim-{int(state['step']):08d}.safetensors"
        _save_safetensors(directory / state["optim_file"], optim, {"step": str(state["step"])})
    else:
        state["optim_file"] = None
        tensors |= optim
    text = json.dumps(state, indent=2, sort_keys=True)
    path = directory / "last.safetensors"
    _save_safetensors(path, tensors, {_STATE_KEY: text})
    atomic_write(directory / "last.json", lambda tmp: tmp.write_text(text + "\n"))
    for old in directory.glob("optim-*.safetensors"):
        if old.name != state["optim_file"]:
            old.unlink(missing_ok=True)
    return path


def load_checkpoint(
    directory: Path,
    *,
    model: nn.Module,
    ema: nn.Module,
    optimizer: torch.optim.Optimizer,
    names: Sequence[str],
) -> dict[str, Any]:
    """Load ``directory/last.safetensors`` into the model, EMA and optimizer; return the state.

    Raises:
        InputError: missing, unreadable or inconsistent checkpoint files.
        ModelError: weights that do not fit the model.
    """
    path = directory / "last.safetensors"
    tensors, metadata = _read_safetensors(path)
    try:
        state = json.loads(metadata[_STATE_KEY])
    except (KeyError, ValueError):
        raise InputError("not an unblur training checkpoint (no training state)", path) from None
    if state.get("format") != _FORMAT:
        raise InputError(f"checkpoint format {state.get('format')!r} is not {_FORMAT}", path)
    if state.get("optim_file"):
        optim_path = directory / state["optim_file"]
        optim, optim_meta = _read_safetensors(optim_path)
        if optim_meta.get("step") != str(state["step"]):
            raise InputError(f"optimizer state is not from step {state['step']}", optim_path)
        tensors |= optim
    for prefix, module in (("params.", model), ("params_ema.", ema)):
        group = {k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)}
        try:
            module.load_state_dict(group, strict=True)
        except RuntimeError as err:
            first = str(err).splitlines()[0]
            raise ModelError(f"checkpoint does not fit the model ({first})", path) from None
    load_optimizer_tensors(
        optimizer, names, {k: v for k, v in tensors.items() if k.startswith("optim.")}
    )
    return state


def save_weights(path: Path, model: nn.Module, metadata: dict[str, str]) -> None:
    """Write a model's weights as plain safetensors (loadable with ``load_weights``)."""
    _save_safetensors(path, _cpu(model.state_dict(), ""), metadata)


# --------------------------------------------------------------------------------------------
# the run
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Dist:
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0


def _select_device(name: str, local_rank: int) -> torch.device:
    if name not in ("auto", "cpu", "cuda"):
        raise ConfigError(f"device must be auto, cpu or cuda, got {name!r}")
    if name == "cuda" and not torch.cuda.is_available():
        raise UnblurError(f"--device cuda, but torch {torch.__version__} sees no CUDA device")
    if name == "cuda" or (name == "auto" and torch.cuda.is_available()):
        torch.cuda.set_device(local_rank)
        return torch.device("cuda", local_rank)
    return torch.device("cpu")


def _setup_distributed(device_name: str) -> tuple[_Dist, torch.device]:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return _Dist(), _select_device(device_name, 0)
    rank, local_rank = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    device = _select_device(device_name, local_rank)
    import torch.distributed as dist

    if not dist.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        dist.init_process_group(backend, device_id=device if device.type == "cuda" else None)
    return _Dist(rank, world, local_rank), device


class _StopFlag:
    """SIGINT / SIGTERM ask the loop to stop after the current step; a second Ctrl-C quits."""

    def __init__(self) -> None:
        self.signum: int | None = None
        self._previous: dict[int, Any] = {}

    def install(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return
        for signum in (signal.SIGINT, signal.SIGTERM):
            self._previous[signum] = signal.signal(signum, self._handle)

    def restore(self) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous.clear()

    def _handle(self, signum: int, frame: types.FrameType | None) -> None:
        if self.signum is not None and signum == signal.SIGINT:
            raise KeyboardInterrupt
        if self.signum is None:
            print(
                "\nunblur: stopping after this step (Ctrl-C again quits without saving)",
                file=sys.stderr,
            )
        self.signum = signum


class _CsvLog:
    """``log.csv``: appended row by row; on resume, rows after the checkpoint are dropped."""

    def __init__(self, path: Path, columns: list[str], *, resume_step: int | None) -> None:
        self.path, self.columns = path, columns
        rows: list[dict[str, str]] = []
        if resume_step is not None and path.exists():
            with path.open(newline="") as fh:
                rows = [r for r in csv.DictReader(fh) if _int_or(r.get("step"), -1) <= resume_step]
        with path.open("w", newline="") as fh:
            writer = csv.DictWriter(fh, columns, extrasaction="ignore", restval="")
            writer.writeheader()
            writer.writerows(rows)

    def write(self, row: dict[str, Any]) -> None:
        with self.path.open("a", newline="") as fh:
            csv.DictWriter(fh, self.columns, extrasaction="ignore", restval="").writerow(row)


def _int_or(text: str | None, default: int) -> int:
    try:
        return int(text) if text is not None else default
    except ValueError:
        return default


def _tensorboard(folder: Path) -> Any:
    """A TensorBoard writer if tensorboard is installed, else ``None``."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        return None
    return SummaryWriter(str(folder))


def hardware_string(device: torch.device, world: int) -> str:
    """What ran the training, for summaries: device, processes, torch version."""
    if device.type == "cuda":
        what = f"{world} x {torch.cuda.get_device_name(device)} (CUDA {torch.version.cuda})"
    else:
        what = f"{_cpu_model()}, {world} process(es) x {torch.get_num_threads()} threads"
    return f"{what}, torch {torch.__version__}, {platform.system()} {platform.machine()}"


def _cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine() or "CPU"


def _sha256(path: Path) -> str | None:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return None


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


@dataclass
class _ValResult:
    psnr: float
    gain: float
    sets: dict[str, float]


def _psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    mse = float((a.double() - b.double()).pow(2).mean())
    return float("inf") if mse == 0 else -10.0 * math.log10(mse)


@dataclass
class _Interval:
    """Sums over the steps since the last CSV row."""

    loss: float = 0.0
    grad_norm: float = 0.0
    applied: int = 0
    steps: int = 0
    seconds: float = 0.0

    def add(self, loss: float, grad_norm: float, applied: bool, seconds: float) -> None:
        if applied:
            self.loss += loss
            self.grad_norm += grad_norm
            self.applied += 1
        self.steps += 1
        self.seconds += seconds

    def stats(self, lr: float) -> dict[str, float]:
        n = max(1, self.applied)
        return {
            "lr": lr,
            "loss": self.loss / n,
            "grad_norm": self.grad_norm / n,
            "sec_per_step": self.seconds / max(1, self.steps),
        }


class Trainer:
    """One training call; use :func:`train`, which sets up and tears down around it."""

    def __init__(
        self,
        config: Config,
        *,
        dist_info: _Dist,
        device: torch.device,
        config_path: Path | None,
        resume: bool,
        quiet: bool,
    ) -> None:
        self.start = time.perf_counter()
        self.config, self.dist, self.device = config, dist_info, device
        self.config_path, self.quiet = config_path, quiet
        self.out = Path(config.out)
        self.ckpt_dir = self.out / "ckpt"
        self._check_out(resume)
        t = config.train
        if device.type == "cpu" and t.threads > 0:
            torch.set_num_threads(t.threads)
        if device.type == "cuda":
            torch.backends.cudnn.benchmark = True
            torch.backends.cuda.matmul.allow_tf32 = True
            torch.backends.cudnn.allow_tf32 = True
        with torch.random.fork_rng(devices=[]):  # seeded weights, global RNG left alone
            torch.manual_seed(t.seed)
            self.raw_model = build_model(config.model, path=config_path).to(device)
        root = Path(config.data.data_root)
        self.sources = [
            data.build_source(s, root, quiet=quiet or not dist_info.main)
            for s in config.data.sources
        ]
        self.val_pairs = self._val_pairs(root)
        self.ema = ModelEMA(self.raw_model, t.ema_decay)
        groups, self.names = _param_groups(self.raw_model, config.optim.weight_decay)
        self.optimizer = _adamw(groups, config.optim)
        self.model: nn.Module = self.raw_model
        if dist_info.world > 1:
            from torch.nn.parallel import DistributedDataParallel

            ids = [device.index] if device.type == "cuda" else None
            self.model = DistributedDataParallel(self.raw_model, device_ids=ids)
        self.loss_fn = RestorationLoss(config.loss)
        d = config.data
        workers = d.workers or max(1, _cores() // dist_info.world)
        self.pool = data.PairPool(
            self.sources,
            [s.weight for s in d.sources],
            size=d.pool_size,
            crop=d.pool_crop,
            seed=t.seed,
            stream=dist_info.rank,
            workers=workers,
            quiet=quiet or not dist_info.main,
        )
        self.step, self.best, self.best_step, self.wall_before = 0, -math.inf, 0, 0.0
        self.last_val: _ValResult | None = None
        self.last_val_step = -1
        resume_state = self._resume() if resume else None
        pool_start = time.perf_counter()
        if resume_state is not None:
            self.pool.restore(
                int(resume_state["pool"]["refreshes"]),
                d.refresh_fraction,
                pending=bool(resume_state["pool"]["pending"]),
                background=device.type == "cuda",
            )
        else:
            self.pool.build()
        self.pool_seconds = time.perf_counter() - pool_start
        self.saved_step = self.step if resume else -1
        self.input_val = self._input_val()
        self.log: _CsvLog | None = None
        self.tb: Any = None
        self.postfix: dict[str, str] = {}
        self.interval = _Interval()
        self.train_seconds, self.steps_done, self.skipped = 0.0, 0, 0
        if dist_info.main:
            self._start_logs(resume)

    # ---------------------------------------------------------------- setup

    def _check_out(self, resume: bool) -> None:
        last = self.ckpt_dir / "last.safetensors"
        if resume and not last.is_file():
            raise InputError("nothing to resume: no checkpoint here", last)
        if not resume and last.exists():
            raise OutputError(
                "a training run is already here; pass --resume to continue it or choose "
                "another --out",
                self.out,
            )
        if self.dist.main:
            try:
                self.ckpt_dir.mkdir(parents=True, exist_ok=True)
            except OSError as err:
                raise OutputError(
                    f"cannot create folder ({err.strerror or err})", self.ckpt_dir
                ) from None

    def _val_pairs(self, root: Path) -> list[tuple[str, torch.Tensor, torch.Tensor]]:
        val = self.config.data.val
        if not self.dist.main or not val.sets:
            return []
        pairs = data.build_val_set(val.sets, root, seed=val.seed, quiet=self.quiet)

        def tensor(image: np.ndarray) -> torch.Tensor:
            return torch.from_numpy(image.transpose(2, 0, 1).copy())[None].to(self.device)

        return [(p.set_name, tensor(p.blur), tensor(p.sharp)) for p in pairs]

    def _input_val(self) -> _ValResult | None:
        if not self.val_pairs:
            return None
        scores = [(name, _psnr(b, s)) for name, b, s in self.val_pairs]
        return _ValResult(
            psnr=float(np.mean([v for _, v in scores])), gain=0.0, sets=self._by_set(scores)
        )

    @staticmethod
    def _by_set(scores: list[tuple[str, float]]) -> dict[str, float]:
        names = dict.fromkeys(n for n, _ in scores)
        return {n: float(np.mean([v for m, v in scores if m == n])) for n in names}

    def _resume(self) -> dict[str, Any]:
        state = load_checkpoint(
            self.ckpt_dir,
            model=self.raw_model,
            ema=self.ema.module,
            optimizer=self.optimizer,
            names=self.names,
        )
        if state.get("config_hash") != config_hash(self.config) and self.dist.main:
            print(
                "unblur: warning: the config differs from the checkpoint's; resuming anyway "
                "(the result will not match an uninterrupted run)",
                file=sys.stderr,
            )
        self.step = int(state["step"])
        best = state.get("best") or {}
        self.best = -math.inf if best.get("val_psnr") is None else float(best["val_psnr"])
        self.best_step = int(best.get("step") or 0)
        self.wall_before = float(state.get("wall_seconds", 0.0))
        return state

    def _columns(self) -> list[str]:
        base = ["step", "lr", "loss", "grad_norm", "val_psnr", "val_gain", "sec_per_step", "wall"]
        sets = list(dict.fromkeys(name for name, _, _ in self.val_pairs))
        return base + [f"val_{name}" for name in sets]

    def _start_logs(self, resume: bool) -> None:
        self.log = _CsvLog(
            self.out / "log.csv", self._columns(), resume_step=self.step if resume else None
        )
        text = yaml.safe_dump(_plain(self.config), sort_keys=False)
        atomic_write(self.out / "config.yaml", lambda tmp: tmp.write_text(text))
        self.tb = _tensorboard(self.out / "tb")
        if not self.quiet:
            n_params = sum(p.numel() for p in self.raw_model.parameters())
            pool = self.pool
            print(
                f"unblur train: {n_params / 1e6:.2f} M parameters on {self.device} "
                f"x {self.dist.world}; pool of {pool.size} pairs of {pool.crop} px "
                f"({pool.nbytes / 2**20:.0f} MiB) made in {self.pool_seconds:.1f} s; "
                f"{len(self.val_pairs)} validation pairs; step {self.step} of "
                f"{self.config.train.steps}",
                file=sys.stderr,
            )

    # ---------------------------------------------------------------- steps

    def _batch(self, step: int) -> tuple[torch.Tensor, torch.Tensor]:
        d, seed = self.config.data, self.config.train.seed
        rng = data.derive_rng(data.TAG_BATCH, seed, self.dist.rank, step)
        return self.pool.sample_batch(d.batch, d.patch, rng, device=self.device)

    def _autocast(self) -> contextlib.AbstractContextManager[Any]:
        if self.device.type == "cuda":
            return torch.autocast("cuda", dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def _train_step(self) -> tuple[float, float, bool]:
        """One optimizer step; returns (loss, gradient norm, whether it was applied)."""
        blurred, sharp = self._batch(self.step)
        lr = lr_at(self.step, self.config.optim, self.config.train.steps)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        with self._autocast():
            pred = self.model(blurred)
        loss = self.loss_fn(pred, sharp)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        clip = self.config.optim.grad_clip
        norm = torch.nn.utils.clip_grad_norm_(
            self.raw_model.parameters(), clip if clip > 0 else math.inf
        )
        norm_value, loss_value = float(norm), float(loss.detach())
        if not math.isfinite(norm_value) or not math.isfinite(loss_value):
            return loss_value, norm_value, False
        self.optimizer.step()
        self.ema.update(self.raw_model, self.step + 1)
        return loss_value, norm_value, True

    def _validate(self) -> _ValResult | None:
        if not self.val_pairs or self.input_val is None:
            return None
        model = self.ema.module
        factor = self.config.data.val.local_pool
        if factor > 0 and hasattr(model, "set_local_pool"):
            model.set_local_pool(max(model.multiple, round(factor * self.config.data.patch)))
        scores, gains = [], []
        with torch.inference_mode(), self._autocast():
            for name, blurred, sharp in self.val_pairs:
                restored = model(blurred).float().clamp_(0.0, 1.0)
                value = _psnr(restored, sharp)
                scores.append((name, value))
                gains.append(value - _psnr(blurred, sharp))
        return _ValResult(
            psnr=float(np.mean([v for _, v in scores])),
            gain=float(np.mean(gains)),
            sets=self._by_set(scores),
        )

    def _stop_reason(self, stop_at: int | None, flag: _StopFlag) -> str | None:
        t = self.config.train
        if self.step >= t.steps:
            return "done"
        if stop_at is not None and self.step >= stop_at:
            return "stop_at"
        over = t.max_minutes is not None and time.perf_counter() - self.start > 60 * t.max_minutes
        code = 2 if flag.signum is not None else 1 if over else 0
        if self.dist.world > 1:
            import torch.distributed as dist

            shared = torch.tensor([code], device=self.device)
            dist.all_reduce(shared, op=dist.ReduceOp.MAX)
            code = int(shared.item())
        return {0: None, 1: "time budget", 2: "signal"}[code]

    # ---------------------------------------------------------------- files

    def _state(self) -> dict[str, Any]:
        c = self.config
        return {
            "format": _FORMAT,
            "step": self.step,
            "config_hash": config_hash(c),
            "scheduler": {
                "kind": "linear warm-up + cosine",
                "lr": lr_at(max(0, self.step - 1), c.optim, c.train.steps),
                "warmup": c.optim.warmup,
                "total_steps": c.train.steps,
            },
            "rng": {
                "batch": "numpy default_rng([3, seed, rank, step, 0]) for the batch of each step",
                "pool": "numpy default_rng([1, seed, rank, slot, version]) for each pool slot",
                "refresh": "numpy default_rng([2, seed, rank, k, 0]) for the k-th refresh, "
                "begun at refresh point k and finished at refresh point k + 1",
                "init": "torch.manual_seed(seed) before the model is built",
                "seed": c.train.seed,
            },
            "pool": {
                "refreshes": self.pool.refreshes,
                "pending": self.pool.pending,
                "size": self.pool.size,
            },
            "best": {
                "val_psnr": self.best if math.isfinite(self.best) else None,
                "step": self.best_step,
            },
            "wall_seconds": self.wall_before + time.perf_counter() - self.start,
            "world_size": self.dist.world,
        }

    def _save(self) -> None:
        if self.dist.main and self.saved_step != self.step:
            save_checkpoint(
                self.ckpt_dir,
                model=self.raw_model,
                ema=self.ema.module,
                optimizer=self.optimizer,
                names=self.names,
                state=self._state(),
            )
        self.saved_step = self.step

    def _weights_meta(self) -> dict[str, str]:
        return {"step": str(self.step), "config_hash": config_hash(self.config)}

    def _after_val(self, result: _ValResult) -> None:
        self.last_val, self.last_val_step = result, self.step
        if result.psnr > self.best:
            self.best, self.best_step = result.psnr, self.step
            save_weights(self.out / "best_ema.safetensors", self.ema.module, self._weights_meta())

    def _summary(self, reason: str) -> dict[str, Any]:
        session = time.perf_counter() - self.start
        val, inp = self.last_val, self.input_val
        return {
            "steps": self.step,
            "target_steps": self.config.train.steps,
            "stopped": reason,
            "wall_seconds": round(self.wall_before + session, 1),
            "session_seconds": round(session, 1),
            "sec_per_step": (
                round(self.train_seconds / self.steps_done, 4) if self.steps_done else None
            ),
            "pool_seconds": round(self.pool_seconds, 1),
            "pool_bytes": self.pool.nbytes,
            "hardware": hardware_string(self.device, self.dist.world),
            "parameters": sum(p.numel() for p in self.raw_model.parameters()),
            "final_val_psnr": None if val is None else val.psnr,
            "final_val_gain": None if val is None else val.gain,
            "final_val_sets": None if val is None else val.sets,
            "final_val_step": None if val is None else self.last_val_step,
            "input_val_psnr": None if inp is None else inp.psnr,
            "input_val_sets": None if inp is None else inp.sets,
            "best_val_psnr": self.best if math.isfinite(self.best) else None,
            "best_step": self.best_step if math.isfinite(self.best) else None,
            "config": None if self.config_path is None else str(self.config_path),
            "config_sha256": None if self.config_path is None else _sha256(self.config_path),
            "config_hash": config_hash(self.config),
        }

    def _finish(self, reason: str, bar: Any) -> dict[str, Any]:
        val = None
        if reason in ("done", "time budget") and self.last_val_step != self.step:
            val = self._validate_now()
        self._report(bar, val, with_stats=True)  # the last, possibly partial, interval
        self._save()
        if not self.dist.main:
            return {}
        save_weights(self.out / "final_ema.safetensors", self.ema.module, self._weights_meta())
        summary = self._summary(reason)
        text = json.dumps(summary, indent=2) + "\n"
        atomic_write(self.out / "summary.json", lambda tmp: tmp.write_text(text))
        return summary

    # ---------------------------------------------------------------- loop

    def _log_row(self, stats: dict[str, float] | None, val: _ValResult | None) -> None:
        if self.log is None:
            return
        row: dict[str, Any] = {
            "step": self.step,
            "wall": round(self.wall_before + time.perf_counter() - self.start, 1),
        }
        if stats:
            row |= {k: f"{v:.6g}" for k, v in stats.items()}
        if val is not None:
            row |= {"val_psnr": f"{val.psnr:.4f}", "val_gain": f"{val.gain:.4f}"}
            row |= {f"val_{k}": f"{v:.4f}" for k, v in val.sets.items()}
        self.log.write(row)
        if self.tb is not None:
            for key, value in (stats or {}).items():
                self.tb.add_scalar(f"train/{key}", value, self.step)
            if val is not None:
                self.tb.add_scalar("val/psnr", val.psnr, self.step)
                self.tb.add_scalar("val/gain", val.gain, self.step)
                for key, value in val.sets.items():
                    self.tb.add_scalar(f"val/{key}", value, self.step)

    def run(self, *, stop_at: int | None = None) -> dict[str, Any]:
        """Train until the schedule ends, ``stop_at``, the time budget or a signal."""
        from tqdm import tqdm

        t = self.config.train
        flag = _StopFlag()
        flag.install()
        bar = tqdm(
            total=t.steps,
            initial=self.step,
            desc="training",
            unit="step",
            disable=self.quiet or not self.dist.main,
            file=sys.stderr,
            dynamic_ncols=True,
        )
        try:
            while (reason := self._stop_reason(stop_at, flag)) is None:
                self._step_and_refresh()
                val = self._validate_now() if t.val_every and self.step % t.val_every == 0 else None
                if self.step % t.log_every == 0 or val is not None:
                    self._report(bar, val, with_stats=self.step % t.log_every == 0)
                bar.update(1)
                if t.ckpt_every and self.step % t.ckpt_every == 0:
                    self._save()
            return self._finish(reason, bar)
        finally:
            bar.close()
            flag.restore()
            self.pool.close()
            if self.tb is not None:
                self.tb.close()

    def _step_and_refresh(self) -> None:
        tick = time.perf_counter()
        loss, norm, applied = self._train_step()
        self.step += 1
        self.skipped = 0 if applied else self.skipped + 1
        if self.skipped >= _MAX_SKIPPED:
            raise UnblurError(
                f"training diverged: {self.skipped} steps in a row with a non-finite loss or "
                f"gradient at step {self.step}; lower optim.lr or raise optim.warmup"
            )
        d = self.config.data
        if d.refresh_every and self.step % d.refresh_every == 0:
            if self.pool.pending:  # begun at the previous refresh point
                self.pool.finish_refresh()
            self.pool.begin_refresh(d.refresh_fraction, background=self.device.type == "cuda")
        self.interval.add(loss, norm, applied, time.perf_counter() - tick)

    def _validate_now(self) -> _ValResult | None:
        result = self._validate() if self.dist.main else None
        if result is not None:
            self._after_val(result)
        return result

    def _report(self, bar: Any, val: _ValResult | None, *, with_stats: bool) -> None:
        stats = None
        if with_stats and self.interval.steps:
            lr = lr_at(self.step - 1, self.config.optim, self.config.train.steps)
            stats = self.interval.stats(lr)
            self.train_seconds += self.interval.seconds
            self.steps_done += self.interval.steps
            self.interval = _Interval()
        if stats is not None or val is not None:
            self._log_row(stats, val)
            self._update_bar(bar, stats, val)

    def _update_bar(self, bar: Any, stats: dict[str, float] | None, val: _ValResult | None) -> None:
        if stats:
            self.postfix["loss"] = f"{stats['loss']:.3f}"
            self.postfix["s/step"] = f"{stats['sec_per_step']:.3f}"
        if val is not None:
            self.postfix["val"] = f"{val.psnr:.2f}dB({val.gain:+.2f})"
        bar.set_postfix(self.postfix, refresh=False)


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
    dist_info, dev = _setup_distributed(device)
    threads = torch.get_num_threads()
    try:
        trainer = Trainer(
            config,
            dist_info=dist_info,
            device=dev,
            config_path=config_path,
            resume=resume,
            quiet=quiet,
        )
        summary = trainer.run(stop_at=stop_at)
        if dist_info.world > 1:
            import torch.distributed as dist

            dist.barrier()
        return summary
    finally:
        torch.set_num_threads(threads)
        if dist_info.world > 1:
            import torch.distributed as dist

            if dist.is_initialized():
                dist.destroy_process_group()
