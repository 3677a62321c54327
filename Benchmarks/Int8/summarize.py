#!/usr/bin/env python3
"""Medians and target ratios of a Benchmarks/Int8/compare.sh log: python3 summarize.py LOG.jsonl"""
import json, statistics, sys
from collections import defaultdict

rows = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
lat = defaultdict(list)   # (who, precision, isa/kernels, threads) -> batch-1 median µs per round
thr = defaultdict(list)   # same key -> batch-256 images/s per round
cpulat = defaultdict(list)   # 1-thread Loupe rows: the calling thread's CPU time per call (steady under other load)
cputhr = defaultdict(list)
acc = {}
loads = []
for d in rows:
    if d["event"] == "int8_infer":
        key = ("loupe", d["precision"], d["kernels"], d["threads"])
    elif d["event"] == "ort_infer":
        key = ("ort", d["precision"], "onnxruntime " + d["onnxruntime"], d["threads"])
    elif d["event"] in ("int8_accuracy", "ort_accuracy"):
        acc[(d["who"], d["precision"])] = d["test_accuracy"]
        continue
    else:
        continue
    lat[key].append(d["batch1_median_us"])
    thr[key].append(d["batch256_img_per_s"])
    if "batch1_cpu_median_us" in d:
        cpulat[key].append(d["batch1_cpu_median_us"])
        cputhr[key].append(d["batch256_cpu_img_per_s"])
    if "loadavg1" in d:
        loads.append(d["loadavg1"])

med = lambda v: statistics.median(v)
print("| who | precision | kernels | threads | batch 1 median µs | batch 256 img/s | rounds |")
print("|---|---|---|---|---|---|---|")
for k in sorted(lat):
    print(f"| {k[0]} | {k[1]} | {k[2]} | {k[3]} | {med(lat[k]):.1f} | {med(thr[k]):,.0f} | {len(lat[k])} |")
print()
print("accuracy (10,000 test images): " + ", ".join(f"{w} {p} {a}" for (w, p), a in sorted(acc.items())))
if loads:
    print(f"1-min load average at the measurements: median {med(loads):g} (min {min(loads):g}, max {max(loads):g})")
print()


def ratio(a, b, what):
    if a not in lat or b not in lat:
        return None
    if what == "latency":
        return med(lat[a]) / med(lat[b])
    return med(thr[a]) / med(thr[b])


print("| target | threads | ratio | target | met |")
print("|---|---|---|---|---|")
checks = []
for t in (1, 2):
    ort8 = next((k for k in lat if k[0] == "ort" and k[1] == "int8" and k[3] == t), None)
    checks += [
        (f"int8 avx512vnni / fp32 avx512, batch-1 latency", t, ("loupe", "int8", "avx512vnni", t), ("loupe", "fp32", "avx512", t), "latency", "<=", 0.4),
        (f"int8 avx512vnni / fp32 avx512, batch-256 throughput", t, ("loupe", "int8", "avx512vnni", t), ("loupe", "fp32", "avx512", t), "throughput", ">=", 3.0),
        (f"int8 avxvnni / fp32 avx2 (an AVX-VNNI CPU without AVX-512), batch-1 latency", t, ("loupe", "int8", "avxvnni", t), ("loupe", "fp32", "avx2", t), "latency", "<=", 0.4),
        (f"int8 avxvnni / fp32 avx2, batch-256 throughput", t, ("loupe", "int8", "avxvnni", t), ("loupe", "fp32", "avx2", t), "throughput", ">=", 3.0),
        (f"int8 avx2 / fp32 avx2 (forced), batch-1 latency", t, ("loupe", "int8", "avx2", t), ("loupe", "fp32", "avx2", t), "latency", "<=", 0.4),
        (f"int8 avx2 / fp32 avx2 (forced), batch-256 throughput", t, ("loupe", "int8", "avx2", t), ("loupe", "fp32", "avx2", t), "throughput", ">=", 2.0),
    ]
    if ort8:
        checks += [
            (f"Loupe int8 (avx512vnni) / ORT int8, batch-256 throughput", t, ("loupe", "int8", "avx512vnni", t), ort8, "throughput", ">=", 1.5),
            (f"Loupe int8 (avx512vnni) / ORT int8, batch-1 latency", t, ("loupe", "int8", "avx512vnni", t), ort8, "latency", "<=", 0.7),
            (f"Loupe int8 (avx2) / ORT int8, batch-256 throughput", t, ("loupe", "int8", "avx2", t), ort8, "throughput", ">=", 1.5),
            (f"Loupe int8 (avx2) / ORT int8, batch-1 latency", t, ("loupe", "int8", "avx2", t), ort8, "latency", "<=", 0.7),
        ]
for name, t, a, b, what, op, goal in checks:
    r = ratio(a, b, what)
    if r is None:
        continue
    ok = r <= goal if op == "<=" else r >= goal
    print(f"| {name} | {t} | {r:.2f}× | {op} {goal}× | {'yes' if ok else 'no'} |")

if cpulat:
    # The same Loupe figures by thread CPU time (1 thread): what to read when the machine was not quiet.
    print()
    print("By this thread's CPU time per call (1 thread, Loupe):")
    print("| precision | kernels | batch 1 median µs | batch 256 img/s |")
    print("|---|---|---|---|")
    for k in sorted(cpulat):
        print(f"| {k[1]} | {k[2]} | {med(cpulat[k]):.1f} | {med(cputhr[k]):,.0f} |")
    print()
    print("| target (CPU time) | ratio | target | met |")
    print("|---|---|---|---|")
    for name, t, a, b, what, op, goal in checks:
        if t != 1 or a not in cpulat or b not in cpulat:
            continue
        r = med(cpulat[a]) / med(cpulat[b]) if what == "latency" else med(cputhr[a]) / med(cputhr[b])
        ok = r <= goal if op == "<=" else r >= goal
        print(f"| {name} | {r:.2f}× | {op} {goal}× | {'yes' if ok else 'no'} |")
