#!/usr/bin/env bash
# GPU timing in one go, for a lent GPU machine with PyTorch but no Rust: build here with
#   cargo build --release --bin sepnet --features wgpu
# then, on the GPU machine (from the repository root, target/release/sepnet carried along):
#   OUT=/some/folder scripts/gpu-timing.sh
# It writes into $OUT: the device, sepnet's kernels and burn's (SEPNET_KERNELS=burn) against
# PyTorch/cuDNN at batch 128 and batch 1 (reference/ab_bench.py), the per-layer profile of
# vgg-full and vgg-separable, and the first-step time of a second process (the kernel cache warm).
set -euo pipefail
out="${OUT:?set OUT to the folder the results go to}"
sepnet="${SEPNET:-target/release/sepnet}"
export SEPNET_GPU_CACHE="$out/gpu-cache"
nvidia-smi > "$out/device.txt" 2>&1 || true
python3 -c 'import torch; print(torch.__version__, torch.version.cuda, torch.backends.cudnn.version())' \
  >> "$out/device.txt" 2>&1 || true
ab() { python3 reference/ab_bench.py --sepnet "$sepnet" --peers torch --device cuda --backend wgpu "$@"; }
for kernels in sepnet burn; do
  env_kernels=(); [ "$kernels" = burn ] && env_kernels=(env SEPNET_KERNELS=burn)
  "${env_kernels[@]}" python3 reference/ab_bench.py --sepnet "$sepnet" --peers torch --device cuda \
    --backend wgpu --rounds 2 --steps 20 --out "$out/ab-128-$kernels.json" > "$out/ab-128-$kernels.txt" 2>&1
done
ab --rounds 1 --batch-size 1 --steps 200 --out "$out/ab-1.json" > "$out/ab-1.txt" 2>&1
"$sepnet" bench --backend wgpu --models vgg-full,vgg-separable --batch-size 128 --layers \
  > "$out/layers.txt" 2>&1
# A second process on the same machine: the first step with the kernel cache warm.
"$sepnet" bench --backend wgpu --models vgg-full,vgg-separable,mobilenet --batch-size 128 --steps 5 \
  --json > "$out/second-process.json" 2> "$out/second-process.txt"
echo "done: $out"
