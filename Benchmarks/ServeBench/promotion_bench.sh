#!/usr/bin/env bash
# Safe promotion's costs (issue 14 targets), side by side in one run, variants alternated REPS times:
#   1. shadow at 100% sampling vs immediate: POST /predict of 28×28 PNGs (64 images cycled, C connections)
#      against the shipped model; in the shadow variant a second version (the same file, so both do the
#      same work) is a shadow candidate classifying a copy of every answered request off the request path.
#      Target: < 10% throughput loss when a core is free. The shadow worker runs in SCHED_IDLE, so on a
#      machine whose cores are all busy serving it gets only idle time and drops copies instead (counted):
#      each line reports the copies classified and dropped, so the figure says how much shadow work it
#      bought, and the server's CPU per request split into the request path (every thread but the shadow
#      worker) and the shadow worker: with a free core, serving throughput follows the request path's alone. The serving side is inference.workers=1 and server.event_loop_threads=1 in every variant.
#   2. capture at 1% sampling vs off, same load. Target: < 2% throughput loss.
#   3. micro-benchmarks (loupe-lifecycle-bench): the feedback window's record + claim per prediction at
#      window sizes 1k / 10k (the default) / 100k / 1M images (target O(1) and < 1 µs; the growth at large
#      sizes is cache misses, not work), route() per request and the canary key's hash.
# Prints the CPU model and the engine ISA first. Results: one JSON line each, in $OUT/results.jsonl.
# Usage: bash Benchmarks/ServeBench/promotion_bench.sh [REPS=3] [SECONDS=10] [CONNECTIONS=16]
# Needs: swift build -c release --product loupe && swift build -c release --product loupe-lifecycle-bench; wrk; python3.
# Env: MODELS (repository with fashion/1, default ./models), OUT (results dir).
#   FREE_CORE=1: the issue's condition "when a core is free", made by pinning: every variant's server is
#   started under `taskset -c $SERVE_CPU` (default 0; all its threads inherit it: event loop, inference
#   worker, timers) and wrk runs there too; the shadow worker thread alone (comm loupe-shadow, found in
#   /proc/PID/task/*/comm) is then moved to $SHADOW_CPU (default 1) with `taskset -p -c`, where nothing
#   else of the benchmark runs. Needs 2 CPUs, and a machine with nothing else running on $SHADOW_CPU.
#   Without it (the default) wrk, the server and the shadow worker share every CPU, and the shadow
#   worker (SCHED_IDLE) gets only what serving leaves idle.
set -euo pipefail
cd "$(dirname "$0")/../.."
REPS=${1:-3}; SECS=${2:-10}; CONNS=${3:-16}
BIN=${LOUPE_BINARY:-.build/release/loupe}
LBENCH=${LIFECYCLE_BENCH:-.build/release/loupe-lifecycle-bench}
MODELS=${MODELS:-models}
OUT=${OUT:-$(mktemp -d /tmp/loupe-promotion-bench-XXXXXX)}
PORT=18530
LUA=Benchmarks/ServeBench/predict.lua
mkdir -p "$OUT"; echo "results in $OUT" >&2
FREE_CORE=${FREE_CORE:-0}; SERVE_CPU=${SERVE_CPU:-0}; SHADOW_CPU=${SHADOW_CPU:-1}
PIN=(); WRK=(wrk); CORES="shared: wrk, the server and the shadow worker on all $(nproc) CPUs"
if [ "$FREE_CORE" = 1 ]; then
  [ "$(nproc)" -ge 2 ] || { echo "FREE_CORE=1 needs 2 CPUs" >&2; exit 1; }
  PIN=(taskset -c "$SERVE_CPU"); WRK=(taskset -c "$SERVE_CPU" wrk)
  CORES="free core: wrk and the serving threads on CPU $SERVE_CPU, the shadow worker alone on CPU $SHADOW_CPU"
fi

echo "{\"cpu\":\"$(lscpu | sed -n 's/^Model name: *//p' | head -1)\",\"cpus\":$(nproc),\"isa\":\"$($LBENCH --isa)\",\"LOUPE_ISA\":\"${LOUPE_ISA:-auto}\",\"cores\":\"$CORES\"}" | tee "$OUT/results.jsonl"

