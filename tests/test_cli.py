"""The ``unblur`` command end to end: real files, every bad input; through
:func:`unblur.cli.main` in this process, and in real ``python -m unblur`` processes where the
process itself is what is tested (the entry point, a batch, a traceback never shown)."""

from __future__ import annotations

import errno
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from scenes import textured_scene

from unblur import blur, io, metrics
from unblur.cli import export as export_cli
from unblur.cli import image as image_cli
from unblur.cli import main
from unblur.models import create_model, get_spec, load_weights
from unblur.restoration import network
from unblur.restoration.network import DEFAULT_MODEL

DATA = Path(__file__).parent / "data"


def run_cli(
    *args: str | Path, cwd: Path | None = None, real: bool = False
) -> subprocess.CompletedProcess[str]:
    """Run ``unblur ARGS``: in this process through :func:`unblur.cli.main` (the same code
    path minus the interpreter's start and torch's import, about 2 s a call), or with
    ``real`` in a new ``python -m unblur`` process (the entry point itself)."""
    if real:
        env = {**os.environ, "PYTHONWARNINGS": "error"}
        env.pop("UNBLUR_DEBUG", None)
        return subprocess.run(
            [sys.executable, "-m", "unblur", *map(str, args)],
            capture_output=True,
            text=True,
            cwd=cwd,
            env=env,
            timeout=120,
        )
    import contextlib
    import io as text_io

    import cv2
    import torch

    argv = [str(a) for a in args]
    out, err = text_io.StringIO(), text_io.StringIO()
    threads = (torch.get_num_threads(), cv2.getNumThreads())
    debug = os.environ.pop("UNBLUR_DEBUG", None)
    try:
        with (
            contextlib.chdir(cwd or Path.cwd()),
            contextlib.redirect_stdout(out),
            contextlib.redirect_stderr(err),
        ):
            try:
                code = main(argv)
            except SystemExit as exit_:  # argparse: --help, usage errors
                code = exit_.code if isinstance(exit_.code, int) else 1
    finally:  # --threads sets them for the whole process
        torch.set_num_threads(threads[0])
        cv2.setNumThreads(threads[1])
        if debug is not None:
            os.environ["UNBLUR_DEBUG"] = debug
    return subprocess.CompletedProcess(["unblur", *argv], code, out.getvalue(), err.getvalue())


def assert_one_line_error(proc: subprocess.CompletedProcess[str], *needles: str) -> None:
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("unblur: error:")]
    assert errors, proc.stderr
    for needle in needles:
        assert any(needle in line for line in errors), (needle, proc.stderr)


@pytest.fixture
def shaken(tmp_path: Path) -> tuple[Path, Path, np.ndarray]:
    """A blurred RGB photo (blurred in linear light, as the CLI assumes) and its kernel."""
    sharp = textured_scene(96, 120, 3, seed=3)
    kernel = blur.shake_kernel(size=13, rng=5, length=10.0).kernel
    blurred = io.linear_to_srgb(blur.blur_image(io.srgb_to_linear(sharp), kernel))
    path = tmp_path / "shot.png"
    io.write_image(path, blurred)
    kpath = tmp_path / "kernel.npy"
    np.save(kpath, kernel)
    return path, kpath, sharp


def test_version_is_fast_and_light() -> None:
    proc = run_cli("--version", real=True)
    assert proc.returncode == 0
    assert proc.stdout.startswith("unblur ")
    code = "import sys, unblur.cli; print('torch' in sys.modules or 'numpy' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_help_lists_methods_and_defaults() -> None:
    proc = run_cli("image", "--help")
    assert proc.returncode == 0
    assert "hyperlaplacian" in proc.stdout and "default" in proc.stdout


