#!/usr/bin/env bash
# Copy the data that configs/nafnet-fast-gpu.yaml reads from ../shared/data into the git-ignored
# gpu_data/ (same folder layout), staying under 60 MiB so that it can travel to a lent GPU
# machine with the working tree (carry: gpu_data). Evaluation sets (kodak24, levin09,
# gopro-sample, sun80) are never copied.
#
# usage: bash scripts/pack_gpu_data.sh [SHARED_DATA_DIR]    (default ../shared/data)
set -euo pipefail
cd "$(dirname "$0")/.."
src=${1:-../shared/data}
dst=gpu_data
limit_mib=60
[ -d "$src" ] || { echo "pack_gpu_data: no data folder $src" >&2; exit 2; }

rm -rf "$dst"
mkdir -p "$dst"/{bsds500-train,debian-wallpaper-photos/images,set14} \
    "$dst"/gopro-hfr-video/GOPR0477_11_00 "$dst"/gopro-frameavg/{blur,sharp}
cp -r "$src"/bsds500-train/images "$dst"/bsds500-train/
cp -r "$src"/set14/images "$dst"/set14/
# the Debian photos at half size (JPEG q95): 13 MiB -> about 3 MiB; the config's shrink range
# is halved to match (scale [0.7, 1] of these = [0.35, 1] of the originals)
py=${PYTHON:-python3}
[ -x .venv/bin/python ] && py=${PYTHON:-.venv/bin/python}
"$py" - "$src"/debian-wallpaper-photos/images "$dst"/debian-wallpaper-photos/images <<'PY'
import sys
from pathlib import Path

from PIL import Image

src, dst = Path(sys.argv[1]), Path(sys.argv[2])
for path in sorted(src.glob("*.jpg")):
    with Image.open(path) as im:
        im = im.convert("RGB")
        im.resize((im.width // 2, im.height // 2), Image.Resampling.LANCZOS).save(
            dst / path.name, quality=95, subsampling=0
        )
PY
# 90 consecutive 240 fps frames of GOPR0477 (of 299, for space: about 23 MiB) for GoPro-style
# frame averaging over many windows
for i in $(seq 100 189); do
    cp "$src"/gopro-hfr-video/GOPR0477_11_00/000$i.jpg "$dst"/gopro-hfr-video/GOPR0477_11_00/
done
for kind in blur sharp; do  # the held-out validation scene only
    cp "$src"/gopro-frameavg/$kind/GOPR0374_* "$dst"/gopro-frameavg/$kind/
done

bytes=$(du -sb "$dst" | cut -f1)
mib=$(( (bytes + 1048575) / 1048576 ))
echo "pack_gpu_data: $dst holds $(find "$dst" -type f | wc -l) files, $mib MiB"
if [ "$mib" -ge "$limit_mib" ]; then
    echo "pack_gpu_data: $mib MiB is over the $limit_mib MiB limit" >&2
    exit 1
fi
