#!/usr/bin/env bash
# shellcheck disable=SC2086  # word lists (TARGETS, WORKERS, PID lists) are split on purpose
# bench/run.sh - Portico's own benchmark: Portico, nginx and HAProxy proxying
# the same nginx backend on loopback, measured with wrk.  `make bench` runs it.
#
#   bench/run.sh                          full run (about 15 minutes)
#   DURATION=3 ROUNDS=2 WORKERS=1 bench/run.sh        quick look
#   PARTS=memory TARGETS="nginx haproxy" bench/run.sh  one part, no Portico
#
# Parts (PARTS, default all three):
#   throughput  req/s, p50/p99 latency and proxy CPU us/request for every
#               target x WORKERS x BODIES, in interleaved rounds
#   memory      RSS per idle keep-alive connection (IDLE_CONNS of them)
#   routes      Portico with 10 vs 10,000 routes (ROUTES), path in the middle
# Results: a table on stdout and JSON in $OUT (bench/results/latest.json);
# bench/to_markdown.py turns the JSON into the tables of docs/benchmarks.md.
# Every process started here is stopped on exit, error and Ctrl-C.
# See docs/benchmarks.md for the method and how to read the figures.
set -Eeuo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BENCH=$ROOT/bench
LIB=$BENCH/lib

# ------------------------------------------------------------------ settings
DURATION=${DURATION:-10}            # seconds per measured wrk run
WARMUP=${WARMUP:-2}                 # seconds of unmeasured load per target/body before the rounds
ROUNDS=${ROUNDS:-5}                 # interleaved rounds; tables show median and range over them
COOLDOWN=${COOLDOWN:-1}             # seconds of rest before each run
CALM_BELOW=${CALM_BELOW:-25}        # before each run, wait until other processes use < this % of a core
CALM_MAX=${CALM_MAX:-20}            # ... but at most this many seconds (CALM_BELOW=0: never wait)
WORKERS=${WORKERS:-1 2}             # nginx worker_processes / HAProxy nbthread / Portico workers
BODIES=${BODIES:-100 16k}           # response sizes: 100 (bytes) and/or 16k (16384 bytes)
TARGETS=${TARGETS:-portico nginx haproxy}   # also: direct (the backend itself, no proxy)
PARTS=${PARTS:-throughput memory routes}
CONNS=${CONNS:-64}                  # wrk -c
THREADS=${THREADS:-1}               # wrk -t
IDLE_CONNS=${IDLE_CONNS:-2000}      # memory part: idle keep-alive connections per target
ROUTES=${ROUTES:-10 10000}          # routes part: route-table sizes
ROUTE_KINDS=${ROUTE_KINDS:-param}   # routes part: which middle route to hit: exact param prefix
ROUTES_WORKERS=${ROUTES_WORKERS:-1}
BACKEND_WORKERS=${BACKEND_WORKERS:-1}
PORT_BASE=${PORT_BASE:-19080}       # backend, portico, nginx, haproxy, then one per ROUTES entry
PORT_LAST=${PORT_LAST:-19090}       # highest port the run may use
PORTICO=${PORTICO:-$ROOT/build/portico}
OUT=${OUT:-$BENCH/results/latest.json}
READY_TIMEOUT=${READY_TIMEOUT:-30}  # seconds for a server to answer after start
KEEP_TMP=${KEEP_TMP:-0}             # 1: keep configs and logs (temp dir is printed)
PY=${PYTHON:-/usr/bin/python3}
[[ -x $PY ]] || PY=python3

log() { printf '[bench %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }
has() { [[ " $1 " == *" $2 "* ]]; }

for v in DURATION WARMUP ROUNDS COOLDOWN CALM_BELOW CALM_MAX CONNS THREADS IDLE_CONNS ROUTES_WORKERS BACKEND_WORKERS \
         PORT_BASE PORT_LAST READY_TIMEOUT; do
    [[ ${!v} =~ ^[0-9]+$ ]] || die "$v must be a whole number (got '${!v}')"
done
for w in $WORKERS; do [[ $w =~ ^[1-9][0-9]*$ ]] || die "WORKERS: '$w' is not a worker count"; done
for b in $BODIES; do [[ $b == 100 || $b == 16k ]] || die "BODIES: '$b' (use 100 and/or 16k)"; done
for t in $TARGETS; do case $t in portico|nginx|haproxy|direct) ;; *) die "TARGETS: unknown '$t'";; esac; done
for p in $PARTS; do case $p in throughput|memory|routes) ;; *) die "PARTS: unknown '$p'";; esac; done
for k in $ROUTE_KINDS; do case $k in exact|param|prefix) ;; *) die "ROUTE_KINDS: unknown '$k'";; esac; done
for n in $ROUTES; do
    if ! [[ $n =~ ^[0-9]+$ ]] || ((n < 3)); then die "ROUTES: '$n' (need a number >= 3)"; fi
