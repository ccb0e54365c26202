"""Measure the rule behind ``unblur.restore(method="auto")`` and choose its thresholds.

For every pair of the benchmark sets (those of ``restore_quality.py`` plus Levin et al.'s
real camera shake), this records what ``auto`` looks at
(:func:`unblur.restoration.auto.uniform_blur_evidence`: how well kernels estimated on several
small windows agree with the kernel of the most textured 512-px window, and the noise level;
:func:`unblur.restoration.auto.motion_spread`: how much the motion network's field varies
across the picture) and what each candidate would score: the network (default model), blind
deconvolution with the large window's kernel (what ``auto`` and ``--method blind`` use),
blends of the two (:func:`unblur.restoration.auto.blend`, blind's share 0.1 to 0.9) and, for
comparison, blind deconvolution with the small window kernel that agrees most with the others
(what ``auto`` used before 2026-12-06), in the colour space ``auto`` would choose. Then it fits
the rule: first the two thresholds (agreement, spread; the noise guard stays ``NOISE_MAX``),
deconvolution alone where they hold, then blind's share of a blend with the network where
they hold, for colour and for grey pictures. A rule qualifies when it keeps ``auto`` within
0.1 dB of the network on every set; the one chosen gains most over it in total. The script
reports, per set, the mean PSNR of the input, of each method, of the best rule without and
with blends, and of the shipped rule. It also fits on every other pair of each set and scores
on the rest, both ways round, to show how much of the gain survives on pairs the fit did not
see.

Usage::

    python benchmarks/auto_rule.py --data ../shared/data [--kodak-limit 12] [--sun-limit 2]
        [--json runs/auto_rule.json] [--from-json runs/auto_rule.json] [--cleaner W.safetensors]

``--from-json`` re-analyses recorded measurements without recomputing them.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

sys.path.insert(0, str(Path(__file__).resolve().parent))
from restore_quality import folder_pairs, sun_pairs, synth_pairs

from unblur import metrics
from unblur.restoration import auto
from unblur.restoration.api import _in_space, _out_of_space
from unblur.restoration.deconv import hyper_laplacian
from unblur.restoration.network import Deblurrer, cached_deblurrer

AGREEMENTS = [round(a, 2) for a in np.arange(0.7, 1.0, 0.01)] + [1.01]  # 1.01: never blind
SPREADS = [round(a, 2) for a in np.arange(0.3, 1.55, 0.05)] + [np.inf]  # inf: spread unused
SHARES = tuple(round(w, 1) for w in np.arange(0.0, 1.05, 0.1))  # blind's share of a blend
TEXTURES = (0.0, 0.5, 0.6, 0.7, 0.8, 1.0)  # 0: every window (the rule before session 6)
WORST = -0.1  # dB: auto may fall at most this far below the network on any set


def measure(sets: dict[str, list], quiet: bool, cleaner: Path | None = None) -> list[dict]:
    """Every pair's evidence and candidate scores; the network run on the deconvolution is
    the default model, or the weights file ``cleaner`` (as ``auto`` with ``nafnet-polish``)."""
    net = cached_deblurrer(device="cpu")
    polisher = net if cleaner is None else Deblurrer("nafnet-fast", weights=cleaner, device="cpu")
    rows = []
    for label, pairs in sets.items():
        for name, blurred, sharp in tqdm(pairs, desc=label, disable=quiet):
            space, _ = auto.choose_space(blurred)
            data = _in_space(blurred, space)
            ev = auto.uniform_blur_evidence(data, 31, all_kernels=True)
            row = {
                "set": label,
                "name": name,
                "space": space,
                "agreement": ev.agreement,
                "agreement_large": ev.agreement_large,
                "least": ev.least,
                "noise": ev.noise,
                "windows": len(ev.kernels),
                "agreements": ev.agreements,
                "textures": ev.textures,
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
            deconvolved = blurred
            for column, kernel in (
                ("blind", ev.kernel),
                ("window", ev.kernels[ev.best] if ev.kernels else None),
            ):
                if kernel is None:
                    row[column], row[column + "_sc"] = row["input"], row["input_sc"]
                    continue
                out = np.clip(
                    _out_of_space(hyper_laplacian(data, kernel, origin="mass"), space), 0, 1
                )
                row[column] = metrics.psnr(sharp, out)
                row[column + "_sc"] = metrics.shift_compensated_psnr(sharp, out)
                if column == "blind":
                    deconvolved = out
            # the blends auto may output: blind's share w, the network's 1 - w (auto.blend)
            for w in SHARES[1:-1]:
                mixed = auto.blend(deconvolved, restored, w)
                row[_mix(w)] = metrics.psnr(sharp, mixed)
                if label.startswith("levin09"):  # the only set scored shift-compensated
                    row[_mix(w) + "_sc"] = metrics.shift_compensated_psnr(sharp, mixed)
            # the network run once more on the deconvolution (it removes ringing and noise
            # there), and three-way blends of deconvolution, network and that
            polished = polisher.restore(deconvolved) if deconvolved is not blurred else restored
            row["polish"] = metrics.psnr(sharp, polished)
            for a in SHARES:
                for b in SHARES:
                    if a + b <= 1.0 + 1e-9:
                        mixed = a * deconvolved + b * restored + max(0.0, 1.0 - a - b) * polished
                        row[_tri(a, b)] = metrics.psnr(sharp, np.clip(mixed, 0, 1))
            rows.append(row)
    return rows


def _key(row: dict, method: str) -> float:
    """A row's score for a method under its set's protocol: shift-compensated PSNR for Levin
    et al.'s set (their protocol: a kernel is only known up to a shift), plain PSNR elsewhere
    (``restore_quality.py``'s protocol)."""
    return row[method + "_sc"] if row["set"].startswith("levin09") else row[method]


def _tri(blind: float, network: float) -> str:
    return f"tri{blind:.1f}_{network:.1f}"


def _mix(share: float) -> str:
    return f"mix{share:.1f}"


def _column(share: float) -> str:
    return "network" if share <= 0 else "blind" if share >= 1 else _mix(share)


@dataclass(frozen=True)
class Rule:
    """Deconvolve when ``agreement_large >= agreement``, ``spread <= spread`` and the noise
    is at most ``auto.NOISE_MAX``, and output ``share`` of the deconvolution blended with
    ``1 - share`` of the network for a colour picture, ``share_grey`` for a grey one (the
    network was trained on colour photos); elsewhere the network."""

    agreement: float
    spread: float
    share: float = 1.0
    share_grey: float = 1.0
    texture: float = 0.0  # the agreement counts windows of at least this share of the most texture
    polish: float = 0.0  # colour: the share of the network run on the deconvolution

    def short(self) -> str:
        polish = f" + {self.polish} network on it" if self.polish else ""
        return (
            f"agreement_large >= {self.agreement} (windows of >= {self.texture} of the most "
            f"texture), spread <= {self.spread} -> blind's share {self.share}{polish} (colour), "
            f"{self.share_grey} (grey)"
        )


def textured_agreement(agreements: list[float], textures: list[float], share: float) -> float:
    """The median of the window kernels' ``agreements`` with the large kernel over the windows
    whose texture is at least ``share`` of the most textured one's, and always the two most
    textured (``nan`` without any): the idea that kernels estimated on flat windows (sky,
    skin) disagree with the true kernel as much as with the large one. ``share`` 0 counts
    every window (``auto``'s ``agreement_large``). Measured, not adopted (BENCHMARKS.md)."""
    if not agreements:
        return float("nan")
    order = np.argsort(textures)[::-1]
    top = max(textures)
    keep = [i for n, i in enumerate(order) if n < 2 or textures[i] >= share * top]
    return float(np.median([agreements[i] for i in keep]))


def _agreement(row: dict, texture: float) -> float:
    """The row's agreement counting windows of at least ``texture`` of the most texture
    (rows recorded before the textures were: the median over all windows)."""
    if texture == 0 or "textures" not in row or not np.isfinite(row["agreement_large"]):
        return row["agreement_large"]
    return textured_agreement(row["agreements"], row["textures"], texture)


def _share(row: dict, rule: Rule) -> float:
    """Blind deconvolution's share of what ``auto`` outputs for a row under ``rule``."""
    a = _agreement(row, rule.texture)
    if row["windows"] < auto.MIN_WINDOWS or not np.isfinite(a):
        return 0.0
    if row["noise"] > auto.NOISE_MAX or row["spread"] > rule.spread or a < rule.agreement:
        return 0.0
    return rule.share_grey if row["space"] == "srgb" else rule.share  # choose_space: grey


def _chooses_blind(row: dict, rule: Rule) -> bool:
    return _share(row, rule) > 0


def _rule_column(row: dict, rule: Rule) -> str:
    """The column of what ``auto`` outputs for a row under ``rule``."""
    share = _share(row, rule)
    if share > 0 and rule.polish > 0 and row["space"] != "srgb":
        return _tri(share, max(0.0, round(1.0 - share - rule.polish, 1)))
    return _column(share)


def auto_scores(rows: list[dict], rule: Rule) -> dict[str, float]:
    out: dict[str, list[float]] = {}
    for r in rows:
        out.setdefault(r["set"], []).append(_key(r, _rule_column(r, rule)))
    return {k: float(np.mean(v)) for k, v in out.items()}


def summary(rows: list[dict]) -> dict[str, dict[str, float]]:
    table: dict[str, dict[str, float]] = {}
    for label in dict.fromkeys(r["set"] for r in rows):
        sub = [r for r in rows if r["set"] == label]
        table[label] = {m: float(np.mean([_key(r, m) for r in sub])) for m in METHODS}
        table[label]["n"] = len(sub)
    return table


METHODS = ("input", "network", "window", "blind")


def _best(rows: list[dict], rules) -> Rule | None:
    """Among ``rules``, the one that keeps auto within ``WORST`` dB of the network on every
    set and gains most over it in total (summed over the sets' mean PSNR, to 0.01 dB); ties
    go to the one that deconvolves fewer pictures, then to the larger blind share."""
    table = summary(rows)
    best, best_rule = None, None
    for rule in rules:
        scores = auto_scores(rows, rule)
        margins = [scores[k] - table[k]["network"] for k in table]
        if min(margins) < WORST:
            continue
        chosen = sum(_chooses_blind(r, rule) for r in rows)
        rank = (round(sum(margins), 2), -chosen, -rule.polish, rule.share, rule.share_grey)
        if best is None or rank > best:
            best, best_rule = rank, rule
    return best_rule


def fit(rows: list[dict], *, blends: bool = True, polish: bool = False) -> Rule | None:
    """The rule ``auto`` should follow, fitted in stages: the thresholds, deconvolution
    alone where they hold; then, with ``blends``, blind's share of the output for colour
    and for grey pictures; then, with ``polish`` (rows that recorded it), the three-way
    blend of colour pictures: blind's share and the share of the network run once more on
    the deconvolution, the plain network the rest."""
    first = _best(
        rows,
        (Rule(a, sp, texture=t) for t in TEXTURES for a in AGREEMENTS for sp in SPREADS),
    )
    if first is None or not blends:
        return first
    second = _best(
        rows,
        (
            Rule(first.agreement, first.spread, w, g, first.texture)
            for w in SHARES[1:]
            for g in SHARES[1:]
        ),
    )
    if second is None or not polish or not all("polish" in r for r in rows):
        return second
    return _best(
        rows,
        (
            Rule(second.agreement, second.spread, a, second.share_grey, second.texture, p)
            for a in SHARES[1:]
            for p in SHARES
            if a + p <= 1.0 + 1e-9
        ),
    )


def _held_out(rows: list[dict], blends: bool, polish: bool = False) -> list[str]:
    """Fit on every other pair of each set, score on the rest, both ways round."""
    lines = []
    for half in (0, 1):
        seen: dict[str, int] = {}
        part: dict[int, list[dict]] = {0: [], 1: []}
        for r in rows:
            i = seen[r["set"]] = seen.get(r["set"], -1) + 1
            part[int(i % 2 == half)].append(r)
        rule = fit(part[1], blends=blends, polish=polish)
        if rule is None:
            lines.append(f"fit on half {half}: no rule qualifies")
            continue
        held = auto_scores(part[0], rule)
        net = summary(part[0])
        cells = ", ".join(f"{k.split(' (')[0]} {held[k] - net[k]['network']:+.2f}" for k in held)
        lines.append(f"fit on half {half}: {rule.short()}; auto - network on the rest: {cells}")
    return lines


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
    parser.add_argument(
        "--cleaner",
        type=Path,
        default=None,
        help="weights of the network run on the deconvolution (default: the default model's; "
        "e.g. nafnet-polish's), a plain weights file",
    )
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
            rows = measure(sets, args.quiet, args.cleaner)
        if args.json is not None:
            args.json.parent.mkdir(parents=True, exist_ok=True)
            args.json.write_text(json.dumps(rows, indent=1))

    table = summary(rows)
    alone, chosen = fit(rows, blends=False), fit(rows)
    polished = fit(rows, polish=True) if all("polish" in r for r in rows) else None
    if alone is None or chosen is None:
        sys.exit(f"no thresholds keep auto within {-WORST} dB of the network on every set")
    shipped = Rule(
        auto.AGREEMENT_MIN,
        auto.SPREAD_MAX,
        auto.BLIND_SHARE,
        auto.BLIND_SHARE_GREY,
    )
    print(f"best rule, deconvolution alone: {alone.short()}")
    print(f"best rule, with blends: {chosen.short()}")
    if polished is not None:
        print(f"best rule, with the network run on the deconvolution too: {polished.short()}")
    print(f"shipped: {shipped.short()}, noise <= {auto.NOISE_MAX}")
    print(f"(auto never more than {-WORST} dB below the network on a set, most total gain)\n")
    print("the agreement over the well-textured windows only (rule with the shipped shares):")
    for t in TEXTURES:
        rule = _best(
            rows,
            (
                Rule(a, sp, auto.BLIND_SHARE, auto.BLIND_SHARE_GREY, t)
                for a in AGREEMENTS
                for sp in SPREADS
            ),
        )
        if rule is None:
            continue
        got = auto_scores(rows, rule)
        cells = ", ".join(f"{k.split(' (')[0]} {got[k] - table[k]['network']:+.2f}" for k in got)
        print(f"  {rule.short()}: auto - network {cells}")
    print()
    for blends in (False, True):
        print(f"held out, {'with blends' if blends else 'deconvolution alone'}:")
        print("\n".join(_held_out(rows, blends)))
    if polished is not None:
        print("held out, with the network run on the deconvolution too:")
        print("\n".join(_held_out(rows, True, polish=True)))
    print("\nPSNR in dB; levin09 shift-compensated (its protocol), the others plain.\n")
    print(
        "| set | n | input | network | blind (small window) | blind | auto, best without "
        "blends | auto, best with blends | auto, best with the network on the deconvolution "
        "| auto (shipped) | shipped: blind alone / blended |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    scores = {rule: auto_scores(rows, rule) for rule in (alone, chosen, shipped)}
    triple = auto_scores(rows, polished) if polished is not None else None
    for k, t in table.items():
        sub = [r for r in rows if r["set"] == k]
        shares = [_share(r, shipped) for r in sub]
        pure, mixed = sum(w >= 1 for w in shares), sum(0 < w < 1 for w in shares)
        print(
            f"| {k} | {t['n']} | {t['input']:.2f} | {t['network']:.2f} | {t['window']:.2f} "
            f"| {t['blind']:.2f} | {scores[alone][k]:.2f} | {scores[chosen][k]:.2f} "
            f"| {'-' if triple is None else f'{triple[k]:.2f}'} "
            f"| {scores[shipped][k]:.2f} | {pure} / {mixed} of {len(sub)} |"
        )


if __name__ == "__main__":
    main()
