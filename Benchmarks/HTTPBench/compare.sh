#!/usr/bin/env bash
# Side-by-side HTTP benchmark: loupe-http-bench against the peers of shared/anchors/http (raw SwiftNIO,
# Hummingbird 2, nginx with one worker), A/B alternating, wrk on loopback. Prints one TSV line per run and
# the medians per server and test. Each server is started and stopped by its own pid.
#
#   Benchmarks/HTTPBench/compare.sh [server ...]      (default: loupe loupe-inline nio hb nginx-w1)
#
# Servers: loupe (handlers on the handler threads), loupe-inline (handlers on the event loops, as
# `loupe serve` runs its cheap routes), loupe-inline-1 (the same with one event loop: like for like
# with nginx-w1), nio, hb, nginx-w1 (one worker) and nginx-w2 (two workers: like for like with Loupe's
# default of one event loop per CPU on a 2-CPU box). The client shares the CPUs with the server here.
#
# Env: ANCHORS   directory holding the anchors with nio/ and hb/ built in release
#                (default /work/shared/anchors/http; copy it somewhere writable to build)
#      LOUPE_BIN loupe-http-bench binary (default .build/release/loupe-http-bench; build it with
#                `swift build -c release --product loupe-http-bench`)
#      ROUNDS (3)  DUR (10s)  WARM (3)  TESTS ("get-c64 post1k-c64 get-c1")
# Columns: server test round req_s p50_us p99_us server_cpu_us_per_req server_cpu_pct other_cpu_pct
#          rss_idle_kib rss_after_kib fds_before fds_after
# other_cpu_pct = CPU used meanwhile by processes other than the server and wrk (the box is shared).
set -euo pipefail
cd "$(dirname "$0")/../.."
ANCHORS=${ANCHORS:-/work/shared/anchors/http}
LOUPE_BIN=${LOUPE_BIN:-.build/release/loupe-http-bench}
ROUNDS=${ROUNDS:-3}; DUR=${DUR:-10s}; WARM=${WARM:-3}
TESTS=${TESTS:-"get-c64 post1k-c64 get-c1"}
SERVERS=("$@"); (( ${#SERVERS[@]} )) || SERVERS=(loupe loupe-inline nio hb nginx-w1)
HZ=$(getconf CLK_TCK)
OUT=${OUT:-/tmp/loupe-http-compare}; mkdir -p "$OUT"
PID=""

start() {
  case "$1" in
    loupe)        "$LOUPE_BIN" --port 8084 > "$OUT/server-$1.log" 2>&1 & PID=$!; PORT=8084 ;;
    loupe-inline) "$LOUPE_BIN" --port 8084 --inline > "$OUT/server-$1.log" 2>&1 & PID=$!; PORT=8084 ;;
    loupe-inline-1) "$LOUPE_BIN" --port 8084 --inline --loops 1 > "$OUT/server-$1.log" 2>&1 & PID=$!; PORT=8084 ;;
    loupe-nospin) "$LOUPE_BIN" --port 8084 --spin-us 0 > "$OUT/server-$1.log" 2>&1 & PID=$!; PORT=8084 ;;
    loupe-probe)  "$LOUPE_BIN" --port 8084 --dispatch-probe > "$OUT/server-$1.log" 2>&1 & PID=$!; PORT=8084 ;;
    nio) "$ANCHORS/nio/.build/release/NIOServer" 8082 > "$OUT/server-$1.log" 2>&1 & PID=$!; PORT=8082 ;;
    hb)  "$ANCHORS/hb/.build/release/HBServer" 8081 > "$OUT/server-$1.log" 2>&1 & PID=$!; PORT=8081 ;;
    nginx-w1|nginx-w2)
      mkdir -p "$OUT/nginx/tmp"
      nginx -e "$OUT/nginx/error.log" -p "$OUT/nginx/" -c "$ANCHORS/nginx/$1.conf" -g 'daemon off;' \
        > "$OUT/server-$1.log" 2>&1 & PID=$!; PORT=8083 ;;
  esac
  for _ in $(seq 1 200); do curl -fsS -o /dev/null --max-time 1 "http://127.0.0.1:$PORT/health" 2>/dev/null && return 0; sleep 0.02; done
  echo "$1 did not start" >&2; return 1
}
stop() {
  [[ -n "$PID" ]] || return 0
  kill -TERM "$PID" 2>/dev/null || true
  for _ in $(seq 1 50); do kill -0 "$PID" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$PID" 2>/dev/null || true; wait "$PID" 2>/dev/null || true; PID=""
}
trap stop EXIT
pids() { echo "$PID" $(ps -o pid= --ppid "$PID" 2>/dev/null); }
ticks() { local s=0; for p in $(pids); do s=$(( s + $(awk '{print $14+$15}' /proc/$p/stat 2>/dev/null || echo 0) )); done; echo $s; }
rss() { local s=0; for p in $(pids); do s=$(( s + $(awk '/^VmRSS:/{print $2}' /proc/$p/status 2>/dev/null || echo 0) )); done; echo $s; }
fds() { local s=0; for p in $(pids); do s=$(( s + $(ls /proc/$p/fd 2>/dev/null | wc -l) )); done; echo $s; }
busy() { awk '/^cpu /{print $2+$3+$4+$7+$8}' /proc/stat; }
us() { awk '{v=$1; if (v ~ /us$/) {sub("us","",v); print v} else if (v ~ /ms$/) {sub("ms","",v); print v*1000} else if (v ~ /s$/) {sub("s","",v); print v*1e6}}' <<< "$1"; }

