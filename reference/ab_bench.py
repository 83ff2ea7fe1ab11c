"""sepnet vs PyTorch, same machine, same run: alternating A/B rounds, one ratio per model.

    cargo build --release --bin sepnet
    python3 reference/ab_bench.py                        # CPU, the four reference models
    python3 reference/ab_bench.py --device cuda --backend wgpu --sepnet ./sepnet   # GPU box

Each round runs `sepnet bench --json` and `torch_bench.py` once per model, swapping which goes
first every round so neither always gets the cooler machine. A model's figure is the median
over rounds of each round's median step. Prints a Markdown table (sepnet/PyTorch > 1 means
sepnet is slower) and writes every raw result to --out.
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
    p.add_argument("--models", default="mnist-full,vgg-full,vgg-separable,mobilenet")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--backend", default="flex", help="sepnet backend: flex or wgpu")
    p.add_argument("--device", default="cpu", help="PyTorch device: cpu or cuda")
    p.add_argument("--out", default="runs/ab_bench.json")
    args = p.parse_args()

    models_json = os.path.join(os.path.dirname(args.out) or ".", "models.json")
    os.makedirs(os.path.dirname(models_json) or ".", exist_ok=True)
    with open(models_json, "w") as f:
        json.dump(run_json([args.sepnet, "models", "--json"]), f)
    common = ["--batch-size", str(args.batch_size), "--steps", str(args.steps)]
    raw = {"sepnet": [], "torch": []}
    for r in range(args.rounds):
        for model in args.models.split(","):
            sepnet = [args.sepnet, "bench", "--models", model, "--backend", args.backend, "--json", *common]
            torch = [sys.executable, os.path.join(HERE, "torch_bench.py"), "--models-json", models_json,
                     "--models", model, "--device", args.device, *common]
            order = [("sepnet", sepnet), ("torch", torch)]
            for name, cmd in order if r % 2 == 0 else order[::-1]:
                raw[name].extend(run_json(cmd))
            print(f"round {r + 1}/{args.rounds} {model}: done", file=sys.stderr)

    def median(side, model, key):
        return statistics.median(x[key] for x in raw[side] if x["model"] == model)

    rows = []
    print(f"| model | PyTorch train step | sepnet ({args.backend}) train step | sepnet/PyTorch | "
          f"PyTorch forward | sepnet forward | sepnet/PyTorch | sepnet first step |")
    print("|---|---|---|---|---|---|---|---|")
    for model in args.models.split(","):
        t_step, s_step = median("torch", model, "train_step_ms"), median("sepnet", model, "train_step_ms")
        t_fwd, s_fwd = median("torch", model, "forward_ms"), median("sepnet", model, "forward_ms")
        first = median("sepnet", model, "first_step_ms")
        rows.append({"model": model, "torch_train_step_ms": t_step, "sepnet_train_step_ms": s_step,
                     "train_ratio": s_step / t_step, "torch_forward_ms": t_fwd, "sepnet_forward_ms": s_fwd,
                     "forward_ratio": s_fwd / t_fwd, "sepnet_first_step_ms": first})
        print(f"| {model} | {t_step:.1f} ms | {s_step:.1f} ms | {s_step / t_step:.2f}× | "
              f"{t_fwd:.1f} ms | {s_fwd:.1f} ms | {s_fwd / t_fwd:.2f}× | {first:.0f} ms |")
    with open(args.out, "w") as f:
        json.dump({"args": vars(args), "summary": rows, "raw": raw}, f, indent=2)


if __name__ == "__main__":
    main()
