"""unblur: remove motion blur from photos and videos.

Data flows image in -> motion -> restoration -> image out:

* :mod:`unblur.io` reads and writes images as float32 arrays in [0, 1];
* :mod:`unblur.blur` is the forward model (kernels, motion fields, noise);
* :mod:`unblur.deconv` undoes a known blur (Wiener, Richardson-Lucy, hyper-Laplacian).

Heavy modules are imported lazily so that ``unblur --version`` stays fast.
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
