"""Cost and speed of the restoration networks on the CPU, and what tiling costs.

For every registered restoration model:

* parameters, and GMACs per megapixel counted by
  :class:`torch.utils.flop_counter.FlopCounterMode` on a 256x256 input
  (MACs = FLOPs / 2), against NAFNet-32's published 245 GMAC/MP (16 GMACs at
  256x256, Chen et al. 2022), which is also counted here on our NAFNet with
  width 32, blocks (1, 1, 1, 28) / 1 / (1, 1, 1, 1) as a check of the counter;
* seconds per megapixel on a 1920x1080 float32 frame, threads = all cores, best
  of ``--repeat`` after a warm-up, with the command line's default tiling
  (1024 px tiles, 64 px overlap; each model's own pooling window) and untiled;
* PSNR between the tiled and untiled results of that 2-megapixel frame (the
  example photo resized; with the shipped weights where they exist, otherwise
  random weights with the residual scales given random values, stated in the
  table).

Once, for the default model, in a subprocess so that the number is its own:
peak resident memory (``VmHWM``, or ``ru_maxrss`` off Linux) restoring a 6000x4000 (24-megapixel)
synthetic image with the default tiling.

Usage::

    python benchmarks/restore_speed.py [--json out.json] [--skip-24mp] [--repeat 2]
        [--models nafnet-fast]

Run it on an otherwise idle machine: with more busy threads than cores, PyTorch's
OpenMP threads wait on each other and the times grow tenfold or more (tiled runs,
with more and smaller parallel regions, suffer most).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

from unblur.models import create_model, get_spec, list_models
from unblur.models.restore_net import NAFNet
from unblur.restoration import network

ROOT = Path(__file__).resolve().parent.parent
PUBLISHED_NAFNET32_GMAC_PER_MP = 245.0  # 16 GMACs at 256x256 (NAFNet paper, GoPro width 32)
FRAME = (1080, 1920)
BIG = (4000, 6000)


def nafnet32() -> NAFNet:
    return NAFNet(width=32, enc_blocks=(1, 1, 1, 28), middle_blocks=1, dec_blocks=(1, 1, 1, 1))


def load(name: str) -> tuple[nn.Module, str]:
    """The model with shipped weights if any, else seeded random weights that do something."""
    path = get_spec(name).weights_path
    if path is not None and path.is_file():
        return network.load_restore_model(name), "shipped"
    torch.manual_seed(0)
    model = create_model(name, pretrained=False)
    for pname, p in model.named_parameters():
        if pname.endswith(("beta", "gamma")):
            p.data.normal_(0.0, 0.05)  # zero scales would make every block the identity
    return model.eval(), "random"


def gmac_per_mp(model: nn.Module) -> float:
    from torch.utils.flop_counter import FlopCounterMode

    x = torch.rand(1, 3, 256, 256)
    with torch.inference_mode(), FlopCounterMode(display=False) as counter:
        model(x)
    return counter.get_total_flops() / 2 / 1e9 / (256 * 256 / 1e6)


def frame() -> np.ndarray:
    """The example photo (blurred by camera shake) resized to 1920x1080, float32 RGB."""
    import cv2

    from unblur import io

    photo = io.read_image(ROOT / "examples" / "astronaut_shake.jpg").pixels
    big = cv2.resize(photo, FRAME[::-1], interpolation=cv2.INTER_CUBIC)
    return np.clip(big, 0, 1).astype(np.float32)


def best_time(fn, repeat: int) -> tuple[float, np.ndarray]:
    out = fn()  # warm-up
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - start)
    return min(times), out


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b) ** 2))
    return float("inf") if mse == 0 else 10 * np.log10(1.0 / mse)


def measure_rss(name: str) -> dict[str, float]:
    """Run the 24 MP restoration in a child process and return its numbers."""
    proc = subprocess.run(
        [sys.executable, __file__, "--_rss-child", name],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(proc.stdout.strip().splitlines()[-1])


def peak_rss_mib() -> float:
    """This process's peak resident memory in MiB.

    Linux's ``VmHWM`` where there is one: ``ru_maxrss`` survives ``exec``, so in a
    child of a large parent it reports the parent's size at the fork.
    """
    status = Path("/proc/self/status")
    if status.exists():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    scale = 1024 * 1024 if sys.platform == "darwin" else 1024  # bytes on macOS, KiB elsewhere
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / scale


def rss_child(name: str) -> None:
    torch.set_num_threads(os.cpu_count() or 1)
    model, _ = load(name)
    deblurrer = network.Deblurrer(model, device="cpu", local_pool=network.default_local_pool(name))
    deblurrer.restore(np.zeros((64, 64, 3), np.float32))  # load what a first call loads
    before = peak_rss_mib()
    rng = np.random.default_rng(0)
    image = rng.random((*BIG, 3), dtype=np.float32)
    start = time.perf_counter()
    out = deblurrer.restore(image)
    seconds = time.perf_counter() - start
    assert out.shape == image.shape
    arrays = (image.nbytes + out.nbytes) / 2**20
    print(
        json.dumps(
            {
                "peak_rss_mib": peak_rss_mib(),
                "rss_before_mib": before,
                "arrays_mib": arrays,
                "s": seconds,
                "s_per_mp": seconds / (BIG[0] * BIG[1] / 1e6),
            }
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    parser.add_argument("--repeat", type=int, default=2, help="timed runs after the warm-up")
    parser.add_argument("--skip-24mp", action="store_true", help="skip the 24 MP memory run")
    parser.add_argument(
        "--models", nargs="+", default=None, help="only these restoration models (default: all)"
    )
    parser.add_argument("--_rss-child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args._rss_child:
        rss_child(args._rss_child)
        return

    threads = os.cpu_count() or 1
    torch.set_num_threads(threads)
    image = frame()
    mp = image.shape[0] * image.shape[1] / 1e6
    rows = []
    ref = gmac_per_mp(nafnet32())
    rows.append(
        {
            "model": "NAFNet-32 (reference)",
            "params_m": sum(p.numel() for p in nafnet32().parameters()) / 1e6,
            "gmac_per_mp": ref,
        }
    )
    for name in args.models or list_models(task="restore"):
        model, weights = load(name)
        row: dict[str, object] = {
            "model": name,
            "weights": weights,
            "params_m": sum(p.numel() for p in model.parameters()) / 1e6,
            "gmac_per_mp": gmac_per_mp(model),
        }
        pool = network.default_local_pool(name)  # as unblur image runs it
        tiled = network.Deblurrer(model, device="cpu", local_pool=pool)
        whole = network.Deblurrer(model, device="cpu", tile=None, local_pool=pool)
        t_tiled, out_tiled = best_time(lambda d=tiled: d.restore(image), args.repeat)
        t_whole, out_whole = best_time(lambda d=whole: d.restore(image), args.repeat)
        row |= {
            "local_pool": network.format_local_pool(pool),
            "s_per_mp_tiled": t_tiled / mp,
            "s_per_mp_untiled": t_whole / mp,
            "psnr_tiled_vs_untiled": psnr(out_tiled, out_whole),
            "max_abs_tiled_vs_untiled": float(np.abs(out_tiled - out_whole).max()),
        }
        rows.append(row)
        print(f"{name}: done", file=sys.stderr)

    big = None if args.skip_24mp else measure_rss(network.DEFAULT_MODEL)
    result = {
        "machine": f"{platform.processor() or platform.machine()}, {threads} threads",
        "torch": torch.__version__,
        "frame": f"{FRAME[1]}x{FRAME[0]}",
        "tile": network.DEFAULT_TILE,
        "tile_overlap": network.DEFAULT_TILE_OVERLAP,
        "models": rows,
        "big_image": None if big is None else {"model": network.DEFAULT_MODEL, **big},
    }
    print(table(result))
    if args.json is not None:
        args.json.write_text(json.dumps(result, indent=2) + "\n")


def table(result: dict) -> str:
    lines = [
        f"CPU: {result['machine']}; torch {result['torch']}; {result['frame']} float32 frame; "
        f"tiles {result['tile']} px, overlap {result['tile_overlap']} px",
        "",
        "| model | weights | params (M) | GMAC/MP | x NAFNet-32 | pooling | s/MP tiled "
        "| s/MP untiled | tiled vs untiled PSNR (dB) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in result["models"]:
        ratio = r["gmac_per_mp"] / PUBLISHED_NAFNET32_GMAC_PER_MP
        cells = [
            r["model"],
            r.get("weights", "-"),
            f"{r['params_m']:.2f}",
            f"{r['gmac_per_mp']:.1f}",
            f"{ratio:.3f}",
            r.get("local_pool", "-"),
            f"{r['s_per_mp_tiled']:.2f}" if "s_per_mp_tiled" in r else "-",
            f"{r['s_per_mp_untiled']:.2f}" if "s_per_mp_untiled" in r else "-",
            f"{r['psnr_tiled_vs_untiled']:.1f}" if "psnr_tiled_vs_untiled" in r else "-",
        ]
        lines.append("| " + " | ".join(cells) + " |")
    big = result["big_image"]
    if big is not None:
        lines += [
            "",
            f"{big['model']}, 6000x4000 (24 MP) with tiling: "
            f"peak RSS {big['peak_rss_mib']:.0f} MiB (input + output arrays "
            f"{big['arrays_mib']:.0f} MiB; {big['rss_before_mib']:.0f} MiB before the image), "
            f"{big['s']:.0f} s ({big['s_per_mp']:.2f} s/MP)",
        ]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
