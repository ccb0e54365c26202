"""Measure the rule behind ``unblur.restore(method="auto")`` and choose its thresholds.

For every pair of the benchmark sets (those of ``restore_quality.py`` plus Levin et al.'s
real camera shake), this records what ``auto`` looks at (the agreement of kernels estimated on
several windows, the noise level: :func:`unblur.restoration.auto.uniform_blur_evidence`) and
what each candidate would score: the network (default model) and blind deconvolution with
the kernel ``auto`` would use (that of ``--method blind``: the most textured 512-px window;
since 2026-12-06) and, for comparison, with the small window kernel that agrees most with the
others (what ``auto`` used before), in the colour space ``auto`` would choose. Then it
sweeps the two thresholds and reports, per set, the mean PSNR of the input, of each
method, and of ``auto`` under the chosen thresholds (the pair of thresholds that maximises
the worst set's margin ``auto - best single method``, never below the input).

Usage::

    python benchmarks/auto_rule.py --data ../shared/data [--kodak-limit 12] [--sun-limit 2]
        [--json runs/auto_rule.json] [--from-json runs/auto_rule.json]

``--from-json`` re-analyses recorded measurements without recomputing them.
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
from restore_quality import folder_pairs, sun_pairs, synth_pairs

from unblur import metrics
from unblur.motion.spectral import as_grey
from unblur.restoration import auto, blind
from unblur.restoration.api import _in_space, _out_of_space
from unblur.restoration.deconv import hyper_laplacian
from unblur.restoration.network import cached_deblurrer

AGREEMENTS = [round(a, 2) for a in np.arange(0.5, 1.0, 0.01)] + [1.01]  # 1.01: never blind
TOLERANCE = 0.3  # dB: the target for auto against the best single method
NOISES = [0.005, 0.01, 0.015, 0.02, 0.03, 0.05, 1.0]


def measure(sets: dict[str, list], quiet: bool) -> list[dict]:
    net = cached_deblurrer(device="cpu")
    rows = []
    for label, pairs in sets.items():
        for name, blurred, sharp in tqdm(pairs, desc=label, disable=quiet):
            space, _ = auto.choose_space(blurred)
            data = _in_space(blurred, space)
            ev = auto.uniform_blur_evidence(data, 31)
            row = {
                "set": label,
                "name": name,
                "space": space,
                "agreement": ev.agreement,
                "least": ev.least,
                "noise": ev.noise,
                "windows": len(ev.kernels),
                "input": metrics.psnr(sharp, blurred),
                "input_sc": metrics.shift_compensated_psnr(sharp, blurred),
            }
            restored = net.restore(blurred)
            row["network"] = metrics.psnr(sharp, restored)
            row["network_sc"] = metrics.shift_compensated_psnr(sharp, restored)
            # the small window kernel that agrees most with the others (what auto deconvolved
            # with until 2026-12-06)
            if ev.kernels:
                out = _out_of_space(hyper_laplacian(data, ev.kernels[ev.best]), space)
                row["window"] = metrics.psnr(sharp, np.clip(out, 0, 1))
                row["window_sc"] = metrics.shift_compensated_psnr(sharp, np.clip(out, 0, 1))
            else:
                row["window"], row["window_sc"] = row["network"], row["network_sc"]
            # what auto's blind branch and `--method blind` deconvolve with: the kernel of the
            # most textured 512-px window; and how well the small windows agree with it
            big = blind.estimate_kernel_windowed(as_grey(data), 31)
            if big.flat:
                row["blind"], row["blind_sc"] = row["window"], row["window_sc"]
                row["agreement_big"] = float("nan")
            else:
                out = np.clip(_out_of_space(hyper_laplacian(data, big.kernel), space), 0, 1)
                row["blind"] = metrics.psnr(sharp, out)
                row["blind_sc"] = metrics.shift_compensated_psnr(sharp, out)
                row["agreement_big"] = (
                    float(np.median([auto.kernel_agreement(k, big.kernel) for k in ev.kernels]))
                    if ev.kernels
                    else float("nan")
                )
            rows.append(row)
    return rows


def _key(row: dict, method: str) -> float:
    """A row's score for a method under its set's protocol: shift-compensated PSNR for Levin
    et al.'s set (their protocol: a kernel is only known up to a shift), plain PSNR elsewhere
    (``restore_quality.py``'s protocol)."""
    return row[method + "_sc"] if row["set"].startswith("levin09") else row[method]


def _chooses_blind(row: dict, a_min: float, n_max: float) -> bool:
    a = row["agreement"]
    return bool(np.isfinite(a) and a >= a_min and row["noise"] <= n_max)


def auto_scores(rows: list[dict], a_min: float, n_max: float) -> dict[str, float]:
    out: dict[str, list[float]] = {}
    for r in rows:
        method = "blind" if _chooses_blind(r, a_min, n_max) else "network"
        out.setdefault(r["set"], []).append(_key(r, method))
    return {k: float(np.mean(v)) for k, v in out.items()}


def summary(rows: list[dict]) -> dict[str, dict[str, float]]:
    table: dict[str, dict[str, float]] = {}
    for label in dict.fromkeys(r["set"] for r in rows):
        sub = [r for r in rows if r["set"] == label]
        table[label] = {m: float(np.mean([_key(r, m) for r in sub])) for m in METHODS}
        table[label]["n"] = len(sub)
    return table


METHODS = ("input", "network", "window", "blind")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data"
    )
    parser.add_argument("--kodak-limit", type=int, default=None)
    parser.add_argument(
        "--sets",
        nargs="+",
        choices=("gopro", "shake", "field", "sun", "levin"),
        default=("gopro", "shake", "field", "sun", "levin"),
        help="which sets to measure",
    )
    parser.add_argument("--sun-limit", type=int, default=2)
    parser.add_argument("--json", type=Path, default=None, help="write the measurements here")
    parser.add_argument("--from-json", type=Path, default=None, help="analyse these instead")
    parser.add_argument("--quiet", action="store_true")
    args = parser.parse_args()

    if args.from_json is not None:
        rows = json.loads(args.from_json.read_text())
    else:
        with tempfile.TemporaryDirectory() as tmp:
            kodak = args.data / "kodak24" / "images"
            makers = {
                "gopro": ("gopro-sample (real)", lambda: folder_pairs(args.data / "gopro-sample")),
                "shake": (
                    "kodak24 camera shake",
                    lambda: synth_pairs(kodak, "shake", Path(tmp), args.kodak_limit),
                ),
                "field": (
                    "kodak24 spatially varying",
                    lambda: synth_pairs(kodak, "field", Path(tmp), args.kodak_limit),
                ),
                "sun": (
                    f"sun80 x 8 kernels, 1% noise ({args.sun_limit})",
                    lambda: sun_pairs(args.data, args.sun_limit),
                ),
                "levin": (
                    "levin09 (real shake, grey)",
                    lambda: folder_pairs(args.data / "levin09"),
                ),
            }
            sets = {
                label: list(make()) for key, (label, make) in makers.items() if key in args.sets
            }
            rows = measure(sets, args.quiet)
        if args.json is not None:
            args.json.parent.mkdir(parents=True, exist_ok=True)
            args.json.write_text(json.dumps(rows, indent=1))

    table = summary(rows)
    # choose: most sets within TOLERANCE dB of their best single method (never below the
    # input), then the largest worst-set margin, then the stricter (more conservative) rule
    best, best_key = (-1, -np.inf, -np.inf), None
    ranks = {}
    for a in AGREEMENTS:
        for n in NOISES:
            scores = auto_scores(rows, a, n)
            margins = [scores[k] - max(table[k]["network"], table[k]["blind"]) for k in table]
            ok = all(scores[k] >= table[k]["input"] for k in table)
            rank = (sum(m >= -TOLERANCE for m in margins), round(min(margins), 2), a)
            ranks[(a, n)] = rank
            if ok and rank > best:
                best, best_key = rank, (a, n)
    ties = sorted({float(a) for (a, _), r in ranks.items() if r[:2] == best[:2]})
    if best_key is None:
        sys.exit("no thresholds keep auto above the input on every set")
    best_key = (float(best_key[0]), float(best_key[1]))
    chosen = auto_scores(rows, *best_key)
    current = auto_scores(rows, auto.AGREEMENT_MIN, auto.NOISE_MAX)
    print(
        f"best thresholds: agreement >= {best_key[0]}, noise <= {best_key[1]} "
        f"({best[0]} of {len(table)} sets within {TOLERANCE} dB of their best single method; "
        f"worst margin {best[1]:+.2f} dB; agreements tying on both: {ties}); "
        f"shipped: agreement >= {auto.AGREEMENT_MIN}, noise <= {auto.NOISE_MAX}\n"
    )
    print("PSNR in dB; levin09 shift-compensated (its protocol), the others plain.\n")
    print(
        "| set | n | input | network | blind (small window) | blind | auto (best) "
        "| auto (shipped) | blind chosen |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for k, t in table.items():
        sub = [r for r in rows if r["set"] == k]
        picked = sum(_chooses_blind(r, auto.AGREEMENT_MIN, auto.NOISE_MAX) for r in sub)
        print(
            f"| {k} | {t['n']} | {t['input']:.2f} | {t['network']:.2f} | {t['window']:.2f} "
            f"| {t['blind']:.2f} "
            f"| {chosen[k]:.2f} | {current[k]:.2f} | {picked}/{len(sub)} |"
        )


if __name__ == "__main__":
    main()
