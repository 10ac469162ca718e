#!/usr/bin/env bash
# bench/tls.sh - TLS proxying: Portico vs nginx, each terminating TLS in front
# of the same nginx backend on loopback, measured with wrk in the same run.
#
#   bench/tls.sh                              full run (about 3 minutes)
#   DURATION=3 ROUNDS=1 WORKERS=1 bench/tls.sh    quick look
#
# Besides requests/s, each run records the gateway's CPU time (user +
# system, all its threads or worker processes) per request, which a busy
# machine disturbs much less than throughput.
#
# Load: wrk over HTTPS (TLS 1.3, ECDSA P-256 certificate), CONNS connections;
# every PER_CONN-th request of a wrk thread carries `Connection: close`, so a
# connection serves PER_CONN requests on average and then a new one makes a
# full handshake (wrk does not resume sessions).  Both gateways keep
# upstream connections alive to a one-worker nginx backend answering BODY
# bytes.  Rounds alternate Portico and nginx; the table gives the median
# requests/s over ROUNDS runs of DURATION seconds, for each WORKERS count
# (Portico workers = nginx worker_processes = wrk threads).
# Needs: nginx (with ssl), wrk, openssl, python3.  Every process started here
# is stopped on exit.  See docs/benchmarks.md, section TLS.
set -Eeuo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DURATION=${DURATION:-10}
ROUNDS=${ROUNDS:-3}
WORKERS=${WORKERS:-1 2}
CONNS=${CONNS:-64}
PER_CONN=${PER_CONN:-100}
BODY=${BODY:-100}
PORT_BASE=${PORT_BASE:-19180}   # backend, portico, nginx
PORTICO=${PORTICO:-$ROOT/build/portico}
PY=${PYTHON:-/usr/bin/python3}
[[ -x $PY ]] || PY=python3