python3 Benchmarks/ServeBench/test_images.py "$OUT" 64 >/dev/null
PNGS=$(ls "$OUT"/png/*.png)

# Two repositories: the shipped model alone, and the same file again as version 2 for the shadow run.
mkdir -p "$OUT/repo1/fashion/1" "$OUT/repo2/fashion/1"
cp "$MODELS/fashion/1/model.loupe" "$OUT/repo1/fashion/1/model.loupe"
cp "$MODELS/fashion/1/model.loupe" "$OUT/repo2/fashion/1/model.loupe"

PID=
cleanup() { [ -n "$PID" ] && kill "$PID" 2>/dev/null || true; }
trap cleanup EXIT

COMMON=(--host 127.0.0.1 --port $PORT --log-format json --set inference.workers=1 --set server.event_loop_threads=1
        --set logging.access_log=false --set models.poll_interval_ms=200 --set models.stable_after_ms=50)

start() {  # start NAME REPO extra settings…
  local name=$1 repo=$2; shift 2
  "${PIN[@]}" $BIN serve --models "$repo" "${COMMON[@]}" "$@" > "$OUT/$name.log" 2>&1 &
  PID=$!
  for _ in $(seq 300); do curl -sf "http://127.0.0.1:$PORT/health/ready" >/dev/null && { pin_shadow; return 0; }; sleep 0.05; done
  echo "server $name did not become ready; see $OUT/$name.log" >&2; exit 1
}
# FREE_CORE=1: the shadow worker (started with the server, idle until a candidate exists) to its own CPU.
pin_shadow() {
  [ "$FREE_CORE" = 1 ] || return 0
  local t n=0
  for t in /proc/$PID/task/*; do
    [ "$(cat "$t/comm" 2>/dev/null)" = loupe-shadow ] && taskset -p -c "$SHADOW_CPU" "${t##*/}" >/dev/null && n=$((n + 1))
  done
  [ $n = 1 ] || { echo "found $n loupe-shadow threads in $PID, expected 1" >&2; exit 1; }
}
stop() { kill "$PID"; wait "$PID" 2>/dev/null || true; PID=; }
metric() { curl -s "http://127.0.0.1:$PORT/metrics" | awk -v s="$1" '$1 == s {print $2; f=1} END {if (!f) print 0}'; }

