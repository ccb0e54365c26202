"""Evaluation: how good is a restoration, measured against ground truth or by its looks.

* :mod:`unblur.evaluate.datasets`: the sets' layouts (flat ``blur/`` + ``sharp/``, GoPro's
  nested scenes, RealBlur/HIDE list files, pictures without ground truth);
* :mod:`unblur.evaluate.runner`: runs methods through :func:`unblur.restore` and scores
  them (PSNR/SSIM on RGB and Y, shift-compensated PSNR, no-reference sharpness, seconds per
  megapixel, peak memory), resumable;
* :mod:`unblur.evaluate.report`: the HTML report with plots and crops, JSON and CSV.

``unblur eval`` (:mod:`unblur.cli.eval`) puts them together.
"""

from __future__ import annotations

from unblur.evaluate.datasets import Sample, find_samples
from unblur.evaluate.runner import EvalSettings, MethodSpec, evaluate, parse_methods

__all__ = ["EvalSettings", "MethodSpec", "Sample", "evaluate", "find_samples", "parse_methods"]
