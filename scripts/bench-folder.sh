#!/usr/bin/env bash
# Folder classification against `bench` (issue 17, item 3): the Fashion-MNIST test set written
# out as 10,000 PNGs goes through `classify FOLDER --output` with the default model, and its
# images/s is compared with `bench`'s at the same batch size, in this one script. Medians of
# RUNS runs each. Not a test: on lavapipe it takes a few minutes.
#
#   scripts/bench-folder.sh            # BATCH=64 RUNS=3 DIR=/tmp/fashion-mnist-pngs
#   BATCH=16 RUNS=5 scripts/bench-folder.sh --adapter "Mesa"
set -euo pipefail
cd "$(dirname "$0")/.."
batch=${BATCH:-64}
runs=${RUNS:-3}
dir=${DIR:-/tmp/fashion-mnist-pngs}
data=${DATASET_DIR:-/usr/share/datasets/fashion-mnist}
cargo build --release --quiet --bin resnet-wgpu --example fashion_mnist_pngs
bin=target/release/resnet-wgpu
if [ ! -d "$dir" ]; then
    target/release/examples/fashion_mnist_pngs "$dir" "$data"
fi
count=$(find "$dir" -name '*.png' | wc -l)
median() { sort -g | awk '{v[NR]=$1} END {print (NR % 2) ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2}'; }

bench_rates=() classify_rates=() wall_rates=()
for run in $(seq "$runs"); do
    # Tuning results are cached per adapter, so both commands run the same kernels.
    rate=$("$bin" bench --batch "$batch" --iters 20 --json "$@" |
        python3 -c 'import json,sys; print(json.load(sys.stdin)["images_per_s"])')
    bench_rates+=("$rate")
    start=$(date +%s.%N)
    line=$("$bin" classify "$dir" --batch "$batch" --output /tmp/bench-folder-results.jsonl "$@" 2>&1 >/dev/null | grep '^classified')
    end=$(date +%s.%N)
    classify_rates+=("$(sed -E 's/.*\(([0-9.]+) images\/s.*/\1/' <<<"$line")")
    wall_rates+=("$(python3 -c "print($count / ($end - $start))")")
    echo "run $run: bench ${rate} images/s; $line" >&2
done
b=$(printf '%s\n' "${bench_rates[@]}" | median)
c=$(printf '%s\n' "${classify_rates[@]}" | median)
w=$(printf '%s\n' "${wall_rates[@]}" | median)
echo "images:                          $count PNGs in $dir, batch $batch, median of $runs runs"
echo "bench (forward only):            $b images/s"
echo "classify (first decode to end):  $c images/s  = $(python3 -c "print(f'{$c / $b:.2f}')") x bench"
echo "classify (whole command):        $w images/s  = $(python3 -c "print(f'{$w / $b:.2f}')") x bench"