# CPU ticks of the server's threads: "serving" (everything but the shadow worker) and "shadow".
ticks() {  # ticks serving|shadow
  local sum=0 t
  for t in /proc/$PID/task/*; do
    local comm; comm=$(cat "$t/comm" 2>/dev/null || true)
    if [[ ( "$1" == shadow && "$comm" == loupe-shadow ) || ( "$1" == serving && "$comm" != loupe-shadow ) ]]; then
      sum=$(( sum + $(awk '{print $14 + $15}' "$t/stat" 2>/dev/null || echo 0) ))
    fi
  done
  echo $sum
}

run() {  # run TEST VARIANT REP: one wrk run against the server started for VARIANT
  local line s0 h0 s1 h1
  s0=$(ticks serving); h0=$(ticks shadow)
  line=$("${WRK[@]}" -t1 -c"$CONNS" -d"${SECS}s" --timeout 5s -s $LUA "http://127.0.0.1:$PORT/predict" -- $PNGS | grep '^{')
  s1=$(ticks serving); h1=$(ticks shadow)
  # Server CPU per answered request on the request path (loop + inference workers) and in the shadow
  # worker: with a free core for the shadow worker, serving throughput follows the first alone.
  local extra
  extra=$(python3 -c "import json,sys; r=json.loads(sys.argv[1]); n=max(1, r['requests']); hz=$(getconf CLK_TCK)
print(',\"serving_cpu_us_per_req\":%.1f,\"shadow_cpu_us_per_req\":%.1f' % (($s1-$s0)/hz*1e6/n, ($h1-$h0)/hz*1e6/n))" "$line")
  echo "{\"test\":\"$1\",\"variant\":\"$2\",\"rep\":$3,${line#\{}" | sed "s/}\$/$extra}/"
}

for rep in $(seq "$REPS"); do
  # 1. immediate vs shadow (100% sampling).
  start immediate "$OUT/repo1"
  "${WRK[@]}" -t1 -c"$CONNS" -d2s -s $LUA "http://127.0.0.1:$PORT/predict" -- $PNGS >/dev/null   # warm-up
  run shadow_vs_immediate immediate "$rep" | tee -a "$OUT/results.jsonl"
  stop
  rm -rf "$OUT/repo2/fashion/2" "$OUT/repo2/.loupe-promotion.json"
  start shadow "$OUT/repo2" --set promotion.mode=shadow --set promotion.shadow_sample_rate=1 --set promotion.auto=false
  mkdir -p "$OUT/repo2/fashion/2"
  cp "$MODELS/fashion/1/model.loupe" "$OUT/repo2/fashion/2/.tmp" && mv "$OUT/repo2/fashion/2/.tmp" "$OUT/repo2/fashion/2/model.loupe"
  for _ in $(seq 100); do curl -s "http://127.0.0.1:$PORT/health" | grep -q '"candidate_version":2' && break; sleep 0.05; done
  "${WRK[@]}" -t1 -c"$CONNS" -d2s -s $LUA "http://127.0.0.1:$PORT/predict" -- $PNGS >/dev/null
  before_done=$(metric 'loupe_shadow_inferences_total{model="fashion",version="2"}')
  before_drop=$(metric 'loupe_shadow_dropped_total{model="fashion"}')
  line=$(run shadow_vs_immediate shadow "$rep")
  done_n=$(metric 'loupe_shadow_inferences_total{model="fashion",version="2"}')
  drop_n=$(metric 'loupe_shadow_dropped_total{model="fashion"}')
  echo "${line%\}},\"shadow_classified\":$(( ${done_n%.*} - ${before_done%.*} )),\"shadow_dropped\":$(( ${drop_n%.*} - ${before_drop%.*} ))}" | tee -a "$OUT/results.jsonl"
  stop

  # 2. capture off vs 1%.
  start capture_off "$OUT/repo1"
  "${WRK[@]}" -t1 -c"$CONNS" -d2s -s $LUA "http://127.0.0.1:$PORT/predict" -- $PNGS >/dev/null
  run capture capture_off "$rep" | tee -a "$OUT/results.jsonl"
  stop
  rm -rf "$OUT/capture"
  start capture_1pct "$OUT/repo1" --set capture.enabled=true --set capture.sample_rate=0.01 --set capture.dir="$OUT/capture" \
        --set capture.flush_interval_s=1
  "${WRK[@]}" -t1 -c"$CONNS" -d2s -s $LUA "http://127.0.0.1:$PORT/predict" -- $PNGS >/dev/null
  run capture capture_1pct "$rep" | tee -a "$OUT/results.jsonl"
  stop
done

# 3. Micro-benchmarks.
$LBENCH --reps 7 | grep -E '"bench": "(feedback_window_ns|route_ns)"' | tee -a "$OUT/results.jsonl"

# Medians per variant and the ratios the targets are stated in.
python3 - "$OUT/results.jsonl" <<'EOF'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.startswith('{"test"')]
cores = json.loads(open(sys.argv[1]).readline()).get("cores", "")
def med(test, variant):
    xs = [r["rps"] for r in rows if r["test"] == test and r["variant"] == variant]
    return statistics.median(xs) if xs else float("nan")
for test, base, other, target in [("shadow_vs_immediate", "immediate", "shadow", 10), ("capture", "capture_off", "capture_1pct", 2)]:
    a, b = med(test, base), med(test, other)
    errors = sum(r["errors"] for r in rows if r["test"] == test)
    def cpu(variant, key):
        xs = [r[key] for r in rows if r["test"] == test and r["variant"] == variant and key in r]
        return statistics.median(xs) if xs else float("nan")
    sa, sb = cpu(base, "serving_cpu_us_per_req"), cpu(other, "serving_cpu_us_per_req")
    print(json.dumps({"summary": test, "cores": cores, base + "_rps": a, other + "_rps": b, "loss_percent": round(100 * (1 - b / a), 2),
                      "target_percent": target, "errors": errors,
                      # The request path's own CPU per request, shadow worker excluded: the loss with a free core.
                      "serving_cpu_us_per_req": [sa, sb], "serving_cpu_increase_percent": round(100 * (sb / sa - 1), 2),
                      "shadow_cpu_us_per_req": cpu(other, "shadow_cpu_us_per_req")}))
EOF
