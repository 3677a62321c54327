#!/usr/bin/env bash
# Per-request cost of `loupe serve` against nginx with one worker (issue 16): alternating A/B runs of
#   health-c64   GET /health over 64 keep-alive connections
#   health-c1    GET /health over one connection
#   live-c64     GET /v2/health/live over 64 connections: Loupe's tiniest answer ({"live":true}, like the
#                peers' {"status":"ok"}; /health's body lists the models, 246 bytes); the peers get /health
#   png-c64      POST /predict of one 28×28 Fashion-MNIST PNG over 64 connections (loupe only)
# for each named variant, ROUNDS times, then the medians. Server CPU per request = utime+stime of
# the server over the timed run ÷ requests (from /proc); "other" = busy CPU of the whole machine
# minus the server and wrk (other jobs on a shared box, and loopback softirq time).
#
#   Benchmarks/ServeBench/request_cost.sh VARIANT...
#
# A variant is `name=command` (the command must listen on $PORT, given in the environment), or one
# of the shorthands: `serve` (.build/release/loupe serve --models models), `base` ($BASE_BIN serve,
# e.g. a build of an older commit), `nginx-w1` (shared/anchors/http's one-worker nginx, access log off),
# `nginx-w1-log` (the same with a buffered access log, like Loupe's default), `nginx-w2` (two workers,
# access log off: like Loupe's default of one event loop per CPU on this 2-CPU box) and `nio` (its raw
# SwiftNIO server, built in release under $ANCHORS/nio: copy the anchors somewhere writable first); the
# peers serve /health only.
# Env: ROUNDS (3) DUR (10s) WARM (2s) TESTS ("health-c64 health-c1 png-c64") ANCHORS (/work/shared/anchors/http)
#      OUT (/tmp/loupe-request-cost); SERVER_CPUS / WRK_CPUS (taskset CPU lists, unset: unpinned), e.g.
#      SERVER_CPUS=1 WRK_CPUS=0 puts the server on one core and wrk on the other, so req/s is the
#      server's capacity on one core instead of a share of two it splits with the load generator.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROUNDS=${ROUNDS:-3}; DUR=${DUR:-10s}; WARM=${WARM:-2s}
TESTS=${TESTS:-"health-c64 health-c1 png-c64"}
ANCHORS=${ANCHORS:-/work/shared/anchors/http}
OUT=${OUT:-/tmp/loupe-request-cost}; mkdir -p "$OUT"
export PORT=18620
HZ=$(getconf CLK_TCK)
PID=""
PIN_SERVER=(); [[ -n "${SERVER_CPUS:-}" ]] && PIN_SERVER=(taskset -c "$SERVER_CPUS")
PIN_WRK=(); [[ -n "${WRK_CPUS:-}" ]] && PIN_WRK=(taskset -c "$WRK_CPUS")

python3 Benchmarks/ServeBench/test_images.py "$OUT" 8

command_for() {
  case "$1" in
    serve) echo ".build/release/loupe serve --models models --host 127.0.0.1 --port $PORT" ;;
    base) echo "${BASE_BIN:?set BASE_BIN to the loupe binary to compare against} serve --models models --host 127.0.0.1 --port $PORT" ;;
    nginx-w1|nginx-w1-log|nginx-w2) echo "nginx" ;;
    nio) echo "$ANCHORS/nio/.build/release/NIOServer $PORT" ;;
    *=*) echo "${1#*=}" ;;
    *) echo "unknown variant $1" >&2; exit 2 ;;
  esac
}
name_of() { echo "${1%%=*}"; }

mkdir -p "$OUT/nginx/tmp"
sed "s/127.0.0.1:8083/127.0.0.1:$PORT/" "$ANCHORS/nginx/nginx-w1.conf" > "$OUT/nginx/nginx.conf"
# Like for like with Loupe's default access log (one JSON line per request, buffered, flushed every
# 20 ms): nginx's combined-format log through a 256 KiB buffer flushed at least every second
# (nginx's finest flush period).
sed -e "s/127.0.0.1:8083/127.0.0.1:$PORT/" \
    -e "s|access_log off;|access_log $OUT/nginx/access.log combined buffer=256k flush=1s;|" \
    "$ANCHORS/nginx/nginx-w1.conf" > "$OUT/nginx/nginx-log.conf"
sed "s/127.0.0.1:8083/127.0.0.1:$PORT/" "$ANCHORS/nginx/nginx-w2.conf" > "$OUT/nginx/nginx-w2.conf"

