"""The training loop both tasks share: schedule, EMA, checkpoints, logs, stopping and DDP.

A :class:`Task` (restoration in :mod:`unblur.train.restoration`, motion in
:mod:`unblur.train.motion`) brings the network, its data and its loss, and scores the EMA
weights on its validation set. :class:`Trainer` does the rest, the same way for both:

* AdamW (weight decay on conv weights only) with a linear warm-up and a cosine decay
  (:func:`lr_at`), gradient clipping, steps with a non-finite loss or gradient skipped (20 in a
  row: diverged), and an exponential moving average of the weights (:class:`ModelEMA`);
* validation of the EMA weights every ``val_every`` steps; the best EMA weights go to
  ``OUT/best_ema.safetensors``;
* ``OUT/log.csv`` (and TensorBoard, if installed), ``OUT/ckpt/last.safetensors`` every
  ``ckpt_every`` steps (:mod:`unblur.train.checkpoint`), and at the end
  ``OUT/final_ema.safetensors`` and ``OUT/summary.json``;
* stopping: the schedule's end, ``train.max_minutes`` (a budget for the whole call, data
  making included), SIGINT or SIGTERM (after the current step, with a checkpoint and the final
  files; a second Ctrl-C quits at once, without saving);
* under ``torchrun`` (``WORLD_SIZE > 1``) each process trains on its own data stream inside
  DistributedDataParallel (gloo on the CPU, NCCL on CUDA); rank 0 alone validates, logs and
  writes files; the processes agree on when to stop.
"""

from __future__ import annotations

import contextlib
import copy
import csv
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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import torch
import yaml
from torch import nn

from unblur.errors import ConfigError, InputError, OutputError, UnblurError
from unblur.io import atomic_write
from unblur.train.checkpoint import FORMAT, load_checkpoint, save_checkpoint, save_weights
from unblur.train.config import OptimConfig, TrainConfig, config_hash, plain

__all__ = [
    "Dist",
    "ModelEMA",
    "Task",
    "Trainer",
    "ValResult",
    "check_run_folder",
    "hardware_string",
    "lr_at",
    "run",
    "setup_distributed",
]

MAX_SKIPPED = 20  # consecutive steps with a non-finite gradient before giving up


@dataclass
class ValResult:
    """A validation of the EMA weights.

    Attributes:
        score: the number that picks the best weights (PSNR in dB, or an error in pixels).
        sets: the score per validation set.
        extra: other numbers for the log (e.g. the gain over the blurred input).
    """

    score: float
    sets: dict[str, float] = field(default_factory=dict)
    extra: dict[str, float] = field(default_factory=dict)


class Task(Protocol):
    """What a task brings to the loop (see :class:`Trainer`)."""

    #: the network being trained (on the training device, not wrapped in DDP).
    model: nn.Module
    #: name of the validation score (``psnr``, ``epe``) and whether higher is better.
    score_name: str
    higher_is_better: bool
    #: names of the validation sets, and of ``ValResult.extra``, for the log's columns.
    val_sets: list[str]
    extra_columns: list[str]

    def prepare(self, resume_state: dict[str, Any] | None) -> None:
        """Make the training data (fresh, or as it was at the checkpoint's step)."""

    def loss(self, model: nn.Module, step: int) -> torch.Tensor:
        """The loss of step ``step`` (0-based); ``model`` may be wrapped in DDP."""

    def after_step(self, step: int) -> None:
        """Called after the ``step``-th update (1-based), e.g. to refresh the data."""

    def validate(self, model: nn.Module) -> ValResult | None:
        """Score the EMA weights (rank 0 only); ``None`` without a validation set."""

    def state(self) -> dict[str, Any]:
        """What the checkpoint must record to resume the data exactly."""

    def weights_meta(self) -> dict[str, str]:
        """Metadata for the weights files the run writes (e.g. how inference should run)."""

    def summary(self) -> dict[str, Any]:
        """Task-specific entries of ``summary.json``."""

    def describe(self) -> str:
        """One line for the start of a run."""

    def close(self) -> None:
        """Release background work (threads, pools)."""


