"""Training checkpoints and weights as safetensors: exact resume, nothing unpickled.

A checkpoint is ``last.safetensors`` (weights ``params.*``, EMA weights ``params_ema.*`` and
the AdamW moments ``optim.*``, with the training state as JSON metadata) plus ``last.json``
(the same state, for people and tools). Both are written to a temporary file and renamed.

A *slim* checkpoint (:func:`slim`, ``python -m unblur.train.checkpoint slim DIR``) keeps only
the EMA weights and the state: a third of the size, for committing a run's state to the
repository once a session. Resuming from it is a warm restart: the weights start from the EMA
weights and AdamW's moments are estimated afresh; the step, the schedule, the data stream and
the log carry on.

A slim checkpoint whose EMA weights were just shipped can hold a *reference* instead
(``slim DIR --same-as WEIGHTS``): no tensors, only the state plus the shipped file's path
(relative to ``DIR``) and the SHA-256 of its tensors. Resuming reads the EMA weights from that
file and refuses it if its tensors changed. The session's one commit of training state then
does not carry the same weights twice. ``slim DIR --restart-from WEIGHTS`` makes the same kind
of reference to weights that are *not* the run's own (shipped weights averaged from it): the
run then goes on from them with a warm restart.

A run is *forked* (:func:`fork`, ``python -m unblur.train.checkpoint fork RUN NEW``) for a
controlled experiment: the new run folder gets the checkpoint and the log of the old one, and
a reference to shipped weights is rewritten relative to the new folder, so the two runs go on
from exactly the same state.

Weights are *averaged* (:func:`mean_weights`, ``python -m unblur.train.checkpoint mean OUT A B
...``): plain weights files and training checkpoints (their EMA weights) of the same
architecture and run, tensor by tensor, into one weights file (a "model soup", Wortsman et al.
2022), a candidate for the ship gate like any other.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from unblur.errors import InputError, ModelError
from unblur.io import atomic_write

__all__ = [
    "CHECKPOINT_LIMIT_BYTES",
    "fork",
    "load_checkpoint",
    "load_optimizer_tensors",
    "mean_weights",
    "optimizer_tensors",
    "save_checkpoint",
    "save_weights",
    "slim",
    "tensors_sha256",
    "weights_file",
]

CHECKPOINT_LIMIT_BYTES = 50 * 1024 * 1024
"""Above this, the optimizer state goes to a file of its own next to ``last.safetensors``."""

_STATE_KEY = "unblur_state"
FORMAT = 1


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


def _read_checkpoint(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """The tensors of a checkpoint's ``last.safetensors`` and its training state."""
    tensors, metadata = _read_safetensors(path)
    try:
        state = json.loads(metadata[_STATE_KEY])
    except (KeyError, ValueError):
        raise InputError("not an unblur training checkpoint (no training state)", path) from None
    return tensors, state


def tensors_sha256(tensors: dict[str, torch.Tensor]) -> str:
    """SHA-256 of tensors (names, types, shapes, bytes), not of a file: safetensors writes its
    header's metadata in no fixed order, so equal weights can make different files."""
    digest = hashlib.sha256()
    for key in sorted(tensors):
        tensor = tensors[key].detach().to("cpu").contiguous()
        digest.update(f"{key}|{tensor.dtype}|{tuple(tensor.shape)}|".encode())
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def _referenced_ema(directory: Path, state: dict[str, Any]) -> dict[str, torch.Tensor]:
    """The EMA weights (``params_ema.*``) of a checkpoint that refers to a weights file."""
    path = directory / state["ema_file"]
    weights, _ = _read_safetensors(path)
    if tensors_sha256(weights) != state.get("ema_sha256"):
        raise InputError(
            "the weights this checkpoint refers to have changed since it was written "
            "(resume from a full checkpoint, or start a new run from these weights)",
            path,
        )
    return {"params_ema." + k: v for k, v in weights.items()}


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
    tensors, state = _read_checkpoint(path)
    if state.get("format") != FORMAT:
        raise InputError(f"checkpoint format {state.get('format')!r} is not {FORMAT}", path)
    if state.get("optim_file"):
        optim_path = directory / state["optim_file"]
        optim, optim_meta = _read_safetensors(optim_path)
        if optim_meta.get("step") != str(state["step"]):
            raise InputError(f"optimizer state is not from step {state['step']}", optim_path)
        tensors |= optim
    if state.get("ema_file"):
        tensors |= _referenced_ema(directory, state)
    slimmed = bool(state.get("slim"))
    for prefix, module in (("params.", model), ("params_ema.", ema)):
        source = "params_ema." if slimmed else prefix
        group = {k[len(source) :]: v for k, v in tensors.items() if k.startswith(source)}
        try:
            module.load_state_dict(group, strict=True)
        except RuntimeError as err:
            first = str(err).splitlines()[0]
            raise ModelError(f"checkpoint does not fit the model ({first})", path) from None
    if not slimmed:
        load_optimizer_tensors(
            optimizer, names, {k: v for k, v in tensors.items() if k.startswith("optim.")}
        )
    return state


