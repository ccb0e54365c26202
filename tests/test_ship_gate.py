"""benchmarks/ship_gate.py: the verdict, candidates from checkpoints, --ship, errors.

Generated data only (a tiny data root in a temporary folder) and randomly initialised
networks; the real shipped weights file is never written.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file
from scenes import textured_scene

from unblur import export, io
from unblur.models import create_model
from unblur.restoration.network import Deblurrer

ROOT = Path(__file__).resolve().parents[1]


def _import_gate():
    spec = importlib.util.spec_from_file_location("ship_gate", ROOT / "benchmarks" / "ship_gate.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


gate = _import_gate()

TINY = gate.Sizes(crop=64, pair_crop=64, limit=2, motion_size=32, motion_count=3)


@pytest.fixture(scope="module")
def data_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """gopro-frameavg (GOPR0374 + a GOPR0477 pair that must be left out), set14, set5."""
    root = tmp_path_factory.mktemp("data")
    for folder in ("gopro-frameavg/sharp", "gopro-frameavg/blur", "set14/images", "set5/images"):
        (root / folder).mkdir(parents=True)
    for i, scene in enumerate(("GOPR0374_11_00_a", "GOPR0374_11_00_b", "GOPR0477_11_00_c")):
        sharp = textured_scene(80, 96, 3, seed=i)
        blurred = np.clip(sharp + 0.05 * np.roll(sharp, 3, axis=1), 0, 1) / 1.05
        io.write_image(root / "gopro-frameavg" / "sharp" / f"{scene}.png", sharp)
        io.write_image(root / "gopro-frameavg" / "blur" / f"{scene}.png", blurred)
    for folder, count in (("set14", 3), ("set5", 1)):
        for i in range(count):
            photo = textured_scene(72, 88, 3, seed=10 + i)
            io.write_image(root / folder / "images" / f"{folder}_{i}.png", photo)
    return root


@pytest.fixture(scope="module")
def weights(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, torch.nn.Module]:
    """Randomly initialised nafnet-fast weights standing in for the shipped ones."""
    torch.manual_seed(0)
    net = create_model("nafnet-fast", pretrained=False)
    path = tmp_path_factory.mktemp("w") / "nafnet-fast.safetensors"
    export.save_weights(path, net, "nafnet-fast")
    return path, net


def _score(name: str, shipped: float, candidate: float, lower: bool = False):
    return gate.SetScore(name, 3, 20.0, shipped, candidate, lower)


def test_verdict_needs_every_set_better() -> None:
    better = [_score("a", 25.0, 25.3), _score("b", 30.0, 30.01)]
    assert gate.verdict(better)
    assert not gate.verdict([*better, _score("c", 28.0, 27.9)])  # one set regresses
    assert not gate.verdict([*better, _score("c", 28.0, 28.0)])  # equal is not better
    assert not gate.verdict([*better, _score("c", 28.0, float("nan"))])
    assert not gate.verdict([])
    # errors: lower is better
    assert gate.verdict([_score("linear", 3.4, 3.3, True), _score("still", 1.5, 1.4, True)])
    assert not gate.verdict([_score("linear", 3.4, 3.3, True), _score("still", 1.5, 1.6, True)])
    # nothing shipped: the input is the baseline
    assert gate.verdict([gate.SetScore("a", 1, 20.0, None, 20.5)])
    assert not gate.verdict([gate.SetScore("a", 1, 20.0, None, 19.5)])


def test_paired_gains_show_their_spread_but_do_not_change_the_verdict() -> None:
    score = gate.SetScore("shake", 4, 24.0, 25.0, 25.05, paired=(0.3, -0.1, 0.1, -0.1))
    assert score.gain == pytest.approx(0.05)
    assert score.wins == 2
    assert score.standard_error == pytest.approx(np.std([0.3, -0.1, 0.1, -0.1], ddof=1) / 2)
    assert gate.verdict([score])  # the mean decides, as before
    errors = gate.SetScore("linear", 2, 5.0, 3.0, 2.9, True, paired=(-0.2, 0.0))
    assert errors.wins == 1  # lower is better: -0.2 is a win, 0.0 is not
    assert gate.SetScore("a", 1, 20.0, 21.0, 21.5, paired=(0.5,)).standard_error is None
    assert _score("a", 25.0, 25.3).standard_error is None and _score("a", 25.0, 25.3).wins == 0


def test_a_ruined_picture_fails_a_better_mean() -> None:
    # the mean is better (+0.2 dB), but one picture lost 2 dB: the release would ruin it
    ruined = gate.SetScore("varying", 4, 24.0, 25.0, 25.2, paired=(1.0, 0.9, 0.9, -2.0))
    assert ruined.better and ruined.worst == pytest.approx(-2.0) and ruined.ruins_a_picture
    fine = _score("shake", 25.0, 25.3)
    assert not gate.verdict([fine, ruined])
    assert gate.verdict([fine, dataclasses.replace(ruined, paired=(1.0, 0.9, 0.9, -0.9))])
    # errors (motion) have no per-picture rule
    assert not gate.SetScore("linear", 2, 5.0, 3.0, 2.9, True, paired=(-0.2, 5.0)).ruins_a_picture
    report = gate.Report(
        model="nafnet-fast",
        task="restore",
        candidate="c",
        candidate_source="weights",
        candidate_sha256="0" * 64,
        target="t",
        shipped_sha256="1" * 64,
        scores=[fine, ruined],
        command="python benchmarks/ship_gate.py",
        date="today",
        seconds=1.0,
        threads=1,
        sizes=TINY,
    )
    text = report.markdown()
    assert "a picture more than 1 dB worse in varying (-2.00)" in text
    assert "| varying | 4 |" in text and "| -2.00 |" in text
    # with the pictures named, the verdict and the table say which one
    named = dataclasses.replace(ruined, names=("a.png", "b.png", "c.png", "ppt3.png"))
    assert named.worst_name == "ppt3.png" and ruined.worst_name is None
    text = dataclasses.replace(report, scores=[fine, named]).markdown()
    assert "varying (-2.00, ppt3.png)" in text and "| -2.00 (ppt3.png) |" in text
    record = dataclasses.replace(report, scores=[fine, named]).as_json()["sets"][1]
    assert record["worst_picture"] == "ppt3.png" and record["pictures"]["ppt3.png"] == -2.0


def test_sets_are_fixed_and_leave_training_pairs_out(data_root: Path) -> None:
    sets = gate.build_restore_sets(data_root, TINY)
    assert list(sets) == ["gopro0374", "shake", "varying", "noisy", "saturated"]
    assert [p.name for p in sets["gopro0374"]] == ["GOPR0374_11_00_a.png", "GOPR0374_11_00_b.png"]
    # noisy and saturated: set5 + set14
    assert [len(sets[n]) for n in ("shake", "varying", "noisy", "saturated")] == [2, 2, 3, 3]
    assert all(p.blur.shape == (64, 64, 3) for ps in sets.values() for p in ps)
    again = gate.build_restore_sets(data_root, TINY)
    for name, pairs in sets.items():
        for a, b in zip(pairs, again[name], strict=True):
            np.testing.assert_array_equal(a.blur, b.blur)
    # the noisy set is noisier than camera shake alone on the same photos
    # saturated: the sharp side is clipped where the boosted light is, so brighter than the photo
    shake_sharp = {p.name: p.sharp for p in sets["shake"]}
    for pair in sets["saturated"][1:]:
        assert pair.sharp.mean() >= shake_sharp[pair.name].mean() - 1e-6
    residual = [np.std(p.blur - p.sharp) for p in sets["noisy"][1:]]
    assert np.mean(residual) > np.mean([np.std(p.blur - p.sharp) for p in sets["shake"]])


def test_identical_candidate_fails_and_ship_writes_nothing(
    data_root: Path,
    weights: tuple[Path, torch.nn.Module],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    shipped_dir = tmp_path / "shipped"
    shipped_dir.mkdir()
    target = shipped_dir / "nafnet-fast.safetensors"
    target.write_bytes(weights[0].read_bytes())
    before = target.read_bytes()
    out_json, out_md = tmp_path / "gate.json", tmp_path / "gate.md"
    argv = ["--model", "nafnet-fast", "--candidate", str(weights[0]), "--data", str(data_root)]
    argv += ["--target", str(target), "--ship", "--json", str(out_json)]
    argv += ["--markdown", str(out_md), "--quiet"]
    assert gate.main(argv, sizes=TINY) == 1
    assert target.read_bytes() == before
    assert sorted(p.name for p in shipped_dir.iterdir()) == ["nafnet-fast.safetensors"]
    captured = capsys.readouterr()
    assert "not shipped" in captured.err
    assert "FAIL" in captured.out and "| gopro0374 | 2 |" in captured.out
    result = json.loads(out_json.read_text())
    assert result["verdict"] == "FAIL"
    names = ["gopro0374", "shake", "varying", "noisy", "saturated"]
    assert [s["name"] for s in result["sets"]] == names
    assert all(s["gain"] == 0.0 and not s["better"] for s in result["sets"])
    assert all(s["wins"] == 0 and s["standard_error"] == 0.0 for s in result["sets"])
    assert "| gain | ± s.e. | images won |" in captured.out
    assert "| +0.00 | 0.000 | 0 of 2 |" in captured.out
    assert result["shipped_sha256"] == result["candidate_sha256"]
    assert out_md.read_text() == captured.out


def _checkpoint(directory: Path) -> tuple[Path, torch.nn.Module, torch.nn.Module]:
    from unblur.train.checkpoint import save_checkpoint

    torch.manual_seed(1)
    model = create_model("nafnet-fast", pretrained=False)
    ema = create_model("nafnet-fast", pretrained=False)
    optimizer = torch.optim.AdamW(model.parameters())
    names = [n for n, _ in model.named_parameters()]
    state = {"step": 7, "local_pool": "160"}  # validated with 160 px pooling windows
    path = save_checkpoint(
        directory, model=model, ema=ema, optimizer=optimizer, names=names, state=state
    )
    return path, model, ema


def test_checkpoint_candidate_gives_its_ema_weights(tmp_path: Path) -> None:
    path, model, ema = _checkpoint(tmp_path / "ckpt")
    prefix, source = gate.weights_prefix(path)
    assert prefix == "params_ema." and "step 7" in source
    net, _ = gate.load_candidate("nafnet-fast", path)
    for key, value in net.state_dict().items():
        torch.testing.assert_close(value, ema.state_dict()[key], rtol=0, atol=0)
    key = next(k for k, v in model.state_dict().items() if v.is_floating_point() and v.numel() > 1)
    assert not torch.equal(net.state_dict()[key], model.state_dict()[key])


def test_checkpoint_that_refers_to_shipped_weights_is_no_candidate(tmp_path: Path) -> None:
    from unblur.errors import ModelError
    from unblur.train import checkpoint

    path, _, ema = _checkpoint(tmp_path / "ckpt")
    shipped = tmp_path / "shipped.safetensors"
    save_file({k: v.contiguous() for k, v in ema.state_dict().items()}, str(shipped))
    checkpoint.slim(tmp_path / "ckpt", same_as=shipped)
    with pytest.raises(ModelError, match="already shipped"):
        gate.weights_prefix(path)


def test_ship_on_pass_writes_the_ema_weights(
    data_root: Path,
    weights: tuple[Path, torch.nn.Module],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    path, _, ema = _checkpoint(tmp_path / "ckpt")
    target = tmp_path / "nafnet-fast.safetensors"
    target.write_bytes(weights[0].read_bytes())
    names = ("gopro0374", "shake", "varying", "noisy", "saturated")
    better = [_score(n, 25.0, 25.5) for n in names]
    monkeypatch.setattr(gate, "evaluate", lambda *args: better)
    argv = ["--model", "nafnet-fast", "--candidate", str(path), "--data", str(data_root)]
    assert gate.main([*argv, "--target", str(target), "--ship", "--quiet"], sizes=TINY) == 0
    assert "PASS" in capsys.readouterr().out
    written = load_file(str(target))
    for key, value in ema.state_dict().items():
        torch.testing.assert_close(written[key], value, rtol=0, atol=0)
    assert target.stat().st_size < gate.MAX_WEIGHTS_BYTES
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpt", "nafnet-fast.safetensors"]
    # the shipped file keeps the window the candidate was validated with
    assert Deblurrer("nafnet-fast", weights=target, device="cpu").local_pool == 160
    # weights that say nothing are shipped with the window they were gated with
    assert gate.candidate_metadata("nafnet-fast", weights[0]) == {"local_pool": "global"}
    assert gate.candidate_metadata("motion-single", weights[0]) == {}


@pytest.mark.parametrize("problem", ["missing", "pickle", "architecture", "data"])
def test_errors_are_one_line(
    problem: str,
    data_root: Path,
    weights: tuple[Path, torch.nn.Module],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    candidate, data = tmp_path / "candidate.safetensors", data_root
    if problem == "pickle":
        torch.save({"x": torch.zeros(2)}, candidate)
    elif problem == "architecture":
        save_file({"conv.weight": torch.zeros(2, 2)}, str(candidate))
    elif problem == "data":
        candidate, data = weights[0], tmp_path / "no-data"
    argv = ["--model", "nafnet-fast", "--candidate", str(candidate), "--data", str(data)]
    target = tmp_path / "target.safetensors"
    assert gate.main([*argv, "--target", str(target), "--ship", "--quiet"], sizes=TINY) == 2
    err = capsys.readouterr().err
    assert err.startswith("ship_gate: error: ") and err.count("\n") == 1
    assert "Traceback" not in err
    assert not target.exists()


def test_motion_gate_identical_weights_fail(
    data_root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    torch.manual_seed(2)
    net = create_model("motion-single", pretrained=False)
    target = export.save_weights(tmp_path / "motion-single.safetensors", net, "motion-single")
    argv = ["--model", "motion-single", "--candidate", str(target), "--data", str(data_root)]
    assert gate.main([*argv, "--target", str(target), "--quiet"], sizes=TINY) == 1
    out = capsys.readouterr().out
    assert "median EPE in px" in out and "FAIL" in out
    assert "| linear | 1 |" in out and "| still | 1 |" in out


def _import_pooling():
    spec = importlib.util.spec_from_file_location("pooling", ROOT / "benchmarks" / "pooling.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_pooling_benchmark_scores_each_variant(
    data_root: Path, weights: tuple[Path, torch.nn.Module], capsys: pytest.CaptureFixture[str]
) -> None:
    pooling = _import_pooling()
    assert pooling.parse_variant("288@512+tta") == (288, 512, True)
    assert pooling.parse_variant("global@whole") == (None, None, False)
    for bad in ("global", "wide@512", "288@big"):
        with pytest.raises(argparse.ArgumentTypeError, match="WINDOW@TILE"):
            pooling.parse_variant(bad)
    variants = ["global@whole", "global@96", "32@96", "global@96+tta"]
    argv = ["--data", str(data_root), "--weights", str(weights[0]), "--crop", "64"]
    assert pooling.main([*argv, "--pair-crop", "64", "--variants", *variants]) == 0
    rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| ")]
    assert rows[0].startswith("| window @ tile | gopro0374 | shake | varying | noisy |")
    cells = {r.split(" | ")[0][2:]: [float(c) for c in r.split(" | ")[1:5]] for r in rows[1:]}
    assert list(cells) == variants
    assert all(np.isfinite(v).all() for v in cells.values())
    # the 64 px crops fit in one 96 px tile: the whole picture, the same numbers
    assert cells["global@whole"] == cells["global@96"]
    assert cells["global@96+tta"] != cells["global@96"]  # the flips change the result


def test_scene_gap_benchmark_scores_both_scenes(
    data_root: Path, weights: tuple[Path, torch.nn.Module], capsys: pytest.CaptureFixture[str]
) -> None:
    spec = importlib.util.spec_from_file_location("scene_gap", ROOT / "benchmarks" / "scene_gap.py")
    assert spec is not None and spec.loader is not None
    scene_gap = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(scene_gap)
    assert scene_gap.main(["--data", str(data_root), "--weights", str(weights[0])]) == 0
    out = capsys.readouterr().out
    rows = [line for line in out.splitlines() if line.startswith("| GOPR")]
    assert [r.split(" | ")[1] for r in rows] == [
        "GOPR0477_11_00_c",
        "GOPR0374_11_00_a",
        "GOPR0374_11_00_b",
    ]
    for row in rows:  # gain = restored - input, as printed
        before, after, gain = (float(c.strip(" |")) for c in row.split(" | ")[2:5])
        assert gain == pytest.approx(after - before, abs=0.011)
    assert "GOPR0477: mean gain" in out and "GOPR0374: mean gain" in out


def test_a_clean_up_network_is_compared_with_what_auto_runs_today(
    data_root: Path,
    weights: tuple[Path, torch.nn.Module],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from unblur.models import registry

    shipped_dir = tmp_path / "weights"  # nafnet-fast ships, nafnet-polish does not yet
    shipped_dir.mkdir()
    (shipped_dir / "nafnet-fast.safetensors").write_bytes(weights[0].read_bytes())
    monkeypatch.setattr(registry, "WEIGHTS_DIR", shipped_dir)
    out_json = tmp_path / "gate.json"
    argv = ["--model", "nafnet-polish", "--candidate", str(weights[0]), "--data", str(data_root)]
    assert gate.main([*argv, "--json", str(out_json), "--ship", "--quiet"], sizes=TINY) == 1
    captured = capsys.readouterr()
    assert "none yet: compared with" in captured.out and "nafnet-fast.safetensors" in captured.out
    assert "not shipped" in captured.err
    assert not (shipped_dir / "nafnet-polish.safetensors").exists()
    result = json.loads(out_json.read_text())
    assert result["task"] == "polish"
    assert [s["name"] for s in result["sets"]] == ["shake", "linear", "noisy", "exact"]
    # the same weights as the baseline: equal everywhere, so not better
    assert all(s["gain"] == 0.0 and not s["better"] for s in result["sets"])
    # the sets: what the clean-up sees, deconvolutions of the gate's set14 / set5 photos
    sets = gate.build_restore_sets(data_root, TINY, specs=gate.polish_specs(TINY))
    assert [len(sets[n]) for n in ("shake", "linear", "noisy", "exact")] == [2, 2, 3, 2]
    assert all(p.blur.shape == p.sharp.shape for ps in sets.values() for p in ps)
