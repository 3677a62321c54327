#!/usr/bin/env bash
# KServe v2 infer of one image at 64 connections: NVIDIA Triton (the ../shared/anchors/triton peer:
# Triton's HTTP frontend and dynamic batcher, the model in pytriton's Python backend on ONNX Runtime)
# against `loupe serve` with the same JSON body, and Loupe with the binary tensor extension.
# Alternating, ROUNDS rounds of DUR each; prints one TSV line per run, then medians.
#
#   TRITON_PY=/tmp/triton-venv/bin/python LOUPE_BIN=.build/release/loupe bash Benchmarks/ServeBench/triton_compare.sh
#
# The venv: see ../shared/anchors/triton/README.md (python3-venv; pip install nvidia-pytriton onnxruntime numpy).
set -euo pipefail
cd "$(dirname "$0")/../.."
ANCHOR=${ANCHOR:-../shared/anchors/triton}
TRITON_PY=${TRITON_PY:-/tmp/triton-venv/bin/python}
LOUPE_BIN=${LOUPE_BIN:-.build/release/loupe}
ROUNDS=${ROUNDS:-2}; DUR=${DUR:-6s}
OUT=${OUT:-/tmp/loupe-triton-compare}; mkdir -p "$OUT"
python3 - "$OUT" <<'PY'
import json, struct, sys, zlib
out = sys.argv[1]
# The first Fashion-MNIST test image, pixels / 255, as the model's FP32 input [1, 784].
import gzip, os
p = '/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte'
data = open(p, 'rb').read() if os.path.exists(p) else gzip.open(p + '.gz').read()
pixels = data[16:16 + 784]
x = [b / 255 for b in pixels]
json.dump({"inputs": [{"name": "input", "shape": [1, 784], "datatype": "FP32", "data": x}]}, open(out + '/body.json', 'w'))
head = json.dumps({"inputs": [{"name": "input", "shape": [1, 784], "datatype": "FP32", "parameters": {"binary_data_size": 3136}}],
                   "outputs": [{"name": "probabilities", "parameters": {"binary_data": True}}]}).encode()
open(out + '/body.bin', 'wb').write(head + struct.pack('<784f', *x))
open(out + '/header-length', 'w').write(str(len(head)))
PY
cat > "$OUT/binary.lua" <<LUA
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/octet-stream"
wrk.headers["Inference-Header-Content-Length"] = "$(cat "$OUT/header-length")"
local f = io.open("$OUT/body.bin", "rb"); wrk.body = f:read("*a"); f:close()
LUA
"$TRITON_PY" "$ANCHOR/pytriton_fashion.py" 18600 2 > "$OUT/triton.log" 2>&1 & TPID=$!
"$LOUPE_BIN" serve --port 18700 --log-level warning --set shutdown.drain_delay_ms=0 > "$OUT/loupe.log" 2>&1 & LPID=$!
trap 'kill $TPID $LPID 2>/dev/null || true' EXIT
# Ready means the model is: Triton answers /v2/health/ready before pytriton has registered `fashion`.
for _ in $(seq 1 240); do curl -fsS -o /dev/null http://127.0.0.1:18600/v2/models/fashion/ready 2>/dev/null && break; sleep 0.5; done
for _ in $(seq 1 100); do curl -fsS -o /dev/null http://127.0.0.1:18700/v2/models/fashion/ready 2>/dev/null && break; sleep 0.1; done
# Both must answer the body with 200 before anything is timed (run from the repository root: models/ is there).
for port in 18600 18700; do
  curl -fsS -o /dev/null -X POST -H "Content-Type: application/json" --data-binary @"$OUT/body.json" \
    "http://127.0.0.1:$port/v2/models/fashion/infer" || { echo "port $port does not answer the v2 body with 200" >&2; exit 1; }
done
echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), family $(grep -m1 'cpu family' /proc/cpuinfo | cut -d: -f2 | xargs); load $(cut -d' ' -f1-3 /proc/loadavg)"
printf 'server\tbody\tround\treq_s\tp99_ms\n' | tee "$OUT/runs.tsv"
run() {  # name body port script [script argument]
  local name=$1 body=$2 port=$3 script=$4; shift 4
  local url="http://127.0.0.1:$port/v2/models/fashion/infer"
  wrk -t1 -c64 -d2s -s "$script" "$url" "$@" > /dev/null 2>&1 || true
  wrk -t1 -c64 -d"$DUR" --latency -s "$script" "$url" "$@" > "$OUT/wrk.txt"
  if grep -q "Non-2xx" "$OUT/wrk.txt"; then echo "$name $body: some answers were not 2xx — not a valid run:" >&2; cat "$OUT/wrk.txt" >&2; exit 1; fi
  local rps p99
  rps=$(awk '/Requests\/sec/{print $2}' "$OUT/wrk.txt")
  p99=$(awk '$1=="99%"{v=$2; if (v ~ /ms$/) {sub("ms","",v)} else if (v ~ /us$/) {sub("us","",v); v=v/1000} else if (v ~ /s$/) {sub("s","",v); v=v*1000}; print v}' "$OUT/wrk.txt")
  printf '%s\t%s\t%s\t%s\t%s\n' "$name" "$body" "$round" "$rps" "$p99" | tee -a "$OUT/runs.tsv"
}
for round in $(seq 1 "$ROUNDS"); do
  run triton json 18600 "$ANCHOR/v2post.lua" -- "$OUT/body.json"
  run loupe json 18700 "$ANCHOR/v2post.lua" -- "$OUT/body.json"
  run loupe binary 18700 "$OUT/binary.lua"
done
echo "medians:"
python3 - "$OUT/runs.tsv" <<'PY'
import csv, statistics, sys
rows = list(csv.DictReader(open(sys.argv[1]), delimiter='\t'))
m = {}
for r in rows: m.setdefault((r['server'], r['body']), []).append((float(r['req_s']), float(r['p99_ms'])))
for k, v in m.items():
    print(f"{k[0]} {k[1]}: {statistics.median(x for x, _ in v):.0f} req/s, p99 {statistics.median(y for _, y in v):.1f} ms")
t = statistics.median(x for x, _ in m[('triton', 'json')]); lj = statistics.median(x for x, _ in m[('loupe', 'json')]); lb = statistics.median(x for x, _ in m[('loupe', 'binary')])
print(f"loupe json / triton json = {lj / t:.2f}x; loupe binary / loupe json = {lb / lj:.2f}x")
PY
