"""Ship gate: new weights replace the shipped ones only if they are better on every set.

A release must never regress. The candidate (plain safetensors weights, or a training
checkpoint ``.../ckpt/last.safetensors``, whose EMA tensors ``params_ema.*`` are taken) and the
shipped weights (``src/unblur/models/weights/<model>.safetensors``, or ``--target``) are
scored on fixed, seeded validation sets, none of them training data and none of them an
evaluation set (kodak24, levin09, gopro-sample, sun80 stay untouched):

Restoration models (``list_models(task="restore")``), mean PSNR in dB, higher is better, with
:class:`unblur.restoration.network.Deblurrer` on the CPU (default tiling), sets made by the
training's own validation code (:func:`unblur.train.data.build_val_set`, seed 0):

* ``gopro0374``: the real GoPro-type pairs of scene GOPR0374 (``gopro-frameavg``, 4 pairs),
  whole (1280x720);
* ``shake``: set14 (13 photos), the largest centre square up to 720 px (250-576 px), camera
  shake 5-25 px in linear light, read noise 0.5 %;
* ``varying``: the same crops, spatially varying motion (camera translation, rotation, zoom and
  moving objects) capped at 5-25 px, read noise 0.5 %;
* ``noisy``: set5 + set14 (18 photos), the same crops, camera shake 5-25 px, read noise 2 %,
  Poisson shot noise (2000 photo-electrons at full scale) and JPEG q70;
* ``saturated``: set5 + set14, the same crops, every highlight boosted 2-8x in linear light
  before camera shake of 5-25 px and clipped (light sources, blown-out white), read noise
  0.5 %; the sharp side clipped as the blurred side is (:func:`unblur.blur.degrade`).

The pictures are as large as the photos allow (until 2026-12-06 the gate used 256 px crops and
512 px of the GoPro frames): weights can fail on large pictures only, and did (a tinted,
checkered white background on set14's ppt3 that its 256 px crop did not show).

Clean-up models (``list_models(task="polish")``: ``nafnet-polish``, the network ``auto`` runs on
its own deconvolution), mean PSNR in dB on what they see there: set14 / set5 photos blurred by
one kernel and deconvolved with a kernel as wrong as auto's estimates (``shake``, ``linear``,
``noisy``) or with the true kernel (``exact``). Until one ships, the candidate is compared
with the shipped ``nafnet-fast``, which ``auto`` runs on the deconvolution without one.

Motion models (``motion-single``, ``motion-frames``), median end-point error in pixels per kind
of motion (``linear``, ``field``, ``still``), lower is better: the motion training's own
validation samples (48 crops of 128 px from set14 + set5, seed 0) scored by
:func:`unblur.train.motion.field_errors`.

Verdict: PASS only if the candidate is strictly better than the shipped weights on every set
(where nothing is shipped yet, than the blurred input, or for motion than a zero field), and,
for restoration, no single picture is more than ``MAX_IMAGE_LOSS`` (1 dB) worse than with the
shipped weights: a better mean must not hide a picture the new weights ruin. The
markdown table and the verdict line, with the command and the date, are what go into MODELS.md
and BENCHMARKS.md. ``--ship`` writes the candidate's weights, as plain fp32 safetensors through
:func:`unblur.export.save_weights` (temporary file + rename, load-checked), over the shipped
file, and only on PASS. Nothing is ever unpickled.

Exit status: 0 PASS, 1 FAIL, 2 error (one line on stderr).

Usage (from the repository root; about 40 s for nafnet-fast, 5-8 s for a motion model, on one
thread of the 2-core CPU beside two trainings)::

    python benchmarks/ship_gate.py --model nafnet-fast \\
        --candidate checkpoints/nafnet-fast-gopro/ckpt/last.safetensors \\
        [--data ../shared/data] [--target FILE] [--ship] [--json OUT.json] [--markdown OUT.md]
        [--quiet]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import shlex
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

from unblur.errors import InputError, ModelError, UnblurError

GATE_SEED = 0
POLISH_BASELINE = "nafnet-fast"
"""Before a clean-up network (task ``polish``) ships, the gate compares it with this model's
shipped weights: what auto runs on its deconvolution without one."""
"""Seed of every synthetic set (the motion samples: the motion training's validation seed)."""

MAX_IMAGE_LOSS = 1.0
"""A restoration candidate fails if any one picture scores this many dB below the shipped
weights' result, whatever the means say."""

MAX_WEIGHTS_BYTES = 50 * 1024 * 1024
"""Shipped weights files must stay under this size."""

CHECKPOINT_EMA_PREFIX = "params_ema."
"""Tensors of a training checkpoint (:func:`unblur.train.trainer.save_checkpoint`) with the EMA
weights; ``params.`` holds the raw weights."""


@dataclass(frozen=True)
class Sizes:
    """Sizes of the gate's sets. The defaults are the gate; tests pass tiny ones.

    Attributes:
        crop: centre crop of the synthetic restoration sets, in pixels.
        pair_crop: centre crop of the real pairs.
        limit: at most this many images from each folder (``None``: all).
        motion_size: side of the motion validation samples (a multiple of 16).
        motion_count: number of motion validation samples.
    """

    crop: int = 720
    pair_crop: int = 1280
    limit: int | None = None
    motion_size: int = 128
    motion_count: int = 48


SIZES = Sizes()

SET_NOTES = {
    "restore": (
        "gopro0374: real GoPro-type pairs of scene GOPR0374 (gopro-frameavg), centre"
        " {pair_crop} px at most; shake: set14, camera shake 5-25 px, read noise 0.5 %; varying:"
        " set14, spatially varying motion capped at 5-25 px, read noise 0.5 %; noisy: set5 +"
        " set14, camera shake 5-25 px, read noise 2 %, Poisson (2000 e- at full scale), JPEG q70;"
        " saturated: set5 + set14, highlights boosted 2-8x before the shake, clipped;"
        " synthetic sets: centre squares of up to {crop} px blurred in linear light, seed"
        " {seed}. Mean PSNR in dB (higher"
        " is better), Deblurrer on the CPU, default tiling."
    ),
    "polish": (
        "What auto's clean-up network sees: photos blurred by one kernel and deconvolved"
        " (hyper-Laplacian, linear light) with a kernel as wrong as auto's estimates"
        " (unblur.train.kernel_error), centre squares of up to {crop} px, seed {seed}. shake:"
        " set14, camera shake 5-25 px, read noise 0.5 %; linear: set14, straight streaks 5-25"
        " px; noisy: set5 + set14, camera shake, read noise 0.8 %, Poisson (5000 e-), JPEG q85;"
        " exact: set14, camera shake deconvolved with the true kernel. Mean PSNR in dB (higher"
        " is better), Deblurrer on the CPU, default tiling; input: the deconvolution."
    ),
    "motion": (
        "The motion training's validation samples: {motion_count} crops of {motion_size} px"
        " from set14 + set5, balanced over the kinds of motion, seed {seed}. Median end-point"
        " error in px (lower is better); input: a zero field."
    ),
}


# --------------------------------------------------------------------------------------------
# scores and the verdict
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SetScore:
    """One set's numbers.

    Attributes:
        name: the set.
        n: images (or samples) in it.
        input: the blurred input's score (motion: a zero field's).
        shipped: the shipped weights' score; ``None`` when nothing is shipped yet.
        candidate: the candidate's score.
        lower_is_better: ``True`` for errors (motion), ``False`` for PSNR.
        paired: per image, the candidate's score minus the baseline's (restoration sets;
            empty for motion, whose score is a median over pixels): shown as the gain's
            standard error and the images won, so that a reader sees whether a gain is more
            than the spread between images; the verdict uses only its worst picture
            (:data:`MAX_IMAGE_LOSS`).
        names: the pictures of ``paired``, in its order (empty: not named).
    """

    name: str
    n: int
    input: float
    shipped: float | None
    candidate: float
    lower_is_better: bool = False
    paired: tuple[float, ...] = ()
    names: tuple[str, ...] = ()

    @property
    def standard_error(self) -> float | None:
        """Standard error of the mean per-image gain (``None`` under two images)."""
        if len(self.paired) < 2:
            return None
        return float(np.std(self.paired, ddof=1) / math.sqrt(len(self.paired)))

    @property
    def wins(self) -> int:
        """Images on which the candidate beats the baseline."""
        sign = -1.0 if self.lower_is_better else 1.0
        return sum(sign * d > 0 for d in self.paired)

    @property
    def worst(self) -> float | None:
        """The worst picture's change against the baseline (signed like :attr:`gain`)."""
        if not self.paired:
            return None
        return max(self.paired) if self.lower_is_better else min(self.paired)

    @property
    def worst_name(self) -> str | None:
        """The name of the worst picture (``None``: not named)."""
        if not self.paired or len(self.names) != len(self.paired):
            return None
        pick = np.argmax if self.lower_is_better else np.argmin
        return self.names[int(pick(self.paired))]

    @property
    def ruins_a_picture(self) -> bool:
        """A PSNR set in which one picture lost more than :data:`MAX_IMAGE_LOSS` dB."""
        worst = self.worst
        return not self.lower_is_better and worst is not None and worst < -MAX_IMAGE_LOSS

    @property
    def baseline(self) -> float:
        """What the candidate must beat: the shipped weights, else the input."""
        return self.input if self.shipped is None else self.shipped

    @property
    def gain(self) -> float:
        """``candidate - baseline`` (positive: better PSNR; negative: smaller error)."""
        return self.candidate - self.baseline

    @property
    def better(self) -> bool:
        """Strictly better than the baseline (a NaN is never better)."""
        if not (math.isfinite(self.candidate) and math.isfinite(self.baseline)):
            return False
        return self.gain < 0 if self.lower_is_better else self.gain > 0


def verdict(scores: Sequence[SetScore]) -> bool:
    """PASS (``True``) only if there are scores, the candidate is better on every set and no
    picture of any set is more than :data:`MAX_IMAGE_LOSS` dB worse."""
    return bool(scores) and all(s.better and not s.ruins_a_picture for s in scores)


# --------------------------------------------------------------------------------------------
# weights
# --------------------------------------------------------------------------------------------


def _task(model: str) -> str:
    from unblur.models import get_spec

    return get_spec(model).task


def weights_prefix(path: Path) -> tuple[str, str]:
    """Which tensors of ``path`` are the weights: ``(prefix, description)``.

    A training checkpoint (``params_ema.*`` tensors) gives its EMA weights; anything else is
    taken as plain weights, and :func:`unblur.models.load_weights` says why if it is not.
    Only the safetensors header is read.

    Raises:
        ModelError: a checkpoint without EMA weights.
    """
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), framework="pt", device="cpu") as f:
            keys = list(f.keys())
            meta = dict(f.metadata() or {})
    except (SafetensorError, OSError, ValueError, RuntimeError):
        return "", "weights"  # missing or not safetensors: load_weights reports it
    if any(k.startswith(CHECKPOINT_EMA_PREFIX) for k in keys):
        try:
            step = json.loads(meta.get("unblur_state", "{}")).get("step")
        except (ValueError, AttributeError):
            step = None
        at = "" if step is None else f", step {step}"
        return CHECKPOINT_EMA_PREFIX, f"EMA weights of a training checkpoint{at}"
    if any(k.startswith("params.") for k in keys):
        raise ModelError("training checkpoint without EMA weights (params_ema.*)", path)
    if "ema_file" in meta.get("unblur_state", ""):
        raise ModelError(
            "this checkpoint refers to weights that were already shipped; train on first", path
        )
    step = meta.get("step")  # best_ema / final_ema files of a training run say it
    return "", "weights" if step is None else f"weights, step {step}"


