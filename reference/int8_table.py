"""What each network keeps at int8, side by side: `sepnet quantize` per-tensor and per-channel
(full-range and 7-bit weights, min/max and percentile ranges) on the whole test split, ONNX
Runtime's accuracy on the same images, file sizes, and batch-1 latency at one thread (sepnet
float, ONNX Runtime float and int8). Reads runs trained by `sepnet compare` (MODEL/seed-N).

    pip install onnx onnxruntime safetensors numpy
    python3 reference/int8_table.py --sepnet target/release/sepnet --runs runs/compare \
        --models mnist-full,mnist-separable --out /tmp/int8 [--data-dir DIR] \
        [--qat-epochs 1 --qat-steps 100 --qat-lr 1e-4]

Prints a markdown table (mean ± std over seeds) and writes OUT/int8.json with every number.
With --qat-epochs, each run is also fine-tuned quantization-aware (`sepnet train --init-from
RUN --fake-quant G`, per-tensor and per-channel, into OUT/qat/) and quantized as it trained.
ONNX Runtime runs full-range models as ONNX defines them (basic optimisations: QDQ as float
ops between the quantizers; its fused int8 kernels saturate full-range weights on x86 CPUs
without VNNI) and 7-bit models with all optimisations (its int8 kernels).
"""

import argparse
import json
import os
import pathlib
import statistics
import subprocess
import time

import numpy as np
import onnxruntime as ort
from safetensors.numpy import load_file

ort.set_default_logger_severity(3)
# name: (quantize flags, ONNX Runtime optimisation level or None)
VARIANTS = {
    "per-tensor": (["--granularity", "per-tensor"], "basic"),
    "per-channel": (["--granularity", "per-channel"], "basic"),
    "per-channel percentile": (["--calibration-method", "percentile"], None),
    "per-tensor 7-bit": (["--granularity", "per-tensor", "--reduce-range"], "all"),
    "per-channel 7-bit": (["--granularity", "per-channel", "--reduce-range"], "all"),
}
LEVELS = {"basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC, "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL}


def session(path, level="all"):
    options = ort.SessionOptions()
    options.graph_optimization_level = LEVELS[level]
    options.intra_op_num_threads = 1
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def ort_accuracy(path, level):
    samples = load_file(str(path) + ".samples.safetensors")
    logits = np.concatenate([session(path, level).run(["logits"], {"images": chunk})[0]
                             for chunk in np.array_split(samples["images"], 20)])
    same = float((logits.argmax(1) == samples["logits"].argmax(1)).mean())
    return float((logits.argmax(1) == samples["labels"]).mean()), same


def latency_ms(path, shape, repeats=300):
    s = session(path)
    x = np.random.default_rng(0).standard_normal(shape, dtype=np.float32)
    for _ in range(20):
        s.run(["logits"], {"images": x})
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        s.run(["logits"], {"images": x})
        times.append(1e3 * (time.perf_counter() - start))
    return statistics.median(times)


def sepnet(args, *command, threads=None):
    env = dict(os.environ, **({"RAYON_NUM_THREADS": str(threads)} if threads else {}))
    out = subprocess.run([args.sepnet, *command], check=True, capture_output=True, text=True, env=env)
    return out.stdout


def measure(args, model, run, out):
    data = ["--data-dir", args.data_dir] if args.data_dir else []
    row = {"run": str(run)}
    for name, (flags, level) in VARIANTS.items():
        if name not in args.variants:
            continue
        onnx = out / f"{model}-{run.name}-{name.replace(' ', '-')}.onnx"
        report = json.loads(sepnet(args, "quantize", str(run), *flags, "--out", str(onnx),
                                   "--samples", "100000", "--json", *data))
        row["float"] = report["float"]["test_accuracy"]
        row["float_bytes"] = report["float"]["onnx_bytes"]
        row[name] = report["int8"]["test_accuracy"]
        row[name + " bytes"] = report["int8"]["onnx_bytes"]
        if level:
            row[name + " onnxruntime"], row[name + " same top-1"] = ort_accuracy(onnx, level)
        os.remove(str(onnx) + ".samples.safetensors")  # the whole test split: large
    sepnet(args, "export", str(run), "--format", "onnx", "--out", str(out / f"{model}-{run.name}-float.onnx"))
    return row


def quantization_aware(args, model, run, out, row):
    """Fine-tunes `run` through int8 weights of each granularity, then quantizes it so."""
    data = ["--data-dir", args.data_dir] if args.data_dir else []
    steps = ["--max-steps", str(args.qat_steps)] if args.qat_steps else []
    for granularity in ("per-tensor", "per-channel"):
        tuned = out / "qat" / f"{model}-{run.name}-{granularity}"
        if not (tuned / "summary.json").exists():
            sepnet(args, "train", "--init-from", str(run), "--fake-quant", granularity, "--epochs",
                   str(args.qat_epochs), "--lr", str(args.qat_lr), *steps, *data, "--quiet", "--out", str(tuned))
        onnx = out / f"{model}-{run.name}-qat-{granularity}.onnx"
        report = json.loads(sepnet(args, "quantize", str(tuned), "--granularity", granularity, "--out", str(onnx),
                                   "--samples", "100000", "--json", *data))
        name = f"QAT {granularity}"
        row[name] = report["int8"]["test_accuracy"]
        row[name + " onnxruntime"], row[name + " same top-1"] = ort_accuracy(onnx, "basic")
        os.remove(str(onnx) + ".samples.safetensors")


