"""PyTorch twins of sepnet's networks, built independently from sepnet's spec text.

Used to verify sepnet's parameter counts, MACs and output shapes against a second framework,
and (issue: speed) as the side-by-side timing reference.

    sepnet models --json | python3 reference/torch_models.py verify

prints, for every model, PyTorch's params / non-trainable buffers / MACs / per-layer output
shapes next to sepnet's and exits non-zero on any mismatch.
"""

import json
import math
import sys
from collections import OrderedDict

import torch
from torch import nn
import torch.nn.functional as F

from spec_text import dims, parse_layer, same_pads


class Pad2d(nn.Module):
    """Applies 'same' / 'valid' / explicit padding for a window, computed from the input size."""

    def __init__(self, padding, kernel, stride, dilation):
        super().__init__()
        self.padding, self.kernel, self.stride, self.dilation = padding, kernel, stride, dilation

    def forward(self, x):
        if self.padding == "valid":
            return x
        if self.padding == "same":
            top, bottom = same_pads(x.shape[2], self.kernel[0], self.stride[0], self.dilation[0])
            left, right = same_pads(x.shape[3], self.kernel[1], self.stride[1], self.dilation[1])
        else:
            top, bottom, left, right = self.padding
        return F.pad(x, (left, right, top, bottom))


class Act(nn.Module):
    def __init__(self, name):
        super().__init__()
        self.name = name

    def forward(self, x):
        if self.name == "gelu":
            return F.gelu(x)  # exact (erf), as sepnet and Keras's gelu(approximate=False)
        act = ACTIVATIONS.get(self.name)
        return act(x) if act else x


# sepnet's activation names (swish = silu) as PyTorch functions; hard sigmoid is relu6(x+3)/6
# in both (ONNX's HardSigmoid default slope 0.2 is not used).
ACTIVATIONS = {"relu": F.relu, "relu6": F.relu6, "sigmoid": torch.sigmoid, "tanh": torch.tanh,
               "silu": F.silu, "swish": F.silu, "hardswish": F.hardswish, "hardsigmoid": F.hardsigmoid}


class SqueezeExcite(nn.Module):
    """`se:R`: global average pool -> 1x1 conv to R x channels (or R channels) -> activation ->
    1x1 conv back -> gate -> scales each input channel."""

    def __init__(self, channels, squeeze, act, gate):
        super().__init__()
        squeezed = max(1, math.floor(channels * float(squeeze))) if "." in squeeze else int(squeeze)
        self.reduce = nn.Conv2d(channels, squeezed, 1)
        self.expand = nn.Conv2d(squeezed, channels, 1)
        self.act, self.gate = Act(act), Act(gate)

    def forward(self, x):
        s = x.mean(dim=(2, 3), keepdim=True)
        return x * self.gate(self.expand(self.act(self.reduce(s))))


