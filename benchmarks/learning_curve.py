"""The restoration network's learning curve: validation gain against CPU-hours, projected.

Reads the ``log.csv`` and ``summary.json`` of training runs. ``--chain`` runs follow one
another (each warm-started from the one before), so their CPU-hours add up: a stage's
CPU-hours are its wall seconds times its threads (``summary.json``'s ``hardware`` line).
``--branch`` runs were forked from the last chain run's checkpoint (same rows before the
fork), and are drawn as branches of it. For each validation set the gain over the blurred
input is fitted as ``a + b * log10(hours)`` on the second half of the last chain run's rows
(the recipe in use, past the jump a change of recipe gives),
and the fit gives the CPU-hours at which the gain would reach each ``--target``.

Usage::

    python benchmarks/learning_curve.py --chain checkpoints/nafnet-fast \
        checkpoints/nafnet-fast-gopro [--branch runs/exp/gopro-lr1e-3="lr 1e-3"] \
        [--out docs/learning_curve.png] [--targets 1.5 3]
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import re
from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np


@dataclass
class Run:
    name: str
    threads: int
    inputs: dict[str, float]  # validation set -> blurred input PSNR
    rows: list[dict[str, float]]  # step, wall, val_<set>


def read_run(spec: str) -> Run:
    """A run from ``FOLDER`` or ``FOLDER=LABEL`` (the label names it in the picture)."""
    path, _, label = spec.partition("=")
    folder = Path(path)
    summary = json.loads((folder / "summary.json").read_text())
    found = re.search(r"x (\d+) thread", summary.get("hardware", ""))
    threads = int(found.group(1)) if found else 1
    rows = []
    with open(folder / "log.csv", newline="") as fh:
        for row in csv.DictReader(fh):
            if not row.get("val_psnr"):
                continue
            rows.append({k: float(v) for k, v in row.items() if v not in ("", None)})
    return Run(label or folder.name, threads, dict(summary["input_val_sets"]), rows)


def curve(
    run: Run, rows: list[dict[str, float]], name: str, offset: float
) -> tuple[np.ndarray, np.ndarray]:
    """CPU-hours (after ``offset``) and validation gain of the rows that scored set ``name``."""
    rows = [r for r in rows if f"val_{name}" in r]
    hours = offset + np.array([r["wall"] for r in rows]) * run.threads / 3600
    return hours, np.array([r[f"val_{name}"] for r in rows]) - run.inputs[name]


def fit_log(hours: np.ndarray, gain: np.ndarray) -> tuple[float, float]:
    """Least-squares ``gain = a + b * log10(hours)``; returns (a, b)."""
    b, a = np.polyfit(np.log10(hours), gain, 1)
    return float(a), float(b)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--chain", nargs="+", required=True, help="FOLDER[=LABEL] ...")
    parser.add_argument("--branch", nargs="*", default=[], help="FOLDER[=LABEL] ...")
    parser.add_argument("--out", type=Path, default=Path("docs/learning_curve.png"))
    parser.add_argument("--targets", type=float, nargs="+", default=[1.5, 3.0])
    args = parser.parse_args()

    chain = [read_run(p) for p in args.chain]
    # the sets the first run already validated on (sets added later have no long curve)
    sets = [name for name in chain[-1].inputs if name in chain[0].inputs]
    fig, axes = plt.subplots(1, len(sets), figsize=(5.5 * len(sets), 4.2), squeeze=False)
    offset = 0.0  # CPU-hours before the current stage
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    last_offset = 0.0
    for k, run in enumerate(chain):
        for ax, name in zip(axes[0], sets, strict=True):
            ax.plot(*curve(run, run.rows, name, offset), "o-", ms=3, color=colours[k],
                    label=run.name)  # fmt: skip
        last_offset = offset
        offset += run.rows[-1]["wall"] * run.threads / 3600
    last = chain[-1]
    for j, spec in enumerate(args.branch):
        run = read_run(spec)
        own = [r for r in run.rows if r["step"] > _fork_step(last, run)]
        for ax, name in zip(axes[0], sets, strict=True):
            ax.plot(*curve(run, own, name, last_offset), "s--", ms=3,
                    color=colours[len(chain) + j], label=run.name)  # fmt: skip

    print(
        "| validation set | gain now | per doubling of CPU-hours | "
        + " | ".join(f"CPU-hours to +{t:g} dB" for t in args.targets)
        + " |"
    )
    print("|---|---|---|" + "---|" * len(args.targets))
    for ax, name in zip(axes[0], sets, strict=True):
        hours_last, gain = curve(last, last.rows, name, last_offset)
        half = len(gain) // 2  # the second half: past the jump that a change of recipe gives
        a, b = fit_log(hours_last[half:], gain[half:])
        grid = np.geomspace(hours_last[0], hours_last[-1] * 30, 50)
        ax.plot(grid, a + b * np.log10(grid), ":", color="grey", label="fit, extrapolated")
        cells = []
        for t in args.targets:
            if b <= 0:
                cells.append("never (flat or falling)")
                continue
            need = 10 ** ((t - a) / b)
            cells.append(f"{need:,.0f}" if need < 1e7 else f"{need:.1e}")
            ax.axhline(t, color="grey", lw=0.6)
        print(
            f"| {name} | {gain[-1]:+.2f} dB | {b * math.log10(2):+.3f} dB | "
            + " | ".join(cells)
            + " |"
        )
        ax.set_xscale("log")
        ax.set_xlabel("CPU-hours (wall time x threads)")
        ax.set_ylabel("validation gain over the blurred input (dB)")
        ax.set_title(name)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle("nafnet-fast: validation gain against training compute")
    fig.tight_layout()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.out.with_suffix(".tmp" + args.out.suffix)
    fig.savefig(tmp, dpi=90)
    tmp.replace(args.out)
    print(f"wrote {args.out}")


def _fork_step(parent: Run, branch: Run) -> float:
    """The last step at which the branch's log still equals the parent's (the fork point)."""
    theirs = {r["step"]: r for r in parent.rows}
    fork = 0.0
    for r in branch.rows:
        p = theirs.get(r["step"])
        if p is None or abs(p["val_psnr"] - r["val_psnr"]) > 1e-9:
            break
        fork = r["step"]
    return fork


if __name__ == "__main__":
    main()
