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
for run in "resnet18 1" "resnet18 8" "resnet50 1" "resnet50 8" "resnet20 1" "resnet20 256"; do
  set -- $run
  "$bin" bench --backend "$backend" --arch "$1" --batch "$2" --iters 20 --json | tee -a "$out/bench.jsonl"
done
"$bin" bench --backend "$backend" --arch resnet50 --iters 5 --profile > "$out/profile-resnet50.txt" 2>&1 || true
