"""Restoration networks to ONNX, and their weights to plain safetensors.

:func:`export_onnx` writes a graph with dynamic batch, height and width through
the ``torch.export``-based exporter (opset 18 or newer; it needs ``onnx``,
``onnxscript`` and, for the check, ``onnxruntime``: ``pip install
"unblur[export]"``). The graph takes ``image`` (B, 3, H, W) float32 in [0, 1],
sRGB as stored, and gives ``restored`` of the same shape, unclipped, exactly as
:class:`~unblur.models.restore_net.NAFNet` does for any size of at least
``model.multiple`` pixels (or, with a baked-in local pool of N pixels, more
than N).

:func:`save_weights` writes a model's tensors (optionally as fp16 or bf16, which
:func:`~unblur.models.load_weights` converts back) and proves that the file loads.
"""

from __future__ import annotations

import contextlib
import importlib.util
import logging
import warnings
from collections.abc import Iterator, Mapping
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from unblur.errors import ConfigError, ModelError, UnblurError

__all__ = [
    "INSTALL_HINT",
    "MIN_OPSET",
    "TOLERANCE",
    "ExportableNAFNet",
    "export_onnx",
    "require_onnx",
    "save_weights",
]

MIN_OPSET: int = 18
"""Oldest opset the torch.export-based exporter writes (it cannot down-convert ``Pad``)."""

TOLERANCE: float = 1e-3
"""Largest |onnxruntime - PyTorch| that the export check accepts."""

INSTALL_HINT = 'pip install "unblur[export]"'

_DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}


def require_onnx(*, runtime: bool = True) -> None:
    """Fail with an install hint unless the ONNX packages are importable.

    Raises:
        UnblurError: ``onnx``, ``onnxscript`` or (with ``runtime``) ``onnxruntime`` is missing.
    """
    names = ["onnx", "onnxscript"] + (["onnxruntime"] if runtime else [])
    missing = [n for n in names if importlib.util.find_spec(n) is None]
    if missing:
        raise UnblurError(
            f"ONNX export needs {', '.join(missing)}, which are not installed: {INSTALL_HINT}"
        )


# --------------------------------------------------------------------------- safetensors


def save_weights(
    path: str | Path,
    model: nn.Module,
    name: str,
    *,
    dtype: str = "fp32",
    overwrite: bool = False,
    metadata: Mapping[str, str] | None = None,
) -> Path:
    """Write a registered model's weights as safetensors, then prove they load back.

    Args:
        path: the file to write (atomically).
        model: the model whose ``state_dict`` is written.
        name: its registry name; the file is loaded into a fresh ``name`` model to check it.
        dtype: ``"fp32"``, ``"fp16"`` or ``"bf16"`` for the floating-point tensors.
        overwrite: replace an existing file.
        metadata: more safetensors metadata, e.g. ``{"local_pool": "global"}`` (how the
            weights were validated: :data:`unblur.restoration.network.LOCAL_POOL_KEY`).

    Returns:
        The path written.

    Raises:
        ConfigError: unknown ``dtype``.
        OutputError: the file cannot be written, or exists and ``overwrite`` is False.
        ModelError: the written file does not load into a fresh ``name`` model.
    """
    from safetensors.torch import save

    from unblur import __version__
    from unblur.io import atomic_write
    from unblur.models import create_model, load_weights

    if dtype not in _DTYPES:
        raise ConfigError(f"unknown dtype {dtype!r}; use one of {', '.join(_DTYPES)}")
    kind = _DTYPES[dtype]
    tensors = {
        k: (v.to(kind) if v.is_floating_point() else v).detach().cpu().contiguous()
        for k, v in model.state_dict().items()
    }
    meta = {**(metadata or {}), "model": name, "dtype": dtype, "unblur": __version__}

    def write(tmp: Path) -> None:
        tmp.write_bytes(save(tensors, metadata=meta))  # into the temp file, keeping its mode
        load_weights(create_model(name, pretrained=False), tmp)  # never leave a bad file

    return atomic_write(path, write, overwrite=overwrite)


# --------------------------------------------------------------------------- ONNX


class ExportableNAFNet(nn.Module):
    """NAFNet's forward with padding that ``torch.export`` keeps symbolic.

    :meth:`NAFNet.forward` pads only when the size is not a multiple, a branch on
    the size that one exported graph cannot hold for every size. Here the pad is
    always applied, possibly of zero, by reflection, which is what NAFNet does for
    inputs of at least ``multiple`` pixels, so the two agree on all of those.

    Args:
        net: a :class:`~unblur.models.restore_net.NAFNet` without motion input.

    Shape:
        - Input: (B, 3, H, W), H and W >= ``net.multiple``.
        - Output: (B, 3, H, W).
    """

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        if getattr(net, "motion_channels", 0):
            raise ModelError("models with a motion input cannot be exported yet")
        self.net = net

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        net = self.net
        h, w = image.shape[-2], image.shape[-1]
        x = F.pad(image, (0, (-w) % net.multiple, 0, (-h) % net.multiple), mode="reflect")
        return net.forward_padded(x)[..., :h, :w]


