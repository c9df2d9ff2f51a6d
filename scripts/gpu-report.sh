#!/usr/bin/env bash
# One short run on a machine with a real GPU: list adapters, run the portability suite on the
# chosen backend, and benchmark ResNet-18/50/20. Usage:
#   scripts/gpu-report.sh [BINARY] [BACKEND] [OUTDIR]
# BINARY defaults to target/release/resnet-wgpu (build it with `cargo build --release`).
set -uo pipefail
bin=${1:-target/release/resnet-wgpu}
backend=${2:-vulkan}
out=${3:-gpu-report}
mkdir -p "$out"
"$bin" adapters --backend "$backend" | tee "$out/adapters.txt"
"$bin" portability --backend "$backend" --fixtures tests/fixtures --json "$out/portability.json" --markdown "$out/portability.md"
echo "portability exit status: $?"
# A fresh tuning cache in the report folder: the first tuned run of each shape measures, the
# later ones read it. Each model: the fixed table (off), then tuned quick, then tuned full.
export RESNET_WGPU_CACHE_DIR="$out/tune-cache"
for run in "resnet18 1" "resnet18 8" "resnet50 1" "resnet50 8" "resnet20 1" "resnet20 256"; do
  set -- $run
  for tune in off quick full; do
    "$bin" bench --backend "$backend" --arch "$1" --batch "$2" --iters 20 --tune "$tune" --json | tee -a "$out/bench.jsonl"
  done
done
for tune in off full; do
  "$bin" bench --backend "$backend" --arch resnet50 --iters 5 --tune "$tune" --profile > "$out/profile-resnet50-$tune.txt" 2>&1 || true
done