def test_image_restores_with_known_kernel(shaken, tmp_path: Path) -> None:
    path, kpath, sharp = shaken
    out = tmp_path / "sharp.png"
    proc = run_cli("image", path, "--kernel", kpath, "-o", out, "--quiet")
    assert proc.returncode == 0, proc.stderr
    restored = io.read_image(out).pixels
    before = metrics.psnr(sharp, io.read_image(path).pixels, crop_border=4)
    after = metrics.psnr(sharp, restored, crop_border=4)
    assert restored.shape == sharp.shape
    assert after > before + 5, (before, after)
    assert [p.name for p in tmp_path.iterdir() if ".tmp" in p.name] == []


@pytest.mark.parametrize("method", ["wiener", "rl"])
def test_other_methods_and_png_kernel(shaken, tmp_path: Path, method: str) -> None:
    path, kpath, sharp = shaken
    kernel = np.load(kpath)
    kpng = tmp_path / "kernel.png"
    Image.fromarray(np.round(kernel / kernel.max() * 255).astype(np.uint8)).save(kpng)
    out = tmp_path / f"{method}.png"
    proc = run_cli("image", path, "--kernel", kpng, "--deconvolution", method, "-o", out, "-q")
    assert proc.returncode == 0, proc.stderr
    assert metrics.psnr(sharp, io.read_image(out).pixels, crop_border=4) > metrics.psnr(
        sharp, io.read_image(path).pixels, crop_border=4
    )


def test_default_output_name_and_16_bit_kept(tmp_path: Path) -> None:
    sharp = textured_scene(48, 64, 3, seed=1)
    path = tmp_path / "deep.png"
    io.write_image(path, sharp, bit_depth=16)
    kpath = tmp_path / "k.npy"
    np.save(kpath, blur.linear_kernel(5, 0))
    proc = run_cli("image", path, "--kernel", kpath, "-q")
    assert proc.returncode == 0, proc.stderr
    out = tmp_path / "deep_unblurred.png"
    assert io.read_image(out).bit_depth == 16


def test_batch_goes_on_after_a_bad_file(shaken, tmp_path: Path) -> None:
    path, kpath, _ = shaken
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "a.png").write_bytes(path.read_bytes())
    (folder / "b.png").write_bytes(b"this is not a picture")
    (folder / "c.png").write_bytes(path.read_bytes())
    out = tmp_path / "out"
    # a real process: its exit status, and no traceback on its standard error
    proc = run_cli("image", folder, "--kernel", kpath, "-o", out, "-q", real=True)
    assert_one_line_error(proc, "b.png")
    assert proc.returncode == 1
    assert sorted(p.name for p in out.iterdir()) == ["a.png", "c.png"]
    summary = proc.stderr.strip().splitlines()[-1]
    assert "2 of 3" in summary and "b.png" in summary


def test_no_kernel_uses_the_network_or_names_its_missing_weights(shaken) -> None:
    path, _, _ = shaken
    shipped = get_spec(DEFAULT_MODEL).weights_path
    if shipped is not None and shipped.is_file():
        pytest.skip(f"{shipped.name} is shipped; test_net_* cover the network")
    proc = run_cli("image", path, "-q")
    assert_one_line_error(proc, f"{DEFAULT_MODEL}.safetensors", "--weights")
    assert not path.with_name("shot_unblurred.png").exists()


def test_classical_method_without_kernel_says_so(shaken) -> None:
    path, _, _ = shaken
    proc = run_cli("image", path, "--method", "kernel")
    assert_one_line_error(proc, "--kernel")


def _missing(tmp_path: Path) -> Path:
    return tmp_path / "missing.png"


def _empty(tmp_path: Path) -> Path:
    p = tmp_path / "empty.png"
    p.write_bytes(b"")
    return p


def _truncated_png(tmp_path: Path) -> Path:
    good = tmp_path / "good.png"
    io.write_image(good, textured_scene(64, 64, 3))
    bad = tmp_path / "truncated.png"
    bad.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    return bad


def _text(tmp_path: Path) -> Path:
    p = tmp_path / "text.png"
    p.write_text("hello, I am not a picture")
    return p


def _gif(tmp_path: Path) -> Path:
    p = tmp_path / "anim.gif"
    Image.new("P", (16, 16)).save(p)
    return p


