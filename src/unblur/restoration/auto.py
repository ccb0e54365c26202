"""How ``method="auto"`` chooses: is this camera shake of a static scene?

Blind deconvolution (one kernel for the whole picture) is the best restoration we have for
a shaken still of a static scene, and the worst where the blur varies across the picture
(moving subjects, rotation, GoPro-type video frames) or the noise is strong: there one kernel
is wrong almost everywhere and deconvolution rings. The restoration network never makes
things worse but, trained on our CPUs, sharpens little. So ``auto`` asks the question the
blind method silently assumes, two ways:

* **kernels**: :func:`uniform_blur_evidence` estimates the kernel ``--method blind`` would use
  (on the most textured 512-px window) and one kernel on each of up to ``windows``
  non-overlapping, well-textured smaller windows (:func:`unblur.restoration.blind.estimate_kernel`),
  and measures how well the small windows' kernels agree with the large one: the median of
  the peak normalised cross-correlation (kernels are only known up to a shift, so the best
  shift counts);
* **motion**: :func:`motion_spread` asks the motion network for the per-pixel blur motion
  and measures how much it varies across the picture (camera rotation, zoom, moving subjects,
  GoPro-type frames vary; a shaken still of a static scene does not).

:func:`choose` deconvolves with the large window's kernel when the kernels agree, the motion
is the same across the picture and the noise is low, and runs the network otherwise; where it
deconvolves a colour photo, it outputs a :func:`blend` of the deconvolution, the network's
restoration (:func:`blind_share`) and the network run on the deconvolution, which takes out
its ringing and noise (:func:`blind_polish`). The thresholds and the shares are measured
(``benchmarks/auto_rule.py``; figures in BENCHMARKS.md), not guessed.

The colour space of the classical methods is decided from the picture too: a single-channel
picture is treated as data already linear (scientific and raw-derived grey images, Levin et
al.'s benchmark), a colour one as sRGB-encoded camera output to be linearised.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np
from scipy.signal import fftconvolve

from unblur.motion.spectral import as_grey
from unblur.restoration import blind, deconv

__all__ = [
    "AGREEMENT_MIN",
    "BLIND_POLISH",
    "BLIND_POLISH_TRAINED",
    "BLIND_SHARE",
    "BLIND_SHARE_GREY",
    "BLIND_SHARE_TRAINED",
    "NOISE_MAX",
    "SPREAD_MAX",
    "Evidence",
    "blend",
    "blind_polish",
    "blind_share",
    "choose",
    "choose_space",
    "kernel_agreement",
    "motion_spread",
    "uniform_blur_evidence",
]

#: Least median agreement of the small windows' kernels with the large window's kernel
#: (``Evidence.agreement_large``) for ``auto`` to deconvolve, and most motion-field spread
#: (:func:`motion_spread`). Measured by ``benchmarks/auto_rule.py`` on 101 pairs of five sets
#: (BENCHMARKS.md, 2026-12-06): real GoPro frames score at most 0.82 agreement, uniform camera
#: shake mostly 0.88-0.98; the spread separates what agreement alone does not (kodak24
#: spatially varying blur 0.43-1.26, most camera shake 0.1-0.5). The sweep's choice (auto never
#: more than 0.1 dB below the network on a set, then the most total gain) is 0.88 and 0.85, on
#: a plateau (spread 0.7-0.9 within 0.25 dB everywhere): auto gains over the network +1.38 dB
#: on kodak24 camera shake and +6.7 dB on levin09, and stays within 0.1 dB of it on varying
#: blur, the Sun set and real GoPro frames. Fitted on every other pair, the thresholds keep
#: +0.85 to +1.32 dB (shake) and +3.4 to +7.5 dB (levin09) on the pairs left out (and lose
#: 0.14 / 0.18 dB on varying blur / Sun there in one of the two directions). Refitted with the
#: motion-single weights of 2026-12-06 (session 6), which spread a little more: 0.88 and 0.9
#: (+0.21 dB on levin09, the same elsewhere; session 7, ``runs/auto_rule_s7.json``).
AGREEMENT_MIN = 0.88
SPREAD_MAX = 0.9
#: Where ``auto`` deconvolves, the deconvolution's share of its output (:func:`blend`), and,
#: for a colour photo, the share of the network run on the deconvolution (``BLIND_POLISH``),
#: the network's restoration of the input making up the rest. Their errors differ (ringing and
#: amplified noise; residual blur; the network's own smoothing of the deconvolution), so the
#: blend scores above each. Measured by ``benchmarks/auto_rule.py`` (BENCHMARKS.md): in session
#: 6, 0.7 of deconvolution and 0.3 of the network for colour photos (+0.19 dB on kodak24 camera
#: shake over deconvolution alone); in session 7, 0.3 / 0.4 / 0.3 (+0.15 dB more on camera
#: shake, within 0.01 dB elsewhere; on the halves the fit did not see, +0.04 and +0.20 dB on
#: camera shake over the two-way blend). Grey pictures keep deconvolution alone (the network,
#: trained on colour photos, gains little on Levin et al.'s grey set, where any blend lost).
BLIND_SHARE = 0.3
BLIND_POLISH = 0.4
BLIND_SHARE_GREY = 1.0
#: The same two shares where the network run on the deconvolution is ``nafnet-polish``, trained
#: on such deconvolutions (where its weights ship and the default model's shipped weights
#: restore the photo: :func:`unblur.restoration.api.restore`). It cleans a deconvolution far
#: better than the restoration network (kodak24 camera shake, the 18 photos auto deconvolves:
#: 29.12 against 28.05 dB), so the blend leans on it. Measured by ``benchmarks/auto_rule.py
#: --cleaner`` with its weights of session 12 (BENCHMARKS.md): 0.2 / 0.8 gains 0.46 dB on kodak24
#: camera shake over 0.3 / 0.4 with the same weights, and moves no other set down.
BLIND_SHARE_TRAINED = 0.2
BLIND_POLISH_TRAINED = 0.8
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
        best: index of the window kernel that agrees most with the others.
        least: the lowest pairwise agreement.
        agreement_large: median agreement of the window kernels with ``kernel``; ``nan``
            when there is none or no window kernel.
        kernel: the kernel of the most textured 512-px window (what ``--method blind``
            deconvolves with), ``None`` when that window shows no blur.
        spread: how much the motion field varies across the picture (:func:`motion_spread`);
            ``nan`` when not measured (the kernels already ruled deconvolution out).
        agreements: each window kernel's agreement with ``kernel`` (``agreement_large`` is
            their median), in the order of ``kernels``.
        textures: each window's mean gradient magnitude, in the order of ``kernels``.
    """

    agreement: float
    noise: float
    kernels: list[np.ndarray] = field(repr=False)
    windows: list[tuple[int, int, int]]
    best: int = 0
    least: float = float("nan")
    agreement_large: float = float("nan")
    kernel: np.ndarray | None = field(default=None, repr=False)
    spread: float = float("nan")
    agreements: list[float] = field(default_factory=list, repr=False)
    textures: list[float] = field(default_factory=list, repr=False)


