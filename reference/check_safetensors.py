"""Loads a sepnet run's safetensors export into its PyTorch twin (built by torch_models.py from
the run's own spec) with `load_state_dict(strict=True)` — no renaming by hand — and compares
the twin's accuracy and logits on real test images with sepnet's.

    pip install torch numpy safetensors
    sepnet export RUN --format safetensors --samples 10000
    python3 reference/check_safetensors.py RUN

Prints one JSON line per run; exits non-zero when the accuracies differ by more than 0.05 points.
"""

import json
import sys
from pathlib import Path

import torch
from safetensors.torch import load_file

import torch_models

# The last result as JSON, for export_family.py.
LAST = "{}"


def check(run_dir):
    run = Path(run_dir)
    network = json.loads((run / "config.json").read_text())["network"]
    twin = torch_models.Twin(network["spec"], network["input"]).eval()
    twin.load_state_dict(load_file(run / "model.safetensors"), strict=True)
    samples = load_file(run / "model.safetensors.samples.safetensors")
    with torch.no_grad():
        logits = torch.cat([twin(batch) for batch in samples["images"].split(500)])
    ours = samples["logits"]
    labels = samples["labels"]
    torch_accuracy = (logits.argmax(1) == labels).float().mean().item()
    sepnet_accuracy = (ours.argmax(1) == labels).float().mean().item()
    difference = ((logits - ours).abs().max() / ours.abs().max()).item()
    result = {"run": str(run), "images": len(labels), "sepnet_accuracy": sepnet_accuracy,
              "torch_accuracy": torch_accuracy, "max_relative_difference": difference}
    global LAST
    LAST = json.dumps(result)
    print(LAST, file=sys.stderr if __name__ != "__main__" else sys.stdout)
    return abs(torch_accuracy - sepnet_accuracy) <= 0.0005


if __name__ == "__main__":
    results = [check(arg) for arg in sys.argv[1:]]
    sys.exit(0 if results and all(results) else 1)
