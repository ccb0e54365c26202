"""``unblur.restore``: the one place where an image is restored.

The command line, the benchmarks and the coming video and web features all call
:func:`restore`. It takes the blurred pixels and a method, and returns a
:class:`Restoration`: the restored pixels together with what was done (the method and why,
the colour space, the kernel or motion field if one was estimated, the time taken).

Methods:

* ``network``: the restoration network (``model``), tiled on large pictures.
* ``kernel``: non-blind deconvolution with a known ``kernel`` (``deconvolution``:
  hyper-Laplacian, the best measured, or Wiener or Richardson-Lucy).
* ``blind``: one uniform kernel estimated from the picture, then hyper-Laplacian.
* ``motion``: the per-pixel motion field estimated by the motion network, then spatially
  varying hyper-Laplacian.
* ``auto`` (the default): ``kernel`` when a kernel is given; otherwise the rule of
  :mod:`unblur.restoration.auto`: kernels estimated on several windows agree, the motion
  network sees the same motion across the picture and the noise is low, so this is camera
  shake of a static scene, so ``blind``; else ``network``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import numpy as np

from unblur import io

if TYPE_CHECKING:
    from unblur.motion.estimate import MotionEstimate
    from unblur.restoration.auto import Evidence
    from unblur.restoration.network import Deblurrer

__all__ = ["DECONVOLUTIONS", "METHODS", "SPACES", "Restoration", "restore"]

METHODS = ("auto", "network", "kernel", "blind", "motion")
DECONVOLUTIONS = ("hyperlaplacian", "wiener", "rl")
SPACES = ("auto", "linear", "srgb")
DEFAULT_MODEL = "nafnet-fast"
DEFAULT_KERNEL_SIZE = 31
POLISH_MODEL = "nafnet-polish"
"""The network ``auto`` runs on its deconvolution where its weights ship: trained to clean a
deconvolution (configs/nafnet-polish.yaml); without them, the restoration network itself."""


@dataclass(frozen=True)
class Restoration:
    """A restored picture and what was done to it.

    Attributes:
        pixels: float32 restored image, the input's shape, in ``[0, 1]`` (alpha untouched).
        method: the method that ran: ``network``, ``kernel``, ``blind`` or ``motion``.
        reason: why that method (the ``auto`` rule's numbers, or "asked for").
        seconds: wall time of the call.
        model: the network's name for ``network``, and for ``blind`` blended with its
            restoration; else ``None`` (also where the blend gives that restoration no share,
            so it is not run).
        space: ``"linear"`` or ``"srgb"`` for the classical methods, else ``None``.
        kernel: the kernel deconvolved with (given or estimated), else ``None``.
        motion: the estimated motion field for ``motion``, else ``None``.
        evidence: what ``auto`` measured (:class:`unblur.restoration.auto.Evidence`), else
            ``None``.
        share: for ``blind`` chosen by ``auto``, the deconvolution's share of the output,
            blended with the network (``model``) for the rest
            (:func:`unblur.restoration.auto.blind_share`); 1 when it was not blended, else
            ``None``.
        polish: with ``share``, the share of the network run on the deconvolution
            (:func:`unblur.restoration.auto.blind_polish`), the network's restoration of the
            input making up ``1 - share - polish``; else ``None``.
        polish_model: with ``polish``, the network run on the deconvolution
            (:data:`POLISH_MODEL` where it ships, else ``model``); else ``None``.
        passes: how many turns and flips of the picture each network pass averaged over
            (``tta``: 1, 4 or 8, :data:`unblur.restoration.network.PASSES`).
    """

    pixels: np.ndarray = field(repr=False)
    method: str
    reason: str
    seconds: float
    model: str | None = None
    space: str | None = None
    kernel: np.ndarray | None = field(default=None, repr=False)
    motion: MotionEstimate | None = field(default=None, repr=False)
    evidence: Evidence | None = field(default=None, repr=False)
    share: float | None = None
    polish: float | None = None
    polish_model: str | None = None
    passes: int = 1

    def describe(self) -> str:
        """One line for people: the method, its model or space, why, and the time."""
        what = self.method
        if self.method == "blind" and self.share is not None and self.share < 1.0:
            polish = self.polish or 0.0
            network = max(0.0, 1.0 - self.share - polish)
            what += f" ({self.space}, {self.share:.0%})"
            if network > 0:
                what += f" + network ({self.model}, {network:.0%})"
            if polish:
                cleaner = self.polish_model or "network"
                what += f" + {cleaner} on the deconvolution ({polish:.0%})"
        elif self.model:
            what += f" ({self.model})"
        elif self.space:
            what += f" ({self.space})"
        if self.passes > 1:
            from unblur.restoration.network import passes_name

            what += ", " + passes_name(self.passes)
        return f"{what}: {self.reason} [{self.seconds:.1f} s]"


def _check_image(image: np.ndarray) -> np.ndarray:
    arr = np.asarray(image)
    if not np.issubdtype(arr.dtype, np.floating):
        raise ValueError(f"image must be a float array in [0, 1], got dtype {arr.dtype}")
    if arr.ndim not in (2, 3) or (arr.ndim == 3 and arr.shape[2] not in (1, 3, 4)):
        raise ValueError(f"image must be (H, W) or (H, W, C) with C in 1, 3, 4, got {arr.shape}")
    if min(arr.shape[:2]) < 1:
        raise ValueError(f"image is empty: {arr.shape}")
    return arr.astype(np.float32, copy=False)


def _in_space(pixels: np.ndarray, space: str) -> np.ndarray:
    return io.srgb_to_linear(pixels) if space == "linear" else pixels


def _out_of_space(pixels: np.ndarray, space: str) -> np.ndarray:
    return io.linear_to_srgb(pixels) if space == "linear" else pixels


def restore(
    image: np.ndarray,
    method: Literal["auto", "network", "kernel", "blind", "motion"] = "auto",
    *,
    kernel: np.ndarray | None = None,
    model: str = DEFAULT_MODEL,
    weights: str | Path | None = None,
    deblurrer: Deblurrer | None = None,
    deconvolution: Literal["hyperlaplacian", "wiener", "rl"] = "hyperlaplacian",
    space: Literal["auto", "linear", "srgb"] = "auto",
    kernel_size: int = DEFAULT_KERNEL_SIZE,
    frames: tuple[np.ndarray, np.ndarray] | None = None,
    device: str = "auto",
    tta: bool | Literal["auto"] = "auto",
    progress: bool | Callable[[int, int], None] = False,
) -> Restoration:
    """Restore one blurred picture.

    Args:
        image: blurred float image in ``[0, 1]`` as stored (sRGB for camera pictures),
            ``(H, W)`` or ``(H, W, C)`` with ``C`` in 1, 3, 4 (alpha passes through).
        method: ``auto``, ``network``, ``kernel``, ``blind`` or ``motion`` (module docstring).
        kernel: the known blur kernel (true-convolution orientation, any scale) for
            ``kernel``; with ``auto`` a kernel means ``kernel``.
        model: restoration network for ``network`` (and ``auto``).
        weights: safetensors weights for ``model``'s architecture instead of the shipped ones.
        deblurrer: an already loaded :class:`unblur.restoration.network.Deblurrer` to use for
            ``network`` (a batch loads it once); ``model``, ``weights`` and ``device`` are then
            ignored.
        deconvolution: the non-blind method for ``kernel``.
        space: colour space of the classical methods: ``linear`` light (camera pictures),
            ``srgb`` (the stored values: data already linear), or ``auto`` (decided from the
            picture: :func:`unblur.restoration.auto.choose_space`).
        kernel_size: odd kernel side for ``blind`` and ``auto``; at least as long as the blur.
        frames: ``(previous, next)`` video frames for ``motion`` (two-frame network).
        device: torch device for the networks.
        tta: the network also restores the picture flipped three ways, and those four of its
            transpose, and averages the eight results (+0.05 to +0.17 dB, eight times the
            network's cost); ``"auto"`` (the default) runs the eight for pictures up to 1.05
            megapixels (1280x720), the four flips up to 2.1 (full HD), one pass above
            (:meth:`unblur.restoration.network.Deblurrer.passes_for`). A given ``deblurrer``
            keeps its own.
        progress: show a progress bar (or call ``progress(done, total)``) over the network's
            tiles or the varying deconvolution's patches.

    Returns:
        A :class:`Restoration`.

    Raises:
        ValueError: an unknown method, space or deconvolution; ``kernel`` without a kernel
            or a kernel with another method; a bad image.
        unblur.errors.KernelError: a kernel that cannot be used (empty, negative, too big).
        unblur.errors.InputError: a picture too small for ``blind``'s ``kernel_size``.
        unblur.errors.ModelError: unknown model or unreadable weights.

    Example:
        >>> import numpy as np, unblur
        >>> blurred = np.full((64, 64, 3), 0.5, np.float32)
        >>> result = unblur.restore(blurred, "network")
        >>> result.method, result.pixels.shape
        ('network', (64, 64, 3))
    """
    start = time.perf_counter()
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; choose from {', '.join(METHODS)}")
    if space not in SPACES:
        raise ValueError(f"unknown space {space!r}; choose from {', '.join(SPACES)}")
    if deconvolution not in DECONVOLUTIONS:
        raise ValueError(
            f"unknown deconvolution {deconvolution!r}; choose from {', '.join(DECONVOLUTIONS)}"
        )
    if kernel is not None and method not in ("auto", "kernel"):
        raise ValueError(f"a kernel is for method 'kernel'; method {method!r} needs none")
    if method == "kernel" and kernel is None:
        raise ValueError("method 'kernel' needs the blur kernel")
    pixels = _check_image(image)
    alpha = pixels[..., 3:] if pixels.ndim == 3 and pixels.shape[2] == 4 else None
    colour = pixels[..., :3] if alpha is not None else pixels

    reason = "asked for"
    if method == "auto" and kernel is not None:
        method, reason = "kernel", "a kernel was given"
    chosen_space, space_reason = space, "asked for"
    if space == "auto":
        from unblur.restoration.auto import choose_space

        chosen_space, space_reason = choose_space(colour)

    evidence = None
    share = polish = None
    if method == "auto":
        from unblur.restoration.auto import (
            blind_polish,
            blind_share,
            choose,
            uniform_blur_evidence,
        )
        from unblur.restoration.network import resolve_device

        evidence = uniform_blur_evidence(
            _in_space(colour, chosen_space),
            kernel_size,
            picture=colour,
            device=str(resolve_device(device)),
        )
        method, reason = choose(evidence)
        grey = colour.ndim == 2 or colour.shape[2] == 1
        trained = _trained_cleaner(model, weights, deblurrer)
        share = blind_share(evidence, grey=grey, trained=trained) if method == "blind" else None
        polish = blind_polish(evidence, grey=grey, trained=trained) if method == "blind" else None

    result_kernel = None
    estimate = None
    model_name = None
    polish_model = None
    passes = 1
    used_space: str | None = chosen_space
    if method == "network":
        restored, model_name, passes = _network(
            colour, model, weights, deblurrer, device, tta, progress
        )
        used_space = None
    elif method == "kernel":
        from unblur.restoration import deconv

        assert kernel is not None
        result_kernel = deconv.validate_kernel(kernel, colour.shape, name="kernel")
        data = _in_space(colour, chosen_space)
        restored = _out_of_space(
            deconv.deconvolve(data, result_kernel, method=deconvolution), chosen_space
        )
        reason = f"{reason}; {deconvolution}"
    elif method == "blind":
        restored, result_kernel = _blind(colour, kernel_size, chosen_space, evidence)
        if share is not None and share < 1.0:  # auto: blend with the network's restoration
            from unblur.restoration.auto import blend

            deconvolved = np.clip(restored, 0.0, 1.0)
            network_share = max(0.0, 1.0 - share - (polish or 0.0))
            network_restored = deconvolved  # not run where its share is nil
            if network_share > 0:
                network_restored, model_name, passes = _network(
                    colour, model, weights, deblurrer, device, tta, progress
                )
            polished = None
            if polish:  # a network run on the deconvolution: its ringing and noise taken out
                polished, polish_model, passes = _polish(
                    deconvolved, model, weights, deblurrer, device, tta, progress
                )
            restored = blend(deconvolved, network_restored, share, polished, polish or 0.0)
            parts = [f"{share:.0%} this deconvolution"]
            if network_share > 0:
                parts.append(f"{network_share:.0%} the network's restoration ({model_name})")
            if polish:
                parts.append(f"{polish:.0%} {polish_model} run on the deconvolution")
            reason = f"{reason}; blended: {', '.join(parts)}"
    else:  # motion
        from unblur.restoration.field import deblur_motion
        from unblur.restoration.network import resolve_device

        restored, estimate = deblur_motion(
            colour,
            space=chosen_space,
            frames=frames,
            device=str(resolve_device(device)),
            progress=bool(progress),
        )
    if used_space is not None and space == "auto":
        reason = f"{reason}; {space_reason}"
    restored = np.clip(restored, 0.0, 1.0).astype(np.float32)
    if alpha is not None:
        restored = np.concatenate([restored, alpha], axis=2)
    return Restoration(
        pixels=restored,
        method=method,
        reason=reason,
        seconds=time.perf_counter() - start,
        model=model_name,
        space=used_space,
        kernel=result_kernel,
        motion=estimate,
        evidence=evidence,
        share=share,
        polish=polish if share is not None and share < 1.0 else None,
        passes=passes,
        polish_model=polish_model,
    )


def _network(
    colour: np.ndarray,
    model: str,
    weights: str | Path | None,
    deblurrer: Deblurrer | None,
    device: str,
    tta: bool | str,
    progress: bool | Callable[[int, int], None],
) -> tuple[np.ndarray, str, int]:
    """The network's restoration, its name, and how many turns and flips it averaged."""
    from unblur.restoration import network

    if deblurrer is None:
        deblurrer = network.cached_deblurrer(model, weights=weights, device=device, tta=tta)
    passes = deblurrer.passes_for(*colour.shape[:2])
    return deblurrer.restore(colour, progress=progress), deblurrer.name, passes


def _trained_cleaner(model: str, weights: str | Path | None, deblurrer: Deblurrer | None) -> bool:
    """Whether auto's network on the deconvolution is :data:`POLISH_MODEL`, trained for it: its
    weights ship and the restoration uses the default model's shipped weights."""
    from unblur.models import get_spec

    own = weights is None and (deblurrer.name if deblurrer is not None else model) == DEFAULT_MODEL
    return own and get_spec(POLISH_MODEL).has_weights


def _polish(
    deconvolved: np.ndarray,
    model: str,
    weights: str | Path | None,
    deblurrer: Deblurrer | None,
    device: str,
    tta: bool | str,
    progress: bool | Callable[[int, int], None],
) -> tuple[np.ndarray, str, int]:
    """The network run on auto's deconvolution, its name and its turns and flips:
    :data:`POLISH_MODEL`, trained for it, where its weights ship and the restoration uses the
    default model's shipped weights (as ``deblurrer`` does, whose device and ``tta`` it then
    takes); else the restoration network itself, as before there was one."""
    from unblur.restoration import network

    if not _trained_cleaner(model, weights, deblurrer):
        return _network(deconvolved, model, weights, deblurrer, device, tta, progress)
    if deblurrer is not None:
        device, tta = str(deblurrer.device), deblurrer.tta
    cleaner = network.cached_deblurrer(POLISH_MODEL, device=device, tta=tta)
    passes = cleaner.passes_for(*deconvolved.shape[:2])
    return cleaner.restore(deconvolved, progress=progress), POLISH_MODEL, passes


def _blind(
    colour: np.ndarray, kernel_size: int, space: str, evidence: Evidence | None
) -> tuple[np.ndarray, np.ndarray]:
    """Deconvolve with one kernel estimated on the most textured 512-px window: the one
    ``auto`` already estimated (``evidence.kernel``) when it chose this, else estimated here.
    """
    from unblur.errors import InputError
    from unblur.restoration import blind, deconv

    if min(colour.shape[:2]) < 2 * kernel_size:
        raise InputError(
            f"image {colour.shape[1]}x{colour.shape[0]} is too small for --kernel-size "
            f"{kernel_size} (needs at least {2 * kernel_size} px a side)"
        )
    data = _in_space(colour, space)
    if evidence is not None and evidence.kernel is not None:
        kernel = evidence.kernel
        restored = deconv.hyper_laplacian(data, kernel, origin="mass")
    else:
        restored, kernel = blind.deblur_blind(data, kernel_size)
    return _out_of_space(restored, space), kernel
