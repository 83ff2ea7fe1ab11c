"""sepnet's built-in MobileNet v3 and EfficientNet-B0 against Keras's applications: total,
trainable and non-trainable parameters at 224×224×3 with the 1000-class top.

    pip install tensorflow-cpu keras
    python3 reference/keras_counts.py --sepnet target/release/sepnet

Keras's EfficientNet keeps its input normalisation inside the model (a `Normalization` layer:
mean, variance and count, 7 non-trainable numbers for 3 channels); sepnet normalises the data
outside the network, so its count is Keras's less those 7. Exits non-zero on any other
difference.
"""

import argparse
import json
import subprocess
import sys

import keras

# sepnet name: (Keras constructor, parameters Keras counts that sepnet keeps outside the network)
MODELS = {
    "mobilenet-v3-small": (keras.applications.MobileNetV3Small, 0),
    "mobilenet-v3-large": (keras.applications.MobileNetV3Large, 0),
    "efficientnet-b0": (keras.applications.EfficientNetB0, 7),
}


def keras_counts(constructor):
    model = constructor(weights=None, include_top=True, input_shape=(224, 224, 3))
    trainable = sum(int(w.numpy().size) for w in model.trainable_weights)
    total = model.count_params()
    return total, trainable, total - trainable


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sepnet", default="target/release/sepnet")
    args = parser.parse_args()
    print(f"Keras {keras.__version__}")
    ok = True
    for name, (constructor, outside) in MODELS.items():
        out = subprocess.run([args.sepnet, "summary", name, "--json"], check=True, capture_output=True)
        ours = json.loads(out.stdout)
        mine = (ours["total_params"], ours["trainable_params"], ours["non_trainable_params"])
        theirs = keras_counts(constructor)
        same = mine == (theirs[0] - outside, theirs[1], theirs[2] - outside)
        ok &= same
        print(f"{name}: sepnet {mine[0]:,} ({mine[1]:,} trainable, {mine[2]:,} not), {ours['macs']:,} MACs; "
              f"Keras {theirs[0]:,} ({theirs[1]:,}, {theirs[2]:,}); "
              + ("equal" if same else "DIFFERENT") + (f" less Keras's {outside} preprocessing" if outside else ""))
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
