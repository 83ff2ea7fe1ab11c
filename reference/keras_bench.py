"""Times sepnet's networks in Keras 3 (TensorFlow backend) with the protocol of `sepnet bench`.

    pip install tensorflow-cpu keras
    sepnet models --json > /tmp/models.json
    python3 reference/keras_bench.py --models-json /tmp/models.json --models vgg-separable
    python3 reference/keras_bench.py --models-json /tmp/models.json --batch-size 1 --steps 200

Each network is built from sepnet's own spec text with Keras layers as a Keras user writes
them: channels-last, `SeparableConv2D`, `DepthwiseConv2D`, TensorFlow's `same` padding,
BatchNormalization, ReLU(6). Its parameter count (trainable + BatchNorm's moving statistics,
as `model.count_params()` reports) is asserted equal to sepnet's before anything is timed.
Per model: the first `train_on_batch` (tracing and graph building) apart, then `--warmup`
untimed and `--steps` timed `train_on_batch` calls (forward, cross-entropy, backward, Adam lr
1e-3), then `predict_on_batch` calls. Both return NumPy values, so every timing covers the
finished work. Batches are Normal(0, 1) images with uniform labels. Prints a JSON list shaped
like `sepnet bench --json`.
"""

import json
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import numpy as np  # noqa: E402
import keras  # noqa: E402
from keras import layers  # noqa: E402

from spec_text import dims, parse_layer  # noqa: E402
from timing import arguments, selected_models, timing  # noqa: E402


def activation(name):
    return {"relu": layers.ReLU(), "relu6": layers.ReLU(6.0)}.get(name, layers.Activation("linear"))


def padded(x, pad):
    """Keras padding argument for `pad`; explicit padding becomes a ZeroPadding2D first."""
    if pad in ("same", "valid"):
        return x, pad
    top, bottom, left, right = pad
    return layers.ZeroPadding2D(((top, bottom), (left, right)))(x), "valid"


def norm_act(x, act):
    return activation(act)(layers.BatchNormalization()(x))


def inverted_residual(x, filters, expansion, stride):
    cin = x.shape[-1]
    y = x
    if expansion != 1:
        y = norm_act(layers.Conv2D(cin * expansion, 1, use_bias=False)(y), "relu6")
    y = norm_act(layers.DepthwiseConv2D(3, stride, "same", use_bias=False)(y), "relu6")
    y = layers.BatchNormalization()(layers.Conv2D(filters, 1, use_bias=False)(y))
    return layers.Add()([x, y]) if stride == 1 and cin == filters else y


def conv_layer(x, kind, pos, o):
    stride, dil = o["stride"] or (1, 1), o["dilation"]
    act = o["act"] or "linear"
    x, pad = padded(x, o["padding"] or "same")
    k = dims(pos[-1])
    if kind == "conv":
        conv = layers.Conv2D(int(pos[0]), k, stride, pad, dilation_rate=dil, use_bias=o["bias"] is not False)
    elif kind == "dw":
        conv = layers.DepthwiseConv2D(k, stride, pad, depth_multiplier=o["m"], dilation_rate=dil,
                                      use_bias=o["bias"] is True)
    else:
        conv = layers.SeparableConv2D(int(pos[0]), k, stride, pad, depth_multiplier=o["m"], dilation_rate=dil,
                                      use_bias=o["bias"] is not False)
    return activation(act)(conv(x))


def apply(x, token):
    kind, pos, o = parse_layer(token)
    if kind in ("conv", "dw", "sep"):
        return conv_layer(x, kind, pos, o)
    if kind == "dwsep":
        s, act = (o["stride"] or (1, 1))[0], o["act"] or "relu"
        x = norm_act(layers.DepthwiseConv2D(3, s, "same", use_bias=False)(x), act)
        return norm_act(layers.Conv2D(int(pos[0]), 1, use_bias=False)(x), act)
    if kind == "ir":
        return inverted_residual(x, int(pos[0]), o["e"], (o["stride"] or (1, 1))[0])
    if kind == "bn":
        return layers.BatchNormalization()(x)
    if kind in ("relu", "relu6", "linear"):
        return activation(kind)(x)
    if kind in ("maxpool", "avgpool", "pool"):
        k = dims(pos[0]) if pos else (2, 2)
        pool = layers.AveragePooling2D if kind == "avgpool" else layers.MaxPooling2D
        return pool(k, o["stride"] or k, o["padding"] or "valid")(x)
    if kind == "gap":
        return layers.GlobalAveragePooling2D()(x)
    if kind == "flatten":
        return layers.Flatten()(x)
    if kind == "dense":
        return activation(o["act"] or "linear")(layers.Dense(int(pos[0]), use_bias=o["bias"] is not False)(x))
    if kind == "dropout":
        return layers.Dropout(float(pos[0]))(x)
    raise ValueError(f"unknown layer {kind}")


def build(spec_text, input_hwc):
    inputs = keras.Input(shape=tuple(input_hwc))
    x = inputs
    for token in spec_text.split(","):
        x = apply(x, token)
    return keras.Model(inputs, x)


def timed(fn, warmup, steps):
    seconds = []
    for i in range(warmup + steps):
        started = time.perf_counter()
        fn()
        if i >= warmup:
            seconds.append(time.perf_counter() - started)
    return timing(seconds)


def bench(model, args):
    net = build(model["spec"], model["input"])
    if net.count_params() != model["params"]:
        sys.exit(f"{model['name']}: the Keras network has {net.count_params()} params, sepnet "
                 f"{model['params']}; refusing to compare different networks")
    rng = np.random.default_rng(args.seed)
    x = rng.standard_normal((args.batch_size, *model["input"]), dtype=np.float32)
    y = rng.integers(0, model["classes"], args.batch_size)
    net.compile(optimizer=keras.optimizers.Adam(1e-3),
                loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    started = time.perf_counter()
    net.train_on_batch(x, y)
    first = (time.perf_counter() - started) * 1e3
    step = timed(lambda: net.train_on_batch(x, y), args.warmup, args.steps)
    fwd = timed(lambda: net.predict_on_batch(x), max(args.warmup, 1), args.steps)
    b = args.batch_size
    return {
        "model": model["name"], "backend": "keras-tensorflow-cpu", "batch_size": b,
        "params": model["params"], "macs": model["macs"], "steps": args.steps,
        "forward_ms": fwd["median_ms"], "forward": fwd,
        "train_step_ms": step["median_ms"], "train_step": step, "first_step_ms": first,
        "forward_images_per_s": b / (fwd["median_ms"] / 1e3),
        "train_images_per_s": b / (step["median_ms"] / 1e3),
        "keras": keras.__version__, "tensorflow": __import__("tensorflow").__version__,
    }


def main():
    args = arguments(__doc__).parse_args()
    keras.utils.set_random_seed(args.seed)
    print(json.dumps([bench(model, args) for model in selected_models(args)], indent=2))


if __name__ == "__main__":
    main()