def kernel_agreement(a: np.ndarray, b: np.ndarray) -> float:
    """Peak normalised cross-correlation of two kernels over all shifts, in ``[0, 1]``."""
    a = np.asarray(a, np.float64)
    b = np.asarray(b, np.float64)
    norm = float(np.linalg.norm(a) * np.linalg.norm(b))
    if norm == 0.0:
        return 0.0
    corr = fftconvolve(a, b[::-1, ::-1], mode="full")
    return float(np.clip(corr.max() / norm, 0.0, 1.0))


def _texture(window: np.ndarray) -> float:
    """A window's mean gradient magnitude."""
    return float(np.hypot(*np.gradient(window)).mean())


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
    image: np.ndarray,
    kernel_size: int = 31,
    *,
    windows: int = 6,
    side: int = WINDOW_SIDE,
    picture: np.ndarray | None = None,
    device: str = "cpu",
    workers: int | None = None,
    all_kernels: bool = False,
) -> Evidence:
    """Estimate a kernel on several windows and measure how well they agree.

    A picture noisier than :data:`NOISE_MAX` is not deconvolved whatever its kernels say, so
    they are not estimated (most of auto's time on it; ``kernels`` is empty and the
    agreements ``nan``) unless ``all_kernels``.

    The windows' kernels are estimated side by side on ``workers`` threads (the FFTs and
    array arithmetic release the GIL); each is estimated exactly as alone, so the evidence
    does not depend on the number of threads.

    Args:
        image: blurred ``(H, W)`` or ``(H, W, C)`` float image in ``[0, 1]``, in the colour
            space the deconvolution will work in.
        kernel_size: odd kernel side (as :func:`unblur.restoration.blind.estimate_kernel`).
        windows: most small windows to use, ``>= 2``.
        side: small window side; smaller pictures use half their short side, and pictures
            under ``2 * SMALL_WINDOW`` a side four overlapping corner windows of 0.6 of their
            short side (at least ``2 * kernel_size``).
        picture: the same picture as stored (sRGB values) for the motion network; given, its
            :func:`motion_spread` is measured when the kernels and the noise allow
            deconvolution (only then does it matter).
        device: torch device for the motion network.
        workers: threads for the kernel estimates (``None``: torch's thread count, which
            ``--threads`` sets).
        all_kernels: estimate the kernels of a noisy picture too (``benchmarks/auto_rule.py``
            records them for every picture).

    Returns:
        An :class:`Evidence`; ``agreement`` and ``agreement_large`` are ``nan`` when the
        picture is too small for two windows or has no edges.
    """
    grey = as_grey(image)
    noise = float(deconv.estimate_noise(grey))
    if noise > NOISE_MAX and not all_kernels:  # the network's whatever the kernels say
        return Evidence(float("nan"), noise, [], [])
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
    workers = _workers() if workers is None else max(1, int(workers))
    with ThreadPoolExecutor(max_workers=workers) as pool:
        # the large window takes longest: started first where there are threads for it (it is
        # only needed when two windows show blur, so one thread waits to know that)
        early = pool.submit(_large_kernel, grey, kernel_size) if workers > 1 else None
        results = list(pool.map(lambda spot: _window_kernel(grey, spot, kernel_size), spots))
        kept = [spot for spot, result in zip(spots, results, strict=True) if not result.flat]
        kernels = [result.kernel for result in results if not result.flat]
        if len(kernels) < MIN_WINDOWS:  # (a large window already started runs to its end)
            return Evidence(float("nan"), noise, kernels, kept)
        large = early.result() if early is not None else _large_kernel(grey, kernel_size)
    n = len(kernels)
    scores = np.eye(n)
    for i in range(n):
        for j in range(i + 1, n):
            scores[i, j] = scores[j, i] = kernel_agreement(kernels[i], kernels[j])
    pairs = scores[np.triu_indices(n, 1)]
    best = int(np.argmax(scores.sum(axis=1)))
    kernel = None if large.flat else large.kernel
    agreements = [] if kernel is None else [kernel_agreement(k, kernel) for k in kernels]
    textures = [_texture(grey[y : y + s, x : x + s]) for y, x, s in kept]
    agreement_large = float(np.median(agreements)) if agreements else float("nan")
    spread = float("nan")
    if picture is not None and agreement_large >= AGREEMENT_MIN and noise <= NOISE_MAX:
        spread = motion_spread(picture, device=device)
    return Evidence(
        float(np.median(pairs)),
        noise,
        kernels,
        kept,
        best,
        float(pairs.min()),
        agreement_large,
        kernel,
        spread,
        agreements,
        textures,
    )


