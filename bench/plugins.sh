#!/usr/bin/env bash
# bench/plugins.sh - what the common plugins cost: Portico as a plain proxy
# against Portico with request-id, access-log (to a file), cors and
# ip-restriction on the route, both proxying the same nginx backend on
# loopback, 1 worker each, measured with wrk in interleaved rounds.
#
#   bench/plugins.sh                        5 rounds of 10 s per variant
#   DURATION=3 ROUNDS=2 bench/plugins.sh    quick look
#
# Needs: a built portico (PORTICO, default build/portico: `make`), nginx
# (Debian nginx-light is enough), wrk, python3 (stdlib only).  Prints a
# markdown table (median and range of requests/s, median p50/p99 latency,
# median gateway CPU per request: user + system time of all its threads,
# the access-log writer included) and the plugins/plain ratios; the target
# is >= 0.90.  Before each run it waits (up to CALM_MAX s) until the rest of
# the machine is quiet, since loopback figures on a shared machine are
# noisy.  Every process started here is stopped on exit, error and Ctrl-C.
set -Eeuo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PORTICO=${PORTICO:-$ROOT/build/portico}
DURATION=${DURATION:-10}   # seconds per measured run
ROUNDS=${ROUNDS:-5}        # interleaved rounds (plain, plugins, plain, ...)
WARMUP=${WARMUP:-2}        # seconds of unmeasured load per variant first
CONNS=${CONNS:-64}         # wrk -c
THREADS=${THREADS:-1}      # wrk -t
KEEP_TMP=${KEEP_TMP:-0}    # 1: keep the temp dir (configs, logs)
CALM_BELOW=${CALM_BELOW:-30}  # before a run, wait until the machine uses < this % of one core
CALM_MAX=${CALM_MAX:-20}      # ... but at most this many seconds
PY=${PYTHON:-/usr/bin/python3}
[[ -x $PY ]] || PY=python3
ORIGIN="https://app.example.com"

