#!/usr/bin/env bash
# bench/cache.sh - cache HITs: Portico's `cache` plugin vs nginx `proxy_cache`,
# same backend, same response, same wrk load, in one run.
#
#   bench/cache.sh                                   1 and 2 workers, 3 rounds of 10 s
#   DURATION=3 ROUNDS=1 WORKERS=1 bench/cache.sh     quick look
#   BODY=16384 bench/cache.sh                        a 16 KiB response
#
# Both gateways are warmed with one request (a MISS), checked to answer HIT,
# then loaded with wrk on that one URL: every measured request is a cache
# hit.  Rounds interleave the targets; the table shows the median req/s and
# the p99 latency of the median run.  Every process started here is stopped
# by PID on exit, error and Ctrl-C.  Needs: nginx (nginx-light has
# proxy_cache), wrk, curl, python3; a release build of Portico (make).
set -Eeuo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DURATION=${DURATION:-10}
ROUNDS=${ROUNDS:-3}
WORKERS=${WORKERS:-1 2}
CONNS=${CONNS:-64}
THREADS=${THREADS:-1}
BODY=${BODY:-100}                   # response body bytes
PORT_BASE=${PORT_BASE:-19280}       # backend, portico, nginx
PORTICO=${PORTICO:-$ROOT/build/portico}
PY=${PYTHON:-/usr/bin/python3}
[[ -x $PY ]] || PY=python3
export PATH=$PATH:/usr/sbin:/sbin