start() {
  local cmd; cmd=$(command_for "$1")
  if [[ "$1" == nginx-w* ]]; then
    local conf="$OUT/nginx/nginx.conf"; [[ "$1" == nginx-w1-log ]] && conf="$OUT/nginx/nginx-log.conf"
    [[ "$1" == nginx-w2 ]] && conf="$OUT/nginx/nginx-w2.conf"
    "${PIN_SERVER[@]}" nginx -e "$OUT/nginx/error.log" -p "$OUT/nginx/" -c "$conf" -g 'daemon off;' > "$OUT/server.log" 2>&1 & PID=$!
  else
    "${PIN_SERVER[@]}" bash -c "exec $cmd" > "$OUT/server.log" 2>&1 & PID=$!
  fi
  for _ in $(seq 1 300); do curl -fsS -o /dev/null --max-time 1 "http://127.0.0.1:$PORT/health" 2>/dev/null && return 0; sleep 0.02; done
  echo "$1 did not start:"; cat "$OUT/server.log" >&2; return 1
}
stop() {
  [[ -n "$PID" ]] || return 0
  kill -TERM "$PID" 2>/dev/null || true
  for _ in $(seq 1 100); do kill -0 "$PID" 2>/dev/null || break; sleep 0.05; done
  kill -KILL "$PID" 2>/dev/null || true; wait "$PID" 2>/dev/null || true; PID=""
}
trap stop EXIT
pids() { echo "$PID" $(ps -o pid= --ppid "$PID" 2>/dev/null); }
ticks() { local s=0; for p in $(pids); do s=$(( s + $(awk '{print $14+$15}' /proc/$p/stat 2>/dev/null || echo 0) )); done; echo $s; }
busy() { awk '/^cpu /{print $2+$3+$4+$7+$8}' /proc/stat; }
us() { awk '{v=$1; if (v ~ /us$/) {sub("us","",v); print v} else if (v ~ /ms$/) {sub("ms","",v); print v*1000} else if (v ~ /s$/) {sub("s","",v); print v*1e6}}' <<< "$1"; }

echo "# $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc) CPUs; server CPUs ${SERVER_CPUS:-any}, wrk CPUs ${WRK_CPUS:-any}; $(date -u +%FT%TZ)" | tee "$OUT/runs.tsv"
printf 'variant\ttest\tround\treq_s\tp50_us\tp99_us\tcpu_us_req\tother_cpu_pct\terrors\n' | tee -a "$OUT/runs.tsv"
for round in $(seq 1 "$ROUNDS"); do
  for test in $TESTS; do
    for v in "$@"; do
      name=$(name_of "$v")
      [[ ( "$v" == nginx-w* || "$v" == nio ) && "$test" == png-* ]] && continue   # peers serve /health only
      start "$v"
      case "$test" in
        health-c64) args=(-c64 "http://127.0.0.1:$PORT/health") ;;
        health-c1) args=(-c1 "http://127.0.0.1:$PORT/health") ;;
        live-c64) path=/v2/health/live; [[ "$v" == nginx-w* || "$v" == nio ]] && path=/health
                  args=(-c64 "http://127.0.0.1:$PORT$path") ;;
        png-c64) args=(-c64 -s Benchmarks/ServeBench/predict.lua "http://127.0.0.1:$PORT/predict" -- "$OUT"/png/*.png) ;;
      esac
      "${PIN_WRK[@]}" wrk -t1 -d"$WARM" "${args[@]}" > /dev/null
      c0=$(ticks); b0=$(busy); w0=$(date +%s%N)
      /usr/bin/time -f '%U %S' -o "$OUT/wrk.time" "${PIN_WRK[@]}" wrk -t1 -d"$DUR" --latency "${args[@]}" > "$OUT/wrk.txt"
      c1=$(ticks); b1=$(busy); w1=$(date +%s%N)
      stop
      f="$OUT/wrk.txt"
      req=$(awk '/requests in/{print $1}' "$f"); rps=$(awk '/Requests\/sec/{print $2}' "$f")
      p50=$(us "$(awk '$1=="50%"{print $2}' "$f")"); p99=$(us "$(awk '$1=="99%"{print $2}' "$f")")
      errs=$(awk '/Non-2xx|Socket errors/{s=s $0 " "} END{print (s==""?"0":s)}' "$f")
      wrk_ticks=$(awk -v hz="$HZ" '{printf "%d", ($1+$2)*hz}' "$OUT/wrk.time")
      secs=$(awk -v a="$w0" -v b="$w1" 'BEGIN{print (b-a)/1e9}')
      cpu_req=$(awk -v t=$((c1-c0)) -v hz="$HZ" -v n="$req" 'BEGIN{printf "%.1f", t/hz*1e6/n}')
      other=$(awk -v b=$((b1-b0)) -v s=$((c1-c0)) -v w="$wrk_ticks" -v hz="$HZ" -v secs="$secs" 'BEGIN{printf "%.0f", (b-s-w)/hz/secs*100}')
      printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$name" "$test" "$round" "$rps" "$p50" "$p99" "$cpu_req" "$other" "$errs" | tee -a "$OUT/runs.tsv"
    done
  done
done
echo "# medians (variant test req_s p50_us p99_us cpu_us_req other_cpu_pct)"
python3 - "$OUT/runs.tsv" <<'PY'
import sys, statistics, collections
rows = [l.rstrip('\n').split('\t') for l in open(sys.argv[1]) if l.strip() and not l.startswith('#')][1:]
groups = collections.OrderedDict()
for r in rows: groups.setdefault((r[1], r[0]), []).append(r)
for (test, name), rs in groups.items():
    med = lambda i: statistics.median(float(r[i]) for r in rs)
    print(f"{name}\t{test}\t{med(3):.0f}\t{med(4):.0f}\t{med(5):.0f}\t{med(6):.1f}\t{med(7):.0f}")
PY
