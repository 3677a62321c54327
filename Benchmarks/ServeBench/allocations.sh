#!/usr/bin/env bash
# Heap allocations per request of a running `loupe serve` (issue 16): counts glibc malloc calls in
# the server process with a perf uprobe while wrk sends GET /health (or the URL given) over 8
# connections, and divides by the requests wrk completed. Needs root (uprobes) and linux-perf.
#
#   Benchmarks/ServeBench/allocations.sh [BINARY] [PATH]      # defaults: .build/release/loupe /health
#
# Prints "allocations/request N" and, with DETAIL=1, the Loupe functions that allocate (two frames).
# POST_FILES="a.png b.png" POSTs those files in turn instead (predict.lua), e.g. PATH /predict.
set -euo pipefail
cd "$(dirname "$0")/../.."
BIN=${1:-.build/release/loupe}; URLPATH=${2:-/health}; PORT=${PORT:-18630}
OUT=${OUT:-/tmp/loupe-allocations}; mkdir -p "$OUT"
LIBC=$(ldd "$BIN" | awk '/libc.so.6/ {print $3}')
perf probe -q -x "$LIBC" --add malloc 2>/dev/null || true
"$BIN" serve --models models --host 127.0.0.1 --port "$PORT" > "$OUT/server.log" 2>&1 & PID=$!
trap 'kill $PID 2>/dev/null; wait $PID 2>/dev/null || true' EXIT
for _ in $(seq 1 200); do curl -fsS -o /dev/null "http://127.0.0.1:$PORT/health" 2>/dev/null && break; sleep 0.02; done
LUA=(); [[ -n "${POST_FILES:-}" ]] && LUA=(-s Benchmarks/ServeBench/predict.lua)
ARGS=(); [[ -n "${POST_FILES:-}" ]] && ARGS=(-- $POST_FILES)
wrk -t1 -c8 -d1s "${LUA[@]}" "http://127.0.0.1:$PORT$URLPATH" "${ARGS[@]}" > /dev/null   # warm-up: caches, buffers, metric children
if [[ "${DETAIL:-0}" == 1 ]]; then
  perf record -q -c 1 -e probe_libc:malloc -g -p "$PID" -o "$OUT/malloc.data" -- sleep 3 > /dev/null 2>&1 &
else
  perf stat -e probe_libc:malloc -p "$PID" -o "$OUT/stat.txt" -- sleep 3 &
fi
PERF=$!; sleep 0.3
requests=$(wrk -t1 -c8 -d2s "${LUA[@]}" "http://127.0.0.1:$PORT$URLPATH" "${ARGS[@]}" | awk '/requests in/ {print $1}')
wait $PERF
if [[ "${DETAIL:-0}" == 1 ]]; then
  perf script -i "$OUT/malloc.data" 2>/dev/null | python3 -c '
import sys, collections, subprocess
c = collections.Counter()
for s in sys.stdin.read().split("\n\n"):
    frames = [l.strip().split(None, 1)[1].split(" (")[0].split("+0x")[0] for l in s.strip().split("\n")[1:] if " " in l.strip()]
    c[" <- ".join([f for f in frames if "Loupe" in f][:2])] += 1
total = sum(c.values())
print("allocations", total)
for k, v in c.most_common(20):
    names = [subprocess.run(["swift", "demangle", "--simplified", "--compact", p], capture_output=True, text=True).stdout.strip()[:70] for p in k.split(" <- ")]
    print(v, " <- ".join(names))'
  echo "requests $requests (allocations/request: divide; the warm-up is excluded)"
else
  calls=$(awk '/probe_libc:malloc/ {gsub(",", "", $1); print $1}' "$OUT/stat.txt")
  echo "requests $requests mallocs $calls allocations/request $(python3 -c "print(round($calls / $requests, 1))")"
fi
