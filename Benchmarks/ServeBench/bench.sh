#!/usr/bin/env bash
# Service benchmarks, side by side in one run (issue 4 targets; results in docs/performance.md "## Service"):
#   1. POST /predict of one 28×28 PNG over 64 connections: loupe serve vs the FastAPI + uvicorn (2 workers,
#      uvloop + httptools) + ONNX Runtime anchor of ../shared/anchors/ml, alternating A/B, REPS times each.
#   2. POST /predict with 64 images per request (raw bytes, 8 connections): images/s vs the engine's own batch
#      throughput (loupe-engine-bench infer: batch 256, 2 threads; same machine, same run).
#   3. Start to ready (default model) and RSS at rest.
# Usage: bash Benchmarks/ServeBench/bench.sh [REPS=3] [SECONDS=10]
# Needs: swift build -c release --product loupe --product loupe-engine-bench; wrk; the anchor's Python packages.
# Env: MODELS (repository, default ./models), ANCHOR (default /work/shared/anchors/ml), OUT (results dir).
set -euo pipefail
cd "$(dirname "$0")/../.."
REPS=${1:-3}; SECS=${2:-10}
BIN=.build/release/loupe
MODELS=${MODELS:-models}
ANCHOR=${ANCHOR:-/work/shared/anchors/ml}
OUT=${OUT:-$(mktemp -d /tmp/loupe-serve-bench-XXXXXX)}
LPORT=18510; APORT=18511
LUA=Benchmarks/ServeBench/predict.lua
mkdir -p "$OUT/png"
echo "results in $OUT" >&2

# Inputs: the first 64 Fashion-MNIST test images as 8-bit gray PNGs, and as one 64×784 raw body.
python3 Benchmarks/ServeBench/test_images.py "$OUT" 64
PNGS=$(ls "$OUT"/png/*.png)

cleanup() { kill "$LPID" 2>/dev/null || true; kill -- -"$APID" 2>/dev/null || true; }
trap cleanup EXIT

# Start to ready and RSS at rest: 5 cold starts, read from the server's own "ready" log line.
for i in 1 2 3 4 5; do
  $BIN serve --models "$MODELS" --host 127.0.0.1 --port $LPORT --log-format json > "$OUT/start$i.log" 2>&1 &
  LPID=$!
  for _ in $(seq 200); do grep -q '"msg":"ready"' "$OUT/start$i.log" && break; sleep 0.01; done
  sleep 1
  ms=$(grep -o '"start_to_ready_ms":[0-9]*' "$OUT/start$i.log" | grep -o '[0-9]*')
  rss=$(awk '/VmRSS/ {print $2}' /proc/$LPID/status)
  echo "{\"start_to_ready_ms\":$ms,\"rss_at_rest_kb\":$rss}" | tee -a "$OUT/start.jsonl"
  kill $LPID; wait $LPID 2>/dev/null || true
done

# Servers for the load tests.
$BIN serve --models "$MODELS" --host 127.0.0.1 --port $LPORT --log-format json > "$OUT/loupe.log" 2>&1 &
LPID=$!
(cd "$ANCHOR" && ORT_THREADS=1 exec setsid python3 -m uvicorn serve_app:app --host 127.0.0.1 --port $APORT --workers 2 \
   --loop uvloop --http httptools --no-access-log --log-level warning) > "$OUT/anchor.log" 2>&1 &
APID=$!
for port in $LPORT $APORT; do
  for _ in $(seq 300); do curl -sf "http://127.0.0.1:$port/health" >/dev/null && break; sleep 0.1; done
done
sleep 3
# Warm-up.
wrk -t1 -c64 -d2s -s $LUA "http://127.0.0.1:$LPORT/predict" -- $PNGS >/dev/null
wrk -t1 -c64 -d2s -s $LUA "http://127.0.0.1:$APORT/predict" -- $PNGS >/dev/null

for rep in $(seq "$REPS"); do
  for who in loupe anchor; do
    port=$LPORT; [ $who = anchor ] && port=$APORT
    line=$(wrk -t1 -c64 -d${SECS}s --timeout 5s -s $LUA "http://127.0.0.1:$port/predict" -- $PNGS | grep '^{')
    echo "{\"test\":\"png_c64\",\"server\":\"$who\",\"rep\":$rep,${line#\{}" | tee -a "$OUT/results.jsonl"
  done
  line=$(wrk -t1 -c8 -d${SECS}s --timeout 5s -s $LUA "http://127.0.0.1:$LPORT/predict" -- "$OUT/batch64.bin" | grep '^{')
  echo "{\"test\":\"batch64_c8\",\"server\":\"loupe\",\"rep\":$rep,${line#\{}" | tee -a "$OUT/results.jsonl"
  # The engine alone, same machine, between the HTTP runs: batch-256 throughput with 1 and 2 threads.
  .build/release/loupe-engine-bench infer --reps 1 --n1 300 --n256 100 | grep '"event": "infer"' | tee -a "$OUT/results.jsonl"
done
curl -s "http://127.0.0.1:$LPORT/metrics" > "$OUT/metrics.txt"
echo "RSS after load (kB): $(awk '/VmRSS/ {print $2}' /proc/$LPID/status)" | tee -a "$OUT/results.jsonl"
