"""What deployment costs: times an exported model under ONNX Runtime at batch 1 (latency) and
batch 128 (throughput), beside `sepnet bench` of the same network, in one run.

    pip install onnxruntime numpy
    sepnet export RUN --format onnx
    python3 reference/onnx_bench.py RUN/model.onnx --sepnet target/release/sepnet --threads 2

Prints median milliseconds per forward pass for both; the spec for `sepnet bench` comes from
the ONNX file's metadata.
"""

import argparse
import json
import statistics
import subprocess
import time

import numpy as np
import onnxruntime as ort


def ort_median_ms(session, shape, repeats):
    x = np.random.default_rng(42).standard_normal(shape, dtype=np.float32)
    for _ in range(3):
        session.run(["logits"], {"images": x})
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        session.run(["logits"], {"images": x})
        times.append(1e3 * (time.perf_counter() - start))
    return statistics.median(times)


def sepnet_median_ms(binary, spec, input_hwc, batch, repeats):
    out = subprocess.run(
        [binary, "bench", "--models", spec, "--input", "x".join(map(str, input_hwc)),
         "--batch-size", str(batch), "--steps", str(repeats), "--json"],
        check=True, capture_output=True, text=True).stdout
    return json.loads(out)[0]["forward_ms"]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("model")
    parser.add_argument("--sepnet", default="sepnet")
    parser.add_argument("--threads", type=int, default=0, help="ONNX Runtime intra-op threads (0: its default)")
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args()
    options = ort.SessionOptions()
    options.intra_op_num_threads = args.threads
    session = ort.InferenceSession(args.model, options, providers=["CPUExecutionProvider"])
    meta = session.get_modelmeta().custom_metadata_map
    shape = session.get_inputs()[0].shape  # [batch, c, h, w]
    c, h, w = shape[1:]
    print("| batch | ONNX Runtime ms | sepnet ms | sepnet ÷ ONNX Runtime |")
    print("|---:|---:|---:|---:|")
    for batch in (1, 128):
        ours = ort_median_ms(session, (batch, c, h, w), args.repeats)
        theirs = sepnet_median_ms(args.sepnet, meta["spec"], (h, w, c), batch, args.repeats)
        print(f"| {batch} | {ours:.2f} | {theirs:.2f} | {theirs / ours:.2f}× |")


if __name__ == "__main__":
    main()