def lr_at(step: int, optim: OptimConfig, total: int) -> float:
    """Learning rate of the update with 0-based index ``step`` out of ``total``.

    Linear warm-up ``lr * (step + 1) / warmup`` for ``step < warmup``, then a cosine from
    ``lr`` down to ``min_lr`` at the last step.

    Not ``torch.optim.lr_scheduler``: a pure function of the step needs no scheduler state in
    the checkpoint, gives the same rate after any resume or change of ``steps`` (a warm
    restart), and is what the log and ``last.json`` record.
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

    Not ``torch.optim.swa_utils.AveragedModel``: it wraps the module (state-dict keys gain
    ``module.`` and an ``n_averaged`` buffer, which would change the layout of every
    checkpoint and shipped weights file), and it averages buffers where batch-norm statistics
    should be copied; this warm-up of the decay is one line on top of ``torch._foreach_lerp_``.

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


@dataclass(frozen=True)
class Dist:
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


def setup_distributed(device_name: str) -> tuple[Dist, torch.device]:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Dist(), _select_device(device_name, 0)
    rank, local_rank = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    device = _select_device(device_name, local_rank)
    import torch.distributed as dist

    if not dist.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        dist.init_process_group(backend, device_id=device if device.type == "cuda" else None)
    return Dist(rank, world, local_rank), device


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


def cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


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


class _ChannelsLastInput(nn.Module):
    """Feeds a channels-last model channels-last batches (no copies inside the convolutions)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.inner = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.inner(x.contiguous(memory_format=torch.channels_last))


def check_run_folder(out: Path, resume: bool, main: bool = True) -> None:
    """Before any work: a run to resume exists, or a new run would not replace one.

    Raises:
        InputError: ``resume`` without a checkpoint.
        OutputError: a checkpoint without ``resume``, or a folder that cannot be made.
    """
    ckpt_dir = Path(out) / "ckpt"
    last = ckpt_dir / "last.safetensors"
    if resume and not last.is_file():
        raise InputError("nothing to resume: no checkpoint here", last)
    if not resume and last.exists():
        raise OutputError(
            "a training run is already here; pass --resume to continue it or choose another --out",
            out,
        )
    if main:
        try:
            ckpt_dir.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise OutputError(f"cannot create folder ({err.strerror or err})", ckpt_dir) from None


def native_cpu_bf16() -> bool:
    """Whether this CPU computes bfloat16 natively (AMX tiles or AVX512-BF16). The checks are
    torch's private ones: a torch without them counts as no (float32 is the safe side)."""
    checks = ("_is_amx_tile_supported", "_is_avx512_bf16_supported")
    return any(bool(getattr(torch.cpu, name, lambda: False)()) for name in checks)


