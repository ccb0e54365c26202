"""The evaluation report: one HTML page with its pictures, plots, JSON and CSV beside it.

:func:`summarise` turns the per-sample records of :func:`unblur.evaluate.runner.evaluate`
into one row per method: mean scores, the mean gain over the blurred input with its 95%
confidence interval (Student's t over the pictures), on how many pictures the method scored
best, seconds per megapixel and peak memory. :func:`write_report` writes, into the report
folder:

* ``index.html``: self-contained (inline style, no script, no network): a headline that
  answers which method and how much better, the summary table, the plots, and for every
  picture the zoomed crops side by side (blurred, each method, sharp) with their scores, a
  thumbnail showing where the crop is, the kernels estimated and the motion field;
* ``plot_per_image.png`` (the PSNR, or without ground truth the sharpness, of every picture
  by method) and ``plot_speed.png`` (quality against seconds per megapixel), by matplotlib;
* ``results.json`` (settings, summary and every record) and ``results.csv`` (one row per
  picture and method).
"""

from __future__ import annotations

import csv
import html
import io as _io
import json
import math
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from unblur import io
from unblur.evaluate.runner import BASELINE, SampleResult

__all__ = ["CSV_FIELDS", "summarise", "write_csv", "write_json", "write_report"]

SCORES = ("psnr", "ssim", "psnr_y", "ssim_y", "psnr_shift", "sharpness")
CSV_FIELDS = (
    "sample",
    "method",
    "ran",
    *SCORES,
    "seconds",
    "s_per_mp",
    "peak_mb",
    "reason",
    "error",
)
_NAMES = {
    "psnr": "PSNR (dB)",
    "ssim": "SSIM",
    "psnr_y": "PSNR Y (dB)",
    "ssim_y": "SSIM Y",
    "psnr_shift": "PSNR shift-comp. (dB)",
    "sharpness": "sharpness",
}


def _mean(values: list[float]) -> float | None:
    finite = [v for v in values if v is not None and math.isfinite(v)]
    return float(np.mean(finite)) if finite else None


def _t_interval(values: list[float]) -> float | None:
    """Half-width of the 95% confidence interval of the mean (Student's t)."""
    if len(values) < 2:
        return None
    from scipy import stats

    sd = float(np.std(values, ddof=1))
    return float(stats.t.ppf(0.975, len(values) - 1) * sd / math.sqrt(len(values)))


def quality_key(results: list[SampleResult]) -> str:
    """The score that ranks methods: shift-compensated PSNR where measured (real camera
    shake), else PSNR, else (no ground truth) the no-reference sharpness."""
    keys = {k for r in results for k in r.records.get(BASELINE, {})}
    for key in ("psnr_shift", "psnr"):
        if key in keys:
            return key
    return "sharpness"


def summarise(results: list[SampleResult], labels: list[str]) -> dict[str, dict[str, Any]]:
    """One row per method (``BASELINE`` first): means, gain and its interval, wins, cost.

    Args:
        results: from :func:`unblur.evaluate.runner.evaluate`.
        labels: the methods' labels, in the order asked for.

    Returns:
        label -> ``{"n", "failed", SCORE..., "gain", "gain_ci", "wins", "s_per_mp",
        "peak_mb", "ran"}``; ``gain`` is the mean over pictures of (method - blurred) in the
        ranking score (:func:`quality_key`), ``wins`` the pictures where the method scored
        best of all methods (ties count for each), ``ran`` what ``auto`` chose how often.
    """
    key = quality_key(results)
    rows: dict[str, dict[str, Any]] = {}
    best: dict[str, float] = {}
    for r in results:
        scored = [r.records[m].get(key) for m in labels if m in r.records]
        scored = [v for v in scored if v is not None]
        if scored:
            best[r.name] = max(scored)
    for label in [BASELINE, *labels]:
        recs = [(r, r.records[label]) for r in results if label in r.records]
        ok = [(r, rec) for r, rec in recs if "error" not in rec]
        row: dict[str, Any] = {"n": len(ok), "failed": len(recs) - len(ok)}
        for score in SCORES:
            row[score] = _mean([rec[score] for _, rec in ok if score in rec])
        gains = [
            rec[key] - r.records[BASELINE][key]
            for r, rec in ok
            if key in rec and key in r.records[BASELINE]
        ]
        gains = [g for g in gains if math.isfinite(g)]
        row["gain"] = _mean(gains)
        row["gain_ci"] = _t_interval(gains)
        row["wins"] = sum(
            1 for r, rec in ok if label != BASELINE and rec.get(key) == best.get(r.name)
        )
        row["s_per_mp"] = _mean([rec["s_per_mp"] for _, rec in ok if "s_per_mp" in rec])
        peaks = [rec["peak_mb"] for _, rec in ok if rec.get("peak_mb") is not None]
        row["peak_mb"] = max(peaks) if peaks else None
        row["ran"] = dict(Counter(rec["ran"] for _, rec in ok))
        rows[label] = row
    return rows


