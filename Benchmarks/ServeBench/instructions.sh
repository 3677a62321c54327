#!/usr/bin/env bash
# User-space instructions per request of a running `loupe serve` (issue 16), counted by valgrind's
# callgrind while wrk sends GET /health (or PATH) over 8 connections. Unlike CPU time this does not
# move with other load on the machine, so it compares two builds on a busy box (cache misses and
# the kernel are not in it: confirm with request_cost.sh on a quiet one). Valgrind serializes the
# server's threads, so contention between event loops does not show either.
#
#   Benchmarks/ServeBench/instructions.sh [BINARY] [PATH]      # defaults: .build/release/loupe /health
#
# Prints "instructions/request N", then the functions with the most instructions per request,
# inclusive (TOP, default 25). Needs valgrind; the binary is copied without its DWARF (valgrind
# 3.19 cannot read DWARF 5), symbols kept. POST_FILES="a.png b.png" POSTs those files in turn
# instead (predict.lua), e.g. PATH /predict.
set -euo pipefail
cd "$(dirname "$0")/../.."
BIN=${1:-.build/release/loupe}; URLPATH=${2:-/health}; PORT=${PORT:-18631}
OUT=${OUT:-/tmp/loupe-instructions}; mkdir -p "$OUT"; rm -f "$OUT"/callgrind.out*
strip --strip-debug -o "$OUT/loupe" "$BIN"
valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file="$OUT/callgrind.out" \
  "$OUT/loupe" serve --models models --host 127.0.0.1 --port "$PORT" > "$OUT/server.log" 2>&1 & PID=$!
trap 'kill $PID 2>/dev/null; wait $PID 2>/dev/null || true' EXIT
for _ in $(seq 1 600); do curl -fsS -o /dev/null "http://127.0.0.1:$PORT/health" 2>/dev/null && break; sleep 0.1; done
callgrind_control -i on "$PID" > /dev/null 2>&1
LUA=(); [[ -n "${POST_FILES:-}" ]] && LUA=(-s Benchmarks/ServeBench/predict.lua)
ARGS=(); [[ -n "${POST_FILES:-}" ]] && ARGS=(-- $POST_FILES)
wrk -t1 -c8 -d2s "${LUA[@]}" "http://127.0.0.1:$PORT$URLPATH" "${ARGS[@]}" > /dev/null   # warm-up: caches, buffers, metric children
callgrind_control -z "$PID" > /dev/null 2>&1
requests=$(wrk -t1 -c8 -d4s "${LUA[@]}" "http://127.0.0.1:$PORT$URLPATH" "${ARGS[@]}" | awk '/requests in/ {print $1}')
callgrind_control -i off "$PID" > /dev/null 2>&1
callgrind_control -d "$PID" > /dev/null 2>&1
F=$(ls -S "$OUT"/callgrind.out* | head -1)
callgrind_annotate "$F" 2>/dev/null | awk -v n="$requests" 'NR > 20 && /^ *[0-9,]+ / {c = $1; gsub(",", "", c); if (c + 0 < 1e15) s += c}
  END {printf "requests %d instructions/request %.0f\n", n, s / n}'
callgrind_annotate --inclusive=yes --threshold=100 "$F" 2>/dev/null |
  awk -v n="$requests" 'NR > 24 && /^ *[0-9,]+ / {c = $1; gsub(",", "", c); f = $0; sub(/.*\?\?\?:/, "", f); sub(/ \[.*/, "", f); printf "%8.0f %s\n", c / n, f}' |
  head -"${TOP:-25}" | while read -r c f; do printf '%8s %s\n' "$c" "$(swift demangle --simplified --compact "$f" 2>/dev/null | cut -c1-100)"; done