done
((ROUNDS >= 1 && DURATION >= 1)) || die "ROUNDS and DURATION must be >= 1"
if has "$PARTS" routes && ! has "$TARGETS" portico; then
    log "routes part skipped: portico is not in TARGETS"
    PARTS=${PARTS//routes/}
fi

BACKEND_PORT=$PORT_BASE
declare -A PORT=([direct]=$BACKEND_PORT [portico]=$((PORT_BASE + 1)) [nginx]=$((PORT_BASE + 2))
                 [haproxy]=$((PORT_BASE + 3)))
ROUTES_PORT0=$((PORT_BASE + 4))
set -- $ROUTES
((ROUTES_PORT0 + $# - 1 <= PORT_LAST)) || die "ROUTES has $# sizes: ports past PORT_LAST=$PORT_LAST"

# ------------------------------------------------------------------ tools
export PATH=$PATH:/usr/sbin:/sbin
missing=()
for tool in curl wrk nginx haproxy; do command -v $tool >/dev/null || missing+=("$tool"); done
((${#missing[@]} == 0)) || die "missing: ${missing[*]}; install with: scripts/deps.sh bench (as root)"
if has "$TARGETS" portico; then
    [[ -x $PORTICO ]] || die "no Portico binary at $PORTICO: run 'make' first, or leave portico out of TARGETS"
fi

ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
NOFILE=$(ulimit -n)
[[ $NOFILE == unlimited ]] && NOFILE=1048576
((NOFILE >= IDLE_CONNS * 2 + 200)) || die "open-file limit $NOFILE too low for IDLE_CONNS=$IDLE_CONNS"
MAXCONN=$(( NOFILE / 2 - 100 )); ((MAXCONN > 10000)) && MAXCONN=10000   # nginx/HAProxy connection caps

# ------------------------------------------------------------------ processes
# SERVERS holds the root PID of every long-lived process we started; FG the
# helper (python + wrk) currently measuring.  cleanup() stops exactly those
# PIDs and their children, nothing found by name.
T=$(mktemp -d "${TMPDIR:-/tmp}/portico-bench.XXXXXX")
chmod 755 "$T"      # nginx workers run as nobody when we are root
mkdir -p "$T/configs" "$T/logs" "$T/www"
SERVERS=()
FG=
declare -A PID_OF=()

children_of() {  # pid: all descendants, depth first
    local c
    for c in $(pgrep -P "$1" 2>/dev/null || true); do echo "$c"; children_of "$c"; done
}
alive() {  # pid: running and not a zombie
    local st
    st=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
    st=${st##*) }
    [[ ${st:0:1} != Z ]]
}
stop_tree() {  # pid: SIGTERM the process and its children, SIGKILL what is left after 5 s
    local root=$1 all p i left=
    alive "$root" || { wait "$root" 2>/dev/null || true; return 0; }
    all="$root $(children_of "$root")"
    kill -TERM $all 2>/dev/null || true
    for ((i = 0; i < 50; i++)); do
        left=
        for p in $all; do alive "$p" && left+=" $p"; done
        [[ -z $left ]] && break
        sleep 0.1
    done
    if [[ -n $left ]]; then log "killing$left (did not stop on SIGTERM)"; kill -KILL $left 2>/dev/null || true; fi
    wait "$root" 2>/dev/null || true
}
stop_server() {  # name
    local pid=${PID_OF[$1]:-} i
    [[ -n $pid ]] || return 0
    stop_tree "$pid"
    unset "PID_OF[$1]"
    for i in "${!SERVERS[@]}"; do [[ ${SERVERS[i]} == "$pid" ]] && unset "SERVERS[i]"; done
    return 0
}
cleanup() {
    local rc=$? i pids
    trap - EXIT INT TERM
    set +e
    [[ -n $FG ]] && stop_tree "$FG"
    pids=("${SERVERS[@]}")
    for ((i = ${#pids[@]} - 1; i >= 0; i--)); do stop_tree "${pids[i]}"; done
    if [[ $KEEP_TMP == 1 || $rc == 1 ]]; then log "configs and logs kept in $T"; else rm -rf "$T"; fi
    exit "$rc"
}
trap cleanup EXIT
trap 'log "interrupted"; exit 130' INT
trap 'log "terminated"; exit 143' TERM

# Run a helper in the background and wait for it, so that Ctrl-C and SIGTERM
# reach the trap at once instead of after the current wrk run.
run_fg() {
    local rc=0
    "$@" &
    FG=$!
    wait "$FG" || rc=$?
    FG=
    return "$rc"
}

port_free() {  # port: nobody listens there and we may bind it
    "$PY" - "$1" <<'EOF'
import socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
try:
    s.bind(("127.0.0.1", int(sys.argv[1])))
except OSError:
    sys.exit(1)
EOF
}

note_cmd() {  # name command...: record the exact command line for the JSON
    "$PY" -c 'import json,shlex,sys; print(json.dumps({"name": sys.argv[1], "cmd": shlex.join(sys.argv[2:])}))' \
        "$@" >>"$T/commands.jsonl"
}

start_server() {  # name logfile command...
    local name=$1 logf=$2; shift 2
    note_cmd "$name" "$@"
    "$@" >"$logf" 2>&1 &
    PID_OF[$name]=$!
    SERVERS+=("$!")
    log "started $name: pid $!"
}

wait_ready() {  # name port path logfile: until the server answers 200
    local name=$1 port=$2 path=$3 logf=$4 i code t0=$SECONDS
    for ((i = 0; i < READY_TIMEOUT * 20; i++)); do
        alive "${PID_OF[$name]}" || { tail -n 30 "$logf" >&2; die "$name exited during startup"; }
        code=$(curl -s -o /dev/null -m 2 -w '%{http_code}' "http://127.0.0.1:$port$path" 2>/dev/null || true)
        [[ $code == 200 ]] && return 0
        sleep 0.05
    done
    tail -n 30 "$logf" >&2
    die "$name: no 200 on http://127.0.0.1:$port$path after ${READY_TIMEOUT}s (last status '$code')"
}

check_body() {  # name url expected-file: the response must be 200 with exactly these bytes
    local got=$T/check.body code
    code=$(curl -sS -o "$got" -m 5 -w '%{http_code}' "$2" 2>&1) || true
    [[ $code == 200 ]] || die "$1: GET $2 answered '$code', expected 200"
    cmp -s "$got" "$3" || die "$1: GET $2 returned $(stat -c %s "$got") bytes that differ from the backend's $(stat -c %s "$3")"
}

check_alive() {
    local name
    for name in "${!PID_OF[@]}"; do
        alive "${PID_OF[$name]}" || die "$name (pid ${PID_OF[$name]}) died; logs in $T/logs"
    done
}

# ------------------------------------------------------------------ servers
body_path() { echo "/$1"; }

NGINX_USER=
if [[ $(id -u) == 0 ]]; then NGINX_USER="user nobody $(id -gn nobody 2>/dev/null || echo nogroup);"; fi

nginx_common() {  # dir workers: the parts every nginx config here shares
    cat <<EOF
$NGINX_USER
daemon off;
master_process on;
worker_processes $2;
worker_rlimit_nofile $NOFILE;
pid $1/nginx.pid;
error_log $1/error.log warn;
events { worker_connections $MAXCONN; }
http {
    access_log off;
    server_tokens off;
    keepalive_timeout 300s;
    keepalive_requests 100000000;
    client_body_temp_path $1/tmp;
    proxy_temp_path $1/tmp;
EOF
}

start_backend() {
    local d=$T/backend
    mkdir -p "$d/tmp"
    head -c 100 /dev/zero | tr '\0' 'p' >"$T/www/100"
    "$PY" -c 'import sys; sys.stdout.write(("portico-bench-16k-" * 1000)[:16384])' >"$T/www/16k"
    chmod 644 "$T/www/"*
    { nginx_common "$d" "$BACKEND_WORKERS"; cat <<EOF
    default_type application/octet-stream;
    open_file_cache max=16 inactive=1h;
    open_file_cache_valid 1h;
    server {
        listen 127.0.0.1:$BACKEND_PORT backlog=4096;
        root $T/www;
        location = /16k { }
        # every other path (the routes part uses many) gets the 100-byte body
        location / { rewrite ^ /100 break; }
    }
}
EOF
    } >"$T/configs/backend-nginx.conf"
    start_server backend "$T/logs/backend.log" nginx -p "$d/" -c "$T/configs/backend-nginx.conf" -e "$d/error.log"
    wait_ready backend "$BACKEND_PORT" /100 "$T/logs/backend.log"
}

start_nginx() {  # workers
    local d=$T/nginx conf=$T/configs/nginx-w$1.conf
    mkdir -p "$d/tmp"
    { nginx_common "$d" "$1"; cat <<EOF
    upstream backend {
        server 127.0.0.1:$BACKEND_PORT;
        keepalive 64;
        keepalive_requests 100000000;
        keepalive_timeout 300s;
    }
    server {
        listen 127.0.0.1:${PORT[nginx]} backlog=4096;
        location / {
            proxy_pass http://backend;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_max_temp_file_size 0;
        }
    }
}
EOF
    } >"$conf"
    start_server nginx "$T/logs/nginx.log" nginx -p "$d/" -c "$conf" -e "$d/error.log"
}

start_haproxy() {  # workers
    local conf=$T/configs/haproxy-w$1.cfg
    cat >"$conf" <<EOF
global
    nbthread $1
    maxconn $MAXCONN
defaults
    mode http
    option http-keep-alive
    http-reuse always
    timeout connect 5s
    timeout client 300s
    timeout server 300s
    timeout http-request 30s
    timeout http-keep-alive 300s
frontend proxy
    bind 127.0.0.1:${PORT[haproxy]}
    default_backend origin
backend origin
    server b1 127.0.0.1:$BACKEND_PORT
EOF
    start_server haproxy "$T/logs/haproxy.log" haproxy -db -f "$conf"
}

start_portico() {  # workers
    local conf=$T/configs/portico-w$1.yaml
    cat >"$conf" <<EOF
server:
  listen: ["127.0.0.1:${PORT[portico]}"]
  workers: $1
services:
  backend:
    targets: ["127.0.0.1:$BACKEND_PORT"]
    keepalive: { max_idle: 64 }
routes:
  - name: all
    match: { paths: ["/*"] }
    service: backend
EOF
    start_server portico "$T/logs/portico.log" "$PORTICO" run -c "$conf"
}

start_proxies() {  # workers
    local t
    for t in $TARGETS; do
        case $t in
        direct) PID_OF[direct]=${PID_OF[backend]}; continue ;;
        nginx) start_nginx "$1" ;;
        haproxy) start_haproxy "$1" ;;
        portico) start_portico "$1" ;;
        esac
        wait_ready "$t" "${PORT[$t]}" /100 "$T/logs/$t.log"
    done
    for t in $TARGETS; do
        check_body "$t" "http://127.0.0.1:${PORT[$t]}/100" "$T/www/100"
        check_body "$t" "http://127.0.0.1:${PORT[$t]}/16k" "$T/www/16k"
    done
    log "all targets return the backend's 100-byte and 16 KiB bodies intact"
}

stop_proxies() {
    local t
    for t in $TARGETS; do
        if [[ $t == direct ]]; then unset "PID_OF[direct]"; else stop_server "$t"; fi
    done
}

rotate() {  # n words...: the words rotated left by n (run order changes every round)
    local n=$1; shift
    local a=("$@") i
    for ((i = 0; i < ${#a[@]}; i++)); do printf '%s ' "${a[(i + n) % ${#a[@]}]}"; done
}

measure() {  # url proxy-pid duration labels...: one wrk run, JSON line appended to $T/load.jsonl
    local url=$1 ppid=$2 dur=$3; shift 3
    local labels=() kv calm=(--calm-below "$CALM_BELOW" --calm-max "$CALM_MAX")
    for kv in "$@"; do
        if [[ $kv == --quiet ]]; then labels+=("$kv"); calm=(); else labels+=(--label "$kv"); fi
    done
    sleep "$COOLDOWN"
    run_fg "$PY" "$LIB/load.py" --url "$url" --duration "$dur" --conns "$CONNS" --threads "$THREADS" \
        --proxy-pid "$ppid" --backend-pid "${PID_OF[backend]}" --log "$T/logs/wrk.log" \
        "${calm[@]}" "${labels[@]}" >>"$T/load.jsonl.part" || die "measurement failed ($url); see $T/logs/wrk.log"
    check_alive
}

# ------------------------------------------------------------------ parts
part_memory() {  # workers
    local t
    log "memory: $IDLE_CONNS idle keep-alive connections per target (workers=$1)"
    for t in $TARGETS; do
        [[ $t == direct ]] && continue
        run_fg "$PY" "$LIB/idle.py" --port "${PORT[$t]}" --path /100 --conns "$IDLE_CONNS" \
            --pid "${PID_OF[$t]}" --label "target=$t" --label "workers=$1" >>"$T/idle.jsonl" ||
            die "memory measurement of $t failed"
        check_alive
    done
}

part_throughput() {  # workers
    local w=$1 r b t pid
    if ((WARMUP > 0)); then
        log "warm-up: ${WARMUP}s per target and body (not recorded)"
        for b in $BODIES; do for t in $TARGETS; do
            measure "http://127.0.0.1:${PORT[$t]}$(body_path "$b")" 0 "$WARMUP" --quiet
        done; done
        : >"$T/load.jsonl.part"
    fi
    for ((r = 1; r <= ROUNDS; r++)); do
        log "throughput round $r/$ROUNDS (workers=$w)"
        for b in $BODIES; do
            for t in $(rotate $((r - 1)) $TARGETS); do
                pid=${PID_OF[$t]}; [[ $t == direct ]] && pid=0
                measure "http://127.0.0.1:${PORT[$t]}$(body_path "$b")" "$pid" "$DURATION" \
                    part=throughput "workers=$w" "body=$b" "target=$t" "round=$r"
            done
        done
        cat "$T/load.jsonl.part" >>"$T/load.jsonl"; : >"$T/load.jsonl.part"
    done
}

declare -A HIT=()   # HIT[N,kind] = request path that hits the middle route of that kind

part_routes() {
    local n i=0 port conf t0 t1 names=() r k
    log "routes: Portico with ${ROUTES// /, } routes, workers=$ROUTES_WORKERS"
    for n in $ROUTES; do
        port=$((ROUTES_PORT0 + i)); i=$((i + 1))
        conf=$T/configs/portico-routes-$n.yaml
        note_cmd "gen-routes-$n" "$PY" "$LIB/gen_routes.py" -n "$n" --listen "127.0.0.1:$port" \
            --backend "127.0.0.1:$BACKEND_PORT" --workers "$ROUTES_WORKERS" -o "$conf"
        "$PY" "$LIB/gen_routes.py" -n "$n" --listen "127.0.0.1:$port" --backend "127.0.0.1:$BACKEND_PORT" \
            --workers "$ROUTES_WORKERS" -o "$conf" >"$T/routes-$n.json"
        for k in exact param prefix; do
            HIT[$n,$k]=$("$PY" -c 'import json,sys; print(json.load(open(sys.argv[1]))["hits"][sys.argv[2]]["path"])' \
                "$T/routes-$n.json" "$k")
        done
        t0=$(date +%s.%N)
        start_server "routes-$n" "$T/logs/routes-$n.log" "$PORTICO" run -c "$conf"
        PORT[routes-$n]=$port
        wait_ready "routes-$n" "$port" "${HIT[$n,param]}" "$T/logs/routes-$n.log"
        t1=$(date +%s.%N)
        for k in $ROUTE_KINDS; do
            check_body "routes-$n" "http://127.0.0.1:$port${HIT[$n,$k]}" "$T/www/100"
        done
        code=$(curl -s -o /dev/null -m 5 -w '%{http_code}' "http://127.0.0.1:$port/api/none/status" || true)
        [[ $code == 404 ]] || log "warning: routes-$n answered '$code', not 404, for a path no route matches"
        "$PY" "$LIB/proctree.py" instance "$T/routes-$n.json" "${PID_OF[routes-$n]}" "$t0" "$t1" \
            "$code" >>"$T/routes.jsonl"
        names+=("$n")
    done
    if ((WARMUP > 0)); then
        for n in "${names[@]}"; do for k in $ROUTE_KINDS; do
            measure "http://127.0.0.1:${PORT[routes-$n]}${HIT[$n,$k]}" 0 "$WARMUP" --quiet
        done; done
        : >"$T/load.jsonl.part"
    fi
    for ((r = 1; r <= ROUNDS; r++)); do
        log "routes round $r/$ROUNDS"
        for k in $ROUTE_KINDS; do
            for n in $(rotate $((r - 1)) "${names[@]}"); do
                measure "http://127.0.0.1:${PORT[routes-$n]}${HIT[$n,$k]}" "${PID_OF[routes-$n]}" \
                    "$DURATION" part=routes "workers=$ROUTES_WORKERS" body=100 target=portico \
                    "routes=$n" "kind=$k" "round=$r"
            done
        done
        cat "$T/load.jsonl.part" >>"$T/load.jsonl"; : >"$T/load.jsonl.part"
    done
    for n in "${names[@]}"; do stop_server "routes-$n"; done
}

# ------------------------------------------------------------------ main
need_ports=("$BACKEND_PORT")
for t in $TARGETS; do need_ports+=("${PORT[$t]}"); done
if has "$PARTS" routes; then
    i=0; for n in $ROUTES; do need_ports+=($((ROUTES_PORT0 + i))); i=$((i + 1)); done
fi
for p in $(printf '%s\n' "${need_ports[@]}" | sort -un); do
    ((p <= PORT_LAST)) || die "port $p is above PORT_LAST=$PORT_LAST"
    port_free "$p" || die "port $p is in use (ports $PORT_BASE-$PORT_LAST are reserved for the benchmark; set PORT_BASE)"
done

: >"$T/load.jsonl"; : >"$T/load.jsonl.part"; : >"$T/idle.jsonl"; : >"$T/routes.jsonl"; : >"$T/commands.jsonl"
STARTED=$(date -u +%Y-%m-%dT%H:%M:%SZ)
"$PY" "$LIB/machine.py" --portico "$PORTICO" --repo "$ROOT" >"$T/machine.json"
busy=$("$PY" -c 'import json,sys; print(int(json.load(open(sys.argv[1]))["machine"]["busy_at_start_pct"] or 0))' "$T/machine.json")
((busy < 20)) || log "WARNING: other processes keep ${busy}% of a core busy; expect noisy figures (look at the ranges)"
note_cmd wrk wrk -t "$THREADS" -c "$CONNS" -d "${DURATION}s" -s "$LIB/wrk-summary.lua" "http://127.0.0.1:PORT/PATH"
note_cmd idle "$PY" "$LIB/idle.py" --port PORT --path /100 --conns "$IDLE_CONNS" --pid PID
log "temp dir $T; parts: $PARTS; targets: $TARGETS; workers: $WORKERS; bodies: $BODIES"
log "rounds $ROUNDS x ${DURATION}s, wrk -t$THREADS -c$CONNS, ports $PORT_BASE-$PORT_LAST"

start_backend
if has "$PARTS" throughput || has "$PARTS" memory; then
    for w in $WORKERS; do
        log "=== workers=$w ==="
        start_proxies "$w"
        # memory first, on fresh processes: after load runs, freed memory is
        # reused and the per-connection delta would look smaller than it is
        has "$PARTS" memory && part_memory "$w"
        has "$PARTS" throughput && part_throughput "$w"
        stop_proxies
    done
fi
has "$PARTS" routes && part_routes

mkdir -p "$(dirname "$OUT")"
"$PY" "$LIB/report.py" --dir "$T" --out "$OUT" \
    --set "started=$STARTED" --set "finished=$(date -u +%Y-%m-%dT%H:%M:%SZ)" \
    --set "parts=$PARTS" --set "targets=$TARGETS" --set "workers=$WORKERS" --set "bodies=$BODIES" \
    --set "duration_s=$DURATION" --set "warmup_s=$WARMUP" --set "rounds=$ROUNDS" \
    --set "cooldown_s=$COOLDOWN" --set "calm_below_pct=$CALM_BELOW" --set "calm_max_s=$CALM_MAX" --set "conns=$CONNS" --set "threads=$THREADS" \
    --set "idle_conns=$IDLE_CONNS" --set "routes=$ROUTES" --set "route_kinds=$ROUTE_KINDS" \
    --set "routes_workers=$ROUTES_WORKERS" --set "backend_workers=$BACKEND_WORKERS" \
    --set "port_base=$PORT_BASE" --set "maxconn=$MAXCONN" --set "nofile=$NOFILE"
log "JSON: $OUT   markdown: $PY bench/to_markdown.py $OUT"
