#!/usr/bin/env bash
# Int8 vs fp32 Loupe and Loupe int8 vs ONNX Runtime int8, alternating in one run (issue 15's targets).
#   bash Benchmarks/Int8/compare.sh          # ROUNDS=3 rounds of: loupe (avx512/VNNI), loupe (avxvnni), loupe (avx2), ORT
# Each Loupe run is `loupe-engine-bench int8` with LOUPE_ISA forcing one int8 GEMM/conv path (the fp32 model in the
# same process: avx512 kernels for avx512 and avxvnni, avx2 kernels for avx2); the model is the shipped
# models/fashion/1 (its fp32 weights, quantized in the bench as `loupe quantize` does: minmax, the first 1,000
# training images). ORT is Benchmarks/Int8/ort_int8.py: quantize_static (QDQ, per-channel int8 weights, uint8
# activations, MinMax, the same 1,000 images) of the seed network ../shared/anchors/ml/model.onnx.
# Env: ROUNDS (3), N1 (batch-1 calls, 3000), N256 (batch-256 calls, 100), ONNX (the ORT model), OUT (JSONL log).
# Summary: medians over the rounds and the ratios against the targets (Benchmarks/Int8/summarize.py); the 1-thread
# Loupe figures and ratios also by the calling thread's CPU time per call (steady when the machine is not quiet).
# Stage by stage (where the int8 time goes): python3 Benchmarks/Int8/stages.py.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROUNDS=${ROUNDS:-3}
N1=${N1:-3000}
N256=${N256:-100}
ONNX=${ONNX:-$(cd .. && pwd)/shared/anchors/ml/model.onnx}
[ -f "$ONNX" ] || ONNX=/work/shared/anchors/ml/model.onnx
OUT=${OUT:-/tmp/loupe-int8-compare.jsonl}
swift build -c release --product loupe-engine-bench >&2
BENCH=.build/release/loupe-engine-bench
WEIGHTS=$(mktemp /tmp/loupe-int8-weights.XXXXXX)
trap 'rm -f "$WEIGHTS"' EXIT
# The float32 tensors of a format-1 .loupe file: 16-byte preamble, JSON header, zero padding to 64, data, SHA-256.
python3 - "$WEIGHTS" <<'PY'
import struct, sys
d = open("models/fashion/1/model.loupe", "rb").read()
version, hlen = struct.unpack_from("<II", d, 8)
assert version == 1, "expected an fp32 (format 1) model"
start = (16 + hlen + 63) // 64 * 64
open(sys.argv[1], "wb").write(d[start:len(d) - 32])
PY
: > "$OUT"
tag() { sed "s/^{/{\"round\": $1, \"who\": \"$2\", \"isa\": \"$3\", /"; }
grep -m1 'model name' /proc/cpuinfo | sed 's/.*: /CPU: /' >&2
echo "ISA flags: $(grep -o -w 'avx2\|avx512f\|avx512_vnni\|avx512vnni\|avx_vnni' /proc/cpuinfo | sort -u | tr '\n' ' ')" >&2
for r in $(seq "$ROUNDS"); do
  echo "== round $r $(date -u +%H:%M:%S) load $(cut -d' ' -f1-3 /proc/loadavg)" >&2
  for isa in avx512 avxvnni avx2; do
    LOUPE_ISA=$isa "$BENCH" int8 --weights "$WEIGHTS" --reps 1 --n1 "$N1" --n256 "$N256" | tag "$r" loupe "$isa" >> "$OUT"
  done
  python3 Benchmarks/Int8/ort_int8.py --onnx "$ONNX" --n1 "$N1" --n256 "$N256" | tag "$r" ort default >> "$OUT"
done
python3 Benchmarks/Int8/summarize.py "$OUT"