# ------------------------------------------------------------------------------- files out


def _json_safe(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None if math.isnan(value) else ("inf" if value > 0 else "-inf")
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    return value


def results_document(
    results: list[SampleResult],
    labels: list[str],
    info: dict[str, Any],
) -> dict[str, Any]:
    """What ``results.json`` holds: ``info`` (dataset, settings, environment), the summary
    and every sample's records."""
    return _json_safe(
        {
            **info,
            "quality_key": quality_key(results),
            "methods": [BASELINE, *labels],
            "summary": summarise(results, labels),
            "samples": [r.to_json() for r in results],
        }
    )


def write_json(path: Path, document: dict[str, Any], *, overwrite: bool = True) -> Path:
    """Write a results document (strict JSON: infinities as strings), atomically."""
    text = json.dumps(document, indent=1, allow_nan=False)
    return io.atomic_write(
        path, lambda tmp: tmp.write_text(text + "\n", encoding="utf-8"), overwrite=overwrite
    )


def write_csv(path: Path, results: list[SampleResult], labels: list[str]) -> Path:
    """One row per picture and method (``BASELINE`` included), :data:`CSV_FIELDS` columns."""
    buffer = _io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=CSV_FIELDS, extrasaction="ignore")
    writer.writeheader()
    for r in results:
        for label in [BASELINE, *labels]:
            if label in r.records:
                writer.writerow({"sample": r.name, "method": label, **r.records[label]})
    text = buffer.getvalue()
    return io.atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8", newline=""))


# ------------------------------------------------------------------------------- plots

_COLOURS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2"]


def _colour(labels: list[str], label: str) -> str:
    return "#7f7f7f" if label == BASELINE else _COLOURS[labels.index(label) % len(_COLOURS)]


def _save_figure(fig: Any, path: Path) -> None:
    def write(tmp: Path) -> None:
        fig.savefig(tmp, format="png", dpi=110, bbox_inches="tight")

    io.atomic_write(path, write)