def load_candidate(model: str, path: Path) -> tuple[Any, str]:
    """The candidate network on the CPU in eval mode, and where its weights came from.

    Restoration models go through :func:`unblur.restoration.network.load_restore_model` (as
    ``unblur export --from-checkpoint CKPT --ema`` does), motion models through
    :func:`unblur.models.load_weights`; both load strictly from safetensors.

    Raises:
        ModelError: unreadable file, not safetensors, or weights of another architecture.
    """
    prefix, source = weights_prefix(path)
    return _load(model, path, prefix), source


def candidate_metadata(model: str, path: Path) -> dict[str, str]:
    """Metadata the candidate's weights keep when scored and shipped: for a restoration model,
    the channel-attention pooling window they were validated with (a training checkpoint's
    state, or a weights file's metadata), else the one the Deblurrer would take for them (the
    registry's), so that the shipped file says how it was gated."""
    from unblur.restoration.network import (
        LOCAL_POOL_KEY,
        default_local_pool,
        format_local_pool,
        weights_local_pool,
    )

    if _task(model) not in ("restore", "polish"):
        return {}
    pool = weights_local_pool(path)
    if pool is None:
        pool = format_local_pool(default_local_pool(model, path))
    return {LOCAL_POOL_KEY: pool}


def _load(model: str, path: Path, prefix: str = "") -> Any:
    from unblur.models import create_model, load_weights
    from unblur.restoration.network import load_restore_model

    if _task(model) in ("restore", "polish"):
        return load_restore_model(model, path, prefix=prefix)
    net = create_model(model, pretrained=False)
    load_weights(net, path, prefix=prefix)
    return net.eval()


