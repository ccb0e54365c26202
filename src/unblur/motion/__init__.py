"""Motion: how each part of a photo moved during the exposure.

* :mod:`unblur.motion.field`: the field's representation (``(H, W, 2)`` ``(dx, dy)`` in
  pixels, a streak has no sign) and sign-aware errors;
* :mod:`unblur.motion.spectral`: one uniform linear blur from the power cepstrum;
* :mod:`unblur.motion.estimate`: :func:`~unblur.motion.estimate.estimate_motion`, the
  networks and the baselines (imports torch);
* :mod:`unblur.motion.picture`: the field drawn over the photo.

The representation and the spectral estimator (NumPy only) are re-exported here.
"""

from unblur.motion.field import (
    angle_error,
    canonical,
    endpoint_error,
    from_polar,
    length_error,
    to_polar,
)
from unblur.motion.spectral import LinearEstimate, as_grey, estimate_linear_spectral, spectral_field

__all__ = [
    "LinearEstimate",
    "angle_error",
    "as_grey",
    "canonical",
    "endpoint_error",
    "estimate_linear_spectral",
    "from_polar",
    "length_error",
    "spectral_field",
    "to_polar",
]