log() { printf '[tls-bench %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

for tool in nginx wrk openssl; do
    command -v "$tool" >/dev/null || die "$tool is not installed"
done
[[ -x $PORTICO ]] || die "no Portico binary at $PORTICO (run make, or set PORTICO)"

TMP=$(mktemp -d /tmp/portico-tls-bench.XXXXXX)
PIDS=()
cleanup() {
    local pid
    for pid in "${PIDS[@]}"; do
        kill "$pid" 2>/dev/null || true
    done
    for pid in "${PIDS[@]}"; do
        wait "$pid" 2>/dev/null || true
    done
    if [[ ${KEEP_TMP:-0} == 1 ]]; then log "kept $TMP"; else rm -rf "$TMP"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

BP=$PORT_BASE
PP=$((PORT_BASE + 1))
NP=$((PORT_BASE + 2))

# ------------------------------------------------------------ certificates
(
    cd "$TMP"
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout ca.key -out ca.pem \
        -days 7 -subj "/CN=bench CA" 2>/dev/null
    openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout srv.key -out srv.csr \
        -subj "/CN=localhost" 2>/dev/null
    printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\n' >srv.ext
    openssl x509 -req -in srv.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out srv.pem -days 7 \
        -extfile srv.ext 2>/dev/null
    cat srv.pem ca.pem >chain.pem
)

wait_port() { # port: until it accepts
    local _
    for _ in $(seq 1 200); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
        sleep 0.05
    done
    die "nothing listens on port $1"
}

start_bg() { # log-file command...: start in the background, remember the PID
    local out=$1
    shift
    "$@" >"$out" 2>&1 &
    PIDS+=($!)
    LAST_PID=$!
}

stop_pid() {
    kill "$1" 2>/dev/null || true
    wait "$1" 2>/dev/null || true
}

# ------------------------------------------------------------ the backend
body=$(head -c "$BODY" /dev/zero | tr '\0' 'x')
mkdir -p "$TMP/backend"
cat >"$TMP/backend/nginx.conf" <<EOF
daemon off;
worker_processes 1;
error_log stderr error;
pid $TMP/backend/nginx.pid;
events { worker_connections 4096; }
http {
    access_log off;
    keepalive_requests 1000000;
    server {
        listen 127.0.0.1:$BP reuseport;
        location / { default_type text/plain; return 200 "$body"; }
    }
}
EOF
start_bg "$TMP/backend/log" nginx -p "$TMP/backend" -c "$TMP/backend/nginx.conf"
wait_port "$BP"

# ------------------------------------------------------------ the gateways
start_portico() { # workers
    cat >"$TMP/portico.yaml" <<EOF
server:
  listen:
    - address: "127.0.0.1:$PP"
      tls:
        certificates: [{cert: chain.pem, key: srv.key}]
  workers: $1
  log_level: warn
services:
  backend: {targets: ["127.0.0.1:$BP"], keepalive: {max_idle: 256}}
routes:
  - {name: all, match: {paths: ["/*", "/"]}, service: backend}
EOF
    start_bg "$TMP/portico.log" "$PORTICO" run -c "$TMP/portico.yaml"
    PORTICO_PID=$LAST_PID
    wait_port "$PP"
}

start_nginx() { # workers
    mkdir -p "$TMP/front"
    cat >"$TMP/front/nginx.conf" <<EOF
daemon off;
worker_processes $1;
error_log stderr error;
pid $TMP/front/nginx.pid;
events { worker_connections 8192; }
http {
    access_log off;
    keepalive_requests 1000000;
    upstream backend { server 127.0.0.1:$BP; keepalive 256; }
    server {
        listen 127.0.0.1:$NP ssl reuseport;
        ssl_certificate $TMP/chain.pem;
        ssl_certificate_key $TMP/srv.key;
        ssl_protocols TLSv1.2 TLSv1.3;
        location / {
            proxy_pass http://backend;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }
    }
}
EOF
    start_bg "$TMP/front/log" nginx -p "$TMP/front" -c "$TMP/front/nginx.conf"
    NGINX_PID=$LAST_PID
    wait_port "$NP"
}

cat >"$TMP/close.lua" <<EOF
-- every PER_CONN-th request of this thread closes its connection
-- (the requests are built in init: wrk.headers has no Host before that)
local n, plain, closing = 0, nil, nil
init = function(args)
    plain = wrk.format("GET", "/")
    closing = wrk.format("GET", "/", {["Connection"] = "close"})
end
request = function()
    n = n + 1
    if n % $PER_CONN == 0 then
        return closing
    end
    return plain
end
EOF

cpu_ticks() { # pid...: user+system clock ticks of these processes (all threads)
    local t=0 pid f
    for pid in "$@"; do
        if read -r -a f <"/proc/$pid/stat" 2>/dev/null; then
            t=$((t + f[13] + f[14]))
        fi
    done
    echo "$t"
}

gateway_pids() { # portico|nginx
    if [[ $1 == portico ]]; then
        echo "$PORTICO_PID"
    else
        echo "$NGINX_PID $(pgrep -P "$NGINX_PID" | tr '\n' ' ')"
    fi
}

run_wrk() { # port threads [seconds] [pids...] -> prints "requests/s cpu-us-per-request"
    local out port=$1 threads=$2 secs=${3:-$DURATION}
    shift 3 || shift $#
    local before after hz
    hz=$(getconf CLK_TCK)
    before=$(cpu_ticks "$@")
    out=$(wrk -t "$threads" -c "$CONNS" -d "${secs}s" -s "$TMP/close.lua" "https://127.0.0.1:$port/" 2>&1)
    after=$(cpu_ticks "$@")
    printf '%s\n' "$out" >>"$TMP/wrk.log"
    if grep -q "Non-2xx" <<<"$out"; then log "non-2xx answers on port $port"; fi
    awk -v ticks=$((after - before)) -v hz="$hz" '
        / requests in / {n = $1}
        /^Requests\/sec:/ {rps = $2}
        END {printf "%s %.1f\n", rps, (n > 0 ? ticks * 1e6 / hz / n : 0)}' <<<"$out"
}

results=$TMP/results.txt
: >"$results"
log "body $BODY bytes, $CONNS connections, a new TLS connection every $PER_CONN requests, ${DURATION}s x $ROUNDS rounds"
for w in $WORKERS; do
    start_portico "$w"
    start_nginx "$w"
    run_wrk "$PP" "$w" 2 >/dev/null # warm-up
    run_wrk "$NP" "$w" 2 >/dev/null
    for r in $(seq 1 "$ROUNDS"); do
        if ((r % 2)); then order="portico nginx"; else order="nginx portico"; fi
        for target in $order; do
            port=$PP
            [[ $target == nginx ]] && port=$NP
            # shellcheck disable=SC2046
            read -r rps us < <(run_wrk "$port" "$w" "$DURATION" $(gateway_pids "$target"))
            log "workers=$w round=$r $target: $rps req/s, $us us CPU/request"
            printf '%s %s %s %s\n' "$w" "$target" "$rps" "$us" >>"$results"
        done
    done
    stop_pid "$PORTICO_PID"
    stop_pid "$NGINX_PID"
done

"$PY" - "$results" <<'EOF'
import statistics, sys
rows = [line.split() for line in open(sys.argv[1]) if line.strip()]
rps, cpu = {}, {}
for w, target, r, us in rows:
    rps.setdefault((int(w), target), []).append(float(r))
    cpu.setdefault((int(w), target), []).append(float(us))
med = lambda d, k: statistics.median(d.get(k, [0]))
print("| workers | Portico req/s | nginx req/s | ratio | Portico CPU us/req | nginx CPU us/req | ratio |")
print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
for w in sorted({k[0] for k in rps}):
    p, n = med(rps, (w, "portico")), med(rps, (w, "nginx"))
    pc, nc = med(cpu, (w, "portico")), med(cpu, (w, "nginx"))
    print("| %d | %.0f | %.0f | %.2f | %.1f | %.1f | %.2f |"
          % (w, p, n, p / n if n else 0, pc, nc, pc / nc if nc else 0))
EOF