def plot_per_image(results: list[SampleResult], labels: list[str], path: Path) -> None:
    """Every picture's score by method: one marker per method, pictures along x."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    key = quality_key(results)
    fig = Figure(figsize=(max(6.0, min(16.0, 0.45 * len(results) + 3)), 3.6))
    ax = fig.add_subplot()
    x = np.arange(len(results))
    markers = ["o", "D", "^", "v", "P", "X", "*"]
    for i, label in enumerate([BASELINE, *labels]):
        ys = [r.records.get(label, {}).get(key, np.nan) for r in results]
        ys = [np.nan if v is None or not math.isfinite(v) else v for v in ys]
        ax.plot(
            x,
            ys,
            # shrinking markers of different shapes: methods that score the same still show
            marker="s" if label == BASELINE else markers[(i - 1) % len(markers)],
            linestyle="--" if label == BASELINE else "-",
            linewidth=1.0,
            markersize=5 if label == BASELINE else max(3.0, 9.0 - 1.5 * (i - 1)),
            alpha=0.9,
            color=_colour(labels, label),
            label=label,
        )
    ax.set_ylabel(_NAMES[key])
    ax.set_title(f"{_NAMES[key]} of every picture, by method")
    if len(results) <= 30:
        ax.set_xticks(x, [r.name for r in results], rotation=45, ha="right", fontsize=8)
    else:
        ax.set_xlabel("picture (in the order of the table below)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="best")
    _save_figure(fig, path)


def plot_speed(summary: dict[str, dict[str, Any]], labels: list[str], key: str, path: Path) -> None:
    """Mean gain over the blurred input (with its 95% interval) against seconds per MP."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6.0, 3.8))
    ax = fig.add_subplot()
    for label in labels:
        row = summary[label]
        if row["gain"] is None or row["s_per_mp"] is None:
            continue
        ax.errorbar(
            row["s_per_mp"],
            row["gain"],
            yerr=row["gain_ci"] or 0.0,
            fmt="o",
            markersize=8,
            capsize=4,
            color=_colour(labels, label),
            label=label,
        )
        ax.annotate(
            label,
            (row["s_per_mp"], row["gain"]),
            textcoords="offset points",
            xytext=(7, 5),
            fontsize=9,
        )
    ax.axhline(0.0, color="#7f7f7f", linestyle="--", linewidth=1, label="blurred input")
    ax.set_xscale("log")
    from matplotlib.ticker import FuncFormatter, NullFormatter

    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.margins(x=0.25, y=0.15)
    ax.set_xlabel("seconds per megapixel (log scale; left is faster)")
    unit = "" if key == "sharpness" else " (dB)"
    ax.set_ylabel(f"gain in {_NAMES[key].split(' (')[0]}{unit}")
    ax.set_title("Quality against speed (bars: 95% interval of the mean)")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8, loc="best")
    _save_figure(fig, path)


# ------------------------------------------------------------------------------- HTML

_STYLE = """
body{font:15px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;margin:0;color:#1d1d1f;
 background:#fafafa}
main{max-width:1200px;margin:0 auto;padding:24px}
h1{font-size:26px;margin:0 0 4px}h2{margin-top:36px;font-size:20px}
.sub{color:#666;margin:0 0 18px}
.headline{background:#fff;border-left:5px solid #2a7;padding:12px 18px;margin:16px 0;
 box-shadow:0 1px 3px #0001;font-size:16px}
table{border-collapse:collapse;background:#fff;box-shadow:0 1px 3px #0001}
.scroll{overflow-x:auto}
th,td{padding:6px 9px;border-bottom:1px solid #e5e5e5;text-align:right;white-space:nowrap}
td.ran{white-space:normal;text-align:left;font-size:13px;color:#555}
th:first-child,td:first-child{text-align:left}
th{background:#f0f0f0;font-weight:600}
tr.best td{background:#eafaf0;font-weight:600}
.plots{display:flex;flex-wrap:wrap;gap:16px}
.plots img{max-width:100%;background:#fff;box-shadow:0 1px 3px #0001}
.sample{background:#fff;margin:18px 0;padding:12px 16px;box-shadow:0 1px 3px #0001}
.sample h3{margin:0 0 8px;font-size:16px}
.row{display:flex;flex-wrap:wrap;gap:10px;align-items:flex-start}
.crops{display:grid;gap:8px}
figure{margin:0;text-align:center;font-size:12px}
figure img.crop{width:100%;aspect-ratio:1;image-rendering:pixelated;border:1px solid #ccc;
 box-sizing:border-box}
figure.win img.crop{border:3px solid #2a7}
figure.win figcaption b{color:#187a3c}
.row figcaption{max-width:360px}
img.thumb{max-width:360px;border:1px solid #ccc}
.note{color:#666;font-size:13px}
.err{color:#b00}
details{margin-top:8px}
"""