def weights_bytes(net: Any) -> int:
    """Size of the network's tensors as fp32, about the size of its weights file."""
    return sum(t.numel() * 4 for t in net.state_dict().values())


def weights_sha256(path: Path) -> str:
    """SHA-256 of a safetensors file's tensors (:func:`unblur.train.checkpoint.tensors_sha256`)."""
    from safetensors.torch import load_file

    from unblur.train.checkpoint import tensors_sha256

    return tensors_sha256(load_file(str(path), device="cpu"))


# --------------------------------------------------------------------------------------------
# restoration sets
# --------------------------------------------------------------------------------------------


def restore_specs(sizes: Sizes = SIZES) -> list[Any]:
    """The validation-set specs of the restoration gate, in a fixed order (it seeds them)."""
    from unblur.train.data import BlurMix, PairValSpec, SyntheticValSpec

    lengths = (5.0, 25.0)
    shake = BlurMix(kinds={"shake": 1.0}, length=lengths, read_noise=(0.005, 0.005))
    varying = BlurMix(kinds={"field": 1.0}, length=lengths, read_noise=(0.005, 0.005))
    saturated = BlurMix(
        kinds={"shake": 1.0}, length=lengths, read_noise=(0.005, 0.005), saturation_prob=1.0
    )
    noisy = BlurMix(
        kinds={"shake": 1.0},
        length=lengths,
        read_noise=(0.02, 0.02),
        poisson_prob=1.0,
        poisson_scale=(2000.0, 2000.0),
        jpeg_prob=1.0,
        jpeg_quality=(70, 70),
    )
    crop, count = sizes.crop, sizes.limit
    return [
        PairValSpec(
            "gopro0374",
            "gopro-frameavg",
            crop=sizes.pair_crop,
            count=count,
            include=("GOPR0374",),
        ),
        SyntheticValSpec("shake", "set14/images", crop=crop, count=count, blur=shake),
        SyntheticValSpec("varying", "set14/images", crop=crop, count=count, blur=varying),
        # one set from two folders: "noisy/<folder>" is scored as "noisy"
        SyntheticValSpec("noisy/set5", "set5/images", crop=crop, count=count, blur=noisy),
        SyntheticValSpec("noisy/set14", "set14/images", crop=crop, count=count, blur=noisy),
        SyntheticValSpec("saturated/set5", "set5/images", crop=crop, count=count, blur=saturated),
        SyntheticValSpec("saturated/set14", "set14/images", crop=crop, count=count, blur=saturated),
    ]


