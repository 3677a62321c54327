#!/usr/bin/env bash
# The container's runtime contract, tested without a container engine.
#
# Builds (or takes) the `loupe` binary and runs it the way the Dockerfile's final stage would:
#   - in a root filesystem that holds only the binary, the shared libraries it links (found with
#     ldd, as the slim image would have them), CA certificates, /etc/loupe/loupe.yaml and the
#     models directory, all read-only; /tmp is a writable tmpfs; /proc and a few /dev nodes;
#   - as PID 1 of its own PID namespace (so SIGTERM reaches it as `docker stop` sends it);
#   - as the Dockerfile's numeric USER, with no supplementary groups, no capabilities and
#     no_new_privs (setpriv), in the Dockerfile's WORKDIR;
#   - configured only by environment variables: the Dockerfile's ENV lines, plus the two a
#     `docker run -e` would change here (a free port, and 127.0.0.1 instead of 0.0.0.0);
#   - started with the Dockerfile's ENTRYPOINT + CMD.
# Then it checks: /health/ready answers 200; the HEALTHCHECK command exits 0 when run inside the
# same namespaces as that user (like `docker exec`); /predict classifies a real Fashion-MNIST PNG;
# /metrics carries the metrics Deploy/ uses; on SIGTERM readiness turns 503 while requests are
# still served, then the process exits 0 within the drain delay + deadline; started again, a
# SIGSEGV makes it log a backtrace through the image's swift-backtrace-static (SWIFT_BACKTRACE).
#
# What it cannot emulate: the image itself (its Debian packages, the Swift static-stdlib build
# inside the official Swift image), cgroup limits, the container network namespace and port
# mapping, seccomp's RuntimeDefault profile, and Kubernetes' probes/endpoints timing.
#
# Needs root (mount + PID namespaces), util-linux (unshare, setpriv, nsenter), curl, python3.
#   bash scripts/runtime-contract.sh                       # debug build (what scripts/test.sh built)
#   LOUPE_CONTRACT_RELEASE=1 bash scripts/runtime-contract.sh   # release, --static-swift-stdlib, as in the image
#   LOUPE_BIN=/path/to/loupe bash scripts/runtime-contract.sh
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)

passed=0
failed=0
ok()   { passed=$((passed + 1)); echo "ok - $1"; }
fail() { failed=$((failed + 1)); echo "FAIL - $1"; }
finish() {
    echo "runtime-contract: $passed passed, $failed failed"
    if [ "$failed" -eq 0 ]; then exit 0; else exit 1; fi
}

if [ "$(id -u)" -ne 0 ]; then
    echo "runtime-contract: SKIPPED: needs root for mount and PID namespaces (CI runs as root)"
    exit 0
fi
for tool in unshare setpriv nsenter curl python3 ldd; do
    command -v "$tool" >/dev/null || { fail "$tool is installed"; finish; }
done

# ---- the binary ------------------------------------------------------------------------------
if [ -z "${LOUPE_BIN:-}" ]; then
    if [ "${LOUPE_CONTRACT_RELEASE:-0}" = 1 ]; then
        swift build -c release --static-swift-stdlib --product loupe
        LOUPE_BIN="$(swift build -c release --static-swift-stdlib --show-bin-path)/loupe"
    else
        swift build --product loupe
        LOUPE_BIN="$(swift build --show-bin-path)/loupe"
    fi
fi
LOUPE_BIN=$(readlink -f "$LOUPE_BIN")
echo "# binary: $LOUPE_BIN"