def _fmt(value: Any, digits: int = 2) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        if math.isinf(value):
            return "∞"
        return f"{value:.{digits}f}"
    return html.escape(str(value))


def _signed(value: float | None, ci: float | None) -> str:
    if value is None:
        return "–"
    text = f"{value:+.2f}"
    return text + (f" ± {ci:.2f}" if ci is not None else "")


def best_method(
    summary: dict[str, dict[str, Any]], labels: list[str], key: str
) -> tuple[str | None, list[str]]:
    """The best method by mean ``key`` and those tied with it (within 0.005); among tied
    methods (``auto`` choosing the network on every picture) the fastest is the best."""
    ranked = [m for m in labels if summary[m].get(key) is not None]
    if not ranked:
        return None, []
    top = max(summary[m][key] for m in ranked)
    tied = [m for m in ranked if summary[m][key] >= top - 0.005]
    return min(tied, key=lambda m: summary[m]["s_per_mp"] or math.inf), tied


def _headline(summary: dict[str, dict[str, Any]], labels: list[str], key: str, n: int) -> str:
    best, tied = best_method(summary, labels, key)
    if best is None:
        return "No method finished on any picture."
    row = summary[best]
    unit = " dB" if key != "sharpness" else ""
    if len(tied) > 1:
        others = ", ".join(f"<b>{html.escape(m)}</b>" for m in tied if m != best)
        tie = f" (tied with {others}, which is slower)"
    else:
        tie = ""
    if key == "sharpness":
        text = (
            f"<b>{html.escape(best)}</b> gives the sharpest pictures by the no-reference "
            f"measure (variance of the Laplacian {row[key]:.0f} against "
            f"{summary[BASELINE][key]:.0f}"
            " for the blurred input). There is no ground truth here: the measure also rises with "
            "noise and ringing, so look at the crops, or ask people (<code>unblur serve</code>'s "
            "blind A/B)."
        )
    else:
        text = (
            f"<b>{html.escape(best)}</b> restores best{tie}: {_NAMES[key]} {row[key]:.2f}{unit}, "
            f"<b>{_signed(row['gain'], row['gain_ci'])}{unit}</b> over the blurred input "
            f"(95% interval), best on {row['wins']} of {n} pictures"
        )
    if row["s_per_mp"] is not None:
        text += f"; {row['s_per_mp']:.2f} s per megapixel"
    fastest = min(
        (m for m in labels if summary[m]["s_per_mp"] is not None),
        key=lambda m: summary[m]["s_per_mp"],
        default=None,
    )
    if fastest and fastest != best:
        f = summary[fastest]
        text += (
            f". Fastest: <b>{html.escape(fastest)}</b>, {f['s_per_mp']:.2f} s/MP "
            f"({_signed(f['gain'], None)}{unit})"
        )
    return text + "."


def _table(summary: dict[str, dict[str, Any]], labels: list[str], key: str) -> str:
    present = [s for s in SCORES if any(summary[m].get(s) is not None for m in summary)]
    head = [
        "method",
        "pictures",
        *(_NAMES[s] for s in present),
        "gain" + (" (dB)" if key != "sharpness" else ""),
        "best on",
        "s / MP",
        "peak MiB",
        "auto chose",
    ]
    best, _ = best_method(summary, labels, key)
    out = [
        '<div class="scroll"><table><thead><tr>',
        *(f"<th>{html.escape(h)}</th>" for h in head),
        "</tr></thead>",
    ]
    out.append("<tbody>")
    for label in [BASELINE, *labels]:
        row = summary[label]
        cls = ' class="best"' if label == best else ""
        digits = {"ssim": 4, "ssim_y": 4, "sharpness": 0}
        cells = [
            html.escape(label + (" (input)" if label == BASELINE else "")),
            f"{row['n']}"
            + (f' <span class="err">({row["failed"]} failed)</span>' if row["failed"] else ""),
            *(_fmt(row[s], digits.get(s, 2)) for s in present),
            "–" if label == BASELINE else _signed(row["gain"], row["gain_ci"]),
            "–" if label == BASELINE else str(row["wins"]),
            _fmt(row["s_per_mp"]),
            _fmt(row["peak_mb"], 0),
            html.escape(
                ", ".join(f"{k} ×{v}" for k, v in row["ran"].items())
                if label.split(":")[0] == "auto"
                else ""
            ),
        ]
        tds = "".join(f"<td>{c}</td>" for c in cells[:-1]) + f'<td class="ran">{cells[-1]}</td>'
        out.append(f"<tr{cls}>{tds}</tr>")
    out.append("</tbody></table></div>")
    return "".join(out)