def polish_specs(sizes: Sizes = SIZES) -> list[Any]:
    """The validation-set specs of a clean-up network's gate (task ``polish``): deconvolutions
    of one-kernel blur with kernels as wrong as auto's, and one with the true kernel."""
    from unblur.train.data import BlurMix, DeconvolvedValSpec
    from unblur.train.kernel_error import KernelError

    lengths = (5.0, 25.0)
    shake = BlurMix(kinds={"shake": 1.0}, length=lengths, read_noise=(0.005, 0.005))
    linear = BlurMix(kinds={"linear": 1.0}, length=lengths, read_noise=(0.005, 0.005))
    noisy = BlurMix(
        kinds={"shake": 1.0},
        length=lengths,
        read_noise=(0.008, 0.008),
        poisson_prob=1.0,
        poisson_scale=(5000.0, 5000.0),
        jpeg_prob=1.0,
        jpeg_quality=(85, 85),
    )
    exact = KernelError(exact_prob=1.0)
    crop, count = sizes.crop, sizes.limit
    return [
        DeconvolvedValSpec("shake", "set14/images", crop=crop, count=count, blur=shake),
        DeconvolvedValSpec("linear", "set14/images", crop=crop, count=count, blur=linear),
        DeconvolvedValSpec("noisy/set5", "set5/images", crop=crop, count=count, blur=noisy),
        DeconvolvedValSpec("noisy/set14", "set14/images", crop=crop, count=count, blur=noisy),
        DeconvolvedValSpec(
            "exact", "set14/images", crop=crop, count=count, blur=shake, error=exact
        ),
    ]


