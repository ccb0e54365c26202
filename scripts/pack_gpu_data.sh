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
mkdir -p "$dst"/{bsds500-train,debian-wallpaper-photos,set14} \
    "$dst"/gopro-hfr-frames/GOPR0477_11_00 "$dst"/gopro-frameavg/{blur,sharp}
cp -r "$src"/bsds500-train/images "$dst"/bsds500-train/
cp -r "$src"/debian-wallpaper-photos/images "$dst"/debian-wallpaper-photos/
cp -r "$src"/set14/images "$dst"/set14/
for i in $(seq 161 184); do  # 24 consecutive 240 fps frames (of 40, for space)
    cp "$src"/gopro-hfr-frames/GOPR0477_11_00/000$i.png "$dst"/gopro-hfr-frames/GOPR0477_11_00/
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