def _window_kernel(
    grey: np.ndarray, spot: tuple[int, int, int], kernel_size: int
) -> blind.BlindResult:
    y, x, side = spot
    return blind.estimate_kernel(grey[y : y + side, x : x + side], kernel_size)


def _large_kernel(grey: np.ndarray, kernel_size: int) -> blind.BlindResult:
    return blind.estimate_kernel_windowed(grey, kernel_size)


def _workers() -> int:
    """torch's intra-op thread count: what ``--threads`` sets (default: the cores)."""
    import torch

    return max(1, torch.get_num_threads())


def motion_spread(picture: np.ndarray, *, device: str = "cpu") -> float:
    """How much the blur motion varies across a picture: 0 for the same motion everywhere.

    The motion network (:func:`unblur.motion.estimate.estimate_motion`, ``cnn``) gives each
    pixel a motion vector ``v``, known only up to its sign; the sign-free tensor ``v v^T``
    (its three distinct entries) is compared with its mean over the picture ``M``:
    ``mean_p |v v^T - M| / |M|`` (Frobenius-like norm over the three entries). A picture with
    no motion at all scores 0.

    Args:
        picture: blurred ``(H, W)`` or ``(H, W, 3)`` float image in ``[0, 1]``, as stored.
        device: torch device for the motion network.
    """
    from unblur.motion.estimate import estimate_motion

    f = estimate_motion(picture, method="cnn", device=device).field.astype(np.float64)
    fx, fy = f[..., 0].ravel(), f[..., 1].ravel()
    tensors = np.stack([fx * fx, fx * fy, fy * fy], axis=1)
    mean = tensors.mean(axis=0)
    norm = float(np.linalg.norm(mean))
    if norm < 1e-9:
        return 0.0
    return float(np.mean(np.linalg.norm(tensors - mean, axis=1)) / norm)