def build_restore_sets(
    root: Path,
    sizes: Sizes = SIZES,
    *,
    seed: int = GATE_SEED,
    quiet: bool = True,
    specs: list[Any] | None = None,
) -> dict[str, list[Any]]:
    """The restoration gate's pairs (:class:`unblur.train.data.ValPair`), set by set
    (``specs``: other sets, e.g. :func:`polish_specs`).

    Raises:
        InputError: a missing folder, an unreadable image, or a set without images.
    """
    from unblur.train.data import build_val_set

    specs = restore_specs(sizes) if specs is None else specs
    pairs = build_val_set(specs, root, seed=seed, quiet=quiet)
    sets: dict[str, list[Any]] = {}
    for spec in specs:
        sets.setdefault(spec.name.split("/")[0], [])
    for pair in pairs:
        sets[pair.set_name.split("/")[0]].append(pair)
    for name, members in sets.items():
        if not members:
            raise InputError(f"validation set {name!r} has no images", root)
    return sets


def score_restore(
    model: str, weights: Path, sets: dict[str, list[Any]], log: Any
) -> dict[str, list[float]]:
    """PSNR of each image, per set, of ``Deblurrer(model, weights=weights, device="cpu")``."""
    from unblur.metrics import psnr
    from unblur.restoration.network import Deblurrer

    deblurrer = Deblurrer(model, weights=weights, device="cpu")
    pool = deblurrer.local_pool
    log(f"  pooling: {'global' if pool is None else f'{pool} px windows'} in each tile")
    out = {}
    for name, pairs in sets.items():
        start = time.perf_counter()
        out[name] = [float(psnr(p.sharp, deblurrer.restore(p.blur))) for p in pairs]
        mean = float(np.mean(out[name]))
        log(f"  {name}: {mean:.3f} dB ({time.perf_counter() - start:.0f} s)")
    return out


def evaluate_restore(
    model: str,
    shipped: Path | None,
    candidate: Path,
    root: Path,
    sizes: Sizes,
    log: Any,
    specs: list[Any] | None = None,
) -> list[SetScore]:
    """Score the shipped weights (if any) and the candidate (plain weights files)."""
    from unblur.metrics import psnr

    log("building the validation sets")
    sets = build_restore_sets(root, sizes, quiet=True, specs=specs)
    inputs = {n: [float(psnr(p.sharp, p.blur)) for p in ps] for n, ps in sets.items()}
    old = None
    if shipped is not None:
        log("scoring the shipped weights")
        old = score_restore(model, shipped, sets, log)
    log("scoring the candidate")
    new = score_restore(model, candidate, sets, log)
    scores = []
    for n, ps in sets.items():
        base = inputs[n] if old is None else old[n]
        paired = tuple(a - b for a, b in zip(new[n], base, strict=True))
        mean_old = None if old is None else float(np.mean(old[n]))
        scores.append(
            SetScore(
                n,
                len(ps),
                float(np.mean(inputs[n])),
                mean_old,
                float(np.mean(new[n])),
                paired=paired,
                names=tuple(p.name for p in ps),
            )
        )
    return scores


# --------------------------------------------------------------------------------------------
# motion sets
# --------------------------------------------------------------------------------------------


