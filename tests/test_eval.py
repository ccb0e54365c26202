"""``unblur eval``: dataset layouts, metrics, the report's files and numbers, resume, errors."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from scenes import textured_scene
from scipy import ndimage

from unblur import blur, io, metrics
from unblur.cli import main
from unblur.evaluate.datasets import find_samples
from unblur.evaluate.report import summarise
from unblur.evaluate.runner import quantise
from unblur.restoration.api import restore


def make_pairs(root: Path, count: int = 3, size: int = 48) -> list[str]:
    """Blurred/sharp pairs with their kernels, ``unblur synth``'s layout."""
    for folder in ("blur", "sharp", "kernel"):
        (root / folder).mkdir(parents=True, exist_ok=True)
    names = []
    for i in range(count):
        sharp = np.clip(textured_scene(size, size, 3, seed=i), 0, 1)
        kernel = blur.linear_kernel(5 + 2 * i, angle=40.0 * i)
        blurred = blur.blur_image(sharp, kernel)
        name = f"pic{i}"
        io.write_image(root / "sharp" / f"{name}.png", sharp)
        io.write_image(root / "blur" / f"{name}.png", blurred)
        np.save(root / "kernel" / f"{name}.npy", kernel)
        names.append(name)
    return names


# ------------------------------------------------------------------------------- metrics


def test_y_channel_metrics_follow_bt601() -> None:
    white = np.ones((4, 4, 3))
    assert metrics.rgb_to_y(white) == pytest.approx(np.full((4, 4), 235 / 255))
    a = np.clip(textured_scene(32, 32, 3, seed=1), 0, 1)
    b = np.clip(a + np.random.default_rng(0).normal(0, 0.02, a.shape), 0, 1)
    ya, yb = metrics.rgb_to_y(a), metrics.rgb_to_y(b)
    assert metrics.psnr(a, b, y_channel=True) == pytest.approx(metrics.psnr(ya, yb))
    assert metrics.ssim(a, b, y_channel=True) == pytest.approx(metrics.ssim(ya, yb))
    assert metrics.psnr(a, b, y_channel=True) > metrics.psnr(a, b)  # luma averages noise


def test_sharpness_ranks_blur() -> None:
    sharp = textured_scene(64, 64, 3, seed=2)
    blurred = ndimage.gaussian_filter(sharp, (2, 2, 0))
    assert metrics.sharpness(sharp) > 3 * metrics.sharpness(blurred)
    assert metrics.sharpness(np.full((16, 16), 0.5)) == 0.0


def test_shift_compensated_psnr_matches_exhaustive_search() -> None:
    ref = ndimage.gaussian_filter(textured_scene(64, 64, seed=3), 1.5)
    moved = ndimage.shift(ref, (1.25, -2.5), order=1, mode="nearest")
    moved = moved + np.random.default_rng(1).normal(0, 0.01, moved.shape)
    crop = (slice(8, 56), slice(8, 56))
    grid = np.arange(-4, 4.01, 0.25)
    best = max(
        metrics.psnr(ref[crop], ndimage.shift(moved, (dy, dx), order=1, mode="nearest")[crop])
        for dy in grid
        for dx in grid
    )
    fast = metrics.shift_compensated_psnr(ref, moved, max_shift=4, border=8)
    assert fast == pytest.approx(best, abs=0.05)


# ------------------------------------------------------------------------------- layouts


def test_layouts(tmp_path: Path) -> None:
    flat = tmp_path / "flat"
    make_pairs(flat, count=2, size=16)
    layout, samples = find_samples(flat)
    assert layout == "flat" and [s.name for s in samples] == ["pic0", "pic1"]
    assert samples[0].sharp == flat / "sharp" / "pic0.png"
    assert samples[1].kernel == flat / "kernel" / "pic1.npy"

    scenes = tmp_path / "gopro" / "test"
    make_pairs(scenes / "GOPR0001", count=1, size=16)
    make_pairs(scenes / "GOPR0002", count=2, size=16)
    layout, samples = find_samples(tmp_path / "gopro")
    assert layout == "scenes"
    assert [s.name for s in samples] == [
        "test/GOPR0001/pic0",
        "test/GOPR0002/pic0",
        "test/GOPR0002/pic1",
    ]

    listing = tmp_path / "list.txt"
    listing.write_text(
        "# RealBlur order: reference first\n"
        "flat/sharp/pic0.png flat/blur/pic0.png\n"
        "flat/blur/pic1.png, flat/sharp/pic1.png\n"  # the sharp folder's name tells
    )
    layout, samples = find_samples(listing)
    assert layout == "list"
    assert [(s.blurred.name, s.sharp.parent.name) for s in samples if s.sharp] == [
        ("pic0.png", "sharp"),
        ("pic1.png", "sharp"),
    ]
    assert all(s.blurred.parent.name == "blur" for s in samples)

    loose = tmp_path / "loose"
    loose.mkdir()
    io.write_image(loose / "a.jpg", np.zeros((8, 8, 3), np.float32))
    layout, samples = find_samples(loose)
    assert layout == "no ground truth" and samples[0].sharp is None


