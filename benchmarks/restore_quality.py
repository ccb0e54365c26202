"""Quality of the restoration networks on sets they were never trained on.

* ``gopro-sample``: 5 real GoPro pairs (frame-averaged 240 fps video, 1280x720).
* ``kodak24`` through ``unblur synth``: camera shake (``--kind shake``) and spatially
  varying motion (``--kind field``), seed 0, default lengths 5-30 px and read noise up
  to 1%, made in a temporary folder by the real command.
* Sun et al. 2013 protocol in colour: sun80 photographs blurred with the 8 Levin
  kernels ("valid" convolution) plus 1% Gaussian noise (``--sun-limit`` images).

For each set: mean PSNR/SSIM of the blurred input and of each model with weights, and
the mean gain. Writes a markdown table to stdout and, with ``--pictures DIR``, one
side-by-side picture (blurred | restored | sharp) per set.

Usage::

    python benchmarks/restore_quality.py --data ../shared/data [--models nafnet-fast]
        [--sun-limit 10] [--auto] [--blind] [--motion] [--tta] [--json out.json] [--pictures DIR]

The model rows are the network in one pass (``unblur image --method network --no-tta``);
``--tta`` adds each model averaged over the picture's eight turns and flips (``--tta``).
``--auto`` scores the default, ``unblur image``: auto, its network passes turned and flipped
as ``tta="auto"`` does (eight passes up to 1280x720: every set here); ``--tta`` with
``--auto`` adds auto in one pass (``--no-tta``).

All methods go through ``unblur.restore`` (``network`` with the named models, ``auto``,
``blind``, ``motion``), as ``unblur image`` does. Sets on disk are read as ``unblur eval``
reads them (:mod:`unblur.evaluate`); ``unblur eval`` is the tool for one set with a report
(it also scores on the Y channel, rounds outputs to 8 bits as saved files, and times each
method), this script the fixed multi-set table of BENCHMARKS.md (outputs scored unrounded).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from scipy.signal import fftconvolve
from tqdm import tqdm

from unblur import io, metrics
from unblur.evaluate.datasets import find_samples
from unblur.evaluate.runner import read_pair
from unblur.models import get_spec, list_models
from unblur.restoration.api import DEFAULT_MODEL
from unblur.restoration.network import Deblurrer

Pair = tuple[str, np.ndarray, np.ndarray]  # name, blurred, sharp


def folder_pairs(root: Path) -> Iterator[Pair]:
    """The pairs of a set in any layout ``unblur eval`` reads (:mod:`unblur.evaluate`)."""
    for sample in find_samples(root)[1]:
        blurred, sharp, _ = read_pair(sample)
        if sharp is not None:
            yield sample.name, blurred, sharp


def synth_pairs(kodak: Path, kind: str, workdir: Path, limit: int | None = None) -> list[Pair]:
    out = workdir / kind
    cmd = [sys.executable, "-m", "unblur", "synth", str(kodak), "-o", str(out)]
    subprocess.run([*cmd, "--kind", kind, "--seed", "0", "--quiet"], check=True)
    return list(folder_pairs(out))[:limit]


def sun_pairs(root: Path, limit: int | None, seed: int = 0) -> list[Pair]:
    rng = np.random.default_rng(seed)
    kernels = [np.load(root / "levin09" / "kernels" / f"kernel{j}.npy") for j in range(1, 9)]
    pairs = []
    for path in sorted((root / "sun80" / "images").glob("*.jpg"))[:limit]:
        sharp = io.read_image(path).pixels
        for j, k in enumerate(kernels, start=1):
            blurred = np.stack(
                [fftconvolve(sharp[..., c], k, mode="valid") for c in range(sharp.shape[2])], 2
            )
            blurred = np.clip(blurred + rng.normal(0, 0.01, blurred.shape), 0, 1)
            m = k.shape[0] // 2
            crop = sharp[m : m + blurred.shape[0], m : m + blurred.shape[1]]
            pairs.append((f"{path.stem}_k{j}", blurred.astype(np.float32), crop))
    return pairs


class ApiRestorer:
    """``unblur.restore(image, method)``: the one entry point the CLI uses too."""

    def __init__(self, method: str, deblurrer: Deblurrer | None = None) -> None:
        self.method, self.deblurrer = method, deblurrer
        self.chosen: list[str] = []

    def restore(self, image: np.ndarray) -> np.ndarray:
        from unblur.restoration.api import restore

        result = restore(image, self.method, deblurrer=self.deblurrer)  # type: ignore[arg-type]
        self.chosen.append(result.method)
        return result.pixels


Restorer = ApiRestorer


def evaluate(
    pairs: list[Pair], restorers: dict[str, Restorer], label: str, quiet: bool
) -> tuple[dict[str, dict[str, float]], tuple[np.ndarray, ...] | None]:
    scores: dict[str, dict[str, list[float]]] = {
        name: {"psnr": [], "ssim": []} for name in ["blurred input", *restorers]
    }
    picture = None
    for name, blurred, sharp in tqdm(pairs, desc=label, disable=quiet):
        scores["blurred input"]["psnr"].append(metrics.psnr(sharp, blurred))
        scores["blurred input"]["ssim"].append(metrics.ssim(sharp, blurred))
        for model, restorer in restorers.items():
            out = restorer.restore(blurred)
            scores[model]["psnr"].append(metrics.psnr(sharp, out))
            scores[model]["ssim"].append(metrics.ssim(sharp, out))
            if picture is None and model == next(iter(restorers)):
                picture = (blurred, out, sharp)
        del name
    base = float(np.mean(scores["blurred input"]["psnr"]))
    table = {}
    for model, s in scores.items():
        psnr = float(np.mean(s["psnr"]))
        table[model] = {"psnr": psnr, "ssim": float(np.mean(s["ssim"])), "gain": psnr - base}
    return table, picture


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data"
    )
    parser.add_argument(
        "--models",
        nargs="*",
        default=None,
        help="default: all with weights; none: only --blind/--motion",
    )
    parser.add_argument("--weights", type=Path, default=None, help="weights for a single --models")
    parser.add_argument("--sun-limit", type=int, default=10)
    parser.add_argument(
        "--sets",
        nargs="+",
        choices=("gopro", "shake", "field", "sun"),
        default=("gopro", "shake", "field", "sun"),
        help="which sets to score",
    )
    parser.add_argument(
        "--kodak-limit", type=int, default=None, help="first N of the 24 kodak pairs per kind"
    )
    parser.add_argument(
        "--auto", action="store_true", help="also score --method auto (the default)"
    )
    parser.add_argument(
        "--blind", action="store_true", help="also score --method blind (kernel from the image)"
    )
    parser.add_argument(
        "--motion", action="store_true", help="also score --method motion (estimated field)"
    )
    parser.add_argument(
        "--tta",
        action="store_true",
        help="also score each model with its eight turns and flips (--tta), and with --auto, "
        "auto in one pass (--no-tta)",
    )
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--pictures", type=Path, default=None)
    parser.add_argument("--quiet", action="store_true")
    args = parser.parse_args()

    names = (
        [n for n in args.models if n != "none"]
        if args.models is not None
        else [n for n in list_models("restore") if (p := get_spec(n).weights_path) and p.exists()]
    )
    if not names and not (args.blind or args.motion or args.auto):
        sys.exit("no restoration model has weights yet: train one or pass --models/--weights")
    if args.weights is not None and len(names) != 1:
        sys.exit("--weights goes with exactly one --models name")
    nets = {n: Deblurrer(n, weights=args.weights, device="cpu") for n in names}
    restorers: dict[str, Restorer] = {n: ApiRestorer("network", net) for n, net in nets.items()}
    if args.tta:
        for n in names:
            flips = Deblurrer(n, weights=args.weights, device="cpu", tta=True)
            restorers[f"{n} --tta"] = ApiRestorer("network", flips)
    if args.auto:  # as unblur image: turns and flips by the picture's size
        name = names[0] if names else DEFAULT_MODEL
        default = Deblurrer(name, weights=args.weights, device="cpu", tta="auto")
        restorers["auto (the default)"] = ApiRestorer("auto", default)
        if args.tta:  # auto in one pass (unblur image --no-tta)
            plain = nets.get(name) or Deblurrer(name, weights=args.weights, device="cpu")
            restorers["auto --no-tta"] = ApiRestorer("auto", plain)
    if args.blind:
        restorers["blind (L0 kernel + hyper-Laplacian)"] = ApiRestorer("blind")
    if args.motion:
        restorers["motion (CNN field + varying hyper-Laplacian)"] = ApiRestorer("motion")

    report: dict[str, dict[str, dict[str, float]]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        suffix = "" if args.kodak_limit is None else f" (first {args.kodak_limit})"
        kodak = args.data / "kodak24" / "images"
        makers = {
            "gopro": (
                "gopro-sample (real)",
                lambda: list(folder_pairs(args.data / "gopro-sample")),
            ),
            "shake": (
                "kodak24 camera shake" + suffix,
                lambda: synth_pairs(kodak, "shake", Path(tmp), args.kodak_limit),
            ),
            "field": (
                "kodak24 spatially varying" + suffix,
                lambda: synth_pairs(kodak, "field", Path(tmp), args.kodak_limit),
            ),
            "sun": (
                f"sun80 x 8 Levin kernels, 1% noise ({args.sun_limit} images)",
                lambda: sun_pairs(args.data, args.sun_limit),
            ),
        }
        sets = {label: make() for key, (label, make) in makers.items() if key in args.sets}
        choices: dict[str, str] = {}
        for label, pairs in sets.items():
            report[label], picture = evaluate(pairs, restorers, label, args.quiet)
            auto = restorers.get("auto (the default)")
            if auto is not None:
                counts = {m: auto.chosen.count(m) for m in dict.fromkeys(auto.chosen)}
                choices[label] = ", ".join(f"{m} {c}" for m, c in counts.items())
                auto.chosen.clear()
            if args.pictures is not None and picture is not None:
                args.pictures.mkdir(parents=True, exist_ok=True)
                gap = np.ones((picture[0].shape[0], 8, 3), np.float32)
                side = np.concatenate([picture[0], gap, picture[1], gap, picture[2]], axis=1)
                stem = label.split(" (")[0].replace(" ", "_")
                io.write_image(args.pictures / f"{stem}.jpg", side, quality=90)

    print("| set | method | PSNR (dB) | SSIM | gain (dB) |\n|---|---|---|---|---|")
    for label, table in report.items():
        for model, r in table.items():
            print(f"| {label} | {model} | {r['psnr']:.2f} | {r['ssim']:.4f} | {r['gain']:+.2f} |")
    for label, text in choices.items():
        print(f"\nauto chose on {label}: {text}", end="")
    print()
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