def build_motion_samples(
    root: Path, in_frames: int, sizes: Sizes = SIZES, *, seed: int = GATE_SEED
) -> list[Any]:
    """The motion training's validation samples (``unblur.train.motion``, same code and seed).

    Raises:
        InputError: missing folders or no photo large enough.
    """
    from unblur.train import motion as motion_train

    data = motion_train.MotionDataConfig(
        data_root=str(root),
        val_photos=("set14/images", "set5/images"),
        val_count=sizes.motion_count,
        size=sizes.motion_size,
        hfr_share=0.0,
    )
    config = motion_train.MotionConfig(
        task="motion", model=motion_train.MotionModelConfig(in_frames=in_frames), data=data
    )
    photos = motion_train.load_photos(motion_train._folders(root, data.val_photos), data.size)
    if not photos:
        raise InputError(f"no photos of at least {data.size} px found", root)
    return motion_train._make_samples(
        data.val_count,
        photos,
        [],
        config,
        seed,
        motion_train._VAL_TAG,
        True,
        "val",
        balanced=True,
    )


def score_motion(net: Any, samples: list[Any]) -> dict[str, float]:
    """Median end-point error per kind (:func:`unblur.train.motion.field_errors`)."""
    from unblur.train.motion import field_errors

    errors = field_errors(net, samples)
    errors.pop("score", None)
    return errors


def zero_field_errors(samples: list[Any]) -> dict[str, float]:
    """Median end-point error per kind of estimating no motion at all."""
    from unblur.motion import endpoint_error

    by_kind: dict[str, list[np.ndarray]] = {}
    for s in samples:
        by_kind.setdefault(s.kind, []).append(endpoint_error(np.zeros_like(s.field), s.field))
    return {k: float(np.median(np.concatenate([e.ravel() for e in v]))) for k, v in by_kind.items()}


def evaluate_motion(
    model: str, shipped: Path | None, candidate: Path, root: Path, sizes: Sizes, log: Any
) -> list[SetScore]:
    new_net = _load(model, candidate)
    log("building the validation samples")
    samples = build_motion_samples(root, int(new_net.in_frames), sizes)
    inputs = zero_field_errors(samples)
    old = None
    if shipped is not None:
        log("scoring the shipped weights")
        old = score_motion(_load(model, shipped), samples)
    log("scoring the candidate")
    new = score_motion(new_net, samples)
    counts = {k: sum(s.kind == k for s in samples) for k in new}
    return [
        SetScore(k, counts[k], inputs[k], None if old is None else old[k], new[k], True)
        for k in sorted(new)
    ]


def evaluate(
    model: str, shipped: Path | None, candidate: Path, root: Path, sizes: Sizes, log: Any
) -> list[SetScore]:
    """Score ``candidate`` and ``shipped`` (plain weights files) on the model's sets."""
    task = _task(model)
    if task == "polish":
        return evaluate_restore(model, shipped, candidate, root, sizes, log, polish_specs(sizes))
    run = evaluate_restore if task == "restore" else evaluate_motion
    return run(model, shipped, candidate, root, sizes, log)


# --------------------------------------------------------------------------------------------
# report
# --------------------------------------------------------------------------------------------