def _checkpoint_ema(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """A checkpoint's EMA weights (``params_ema.*``, read from the weights file it refers to if
    it is a reference) and its training state."""
    tensors, state = _read_checkpoint(path)
    if state.get("ema_file"):
        tensors |= _referenced_ema(path.parent, state)
    ema = {k: v for k, v in tensors.items() if k.startswith("params_ema.")}
    if not ema:
        raise InputError("checkpoint has no EMA weights", path)
    return ema, state


def slim(
    directory: Path, same_as: Path | None = None, *, restart_from: Path | None = None
) -> tuple[int, int]:
    """Rewrite ``directory/last.safetensors`` with only the EMA weights and the state.

    Args:
        directory: the checkpoint folder (``…/ckpt``).
        same_as: a weights file (e.g. the shipped weights) whose tensors equal the EMA
            weights exactly: the checkpoint then keeps a reference to it (relative path and
            tensor SHA-256) instead of the tensors.
        restart_from: instead of ``same_as``, a weights file of the same architecture whose
            tensors may differ (e.g. shipped weights averaged from this run's): the run's EMA
            weights are dropped and the checkpoint refers to this file, so the run goes on
            from it with a warm restart (step, schedule, data stream and log carry on).

    Returns:
        ``(bytes before, bytes after)`` of the checkpoint files.

    Raises:
        InputError: no readable checkpoint there, ``same_as`` holds other weights, or
            ``restart_from`` other tensor names or shapes.
    """
    directory = Path(directory)
    path = directory / "last.safetensors"
    files = [path, *directory.glob("optim-*.safetensors")]
    before = sum(f.stat().st_size for f in files if f.exists())
    if same_as is not None and restart_from is not None:
        raise InputError("give same_as or restart_from, not both", directory)
    ema, state = _checkpoint_ema(path)
    reference = same_as if same_as is not None else restart_from
    state = dict(state, slim=True, optim_file=None)
    if reference is None and state.get("ema_file"):
        # already a reference (slimmed again, e.g. by the stop script after a ship): it stays
        # one, rather than writing the referenced tensors back into the checkpoint
        ema = {}
    else:
        state.pop("ema_file", None)
        state.pop("ema_sha256", None)
    if reference is not None:
        weights, _ = _read_safetensors(Path(reference))
        plain = {k[len("params_ema.") :]: v for k, v in ema.items()}
        if plain.keys() != weights.keys() or any(plain[k].shape != weights[k].shape for k in plain):
            raise InputError("its tensors are not of this checkpoint's architecture", reference)
        if same_as is not None and not all(torch.equal(plain[k], weights[k]) for k in plain):
            raise InputError("its tensors are not this checkpoint's EMA weights", same_as)
        state["ema_file"] = os.path.relpath(Path(reference).resolve(), directory.resolve())
        state["ema_sha256"] = tensors_sha256(weights)
        ema = {}
    text = json.dumps(state, indent=2, sort_keys=True)
    _save_safetensors(path, ema, {_STATE_KEY: text})
    atomic_write(directory / "last.json", lambda tmp: tmp.write_text(text + "\n"))
    for old in directory.glob("optim-*.safetensors"):
        old.unlink(missing_ok=True)
    return before, path.stat().st_size


def fork(run: Path, new: Path) -> int:
    """Start run folder ``new`` from the state of run folder ``run``.

    Copies ``run/ckpt`` (``last.safetensors``, ``last.json`` and an optimizer file, if any)
    and ``run/log.csv`` into ``new``; a reference to weights (``slim --same-as``) is rewritten
    relative to ``new/ckpt``. Resume ``new`` with its own config (``unblur train CONFIG
    --resume`` with ``out: new``) for a run that differs in one choice.

    Returns:
        The step the two runs share.

    Raises:
        InputError: ``run`` has no readable checkpoint, or ``new`` already has one.
    """
    source, target = Path(run) / "ckpt", Path(new) / "ckpt"
    path = source / "last.safetensors"
    tensors, state = _read_checkpoint(path)
    if (target / "last.safetensors").exists():
        raise InputError("already holds a checkpoint; fork into a new folder", target)
    if state.get("ema_file"):
        _referenced_ema(source, state)  # refuse a reference whose weights have changed
        weights = (source / state["ema_file"]).resolve()
        state = dict(state, ema_file=os.path.relpath(weights, target.resolve()))
    target.mkdir(parents=True, exist_ok=True)
    if state.get("optim_file"):
        optim, optim_meta = _read_safetensors(source / state["optim_file"])
        _save_safetensors(target / state["optim_file"], optim, optim_meta)
    text = json.dumps(state, indent=2, sort_keys=True)
    _save_safetensors(target / "last.safetensors", tensors, {_STATE_KEY: text})
    atomic_write(target / "last.json", lambda tmp: tmp.write_text(text + "\n"))
    log = Path(run) / "log.csv"
    if log.exists():
        atomic_write(Path(new) / "log.csv", lambda tmp: tmp.write_bytes(log.read_bytes()))
    return int(state["step"])


def weights_file(path: Path) -> Path:
    """``path`` itself for a file; for a checkpoint folder (``RUN/ckpt``) or a run folder
    (``RUN``), its checkpoint's ``last.safetensors``.

    Raises:
        InputError: a folder that holds no checkpoint.
    """
    path = Path(path)
    if not path.is_dir():
        return path
    for candidate in (path / "last.safetensors", path / "ckpt" / "last.safetensors"):
        if candidate.is_file():
            return candidate
    raise InputError("a folder without a training checkpoint (no last.safetensors)", path)


def _weights_of(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """Plain weights of a weights file, or a training checkpoint's EMA weights (the file, or
    its checkpoint or run folder); with the weights file's metadata (a checkpoint's: none)."""
    path = weights_file(path)
    tensors, metadata = _read_safetensors(path)
    if _STATE_KEY not in metadata:
        return tensors, metadata
    ema, _ = _checkpoint_ema(path)
    return {k[len("params_ema.") :]: v for k, v in ema.items()}, {}


def mean_weights(sources: Sequence[Path], out: Path, shares: Sequence[float] | None = None) -> int:
    """Average weights tensor by tensor into the weights file ``out``.

    Args:
        sources: two or more weights files or training checkpoints (``last.safetensors``:
            their EMA weights) of the same architecture; average only weights of one run (or
            fine-tuned from one start), for which averaging is known to work.
        out: the weights file to write (temporary file, then rename); it keeps the metadata of
            the first plain weights file among ``sources`` and adds ``soup``, their names,
            and ``soup_shares``.
        shares: one weight per source, summing to 1 (e.g. 0.3 of a run's EMA and 0.7 of the
            shipped weights); ``None``: equal shares.

    Returns:
        The number of tensors averaged.

    Raises:
        InputError: fewer than two sources, an unreadable one, tensors that differ in
            names or shapes, or shares that are not one per source, each >= 0, summing to 1.
    """
    if len(sources) < 2:
        raise InputError("averaging needs at least two weights files", out)
    if shares is None:
        shares = [1 / len(sources)] * len(sources)
    if len(shares) != len(sources) or min(shares) < 0 or abs(sum(shares) - 1) > 1e-6:
        raise InputError("shares must be one per file, each at least 0, summing to 1", out)
    total: dict[str, torch.Tensor] = {}
    dtypes: dict[str, torch.dtype] = {}
    metadata: dict[str, str] | None = None
    for path, share in zip(map(Path, sources), shares, strict=True):
        tensors, meta = _weights_of(path)
        if metadata is None and meta:
            metadata = dict(meta)
        dtypes = dtypes or {k: v.dtype for k, v in tensors.items()}
        if total and (
            tensors.keys() != total.keys() or any(tensors[k].shape != total[k].shape for k in total)
        ):
            raise InputError("its tensors differ in names or shapes from the first file's", path)
        for key, value in tensors.items():
            value = value.to(torch.float64) * share
            total[key] = total[key] + value if key in total else value
    mean = {k: v.to(dtypes[k]).contiguous() for k, v in total.items()}
    metadata = dict(metadata or {}, soup=", ".join(Path(p).name for p in sources))
    metadata["soup_shares"] = ", ".join(f"{w:g}" for w in shares)
    _save_safetensors(Path(out), mean, metadata)
    return len(mean)


def _main(argv: list[str] | None = None) -> int:
    import argparse
    import sys

    from unblur.errors import UnblurError

    parser = argparse.ArgumentParser(
        prog="python -m unblur.train.checkpoint",
        description="slim: slim training checkpoints to their EMA weights and state (warm "
        "restart). fork RUN NEW: start run folder NEW from the state of run folder RUN. "
        "mean OUT A B... [--shares a b ...]: average weights files or checkpoints' EMA "
        "weights into OUT.",
    )
    parser.add_argument("action", choices=["slim", "fork", "mean"])
    parser.add_argument(
        "folders",
        nargs="+",
        type=Path,
        help="slim: checkpoint folders (…/ckpt); fork: RUN NEW; mean: OUT and the files",
    )
    parser.add_argument(
        "--same-as",
        type=Path,
        metavar="WEIGHTS",
        help="weights file equal to the EMA weights (just shipped): keep a reference to it",
    )
    parser.add_argument(
        "--restart-from",
        type=Path,
        metavar="WEIGHTS",
        help="weights file of the same architecture (e.g. shipped weights averaged from this "
        "run's): drop the EMA weights and go on from these with a warm restart",
    )
    parser.add_argument(
        "--shares",
        type=float,
        nargs="+",
        metavar="W",
        help="mean: one weight per file, summing to 1 (default: equal)",
    )
    args = parser.parse_args(argv)
    if args.shares is not None and args.action != "mean":
        parser.error("--shares is for mean")
    if args.action == "fork":
        if len(args.folders) != 2 or args.same_as is not None or args.restart_from is not None:
            parser.error("fork takes two run folders, RUN and NEW, and no --same-as/--restart-from")
        try:
            step = fork(*args.folders)
        except UnblurError as err:
            print(f"unblur: error: {err}", file=sys.stderr)
            return 1
        print(f"{args.folders[1]}: forked from {args.folders[0]} at step {step}")
        return 0
    if args.action == "mean":
        if len(args.folders) < 3 or args.same_as is not None or args.restart_from is not None:
            parser.error("mean takes OUT and at least two files, and no --same-as/--restart-from")
        out, *sources = args.folders
        try:
            count = mean_weights(sources, out, args.shares)
        except UnblurError as err:
            print(f"unblur: error: {err}", file=sys.stderr)
            return 1
        print(f"{out}: the mean of {len(sources)} files ({count} tensors)")
        return 0
    status = 0
    for folder in args.folders:
        try:
            before, after = slim(folder, args.same_as, restart_from=args.restart_from)
        except UnblurError as err:
            print(f"unblur: error: {err}", file=sys.stderr)
            status = 1
            continue
        print(f"{folder}: {before / 2**20:.1f} MiB -> {after / 2**20:.1f} MiB")
    return status


if __name__ == "__main__":
    raise SystemExit(_main())


def save_weights(path: Path, model: nn.Module, metadata: dict[str, str]) -> None:
    """Write a model's weights as plain safetensors (loadable with ``load_weights``)."""
    _save_safetensors(path, _cpu(model.state_dict(), ""), metadata)
