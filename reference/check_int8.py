"""Checks sepnet's int8 model (`sepnet quantize --samples N`) with runtimes sepnet did not write:
the ONNX checker, then ONNX Runtime (one thread) on real test images against sepnet's own int8
logits.

    pip install onnx onnxruntime safetensors numpy
    sepnet quantize RUN --samples 256
    python3 reference/check_int8.py RUN/model.int8.onnx [--optimization basic|all] [--agreement F]

--optimization all (the default, what a deployment gets): ONNX Runtime fuses each
DequantizeLinear → op → QuantizeLinear group into its int8 kernels (QLinearConv, QGemm, ...).
On x86 CPUs without VNNI those kernels add pairs of u8·s8 products in saturating int16, so a
model with full-range weights comes out wrong there without an error: quantize with
--reduce-range for such CPUs. --optimization basic runs the QDQ graph as written (float ops
between QuantizeLinear and DequantizeLinear): ONNX's definition of the model, on any CPU.

sepnet computes the same integer sums; a requantized value within float rounding of a half
step may round the other way (ONNX Runtime's float scales, its float ops in the unfused form),
which moves a logit by one step and, rarely, flips a close top-1. The check asks for the same
top-1 class on at least --agreement of the images (default 0.99) and logits within 5% of their
scale. Prints one JSON line per model, with the operators ONNX Runtime ran; exits non-zero on
a failed check.
"""

import argparse
import collections
import json
import sys
import tempfile

import numpy as np
import onnx
import onnxruntime as ort
from safetensors.numpy import load_file

ort.set_default_logger_severity(3)
LEVELS = {
    "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
    "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
}


def session(path, level, optimised=None):
    options = ort.SessionOptions()
    options.graph_optimization_level = LEVELS[level]
    options.intra_op_num_threads = 1
    if optimised:
        options.optimized_model_filepath = optimised
    return ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])


def executed_ops(path, level):
    """The operators of the graph ONNX Runtime runs after its optimisations."""
    with tempfile.NamedTemporaryFile(suffix=".onnx") as optimised:
        session(path, level, optimised.name)
        graph = onnx.load(optimised.name).graph
        return dict(collections.Counter(node.op_type for node in graph.node))


def check(path, level="all", agreement=0.99, tolerance=0.05):
    model = onnx.load(path)
    onnx.checker.check_model(model, full_check=True)
    samples = load_file(path + ".samples.safetensors")
    runtime = session(path, level)
    logits = runtime.run(["logits"], {"images": samples["images"]})[0]
    ours, labels = samples["logits"], samples["labels"]
    scale = float(np.abs(ours).max())
    difference = float(np.abs(logits - ours).max()) / max(scale, 1e-12)
    same = float((logits.argmax(1) == ours.argmax(1)).mean())
    result = {
        "model": path,
        "optimization": level,
        "images": int(ours.shape[0]),
        "same_top1": same,
        "max_relative_difference": difference,
        "sepnet_accuracy": float((ours.argmax(1) == labels).mean()),
        "onnxruntime_accuracy": float((logits.argmax(1) == labels).mean()),
        "onnxruntime_ops": executed_ops(path, level),
        "quantization": runtime.get_modelmeta().custom_metadata_map.get("quantization", ""),
    }
    print(json.dumps(result))
    return same >= agreement and difference <= tolerance


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="+")
    parser.add_argument("--optimization", choices=LEVELS, default="all")
    parser.add_argument("--agreement", type=float, default=0.99)
    args = parser.parse_args()
    results = [check(p, args.optimization, args.agreement) for p in args.models]
    sys.exit(0 if all(results) else 1)
