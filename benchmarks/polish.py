"""How well restoration weights clean ``auto``'s deconvolution (its learned clean-up pass).

Where ``auto`` deconvolves a shaken colour photo it outputs a blend: ``BLIND_SHARE`` of the
deconvolution with its estimated kernel, ``BLIND_POLISH`` of the network run on that
deconvolution and the rest of the network's restoration of the photo
(:func:`unblur.restoration.auto.blend`). This scores each of those, and the blend, for one or
more weights files, on the kodak24 camera-shake pairs of ``restore_quality.py`` (``unblur
synth --kind shake --seed 0``) that ``auto`` deconvolves; the evidence and the deconvolutions
are computed once and shared by every weights file. The network runs in one pass (no turns or
flips), so the columns compare weights, not ensembles.

Usage::

    python benchmarks/polish.py --data ../shared/data \\
        --weights shipped=src/unblur/models/weights/nafnet-fast.safetensors \\
        --weights run=runs/exp/gopro-deconv \\
        --cleaner polish=checkpoints/nafnet-polish [--kodak-limit 24] [--json out.json]

``--weights`` rows run the same weights on the photo and on the deconvolution (as ``auto``
without a clean-up network); ``--cleaner`` rows run the first ``--weights`` on the photo and
these on the deconvolution (as ``auto`` with ``nafnet-polish``). A run or checkpoint folder,
or a training checkpoint, stands for its EMA weights.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np
from tqdm import tqdm

sys.path.insert(0, str(Path(__file__).resolve().parent))
from restore_quality import synth_pairs

from unblur import metrics
from unblur.restoration import auto
from unblur.restoration.api import _in_space, _out_of_space
from unblur.restoration.deconv import hyper_laplacian
from unblur.restoration.network import Deblurrer


def _weights(text: str, workdir: Path) -> tuple[str, Path]:
    """``LABEL=PATH``; a checkpoint or run folder becomes a plain file of its EMA weights."""
    from unblur.train import checkpoint

    label, _, path = text.partition("=")
    if not path:
        label, path = Path(text).stem, text
    source = checkpoint.weights_file(Path(path))
    plain = workdir / f"{label}.safetensors"
    checkpoint.mean_weights([source, source], plain)  # a checkpoint's EMA; weights as they are
    return label, plain


SHARE_GRID = [
    (a / 10, c / 10) for a in range(11) for c in range(11) if a + c <= 10
]  # (deconvolution, clean-up) shares of a blend


def _shares(rows: list[dict], label: str) -> tuple[str, str, str]:
    """auto's shares' mean PSNR, the best shares' (and which), and the halves' cross-fit."""

    def mean(members: list[dict], key: str) -> float:
        return float(np.mean([r[label]["shares"][key] for r in members]))

    keys = list(rows[0][label]["shares"])
    ours = f"{auto.BLIND_SHARE:.1f},{auto.BLIND_POLISH:.1f}"
    best = max(keys, key=lambda k: mean(rows, k))
    halves = (rows[0::2], rows[1::2])
    crossed = [mean(b, max(keys, key=lambda k: mean(a, k))) for a, b in (halves, halves[::-1])]
    held = [mean(b, ours) for _, b in (halves, halves[::-1])]
    weight = [len(halves[1]), len(halves[0])]
    fit = float(np.average(crossed, weights=weight))
    same = float(np.average(held, weights=weight))
    return (
        f"{mean(rows, ours):.2f}",
        f"{mean(rows, best):.2f} ({best})",
        f"{fit:.2f} (auto's on the same halves {same:.2f})",
    )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", type=Path, default=Path("../shared/data"))
    p.add_argument("--weights", action="append", required=True, metavar="LABEL=PATH")
    p.add_argument("--cleaner", action="append", default=[], metavar="LABEL=PATH")
    p.add_argument("--kodak-limit", type=int, default=None)
    p.add_argument("--json", type=Path, default=None)
    p.add_argument("--quiet", action="store_true")
    args = p.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        plain = [_weights(w, work) for w in args.weights]
        cleaning = [_weights(c, work) for c in args.cleaner]
        weights = dict(plain + cleaning)
        loaded = {
            label: Deblurrer("nafnet-fast", weights=path, device="cpu")
            for label, path in weights.items()
        }
        first = loaded[plain[0][0]]
        # label -> (the network on the photo, the network on the deconvolution)
        nets = {label: (loaded[label], loaded[label]) for label, _ in plain}
        nets.update({label: (first, loaded[label]) for label, _ in cleaning})
        pairs = synth_pairs(args.data / "kodak24" / "images", "shake", work, args.kodak_limit)
        rows = []
        for name, blurred, sharp in tqdm(pairs, desc="kodak24 shake", disable=args.quiet):
            data = _in_space(blurred, "linear")
            evidence = auto.uniform_blur_evidence(data, 31, picture=blurred)
            if auto.choose(evidence)[0] != "blind":
                continue
            deconvolved = np.clip(
                _out_of_space(hyper_laplacian(data, evidence.kernel, origin="mass"), "linear"), 0, 1
            )
            row = {
                "name": name,
                "input": metrics.psnr(sharp, blurred),
                "deconvolution": metrics.psnr(sharp, deconvolved),
            }
            restored_by: dict[int, np.ndarray] = {}
            for label, (net, cleaner) in nets.items():
                if id(net) not in restored_by:
                    restored_by[id(net)] = net.restore(blurred)
                restored = restored_by[id(net)]
                polished = cleaner.restore(deconvolved)
                mixed = auto.blend(
                    deconvolved, restored, auto.BLIND_SHARE, polished, auto.BLIND_POLISH
                )
                row[label] = {
                    "network": metrics.psnr(sharp, restored),
                    "polish": metrics.psnr(sharp, polished),
                    "blend": metrics.psnr(sharp, mixed),
                    # every blend of the three in steps of 0.1: (deconvolution, clean-up)
                    "shares": {
                        f"{a:.1f},{c:.1f}": metrics.psnr(
                            sharp,
                            np.clip(a * deconvolved + c * polished + (1 - a - c) * restored, 0, 1),
                        )
                        for a, c in SHARE_GRID
                    },
                }
            rows.append(row)

    print(f"kodak24 camera shake, the {len(rows)} photos auto deconvolves (one network pass):\n")
    print("| weights | input | deconvolution | network | network on the deconvolution | blend |")
    print("|---|---|---|---|---|---|")
    base = (np.mean([r["input"] for r in rows]), np.mean([r["deconvolution"] for r in rows]))
    for label in nets:
        cols = [np.mean([r[label][k] for r in rows]) for k in ("network", "polish", "blend")]
        print(
            f"| {label} | {base[0]:.2f} | {base[1]:.2f} | "
            + " | ".join(f"{c:.2f}" for c in cols)
            + " |"
        )
    print(
        "\nauto's shares (deconvolution, clean-up; the network the rest) "
        f"{auto.BLIND_SHARE}, {auto.BLIND_POLISH} against the best on these photos, and "
        "fitted on every other photo and scored on the rest (both ways, summed):\n"
    )
    print("| weights | auto's shares | best shares | fitted on halves |")
    print("|---|---|---|---|")
    for label in nets:
        print(f"| {label} | " + " | ".join(_shares(rows, label)) + " |")
    if args.json:
        args.json.write_text(
            json.dumps({"weights": {k: str(v) for k, v in weights.items()}, "rows": rows}, indent=1)
        )


if __name__ == "__main__":
    main()
