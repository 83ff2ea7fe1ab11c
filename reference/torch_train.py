"""Trains a PyTorch twin of a sepnet network with `sepnet train`'s protocol: an accuracy
cross-check from a second framework on the same data, init and settings.

    sepnet models --json > /tmp/models.json
    python3 reference/torch_train.py --models-json /tmp/models.json --model vgg-separable \
        --data ../shared/datasets/cifar-10-jpeg --epochs 10 --seed 42

Matches sepnet where it matters for accuracy: Glorot-uniform weights and zero biases (sepnet's
Conv2d and Dense), depthwise kernels drawn with the chosen fans (`--depthwise-fans`, the bound
of `DepthwiseFans::limit`), inputs scaled as `--input-scaling` (standardize uses the training
split's per-channel statistics, as sepnet does for an image folder), Adam (β 0.9 / 0.999,
ε 1e-8), mean cross-entropy, a reshuffle every epoch, the last partial batch kept, test accuracy
after every epoch. Random streams differ from sepnet's, so equal seeds do not give equal
numbers: compare against sepnet's seed-to-seed spread. Prints one JSON object per epoch.

`--compare-pixels DIR` instead measures how far PIL's JPEG decode is from sepnet's, DIR holding
`cargo run --release -p sepnet-data --example export_cifar_binary -- FOLDER DIR`'s output.
"""

import argparse
import json
import math
import os
import time

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

import torch_models


def load_split(root, split):
    """(uint8 images [N, H, W, C], int64 labels [N]) from ROOT/SPLIT/<class>/*, classes sorted."""
    folder = os.path.join(root, split)
    classes = sorted(d for d in os.listdir(folder) if os.path.isdir(os.path.join(folder, d)))
    images, labels = [], []
    for index, name in enumerate(classes):
        class_dir = os.path.join(folder, name)
        for file in sorted(os.listdir(class_dir)):
            with Image.open(os.path.join(class_dir, file)) as image:
                images.append(np.asarray(image.convert("RGB"), dtype=np.uint8))
            labels.append(index)
    return np.stack(images), np.array(labels, dtype=np.int64)


def pixel_difference(images, labels, cifar_binary_dir):
    """Mean and largest |PIL − sepnet| over the training pixels (0–255), given sepnet's decode of
    the same folder written as CIFAR binary files by the `export_cifar_binary` example."""
    files = sorted(f for f in os.listdir(cifar_binary_dir) if f.startswith("data_batch_"))
    records = np.concatenate(
        [np.fromfile(os.path.join(cifar_binary_dir, f), np.uint8).reshape(-1, 3073) for f in files]
    )
    if not np.array_equal(records[:, 0], labels):
        raise SystemExit(f"{cifar_binary_dir}: labels or image order differ from the folder's")
    sepnet = records[:, 1:].reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)  # CHW → HWC
    difference = np.abs(images.astype(np.int16) - sepnet.astype(np.int16))
    return float(difference.mean()), int(difference.max())


def scaling(train_images, how):
    """Per-channel (mean, std) such that the input is (pixel / 255 − mean) / std."""
    channels = train_images.shape[-1]
    if how == "standardize":
        pixels = train_images.reshape(-1, channels).astype(np.float64) / 255.0
        return pixels.mean(0), pixels.std(0)
    if how == "unit":
        return np.zeros(channels), np.ones(channels)
    return np.zeros(channels), np.full(channels, 1.0 / 255.0)  # raw 0–255


def to_tensor(images, mean, std):
    x = torch.from_numpy(images).permute(0, 3, 1, 2).float() / 255.0  # [N, C, H, W]
    mean = torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1)
    std = torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1)
    return (x - mean) / std


def depthwise_limit(fans, channels, kernel_area, multiplier):
    """The bound of sepnet's `DepthwiseFans::limit`."""
    if fans == "torch":
        return 1.0 / math.sqrt(kernel_area)
    fan_in = kernel_area * (channels if fans == "keras" else 1)
    return math.sqrt(6.0 / (fan_in + kernel_area * multiplier))


def init_like_sepnet(net, fans):
    for module in net.modules():
        if isinstance(module, nn.Conv2d) and module.groups > 1:
            area = module.kernel_size[0] * module.kernel_size[1]
            multiplier = module.out_channels // module.in_channels
            bound = depthwise_limit(fans, module.in_channels, area, multiplier)
            nn.init.uniform_(module.weight, -bound, bound)
        elif isinstance(module, (nn.Conv2d, nn.Linear)):
            nn.init.xavier_uniform_(module.weight)
        if isinstance(module, (nn.Conv2d, nn.Linear)) and module.bias is not None:
            nn.init.zeros_(module.bias)


def accuracy(net, x, y, batch_size):
    net.eval()
    correct = 0
    with torch.no_grad():
        for start in range(0, len(y), batch_size):
            logits = net(x[start : start + batch_size])
            correct += (logits.argmax(1) == y[start : start + batch_size]).sum().item()
    net.train()
    return correct / len(y)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models-json", required=True, help="output of `sepnet models --json`")
    parser.add_argument("--model", required=True)
    parser.add_argument("--data", required=True, help="image folder: ROOT/train/<class>/…, ROOT/test/<class>/…")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--input-scaling", choices=["standardize", "unit", "raw"], default="standardize")
    parser.add_argument("--depthwise-fans", choices=["group", "keras", "torch"], default="group")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--compare-pixels", metavar="DIR",
                        help="print how far PIL's pixels are from sepnet's decode (CIFAR binary files "
                        "from the export_cifar_binary example) and exit")
    args = parser.parse_args()

    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)
    train_images, train_labels = load_split(args.data, "train")
    if args.compare_pixels:
        mean_abs, max_abs = pixel_difference(train_images, train_labels, args.compare_pixels)
        print(json.dumps({"mean_abs_difference": mean_abs, "max_abs_difference": max_abs}))
        return
    with open(args.models_json) as f:
        entry = next(m for m in json.load(f) if m["name"] == args.model)
    layers, _ = torch_models.build(entry["spec"], entry["input"])
    net = nn.Sequential(*[module for _, module in layers])
    init_like_sepnet(net, args.depthwise_fans)

    test_images, test_labels = load_split(args.data, "test")
    mean, std = scaling(train_images, args.input_scaling)
    x_train, y_train = to_tensor(train_images, mean, std), torch.from_numpy(train_labels)
    x_test, y_test = to_tensor(test_images, mean, std), torch.from_numpy(test_labels)

    optimizer = torch.optim.Adam(net.parameters(), lr=args.lr, betas=(0.9, 0.999), eps=1e-8)
    best = 0.0
    for epoch in range(1, args.epochs + 1):
        start = time.perf_counter()
        order = torch.randperm(len(y_train))
        seen = correct = 0
        loss_sum = 0.0
        for first in range(0, len(order), args.batch_size):
            index = order[first : first + args.batch_size]
            logits = net(x_train[index])
            loss = F.cross_entropy(logits, y_train[index])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            seen += len(index)
            loss_sum += loss.item() * len(index)
            correct += (logits.argmax(1) == y_train[index]).sum().item()
        seconds = time.perf_counter() - start
        test = accuracy(net, x_test, y_test, 500)
        best = max(best, test)
        print(json.dumps({
            "model": args.model, "epoch": epoch, "train_loss": loss_sum / seen,
            "train_accuracy": correct / seen, "test_accuracy": test,
            "best_test_accuracy": best, "train_seconds": seconds,
        }), flush=True)


if __name__ == "__main__":
    main()