printf 'server\ttest\tround\treq_s\tp50_us\tp99_us\tcpu_us_req\tserver_cpu_pct\tother_cpu_pct\trss_idle_kib\trss_after_kib\tfds_before\tfds_after\n' | tee "$OUT/runs.tsv"
for round in $(seq 1 "$ROUNDS"); do
  for test in $TESTS; do
    for s in "${SERVERS[@]}"; do
      [[ "$s" == nginx-* && "$test" == post* ]] && continue
      [[ "$s" == loupe-probe && "$test" != get-c64 ]] && continue   # the Dispatch probe: tiny GETs only
      start "$s"
      sleep 0.5
      rss0=$(rss); fd0=$(fds)
      case "$test" in
        get-c64) args=(-c64 "http://127.0.0.1:$PORT/health") ;;
        get-c1) args=(-c1 "http://127.0.0.1:$PORT/health") ;;
        post1k-c64) args=(-c64 -s "$ANCHORS/scripts/post-1k.lua" "http://127.0.0.1:$PORT/echo") ;;
      esac
      wrk -t1 -d"${WARM}s" "${args[@]}" > /dev/null
      c0=$(ticks); b0=$(busy); t0=$(date +%s%N)
      /usr/bin/time -f '%U %S' -o "$OUT/wrk.time" wrk -t1 -d"$DUR" --latency "${args[@]}" > "$OUT/wrk-$s-$test-$round.txt"
      c1=$(ticks); b1=$(busy); t1=$(date +%s%N)
      sleep 1
      rss1=$(rss); fd1=$(fds)
      stop
      f="$OUT/wrk-$s-$test-$round.txt"
      req=$(awk '/requests in/{print $1}' "$f"); rps=$(awk '/Requests\/sec/{print $2}' "$f")
      p50=$(us "$(awk '$1=="50%"{print $2}' "$f")"); p99=$(us "$(awk '$1=="99%"{print $2}' "$f")")
      read -r wu ws < "$OUT/wrk.time"
      awk -v s="$s" -v t="$test" -v r="$round" -v req="$req" -v rps="$rps" -v p50="$p50" -v p99="$p99" \
          -v c=$(( c1 - c0 )) -v b=$(( b1 - b0 )) -v hz="$HZ" -v ns=$(( t1 - t0 )) -v w="$(echo "$wu + $ws" | bc)" \
          -v r0="$rss0" -v r1="$rss1" -v f0="$fd0" -v f1="$fd1" 'BEGIN{
            sec = ns / 1e9; cpu = c / hz
            printf "%s\t%s\t%s\t%.0f\t%.0f\t%.0f\t%.1f\t%.0f\t%.0f\t%s\t%s\t%s\t%s\n", s, t, r, rps, p50, p99,
              cpu * 1e6 / req, 100 * cpu / sec, 100 * (b / hz - cpu - w) / sec, r0, r1, f0, f1 }' | tee -a "$OUT/runs.tsv"
    done
  done
done

echo
echo "medians (req/s, p50 µs, p99 µs, server CPU µs/req, other CPU %):"
python3 - "$OUT/runs.tsv" <<'EOF'
import csv, sys, statistics as st
rows = list(csv.DictReader(open(sys.argv[1]), delimiter="\t"))
keys = sorted({(r["test"], r["server"]) for r in rows})
for test, server in keys:
    rs = [r for r in rows if r["test"] == test and r["server"] == server]
    m = lambda k: st.median(float(r[k]) for r in rs)
    print(f"{test:11s} {server:13s} n={len(rs)} req/s {m('req_s'):8.0f}  p50 {m('p50_us'):6.0f}  p99 {m('p99_us'):6.0f}"
          f"  cpu/req {m('cpu_us_req'):5.1f}  other {m('other_cpu_pct'):4.0f}%  rss idle {m('rss_idle_kib'):6.0f} KiB")
EOF
