"""Training configs: YAML read safely into frozen dataclasses, and what every task shares.

:func:`read_yaml` reads a file with ``yaml.safe_load``; :func:`parse_dataclass` walks the
document into a dataclass, checking every key and type: unknown keys, missing keys, wrong
types and values rejected by a dataclass's ``__post_init__`` are
:class:`~unblur.errors.ConfigError`\\ s of one line that name the key and the file. Unions of
dataclasses are told apart by their ``kind`` field.

(A well-kept validation library was considered instead of this walker: pydantic would need a
config on every dataclass, accepts strings for numbers and lists for tuples only in its lax
mode, and its messages would need the same rewording into one line per key, so it would not
shrink the code.)

:class:`OptimConfig` and :class:`TrainConfig` are the parts of a run that both tasks
(restoration, motion) share.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import math
import types
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Union, get_args, get_origin, get_type_hints

import yaml

from unblur.errors import ConfigError

__all__ = [
    "OptimConfig",
    "TrainConfig",
    "config_hash",
    "parse_dataclass",
    "plain",
    "read_yaml",
    "with_overrides",
]


def read_yaml(path: Path) -> Any:
    """The YAML document in ``path`` (``yaml.safe_load``).

    Raises:
        ConfigError: missing or unreadable file, bad YAML (with its line and column).
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError("no such config file", path) from None
    except (OSError, UnicodeDecodeError) as err:
        raise ConfigError(f"cannot read config ({err})", path) from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(err, "problem", None) or type(err).__name__
        raise ConfigError(f"invalid YAML{where}: {problem}", path) from None


def parse_dataclass(cls: type, value: Any, path: Path | None = None) -> Any:
    """Check a parsed document against a dataclass and build it.

    Raises:
        ConfigError: see the module docstring.
    """
    return _parse_dataclass(cls, value, "", path)


@dataclass(frozen=True)
class OptimConfig:
    """AdamW: linear warm-up to ``lr``, cosine decay to ``min_lr`` (``loop.lr_at``).

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
        channels_last: train in the channels-last memory format (faster convolutions on
            recent CPUs and GPUs; measure with ``benchmarks/train_speed.py``).
        compile: ``torch.compile`` the training model once per call (minutes of compiling,
            then faster steps; for long runs).
        bf16: bfloat16 autocast for the training steps on the CPU too (on CUDA they always
            run in it); worth it only where the CPU has AMX or AVX512-BF16 and it measures
            faster (``benchmarks/train_speed.py --bf16``). A CPU without either (AVX2 only)
            trains in float32 instead, with a warning: there bf16 is emulated, 13x slower.
    """

    steps: int = 200_000
    ema_decay: float = 0.999
    val_every: int = 1000
    ckpt_every: int = 1000
    log_every: int = 50
    seed: int = 0
    threads: int = 0
    max_minutes: float | None = None
    channels_last: bool = False
    compile: bool = False
    bf16: bool = False

    def __post_init__(self) -> None:
        if self.steps < 1 or self.log_every < 1:
            raise ValueError("steps and log_every must be >= 1")
        if not 0 <= self.ema_decay < 1:
            raise ValueError(f"ema_decay must be in [0, 1), got {self.ema_decay}")
        if min(self.val_every, self.ckpt_every, self.seed, self.threads) < 0:
            raise ValueError("val_every, ckpt_every, seed and threads must be >= 0")
        if self.max_minutes is not None and not self.max_minutes > 0:
            raise ValueError(f"max_minutes must be > 0, got {self.max_minutes}")


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


def plain(value: Any) -> Any:
    """A config as plain YAML/JSON data (tuples as lists)."""
    if dataclasses.is_dataclass(value):
        return {f.name: plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, tuple | list):
        return [plain(v) for v in value]
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    return value


def with_overrides(
    config: Any,
    *,
    steps: int | None = None,
    data_root: str | Path | None = None,
    out: str | Path | None = None,
) -> Any:
    """A run's config (any task: ``train.steps``, ``data.data_root``, ``out``) with
    command-line overrides applied (``None`` keeps a value)."""
    replace = dataclasses.replace
    if steps is not None:
        config = replace(config, train=replace(config.train, steps=steps))
    if data_root is not None:
        config = replace(config, data=replace(config.data, data_root=str(data_root)))
    if out is not None:
        config = replace(config, out=str(out))
    return config


def config_hash(config: Any) -> str:
    """SHA-256 of what shapes the training (not ``out``, ``data.data_root``, nor how fast it
    runs: ``train.max_minutes``, ``channels_last``, ``compile``, ``bf16``)."""
    data = plain(config)
    data.pop("out", None)
    data.get("data", {}).pop("data_root", None)
    for key in ("max_minutes", "channels_last", "compile", "bf16"):
        data.get("train", {}).pop(key, None)
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()
