#!/usr/bin/env bash
# Issue 11's speed targets in one alternating run: Loupe vs ONNX Runtime (CPU EP) on
#   - the imported seed network: ../shared/anchors/ml/model.onnx through `loupe import` (its weights are
#     read back from the .loupe file by scripts/read_loupe.py and timed by `loupe-engine-bench infer`),
#     against the anchor's bench_ort.py on the same ONNX file;
#   - the 32×32×3 CNN of the ONNX import tests (`loupe-engine-bench cnn32` vs cnn32_ort.py).
# Each round runs, per ISA in ISAS: Loupe seed, ORT seed, Loupe cnn32, ORT cnn32 — so every ratio comes
# from measurements taken minutes apart under the same load.
#   bash Benchmarks/EngineBench/compare_onnx.sh                # ROUNDS=3, ISAS="native avx2"
# Env: ROUNDS (3); ISAS (native = the CPU's best table, avx2 = LOUPE_ISA=avx2); ANCHORS (../shared/anchors/ml);
#      OUT (JSONL log, /tmp/loupe-onnx-compare.jsonl); N1 (5000 batch-1 calls), N256 (300 seed / 100 cnn32 batch-256 calls).
# Prints per network, thread count and ISA: medians over the rounds of batch-1 median latency and batch-256
# images/s (wall, and from CPU time per call), the ratios to ORT with the targets (batch-1 ≤ 0.8× ORT,
# batch-256 ≥ 1.3× ORT), the CPU model, the ISA path and % of its measured FMA peak.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROUNDS=${ROUNDS:-3}
ISAS=${ISAS:-native avx2}
N1=${N1:-5000}
N256=${N256:-300}
ANCHORS=${ANCHORS:-$(cd .. && pwd)/shared/anchors/ml}
[ -d "$ANCHORS" ] || ANCHORS=/work/shared/anchors/ml
OUT=${OUT:-/tmp/loupe-onnx-compare.jsonl}
swift build -c release --product loupe-engine-bench >&2
swift build --product loupe >&2          # for `loupe import` only (its speed is not measured here)
BENCH=.build/release/loupe-engine-bench
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
.build/debug/loupe import "$ANCHORS/model.onnx" --output "$WORK/seed.loupe" >&2
python3 - "$WORK/seed.loupe" "$WORK/seed.f32" <<'PY'
import sys
sys.path.insert(0, "scripts")
import read_loupe
header, params, *_ = read_loupe.read(open(sys.argv[1], "rb").read())
kinds = [l["type"] for l in header["architecture"]["layers"]]
print(f"imported seed network: {len(params)} parameters, layers {kinds}", file=sys.stderr)
open(sys.argv[2], "wb").write(params.tobytes())
PY
: > "$OUT"
tag() { sed "s/^{/{\"round\": $1, \"who\": \"$2\", \"net\": \"$3\", \"isa\": \"$4\", /"; }
for r in $(seq "$ROUNDS"); do
  echo "== round $r $(date -u +%H:%M:%S) load $(cut -d' ' -f1-3 /proc/loadavg)" >&2
  for isa in $ISAS; do
    env_isa=(); [ "$isa" = native ] || env_isa=(LOUPE_ISA="$isa")
    env "${env_isa[@]}" "$BENCH" infer --reps 1 --weights "$WORK/seed.f32" --n1 "$N1" --n256 "$N256" | tag "$r" loupe seed "$isa" >> "$OUT"
  done
  python3 "$ANCHORS/bench_ort.py" --n1 "$N1" --n256 "$N256" --onnx "$ANCHORS/model.onnx" | grep -v '"event": "check"' | tag "$r" ort seed - >> "$OUT"
  for isa in $ISAS; do
    env_isa=(); [ "$isa" = native ] || env_isa=(LOUPE_ISA="$isa")
    env "${env_isa[@]}" "$BENCH" cnn32 --reps 1 --n1 "$N1" --n256 $((N256 / 3)) | tag "$r" loupe cnn32 "$isa" >> "$OUT"
  done
  python3 Benchmarks/EngineBench/cnn32_ort.py --n1 "$N1" --n256 $((N256 / 3)) | tag "$r" ort cnn32 - >> "$OUT"
done
python3 Benchmarks/EngineBench/summarize_onnx.py "$OUT"