work=$(mktemp -d /tmp/loupe-contract.XXXXXX)
upid=""
cpid=""
ppid_prom=""
cleanup() {
    # SIGKILL the server (PID 1 of its namespace, so everything in it dies too), unshare, Prometheus.
    # (unshare --kill-child alone is not enough: setpriv's uid change clears that death signal.)
    for p in "$ppid_prom" "$cpid" "$upid"; do
        if [ -n "$p" ] && kill -0 "$p" 2>/dev/null; then kill -KILL "$p" 2>/dev/null || true; fi
    done
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP PIPE

# ---- what the Dockerfile's final stage says --------------------------------------------------
python3 - "$repo/Dockerfile" > "$work/image.sh" <<'PY'
import json, re, shlex, sys
text = open(sys.argv[1]).read().replace("\\\n", " ")
final = re.split(r"^FROM\s", text, flags=re.M)[-1]
env, user, workdir, entry, cmd, health, expose = [], "0:0", "/", [], [], [], None
for line in final.splitlines():
    line = line.strip()
    if line.startswith("ENV "):
        env += [tok for tok in shlex.split(line[4:])]
    elif line.startswith("USER "):
        user = line.split()[1]
    elif line.startswith("WORKDIR "):
        workdir = line.split()[1]
    elif line.startswith("EXPOSE "):
        expose = line.split()[1]
    elif line.startswith("ENTRYPOINT "):
        entry = json.loads(line[len("ENTRYPOINT "):])
    elif line.startswith("CMD "):
        cmd = json.loads(line[len("CMD "):])
    elif line.startswith("HEALTHCHECK "):
        health = json.loads(line[line.index("CMD") + 3:].strip())
uid, _, gid = user.partition(":")
print("image_env=(" + " ".join(shlex.quote(e) for e in env) + ")")
print(f"image_uid={shlex.quote(uid)}; image_gid={shlex.quote(gid or uid)}; image_workdir={shlex.quote(workdir)}")
print(f"image_expose={shlex.quote(expose or '')}")
print("image_command=(" + " ".join(shlex.quote(a) for a in entry + cmd) + ")")
print("image_health=(" + " ".join(shlex.quote(a) for a in health) + ")")
PY
# shellcheck disable=SC1091
source "$work/image.sh"
echo "# image: USER $image_uid:$image_gid, WORKDIR $image_workdir, command ${image_command[*]}"
echo "# image ENV: ${image_env[*]}"
[ "$image_uid" != 0 ] && [ "$image_uid" != root ] && ok "image USER is non-root ($image_uid)" || fail "image USER is non-root"

# Where the image keeps things, read from its ENV.
env_value() { local k=$1; for e in "${image_env[@]}"; do [ "${e%%=*}" = "$k" ] && { echo "${e#*=}"; return; }; done; }
models_dir=$(env_value LOUPE_MODELS_DIR); models_dir=${models_dir:-/models}
config_path=$(env_value LOUPE_CONFIG)
bin_path=${image_command[0]}
# Swift's crash backtracer, where the image's SWIFT_BACKTRACE says it is (the toolchain's copy here).
backtracer_path=$(env_value SWIFT_BACKTRACE | tr ',' '\n' | sed -n 's/^swift-backtrace=//p')
backtracer_src=$(dirname "$(readlink -f "$(command -v swift)")")/../libexec/swift/linux/swift-backtrace-static
if [ -n "$backtracer_path" ]; then
    [ -x "$backtracer_src" ] && ok "the crash backtracer SWIFT_BACKTRACE names exists in the toolchain" \
        || fail "the crash backtracer SWIFT_BACKTRACE names exists in the toolchain ($backtracer_src)"
fi

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
drain_delay_ms=1500
deadline_ms=3000
run_env=("${image_env[@]}"
         "LOUPE_SERVER_HOST=127.0.0.1" "LOUPE_SERVER_PORT=$port"
         "LOUPE_SHUTDOWN_DRAIN_DELAY_MS=$drain_delay_ms" "LOUPE_SHUTDOWN_DEADLINE_MS=$deadline_ms")

[ -d "$repo/models" ] || { fail "the default model repository models/ exists (the Dockerfile copies it to $models_dir)"; finish; }

# ---- the root filesystem, built inside a private mount namespace ----------------------------
root="$work/root"
mkdir -p "$root"
setpriv_bin=$(command -v setpriv)
libs=$( { ldd "$LOUPE_BIN"; ldd "$setpriv_bin"; if [ -n "$backtracer_path" ] && [ -x "$backtracer_src" ]; then ldd "$backtracer_src"; fi; } | awk '$2 == "=>" && $3 ~ /^\// {print $3} $1 ~ /^\// {print $1}' | sort -u)

cat > "$work/inside.sh" <<EOF
set -euo pipefail
R='$root'
bind_ro() { # bind_ro SRC DST: a read-only bind mount of a file or directory
    if [ -d "\$1" ]; then mkdir -p "\$2"; else mkdir -p "\$(dirname "\$2")"; : > "\$2"; fi
    mount --bind "\$1" "\$2"
    mount -o remount,bind,ro "\$2"
}
mount -t tmpfs -o mode=0755,size=8m rootfs "\$R"
mkdir -p "\$R/tmp" "\$R/proc" "\$R/dev" "\$R/etc/ssl" "\$R$image_workdir"
bind_ro '$LOUPE_BIN' "\$R$bin_path"
bind_ro '$setpriv_bin' "\$R/.emulator/setpriv"
if [ -n '$backtracer_path' ] && [ -x '$backtracer_src' ]; then bind_ro '$backtracer_src' "\$R$backtracer_path"; fi
for lib in $(echo $libs); do bind_ro "\$lib" "\$R\$lib"; done
bind_ro /etc/ssl/certs "\$R/etc/ssl/certs"
bind_ro '$repo/models' "\$R$models_dir"
if [ -n '$config_path' ]; then bind_ro '$repo/Config/loupe.yaml' "\$R$config_path"; fi
for dev in null zero random urandom; do bind_ro "/dev/\$dev" "\$R/dev/\$dev"; done
mount -o remount,bind,rw "\$R/dev/null"
mount -t proc -o nosuid,nodev,noexec proc "\$R/proc"
mount -o remount,ro "\$R"                 # the root filesystem: read-only from here on
mount -t tmpfs -o mode=1777,nosuid,nodev,size=16m tmpfs "\$R/tmp"
exec env -i $(printf '%q ' "${run_env[@]}") \
    unshare --root="\$R" --wd='$image_workdir' \
    /.emulator/setpriv --reuid='$image_uid' --regid='$image_gid' --clear-groups --no-new-privs \
        --inh-caps=-all --bounding-set=-all -- $(printf '%q ' "${image_command[@]}")
EOF

# The server's host PID: the namespace's PID 1, child of unshare (found in /proc: no procps needed).
child_of() {
    local parent=$1 p stat fields
    for p in /proc/[0-9]*; do
        read -r stat < "$p/stat" 2>/dev/null || continue
        read -r -a fields <<< "${stat##*) }"     # after "(comm) ": state ppid ...
        if [ "${fields[1]:-}" = "$parent" ]; then echo "${p#/proc/}"; return; fi
    done
}
base="http://127.0.0.1:$port"

# start_container LOG: starts the emulated container (upid: unshare, cpid: the server) and waits
# up to 30 s for /health/ready; returns 1 if it never got ready.
start_container() {
    unshare --mount --pid --fork --kill-child --propagation private bash "$work/inside.sh" > "$1" 2>&1 &
    upid=$!
    cpid=""
    for _ in $(seq 1 100); do
        cpid=$(child_of "$upid")
        [ -n "$cpid" ] && break
        kill -0 "$upid" 2>/dev/null || break
        sleep 0.05
    done
    for _ in $(seq 1 300); do
        kill -0 "$upid" 2>/dev/null || return 1
        [ "$(curl -s -o /dev/null -w '%{http_code}' "$base/health/ready" 2>/dev/null)" = 200 ] && return 0
        sleep 0.1
    done
    return 1
}

# ---- ready -----------------------------------------------------------------------------------
if start_container "$work/server.log"; then ok "GET /health/ready answers 200 in the emulated container"
else
    fail "GET /health/ready answers 200 in the emulated container (server log below)"
    sed 's/^/    | /' "$work/server.log" | tail -40
    finish
fi

# ---- who and where it runs -------------------------------------------------------------------
status=$(cat "/proc/$cpid/status")
echo "# server at rest: $(awk '/^VmRSS:/ {printf "%.1f MB RSS", $2/1024}' <<< "$status"), $(awk '/^Threads:/ {print $2}' <<< "$status") threads, binary $(( $(stat -c %s "$LOUPE_BIN") / 1048576 )) MB"
uids=$(awk '/^Uid:/ {print $2, $3, $4, $5}' <<< "$status")
gids=$(awk '/^Gid:/ {print $2, $3, $4, $5}' <<< "$status")
groups=$(awk '/^Groups:/ {$1=""; print}' <<< "$status" | tr -d ' ')
capeff=$(awk '/^CapEff:/ {print $2}' <<< "$status")
capbnd=$(awk '/^CapBnd:/ {print $2}' <<< "$status")
nnp=$(awk '/^NoNewPrivs:/ {print $2}' <<< "$status")
nspid=$(awk '/^NSpid:/ {print $NF}' <<< "$status")
if [ "$uids" = "$image_uid $image_uid $image_uid $image_uid" ] && [ "$gids" = "$image_gid $image_gid $image_gid $image_gid" ] \
   && [ -z "$groups" ] && [ "$capeff" = 0000000000000000 ] && [ "$capbnd" = 0000000000000000 ] && [ "$nnp" = 1 ]; then
    ok "runs as uid/gid $image_uid/$image_gid, no groups, no capabilities, no_new_privs"
else
    fail "runs as uid/gid $image_uid/$image_gid, no groups, no capabilities, no_new_privs (Uid $uids, Gid $gids, Groups '$groups', CapEff $capeff, CapBnd $capbnd, NoNewPrivs $nnp)"
fi
[ "$nspid" = 1 ] && ok "is PID 1 of its PID namespace, as in a container" || fail "is PID 1 of its PID namespace (NSpid $nspid)"
rootmount=$(awk '$5 == "/" {print $6}' "/proc/$cpid/mountinfo" | head -1)
case ",$rootmount," in *,ro,*) ok "its root filesystem is read-only ($rootmount)";; *) fail "its root filesystem is read-only ($rootmount)";; esac
if [ "$(readlink "/proc/$cpid/cwd")" = "$image_workdir" ] || [ "$(readlink "/proc/$cpid/cwd")" = "$root$image_workdir" ]; then
    ok "working directory is WORKDIR $image_workdir"