@dataclass
class Report:
    model: str
    task: str
    candidate: str
    candidate_source: str
    candidate_sha256: str
    target: str
    shipped_sha256: str | None
    scores: list[SetScore]
    command: str
    date: str
    seconds: float
    threads: int
    sizes: Sizes

    @property
    def passed(self) -> bool:
        return verdict(self.scores)

    def metric(self) -> tuple[str, str]:
        if self.task in ("restore", "polish"):
            return "PSNR", "dB"
        return "median EPE", "px"

    def verdict_line(self) -> str:
        if self.passed:
            word = "PASS: better than the shipped weights on every set"
            if self.scores[0].shipped is None:
                word = "PASS: nothing shipped yet; better than the input on every set"
        else:
            worse = [f"{s.name} ({_gain(s.gain)})" for s in self.scores if not s.better]
            ruined = [
                f"{s.name} ({_gain(s.worst or 0.0)}{', ' + s.worst_name if s.worst_name else ''})"
                for s in self.scores
                if s.ruins_a_picture
            ]
            parts = []
            if worse:
                parts.append("not better on " + ", ".join(worse))
            if ruined:
                parts.append(
                    f"a picture more than {MAX_IMAGE_LOSS:g} dB worse in " + ", ".join(ruined)
                )
            word = "FAIL: " + "; ".join(parts)
        return (
            f"**Ship gate {self.model}: {word}.** `{self.command}`, {self.date}, "
            f"CPU, {self.threads} thread{'s' if self.threads > 1 else ''}, {self.seconds:.0f} s."
        )

    def markdown(self) -> str:
        metric, unit = self.metric()
        shipped = "shipped" if self.shipped_sha256 else "shipped (none)"
        paired = any(s.paired for s in self.scores)
        lines = [
            f"| set | n | input | {shipped} | candidate | gain |"
            + (" ± s.e. | images won | worst picture |" if paired else ""),
            "|---|---:|---:|---:|---:|---:|" + ("---:|---:|---:|" if paired else ""),
        ]
        for s in self.scores:
            old = "–" if s.shipped is None else f"{s.shipped:.2f}"
            cells = [s.name, str(s.n), f"{s.input:.2f}", old, f"{s.candidate:.2f}", _gain(s.gain)]
            if paired:
                se = s.standard_error
                worst = "–" if s.worst is None else _gain(s.worst)
                if s.worst is not None and s.worst_name:
                    worst += f" ({s.worst_name})"
                cells += ["–" if se is None else f"{se:.3f}", f"{s.wins} of {len(s.paired)}", worst]
            lines.append("| " + " | ".join(cells) + " |")
        notes = SET_NOTES[self.task].format(seed=GATE_SEED, **dataclasses.asdict(self.sizes))
        old = f"tensors sha256 {self.shipped_sha256[:12]}" if self.shipped_sha256 else "none yet"
        return "\n".join(
            [
                f"Ship gate, {self.model}: {metric} in {unit}. {notes}",
                "",
                f"Candidate `{self.candidate}` ({self.candidate_source}; tensors sha256 "
                f"{self.candidate_sha256[:12]}); shipped `{self.target}` ({old}).",
                "",
                *lines,
                "",
                self.verdict_line(),
                "",
            ]
        )

    def as_json(self) -> dict[str, Any]:
        metric, unit = self.metric()
        return {
            "model": self.model,
            "task": self.task,
            "metric": metric,
            "unit": unit,
            "lower_is_better": self.task != "restore",
            "candidate": self.candidate,
            "candidate_source": self.candidate_source,
            "candidate_sha256": self.candidate_sha256,
            "target": self.target,
            "shipped_sha256": self.shipped_sha256,
            "sets": [
                {
                    "name": s.name,
                    "n": s.n,
                    "input": s.input,
                    "shipped": s.shipped,
                    "candidate": s.candidate,
                    "gain": s.gain,
                    "better": s.better,
                    "standard_error": s.standard_error,
                    "wins": s.wins if s.paired else None,
                    "worst": s.worst,
                    "worst_picture": s.worst_name,
                    "pictures": dict(zip(s.names, s.paired, strict=True)) if s.names else None,
                }
                for s in self.scores
            ],
            "verdict": "PASS" if self.passed else "FAIL",
            "command": self.command,
            "date": self.date,
            "seconds": round(self.seconds, 1),
            "threads": self.threads,
            "sizes": dataclasses.asdict(self.sizes),
            "seed": GATE_SEED,
        }


def _gain(value: float) -> str:
    """``+0.05``; a difference that two decimals would show as 0.00 gets three (``-0.004``)."""
    if value != 0 and abs(value) < 0.005:
        return f"{value:+.3f}"
    return f"{value:+.2f}"


def _shown(path: Path) -> str:
    try:
        return str(Path(path).resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def _write_text(path: Path, text: str) -> None:
    from unblur.io import atomic_write

    atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


# --------------------------------------------------------------------------------------------
# command line
# --------------------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="ship_gate.py",
        description="Score candidate weights against the shipped ones on fixed validation "
        "sets; PASS only if better on every set; --ship then replaces the shipped weights.",
    )
    p.add_argument("--model", required=True, help="registry name, e.g. nafnet-fast")
    p.add_argument(
        "--candidate",
        type=Path,
        required=True,
        metavar="PATH",
        help="safetensors weights, or a training checkpoint (its EMA weights are taken)",
    )
    p.add_argument("--data", type=Path, default=Path("../shared/data"), help="data root")
    p.add_argument(
        "--target",
        type=Path,
        default=None,
        metavar="FILE",
        help="the shipped weights to compare with and, with --ship, replace "
        "(default: src/unblur/models/weights/<model>.safetensors)",
    )
    p.add_argument("--ship", action="store_true", help="on PASS, write the candidate to --target")
    p.add_argument("--json", type=Path, default=None, metavar="OUT", help="write the numbers")
    p.add_argument(
        "--markdown", type=Path, default=None, metavar="OUT", help="write the table and verdict"
    )
    p.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    return p.parse_args(argv)


