#!/usr/bin/env python3
"""Golden values for tests/calibrate.rs, computed by onnxruntime's own calibration code.

Run: pip install onnxruntime numpy && python3 scripts/golden/ort_calibration.py
It prints Rust table rows (f32 bit patterns). The batches come from the same integer
generator as tests/calibrate.rs `golden_batches`, so both sides see identical f32 data.
"""
import contextlib
import io

import numpy as np
from onnxruntime.quantization.calibrate import HistogramCollector

MASK = (1 << 64) - 1


def batches(seed, count, size, tail_every, base_shift):
    """LCG -> 24-bit signed ints -> exact f32 scaling by powers of two (no rounding)."""
    state = seed
    out = []
    for b in range(count):
        vals = []
        for _ in range(size):
            state = (state * 6364136223846793005 + 1442695040888963407) & MASK
            u = ((state >> 40) & 0xFFFFFF) - (1 << 23)
            x = np.float32(u) * np.float32(2.0 ** -(base_shift + 20))
            if tail_every and (state >> 8) % tail_every == 0:
                x = x * np.float32(16.0)
            vals.append(x)
        # later batches widen, so histogram merging paths are exercised
        out.append(np.array(vals, dtype=np.float32) * np.float32(1.0 + b))
    return out


CASES = [
    # name, seed, count, size, tail_every, base_shift
    ("uniform_one_batch", 1, 1, 4000, 0, 0),
    ("tails_three_batches", 2, 3, 3000, 97, 1),
    ("narrow_four_batches", 3, 4, 2000, 0, 4),
]


def bits(x):
    return "0x%08x" % np.float32(x).view(np.uint32)


def run(method, symmetric, bins, qbins, pct, data):
    c = HistogramCollector(method, symmetric, bins, qbins, pct, None)
    with contextlib.redirect_stdout(io.StringIO()):
        for b in data:
            c.collect({"t": b})
        r = c.compute_collection_result()["t"]
    return r[0], r[1]


for name, seed, count, size, tail, shift in CASES:
    data = batches(seed, count, size, tail, shift)
    rows = [
        ("percentile_sym", run("percentile", True, 2048, 128, 99.999, data)),
        ("percentile_sym_99", run("percentile", True, 2048, 128, 99.0, data)),
        ("percentile_asym_99", run("percentile", False, 2048, 128, 99.0, data)),
        ("entropy_2048_128", run("entropy", False, 2048, 128, 99.999, data)),
        ("entropy_512_64", run("entropy", False, 512, 64, 99.999, data)),
    ]
    mins = [np.min(b) for b in data]
    maxs = [np.max(b) for b in data]
    # MinMaxCalibrater(moving_average=True), one collect_data call: np.mean of the per-batch values
    rows.append(("ort_mean", (np.mean(np.array(mins, dtype=np.float32)), np.mean(np.array(maxs, dtype=np.float32)))))
    for label, (lo, hi) in rows:
        print(f'    ("{name}", "{label}", {bits(lo)}, {bits(hi)}),')