else
    fail "working directory is WORKDIR $image_workdir (is $(readlink "/proc/$cpid/cwd"))"
fi

# ---- HEALTHCHECK, as docker runs it: inside the container, as its user, with its env ---------
if [ "${#image_health[@]}" -gt 0 ]; then
    if env -i "${run_env[@]}" nsenter --target "$cpid" --mount --pid --root --wd \
         --setuid "$image_uid" --setgid "$image_gid" -- "${image_health[@]}" > "$work/health.log" 2>&1; then
        ok "HEALTHCHECK '${image_health[*]}' exits 0 inside the container"
    else
        fail "HEALTHCHECK '${image_health[*]}' exits 0 inside the container"; sed 's/^/    | /' "$work/health.log"
    fi
else
    fail "the Dockerfile has a HEALTHCHECK"
fi

code=$(curl -s -o /dev/null -w '%{http_code}' "$base/health/live")
[ "$code" = 200 ] && ok "GET /health/live answers 200" || fail "GET /health/live answers 200 (got $code)"

# ---- /predict with a real PNG ----------------------------------------------------------------
python3 - "$work" <<'PY'
# Writes test-0.png, the first Fashion-MNIST test image as an 8-bit grayscale PNG, and its label.
import gzip, os, struct, sys, zlib
work = sys.argv[1]
d = "/usr/share/datasets/fashion-mnist"
def open_any(name):
    for n in (name + ".gz", name):
        p = os.path.join(d, n)
        if os.path.exists(p):
            return gzip.open(p) if p.endswith(".gz") else open(p, "rb")
    return None