def export_onnx(
    model: nn.Module,
    path: str | Path,
    *,
    opset: int = MIN_OPSET,
    local_pool: int | None = None,
    check: bool = True,
    overwrite: bool = False,
) -> float | None:
    """Export a NAFNet restoration model to ONNX with dynamic batch, height and width.

    Args:
        model: a :class:`~unblur.models.restore_net.NAFNet` without motion input; it is
            moved to the CPU as float32 and its local pool is set, in place.
        path: the ``.onnx`` file to write, atomically: nothing is left on failure.
        opset: ONNX opset, at least :data:`MIN_OPSET`.
        local_pool: channel-attention window (input pixels) baked into the graph;
            ``None`` pools globally, as in training, and any size of at least
            ``model.multiple`` works; otherwise H and W must exceed ``local_pool``.
        check: run onnxruntime on a random batch of 2 at an awkward size and compare
            with PyTorch.
        overwrite: replace an existing file.

    Returns:
        The largest |onnxruntime - PyTorch|, or ``None`` without ``check``.

    Raises:
        UnblurError: the ONNX packages are missing (with an install hint).
        ConfigError: opset too old or a bad ``local_pool``.
        ModelError: the export failed, or the check found a difference over
            :data:`TOLERANCE`.
        OutputError: the file cannot be written, or exists and ``overwrite`` is False.
    """
    from unblur.io import atomic_write

    require_onnx(runtime=check)
    if opset < MIN_OPSET:
        raise ConfigError(f"opset {opset} is too old: the exporter writes {MIN_OPSET} or newer")
    wrapper = ExportableNAFNet(model.float().cpu().eval()).eval()
    net = wrapper.net
    try:
        net.set_local_pool(local_pool)
    except ValueError as err:
        raise ConfigError(f"local pool: {err}") from None
    multiple = int(net.multiple)
    min_side = multiple if local_pool is None else local_pool + 1
    result: dict[str, float] = {}

    def write(tmp: Path) -> None:
        program = _export(wrapper, opset, min_side, multiple)
        with _quiet():
            program.save(str(tmp), external_data=False)
        if check:
            result["diff"] = _compare(net, tmp, min_side, multiple)

    atomic_write(path, write, overwrite=overwrite)
    return result.get("diff")


def _export(wrapper: nn.Module, opset: int, min_side: int, multiple: int) -> object:
    from torch.export import Dim

    # batch 2, not 1, which torch.export would take for a constant; sides on the grid
    side = -(-max(min_side, 2 * multiple) // multiple) * multiple
    gen = torch.Generator().manual_seed(0)
    example = torch.rand(2, 3, side, side + multiple, generator=gen)
    dims = {
        0: Dim("batch", min=1, max=1024),
        2: Dim("height", min=min_side, max=16384),
        3: Dim("width", min=min_side, max=16384),
    }
    try:
        with _quiet():
            program = torch.onnx.export(
                wrapper,
                (example,),
                dynamo=True,
                opset_version=opset,
                input_names=["image"],
                output_names=["restored"],
                dynamic_shapes={"image": dims},
                external_data=False,
                verbose=False,
            )
    except Exception as err:  # the exporter raises many types: report one line
        text = str(err).strip()
        first = text.splitlines()[0] if text else ""
        raise ModelError(f"ONNX export failed: {type(err).__name__}: {first}") from err
    if program is None:
        raise ModelError("ONNX export failed: the exporter returned no program")
    return program


def _compare(net: nn.Module, path: Path, min_side: int, multiple: int) -> float:
    """Largest |onnxruntime - PyTorch| on a random batch of 2 at an awkward size."""
    import numpy as np
    import onnxruntime as ort

    gen = torch.Generator().manual_seed(1)
    x = torch.rand(2, 3, min_side + multiple + 5, min_side + 2 * multiple + 7, generator=gen)
    with torch.inference_mode():
        expected = net(x).numpy()
    options = ort.SessionOptions()
    options.log_severity_level = 3
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    (got,) = session.run(["restored"], {"image": x.numpy()})
    if got.shape != expected.shape:
        raise ModelError(f"ONNX check failed: output shape {got.shape}, expected {expected.shape}")
    diff = float(np.abs(got - expected).max())
    if not diff <= TOLERANCE:  # also catches NaN
        raise ModelError(
            f"ONNX check failed: onnxruntime and PyTorch differ by up to {diff:.3g} "
            f"(more than {TOLERANCE:g})"
        )
    return diff


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Silence the exporter's warnings and its chatty loggers while it runs."""
    loggers = [logging.getLogger(n) for n in ("torch.onnx", "torch.export", "onnxscript")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        for lg, level in zip(loggers, levels, strict=True):
            lg.setLevel(level)