# ------------------------------------------------------------------------------- the report


def test_report_files_and_numbers(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "set"
    names = make_pairs(data)
    report = tmp_path / "report"
    out_json = tmp_path / "results.json"
    argv = ["eval", str(data), "--methods", "kernel,network", "--report", str(report)]
    argv += ["--json", str(out_json), "--quiet", "--threads", "1", "--shift", "2"]
    assert main(argv) == 0
    for name in ("index.html", "plot_per_image.png", "plot_speed.png", "results.csv"):
        assert (report / name).stat().st_size > 0, name
    doc = json.loads(out_json.read_text())
    assert doc == json.loads((report / "results.json").read_text())
    assert doc["methods"] == ["blurred", "kernel", "network"]
    assert doc["layout"] == "flat" and doc["quality_key"] == "psnr_shift"

    page = (report / "index.html").read_text()
    for sample in doc["samples"]:
        name = sample["name"]
        sharp = io.read_image(data / "sharp" / f"{name}.png").pixels
        blurred = io.read_image(data / "blur" / f"{name}.png").pixels
        kernel = np.load(data / "kernel" / f"{name}.npy")
        direct = quantise(restore(blurred, "kernel", kernel=kernel).pixels, 8)
        rec = sample["records"]["kernel"]
        assert rec["psnr"] == pytest.approx(metrics.psnr(sharp, direct), abs=1e-6)
        assert rec["ssim"] == pytest.approx(metrics.ssim(sharp, direct), abs=1e-6)
        assert rec["psnr_y"] == pytest.approx(metrics.psnr(sharp, direct, y_channel=True))
        assert rec["ssim_y"] == pytest.approx(metrics.ssim(sharp, direct, y_channel=True))
        shifted = metrics.shift_compensated_psnr(sharp, direct, max_shift=2, border=15)
        assert rec["psnr_shift"] == pytest.approx(shifted)
        base = sample["records"]["blurred"]
        assert base["psnr"] == pytest.approx(metrics.psnr(sharp, blurred))
        assert base["sharpness"] == pytest.approx(metrics.sharpness(blurred))
        assert rec["s_per_mp"] == pytest.approx(rec["seconds"] / (48 * 48 / 1e6))
        assert rec["peak_mb"] is not None and rec["peak_mb"] >= 0
        for record in sample["records"].values():  # every crop and kernel picture is there
            for key, rel in record.items():
                if key.endswith("_file"):
                    assert (report / rel).is_file() and rel in page
        assert {"thumb", "sharp_crop", "motion"} <= set(sample["files"])
        assert io.read_image(report / sample["files"]["sharp_crop"]).width == 48
    assert [s["name"] for s in doc["samples"]] == names

    key = "psnr_shift"  # the ranking score: gains and wins are measured in it
    gains = [s["records"]["kernel"][key] - s["records"]["blurred"][key] for s in doc["samples"]]
    row = doc["summary"]["kernel"]
    assert row["gain"] == pytest.approx(np.mean(gains))
    assert row["psnr"] == pytest.approx(
        np.mean([s["records"]["kernel"]["psnr"] for s in doc["samples"]])
    )
    assert row["wins"] + doc["summary"]["network"]["wins"] >= len(names)
    with open(report / "results.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 3 * len(names)
    assert float(rows[1]["psnr"]) == pytest.approx(doc["samples"][0]["records"]["kernel"]["psnr"])
    assert "kernel" in page and "restores best" in page

    # resumed: nothing is computed again, the numbers are the same
    capsys.readouterr()
    argv = [
        "eval",
        str(data),
        "--methods",
        "kernel,network",
        "--report",
        str(report),
        "--threads",
        "1",
        "--shift",
        "2",
    ]
    assert main(argv) == 0
    err = capsys.readouterr().err
    assert "9 results reused" in err and "0 computed" in err
    again = json.loads((report / "results.json").read_text())
    assert again["summary"] == doc["summary"]
    # other settings: everything is measured again
    assert main([*argv, "--crop-border", "2"]) == 0
    assert "reused" not in capsys.readouterr().err
    cropped = json.loads((report / "results.json").read_text())
    assert cropped["summary"]["kernel"]["psnr"] != doc["summary"]["kernel"]["psnr"]


def test_without_ground_truth(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "shots"
    folder.mkdir()
    for i in range(2):
        picture = ndimage.gaussian_filter(textured_scene(40, 40, 3, seed=i), (1.5, 1.5, 0))
        io.write_image(folder / f"shot{i}.png", np.clip(picture, 0, 1))
    report = tmp_path / "r"
    argv = ["eval", str(folder), "--methods", "network", "--report", str(report), "-q"]
    assert main([*argv, "--no-motion-field", "--threads", "1"]) == 0
    doc = json.loads((report / "results.json").read_text())
    assert doc["quality_key"] == "sharpness" and doc["layout"] == "no ground truth"
    record = doc["samples"][0]["records"]["network"]
    assert "psnr" not in record and record["sharpness"] > 0
    assert "motion" not in doc["samples"][0]["files"]
    assert "no-reference" in (report / "index.html").read_text()
    assert "| network |" in capsys.readouterr().out


def test_a_bad_picture_does_not_stop_the_rest(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "set"
    make_pairs(data, count=3, size=32)
    (data / "blur" / "pic1.png").write_bytes(b"not a png")  # corrupt
    out = tmp_path / "results.json"
    assert main(["eval", str(data), "--methods", "kernel", "--json", str(out), "-q"]) == 1
    err = capsys.readouterr().err
    assert "pic1: skipped:" in err and "1 picture(s) skipped" in err
    assert "Traceback" not in err
    names = [r["name"] for r in json.loads(out.read_text())["samples"]]
    assert names == ["pic0", "pic2"]


def test_summary_counts_failures(tmp_path: Path) -> None:
    from unblur.evaluate.runner import SampleResult

    results = [
        SampleResult(
            "a",
            8,
            8,
            (0, 0, 8),
            {
                "blurred": {"psnr": 20.0, "ran": "blurred"},
                "x": {"psnr": 22.0, "ran": "x", "s_per_mp": 1.0},
            },
        ),
        SampleResult(
            "b",
            8,
            8,
            (0, 0, 8),
            {"blurred": {"psnr": 30.0, "ran": "blurred"}, "x": {"error": "too small"}},
        ),
    ]
    row = summarise(results, ["x"])["x"]
    assert (row["n"], row["failed"], row["gain"], row["wins"]) == (1, 1, 2.0, 1)
    assert row["gain_ci"] is None  # one picture: no interval


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--methods", "sharpen"], "unknown method 'sharpen'"),
        (["--methods", "blind:nafnet-fast"], "only network and auto take a model"),
        (["--methods", "kernel", "--limit", "1", "DATASET=nokernels"], "needs known kernels"),
        (["--shift", "-1"], "--shift must be between"),
        (["DATASET=missing"], "no such file or folder"),
        (["--report", "REPORT=busy"], "other files"),
        (["--json", "JSON=exists"], "already exists"),
    ],
)
def test_errors_are_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    data = tmp_path / "set"
    make_pairs(data, count=1, size=16)
    nokernels = tmp_path / "nk"
    make_pairs(nokernels, count=1, size=16)
    for f in (nokernels / "kernel").iterdir():
        f.unlink()
    (nokernels / "kernel").rmdir()
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "notes.txt").write_text("mine")
    exists = tmp_path / "exists.json"
    exists.write_text("{}")
    places = {
        "DATASET=nokernels": str(nokernels),
        "DATASET=missing": str(tmp_path / "nothing"),
        "REPORT=busy": str(busy),
        "JSON=exists": str(exists),
    }
    dataset = next((places[a] for a in argv if a.startswith("DATASET=")), str(data))
    rest = [places.get(a, a) for a in argv if not a.startswith("DATASET=")]
    assert main(["eval", dataset, *rest, "-q"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("unblur: error:") and message in err and "\n" not in err
    assert (busy / "notes.txt").read_text() == "mine" and exists.read_text() == "{}"
