"""Times sepnet's networks in PyTorch with the protocol of `sepnet bench`.

    sepnet models --json > /tmp/models.json
    python3 reference/torch_bench.py --models-json /tmp/models.json --models vgg-full,vgg-separable

Each network is the PyTorch twin built from sepnet's own spec text (torch_models.py); its
parameter count and MACs are asserted equal to sepnet's before anything is timed. Per model:
the first training step of a fresh model apart, then `--warmup` untimed and `--steps` timed
training steps (forward, cross-entropy, backward, Adam lr 1e-3 update), then forward passes in
eval mode without autograd; every timed region ends with a device synchronisation. Batches are
Normal(0, 1) images with uniform labels. Prints a JSON list shaped like `sepnet bench --json`.
"""

import json
import sys
import time

import torch
import torch.nn.functional as F
from torch import nn

import torch_models
from timing import arguments, selected_models, timing


def bench(model, args, device):
    layers, _ = torch_models.build(model["spec"], model["input"])
    net = nn.Sequential(*[m for _, m in layers])
    measured = torch_models.measure(model["spec"], model["input"])
    if (measured["params"], measured["macs"]) != (model["params"], model["macs"]):
        sys.exit(f"{model['name']}: PyTorch twin has {measured['params']} params / {measured['macs']} MACs, "
                 f"sepnet {model['params']} / {model['macs']}; refusing to compare different networks")
    net = net.to(device)
    h, w, c = model["input"]
    g = torch.Generator().manual_seed(args.seed)
    x = torch.randn(args.batch_size, c, h, w, generator=g).to(device)
    y = torch.randint(0, model["classes"], (args.batch_size,), generator=g).to(device)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)

    def sync():
        if device.type == "cuda":
            torch.cuda.synchronize()

    def train_step():
        opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(net(x), y)
        loss.backward()
        opt.step()

    net.train()
    train_seconds, first = [], 0.0
    for i in range(1 + args.warmup + args.steps):
        sync()
        started = time.perf_counter()
        train_step()
        sync()
        elapsed = time.perf_counter() - started
        if i == 0:
            first = elapsed * 1e3
        elif i > args.warmup:
            train_seconds.append(elapsed)

    net.eval()
    forward_seconds = []
    with torch.no_grad():
        for i in range(max(args.warmup, 1) + args.steps):
            sync()
            started = time.perf_counter()
            net(x)
            sync()
            if i >= max(args.warmup, 1):
                forward_seconds.append(time.perf_counter() - started)

    fwd, step = timing(forward_seconds), timing(train_seconds)
    b = args.batch_size
    return {
        "model": model["name"], "backend": f"torch-{device.type}", "batch_size": b,
        "params": model["params"], "macs": model["macs"], "steps": args.steps,
        "forward_ms": fwd["median_ms"], "forward": fwd,
        "train_step_ms": step["median_ms"], "train_step": step,
        "first_step_ms": first,
        "forward_images_per_s": b / (fwd["median_ms"] / 1e3),
        "train_images_per_s": b / (step["median_ms"] / 1e3),
        "forward_gmacs_per_s": model["macs"] * b / (fwd["median_ms"] * 1e6),
        "train_gmacs_per_s": 3 * model["macs"] * b / (step["median_ms"] * 1e6),
        "torch": torch.__version__, "threads": torch.get_num_threads(),
        "tf32": torch.backends.cudnn.allow_tf32,
    }


def main():
    p = arguments(__doc__)
    p.add_argument("--device", default="cpu", help="cpu or cuda")
    p.add_argument("--threads", type=int, default=0, help="CPU threads (default: all cores)")
    p.add_argument("--tf32", action="store_true",
                   help="let CUDA convolutions and products round inputs to TF32 (PyTorch's default for "
                        "convolutions); off by default, so both sides compute in f32 as sepnet does")
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.backends.cudnn.allow_tf32 = args.tf32
    torch.backends.cuda.matmul.allow_tf32 = args.tf32
    torch.manual_seed(args.seed)
    device = torch.device(args.device)
    print(json.dumps([bench(model, args, device) for model in selected_models(args)], indent=2))


if __name__ == "__main__":
    main()
