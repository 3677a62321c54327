#!/usr/bin/env bash
# The 32×32×3 CNN (issue 11's second benchmark network) in Loupe and ONNX Runtime, alternating per round.
#   bash Benchmarks/EngineBench/compare_cnn32.sh      # ROUNDS=3; OUT (JSONL log)
# Prints the medians over the rounds of batch-1 median latency and batch-256 images/s, 1 and 2 threads.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROUNDS=${ROUNDS:-3}
OUT=${OUT:-/tmp/loupe-cnn32-compare.jsonl}
swift build -c release --product loupe-engine-bench >&2
: > "$OUT"
for r in $(seq "$ROUNDS"); do
  echo "== round $r $(date -u +%H:%M:%S) load $(cut -d' ' -f1-3 /proc/loadavg)" >&2
  .build/release/loupe-engine-bench cnn32 --reps 1 >> "$OUT"
  python3 Benchmarks/EngineBench/cnn32_ort.py >> "$OUT"
done
python3 - "$OUT" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
for who, event in (("loupe", "cnn32"), ("ort", "cnn32_ort")):
    for t in (1, 2):
        sel = [r for r in rows if r["event"] == event and r["threads"] == t]
        if sel:
            kern = sel[0].get("kernels", "")
            print(f"{who:5} {kern:6} {t} thread(s): batch-1 median {statistics.median(r['batch1_median_us'] for r in sel):8.1f} us, "
                  f"batch-256 {statistics.median(r['batch256_img_per_s'] for r in sel):9.0f} img/s ({len(sel)} rounds)")
PY