def _caption(label: str, record: dict[str, Any], key: str) -> str:
    if "error" in record:
        return f'{html.escape(label)}<br><span class="err">{html.escape(record["error"])}</span>'
    parts = [f"<b>{html.escape(label)}</b>"]
    if label not in (BASELINE,) and record.get("ran") and record["ran"] != label.split(":")[0]:
        parts.append(f"→ {html.escape(record['ran'])}")
    line = []
    if key in record and key != "sharpness":
        line.append(f"{_fmt(record[key])} dB")
    if "ssim" in record:
        line.append(f"SSIM {record['ssim']:.3f}")
    if "sharpness" in record:
        line.append(f"sharp. {record['sharpness']:.0f}")
    if "seconds" in record:
        line.append(f"{record['seconds']:.1f} s")
    return " ".join(parts) + "<br>" + " · ".join(line)


def _sample_html(r: SampleResult, labels: list[str], key: str) -> str:
    scored = {m: r.records[m].get(key) for m in labels if m in r.records}
    scored = {m: v for m, v in scored.items() if v is not None}
    top = max(scored.values()) if scored else None
    winners = {m for m, v in scored.items() if v == top}  # ties: every one of them
    figures = []
    for label in [BASELINE, *labels]:
        record = r.records.get(label, {})
        src = record.get("crop_file")
        cls = ' class="win"' if label in winners else ""
        img = (
            f'<img class="crop" src="{html.escape(src)}" alt="{html.escape(label)}">'
            if src
            else '<div class="crop"></div>'
        )
        figures.append(
            f"<figure{cls}>{img}<figcaption>{_caption(label, record, key)}</figcaption></figure>"
        )
    if "sharp_crop" in r.files:
        figures.append(
            f'<figure><img class="crop" src="{html.escape(r.files["sharp_crop"])}" alt="sharp">'
            "<figcaption><b>sharp</b> (ground truth)</figcaption></figure>"
        )
    x, y, side = r.crop
    extras = []
    if "thumb" in r.files:
        extras.append(
            f'<figure><img class="thumb" src="{html.escape(r.files["thumb"])}" alt="whole">'
            f"<figcaption>the whole picture ({r.width}×{r.height}); the square is the crop "
            f"({side}×{side} px at ({x}, {y}), shown enlarged)</figcaption></figure>"
        )
    if "motion" in r.files:
        extras.append(
            f'<figure><img class="thumb" src="{html.escape(r.files["motion"])}" alt="motion">'
            "<figcaption>estimated motion field (colour: direction; brightness and traces: "
            "length)</figcaption></figure>"
        )
    for label in labels:
        record = r.records.get(label, {})
        for k, what in (("kernel_file", "kernel"), ("field_file", "motion field")):
            if k in record:
                how = "known" if record.get("ran") == "kernel" else "estimated"
                extras.append(
                    f'<figure><img src="{html.escape(record[k])}" alt="{what}" '
                    f'style="max-width:360px"><figcaption>{html.escape(label)}: {how} '
                    f"{what}</figcaption></figure>"
                )
    reasons = [
        f"<li><b>{html.escape(m)}</b>: {html.escape(r.records[m]['reason'])}</li>"
        for m in labels
        if m in r.records and r.records[m].get("reason") and m.split(":")[0] == "auto"
    ]
    why = f"<details><summary>why auto chose</summary><ul>{''.join(reasons)}</ul></details>"
    return (
        f'<section class="sample" id="{html.escape(r.name)}"><h3>{html.escape(r.name)}</h3>'
        f'<div class="crops" style="grid-template-columns:repeat({len(figures)},minmax(0,1fr))">'
        f"{''.join(figures)}</div>"
        f'<div class="row" style="margin-top:10px">{"".join(extras)}</div>'
        f"{why if reasons else ''}</section>"
    )


