"""Reads a sepnet run's TensorBoard event file back with TensorBoard's own reader and checks it
against the run's metrics.json: every epoch scalar present, with its value.

    pip install tensorboard
    python3 reference/check_tensorboard.py runs/mnist-hybrid
"""

import json
import math
import sys
from pathlib import Path

from tensorboard.backend.event_processing.event_accumulator import EventAccumulator


def check(run_dir):
    run = Path(run_dir)
    history = json.loads((run / "metrics.json").read_text())
    events = EventAccumulator(str(run), size_guidance={"scalars": 0, "tensors": 0})
    events.Reload()
    tags = events.Tags()
    fields = {"train_loss": "epoch/train_loss", "train_accuracy": "epoch/train_accuracy",
              "val_loss": "epoch/val_loss", "val_accuracy": "epoch/val_accuracy", "lr": "epoch/learning_rate"}
    for field, tag in fields.items():
        values = [e.value for e in events.Scalars(tag)]
        expected = [m[field] for m in history]
        assert len(values) == len(expected), f"{tag}: {len(values)} points, {len(expected)} epochs"
        for got, want in zip(values, expected):
            assert math.isclose(got, want, rel_tol=1e-6), f"{tag}: {got} != {want}"
    steps = events.Scalars("train/running_loss")
    assert steps, "no per-step scalars"
    assert "settings" in tags["tensors"], f"no settings text: {tags}"
    print(f"{run}: {len(history)} epochs and {len(steps)} step points read back by TensorBoard; all equal metrics.json")


if __name__ == "__main__":
    for arg in sys.argv[1:]:
        check(arg)
