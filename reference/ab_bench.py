"""sepnet vs PyTorch vs Keras/TensorFlow, same machine, same run: rounds that rotate which
framework goes first, one ratio per model and peer.

    cargo build --release --bin sepnet
    python3 reference/ab_bench.py                        # CPU, the five reference models
    python3 reference/ab_bench.py --batch-size 1 --steps 200   # inference latency (p50/p90/p99)
    python3 reference/ab_bench.py --peers torch --device cuda --backend wgpu --sepnet ./sepnet

Each round runs `sepnet bench --json`, `torch_bench.py` and `keras_bench.py` once per model,
rotating the order every round so no framework always gets the cooler machine. A model's
figure is the median over rounds of each round's median. Prints a Markdown table (a ratio
sepnet/peer above 1 means sepnet is slower) and writes every raw result to --out.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))


def run_json(cmd):
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed:\n{done.stderr}")
    return json.loads(done.stdout)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sepnet", default="target/release/sepnet")
    p.add_argument("--models", default="mnist-full,vgg-full,vgg-separable,mobilenet,mobilenet-v2")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--backend", default="flex", help="sepnet backend: flex or wgpu")
    p.add_argument("--device", default="cpu", help="PyTorch device: cpu or cuda")
    p.add_argument("--peers", default="torch,keras", help="frameworks beside sepnet: torch, keras")
    p.add_argument("--out", default="runs/ab_bench.json")
    args = p.parse_args()

    models_json = os.path.join(os.path.dirname(args.out) or ".", "models.json")
    os.makedirs(os.path.dirname(models_json) or ".", exist_ok=True)
    with open(models_json, "w") as f:
        json.dump(run_json([args.sepnet, "models", "--json"]), f)
    common = ["--batch-size", str(args.batch_size), "--steps", str(args.steps)]
    peers = [x for x in args.peers.split(",") if x]
    scripts = {"torch": ["torch_bench.py", "--device", args.device], "keras": ["keras_bench.py"]}
    raw = {name: [] for name in ["sepnet", *peers]}
    for r in range(args.rounds):
        for model in args.models.split(","):
            order = [("sepnet", [args.sepnet, "bench", "--models", model, "--backend", args.backend,
                                 "--json", *common])]
            for peer in peers:
                script, *extra = scripts[peer]
                order.append((peer, [sys.executable, os.path.join(HERE, script), "--models-json", models_json,
                                     "--models", model, *extra, *common]))
            shift = r % len(order)
            for name, cmd in order[shift:] + order[:shift]:
                raw[name].extend(run_json(cmd))
            print(f"round {r + 1}/{args.rounds} {model}: done", file=sys.stderr)
    rows = summarise(raw, args.models.split(","), peers, args.batch_size)
    with open(args.out, "w") as f:
        json.dump({"args": vars(args), "summary": rows, "raw": raw}, f, indent=2)


def summarise(raw, models, peers, batch_size):
    """Prints the Markdown table: train step and forward median (or, at batch 1, forward p50
    and p90 latency) per framework, and sepnet's ratio to each peer."""
    def median(side, model, path):
        values = []
        for x in raw[side]:
            if x["model"] == model:
                for key in path:
                    x = x[key]
                values.append(x)
        return statistics.median(values)

    latency = batch_size == 1
    columns = ([("forward p50", ("forward", "median_ms")), ("forward p90", ("forward", "p90_ms"))] if latency
               else [("train step", ("train_step", "median_ms")), ("forward", ("forward", "median_ms"))])
    names = {"sepnet": "sepnet", "torch": "PyTorch", "keras": "Keras/TF"}
    header = ["model"]
    for title, _ in columns:
        header += [f"{names[s]} {title}" for s in ["sepnet", *peers]]
        header += [f"{title} sepnet ÷ {names[p]}" for p in peers]
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    rows = []
    for model in models:
        cells, row = [model], {"model": model}
        for title, path in columns:
            ms = {side: median(side, model, path) for side in ["sepnet", *peers]}
            cells += [f"{ms[s]:.2f} ms" if latency else f"{ms[s]:.1f} ms" for s in ["sepnet", *peers]]
            cells += [f"{ms['sepnet'] / ms[p]:.2f}×" for p in peers]
            row[title] = ms
        print("| " + " | ".join(cells) + " |")
        rows.append(row)
    return rows


if __name__ == "__main__":
    main()