def run(args: argparse.Namespace, argv: Sequence[str], sizes: Sizes) -> int:
    import torch

    from unblur import export
    from unblur.models import get_spec

    start = time.perf_counter()

    def log(text: str) -> None:
        if not args.quiet:
            print(text, file=sys.stderr, flush=True)

    spec = get_spec(args.model)
    target = args.target if args.target is not None else spec.weights_path
    if target is None:
        raise ModelError(f"model {args.model!r} has no weights file name; pass --target FILE")
    if not args.data.is_dir():
        raise InputError("no such data folder (pass --data DIR)", args.data)
    from unblur.train.checkpoint import weights_file

    args.candidate = weights_file(args.candidate)  # a run or checkpoint folder: its checkpoint
    log(f"loading the candidate {args.candidate}")
    net, source = load_candidate(args.model, args.candidate)
    size = weights_bytes(net)
    if size >= MAX_WEIGHTS_BYTES:
        raise ModelError(f"weights of {size / 2**20:.1f} MB; shipped files must stay < 50 MB")
    shipped = target if target.is_file() else None
    shown_target = _shown(target)
    if shipped is None and spec.task == "polish":
        # what auto runs on its deconvolution today: the default restoration network
        fallback = get_spec(POLISH_BASELINE).weights_path
        if fallback is not None and fallback.is_file():
            shipped = fallback
            shown_target = f"{shown_target}, none yet: compared with {_shown(fallback)}"
            log(f"nothing shipped at {target}: compared with {fallback}, auto's clean-up today")
    if shipped is not None:
        _load(args.model, shipped)  # one clear error now if the shipped file is unfit
    else:
        log(f"nothing shipped at {target}: the candidate is compared with the input")

    with tempfile.TemporaryDirectory(prefix="ship_gate-") as tmp:
        # the exact file --ship writes: scored, hashed and then written to the target
        # with the window the candidate was validated with, which its Deblurrer then uses
        meta = candidate_metadata(args.model, args.candidate)
        plain = export.save_weights(
            Path(tmp) / f"{args.model}.safetensors", net, args.model, metadata=meta
        )
        scores = evaluate(args.model, shipped, plain, args.data, sizes, log)
        plain_sha = weights_sha256(plain)
        report = Report(
            model=args.model,
            task=spec.task,
            candidate=_shown(args.candidate),
            candidate_source=source,
            candidate_sha256=plain_sha,
            target=shown_target,
            shipped_sha256=None if shipped is None else weights_sha256(shipped),
            scores=scores,
            command=shlex.join(["python", _shown(Path(__file__)), *argv]),
            date=datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z"),
            seconds=time.perf_counter() - start,
            threads=torch.get_num_threads(),
            sizes=sizes,
        )
        text = report.markdown()
        print(text, end="", flush=True)
        if args.json is not None:
            _write_text(args.json, json.dumps(report.as_json(), indent=2) + "\n")
            log(f"wrote {args.json}")
        if args.markdown is not None:
            _write_text(args.markdown, text)
            log(f"wrote {args.markdown}")
        if not report.passed:
            if args.ship:
                print(f"not shipped: {target} is unchanged", file=sys.stderr)
            return 1
        if args.ship:
            export.save_weights(target, net, args.model, overwrite=True, metadata=meta)
            if weights_sha256(target) != plain_sha:  # should never happen
                raise ModelError("the written weights differ from the ones scored", target)
            mb = target.stat().st_size / 2**20
            print(
                f"shipped: wrote {_shown(target)} ({mb:.1f} MB, sha256 {plain_sha[:12]}); "
                "put the table above into MODELS.md and BENCHMARKS.md",
                file=sys.stderr,
            )
    return 0


def main(argv: Sequence[str] | None = None, *, sizes: Sizes | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse_args(argv)
    try:
        return run(args, argv, SIZES if sizes is None else sizes)
    except UnblurError as err:
        print(f"ship_gate: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("ship_gate: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
