"""Seconds per training step of a restoration config, with and without the speed options.

Each variant trains the config's model from the same start for ``--steps`` steps (after
``--warmup`` untimed steps) on the same small pool, in one process, and reports the median
seconds per step: threads, ``train.channels_last`` and ``train.compile`` (compiling time is
reported apart). Run it on an otherwise idle machine: the background trainings share the
cores and would dominate the figures.

Usage::

    python benchmarks/train_speed.py configs/nafnet-fast-gopro.yaml [--steps 30] [--warmup 5]
        [--threads 1 2] [--compile] [--bf16] [--data ../shared/data]
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import tempfile
import time
from pathlib import Path

import torch

from unblur.train import config as train_config
from unblur.train import restoration
from unblur.train.loop import Dist, Trainer, check_run_folder


def time_variant(
    config: restoration.Config,
    threads: int,
    channels_last: bool,
    compile_: bool,
    bf16: bool,
    args,
) -> tuple[float, float]:
    torch.set_num_threads(threads)
    loop = dataclasses.replace(
        config.train,
        threads=threads,
        channels_last=channels_last,
        compile=compile_,
        bf16=bf16,
        val_every=0,
        ckpt_every=0,
        log_every=10**6,
        steps=10**6,
    )
    data = dataclasses.replace(config.data, pool_size=64, refresh_every=0, workers=1)
    data = dataclasses.replace(data, val=dataclasses.replace(data.val, sets=()))
    run_config = dataclasses.replace(config, train=loop, data=data)
    device = torch.device("cpu")
    with tempfile.TemporaryDirectory() as tmp:
        run_config = dataclasses.replace(run_config, out=str(Path(tmp) / "run"))
        check_run_folder(Path(run_config.out), resume=False)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            task = restoration.RestorationTask(
                run_config, device=device, dist_info=Dist(), quiet=True
            )
        trainer = Trainer(
            task,
            optim=run_config.optim,
            loop=loop,
            config=run_config,
            out=Path(run_config.out),
            dist_info=Dist(),
            device=device,
            config_path=None,
            resume=False,
            quiet=True,
            start=time.perf_counter(),
        )
        tick = time.perf_counter()
        trainer._train_step()  # the first step compiles, if asked
        first = time.perf_counter() - tick
        for _ in range(args.warmup):
            trainer._train_step()
        times = []
        for _ in range(args.steps):
            tick = time.perf_counter()
            trainer._train_step()
            times.append(time.perf_counter() - tick)
        task.close()
    return statistics.median(times), first


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("config", type=Path)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--compile", action="store_true", help="also time torch.compile")
    parser.add_argument(
        "--bf16", action="store_true", help="also time bfloat16 autocast (AMX / AVX512-BF16)"
    )
    parser.add_argument("--data", type=Path, default=None, help="override data.data_root")
    args = parser.parse_args()

    config = restoration.load_config(args.config)
    config = train_config.with_overrides(config, data_root=args.data)
    d = config.data
    print(
        f"{args.config}: batch {d.batch} x {d.patch} px, {args.steps} timed steps after "
        f"{args.warmup}; torch {torch.__version__}\n"
    )
    print("| threads | channels_last | compile | bf16 | s/step | first step (s) |")
    print("|---|---|---|---|---|---|")
    variants = [(t, cl, False, False) for t in args.threads for cl in (False, True)]
    if args.bf16:
        variants += [(t, True, False, True) for t in args.threads]
    if args.compile:
        variants += [(t, True, True, False) for t in args.threads]
    if args.compile and args.bf16:
        variants += [(t, True, True, True) for t in args.threads]
    for threads, cl, comp, bf16 in variants:
        per_step, first = time_variant(config, threads, cl, comp, bf16, args)
        print(f"| {threads} | {cl} | {comp} | {bf16} | {per_step:.3f} | {first:.1f} |", flush=True)


if __name__ == "__main__":
    main()
