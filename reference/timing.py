"""Summaries of repeated timings, shaped like `sepnet bench --json`'s."""

import statistics


def timing(seconds):
    """Median, min, max and nearest-rank 90th / 99th percentiles, in milliseconds."""
    ms = sorted(s * 1e3 for s in seconds)
    rank = lambda p: ms[max(1, min(len(ms), -(-p * len(ms) // 100))) - 1]  # noqa: E731
    return {"median_ms": statistics.median(ms), "min_ms": ms[0], "max_ms": ms[-1],
            "p90_ms": rank(90), "p99_ms": rank(99)}
