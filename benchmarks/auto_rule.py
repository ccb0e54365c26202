"""Measure the rule behind ``unblur.restore(method="auto")`` and choose its thresholds.

For every pair of the benchmark sets (those of ``restore_quality.py`` plus Levin et al.'s
real camera shake), this records what ``auto`` looks at
(:func:`unblur.restoration.auto.uniform_blur_evidence`: how well kernels estimated on several
small windows agree with the kernel of the most textured 512-px window, and the noise level;
:func:`unblur.restoration.auto.motion_spread`: how much the motion network's field varies
across the picture) and what each candidate would score: the network (default model) and
blind deconvolution with the large window's kernel (what ``auto`` and ``--method blind`` use)
and, for comparison, with the small window kernel that agrees most with the others (what
``auto`` used before 2026-12-06), in the colour space ``auto`` would choose. Then it sweeps
the two thresholds (agreement, spread; the noise guard stays ``NOISE_MAX``) and reports, per
set, the mean PSNR of the input, of each method, and of ``auto`` under the chosen thresholds:
those that keep ``auto`` within 0.1 dB of the network on every set and gain most over it in
total. It also fits them on every other pair of each set and scores them on the rest, both
ways round, to show how much of the gain survives on pairs the fit did not see.

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
from unblur.restoration import auto
from unblur.restoration.api import _in_space, _out_of_space
from unblur.restoration.deconv import hyper_laplacian
from unblur.restoration.network import cached_deblurrer

AGREEMENTS = [round(a, 2) for a in np.arange(0.7, 1.0, 0.01)] + [1.01]  # 1.01: never blind
SPREADS = [round(a, 2) for a in np.arange(0.3, 1.55, 0.05)] + [np.inf]  # inf: spread unused
WORST = -0.1  # dB: auto may fall at most this far below the network on any set


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
                "agreement_large": ev.agreement_large,
                "least": ev.least,
                "noise": ev.noise,
                "windows": len(ev.kernels),
                "spread": auto.motion_spread(blurred),
                "input": metrics.psnr(sharp, blurred),
                "input_sc": metrics.shift_compensated_psnr(sharp, blurred),
            }
            restored = net.restore(blurred)
            row["network"] = metrics.psnr(sharp, restored)
            row["network_sc"] = metrics.shift_compensated_psnr(sharp, restored)
            # what auto's blind branch and `--method blind` deconvolve with (the kernel of the
            # most textured 512-px window), and for comparison the small window kernel that
            # agrees most with the others (what auto deconvolved with until 2026-12-06)
            for column, kernel in (
                ("blind", ev.kernel),
                ("window", ev.kernels[ev.best] if ev.kernels else None),
            ):
                if kernel is None:
                    row[column], row[column + "_sc"] = row["input"], row["input_sc"]
                    continue
                out = np.clip(_out_of_space(hyper_laplacian(data, kernel), space), 0, 1)
                row[column] = metrics.psnr(sharp, out)
                row[column + "_sc"] = metrics.shift_compensated_psnr(sharp, out)
            rows.append(row)
    return rows


def _key(row: dict, method: str) -> float:
    """A row's score for a method under its set's protocol: shift-compensated PSNR for Levin
    et al.'s set (their protocol: a kernel is only known up to a shift), plain PSNR elsewhere
    (``restore_quality.py``'s protocol)."""
    return row[method + "_sc"] if row["set"].startswith("levin09") else row[method]


def _chooses_blind(row: dict, a_min: float, spread_max: float) -> bool:
    a = row["agreement_large"]
    if row["windows"] < auto.MIN_WINDOWS or not np.isfinite(a):
        return False
    return bool(a >= a_min and row["noise"] <= auto.NOISE_MAX and row["spread"] <= spread_max)


def auto_scores(rows: list[dict], a_min: float, spread_max: float) -> dict[str, float]:
    out: dict[str, list[float]] = {}
    for r in rows:
        method = "blind" if _chooses_blind(r, a_min, spread_max) else "network"
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


def fit(rows: list[dict]) -> tuple[float, float] | None:
    """The thresholds ``(agreement_large >=, spread <=)`` that keep auto within ``WORST`` dB
    of the network on every set and, among those, gain most over it in total (summed over
    the sets' mean PSNR); ties go to the stricter pair (fewer pictures deconvolved)."""
    table = summary(rows)
    best, best_key = None, None
    for a in AGREEMENTS:
        for sp in SPREADS:
            scores = auto_scores(rows, a, sp)
            margins = [scores[k] - table[k]["network"] for k in table]
            if min(margins) < WORST:
                continue
            chosen = sum(_chooses_blind(r, a, sp) for r in rows)
            rank = (round(sum(margins), 2), -chosen)
            if best is None or rank > best:
                best, best_key = rank, (float(a), float(sp))
    return best_key


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
    chosen_key = fit(rows)
    if chosen_key is None:
        sys.exit(f"no thresholds keep auto within {-WORST} dB of the network on every set")
    chosen = auto_scores(rows, *chosen_key)
    current = auto_scores(rows, auto.AGREEMENT_MIN, auto.SPREAD_MAX)
    print(
        f"best thresholds: agreement_large >= {chosen_key[0]}, spread <= {chosen_key[1]} "
        f"(auto never more than {-WORST} dB below the network on a set, most total gain); "
        f"shipped: agreement_large >= {auto.AGREEMENT_MIN}, spread <= {auto.SPREAD_MAX}, "
        f"noise <= {auto.NOISE_MAX}\n"
    )
    # held out: fit on every other pair of each set, score on the rest, both ways round
    for half in (0, 1):
        seen: dict[str, int] = {}
        part = {0: [], 1: []}
        for r in rows:
            i = seen[r["set"]] = seen.get(r["set"], -1) + 1
            part[int(i % 2 == half)].append(r)
        key = fit(part[1])
        if key is None:
            print(f"fit on half {half}: no thresholds qualify")
            continue
        held = auto_scores(part[0], *key)
        net = summary(part[0])
        cells = ", ".join(f"{k.split(' (')[0]} {held[k] - net[k]['network']:+.2f}" for k in held)
        print(f"fit on half {half}: {key}; auto - network on the other half: {cells}")
    print("\nPSNR in dB; levin09 shift-compensated (its protocol), the others plain.\n")
    print(
        "| set | n | input | network | blind (small window) | blind | auto (best) "
        "| auto (shipped) | blind chosen |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for k, t in table.items():
        sub = [r for r in rows if r["set"] == k]
        picked = sum(_chooses_blind(r, auto.AGREEMENT_MIN, auto.SPREAD_MAX) for r in sub)
        print(
            f"| {k} | {t['n']} | {t['input']:.2f} | {t['network']:.2f} | {t['window']:.2f} "
            f"| {t['blind']:.2f} | {chosen[k]:.2f} | {current[k]:.2f} | {picked}/{len(sub)} |"
        )


if __name__ == "__main__":
    main()
