"""The export table: one briefly trained run of each built-in model family, exported to ONNX and
safetensors and checked by runtimes sepnet did not write — the ONNX checker and ONNX Runtime on
256 real test images (logits within 1e-4 of their scale, the same top-1 class), and the PyTorch
twin loaded with the safetensors weights on the whole test split (the same accuracy within 0.05
points).

    pip install torch numpy onnx onnxruntime safetensors
    python3 reference/export_family.py --sepnet target/release/sepnet --out /tmp/export-family
    # datasets: --mnist DIR / --cifar DIR (default: sepnet's own search, downloading if needed)

Prints a markdown table; exits non-zero if any check fails.
"""

import argparse
import json
import subprocess
import sys
from pathlib import Path

import check_onnx
import check_safetensors

FAMILIES = [
    ("mnist-full", "mnist", []),
    ("mnist-separable", "mnist", []),
    ("mnist-hybrid", "mnist", []),
    ("mnist-depthwise-literal", "mnist", []),
    ("mnist-hybrid-literal", "mnist", []),
    ("vgg-full", "cifar", []),
    ("vgg-separable", "cifar", []),
    ("vgg-hybrid", "cifar", []),
    ("mobilenet", "cifar", []),
    ("mobilenet", "cifar", ["--alpha", "0.5"]),
    ("mobilenet-v2", "cifar", []),
    ("mobilenet-v3-small-cifar", "cifar", []),
    ("mobilenet-v3-large-cifar", "cifar", []),
    ("efficientnet-b0-cifar", "cifar", []),
    ("conv:16:3:gelu,se:4:gate=hardsigmoid,conv:16:3:s=2:tanh,bneck:24:48:5:se=0.25:hardswish,"
     "mbconv:24:3:e=4:s=2:se=0.25,sigmoid,gap,dense:10", "cifar", []),
    ("conv:16:3:relu,dw:3:m=2:d=2:bias:relu,sep:32:3:s=2:relu,bn,avgpool:2,gap,dense:10", "cifar", []),
]


def sepnet(binary, *args):
    subprocess.run([binary, *args], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--sepnet", default="sepnet")
    parser.add_argument("--out", default="runs/export-family")
    parser.add_argument("--mnist", help="folder holding the MNIST files (default: sepnet's search)")
    parser.add_argument("--cifar", default="cifar10", help="CIFAR-10: cifar10 or an image folder")
    parser.add_argument("--steps", default="50", help="training steps per run")
    parser.add_argument("--only", help="comma-separated models (the families' first words) to run")
    args = parser.parse_args()
    only = set(args.only.split(",")) if args.only else None
    data = {"mnist": ["--dataset", "mnist"] + (["--data-dir", args.mnist] if args.mnist else []),
            "cifar": ["--dataset", args.cifar]}
    print("| model | options | ONNX Runtime: max relative difference | same top-1 (256 images) | sepnet accuracy | PyTorch twin accuracy |")
    print("|---|---|---:|---|---:|---:|")
    ok = True
    for i, (model, dataset, options) in enumerate(FAMILIES):
        if only is not None and model.split(",")[0] not in only and model not in only:
            continue
        run = Path(args.out) / f"run{i}"
        if not (run / "summary.json").exists():
            sepnet(args.sepnet, "train", "--model", model, *options, *data[dataset], "--epochs", "1",
                   "--max-steps", args.steps, "--quiet", "--out", str(run))
        sepnet(args.sepnet, "export", str(run), "--format", "onnx", "--samples", "256")
        sepnet(args.sepnet, "export", str(run), "--format", "safetensors", "--samples", "100000")
        onnx_ok = check_onnx.check(str(run / "model.onnx"))
        twin_ok = check_safetensors.check(str(run))
        onnx_result = json.loads(check_onnx.LAST)
        twin_result = json.loads(check_safetensors.LAST)
        ok &= onnx_ok and twin_ok
        print(f"| {model} | {' '.join(options)} | {onnx_result['max_relative_difference']:.1e} | "
              f"{'yes' if onnx_result['same_top1'] else 'NO'} | {100 * twin_result['sepnet_accuracy']:.2f}% | "
              f"{100 * twin_result['torch_accuracy']:.2f}% |", flush=True)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
