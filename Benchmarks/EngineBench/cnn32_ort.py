#!/usr/bin/env python3
"""ONNX Runtime (CPU EP) on the 32×32×3 `cifar_bn` CNN of the ONNX import tests
(Tests/EndToEndTests/python/onnx_import_check.py) — the counterpart of `loupe-engine-bench cnn32`.
Seeded random weights and inputs (speed does not depend on them); ORT folds the BatchNorms itself.
For intra_op_num_threads 1 and 2 (sequential, inter_op 1): batch-1 median/p99 µs over --n1 calls
(after 500 warm-up calls, cycling 100 images) and batch-256 images/s from the median of --n256 calls,
with the process CPU time per call (for 1 thread: the time on a core, whatever else the machine runs).

Usage: python3 cnn32_ort.py [--n1 5000] [--n256 100]   -> JSON lines
"""
import argparse
import importlib.util
import json
import os
import tempfile
import time

import numpy as np
import onnxruntime as ort

HERE = os.path.dirname(os.path.abspath(__file__))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--n1", type=int, default=5000)
    ap.add_argument("--n256", type=int, default=100)
    args = ap.parse_args()
    spec = importlib.util.spec_from_file_location(
        "onnx_import_check", os.path.join(HERE, "..", "..", "Tests", "EndToEndTests", "python", "onnx_import_check.py"))
    builder = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(builder)
    path = os.path.join(tempfile.mkdtemp(), "cifar_bn.onnx")
    builder.cifar_bn(path)
    x = np.random.default_rng(1).random((256, 3, 32, 32), dtype=np.float32)
    singles = [x[i:i + 1] for i in range(100)]
    for threads in (1, 2):
        so = ort.SessionOptions()
        so.intra_op_num_threads = threads
        so.inter_op_num_threads = 1
        so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        sess = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
        name = sess.get_inputs()[0].name
        for i in range(500):
            sess.run(None, {name: singles[i % 100]})
        lat = []
        c0 = time.process_time()
        for i in range(args.n1):
            t0 = time.perf_counter()
            sess.run(None, {name: singles[i % 100]})
            lat.append(time.perf_counter() - t0)
        cpu1 = (time.process_time() - c0) / args.n1
        for _ in range(10):
            sess.run(None, {name: x})
        big = []
        c0 = time.process_time()
        for _ in range(args.n256):
            t0 = time.perf_counter()
            sess.run(None, {name: x})
            big.append(time.perf_counter() - t0)
        cpu256 = (time.process_time() - c0) / args.n256
        print(json.dumps({"event": "cnn32_ort", "threads": threads,
                          "batch1_median_us": round(float(np.median(lat)) * 1e6, 1),
                          "batch1_p99_us": round(float(np.percentile(lat, 99)) * 1e6, 1),
                          "batch1_cpu_us_per_call": round(cpu1 * 1e6, 1),
                          "batch256_img_per_s": round(256 / float(np.median(big))),
                          "batch256_min_ms": round(float(np.min(big)) * 1e3, 3),
                          "batch256_cpu_ms_per_call": round(cpu256 * 1e3, 3),
                          "loadavg1": float(open("/proc/loadavg").read().split()[0])}), flush=True)


if __name__ == "__main__":
    main()
