"""How sepnet's data-parallel training scales: measured on this machine, predicted for clusters.

Measured: for each reference model, a short `sepnet train` on real data as one process (all
cores, batch 128) and as two MPI processes (`mpirun -np 2`, one core each, batch 128 per
process): training time per step, gradient all-reduce time per step (from metrics.json) and
images/s. Predicted: the efficiency of N nodes on a network of B Gbit/s for a ring all-reduce
of the step's buffer (every weight and BatchNorm statistic, 4 bytes each), without overlap of
communication and computation (sepnet sums the gradients after the backward pass):

    t_allreduce = 2 (N - 1) / N * bytes / bandwidth + 2 (N - 1) * latency
    efficiency  = t_step / (t_step + t_allreduce)

with t_step the measured one-process step time per 128 images here, and a latency of 5 µs
per message (a typical MPI latency on Ethernet with a kernel TCP stack is 10-50 µs; RDMA 1-2 µs).

    cargo build --release -p sepnet-cli --features mpi
    python3 reference/scaling.py --sepnet target/release/sepnet --mnist DIR --cifar DIR [--steps 30]

Prints both markdown tables and writes --out/scaling.json with every number.
"""

import argparse
import json
import os
import pathlib
import subprocess
import tempfile

# model: dataset flags key
MODELS = {"mnist-full": "mnist", "vgg-full": "cifar", "vgg-separable": "cifar", "mobilenet": "cifar"}
NODES = [4, 16, 64]
GBITS = [10, 25, 100]
LATENCY_S = 5e-6
BATCH = 128


def train(sepnet, model, data, steps, processes, out):
    """Trains `steps` steps of one epoch; returns (params, step s, all-reduce s per step, images/s)."""
    batch = BATCH * processes
    args = [sepnet, "train", "--model", model, *data, "--epochs", "1", "--max-steps", str(steps),
            "--batch-size", str(batch), "--quiet", "--out", str(out)]
    if processes > 1:
        launcher = ["mpirun", "-np", str(processes)]
        if os.geteuid() == 0:
            launcher.insert(1, "--allow-run-as-root")
        args = launcher + args + ["--distributed", "mpi"]
    subprocess.run(args, check=True)
    epoch = json.loads((out / "metrics.json").read_text())[0]
    summary = json.loads((out / "summary.json").read_text())
    step = epoch["train_seconds"] / steps
    return summary["params"], step, epoch["allreduce_seconds"] / steps, epoch["images_per_second"]


def predicted(params, step_s, nodes, gbits):
    buffer_bytes = 4 * (params + 4)
    bandwidth = gbits * 1e9 / 8
    allreduce = 2 * (nodes - 1) / nodes * buffer_bytes / bandwidth + 2 * (nodes - 1) * LATENCY_S
    return step_s / (step_s + allreduce), allreduce


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sepnet", default="target/release/sepnet")
    parser.add_argument("--mnist", required=True, help="MNIST folder (IDX files)")
    parser.add_argument("--cifar", required=True, help="CIFAR-10 (binary batches or image folder)")
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--out", default="scaling")
    args = parser.parse_args()
    data = {"mnist": ["--dataset", "mnist", "--data-dir", args.mnist],
            "cifar": ["--dataset", args.cifar] if not os.path.exists(os.path.join(args.cifar, "data_batch_1.bin"))
            else ["--dataset", "cifar10", "--data-dir", args.cifar]}
    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for model in args.models.split(","):
            flags = data[MODELS[model]]
            one = train(args.sepnet, model, flags, args.steps, 1, pathlib.Path(tmp) / f"{model}-1")
            two = train(args.sepnet, model, flags, args.steps, 2, pathlib.Path(tmp) / f"{model}-2")
            rows.append({"model": model, "params": one[0], "one": one[1:], "two": two[1:]})
    print(f"| model | weights (MB) | 1 process: ms/step | img/s | 2 processes: ms/step | all-reduce ms/step | img/s | 2 ÷ 1 img/s |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        (s1, _, ips1), (s2, ar2, ips2) = r["one"], r["two"]
        print(f"| {r['model']} | {4 * r['params'] / 1e6:.2f} | {1e3 * s1:.1f} | {ips1:.0f} | "
              f"{1e3 * s2:.1f} | {1e3 * ar2:.2f} | {ips2:.0f} | {ips2 / ips1:.2f}× |")
    print()
    header = " | ".join(f"{n} nodes, {g} Gbit/s" for g in GBITS for n in NODES)
    print(f"| model | step here (ms) | {header} |")
    print("|---|---:|" + "---:|" * (len(GBITS) * len(NODES)))
    for r in rows:
        cells = []
        for g in GBITS:
            for n in NODES:
                eff, allreduce = predicted(r["params"], r["one"][0], n, g)
                cells.append(f"{100 * eff:.0f}% ({1e3 * allreduce:.1f} ms)")
                r.setdefault("predicted", []).append({"nodes": n, "gbits": g, "efficiency": eff,
                                                      "allreduce_s": allreduce})
        print(f"| {r['model']} | {1e3 * r['one'][0]:.0f} | " + " | ".join(cells) + " |")
    (out / "scaling.json").write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
