#!/usr/bin/env bash
# bench/reload.sh - what a configuration reload costs under full load.
#
#   bench/reload.sh                       ROUNDS pairs of DURATION-second runs
#   DURATION=5 ROUNDS=1 bench/reload.sh   quick look
#
# Portico (WORKERS workers) proxies a one-worker nginx backend; wrk keeps
# CONNS keep-alive connections busy.  Each round runs twice back to back:
# once undisturbed, once while the configuration is swapped every
# INTERVAL seconds, alternating SIGHUP (the file rewritten with a new route)
# and PUT /config through the admin API.  It reports requests/s, p50, p99,
# socket errors and non-2xx answers for both, and the p99 ratio
# (reloading / quiet).  Target: no failed request and a p99 ratio of at most 2.
# Needs: nginx, wrk, curl, python3.  Every process started is stopped on exit.
set -Eeuo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DURATION=${DURATION:-10}
ROUNDS=${ROUNDS:-3}
WORKERS=${WORKERS:-1}
CONNS=${CONNS:-64}
INTERVAL=${INTERVAL:-0.5}
PORT_BASE=${PORT_BASE:-19280} # backend, portico, admin
PORTICO=${PORTICO:-$ROOT/build/portico}
PY=${PYTHON:-/usr/bin/python3}
[[ -x $PY ]] || PY=python3

log() { printf '[reload-bench %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }
for tool in nginx wrk curl; do command -v "$tool" >/dev/null || die "$tool is not installed"; done
[[ -x $PORTICO ]] || die "no gateway binary at $PORTICO (make first)"

BE=$PORT_BASE GW=$((PORT_BASE + 1)) ADM=$((PORT_BASE + 2))
T=$(mktemp -d /tmp/portico-reload.XXXXXX)
chmod 755 "$T"
PIDS=()
cleanup() {
    local p
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    sleep 0.3
    for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null || true; done
    rm -rf "$T"
}
trap cleanup EXIT

mkdir -p "$T/nginx/tmp"
cat >"$T/nginx/nginx.conf" <<EOF
worker_processes 1;
daemon off;
pid $T/nginx/nginx.pid;
error_log $T/nginx/error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    keepalive_requests 1000000;
    keepalive_timeout 300s;
    client_body_temp_path $T/nginx/tmp;
    proxy_temp_path $T/nginx/tmp;
    server {
        listen 127.0.0.1:$BE backlog=4096;
        location / { return 200 '$(printf 'reload-bench:%087d' 0)'; }
    }
}
EOF
nginx -p "$T/nginx/" -c "$T/nginx/nginx.conf" >/dev/null 2>&1 &
PIDS+=($!)

config() { # generation
    cat <<EOF
server:
  listen: ["127.0.0.1:$GW"]
  workers: $WORKERS
admin:
  listen: "127.0.0.1:$ADM"
services:
  backend:
    targets: ["127.0.0.1:$BE"]
    keepalive: { max_idle: 64 }
routes:
  - name: all
    match: { paths: ["/*"] }
    service: backend
  - name: gen$1
    match: { paths: ["/gen$1/*"] }
    service: backend
EOF
}
config 0 >"$T/portico.yaml"
"$PORTICO" run -c "$T/portico.yaml" 2>"$T/portico.log" &
GWPID=$!
PIDS+=("$GWPID")
for _ in $(seq 100); do curl -sf -o /dev/null "http://127.0.0.1:$GW/x" && break; sleep 0.1; done
curl -sf -o /dev/null "http://127.0.0.1:$GW/x" || die "the gateway does not answer (log: $T/portico.log)"

cat >"$T/report.lua" <<'EOF'
done = function(summary, latency, requests)
    local e = summary.errors
    io.write(string.format("RESULT %d %.3f %.3f %.3f %d %d\n", summary.requests,
        summary.requests / (summary.duration / 1e6), latency:percentile(50) / 1000,
        latency:percentile(99) / 1000, e.connect + e.read + e.write + e.timeout, e.status))
end
EOF

reloader() { # runs until killed; alternates SIGHUP and PUT /config
    local gen=1
    while :; do
        config "$gen" >"$T/next.yaml"
        if ((gen % 2)); then
            mv "$T/next.yaml" "$T/portico.yaml"
            kill -HUP "$GWPID"
        else
            curl -s -o /dev/null -X PUT --data-binary "@$T/next.yaml" "http://127.0.0.1:$ADM/config"
        fi
        gen=$((gen + 1))
        sleep "$INTERVAL"
    done
}

run() { # label
    wrk -t1 -c"$CONNS" -d"${DURATION}s" -s "$T/report.lua" "http://127.0.0.1:$GW/x" | grep '^RESULT' |
        sed "s/^RESULT/$1/"
}

log "temp dir $T; workers=$WORKERS conns=$CONNS ${DURATION}s x $ROUNDS rounds, a reload every ${INTERVAL}s"
wrk -t1 -c"$CONNS" -d2s "http://127.0.0.1:$GW/x" >/dev/null # warm-up
: >"$T/results"
for r in $(seq "$ROUNDS"); do
    run quiet >>"$T/results"
    before=$(grep -c 'configuration .* applied' "$T/portico.log" || true)
    reloader &
    RP=$!
    PIDS+=("$RP")
    run reloading >>"$T/results"
    kill "$RP" 2>/dev/null || true
    wait "$RP" 2>/dev/null || true
    after=$(grep -c 'configuration .* applied' "$T/portico.log" || true)
    log "round $r: $((after - before)) reloads applied during the loaded run"
    echo "reloads $((after - before))" >>"$T/results"
done

"$PY" - "$T/results" <<'EOF'
import statistics, sys
rows = {"quiet": [], "reloading": []}
reloads = []
for line in open(sys.argv[1]):
    f = line.split()
    if f[0] == "reloads":
        reloads.append(int(f[1]))
    else:
        rows[f[0]].append([float(x) for x in f[1:]])
print("%-10s %8s %10s %8s %8s %7s %7s" % ("run", "requests", "req/s", "p50 ms", "p99 ms", "errors", "non2xx"))
for k, v in rows.items():
    for x in v:
        print("%-10s %8d %10.0f %8.2f %8.2f %7d %7d" % (k, x[0], x[1], x[2], x[3], x[4], x[5]))
q = statistics.median(x[3] for x in rows["quiet"])
l = statistics.median(x[3] for x in rows["reloading"])
failed = sum(x[4] + x[5] for x in rows["reloading"])
print("reloads applied under load: %s; failed requests while reloading: %d; "
      "p99 median quiet %.2f ms, reloading %.2f ms, ratio %.2f" % (reloads, failed, q, l, l / q))
EOF