imgs, labels = open_any("t10k-images-idx3-ubyte"), open_any("t10k-labels-idx1-ubyte")
if imgs and labels:
    imgs.read(16); pixels = imgs.read(784); labels.read(8); label = labels.read(1)[0]
else:  # no dataset: a synthetic image, and no expected label
    pixels = bytes((x * 9) % 256 for x in range(784)); label = -1
raw = b"".join(b"\x00" + pixels[r * 28:(r + 1) * 28] for r in range(28))
def chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xffffffff)
png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 28, 28, 8, 0, 0, 0, 0)) \
    + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")
open(os.path.join(work, "test-0.png"), "wb").write(png)
open(os.path.join(work, "test-0.label"), "w").write(str(label))
PY
label=$(cat "$work/test-0.label")
code=$(curl -s -o "$work/predict.json" -w '%{http_code}' -H 'Content-Type: image/png' --data-binary @"$work/test-0.png" "$base/predict")
if [ "$code" = 200 ] && python3 - "$work/predict.json" "$label" <<'PY'
import json, sys
body = json.load(open(sys.argv[1])); label = int(sys.argv[2])
p = body["predictions"]
assert len(p) == 1, f"{len(p)} predictions for one image"
assert 0 <= p[0]["class"] < 10 and isinstance(p[0]["label"], str) and 0 < p[0]["confidence"] <= 1, p[0]
assert label < 0 or p[0]["class"] == label, f"class {p[0]['class']} for an image labelled {label}"
print(f"# predicted {p[0]['class']} ({p[0]['label']}, {p[0]['confidence']:.3f}) for label {label}")
PY
then ok "POST /predict (image/png) classifies a Fashion-MNIST test image"
else fail "POST /predict (image/png) classifies a Fashion-MNIST test image (HTTP $code)"; head -c 600 "$work/predict.json"; echo; fi