def latencies(args, model, row, out):
    """Batch-1 forward, one thread: sepnet float, ONNX Runtime float and int8 (7-bit weights,
    per-channel: the model its int8 kernels compute right on any x86 CPU)."""
    run = pathlib.Path(row["run"])
    config = json.loads((run / "config.json").read_text())["network"]
    h, w, c = config["input"]
    row["onnxruntime float ms"] = latency_ms(out / f"{model}-{run.name}-float.onnx", (1, c, h, w))
    row["onnxruntime int8 ms"] = latency_ms(out / f"{model}-{run.name}-per-channel-7-bit.onnx", (1, c, h, w))
    bench = sepnet(args, "bench", "--models", config["spec"], "--input", f"{h}x{w}x{c}",
                   "--batch-size", "1", "--steps", "300", "--json", threads=1)
    row["sepnet float ms"] = json.loads(bench)[0]["forward_ms"]


def mean_std(values, percent=True):
    scale = 100 if percent else 1
    if len(values) == 1:
        return f"{scale * values[0]:.2f}"
    return f"{scale * statistics.mean(values):.2f} ± {scale * statistics.stdev(values):.2f}"


def table(results):
    columns = ["float", *[v for v in VARIANTS], "per-channel onnxruntime", "per-channel 7-bit onnxruntime"]
    columns = [c for c in columns if all(c in r for rows in results.values() for r in rows)]
    qat = ["QAT per-tensor", "QAT per-channel", "QAT per-tensor onnxruntime", "QAT per-channel onnxruntime"]
    columns += [c for c in qat if all(c in r for rows in results.values() for r in rows)]
    lines = ["| model | " + " | ".join(columns) + " | int8/float size | ms: sepnet float | ONNX Runtime float | int8 |",
             "|---|" + "---:|" * (len(columns) + 4)]
    for model, rows in results.items():
        cells = [mean_std([r[c] for r in rows]) for c in columns]
        size = statistics.mean(r["per-channel 7-bit bytes"] / r["float_bytes"] for r in rows)
        ms = [statistics.median(r[k] for r in rows) for k in ("sepnet float ms", "onnxruntime float ms", "onnxruntime int8 ms")]
        lines.append(f"| {model} | " + " | ".join(cells) + f" | {size:.3f} | " + " | ".join(f"{m:.3f}" for m in ms) + " |")
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sepnet", required=True)
    parser.add_argument("--runs", required=True, type=pathlib.Path)
    parser.add_argument("--models", required=True)
    parser.add_argument("--out", required=True, type=pathlib.Path)
    parser.add_argument("--data-dir")
    parser.add_argument("--variants", default=",".join(VARIANTS),
                        help="comma-separated quantize variants to measure (default: all; "
                             "per-channel 7-bit is the model timed)")
    parser.add_argument("--qat-epochs", type=int, help="also fine-tune each run quantization-aware for N epochs")
    parser.add_argument("--qat-steps", type=int, help="at most S steps per quantization-aware epoch")
    parser.add_argument("--qat-lr", type=float, default=1e-4, help="its learning rate (default 1e-4)")
    parser.add_argument("--qat-only", action="store_true",
                        help="only add the quantization-aware columns to an earlier run of this script's OUT")
    parser.add_argument("--latency-only", action="store_true",
                        help="only (re)time the models an earlier run of this script wrote to OUT")
    args = parser.parse_args()
    args.variants = args.variants.split(",")
    unknown = [v for v in args.variants if v not in VARIANTS]
    if unknown or "per-channel 7-bit" not in args.variants:
        parser.error(f"--variants: {unknown or 'per-channel 7-bit is needed'}; known: {', '.join(VARIANTS)}")
    args.out.mkdir(parents=True, exist_ok=True)
    saved = args.out / "int8.json"
    results = json.loads(saved.read_text()) if args.latency_only or args.qat_only else {}
    if args.qat_only:
        if not args.qat_epochs:
            parser.error("--qat-only needs --qat-epochs")
        for model in args.models.split(","):
            for row in results[model]:
                quantization_aware(args, model, pathlib.Path(row["run"]), args.out, row)
            saved.write_text(json.dumps(results, indent=1))
        print(table(results))
        return
    for model in args.models.split(","):
        if not args.latency_only:
            runs = sorted(p for p in (args.runs / model).glob("seed-*") if p.is_dir()) or [args.runs / model]
            results[model] = [measure(args, model, run, args.out) for run in runs]
            if args.qat_epochs:
                for run, row in zip(runs, results[model]):
                    quantization_aware(args, model, run, args.out, row)
            saved.write_text(json.dumps(results, indent=1))
    # Timed after all the quantizing, each model in turn: nothing else runs meanwhile.
    for model in args.models.split(","):
        for row in results[model]:
            latencies(args, model, row, args.out)
        saved.write_text(json.dumps(results, indent=1))
    print(table(results))


if __name__ == "__main__":
    main()