def make_divisible(v):
    rounded = max(8, int(v + 4) // 8 * 8)
    return rounded + 8 if rounded < 0.9 * v else rounded


class MobileBlock(nn.Module):
    """MobileNet v3's bneck and EfficientNet's MBConv: [expand 1x1 -> BN -> act] -> dw KxK ->
    BN -> act -> [squeeze-and-excitation] -> project 1x1 -> BN, plus the input when the stride
    is 1 and the channels match. `se`: (squeezed channels, activation, gate) or None."""

    def __init__(self, shape, filters, expanded, kernel, stride, act, se):
        super().__init__()
        cin = shape[0]
        self.residual = stride == 1 and cin == filters
        self.has_expand = expanded != cin
        if self.has_expand:
            self.expand = nn.Conv2d(cin, expanded, 1, bias=False)
            self.bn_expand = nn.BatchNorm2d(expanded)
        pads, p = padding("same", shape, (kernel, kernel), (stride, stride), (1, 1))
        self.pad = nn.Sequential(*pads)
        self.dw = nn.Conv2d(expanded, expanded, kernel, stride, p, groups=expanded, bias=False)
        self.bn_dw = nn.BatchNorm2d(expanded)
        self.se = SqueezeExcite(expanded, str(se[0]), se[1], se[2]) if se else None
        self.project = nn.Conv2d(expanded, filters, 1, bias=False)
        self.bn_project = nn.BatchNorm2d(filters)
        self.act = Act(act)

    def forward(self, x):
        y = self.act(self.bn_expand(self.expand(x))) if self.has_expand else x
        y = self.act(self.bn_dw(self.dw(self.pad(y))))
        if self.se is not None:
            y = self.se(y)
        y = self.bn_project(self.project(y))
        return y + x if self.residual else y


class InvertedResidual(nn.Module):
    """MobileNet v2's block: [expand 1x1 -> BN -> ReLU6] -> dw 3x3 -> BN -> ReLU6 -> project
    1x1 -> BN, plus the input when the stride is 1 and the channels match."""

    def __init__(self, shape, filters, expansion, stride):
        super().__init__()
        cin = shape[0]
        mid = cin * expansion
        self.residual = stride == 1 and cin == filters
        self.has_expand = expansion != 1
        if self.has_expand:
            self.expand = nn.Conv2d(cin, mid, 1, bias=False)
            self.bn_expand = nn.BatchNorm2d(mid)
        pads, p = padding("same", shape, (3, 3), (stride, stride), (1, 1))
        self.pad = nn.Sequential(*pads)
        self.dw = nn.Conv2d(mid, mid, 3, stride, p, groups=mid, bias=False)
        self.bn_dw = nn.BatchNorm2d(mid)
        self.project = nn.Conv2d(mid, filters, 1, bias=False)
        self.bn_project = nn.BatchNorm2d(filters)

    def forward(self, x):
        y = F.relu6(self.bn_expand(self.expand(x))) if self.has_expand else x
        y = F.relu6(self.bn_dw(self.dw(self.pad(y))))
        y = self.bn_project(self.project(y))
        return y + x if self.residual else y


def padding(pad, shape, kernel, stride, dilation):
    """(modules before the conv, the conv's own padding): symmetric 'same' padding goes into
    the convolution as a PyTorch user would write it; asymmetric padding needs a Pad2d."""
    if pad == "same":
        top, bottom = same_pads(shape[1], kernel[0], stride[0], dilation[0])
        left, right = same_pads(shape[2], kernel[1], stride[1], dilation[1])
        if top == bottom and left == right:
            return [], (top, left)
    elif pad == "valid":
        return [], 0
    return [Pad2d(pad, kernel, stride, dilation)], 0


def build(spec_text, input_hwc):
    """Returns (list of (name, module) top-level layers, final shape)."""
    h, w, c = input_hwc
    shape = [c, h, w]
    layers = []
    for token in spec_text.split(","):
        kind, pos, o = parse_layer(token)
        stride = o["stride"] or (1, 1)
        pad = o["padding"] or "same"
        act = o["act"] or "linear"
        if kind in ("conv", "dw", "sep"):
            k = dims(pos[-1])
            dil = o["dilation"]
            mods, p = padding(pad, shape, k, stride, dil)
            cin = shape[0]
            parts = [("pad", nn.Sequential(*mods))]
            if kind == "conv":
                parts.append(("conv", nn.Conv2d(cin, int(pos[0]), k, stride, p, dil, bias=o["bias"] is not False)))
            elif kind == "dw":
                parts.append(("dw", nn.Conv2d(cin, cin * o["m"], k, stride, p, dil, groups=cin, bias=o["bias"] is True)))
            else:
                parts.append(("dw", nn.Conv2d(cin, cin * o["m"], k, stride, p, dil, groups=cin, bias=False)))
                parts.append(("pw", nn.Conv2d(cin * o["m"], int(pos[0]), 1, bias=o["bias"] is not False)))
            parts.append(("act", Act(act)))
            layer = nn.Sequential(OrderedDict(parts))
        elif kind == "dwsep":
            cin, f = shape[0], int(pos[0])
            s = stride[0]
            a = o["act"] or "relu"
            mods, p = padding("same", shape, (3, 3), (s, s), (1, 1))
            layer = nn.Sequential(OrderedDict([
                ("pad", nn.Sequential(*mods)),
                ("dw", nn.Conv2d(cin, cin, 3, s, p, groups=cin, bias=False)),
                ("bn_dw", nn.BatchNorm2d(cin)), ("act_dw", Act(a)),
                ("pw", nn.Conv2d(cin, f, 1, bias=False)), ("bn_pw", nn.BatchNorm2d(f)), ("act_pw", Act(a)),
            ]))
        elif kind == "ir":
            layer = InvertedResidual(shape, int(pos[0]), o["e"], stride[0])
        elif kind == "bneck":
            f, x, k = (int(v) for v in pos)
            se = (make_divisible(x * o["se"]), "relu", "hardsigmoid") if o["se"] else None
            layer = MobileBlock(shape, f, x, k, stride[0], o["act"] or "relu", se)
        elif kind == "mbconv":
            f, k = (int(v) for v in pos)
            a = o["act"] or "silu"
            se = (max(1, int(shape[0] * o["se"])), a, "sigmoid") if o["se"] else None
            layer = MobileBlock(shape, f, shape[0] * o["e"], k, stride[0], a, se)
        elif kind == "se":
            layer = SqueezeExcite(shape[0], pos[0], o["act"] or "relu", o["gate"] or "sigmoid")
        elif kind == "bn":
            bn = nn.BatchNorm2d(shape[0]) if len(shape) == 3 else nn.BatchNorm1d(shape[0])
            layer = nn.Sequential(OrderedDict([("bn", bn)]))
        elif kind in ("linear", "gelu", *ACTIVATIONS):
            layer = Act(kind)
        elif kind in ("maxpool", "avgpool", "pool"):
            k = dims(pos[0]) if pos else (2, 2)
            s = o["stride"] or k
            p = o["padding"] or "valid"
            pool = nn.MaxPool2d(k, s) if kind != "avgpool" else nn.AvgPool2d(k, s, count_include_pad=False)
            if p == "valid":
                layer = pool
            else:
                # 'same' pooling pads with -inf (max) / excludes padding (avg); rare in specs.
                raise NotImplementedError("padded pooling in the reference")
        elif kind == "gap":
            layer = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten())
        elif kind == "flatten":
            layer = nn.Flatten()
        elif kind == "dense":
            fc = nn.Linear(shape[0], int(pos[0]), bias=o["bias"] is not False)
            layer = nn.Sequential(OrderedDict([("fc", fc), ("act", Act(act))]))
        elif kind == "dropout":
            layer = nn.Dropout(float(pos[0]))
        else:
            raise ValueError(f"unknown layer {kind}")
        with torch.no_grad():
            shape = list(layer.eval()(torch.zeros(1, *shape)).shape[1:])
        layers.append((token, layer))
    return layers, shape


