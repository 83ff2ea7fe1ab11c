"""sepnet's spec text, parsed for the reference implementations (PyTorch and Keras alike)."""

import math


def dims(text):
    h, _, w = text.partition("x")
    return (int(h), int(w or h))


def same_pads(size, kernel, stride, dilation):
    """TensorFlow 'same': out = ceil(in / stride), extra padding at the end."""
    out = math.ceil(size / stride)
    span = (kernel - 1) * dilation + 1
    total = max((out - 1) * stride + span - size, 0)
    return total // 2, total - total // 2


def parse_layer(token):
    parts = token.split(":")
    kind, args = parts[0], parts[1:]
    positional = [a for a in args if a[:1].isdigit() or a[:1] == "."]
    opts = {"stride": None, "dilation": (1, 1), "padding": None, "m": 1, "e": 6, "bias": None, "act": None,
            "gate": None, "se": None}
    for a in args:
        if a in positional:
            continue
        if "=" in a:
            k, v = a.split("=")
            if k == "s":
                opts["stride"] = dims(v)
            elif k == "d":
                opts["dilation"] = dims(v)
            elif k == "m":
                opts["m"] = int(v)
            elif k == "e":
                opts["e"] = int(v)
            elif k == "gate":
                opts["gate"] = v
            elif k == "se":
                opts["se"] = float(v)
            elif k == "pad":
                p = [int(x) for x in v.split("/")]
                opts["padding"] = tuple(p * 4 if len(p) == 1 else p)
        elif a in ("same", "valid"):
            opts["padding"] = a
        elif a in ("bias", "nobias"):
            opts["bias"] = a == "bias"
        elif a in ("relu", "relu6", "linear", "sigmoid", "tanh", "silu", "swish", "hardswish", "hardsigmoid", "gelu"):
            opts["act"] = a
    return kind, positional, opts
