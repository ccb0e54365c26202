"""Does the estimated motion field help the restoration network? A controlled experiment.

Two copies of the shipped ``nafnet-fast`` are fine-tuned for the same steps on the same
batches (synthetic pairs from the training photos: linear, camera-shake and spatially varying
blur):

* ``plain``: the network as it is;
* ``hint``: the same network with three extra input channels, the field estimated by
  ``motion-single`` on the blurred input (doubled-angle vector ``m / 10`` and the
  confidence); the new input weights start at zero, so both start from the same function.

Both are then scored on sets never trained on: kodak24 spatially varying and camera-shake
blur (``unblur synth``, seed 0) and the real gopro-sample pairs, with the hint estimated on the
whole test image, as ``unblur image`` would. The cost is reported as multiply-accumulates per
megapixel, the motion network's included for ``hint``.

Usage::

    python benchmarks/motion_hint.py --data ../shared/data [--steps 1500] [--pool 3000]
        [--kodak-limit 12] [--json out.json]
"""

from __future__ import annotations

import argparse
import copy
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from unblur import io, metrics
from unblur.models import create_model
from unblur.models.motion_net import vector_to_doubled
from unblur.motion.estimate import estimate_motion
from unblur.train.data import BlurMix, derive_rng, load_rgb8, synthesize_pair
from unblur.train.restoration import psnr_loss

PHOTOS = ("bsds500-train/images", "debian-wallpaper-photos/images")


def hint_tensor(image: np.ndarray) -> torch.Tensor:
    """(1, 3, H, W): the estimated field's doubled-angle vector / 10 and its confidence."""
    est = estimate_motion(image, method="cnn")
    field = torch.from_numpy(est.field.transpose(2, 0, 1).copy())[None]
    conf = torch.from_numpy(est.confidence)[None, None]
    return torch.cat((vector_to_doubled(field) / 10.0, conf), dim=1)


def with_hint(plain: torch.nn.Module) -> torch.nn.Module:
    """A copy of ``plain`` taking 3 motion channels, the new input weights zero."""
    from unblur.models.restore_net import NAFNet

    net = NAFNet(
        width=16,
        enc_blocks=(1, 1, 2, 4),
        middle_blocks=4,
        dec_blocks=(1, 1, 1, 1),
        stem_stride=2,
        motion_channels=3,
    )
    state = plain.state_dict()
    own = net.state_dict()
    for key, value in state.items():
        if key == "intro.weight":  # folded channels: image first (3 * 4), then motion
            own[key].zero_()
            own[key][:, : value.shape[1]] = value
        else:
            own[key] = value
    net.load_state_dict(own)
    return net


def make_pool(data: Path, count: int, size: int, quiet: bool) -> list[tuple]:
    paths = [p for folder in PHOTOS for p in sorted((data / folder).glob("*.*"))]
    photos = [load_rgb8(p) for p in paths]
    photos = [p for p in photos if min(p.shape[:2]) >= size]
    mix = BlurMix(kinds={"shake": 0.3, "linear": 0.2, "field": 0.5}, read_noise=(0.0, 0.01))
    pool = []
    for i in tqdm(range(count), desc="pool", disable=quiet):
        rng = derive_rng(31, i)
        pair = synthesize_pair(photos[int(rng.integers(len(photos)))], size, mix, rng)
        blurred = torch.from_numpy(pair.blur.transpose(2, 0, 1).copy())
        sharp = torch.from_numpy(pair.sharp.transpose(2, 0, 1).copy())
        pool.append((blurred, sharp, hint_tensor(pair.blur)[0]))
    return pool


def finetune(net: torch.nn.Module, pool: list, steps: int, batch: int, hint: bool, quiet: bool):
    net.train()
    opt = torch.optim.AdamW(net.parameters(), lr=2e-4, betas=(0.9, 0.9), weight_decay=0.0)
    for step in tqdm(range(steps), desc="hint" if hint else "plain", disable=quiet):
        for group in opt.param_groups:
            group["lr"] = 1e-6 + 0.5 * (2e-4 - 1e-6) * (1 + np.cos(np.pi * step / steps))
        idx = np.random.default_rng([32, step]).integers(0, len(pool), batch)
        x = torch.stack([pool[i][0] for i in idx])
        y = torch.stack([pool[i][1] for i in idx])
        m = torch.stack([pool[i][2] for i in idx]) if hint else None
        loss = psnr_loss(net(x, m) if hint else net(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), 0.5)
        opt.step()
    return net.eval()