@pytest.mark.parametrize(
    ("make", "needle"),
    [
        (_missing, "missing.png"),
        (_empty, "empty"),
        (_truncated_png, "truncated"),
        (_text, "not an image"),
        (_gif, "unsupported"),
    ],
    ids=["missing", "empty", "truncated", "not-an-image", "unsupported"],
)
def test_bad_inputs(tmp_path: Path, shaken, make, needle: str) -> None:
    _, kpath, _ = shaken
    bad = make(tmp_path)
    proc = run_cli("image", bad, "--kernel", kpath, "-o", tmp_path / "out.png", "-q")
    assert_one_line_error(proc, needle)
    assert not (tmp_path / "out.png").exists()


def test_pixel_limit_and_override(shaken, tmp_path: Path) -> None:
    path, kpath, _ = shaken
    proc = run_cli(
        "image", path, "--kernel", kpath, "-o", tmp_path / "o.png", "--max-pixels", "1000"
    )
    assert_one_line_error(proc, "--max-pixels")
    proc = run_cli("image", path, "--kernel", kpath, "-o", tmp_path / "o.png", "-q")
    assert proc.returncode == 0


@pytest.mark.parametrize(
    ("kernel", "needle"),
    [
        (np.zeros((0, 0), np.float32), "empty"),
        (-np.ones((5, 5), np.float32), "negative"),
        (np.zeros((5, 5), np.float32), "all zeros"),
        (np.ones((201, 201), np.float32), "larger than the image"),
    ],
    ids=["empty", "negative", "zeros", "too-large"],
)
def test_bad_kernels(shaken, tmp_path: Path, kernel: np.ndarray, needle: str) -> None:
    path, _, _ = shaken
    kpath = tmp_path / "bad_kernel.npy"
    np.save(kpath, kernel)
    proc = run_cli("image", path, "--kernel", kpath, "-o", tmp_path / "o.png", "-q")
    assert_one_line_error(proc, needle)


