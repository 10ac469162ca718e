#!/usr/bin/env bash
# bench/failover.sh - "with a target killed every 10 s under load: zero failed
# GETs".  Three backends behind one Portico service; wrk sends GETs for
# DURATION seconds while, every PERIOD seconds, one backend is killed
# (SIGKILL: in-flight requests and pooled connections are cut) and the one
# killed before is started again.  The failed-request count is wrk's non-2xx
# answers plus its socket errors (connect, read, write, timeout).
#
#   bench/failover.sh                          60 s, a kill every 10 s
#   DURATION=20 PERIOD=5 bench/failover.sh     quick look
#   WORKERS=2 CONNS=64 bench/failover.sh
#
# The service masks failures with retries (attempts 2, budget 20%, backoff),
# passive ejection (3 failures) and active checks (every 500 ms), as
# docs/resilience.md describes.  Every process started here is stopped by
# PID on exit, error and Ctrl-C.  Needs: wrk, curl, python3; a release
# build of Portico (make).
set -Eeuo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DURATION=${DURATION:-60}
PERIOD=${PERIOD:-10}
WORKERS=${WORKERS:-1}
CONNS=${CONNS:-32}
THREADS=${THREADS:-1}
PORT_BASE=${PORT_BASE:-19380} # portico, then the three backends
PORTICO=${PORTICO:-$ROOT/build/portico}
PY=${PYTHON:-/usr/bin/python3}
[[ -x $PY ]] || PY=python3

log() { printf '[failover-bench %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }
for tool in wrk curl; do command -v $tool >/dev/null || die "missing $tool (apt-get install wrk curl)"; done
[[ -x $PORTICO ]] || die "no Portico binary at $PORTICO (run make)"
for v in DURATION PERIOD WORKERS CONNS THREADS PORT_BASE; do
    [[ ${!v} =~ ^[0-9]+$ ]] || die "$v must be a whole number"
done

PT_PORT=$PORT_BASE
BE_PORTS=($((PORT_BASE + 1)) $((PORT_BASE + 2)) $((PORT_BASE + 3)))
T=$(mktemp -d "${TMPDIR:-/tmp}/portico-failover-bench.XXXXXX")
BE_PIDS=(0 0 0)
PT_PID=0

stop_pid() {
    local p=$1 sig=${2:-TERM} i
    [[ $p -gt 0 ]] || return 0
    kill -"$sig" "$p" 2>/dev/null || return 0
    for ((i = 0; i < 50; i++)); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$p" 2>/dev/null || true
    wait "$p" 2>/dev/null || true
}
cleanup() {
    local rc=$? i
    trap - EXIT INT TERM
    set +e
    for i in 0 1 2; do stop_pid "${BE_PIDS[$i]}"; done
    stop_pid "$PT_PID"
    rm -rf "$T"
    exit "$rc"
}
trap cleanup EXIT INT TERM

cat >"$T/backend.py" <<'EOF'
import http.server, sys
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    wbufsize = 65536               # head and body in one write (flushed per request)
    disable_nagle_algorithm = True
    def do_GET(self):
        body = b'{"ok":true}\n'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a):
        pass
class S(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 512
S(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
EOF

start_backend() {
    local i=$1
    "$PY" "$T/backend.py" "${BE_PORTS[$i]}" >/dev/null 2>&1 &
    BE_PIDS[$i]=$!
    local k
    for ((k = 0; k < 100; k++)); do
        curl -fs -o /dev/null "http://127.0.0.1:${BE_PORTS[$i]}/" && return 0
        sleep 0.05
    done
    die "backend $i did not start"
}

cat >"$T/portico.yaml" <<EOF
server:
  listen: ["127.0.0.1:$PT_PORT"]
  workers: $WORKERS
  log_level: warn
services:
  app:
    targets: ["127.0.0.1:${BE_PORTS[0]}", "127.0.0.1:${BE_PORTS[1]}", "127.0.0.1:${BE_PORTS[2]}"]
    timeouts: { connect: 500ms, read: 5s }
    retries: { attempts: 2, budget: 20%, backoff: { base: 10ms, max: 100ms } }
    health:
      active: { path: /, interval: 500ms, timeout: 400ms, healthy: 1, unhealthy: 2 }
      passive: { failures: 3, window: 10s, ejection: 2s }
routes:
  - { name: app, match: { paths: ["/*"] }, service: app }
EOF

for i in 0 1 2; do start_backend "$i"; done
"$PORTICO" run -c "$T/portico.yaml" 2>"$T/portico.log" &
PT_PID=$!
for ((k = 0; k < 100; k++)); do
    curl -fs -o /dev/null "http://127.0.0.1:$PT_PORT/" && break
    sleep 0.05
done
curl -fs -o /dev/null "http://127.0.0.1:$PT_PORT/" || die "portico did not start: $(tail -5 "$T/portico.log")"

log "portico $("$PORTICO" version | head -1), $WORKERS worker(s); wrk -t$THREADS -c$CONNS -d${DURATION}s; a backend killed every ${PERIOD}s"
wrk -t"$THREADS" -c"$CONNS" -d"${DURATION}s" --latency "http://127.0.0.1:$PT_PORT/items" >"$T/wrk.txt" 2>&1 &
WRK_PID=$!

kills=0
victim=-1
elapsed=0
while ((elapsed + PERIOD < DURATION)); do
    sleep "$PERIOD"
    elapsed=$((elapsed + PERIOD))
    if ((victim >= 0)); then
        start_backend "$victim"
        log "t=${elapsed}s restarted backend $victim"
    fi
    victim=$(((victim + 1) % 3))
    kill -KILL "${BE_PIDS[$victim]}"
    wait "${BE_PIDS[$victim]}" 2>/dev/null || true
    BE_PIDS[$victim]=0
    kills=$((kills + 1))
    log "t=${elapsed}s killed backend $victim"
done
wait "$WRK_PID" || die "wrk failed: $(cat "$T/wrk.txt")"

total=$(awk '/requests in/ {print $1}' "$T/wrk.txt")
non2xx=$(awk '/Non-2xx or 3xx responses:/ {print $5}' "$T/wrk.txt")
non2xx=${non2xx:-0}
sockerr=$(awk '/Socket errors:/ {gsub(",", ""); print $4 + $6 + $8 + $10}' "$T/wrk.txt")
sockerr=${sockerr:-0}
rps=$(awk '/Requests\/sec:/ {print $2}' "$T/wrk.txt")
p99=$(awk '$1 == "99%" {print $2}' "$T/wrk.txt")
retries=$(grep -c "retrying" "$T/portico.log" || true)
ejections=$(grep -c "ejected for" "$T/portico.log" || true)

cat "$T/wrk.txt" >&2
printf '\n| duration | kills | requests | failed (non-2xx + socket errors) | req/s | p99 |\n'
printf '| --- | --- | --- | --- | --- | --- |\n'
printf '| %ss | %s | %s | %s (%s + %s) | %s | %s |\n' "$DURATION" "$kills" "$total" \
    $((non2xx + sockerr)) "$non2xx" "$sockerr" "$rps" "$p99"
log "portico log: $retries 'retrying' lines and $ejections ejections (warnings are rate-limited)"
[[ $((non2xx + sockerr)) -eq 0 ]] || exit 1