def synth_pairs(kodak: Path, kind: str, workdir: Path, limit: int) -> list[tuple]:
    src = workdir / f"{kind}-src"
    src.mkdir(parents=True, exist_ok=True)
    for p in sorted(kodak.glob("*.png"))[:limit]:
        (src / p.name).write_bytes(p.read_bytes())
    out = workdir / kind
    cmd = [sys.executable, "-m", "unblur", "synth", str(src), "-o", str(out)]
    subprocess.run([*cmd, "--kind", kind, "--seed", "0", "--quiet"], check=True)
    return [
        (io.read_image(b).pixels, io.read_image(out / "sharp" / b.name).pixels)
        for b in sorted((out / "blur").iterdir())
    ]


@torch.inference_mode()
def score(nets: dict[str, torch.nn.Module], pairs: list[tuple], label: str, quiet: bool):
    psnrs: dict[str, list[float]] = {"blurred input": [], **{n: [] for n in nets}}
    for blurred, sharp in tqdm(pairs, desc=label, disable=quiet):
        psnrs["blurred input"].append(metrics.psnr(sharp, blurred))
        x = torch.from_numpy(blurred.transpose(2, 0, 1).copy())[None]
        m = hint_tensor(blurred)
        for name, net in nets.items():
            out = net(x, m) if getattr(net, "motion_channels", 0) else net(x)
            restored = out[0].clamp(0, 1).numpy().transpose(1, 2, 0)
            psnrs[name].append(metrics.psnr(sharp, restored))
    base = float(np.mean(psnrs["blurred input"]))
    return {
        n: {"psnr": float(np.mean(v)), "gain": float(np.mean(v)) - base} for n, v in psnrs.items()
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data"
    )
    parser.add_argument("--steps", type=int, default=1500)
    parser.add_argument("--pool", type=int, default=3000)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--kodak-limit", type=int, default=12)
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--quiet", action="store_true")
    args = parser.parse_args()
    torch.manual_seed(0)

    start = time.perf_counter()
    pool = make_pool(args.data, args.pool, args.size, args.quiet)
    shipped = create_model("nafnet-fast")
    plain = finetune(
        copy.deepcopy(shipped).train(), pool, args.steps, args.batch, False, args.quiet
    )
    hinted = finetune(with_hint(shipped).train(), pool, args.steps, args.batch, True, args.quiet)
    nets = {"shipped": shipped.eval(), "plain fine-tuned": plain, "hint fine-tuned": hinted}
    for net in nets.values():
        net.set_local_pool(192)

    report: dict[str, object] = {"steps": args.steps, "pool": args.pool, "batch": args.batch}
    with tempfile.TemporaryDirectory() as tmp:
        kodak = args.data / "kodak24" / "images"
        sets = {
            "kodak24 spatially varying": synth_pairs(kodak, "field", Path(tmp), args.kodak_limit),
            "kodak24 camera shake": synth_pairs(kodak, "shake", Path(tmp), args.kodak_limit),
            "gopro-sample (real)": [
                (
                    io.read_image(b).pixels,
                    io.read_image(args.data / "gopro-sample/sharp" / b.name).pixels,
                )
                for b in sorted((args.data / "gopro-sample" / "blur").iterdir())
            ],
        }
        for label, pairs in sets.items():
            report[label] = score(nets, pairs, label, args.quiet)
    report["seconds"] = time.perf_counter() - start

    print("| set | network | PSNR (dB) | gain (dB) |\n|---|---|---|---|")
    for label, table in report.items():
        if isinstance(table, dict):
            for name, r in table.items():
                print(f"| {label} | {name} | {r['psnr']:.2f} | {r['gain']:+.2f} |")
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
