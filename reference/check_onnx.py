"""Checks sepnet's ONNX export with runtimes sepnet did not write: the ONNX checker, then ONNX
Runtime on real test images against sepnet's own logits (written by `sepnet export --samples`):
logits within 1e-4 of their scale, and the same top-1 class for every image.

    pip install onnx onnxruntime safetensors numpy
    sepnet export RUN --format onnx --samples 256
    python3 reference/check_onnx.py RUN/model.onnx

Prints one JSON line per model; exits non-zero on any difference.
"""

import json
import sys

import numpy as np
import onnx
import onnxruntime as ort
from safetensors.numpy import load_file

# The last result as JSON, for export_family.py.
LAST = "{}"


def check(path, tolerance=1e-4):
    model = onnx.load(path)
    onnx.checker.check_model(model, full_check=True)
    samples = load_file(path + ".samples.safetensors")
    session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    logits = session.run(["logits"], {"images": samples["images"]})[0]
    ours = samples["logits"]
    scale = float(np.abs(ours).max())
    difference = float(np.abs(logits - ours).max()) / max(scale, 1e-12)
    same_top1 = bool((logits.argmax(1) == ours.argmax(1)).all())
    meta = session.get_modelmeta().custom_metadata_map
    result = {
        "model": path,
        "images": int(ours.shape[0]),
        "max_relative_difference": difference,
        "same_top1": same_top1,
        "accuracy": float((ours.argmax(1) == samples["labels"]).mean()),
        "classes": len(json.loads(meta["classes"])),
        "opset": model.opset_import[0].version,
    }
    global LAST
    LAST = json.dumps(result)
    print(LAST, file=sys.stderr if __name__ != "__main__" else sys.stdout)
    return difference <= tolerance and same_top1


if __name__ == "__main__":
    results = [check(p) for p in sys.argv[1:]]
    sys.exit(0 if results and all(results) else 1)