def blind_share(evidence: Evidence, *, grey: bool = False, trained: bool = False) -> float:
    """Blind deconvolution's share of what ``auto`` outputs where :func:`choose` deconvolves,
    the network making up the rest (:func:`blind_polish`): ``BLIND_SHARE`` for a colour
    picture (``BLIND_SHARE_TRAINED`` where the network run on the deconvolution is the one
    trained for it, ``trained``), ``BLIND_SHARE_GREY`` for a grey one (the network was trained
    on colour photos); 0 where ``choose`` runs the network."""
    if choose(evidence)[0] != "blind":
        return 0.0
    if grey:
        return BLIND_SHARE_GREY
    return BLIND_SHARE_TRAINED if trained else BLIND_SHARE


def blind_polish(evidence: Evidence, *, grey: bool = False, trained: bool = False) -> float:
    """The share of the network run on the blind deconvolution in what ``auto`` outputs where
    :func:`choose` deconvolves a colour picture (``BLIND_POLISH``, ``BLIND_POLISH_TRAINED``
    where that network is the one trained for it, ``trained``); 0 for a grey one and where
    ``choose`` runs the network."""
    if grey or choose(evidence)[0] != "blind":
        return 0.0
    return BLIND_POLISH_TRAINED if trained else BLIND_POLISH


def choose(evidence: Evidence) -> tuple[str, str]:
    """``(method, reason)``: ``"blind"`` for a uniform blur with little noise, else
    ``"network"``; the reason states the measured numbers against the thresholds. A spread
    that was not measured (``nan``) does not stop deconvolution."""
    a, s, spread = evidence.agreement_large, evidence.noise, evidence.spread
    n = len(evidence.kernels)
    if s > NOISE_MAX and not np.isfinite(a):  # uniform_blur_evidence skipped the kernels
        return "network", (
            f"noisy (sigma {s:.3f} > {NOISE_MAX}): deconvolution would amplify the noise, so "
            "the kernels were not compared"
        )
    if not np.isfinite(a):
        return "network", "too small or too flat to compare kernels across the picture"
    if a < AGREEMENT_MIN:
        return "network", (
            f"kernels of {n} windows disagree with the 512-px window's (agreement {a:.2f} < "
            f"{AGREEMENT_MIN}): the blur seems to vary across the picture"
        )
    if s > NOISE_MAX:
        return "network", (
            f"uniform blur (agreement {a:.2f}) but noisy (sigma {s:.3f} > {NOISE_MAX})"
        )
    if np.isfinite(spread) and spread > SPREAD_MAX:
        return "network", (
            f"kernels agree (agreement {a:.2f}) but the motion varies across the picture "
            f"(spread {spread:.2f} > {SPREAD_MAX})"
        )
    motion = "not measured" if not np.isfinite(spread) else f"{spread:.2f} <= {SPREAD_MAX}"
    return "blind", (
        f"kernels of {n} windows agree with the 512-px window's (agreement {a:.2f} >= "
        f"{AGREEMENT_MIN}), motion spread {motion}, noise sigma {s:.3f}: one camera-shake "
        "kernel, deconvolve"
    )


def blend(
    deconvolved: np.ndarray,
    restored: np.ndarray,
    share: float,
    polished: np.ndarray | None = None,
    polish: float = 0.0,
) -> np.ndarray:
    """``share`` of the blind deconvolution, ``polish`` of the network run on it
    (``polished``) and ``1 - share - polish`` of the network's restoration of the input, all
    as stored (sRGB values), clipped to ``[0, 1]``: their errors differ (ringing and amplified
    noise; residual blur; the network's smoothing), so a blend scores above each where all are
    fair.

    Raises:
        ValueError: shares outside ``[0, 1]`` or summing to more than 1, a ``polish`` without
            ``polished``.
    """
    if not (0.0 <= share <= 1.0 and 0.0 <= polish <= 1.0 and share + polish <= 1.0 + 1e-9):
        raise ValueError(
            f"share and polish must be in [0, 1] with a sum <= 1, got {share}, {polish}"
        )
    if polish > 0 and polished is None:
        raise ValueError("polish > 0 needs the polished image")
    mixed = share * np.asarray(deconvolved, np.float32) + max(0.0, 1.0 - share - polish) * (
        np.asarray(restored, np.float32)
    )
    if polish > 0:
        mixed += polish * np.asarray(polished, np.float32)
    return np.clip(mixed, 0.0, 1.0).astype(np.float32)


def choose_space(image: np.ndarray) -> tuple[str, str]:
    """``(space, reason)`` for the classical methods: ``"srgb"`` (stored values) for a
    single-channel picture, ``"linear"`` for colour."""
    img = np.asarray(image)
    if img.ndim == 2 or img.shape[2] == 1:
        return "srgb", "grey picture: taken as already linear, deconvolved on its stored values"
    return "linear", "colour picture: sRGB camera output, deconvolved in linear light"