# ---- /metrics carries what the dashboard and alerts use --------------------------------------
code=$(curl -s -o "$work/metrics.txt" -w '%{http_code}' "$base/metrics")
if [ "$code" = 200 ]; then
    ok "GET /metrics answers 200"
    if out=$(LOUPE_METRICS_SCRAPE="$work/metrics.txt" python3 scripts/validate_deploy.py --metrics-only 2>&1); then
        ok "every metric in Deploy/dashboards and Deploy/alerts is in the live /metrics"
    else
        fail "every metric in Deploy/dashboards and Deploy/alerts is in the live /metrics"; echo "$out" | sed 's/^/    /'
    fi
else
    fail "GET /metrics answers 200 (got $code)"
fi

# ---- a real Prometheus scrapes it and evaluates the shipped rules and dashboard queries -------
if command -v prometheus >/dev/null 2>&1; then
    pport=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
    mkdir -p "$work/prom"
    cp Deploy/alerts/loupe-rules.yaml "$work/prom/"
    cat > "$work/prom/prometheus.yml" <<PROM
global:
  scrape_interval: 1s
  evaluation_interval: 1s
rule_files: [loupe-rules.yaml]
scrape_configs:
  - job_name: loupe
    static_configs:
      - targets: ["127.0.0.1:$port"]
PROM
    prometheus --config.file="$work/prom/prometheus.yml" --storage.tsdb.path="$work/prom/data" \
        --web.listen-address="127.0.0.1:$pport" > "$work/prom/log" 2>&1 &
    ppid_prom=$!
    # A little traffic so that rates have two points.
    for _ in 1 2 3; do
        curl -s -o /dev/null -H 'Content-Type: image/png' --data-binary @"$work/test-0.png" "$base/predict"
        sleep 1
    done
    if python3 - "http://127.0.0.1:$pport" Deploy/dashboards/loupe.json <<'PY'
import json, re, sys, time, urllib.parse, urllib.request
prom, dashboard = sys.argv[1], json.load(open(sys.argv[2]))
def get(path, **params):
    url = prom + path + ("?" + urllib.parse.urlencode(params) if params else "")
    with urllib.request.urlopen(url, timeout=5) as r:
        return json.load(r)
deadline = time.time() + 40
problems = ["Prometheus did not answer"]
while time.time() < deadline:
    time.sleep(1)
    try:
        up = get("/api/v1/query", query='up{job="loupe"}')["data"]["result"]
        groups = get("/api/v1/rules")["data"]["groups"]
    except Exception as e:
        problems = [f"Prometheus API: {e}"]
        continue
    rules = [r for g in groups for r in g["rules"]]
    problems = []
    if not up or up[0]["value"][1] != "1":
        problems.append(f"up{{job=loupe}} is {up}")
    if not rules:
        problems.append("no rules loaded")
    for r in rules:
        if r.get("health") != "ok" or r.get("lastEvaluation", "").startswith("0001"):
            problems.append(f"rule {r['name']}: health {r.get('health')} {r.get('lastError', '')}")
    if not problems:
        break
# Every dashboard query runs without error against the live data, with variables set to "all".
def exprs(ps):
    for p in ps:
        for t in p.get("targets", []):
            if t.get("expr"): yield p["title"], t["expr"]
        yield from exprs(p.get("panels", []))
with_data = 0
for title, expr in exprs(dashboard["panels"]):
    q = expr.replace("$__rate_interval", "1m")
    q = re.sub(r"\$\{?[A-Za-z_]+\}?", ".*", q)
    try:
        res = get("/api/v1/query", query=q)
    except Exception as e:
        problems.append(f"panel {title!r}: {e}"); continue
    if res.get("status") != "success":
        problems.append(f"panel {title!r}: {res}")
    elif res["data"]["result"]:
        with_data += 1
for name in ("loupe_http_requests_total", "loupe_ready", "loupe_model_info", "process_resident_memory_bytes"):
    if not get("/api/v1/query", query=name)["data"]["result"]:
        problems.append(f"no series {name} scraped")
print(f"# prometheus: {with_data} dashboard queries returned data")
for p in problems: print("    " + p)
sys.exit(1 if problems else 0)
PY
    then ok "a real Prometheus scrapes it, evaluates every shipped alert rule without error, and runs every dashboard query"
    else fail "a real Prometheus scrapes it, evaluates every shipped alert rule without error, and runs every dashboard query"
         tail -5 "$work/prom/log" | sed 's/^/    | /'; fi
    kill "$ppid_prom" 2>/dev/null; wait "$ppid_prom" 2>/dev/null || true
    ppid_prom=""