log() { printf '[cache-bench %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }
for tool in nginx wrk curl; do command -v $tool >/dev/null || die "missing $tool (apt-get install nginx-light wrk curl)"; done
[[ -x $PORTICO ]] || die "no Portico binary at $PORTICO (run make)"
for v in DURATION ROUNDS CONNS THREADS BODY PORT_BASE; do
    [[ ${!v} =~ ^[0-9]+$ ]] || die "$v must be a whole number"
done

BE_PORT=$PORT_BASE
PT_PORT=$((PORT_BASE + 1))
NG_PORT=$((PORT_BASE + 2))
T=$(mktemp -d "${TMPDIR:-/tmp}/portico-cache-bench.XXXXXX")
chmod 755 "$T"
PIDS=()

stop_pid() {
    local p=$1 i
    kill -TERM "$p" 2>/dev/null || return 0
    for ((i = 0; i < 50; i++)); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$p" 2>/dev/null || true
    wait "$p" 2>/dev/null || true
}
cleanup() {
    local rc=$? p
    trap - EXIT INT TERM
    set +e
    for p in "${PIDS[@]}"; do stop_pid "$p"; done
    [[ -f $T/nginx.pid ]] && stop_pid "$(cat "$T/nginx.pid")"
    rm -rf "$T"
    exit "$rc"
}
trap cleanup EXIT
trap 'log interrupted; exit 130' INT TERM

wait_port() {
    local i
    for ((i = 0; i < 100; i++)); do
        curl -s -o /dev/null "http://127.0.0.1:$1/" && return 0
        sleep 0.1
    done
    die "nothing answers on port $1"
}

# ---- the backend: a cacheable response, and a count of what reached it
cat >"$T/backend.py" <<'EOF'
import http.server, sys
body = b"x" * int(sys.argv[2])
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Cache-Control", "max-age=3600")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a):
        sys.stderr.write("hit backend\n")
http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
EOF
$PY "$T/backend.py" "$BE_PORT" "$BODY" 2>"$T/backend.log" &
PIDS+=($!)
wait_port "$BE_PORT"

start_portico() {  # workers
    cat >"$T/portico.yaml" <<EOF
server:
  listen: ["127.0.0.1:$PT_PORT"]
  workers: $1
  log_level: warn
services:
  be: { targets: ["127.0.0.1:$BE_PORT"], keepalive: { max_idle: 64 } }
routes:
  - name: bench
    match: { paths: ["/*"] }
    service: be
    plugins:
      cache: { ttl: 1h, max_memory: 64m }
EOF
    "$PORTICO" run -c "$T/portico.yaml" 2>"$T/portico.log" &
    PT_PID=$!
    PIDS+=("$PT_PID")
    wait_port "$PT_PORT"
}

start_nginx() {  # workers
    mkdir -p "$T/ngx" "$T/cache"
    chmod 777 "$T/cache"
    cat >"$T/nginx.conf" <<EOF
worker_processes $1;
pid $T/nginx.pid;
error_log $T/nginx.err warn;
events { worker_connections 4096; }
http {
    access_log off;
    client_body_temp_path $T/ngx/body;
    proxy_temp_path $T/ngx/proxy;
    fastcgi_temp_path $T/ngx/fcgi;
    uwsgi_temp_path $T/ngx/uwsgi;
    scgi_temp_path $T/ngx/scgi;
    proxy_cache_path $T/cache levels=1:2 keys_zone=bench:16m max_size=64m inactive=1h;
    upstream be { server 127.0.0.1:$BE_PORT; keepalive 64; }
    server {
        listen 127.0.0.1:$NG_PORT reuseport;
        location / {
            proxy_pass http://be;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_cache bench;
            proxy_cache_lock on;
            add_header X-Cache \$upstream_cache_status;
        }
    }
}
EOF
    nginx -c "$T/nginx.conf" -e "$T/nginx.err" 2>>"$T/nginx.err" || die "nginx did not start: $(cat "$T/nginx.err")"
    wait_port "$NG_PORT"
}

stop_portico() { stop_pid "$PT_PID"; }
stop_nginx() { stop_pid "$(cat "$T/nginx.pid")"; rm -f "$T/nginx.pid"; }

check_hit() {  # port
    local h
    curl -s -o /dev/null "http://127.0.0.1:$1/item" || true
    h=$(curl -s -D - -o /dev/null "http://127.0.0.1:$1/item" | tr -d '\r' | awk -F': ' 'tolower($1)=="x-cache"{print $2}')
    [[ $h == HIT ]] || die "port $1 does not answer from its cache (X-Cache: ${h:-none})"
}

run_wrk() {  # port -> "rps p99ms"
    wrk -t"$THREADS" -c"$CONNS" -d"${DURATION}s" --latency "http://127.0.0.1:$1/item" >"$T/wrk.out" 2>&1
    local rps p99
    rps=$(awk '/^Requests\/sec/{print $2}' "$T/wrk.out")
    p99=$(awk '$1=="99%"{print $2}' "$T/wrk.out")
    grep -q "Non-2xx" "$T/wrk.out" && die "errors under load: $(cat "$T/wrk.out")"
    echo "$rps $p99"
}

median() { sort -g | awk '{a[NR]=$0} END {print a[int((NR+1)/2)]}'; }

declare -A RES=()
for w in $WORKERS; do
    start_portico "$w"
    start_nginx "$w"
    check_hit "$PT_PORT"
    check_hit "$NG_PORT"
    before=$(wc -l <"$T/backend.log")
    for ((r = 1; r <= ROUNDS; r++)); do
        for t in portico nginx; do
            port=$PT_PORT; [[ $t == nginx ]] && port=$NG_PORT
            sleep 1
            out=$(run_wrk "$port")
            log "workers=$w round=$r $t: $out"
            RES[$t.$w]+="$out"$'\n'
        done
    done
    after=$(wc -l <"$T/backend.log")
    ((after == before)) || log "warning: $((after - before)) requests reached the backend during the runs"
    stop_portico
    stop_nginx
done

printf '\n%-8s %-8s %12s %10s\n' workers target "req/s" "p99"
for w in $WORKERS; do
    for t in portico nginx; do
        rps=$(printf '%s' "${RES[$t.$w]}" | awk 'NF{print $1}' | median)
        p99=$(printf '%s' "${RES[$t.$w]}" | awk -v m="$rps" 'NF && $1==m{print $2; exit}')
        printf '%-8s %-8s %12s %10s\n' "$w" "$t" "$rps" "$p99"
    done
done
printf '\n(body %s bytes, wrk -t%s -c%s, %s x %ss rounds, median; %s)\n' "$BODY" "$THREADS" "$CONNS" \
    "$ROUNDS" "$DURATION" "$(nproc) cores"