class Twin(nn.Module):
    """A whole network: its layers as `layers.<i>`, the names sepnet's safetensors export uses."""

    def __init__(self, spec_text, input_hwc):
        super().__init__()
        built, _ = build(spec_text, input_hwc)
        self.layers = nn.ModuleList([m for _, m in built])

    def forward(self, x):
        for layer in self.layers:
            x = layer(x)
        return x


def hwc(shape):
    return [shape[1], shape[2], shape[0]] if len(shape) == 3 else list(shape)


def measure(spec_text, input_hwc):
    """params, non-trainable buffers, MACs (conv/linear hooks) and per-layer output shapes."""
    layers, _ = build(spec_text, input_hwc)
    net = nn.Sequential(*[m for _, m in layers]).eval()
    macs = 0

    def hook(module, inputs, output):
        nonlocal macs
        if isinstance(module, nn.Conv2d):
            kh, kw = module.kernel_size
            macs += output.shape[2] * output.shape[3] * kh * kw * (module.in_channels // module.groups) * module.out_channels
        elif isinstance(module, nn.Linear):
            macs += module.in_features * module.out_features

    for m in net.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            m.register_forward_hook(hook)
    h, w, c = input_hwc
    x = torch.zeros(1, c, h, w)
    shapes = []
    with torch.no_grad():
        for _, layer in layers:
            x = layer(x)
            shapes.append(hwc(list(x.shape[1:])))
    trainable = sum(p.numel() for p in net.parameters())
    buffers = sum(b.numel() for n, b in net.named_buffers() if "running" in n)
    return {"params": trainable + buffers, "trainable": trainable, "non_trainable": buffers,
            "macs": macs, "shapes": shapes}


def verify(models):
    failures = 0
    for m in models:
        r = measure(m["spec"], m["input"])
        ok = r["params"] == m["params"] and r["macs"] == m["macs"]
        failures += not ok
        print(f"{m['name']:<26} torch params {r['params']:>11,} (non-trainable {r['non_trainable']:,})"
              f"  MACs {r['macs']:>14,}  output {r['shapes'][-1]}  {'OK' if ok else 'MISMATCH sepnet: ' + str((m['params'], m['macs']))}")
    return failures


def twin_check(path):
    """Loads sepnet's inverted residual blocks (weights, input, output and gradients in
    training mode, written by `cargo run -p sepnet-model --example twin_check`) into the twin
    and compares forward and backward."""
    worst = 0.0
    for case in json.load(open(path)):
        t = lambda v: torch.tensor(v["data"], dtype=torch.float64).reshape(v["shape"])
        (layer,), _ = build(case["layer"], case["input_hwc"])[0][:1], None
        block = layer[1].double().train()
        convs = [m for m in block.modules() if isinstance(m, nn.Conv2d)]
        norms = [m for m in block.modules() if isinstance(m, nn.BatchNorm2d)]
        with torch.no_grad():
            for conv, w in zip(convs, case["convs"]):
                conv.weight.copy_(t(w["w"]))
            for bn, p in zip(norms, case["norms"]):
                bn.weight.copy_(t(p["gamma"]))
                bn.bias.copy_(t(p["beta"]))
        x = t(case["x"]).requires_grad_(True)
        y = block(x)
        (y * t(case["g"])).sum().backward()
        pairs = [("output", y, t(case["y"])), ("input gradient", x.grad, t(case["dx"]))]
        pairs += [(f"conv {i} weight gradient", c.weight.grad, t(w["dw"])) for i, (c, w) in enumerate(zip(convs, case["convs"]))]
        for what, torch_value, sepnet_value in pairs:
            err = ((torch_value - sepnet_value).abs().max() / sepnet_value.abs().max().clamp(min=1e-12)).item()
            worst = max(worst, err)
            print(f"{case['layer']:<12} {what:<24} max |torch - sepnet| / max |sepnet| = {err:.2e}")
    print(f"worst relative difference {worst:.2e}")
    return worst < 1e-4


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "twin-check":
        sys.exit(0 if twin_check(sys.argv[2]) else 1)
    if len(sys.argv) > 1 and sys.argv[1] == "verify":
        sys.exit(1 if verify(json.load(sys.stdin)) else 0)
    elif len(sys.argv) > 1 and sys.argv[1] == "shapes":
        # shapes SPEC H W C : per-layer output shapes as JSON
        print(json.dumps(measure(sys.argv[2], [int(v) for v in sys.argv[3:6]])))
    else:
        print(__doc__)