else
    echo "# prometheus not installed (apt-get install prometheus): live rule evaluation not checked"
fi

# ---- SIGTERM: drain, then exit 0 -------------------------------------------------------------
start=$(date +%s%N)
kill -TERM "$cpid"
sleep 0.3
code=$(curl -s -o /dev/null -w '%{http_code}' "$base/health/ready")
[ "$code" = 503 ] && ok "after SIGTERM /health/ready answers 503" || fail "after SIGTERM /health/ready answers 503 (got $code)"
if [ "${#image_health[@]}" -gt 0 ]; then
    hc=0
    env -i "${run_env[@]}" nsenter --target "$cpid" --mount --pid --root --wd \
        --setuid "$image_uid" --setgid "$image_gid" -- "${image_health[@]}" > "$work/health.log" 2>&1 || hc=$?
    # Docker: 0 healthy, 1 unhealthy (2 is reserved).
    [ "$hc" = 1 ] && ok "during the drain the HEALTHCHECK exits 1 (unhealthy)" \
        || fail "during the drain the HEALTHCHECK exits 1 (unhealthy) (exit $hc: $(cat "$work/health.log"))"
fi
code=$(curl -s -o /dev/null -w '%{http_code}' -H 'Content-Type: image/png' --data-binary @"$work/test-0.png" "$base/predict")
[ "$code" = 200 ] && ok "during the drain delay /predict is still served" || fail "during the drain delay /predict is still served (got $code)"
rc=0
limit_s=$(( (drain_delay_ms + deadline_ms) / 1000 + 5 ))
for _ in $(seq 1 $((limit_s * 10))); do kill -0 "$upid" 2>/dev/null || break; sleep 0.1; done
if kill -0 "$upid" 2>/dev/null; then
    fail "exits within drain delay + deadline + 5 s after SIGTERM"
    kill -KILL "$upid" 2>/dev/null || true
fi
wait "$upid" || rc=$?
upid=""
cpid=""
elapsed_ms=$(( ($(date +%s%N) - start) / 1000000 ))
if [ "$rc" = 0 ]; then ok "exits 0 after SIGTERM (${elapsed_ms} ms; drain delay ${drain_delay_ms} ms, deadline ${deadline_ms} ms)"
else fail "exits 0 after SIGTERM (exit status $rc after ${elapsed_ms} ms)"; sed 's/^/    | /' "$work/server.log" | tail -20; fi
[ "$elapsed_ms" -ge "$drain_delay_ms" ] && ok "kept serving for the drain delay before exiting" \
    || fail "kept serving for the drain delay before exiting (exited after ${elapsed_ms} ms)"
if curl -s -o /dev/null "$base/health/live" 2>/dev/null; then fail "the port is closed after exit"; else ok "the port is closed after exit"; fi
if grep -q '^{' "$work/server.log"; then ok "logs are JSON lines (LOUPE_LOGGING_FORMAT from the image)"
else fail "logs are JSON lines (LOUPE_LOGGING_FORMAT from the image)"; head -5 "$work/server.log"; fi

# ---- a crash logs a backtrace (SWIFT_BACKTRACE), as uid 10001 without capabilities ----------
if [ -n "$backtracer_path" ]; then
    if start_container "$work/crash.log"; then
        kill -SEGV "$cpid"
        for _ in $(seq 1 100); do grep -q "Backtrace took" "$work/crash.log" && break; sleep 0.1; done
        if grep -q "Program crashed" "$work/crash.log" && grep -q "Backtrace took" "$work/crash.log"; then
            ok "a crash (SIGSEGV) logs a backtrace through the image's swift-backtrace-static"
        else
            fail "a crash (SIGSEGV) logs a backtrace through the image's swift-backtrace-static"
            tail -15 "$work/crash.log" | sed 's/^/    | /'
        fi
        # SIGKILL the server itself: setpriv's uid change clears unshare's --kill-child death signal.
        kill -KILL "$cpid" 2>/dev/null || true
        wait "$upid" 2>/dev/null || true
        upid=""; cpid=""
    else
        fail "the container starts again for the crash test"; tail -5 "$work/crash.log" | sed 's/^/    | /'
    fi
fi

finish
