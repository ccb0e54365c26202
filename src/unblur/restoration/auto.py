"""How ``method="auto"`` chooses: is this camera shake of a static scene?

Blind deconvolution (one kernel for the whole picture) is the best restoration we have for
a shaken still of a static scene, and the worst where the blur varies across the picture
(moving subjects, rotation, GoPro-type video frames) or the noise is strong: there one kernel
is wrong almost everywhere and deconvolution rings. The restoration network never makes
things worse but, trained on our CPUs, sharpens little. So ``auto`` asks the question the
blind method silently assumes: estimate the kernel independently on several windows of the
picture and see whether they agree.

:func:`uniform_blur_evidence` estimates one kernel on each of up to ``windows``
non-overlapping, well-textured windows (:func:`unblur.restoration.blind.estimate_kernel`) and
measures their agreement: the median over pairs of the peak normalised cross-correlation
(kernels are only known up to a shift, so the best shift counts). :func:`choose` then deconvolves
when the kernels agree and the noise is low (with the kernel ``--method blind`` estimates on the
most textured 512-px window, which measured better than any of the small windows' kernels), and
runs the network otherwise. The thresholds
are measured (``benchmarks/auto_rule.py``; figures in BENCHMARKS.md), not guessed.

The colour space of the classical methods is decided from the picture too: a single-channel
picture is treated as data already linear (scientific and raw-derived grey images, Levin et
al.'s benchmark), a colour one as sRGB-encoded camera output to be linearised.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.signal import fftconvolve

from unblur.motion.spectral import as_grey
from unblur.restoration import blind, deconv

__all__ = [
    "AGREEMENT_MIN",
    "NOISE_MAX",
    "Evidence",
    "choose",
    "choose_space",
    "kernel_agreement",
    "uniform_blur_evidence",
]

#: Least median agreement between window kernels for ``auto`` to deconvolve. Measured by
#: ``benchmarks/auto_rule.py`` (BENCHMARKS.md) on 77 pairs of five sets: every real GoPro frame
#: scored 0.71 or less, where blind deconvolution always lost 2-6 dB; uniform camera shake
#: mostly 0.89-0.98, where it won 1-11 dB; spatially varying blur up to 0.89. The sweep's best:
#: 0.89-0.91 tie (4 of 5 sets within 0.3 dB of their best single method, none below the
#: input, the same worst margin). 0.89 is kept: +0.16 dB on camera shake, the case the blind
#: branch is for (the README's example photo scores 0.906), for -0.19 dB on varying blur.
AGREEMENT_MIN = 0.89
#: Most noise (sigma in the working colour space, :func:`unblur.restoration.deconv.estimate_noise`)
#: for ``auto`` to deconvolve. The benchmark sets stay below 0.009, so this guard is not
#: measured there; deconvolution amplifies noise, so very noisy pictures go to the network.
NOISE_MAX = 0.01
#: Window side for the per-window kernels, and the least number of windows that can agree.
WINDOW_SIDE = 256
MIN_WINDOWS = 2
#: Below this side the grid's windows give unsteady 31-px kernels: a picture under twice it a
#: side uses four overlapping corner windows of 0.6 of its short side instead. On Levin's
#: 255-px photos (127-px grid cells) that raised the uniform blurs recognised from 15 to 20 of
#: 32 and auto's shift-compensated score from 27.1 to about 28.1 dB (blind alone: 29.0).
SMALL_WINDOW = 160


@dataclass(frozen=True)
class Evidence:
    """What :func:`uniform_blur_evidence` measured on one picture.

    Attributes:
        agreement: median pairwise agreement of the window kernels in ``[0, 1]`` (1: the same
            kernel up to a shift); ``nan`` when fewer than two windows could be used.
        noise: estimated noise sigma of the picture as given (values in ``[0, 1]``).
        kernels: the window kernels, most textured window first.
        windows: ``(top, left, side)`` of each window.
        best: index of the kernel that agrees most with the others (deconvolved with only
            when the 512-px window of ``--method blind`` finds no blur).
        least: the lowest pairwise agreement.
    """

    agreement: float
    noise: float
    kernels: list[np.ndarray] = field(repr=False)
    windows: list[tuple[int, int, int]]
    best: int = 0
    least: float = float("nan")


def kernel_agreement(a: np.ndarray, b: np.ndarray) -> float:
    """Peak normalised cross-correlation of two kernels over all shifts, in ``[0, 1]``."""
    a = np.asarray(a, np.float64)
    b = np.asarray(b, np.float64)
    norm = float(np.linalg.norm(a) * np.linalg.norm(b))
    if norm == 0.0:
        return 0.0
    corr = fftconvolve(a, b[::-1, ::-1], mode="full")
    return float(np.clip(corr.max() / norm, 0.0, 1.0))


def _windows(grey: np.ndarray, side: int, count: int) -> list[tuple[int, int, int]]:
    """The ``count`` most textured cells of a grid of non-overlapping ``side`` windows
    (centred on the picture), most gradient energy first."""
    h, w = grey.shape
    gy, gx = np.gradient(grey)
    energy = np.hypot(gx, gy)
    top0, left0 = (h % side) // 2, (w % side) // 2
    cells = [
        (float(energy[y : y + side, x : x + side].mean()), y, x)
        for y in range(top0, h - side + 1, side)
        for x in range(left0, w - side + 1, side)
    ]
    cells.sort(reverse=True)
    return [(y, x, side) for _, y, x in cells[:count]]


def uniform_blur_evidence(
    image: np.ndarray, kernel_size: int = 31, *, windows: int = 6, side: int = WINDOW_SIDE
) -> Evidence:
    """Estimate a kernel on each of several windows and measure how well they agree.

    Args:
        image: blurred ``(H, W)`` or ``(H, W, C)`` float image in ``[0, 1]``, in the colour
            space the deconvolution will work in.
        kernel_size: odd kernel side (as :func:`unblur.restoration.blind.estimate_kernel`).
        windows: most windows to use, ``>= 2``.
        side: window side; smaller pictures use half their short side, and pictures under
            ``2 * SMALL_WINDOW`` a side four overlapping corner windows of 0.6 of their short
            side (at least ``2 * kernel_size``).

    Returns:
        An :class:`Evidence`; ``agreement`` is ``nan`` when the picture is too small for two
        windows or has no edges.
    """
    grey = as_grey(image)
    noise = float(deconv.estimate_noise(grey))
    h, w = grey.shape
    short = min(h, w)
    side = min(side, short // 2)
    if side < SMALL_WINDOW:  # small picture: larger, overlapping windows at the corners
        side = max(int(0.6 * short), min(short, 2 * kernel_size))
        spots = [(y, x, side) for y in (0, h - side) for x in (0, w - side)]
    else:
        spots = _windows(grey, side, windows)
    if side < 2 * kernel_size:
        return Evidence(float("nan"), noise, [], [])
    kernels, kept = [], []
    for y, x, s in spots:
        result = blind.estimate_kernel(grey[y : y + s, x : x + s], kernel_size)
        if not result.flat:
            kernels.append(result.kernel)
            kept.append((y, x, s))
    if len(kernels) < MIN_WINDOWS:
        return Evidence(float("nan"), noise, kernels, kept)
    n = len(kernels)
    scores = np.eye(n)
    for i in range(n):
        for j in range(i + 1, n):
            scores[i, j] = scores[j, i] = kernel_agreement(kernels[i], kernels[j])
    pairs = scores[np.triu_indices(n, 1)]
    best = int(np.argmax(scores.sum(axis=1)))
    return Evidence(float(np.median(pairs)), noise, kernels, kept, best, float(pairs.min()))


def choose(evidence: Evidence) -> tuple[str, str]:
    """``(method, reason)``: ``"blind"`` for a uniform blur with little noise, else
    ``"network"``; the reason states the measured numbers against the thresholds."""
    a, s = evidence.agreement, evidence.noise
    if not np.isfinite(a):
        return "network", "too small or too flat to compare kernels across the picture"
    if a < AGREEMENT_MIN:
        return "network", (
            f"kernels of {len(evidence.kernels)} windows disagree (agreement {a:.2f} < "
            f"{AGREEMENT_MIN}): the blur seems to vary across the picture"
        )
    if s > NOISE_MAX:
        return "network", (
            f"uniform blur (agreement {a:.2f}) but noisy (sigma {s:.3f} > {NOISE_MAX})"
        )
    return "blind", (
        f"kernels of {len(evidence.kernels)} windows agree (agreement {a:.2f} >= "
        f"{AGREEMENT_MIN}), noise sigma {s:.3f}: one camera-shake kernel, deconvolve"
    )


def choose_space(image: np.ndarray) -> tuple[str, str]:
    """``(space, reason)`` for the classical methods: ``"srgb"`` (stored values) for a
    single-channel picture, ``"linear"`` for colour."""
    img = np.asarray(image)
    if img.ndim == 2 or img.shape[2] == 1:
        return "srgb", "grey picture: taken as already linear, deconvolved on its stored values"
    return "linear", "colour picture: sRGB camera output, deconvolved in linear light"