def test_pickled_kernel_is_refused(shaken, tmp_path: Path) -> None:
    path, _, _ = shaken
    kpath = tmp_path / "evil.npy"
    np.save(kpath, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    proc = run_cli("image", path, "--kernel", kpath, "-q")
    assert_one_line_error(proc, "unpickle")


def test_output_equal_to_input_needs_overwrite(shaken) -> None:
    path, kpath, _ = shaken
    before = path.read_bytes()
    proc = run_cli("image", path, "--kernel", kpath, "-o", path, "-q")
    assert_one_line_error(proc, "--overwrite")
    assert path.read_bytes() == before
    proc = run_cli("image", path, "--kernel", kpath, "-o", path, "-q", "--overwrite")
    assert proc.returncode == 0
    assert path.read_bytes() != before


def test_existing_output_is_kept_without_overwrite(shaken, tmp_path: Path) -> None:
    path, kpath, _ = shaken
    out = tmp_path / "precious.png"
    out.write_bytes(b"keep me")
    proc = run_cli("image", path, "--kernel", kpath, "-o", out, "-q")
    assert_one_line_error(proc, "precious.png")
    assert out.read_bytes() == b"keep me"


def test_unwritable_output_folder(shaken, tmp_path: Path) -> None:
    path, kpath, _ = shaken
    blocker = tmp_path / "file"
    blocker.write_text("a file, not a folder")
    proc = run_cli("image", path, "--kernel", kpath, "-o", blocker / "out.png", "-q")
    assert_one_line_error(proc, "cannot create folder", str(blocker))


def test_existing_output_is_refused_before_any_work(shaken, tmp_path: Path) -> None:
    path, kpath, _ = shaken
    out = tmp_path / "out.png"
    out.write_bytes(b"keep me")
    proc = run_cli("image", path, "--kernel", kpath, "-o", out)
    assert_one_line_error(proc, "already exists", "--overwrite")
    assert "images" not in proc.stderr  # no batch was started
    assert out.read_bytes() == b"keep me"
    folder = tmp_path / "many"
    folder.mkdir()
    for name in ("a.png", "b.png"):
        shutil.copy(path, folder / name)
    outs = tmp_path / "outs"
    outs.mkdir()
    (outs / "b.png").write_bytes(b"old")
    proc = run_cli("image", folder, "--kernel", kpath, "-o", outs, "-q")
    assert_one_line_error(proc, "b.png", "already exists")
    assert not (outs / "a.png").exists()


def test_output_without_image_extension_is_an_error(shaken, tmp_path: Path) -> None:
    path, kpath, _ = shaken
    proc = run_cli("image", path, "--kernel", kpath, "-o", tmp_path / "out.txt", "-q")
    assert_one_line_error(proc, "'.txt' is not an image extension")
    assert not (tmp_path / "out.txt").exists()


def test_rerun_over_a_folder_skips_its_own_outputs(shaken, tmp_path: Path) -> None:
    path, kpath, _ = shaken
    folder = tmp_path / "shots"
    folder.mkdir()
    shutil.copy(path, folder / "one.png")
    assert run_cli("image", folder, "--kernel", kpath, "-q").returncode == 0
    assert sorted(p.name for p in folder.iterdir()) == ["one.png", "one_unblurred.png"]
    proc = run_cli("image", folder, "--kernel", kpath, "-q", "--overwrite")
    assert proc.returncode == 0, proc.stderr
    assert sorted(p.name for p in folder.iterdir()) == ["one.png", "one_unblurred.png"]


def test_single_run_says_where_it_wrote_and_why(shaken, tmp_path: Path) -> None:
    path, kpath, _ = shaken
    out = tmp_path / "o.png"
    proc = run_cli("image", path, "--kernel", kpath, "-o", out, "--verbose", "--threads", "1")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert lines[-1] == f"wrote {out}"
    assert any("kernel (linear): a kernel was given; hyperlaplacian" in line for line in lines)
    # stderr is a pipe, not a terminal: no progress-bar redraws or cursor control
    assert "\r" not in proc.stderr and "\x1b[" not in proc.stderr


def test_disk_full_leaves_nothing_behind(shaken, tmp_path: Path, monkeypatch, capsys) -> None:
    path, kpath, _ = shaken
    out_dir = tmp_path / "full"
    out_dir.mkdir()

    real_fsync = os.fsync

    def full(fd: int) -> None:
        real_fsync(fd)
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", full)
    code = main(["image", str(path), "--kernel", str(kpath), "-o", str(out_dir / "o.png"), "-q"])
    assert code == 1
    assert "disk full" in capsys.readouterr().err.lower()
    assert list(out_dir.iterdir()) == []


@pytest.mark.parametrize("kind", ["linear", "shake", "field"])
def test_synth_writes_matching_pairs(tmp_path: Path, kind: str) -> None:
    src = tmp_path / "sharp_in"
    src.mkdir()
    for i in range(2):
        io.write_image(src / f"img{i}.png", textured_scene(64, 80, 3, seed=i))
    out = tmp_path / "pairs"
    proc = run_cli("synth", src, "-o", out, "--kind", kind, "--seed", "3", "-q")
    assert proc.returncode == 0, proc.stderr
    truth = "motion" if kind == "field" else "kernel"
    names = sorted(p.stem for p in (out / "blur").iterdir())
    assert names == ["img0", "img1"]
    assert sorted(p.stem for p in (out / "sharp").iterdir()) == names
    assert sorted(p.stem for p in (out / truth).iterdir()) == names
    gt = np.load(out / truth / "img0.npy", allow_pickle=False)
    assert gt.dtype == np.float32
    if kind == "field":
        assert gt.shape == (64, 80, 2)
    else:
        assert gt.sum() == pytest.approx(1.0, abs=1e-5)
        assert gt.min() >= 0
    sharp = io.read_image(out / "sharp" / "img0.png").pixels
    assert metrics.psnr(sharp, io.read_image(out / "blur" / "img0.png").pixels) < 35
    # the same seed gives the same bytes, another seed another blur
    again = tmp_path / "again"
    run_cli("synth", src, "-o", again, "--kind", kind, "--seed", "3", "-q")
    assert (again / "blur" / "img0.png").read_bytes() == (out / "blur" / "img0.png").read_bytes()
    other = tmp_path / "other"
    run_cli("synth", src, "-o", other, "--kind", kind, "--seed", "4", "-q")
    assert (other / "blur" / "img0.png").read_bytes() != (out / "blur" / "img0.png").read_bytes()


def test_synth_count_and_frames(tmp_path: Path) -> None:
    src = tmp_path / "one"
    src.mkdir()
    io.write_image(src / "photo.png", textured_scene(48, 48, 3))
    out = tmp_path / "many"
    proc = run_cli("synth", src, "-o", out, "--count", "3", "-q")
    assert proc.returncode == 0, proc.stderr
    assert len(list((out / "blur").iterdir())) == 3

    frames = tmp_path / "video"
    frames.mkdir()
    for f in sorted((DATA / "gopro_pair").glob("frame_*.png")):
        (frames / f.name).write_bytes(f.read_bytes())
    out = tmp_path / "frames"
    proc = run_cli(
        "synth", frames, "-o", out, "--kind", "frames", "--window", "8", "--noise", "0", "-q"
    )
    assert proc.returncode == 0, proc.stderr
    (blurred,) = list((out / "blur").iterdir())
    expected = io.read_image(DATA / "gopro_pair" / "blur.png").pixels
    assert metrics.psnr(expected, io.read_image(blurred).pixels) > 40


def test_synth_scenes(tmp_path: Path) -> None:
    from unblur.train.scenes import SceneMotion

    src = tmp_path / "photos"
    src.mkdir()
    io.write_image(src / "a.png", textured_scene(120, 150, 3, seed=1))
    io.write_image(src / "b.png", textured_scene(130, 110, 3, seed=2))
    io.write_image(src / "tiny.png", textured_scene(30, 30, 3, seed=3))
    out = tmp_path / "pairs"
    args = ("--kind", "scenes", "--window", "9", "--length", "4", "12", "--noise", "0", "-q")
    proc = run_cli("synth", src, "-o", out, *args)
    # the tiny photo cannot hold the camera's margin: named, and the others are made
    assert proc.returncode == 1 and "tiny.png" in proc.stderr
    assert "Traceback" not in proc.stderr
    margin = SceneMotion(travel=(4, 12)).margin(120, 150)
    for name, (h, w) in {"a": (120, 150), "b": (130, 110)}.items():
        blurred = io.read_image(out / "blur" / f"{name}.png").pixels
        sharp = io.read_image(out / "sharp" / f"{name}.png").pixels
        assert blurred.shape == sharp.shape
        assert abs(blurred.shape[0] - (h - 2 * margin)) <= 2
        assert abs(blurred.shape[1] - (w - 2 * margin)) <= 2
        assert 15 < metrics.psnr(sharp, blurred) < 40
    assert not (out / "blur" / "tiny.png").exists()
    # --jpeg compresses the blurred picture; the sharp one stays as it was
    (src / "tiny.png").unlink()
    squeezed = tmp_path / "jpeg"
    proc = run_cli("synth", src, "-o", squeezed, *args, "--jpeg", "30", "30")
    assert proc.returncode == 0, proc.stderr
    for name in ("a", "b"):
        sharp = io.read_image(squeezed / "sharp" / f"{name}.png").pixels
        plain = io.read_image(out / "sharp" / f"{name}.png").pixels
        np.testing.assert_array_equal(sharp, plain)
        blurred = io.read_image(squeezed / "blur" / f"{name}.png").pixels
        before = io.read_image(out / "blur" / f"{name}.png").pixels
        assert 25 < metrics.psnr(before, blurred) < 45


def test_synth_bad_folder(tmp_path: Path) -> None:
    proc = run_cli("synth", tmp_path / "nope", "-o", tmp_path / "o")
    assert_one_line_error(proc, "nope")


# --------------------------------------------------------------------------- the network


@pytest.fixture(scope="module")
def fast_weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Random weights for nafnet-fast's architecture, with working residual branches."""
    torch = pytest.importorskip("torch")
    from safetensors.torch import save_file

    torch.manual_seed(0)
    net = create_model(DEFAULT_MODEL, pretrained=False)
    for name, p in net.named_parameters():
        if name.endswith(("beta", "gamma")):
            p.data.normal_(0.0, 0.05)
    path = tmp_path_factory.mktemp("weights") / "fast.safetensors"
    save_file({k: v.contiguous() for k, v in net.state_dict().items()}, str(path))
    return path


def test_cli_defaults_mirror_the_library() -> None:
    from unblur import export

    assert image_cli.DEFAULT_MODEL == network.DEFAULT_MODEL == export_cli.DEFAULT_MODEL
    assert image_cli.DEFAULT_TILE == network.DEFAULT_TILE
    assert image_cli.DEFAULT_TILE_OVERLAP == network.DEFAULT_TILE_OVERLAP
    from unblur.restoration import api

    assert image_cli.METHODS == api.METHODS and image_cli.SPACES == api.SPACES
    assert image_cli.DECONVOLUTIONS == api.DECONVOLUTIONS
    assert image_cli.DEFAULT_MODEL == api.DEFAULT_MODEL
    assert (export_cli.MIN_OPSET, export_cli.TOLERANCE) == (export.MIN_OPSET, export.TOLERANCE)
    assert export_cli.INSTALL_HINT == export.INSTALL_HINT


def test_net_restores_keeping_16_bit_and_alpha(tmp_path: Path, fast_weights: Path) -> None:
    pixels = textured_scene(70, 100, 3, seed=4)
    alpha = np.linspace(0, 1, 70 * 100, dtype=np.float32).reshape(70, 100)
    path = tmp_path / "deep.png"
    io.write_image(path, io.Image(pixels, alpha=alpha, bit_depth=16))
    out = tmp_path / "out.png"
    args = ("--method", "network", "--weights", fast_weights, "--tile", "64", "--tile-overlap")
    args = (*args, "16", "--half")
    proc = run_cli("image", path, "-o", out, *args)
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    restored = io.read_image(out)
    assert (restored.height, restored.width, restored.bit_depth) == (70, 100, 16)
    np.testing.assert_allclose(restored.alpha, alpha, atol=1 / 65535)
    assert not np.array_equal(restored.pixels, io.read_image(path).pixels)


def test_net_tta_averages_flips(tmp_path: Path, fast_weights: Path) -> None:
    path = tmp_path / "shot.png"
    io.write_image(path, io.Image(textured_scene(70, 100, 3, seed=5)))
    common = ("--method", "network", "--weights", fast_weights, "--quiet")
    outs = {}
    runs = (("plain", ("--no-tta",)), ("tta", ("--tta",)), ("default", ("--verbose",)))
    for name, extra in runs:
        outs[name] = tmp_path / f"{name}.png"
        proc = run_cli("image", path, "-o", outs[name], *common, *extra)
        assert proc.returncode == 0, proc.stderr
    plain, tta, default = (io.read_image(outs[n]).pixels for n in ("plain", "tta", "default"))
    assert plain.shape == tta.shape == (70, 100, 3)
    assert np.abs(plain - tta).mean() > 1e-3
    # by default a picture this small (under 1.05 megapixels) gets all eight turns and flips
    np.testing.assert_array_equal(default, tta)
    assert "averaged over 8 turns and flips" in proc.stderr
    # what the library's eight-pass average gives, up to the 8-bit file
    deblurrer = network.Deblurrer(DEFAULT_MODEL, weights=fast_weights, device="cpu", tta=True)
    expected = deblurrer.restore(io.read_image(path).pixels)
    np.testing.assert_allclose(tta, expected, atol=1 / 255 + 1e-6)


def test_net_refuses_a_kernel(shaken, fast_weights: Path) -> None:
    path, kpath, _ = shaken
    proc = run_cli(
        "image", path, "--method", "network", "--kernel", kpath, "--weights", fast_weights
    )
    assert_one_line_error(proc, "--kernel", "--method network")


def test_net_bad_weights_and_options(shaken, tmp_path: Path, fast_weights: Path) -> None:
    path, _, _ = shaken
    out = tmp_path / "o.png"
    bad = tmp_path / "bad.safetensors"
    bad.write_text("definitely not weights")
    proc = run_cli("image", path, "--method", "network", "--weights", bad, "-o", out)
    assert_one_line_error(proc, "bad.safetensors")
    proc = run_cli("image", path, "--tile", "64", "--tile-overlap", "64", "-o", out)
    assert_one_line_error(proc, "--tile-overlap")
    tiles = ("--tile", "40", "--tile-overlap", "16")
    proc = run_cli(
        "image", path, "--method", "network", "--weights", fast_weights, *tiles, "-o", out
    )
    assert_one_line_error(proc, "32-pixel step")
    assert "failed" not in proc.stderr  # refused before the batch, not once per file
    assert not out.exists()


@pytest.mark.slow
def test_torchrun_shards_a_batch(tmp_path: Path, fast_weights: Path) -> None:
    """Two processes on the CPU: each file is restored exactly once, by one of them."""
    folder = tmp_path / "in"
    folder.mkdir()
    for i in range(4):
        io.write_image(folder / f"f{i}.png", textured_scene(24, 40, 3, seed=i))
    out = tmp_path / "out"
    env = {**os.environ, "PYTHONWARNINGS": "error", "OMP_NUM_THREADS": "1"}
    env.pop("UNBLUR_DEBUG", None)
    proc = subprocess.run(
        [
            *(sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node"),
            *("2", "-m", "unblur", "image", str(folder), "-o", str(out), "-q"),
            *("--method", "network", "--weights", str(fast_weights), "--device", "auto"),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=180,
    )
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr and "error" not in proc.stderr.lower()
    assert sorted(p.name for p in out.iterdir()) == [f"f{i}.png" for i in range(4)]
    # a second writer of any file would have failed on the existing output (no --overwrite)
    for rank in (0, 1):
        assert f"2 of 2 images (rank {rank} of 2) done" in proc.stderr, proc.stderr


# --------------------------------------------------------------------------- export


def test_export_options_are_checked(tmp_path: Path, fast_weights: Path) -> None:
    assert_one_line_error(run_cli("export"), "nothing to export")
    assert_one_line_error(run_cli("export", "--ema", "--safetensors", tmp_path / "w"), "--ema")
    proc = run_cli(
        "export", "--weights", fast_weights, "--onnx", tmp_path / "m.onnx", "--opset", "17"
    )
    assert_one_line_error(proc, "--opset 17")
    shipped = get_spec(DEFAULT_MODEL).weights_path
    if shipped is None or not shipped.is_file():
        proc = run_cli("export", "--safetensors", tmp_path / "w.safetensors")
        assert_one_line_error(proc, f"{DEFAULT_MODEL}.safetensors")
    assert list(tmp_path.iterdir()) == []


def test_export_ema_weights_from_a_checkpoint(tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    from safetensors.torch import load_file, save_file

    torch.manual_seed(1)
    raw = create_model(DEFAULT_MODEL, pretrained=False)
    ema = create_model(DEFAULT_MODEL, pretrained=False)
    for p in ema.parameters():
        p.data.normal_(0.0, 0.1)
    tensors = {f"params.{k}": v.contiguous() for k, v in raw.state_dict().items()}
    tensors |= {f"params_ema.{k}": v.contiguous() for k, v in ema.state_dict().items()}
    tensors["optim.0.exp_avg"] = torch.zeros(3)
    ckpt = tmp_path / "last.safetensors"
    save_file(tensors, str(ckpt), metadata={"unblur_state": '{"step": 5, "local_pool": "224"}'})
    out = tmp_path / "ema-fp16.safetensors"
    proc = run_cli(
        "export", "--from-checkpoint", ckpt, "--ema", "--safetensors", out, "--dtype", "fp16"
    )
    assert proc.returncode == 0, proc.stderr
    saved = load_file(str(out))
    assert {t.dtype for t in saved.values()} == {torch.float16}
    model = create_model(DEFAULT_MODEL, pretrained=False)
    load_weights(model, out)
    torch.testing.assert_close(model.intro.weight, ema.intro.weight, atol=1e-3, rtol=1e-3)
    assert network.weights_local_pool(out) == "224"  # the checkpoint's validation window
    # without --ema the raw weights; an existing output needs --overwrite
    proc = run_cli("export", "--from-checkpoint", ckpt, "--safetensors", out)
    assert_one_line_error(proc, "--overwrite")
    proc = run_cli("export", "--from-checkpoint", ckpt, "--safetensors", out, "--overwrite")
    assert proc.returncode == 0, proc.stderr
    load_weights(model, out)
    assert torch.equal(model.intro.weight, raw.intro.weight)


@pytest.mark.slow
def test_export_onnx_matches_torch(tmp_path: Path, fast_weights: Path) -> None:
    for name in ("onnx", "onnxscript"):
        pytest.importorskip(name, reason=f"ONNX export needs {name}: pip install 'unblur[export]'")
    ort = pytest.importorskip("onnxruntime", reason="pip install 'unblur[export]'")
    torch = pytest.importorskip("torch")

    out = tmp_path / "fast.onnx"
    proc = run_cli("export", "--weights", fast_weights, "--onnx", out)
    assert proc.returncode == 0, proc.stderr
    assert "max abs diff" in proc.stdout
    assert "Traceback" not in proc.stderr
    model = create_model(DEFAULT_MODEL, pretrained=False)
    load_weights(model, fast_weights)
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    for shape in [(1, 3, 45, 77), (3, 3, 64, 32)]:  # dynamic batch, height and width
        x = torch.rand(*shape, generator=torch.Generator().manual_seed(2))
        (got,) = session.run(None, {"image": x.numpy()})
        with torch.inference_mode():
            expected = model(x).numpy()
        assert got.shape == shape
        assert np.abs(got - expected).max() < 1e-3


def test_blind_method_needs_no_kernel(tmp_path: Path) -> None:
    grey = textured_scene(128, 128, seed=9)
    sharp = np.stack([grey, 0.9 * grey, 0.8 * grey], axis=2)  # a tinted scene, like a photo
    kernel = blur.shake_kernel(size=13, rng=4, length=10.0).kernel
    blurred = io.linear_to_srgb(blur.blur_image(io.srgb_to_linear(sharp), kernel))
    path = tmp_path / "shaken.png"
    io.write_image(path, blurred)
    out = tmp_path / "blind.png"
    proc = run_cli("image", path, "--method", "blind", "--kernel-size", "15", "-o", out, "-q")
    assert proc.returncode == 0, proc.stderr
    restored = io.read_image(out).pixels
    gain = metrics.shift_compensated_psnr(sharp, restored) - metrics.shift_compensated_psnr(
        sharp, blurred
    )
    assert gain > 4.0, gain


def test_blind_method_options_are_checked(shaken, tmp_path: Path) -> None:
    path, kpath, _ = shaken
    proc = run_cli("image", path, "--method", "blind", "--kernel", kpath, "-q")
    assert_one_line_error(proc, "--kernel")
    proc = run_cli("image", path, "--method", "blind", "--kernel-size", "14", "-q")
    assert_one_line_error(proc, "--kernel-size")
    proc = run_cli("image", path, "--method", "blind", "--kernel-size", "61", "-q")
    assert_one_line_error(proc, "too small")