class Trainer:
    """One training call over a :class:`Task`; use :func:`run`, which sets up around it."""

    def __init__(
        self,
        task: Task,
        *,
        optim: OptimConfig,
        loop: TrainConfig,
        config: Any,
        out: Path,
        dist_info: Dist,
        device: torch.device,
        config_path: Path | None,
        resume: bool,
        quiet: bool,
        start: float,
    ) -> None:
        self.start = start
        self.task, self.optim_config, self.loop = task, optim, loop
        self.config, self.hash = config, config_hash(config)
        self.dist, self.device = dist_info, device
        self.config_path, self.quiet = config_path, quiet
        self.out = Path(out)
        self.ckpt_dir = self.out / "ckpt"
        self.raw_model = task.model
        # bf16 autocast on the CPU only where it has native bfloat16 arithmetic: elsewhere
        # (AVX2 only) it is emulated, and a compiled step ran 13x slower than in float32
        self.cpu_bf16 = loop.bf16 and device.type == "cpu" and native_cpu_bf16()
        if loop.bf16 and device.type == "cpu" and not self.cpu_bf16 and dist_info.main:
            print(
                "unblur: warning: this CPU has no native bfloat16 (AMX or AVX512-BF16): "
                "training in float32",
                file=sys.stderr,
            )
        if loop.channels_last:
            self.raw_model.to(memory_format=torch.channels_last)
        self.sign = 1.0 if task.higher_is_better else -1.0
        self.ema = ModelEMA(self.raw_model, loop.ema_decay)
        groups, self.names = _param_groups(self.raw_model, optim.weight_decay)
        self.optimizer = _adamw(groups, optim)
        self.model: nn.Module = self.raw_model
        if dist_info.world > 1:
            from torch.nn.parallel import DistributedDataParallel

            ids = [device.index] if device.type == "cuda" else None
            self.model = DistributedDataParallel(self.raw_model, device_ids=ids)
        if loop.channels_last:
            self.model = _ChannelsLastInput(self.model)
        if loop.compile:
            self.model = torch.compile(self.model)  # type: ignore[assignment]
        self.step, self.best, self.best_step, self.wall_before = 0, -math.inf, 0, 0.0
        self.last_val: ValResult | None = None
        self.last_val_step = -1
        resume_state = self._resume() if resume else None
        data_start = time.perf_counter()
        task.prepare(resume_state)
        self.data_seconds = time.perf_counter() - data_start
        self.saved_step = self.step if resume else -1
        self.log: _CsvLog | None = None
        self.tb: Any = None
        self.postfix: dict[str, str] = {}
        self.interval = _Interval()
        self.train_seconds, self.steps_done, self.skipped = 0.0, 0, 0
        if dist_info.main:
            self._start_logs(resume)

    # ---------------------------------------------------------------- setup

    def _resume(self) -> dict[str, Any]:
        state = load_checkpoint(
            self.ckpt_dir,
            model=self.raw_model,
            ema=self.ema.module,
            optimizer=self.optimizer,
            names=self.names,
        )
        if state.get("config_hash") != self.hash and self.dist.main:
            print(
                "unblur: warning: the config differs from the checkpoint's; resuming anyway "
                "(the result will not match an uninterrupted run)",
                file=sys.stderr,
            )
        self.step = int(state["step"])
        if state.get("slim") and self.dist.main and not self.quiet:
            print(
                f"unblur train: slim checkpoint: warm restart at step {self.step} from the EMA "
                "weights, AdamW moments estimated afresh",
                file=sys.stderr,
            )
        best = state.get("best") or {}
        if "score" in best or "val_psnr" in best:  # val_psnr: restoration checkpoints of 2026-11
            value = best.get("score", best.get("val_psnr"))
            self.best = -math.inf if value is None else self.sign * float(value)
            self.best_step = int(best.get("step") or 0)
        elif state.get("best_epe") is not None:  # motion checkpoints of 2026-11
            self.best = self.sign * float(state["best_epe"])
        self.wall_before = float(state.get("wall_seconds", state.get("seconds", 0.0)))
        return state

    def _columns(self) -> list[str]:
        t = self.task
        base = ["step", "lr", "loss", "grad_norm", f"val_{t.score_name}"]
        return (
            base
            + [f"val_{c}" for c in t.extra_columns]
            + ["sec_per_step", "wall"]
            + [f"val_{name}" for name in t.val_sets]
        )

    def _start_logs(self, resume: bool) -> None:
        self.log = _CsvLog(
            self.out / "log.csv", self._columns(), resume_step=self.step if resume else None
        )
        text = yaml.safe_dump(plain(self.config), sort_keys=False)
        atomic_write(self.out / "config.yaml", lambda tmp: tmp.write_text(text))
        self.tb = _tensorboard(self.out / "tb")
        if not self.quiet:
            n_params = sum(p.numel() for p in self.raw_model.parameters())
            print(
                f"unblur train: {n_params / 1e6:.2f} M parameters on {self.device} "
                f"x {self.dist.world}; {self.task.describe()} (made in "
                f"{self.data_seconds:.1f} s); step {self.step} of {self.loop.steps}",
                file=sys.stderr,
            )

    # ---------------------------------------------------------------- steps

    def _autocast(self, *, validate: bool = False) -> contextlib.AbstractContextManager[Any]:
        if self.device.type == "cuda":
            return torch.autocast("cuda", dtype=torch.bfloat16)
        if self.cpu_bf16 and not validate:  # CPU validation stays float32, comparable
            return torch.autocast("cpu", dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def _train_step(self) -> tuple[float, float, bool]:
        """One optimizer step; returns (loss, gradient norm, whether it was applied)."""
        self.raw_model.train()
        lr = lr_at(self.step, self.optim_config, self.loop.steps)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        with self._autocast():
            loss = self.task.loss(self.model, self.step)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        clip = self.optim_config.grad_clip
        norm = torch.nn.utils.clip_grad_norm_(
            self.raw_model.parameters(), clip if clip > 0 else math.inf
        )
        norm_value, loss_value = float(norm), float(loss.detach())
        if not math.isfinite(norm_value) or not math.isfinite(loss_value):
            return loss_value, norm_value, False
        self.optimizer.step()
        self.ema.update(self.raw_model, self.step + 1)
        return loss_value, norm_value, True

    def _stop_reason(self, stop_at: int | None, flag: _StopFlag) -> str | None:
        t = self.loop
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

    def _best_value(self) -> float | None:
        return self.sign * self.best if math.isfinite(self.best) else None

    def _state(self) -> dict[str, Any]:
        o, t = self.optim_config, self.loop
        return {
            "format": FORMAT,
            "step": self.step,
            "config_hash": self.hash,
            "scheduler": {
                "kind": "linear warm-up + cosine",
                "lr": lr_at(max(0, self.step - 1), o, t.steps),
                "warmup": o.warmup,
                "total_steps": t.steps,
            },
            **self.task.state(),
            "best": {
                "score": self._best_value(),
                "score_name": self.task.score_name,
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
        return {"step": str(self.step), "config_hash": self.hash, **self.task.weights_meta()}

    def _after_val(self, result: ValResult) -> None:
        self.last_val, self.last_val_step = result, self.step
        if self.sign * result.score > self.best:
            self.best, self.best_step = self.sign * result.score, self.step
            save_weights(self.out / "best_ema.safetensors", self.ema.module, self._weights_meta())

    def _summary(self, reason: str) -> dict[str, Any]:
        session = time.perf_counter() - self.start
        val = self.last_val
        name = self.task.score_name
        return {
            "steps": self.step,
            "target_steps": self.loop.steps,
            "stopped": reason,
            "wall_seconds": round(self.wall_before + session, 1),
            "session_seconds": round(session, 1),
            "sec_per_step": (
                round(self.train_seconds / self.steps_done, 4) if self.steps_done else None
            ),
            "data_seconds": round(self.data_seconds, 1),
            "hardware": hardware_string(self.device, self.dist.world),
            "parameters": sum(p.numel() for p in self.raw_model.parameters()),
            f"final_val_{name}": None if val is None else val.score,
            "final_val_extra": None if val is None else val.extra,
            "final_val_sets": None if val is None else val.sets,
            "final_val_step": None if val is None else self.last_val_step,
            f"best_val_{name}": self._best_value(),
            "best_step": self.best_step if math.isfinite(self.best) else None,
            **self.task.summary(),
            "config": None if self.config_path is None else str(self.config_path),
            "config_sha256": None if self.config_path is None else _sha256(self.config_path),
            "config_hash": self.hash,
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

    def _log_row(self, stats: dict[str, float] | None, val: ValResult | None) -> None:
        if self.log is None:
            return
        row: dict[str, Any] = {
            "step": self.step,
            "wall": round(self.wall_before + time.perf_counter() - self.start, 1),
        }
        name = self.task.score_name
        if stats:
            row |= {k: f"{v:.6g}" for k, v in stats.items()}
        if val is not None:
            row[f"val_{name}"] = f"{val.score:.4f}"
            row |= {f"val_{k}": f"{v:.4f}" for k, v in (val.extra | val.sets).items()}
        self.log.write(row)
        if self.tb is not None:
            for key, value in (stats or {}).items():
                self.tb.add_scalar(f"train/{key}", value, self.step)
            if val is not None:
                self.tb.add_scalar(f"val/{name}", val.score, self.step)
                for key, value in (val.extra | val.sets).items():
                    self.tb.add_scalar(f"val/{key}", value, self.step)

    def run(self, *, stop_at: int | None = None) -> dict[str, Any]:
        """Train until the schedule ends, ``stop_at``, the time budget or a signal."""
        from unblur.progress import bar as progress_bar

        t = self.loop
        flag = _StopFlag()
        flag.install()
        bar = progress_bar(
            desc="training",
            unit="step",
            total=t.steps,
            enabled=not self.quiet and self.dist.main,
        )
        bar.update(self.step)
        try:
            while (reason := self._stop_reason(stop_at, flag)) is None:
                self._step()
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
            self.task.close()
            if self.tb is not None:
                self.tb.close()

    def _step(self) -> None:
        tick = time.perf_counter()
        loss, norm, applied = self._train_step()
        self.step += 1
        self.skipped = 0 if applied else self.skipped + 1
        if self.skipped >= MAX_SKIPPED:
            raise UnblurError(
                f"training diverged: {self.skipped} steps in a row with a non-finite loss or "
                f"gradient at step {self.step}; lower optim.lr or raise optim.warmup"
            )
        self.task.after_step(self.step)
        self.interval.add(loss, norm, applied, time.perf_counter() - tick)

    def _validate_now(self) -> ValResult | None:
        if not self.dist.main:
            return None
        with torch.inference_mode(), self._autocast(validate=True):
            result = self.task.validate(self.ema.module)
        if result is not None:
            self._after_val(result)
        return result

    def _report(self, bar: Any, val: ValResult | None, *, with_stats: bool) -> None:
        stats = None
        if with_stats and self.interval.steps:
            lr = lr_at(self.step - 1, self.optim_config, self.loop.steps)
            stats = self.interval.stats(lr)
            self.train_seconds += self.interval.seconds
            self.steps_done += self.interval.steps
            self.interval = _Interval()
        if stats is not None or val is not None:
            self._log_row(stats, val)
            self._update_bar(bar, stats, val)

    def _update_bar(self, bar: Any, stats: dict[str, float] | None, val: ValResult | None) -> None:
        if stats:
            self.postfix["loss"] = f"{stats['loss']:.3f}"
            self.postfix["s/step"] = f"{stats['sec_per_step']:.3f}"
        if val is not None:
            self.postfix["val"] = f"{val.score:.3f}"
        bar.set_postfix(self.postfix, refresh=False)


def run(
    make_task: Any,
    config: Any,
    *,
    config_path: Path | None = None,
    resume: bool = False,
    device: str = "auto",
    quiet: bool = False,
    stop_at: int | None = None,
) -> dict[str, Any]:
    """Set up (device, threads, process group), build the task and train it.

    Args:
        make_task: ``make_task(device, dist_info, quiet) -> Task``, called once set up.
        config: the whole config, a dataclass with ``optim`` (:class:`OptimConfig`), ``train``
            (:class:`TrainConfig`) and ``out`` (the run folder); recorded in
            ``OUT/config.yaml`` and hashed.
        config_path: the file the config came from (recorded in the summary).
        resume: continue from ``OUT/ckpt/last.safetensors``.
        device: ``"auto"`` (CUDA if available), ``"cpu"`` or ``"cuda"``.
        quiet: no progress bars or progress messages.
        stop_at: stop after this step as if interrupted (checkpoint and final files written;
            no final validation), e.g. to split a schedule over sessions.

    Returns:
        The summary also written to ``OUT/summary.json`` (an empty dict on ranks other than 0).
    """
    optim, loop, out = config.optim, config.train, Path(config.out)
    start = time.perf_counter()
    dist_info, dev = setup_distributed(device)
    threads = torch.get_num_threads()
    try:
        check_run_folder(Path(out), resume, dist_info.main)
        if dev.type == "cpu" and loop.threads > 0:
            torch.set_num_threads(loop.threads)
        if dev.type == "cuda":
            torch.backends.cudnn.benchmark = True
            torch.backends.cuda.matmul.allow_tf32 = True
            torch.backends.cudnn.allow_tf32 = True
        with torch.random.fork_rng(devices=[]):  # seeded weights, global RNG left alone
            torch.manual_seed(loop.seed)
            task = make_task(dev, dist_info, quiet or not dist_info.main)
        trainer = Trainer(
            task,
            optim=optim,
            loop=loop,
            config=config,
            out=out,
            dist_info=dist_info,
            device=dev,
            config_path=config_path,
            resume=resume,
            quiet=quiet,
            start=start,
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
