#!/usr/bin/env bash
# One-shot training run on a lent GPU machine (see configs/nafnet-fast-gpu.yaml).
#
# Before: on the CPU machine, bash scripts/pack_gpu_data.sh  (fills the git-ignored gpu_data/),
# then run this script on the GPU machine from the repository root with gpu_data carried along.
# It trains into $RUN (default runs/gpu; the checkpoint there is too large to travel back) and
# copies the results into $OUT (the folder the device tool returns): final_ema.safetensors,
# best_ema.safetensors, summary.json, log.csv, config.yaml, train.log.
#
# usage: OUT=/some/folder bash scripts/gpu_train.sh [extra unblur train options]
set -euo pipefail
cd "$(dirname "$0")/.."
config=${CONFIG:-configs/nafnet-fast-gpu.yaml}
run=${RUN:-runs/gpu}
out=${OUT:-runs/gpu-out}
py=${PYTHON:-python3}
export PYTHONUNBUFFERED=1

[ -d gpu_data ] || { echo "gpu_train: no gpu_data/ here: run scripts/pack_gpu_data.sh and carry gpu_data" >&2; exit 2; }
if ! "$py" -c "import unblur" 2>/dev/null; then
    if "$py" -c "import torch, numpy, scipy, cv2, skimage, tifffile, safetensors, yaml, tqdm" 2>/dev/null; then
        # dependencies present (the GPU image has them; it cannot reach a registry): run from source
        export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}"
    else
        "$py" -m pip install torch==2.13.0 -e .
    fi
fi
"$py" -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available(), torch.cuda.get_device_name() if torch.cuda.is_available() else '')"

mkdir -p "$out"
rm -rf "$run"
status=0
"$py" -m unblur train "$config" --data-root gpu_data --out "$run" --quiet "$@" 2>&1 | tee "$out/train.log" || status=$?

for f in final_ema.safetensors best_ema.safetensors summary.json log.csv config.yaml; do
    [ -f "$run/$f" ] && cp "$run/$f" "$out/"
done
[ -f "$out/summary.json" ] && cat "$out/summary.json"
[ -f "$out/log.csv" ] && tail -n 5 "$out/log.csv"
exit "$status"
