"""What the reference benches share: their arguments (named as `sepnet bench` names them), the
models they time (from `sepnet models --json`) and the summary of repeated timings, shaped like
`sepnet bench --json`'s."""

import argparse
import json
import statistics
import sys


def arguments(doc):
    """The arguments every reference bench takes; a bench adds its own before parsing."""
    p = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models-json", required=True, help="output of `sepnet models --json`")
    p.add_argument("--models", default="mnist-full,vgg-full,vgg-separable,mobilenet")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--seed", type=int, default=42)
    return p


def selected_models(args):
    """The models `--models` names, as `sepnet models --json` describes them."""
    with open(args.models_json) as f:
        known = {m["name"]: m for m in json.load(f)}
    unknown = [name for name in args.models.split(",") if name not in known]
    if unknown:
        sys.exit(f"unknown model {unknown[0]!r}; the reference covers sepnet's built-ins: {', '.join(known)}")
    return [known[name] for name in args.models.split(",")]


def timing(seconds):
    """Median, min, max and nearest-rank 90th / 99th percentiles, in milliseconds."""
    ms = sorted(s * 1e3 for s in seconds)
    rank = lambda p: ms[max(1, min(len(ms), -(-p * len(ms) // 100))) - 1]  # noqa: E731
    return {"median_ms": statistics.median(ms), "min_ms": ms[0], "max_ms": ms[-1],
            "p90_ms": rank(90), "p99_ms": rank(99)}
