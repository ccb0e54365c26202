"""Training pairs for the network run on a deconvolution: ``auto``'s learned clean-up.

Where ``auto`` deconvolves a shaken photo with the kernel it estimated, it blends the
deconvolution with the restoration network run on it (:data:`unblur.restoration.auto.BLIND_POLISH`),
which is to take out the ringing and noise the inversion leaves. A network trained on blurred
inputs alone has never seen such a picture: on kodak24 camera shake its pass over the
deconvolution scores *below* the deconvolution itself (26.90 against 27.13 dB on the 18
photos auto deconvolves; BENCHMARKS.md, session 11). These pairs show it what one looks like
(the two-stage design of Schuler et al. 2013 and Son & Lee 2017: a regularised inversion, then
a network that removes its artefacts):

* a sharp photo blurred by one uniform kernel (camera shake or a straight streak) through the
  forward model of :func:`unblur.train.data.synthesize_pair` (linear light, noise, JPEG);
* deconvolved as ``auto`` does (:func:`unblur.restoration.deconv.hyper_laplacian` in linear
  light), with the kernel **as an estimate gets it wrong**
  (:func:`unblur.train.kernel_error.perturb_kernel`: turned,
  stretched, softened, with a little spurious mass, thresholded as the blind estimator
  thresholds), on a region larger than the crop so that the crop has no border effects;
* the input is that deconvolution (sRGB values, as stored), the target the sharp crop.

The source is named in a training config as ``kind: deconvolved``
(:class:`unblur.train.data.DeconvolvedSpec`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from unblur import io
from unblur.restoration.deconv import hyper_laplacian
from unblur.train.data import BlurMix, SourcePair, SyntheticSource, synthesize_pair
from unblur.train.kernel_error import KernelError, perturb_kernel

__all__ = ["UNIFORM_KINDS", "DeconvolvedSource", "deconvolved_pair"]

UNIFORM_KINDS: tuple[str, ...] = ("shake", "linear")
"""The blur kinds one kernel describes (``field`` varies across the picture: no kernel)."""


class DeconvolvedSource(SyntheticSource):
    """Sharp photos blurred by one kernel and deconvolved with a wrong estimate of it.

    Args:
        folder: folder of sharp photos (files directly inside it).
        mix: the blur and its effects (:class:`unblur.train.data.BlurMix`); only the uniform
            kinds (``shake``, ``linear``).
        scale: range of the random shrink factor of the photos, ``0 < low <= high <= 1``.
        error: how the deconvolution's kernel is wrong
            (:class:`unblur.train.kernel_error.KernelError`).
        quiet: no progress bar while decoding.

    Raises:
        InputError: the folder is missing or holds no images, or an image is unreadable.
        ValueError: a blur kind without one kernel, a bad ``scale``.
    """

    def __init__(
        self,
        folder: Path,
        mix: BlurMix | None = None,
        *,
        scale: tuple[float, float] = (1.0, 1.0),
        error: KernelError | None = None,
        quiet: bool = True,
    ) -> None:
        mix = mix if mix is not None else BlurMix(kinds={"shake": 0.7, "linear": 0.3})
        varying = sorted(k for k, w in mix.kinds.items() if w > 0 and k not in UNIFORM_KINDS)
        if varying:
            raise ValueError(
                f"deconvolved pairs need one kernel a picture: blur kind {varying[0]!r} has "
                f"none; choose from {UNIFORM_KINDS}"
            )
        super().__init__(folder, mix, scale=scale, quiet=quiet)
        self.error = error or KernelError()

    def sample(self, size: int, rng: np.random.Generator) -> SourcePair:
        """A random deconvolved/sharp pair of ``size`` x ``size`` pixels."""
        choices = self.eligible(size + 2 * self.mix.margin)
        index = choices[int(rng.integers(len(choices)))]
        pair = deconvolved_pair(
            self.photos[index], size, self.mix, self.error, rng, scale=self.scale
        )
        pair.info.update(source=self.name, file=self.files[index].name)
        return pair


def deconvolved_pair(
    photo: np.ndarray,
    size: int,
    mix: BlurMix,
    error: KernelError,
    rng: np.random.Generator,
    *,
    scale: tuple[float, float] = (1.0, 1.0),
    centre: bool = False,
) -> SourcePair:
    """Blur a region of a sharp photo with one kernel (:func:`unblur.train.data.synthesize_pair`,
    ``mix``'s uniform kinds), deconvolve it in linear light with a wrong estimate of the kernel
    (:func:`unblur.train.kernel_error.perturb_kernel`) and crop the middle ``size`` pixels, away
    from the deconvolution's borders.

    Args:
        photo: uint8 ``(H, W, 3)`` sharp photo with ``min(H, W) >= size + 2 * mix.margin``.
        size: side of the pair.
        mix: the blur and its effects (uniform kinds only).
        error: how the kernel is wrong.
        rng: generator for every draw.
        scale: range of the photo's shrink factor.
        centre: take the region at the centre of the photo (validation) instead of at random.

    Returns:
        The pair: the deconvolution (sRGB values in ``[0, 1]``) and the sharp crop; ``info`` as
        :func:`~unblur.train.data.synthesize_pair`'s, with the kernel used, ``estimate``.
    """
    margin = mix.margin
    pair = synthesize_pair(photo, size + 2 * margin, mix, rng, scale=scale, centre=centre)
    if pair.info.get("kernel") is None:
        raise ValueError(f"blur kind {pair.info['kind']!r} has no kernel to deconvolve with")
    estimate = perturb_kernel(pair.info["kernel"], rng, error)
    linear = io.srgb_to_linear(pair.blur)
    deconvolved = np.clip(
        io.linear_to_srgb(hyper_laplacian(linear, estimate, origin="mass")), 0.0, 1.0
    )
    window = (slice(margin, margin + size), slice(margin, margin + size))
    return SourcePair(
        np.ascontiguousarray(deconvolved[window], dtype=np.float32),
        np.ascontiguousarray(pair.sharp[window]),
        dict(pair.info, estimate=estimate),
    )