log() { printf '[plugins-bench %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

for v in DURATION ROUNDS WARMUP CONNS THREADS CALM_BELOW CALM_MAX; do
    [[ ${!v} =~ ^[0-9]+$ ]] || die "$v must be a whole number (got '${!v}')"
done
[[ -x $PORTICO ]] || die "no portico at $PORTICO (run make, or set PORTICO)"
command -v wrk >/dev/null || die "wrk is not installed (apt-get install wrk)"
NGINX=$(command -v nginx || true)
[[ -z $NGINX && -x /usr/sbin/nginx ]] && NGINX=/usr/sbin/nginx
[[ -n $NGINX ]] || die "nginx is not installed (apt-get install nginx-light)"

TMP=$(mktemp -d /tmp/portico-plugins-bench.XXXXXX)
PIDS=()
cleanup() {
    local pid
    for pid in "${PIDS[@]}"; do
        kill -TERM "$pid" 2>/dev/null || true
    done
    for pid in "${PIDS[@]}"; do
        wait "$pid" 2>/dev/null || true
    done
    if [[ $KEEP_TMP == 1 ]]; then log "kept $TMP"; else rm -rf "$TMP"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Three free loopback ports: backend, plain gateway, plugins gateway.
read -r P_BACK P_PLAIN P_PLUG < <("$PY" - <<'EOF'
import socket
socks = [socket.socket() for _ in range(3)]
for s in socks:
    s.bind(("127.0.0.1", 0))
print(" ".join(str(s.getsockname()[1]) for s in socks))
EOF
)

wait_port() {
    local port=$1
    for _ in $(seq 200); do
        if "$PY" -c "import socket,sys; socket.create_connection(('127.0.0.1', $port), 0.2)" 2>/dev/null; then
            return 0
        fi
        sleep 0.05
    done
    die "nothing answers on port $port (logs in $TMP)"
}

# ---- the backend: nginx, one worker, a fixed small answer ----
mkdir -p "$TMP/nginx/logs"
cat >"$TMP/nginx/nginx.conf" <<EOF
worker_processes 1;
daemon off;
pid $TMP/nginx/nginx.pid;
error_log $TMP/nginx/error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    keepalive_requests 1000000;
    server {
        listen 127.0.0.1:$P_BACK;
        location / { return 200 "hello from the backend\n"; }
    }
}
EOF
"$NGINX" -p "$TMP/nginx" -c "$TMP/nginx/nginx.conf" -e "$TMP/nginx/error.log" &
PIDS+=($!)

# ---- the two gateways ----
common() {
    cat <<EOF
server:
  listen: ["127.0.0.1:$1"]
  workers: 1
  log_level: warn
services:
  backend: { targets: ["127.0.0.1:$P_BACK"] }
EOF
}
common "$P_PLAIN" >"$TMP/plain.yaml"
cat >>"$TMP/plain.yaml" <<EOF
routes:
  - { name: all, match: { paths: ["/*"] }, service: backend }
EOF
common "$P_PLUG" >"$TMP/plugins.yaml"
cat >>"$TMP/plugins.yaml" <<EOF
routes:
  - name: all
    match: { paths: ["/*"] }
    service: backend
    plugins:
      request-id: {}
      access-log: { format: json, path: access.log }
      cors: { origins: ["$ORIGIN"], credentials: true, expose: [X-Request-Id] }
      ip-restriction: { allow: ["127.0.0.0/8", "::1"] }
EOF
"$PORTICO" check -c "$TMP/plugins.yaml" >/dev/null || die "the plugins configuration does not load"
"$PORTICO" run -c "$TMP/plain.yaml" 2>"$TMP/plain.err" &
PID_PLAIN=$!
PIDS+=($!)
"$PORTICO" run -c "$TMP/plugins.yaml" 2>"$TMP/plugins.err" &
PID_PLUG=$!
PIDS+=($!)
wait_port "$P_BACK"
wait_port "$P_PLAIN"
wait_port "$P_PLUG"

# The plugins really run: CORS fields come back and a log line is written.
"$PY" - "$P_PLUG" "$ORIGIN" "$TMP/access.log" <<'EOF' || die "the plugins gateway does not behave as configured"
import socket, sys, time
port, origin, path = int(sys.argv[1]), sys.argv[2], sys.argv[3]
s = socket.create_connection(("127.0.0.1", port))
s.sendall(("GET /check HTTP/1.1\r\nHost: x\r\nOrigin: %s\r\nConnection: close\r\n\r\n" % origin).encode())
data = b""
while True:
    got = s.recv(65536)
    if not got:
        break
    data += got
assert b"Access-Control-Allow-Origin: " + origin.encode() in data, data
for _ in range(100):
    try:
        if open(path).read().count("\n") >= 1:
            sys.exit(0)
    except OSError:
        pass
    time.sleep(0.05)
sys.exit("no access-log line")
EOF

# CPU time (clock ticks) of every thread of a process.
cpu_ticks() {
    local t=0 f u s
    for f in /proc/"$1"/task/*/stat; do
        read -r u s < <(awk '{print $14, $15}' "$f" 2>/dev/null || echo "0 0")
        t=$((t + u + s))
    done
    echo "$t"
}

# Wait until the whole machine is nearly idle (other benchmarks on a shared box).
calm() {
    "$PY" - "$CALM_BELOW" "$CALM_MAX" <<'PYEOF'
import sys, time
below, most = float(sys.argv[1]), float(sys.argv[2])
def busy():
    f = open("/proc/stat").readline().split()[1:]
    v = [int(x) for x in f]
    return sum(v) - v[3] - v[4], sum(v)
end = time.time() + most
while True:
    b0, t0 = busy(); time.sleep(1); b1, t1 = busy()
    hz = 100.0
    used = (b1 - b0) / hz * 100  # % of one core over that second
    if used < below or time.time() > end:
        break
PYEOF
}

run_wrk() { # port seconds -> wrk output
    wrk -t"$THREADS" -c"$CONNS" -d"$1"s --latency -H "Origin: $ORIGIN" "http://127.0.0.1:$2/api/items" 2>&1
}

log "warm-up ${WARMUP}s each"
run_wrk "$WARMUP" "$P_PLAIN" >/dev/null
run_wrk "$WARMUP" "$P_PLUG" >/dev/null

RESULTS=$TMP/results.txt
: >"$RESULTS"
for r in $(seq "$ROUNDS"); do
    for variant in plain plugins; do
        port=$P_PLAIN
        [[ $variant == plugins ]] && port=$P_PLUG
        pid=$PID_PLAIN
        [[ $variant == plugins ]] && pid=$PID_PLUG
        : >"$TMP/access.log" # keep the disk out of it: the file is truncated, not grown for ever
        calm
        t0=$(cpu_ticks "$pid")
        out=$(run_wrk "$DURATION" "$port")
        t1=$(cpu_ticks "$pid")
        printf '%s\n' "$out" >"$TMP/wrk-$variant-$r.txt"
        rps=$(awk '/^Requests\/sec:/ {print $2}' <<<"$out")
        total=$(awk '/requests in/ {print $1}' <<<"$out")
        p50=$(awk '$1 == "50%" {print $2}' <<<"$out")
        p99=$(awk '$1 == "99%" {print $2}' <<<"$out")
        errs=$(awk '/Non-2xx|Socket errors/ {print}' <<<"$out" | tr '\n' ' ')
        lines=-
        if [[ $variant == plugins ]]; then
            sleep 0.5
            lines=$(wc -l <"$TMP/access.log")
        fi
        log "round $r $variant: $rps req/s (p50 $p50, p99 $p99) ${errs:+[$errs]} log lines $lines of $total"
        us=$(awk -v t=$((t1 - t0)) -v n="$total" -v hz="$(getconf CLK_TCK)" 'BEGIN {printf "%.2f", t / hz * 1e6 / n}')
        log "    gateway CPU: $us us/request"
        printf '%s %s %s %s %s %s %s %s\n' "$variant" "$r" "$rps" "$p50" "$p99" "$total" "$lines" "$us" >>"$RESULTS"
    done
done

drops=$(grep -h "lines dropped" "$TMP/plugins.err" || true)
"$PY" - "$RESULTS" "$DURATION" "$ROUNDS" "$CONNS" "${drops:-none}" <<'EOF'
import statistics, sys
rows = [line.split() for line in open(sys.argv[1]) if line.strip()]

def ms(v):
    for unit, f in (("us", 0.001), ("ms", 1.0), ("s", 1000.0)):
        if v.endswith(unit):
            return float(v[:-len(unit)]) * f
    return float(v)

out = {}
for variant in ("plain", "plugins"):
    rs = [r for r in rows if r[0] == variant]
    rps = [float(r[2]) for r in rs]
    out[variant] = (statistics.median(rps), min(rps), max(rps),
                    statistics.median(ms(r[3]) for r in rs), statistics.median(ms(r[4]) for r in rs),
                    statistics.median(float(r[7]) for r in rs))
print("%s rounds x %s s, wrk -c%s, 1 gateway worker, nginx backend (1 worker)\n" % (sys.argv[3], sys.argv[2], sys.argv[4]))
print("| variant | req/s (median) | range | p50 ms | p99 ms | gateway CPU us/req |")
print("| --- | ---: | ---: | ---: | ---: | ---: |")
for v, label in (("plain", "plain proxy"), ("plugins", "request-id + access-log (file) + cors + ip-restriction")):
    m, lo, hi, p50, p99, us = out[v]
    print("| %s | %.0f | %.0f-%.0f | %.2f | %.2f | %.2f |" % (label, m, lo, hi, p50, p99, us))
ratio = out["plugins"][0] / out["plain"][0]
cpu_ratio = out["plain"][5] / out["plugins"][5]
print("\nplugins / plain: %.3f in req/s, %.3f in requests per CPU second (target >= 0.90)" % (ratio, cpu_ratio))
lines = [r for r in rows if r[0] == "plugins"]
print("access-log lines / requests completed: %s" % ", ".join("%s/%s" % (r[6], r[5]) for r in lines))
print("dropped lines reported: %s" % sys.argv[5])
EOF
