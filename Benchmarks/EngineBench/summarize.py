#!/usr/bin/env python3
"""Medians of the figures in a compare.sh log: python3 summarize.py LOG.jsonl"""
import json, statistics, sys
from collections import defaultdict

rows = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
fig = defaultdict(list)
for d in rows:
    if d["who"] == "loupe" and d["event"] == "infer":
        t = d["threads"]
        fig[f"loupe batch-1 median us, {t} thread(s)"].append(d["batch1_median_us"])
        fig[f"loupe batch-256 img/s, {t} thread(s)"].append(d["batch256_img_per_s"])
        fig[f"loupe batch-256 best call img/s, {t} thread(s)"].append(round(256 / d["batch256_min_ms"] * 1e3))
        fig[f"loupe batch-256 CPU ms per call, {t} thread(s)"].append(d["batch256_cpu_ms_per_call"])
    elif d["who"] == "ort" and d["event"] == "latency":
        cfg = d["config"]
        if d["batch"] == 1:
            fig[f"ORT batch-1 median us, {cfg}"].append(d["median_us"])
        else:
            fig[f"ORT batch-256 img/s, {cfg}"].append(d["images_per_s"])
            fig[f"ORT batch-256 best call img/s, {cfg}"].append(round(256 / d["min_us"] * 1e6))
    elif d["who"] == "loupe" and d["event"] == "train_summary":
        fig["loupe train median s/epoch (epochs 2-10), 2 threads"].append(d["median_epoch_s"])
        fig["loupe train total s (10 epochs)"].append(d["total_s"])
        fig["loupe train median CPU s/epoch (both threads)"].append(d["median_epoch_cpu_s"])
        fig["loupe test accuracy after 10 epochs"].append(d["test_accuracy"])
    if "loadavg1" in d:
        fig["1-min load average at each measurement"].append(d["loadavg1"])
for k in sorted(fig):
    v = fig[k]
    print(f"{k}: median {statistics.median(v):g}  (n={len(v)}, min {min(v):g}, max {max(v):g})")