def write_report(
    folder: Path,
    results: list[SampleResult],
    labels: list[str],
    info: dict[str, Any],
) -> Path:
    """Write ``index.html``, the plots, ``results.json`` and ``results.csv`` into ``folder``.

    Args:
        folder: the report folder (the pictures of :func:`~unblur.evaluate.runner.evaluate`
            with ``work_dir=folder`` are already there).
        results: the evaluated samples.
        labels: the methods' labels, in order.
        info: ``dataset``, ``layout``, ``settings``, ``environment`` for the page and JSON.

    Returns:
        The page's path.
    """
    key = quality_key(results)
    summary = summarise(results, labels)
    plot_per_image(results, labels, folder / "plot_per_image.png")
    plot_speed(summary, labels, key, folder / "plot_speed.png")
    write_json(folder / "results.json", results_document(results, labels, info))
    write_csv(folder / "results.csv", results, labels)

    settings = info.get("settings", {})
    env = info.get("environment", {})
    protocol = []
    if key == "psnr_shift":
        protocol.append(
            f"ranked by shift-compensated PSNR (shifts up to {settings.get('shift')} "
            "px, Levin et al. 2009)"
        )
    if settings.get("crop_border"):
        protocol.append(f"{settings['crop_border']} px border left out")
    protocol.append("outputs rounded to the source's bit depth before scoring, as saved files")
    protocol.append("Y = BT.601 luma")
    protocol.append("gain ± 95% interval of the mean over pictures (Student's t)")
    protocol.append("s/MP: wall seconds per megapixel; peak MiB: memory the call added")
    n = len(results)
    page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>unblur eval: {html.escape(str(info.get("dataset", "")))}</title>
<style>{_STYLE}</style></head><body><main>
<h1>Deblurring evaluation</h1>
<p class="sub">{html.escape(str(info.get("dataset", "")))} · {html.escape(info.get("layout", ""))}
 layout · {n} picture{"s" if n != 1 else ""} · methods: {html.escape(", ".join(labels))}</p>
<div class="headline">{_headline(summary, labels, key, n)}</div>
<h2>Summary</h2>
{_table(summary, labels, key)}
<p class="note">{html.escape("; ".join(protocol))}. Measured with unblur {
        html.escape(str(env.get("unblur", "")))
    }, torch {html.escape(str(env.get("torch", "")))},
 {html.escape(str(env.get("threads", "")))} thread(s) on {html.escape(str(env.get("cpu", "")))} ({
        html.escape(str(settings.get("device", "")))
    }).
 Data: <a href="results.json">results.json</a> · <a href="results.csv">results.csv</a></p>
<h2>Plots</h2>
<div class="plots"><img src="plot_per_image.png" alt="per-picture scores">
<img src="plot_speed.png" alt="quality against speed"></div>
<h2>What it looks like</h2>
<p class="note">Each row: the same square of the picture (where blurred and sharp differ most),
enlarged without smoothing: the blurred input, each method, and the sharp original; the best
score is in green.</p>
{"".join(_sample_html(r, labels, key) for r in results)}
</main></body></html>
"""
    path = folder / "index.html"
    io.atomic_write(path, lambda tmp: tmp.write_text(page, encoding="utf-8"))
    return path
