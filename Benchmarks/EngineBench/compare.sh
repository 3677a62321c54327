#!/usr/bin/env bash
# Engine vs the ONNX Runtime anchor, alternating in one run so both see the same machine load.
#   bash Benchmarks/EngineBench/compare.sh            # ROUNDS=3 rounds of: loupe infer, ORT, loupe train (TRAIN=1)
# Env: ROUNDS (3), TRAIN (1 = also one 10-epoch training run per round; 0 = inference only),
#      ANCHORS (../shared/anchors/ml, needs `pip install onnxruntime onnx`), OUT (JSONL log).
# Summary: medians per figure over the rounds (Benchmarks/EngineBench/summarize.py).
set -euo pipefail
cd "$(dirname "$0")/../.."
ROUNDS=${ROUNDS:-3}
TRAIN=${TRAIN:-1}
ANCHORS=${ANCHORS:-$(cd .. && pwd)/shared/anchors/ml}
[ -d "$ANCHORS" ] || ANCHORS=/work/shared/anchors/ml
OUT=${OUT:-/tmp/loupe-engine-compare.jsonl}
swift build -c release --product loupe-engine-bench >&2
BENCH=.build/release/loupe-engine-bench
WEIGHTS=Tests/LoupeEngineTests/Fixtures/keras_weights.f32   # Keras's trained weights, as ORT uses
: > "$OUT"
tag() { sed "s/^{/{\"round\": $1, \"who\": \"$2\", \"loadavg1\": $(cut -d' ' -f1 /proc/loadavg), /"; }
for r in $(seq "$ROUNDS"); do
  echo "== round $r $(date -u +%H:%M:%S) load $(cut -d' ' -f1-3 /proc/loadavg)" >&2
  "$BENCH" infer --reps 1 --weights "$WEIGHTS" | tag "$r" loupe >> "$OUT"
  python3 "$ANCHORS/bench_ort.py" --n1 5000 --n256 300 | grep -v '"event": "check"' | tag "$r" ort >> "$OUT"
  "$BENCH" infer --reps 1 --weights "$WEIGHTS" | tag "$r" loupe >> "$OUT"
  if [ "$TRAIN" = 1 ]; then "$BENCH" train --epochs 10 --threads 2 | tag "$r" loupe >> "$OUT"; fi
done
python3 Benchmarks/EngineBench/summarize.py "$OUT"
