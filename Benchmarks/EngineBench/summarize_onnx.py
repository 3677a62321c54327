#!/usr/bin/env python3
"""Summary of a compare_onnx.sh log: python3 summarize_onnx.py LOG.jsonl

Per network (imported seed, 32x32x3 CNN), thread count and Loupe ISA path: the median over the rounds of
each round's figure, Loupe and ONNX Runtime side by side, and the ratio with issue 11's target:
  batch-1 median latency, 1 thread:     Loupe / ORT  <= 0.8
  batch-256 images/s, 1 and 2 threads:  Loupe / ORT  >= 1.3
Wall-clock figures alternate with ORT in every round, so both see the same load; the "CPU" rows use CPU time
per call (1 thread: time on a core), which other load on a shared machine barely moves.
"""
import json
import statistics
import sys
from collections import defaultdict

rows = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
med = statistics.median
peak = {}       # isa -> [peak GFLOP/s of the run]
cpu = set()
loupe = defaultdict(list)   # (net, isa, threads, figure) -> values
ort = defaultdict(list)     # (net, threads, figure) -> values
for d in rows:
    if d["who"] == "loupe":
        if d["event"] == "fma_peak":
            peak.setdefault(d["kernels"], []).append(d["peak_gflops_1thread"])
            cpu.add(d["cpu"])
        elif d["event"] in ("infer", "cnn32"):
            key = (d["net"], d["kernels"], d["threads"])
            for f in ("batch1_median_us", "batch1_cpu_us_per_call", "batch256_img_per_s", "batch256_cpu_ms_per_call",
                      "batch256_pct_of_peak", "mflop_per_image"):
                loupe[key + (f,)].append(d[f])
    elif d["who"] == "ort":
        if d["net"] == "seed" and d["event"] == "latency" and d["config"] in ("intra1", "intra2"):
            t = d["intra_op_num_threads"]
            if d["batch"] == 1:
                ort[("seed", t, "batch1_median_us")].append(d["median_us"])
                ort[("seed", t, "batch1_cpu_us_per_call")].append(d["mean_us"] * d["cpu_util_cores"])
            else:
                ort[("seed", t, "batch256_img_per_s")].append(d["images_per_s"])
                ort[("seed", t, "batch256_cpu_ms_per_call")].append(d["mean_us"] * d["cpu_util_cores"] / 1e3)
        elif d["net"] == "cnn32" and d["event"] == "cnn32_ort":
            t = d["threads"]
            for f in ("batch1_median_us", "batch1_cpu_us_per_call", "batch256_img_per_s", "batch256_cpu_ms_per_call"):
                if f in d:
                    ort[("cnn32", t, f)].append(d[f])

print(f"CPU: {', '.join(sorted(cpu)) or 'unknown'}; measured 1-thread FMA peak (median over runs): "
      + ", ".join(f"{k} {med(v):.0f} GFLOP/s" for k, v in sorted(peak.items())))
loads = [d["loadavg1"] for d in rows if "loadavg1" in d]
if loads:
    print(f"1-minute load average during the run: median {med(loads):.1f} (min {min(loads):.1f}, max {max(loads):.1f})")
names = {"seed": "imported seed network (model.onnx via loupe import)", "cnn32": "32x32x3 CNN (cifar_bn graph)"}
for net in ("seed", "cnn32"):
    isas = sorted({k[1] for k in loupe if k[0] == net})
    if not isas:
        continue
    print(f"\n{names[net]}")
    print(f"  {'figure':44} {'Loupe':>10} {'ORT':>10} {'ratio':>7}  target")
    for isa in isas:
        for t in (1, 2):
            def L(f):
                v = loupe.get((net, isa, t, f))
                return med(v) if v else None
            def O(f):
                v = ort.get((net, t, f))
                return med(v) if v else None
            def line(label, lv, ov, target=None, better_low=False):
                if lv is None:
                    return
                ratio = lv / ov if ov else None
                mark = ""
                if target is not None and ratio is not None:
                    ok = ratio <= target if better_low else ratio >= target
                    mark = f"{'<=' if better_low else '>='} {target}  {'met' if ok else 'NOT met'}"
                print(f"  {label:44} {lv:10.1f} {ov if ov is not None else float('nan'):10.1f} "
                      f"{ratio if ratio is not None else float('nan'):6.2f}x  {mark}")
            n = len(loupe.get((net, isa, t, "batch1_median_us"), []))
            print(f"  -- Loupe {isa}, {t} thread(s), {n} round(s); ORT intra_op {t}")
            if t == 1:
                line("batch-1 median latency, us", L("batch1_median_us"), O("batch1_median_us"), 0.8, True)
                line("batch-1 CPU us per call", L("batch1_cpu_us_per_call"), O("batch1_cpu_us_per_call"), 0.8, True)
            line("batch-256 img/s (median call)", L("batch256_img_per_s"), O("batch256_img_per_s"), 1.3)
            lc, oc = L("batch256_cpu_ms_per_call"), O("batch256_cpu_ms_per_call")
            if lc and t == 1:
                line("batch-256 img/s of CPU time (256 / CPU per call)", 256 / lc * 1e3, 256 / oc * 1e3 if oc else None, 1.3)
            p = L("batch256_pct_of_peak")
            if p is not None and t == 1 and lc:
                mf = L("mflop_per_image")
                g = 256 * mf * 1e-3 / (lc * 1e-3)
                pk = med(peak.get(isa, [0])) or float("nan")
                print(f"  {'batch-256 GFLOP/s, % of peak (CPU time)':44} {g:10.1f} {'':>10} {100 * g / pk:6.1f}%  ({mf:.2f} MFLOP/image)")
