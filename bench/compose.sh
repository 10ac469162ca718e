#!/usr/bin/env bash
# Composition benchmark (docs/benchmarks.md, "Composition").
#
#   bench/compose.sh [PORTICO_BIN]        default: build/portico (make first)
#   DURATION=10 CONNS=8 bench/compose.sh  seconds per scenario, client connections
#
# Three tiny backends (bench/compose/backend.py, asyncio) answer small JSON
# after a fixed delay: orders 1 ms, users 1.5 ms, products 2 ms.  With the
# same load generator (wrk, CONNS threads of one keep-alive connection each)
# it measures, one scenario after the other:
#
#   direct      wrk -> products backend: the slowest single call, no gateway
#   proxy       wrk -> portico -> products: one proxied call
#   compose     wrk -> portico aggregate of the three calls (concurrent)
#   client-seq  wrk -> nginx -> the three backends: the client composes by
#               itself, one call after the other (bench/compose/sequential.lua),
#               counted per client request (three HTTP requests)
#
# and prints requests/s, p50/p90/p99 latency and the gateway's CPU time per
# client request (from /proc/PID/stat).  Portico and nginx each run one
# worker.  Everything listens on 127.0.0.1 and stops by itself.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(dirname "$here")
bin=${1:-$repo/build/portico}
DURATION=${DURATION:-10}
CONNS=${CONNS:-8}
WARMUP=${WARMUP:-2}

for tool in wrk nginx python3; do
    command -v "$tool" >/dev/null || { echo "compose.sh: $tool is needed (apt-get install wrk nginx-light)" >&2; exit 2; }
done
[ -x "$bin" ] || { echo "compose.sh: no portico binary at $bin (run make)" >&2; exit 2; }

work=$(mktemp -d)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() {
    for _ in $(seq 100); do
        python3 -c "import socket,sys; socket.create_connection(('127.0.0.1',$1),0.2)" 2>/dev/null && return 0
        sleep 0.1
    done
    echo "compose.sh: nothing listens on $1" >&2; exit 2
}
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

p_orders=$(free_port); p_users=$(free_port); p_products=$(free_port)
p_gw=$(free_port); p_nginx=$(free_port)

python3 "$here/compose/backend.py" "$p_orders:1:orders" "$p_users:1.5:users" "$p_products:2:products" \
    >"$work/backend.log" 2>&1 &
pids+=($!)

cat >"$work/portico.yaml" <<YAML
server: { listen: ["127.0.0.1:$p_gw"], workers: 1, log_level: warn }
services:
  orders:   { targets: ["127.0.0.1:$p_orders"],   keepalive: { max_idle: 256 } }
  users:    { targets: ["127.0.0.1:$p_users"],    keepalive: { max_idle: 256 } }
  products: { targets: ["127.0.0.1:$p_products"], keepalive: { max_idle: 256 } }
routes:
  - name: details
    match: { paths: ["/api/orders/{id}/details"] }
    aggregate:
      timeout: 2s
      calls:
        - { key: order,    service: orders,   path: "/orders/{id}" }
        - { key: customer, service: users,    path: "/users/7" }
        - { key: products, service: products, path: "/products?order={id}" }
  - name: single
    match: { paths: ["/single/*"] }
    service: products
    strip_prefix: /single
YAML
"$bin" run -c "$work/portico.yaml" 2>"$work/portico.log" &
gw_pid=$!
pids+=($gw_pid)

cat >"$work/nginx.conf" <<NGINX
worker_processes 1;
daemon off;
pid $work/nginx.pid;
error_log $work/nginx-error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    upstream orders   { server 127.0.0.1:$p_orders;   keepalive 256; }
    upstream users    { server 127.0.0.1:$p_users;    keepalive 256; }
    upstream products { server 127.0.0.1:$p_products; keepalive 256; }
    proxy_http_version 1.1;
    proxy_set_header Connection "";
    client_body_temp_path $work;
    proxy_temp_path $work;
    fastcgi_temp_path $work;
    uwsgi_temp_path $work;
    scgi_temp_path $work;
    server {
        listen 127.0.0.1:$p_nginx;
        location /orders   { proxy_pass http://orders; }
        location /users    { proxy_pass http://users; }
        location /products { proxy_pass http://products; }
    }
}
NGINX
nginx -c "$work/nginx.conf" -p "$work" 2>"$work/nginx.log" &
pids+=($!)

wait_port "$p_products"; wait_port "$p_gw"; wait_port "$p_nginx"
ngx_pid=$(cat "$work/nginx.pid")
ngx_worker=$(pgrep -P "$ngx_pid" | head -1)

# one scenario: NAME URL [LUA] [PID whose CPU is counted]
results=()
run() {
    local name=$1 url=$2 lua=${3:-$here/compose/report.lua} pid=${4:-}
    wrk -t "$CONNS" -c "$CONNS" -d "${WARMUP}s" -s "$lua" "$url" >/dev/null 2>&1 || true
    local before=0 after=0
    [ -n "$pid" ] && before=$(cpu_ticks "$pid")
    local out
    out=$(wrk -t "$CONNS" -c "$CONNS" -d "${DURATION}s" -s "$lua" "$url" | grep '^{' | tail -1)
    [ -n "$pid" ] && after=$(cpu_ticks "$pid")
    results+=("$name|$out|$((after - before))")
}

run direct     "http://127.0.0.1:$p_products/products?order=42"
run proxy      "http://127.0.0.1:$p_gw/single/products?order=42" "" "$gw_pid"
run compose    "http://127.0.0.1:$p_gw/api/orders/42/details"    "" "$gw_pid"
run client-seq "http://127.0.0.1:$p_nginx/"                      "$here/compose/sequential.lua" "$ngx_worker"

hz=$(getconf CLK_TCK)
echo
echo "backends: orders 1 ms, users 1.5 ms, products 2 ms; $CONNS connections; ${DURATION}s per scenario"
echo
echo "| scenario | client requests/s | p50 ms | p90 ms | p99 ms | errors | gateway CPU µs per client request |"
echo "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"
for r in "${results[@]}"; do
    IFS='|' read -r name json ticks <<<"$r"
    python3 - "$name" "$json" "$ticks" "$hz" <<'PY'
import json, sys
name, doc, ticks, hz = sys.argv[1], json.loads(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
cpu = "-" if name == "direct" else "%.0f" % (ticks / hz * 1e6 / max(doc["requests"], 1))
print("| %s | %.0f | %.2f | %.2f | %.2f | %d | %s |" % (name, doc["rps"], doc["p50_ms"], doc["p90_ms"],
                                                       doc["p99_ms"], doc["errors"], cpu))
PY
done
if grep -q "ERROR\|\[error\]" "$work/portico.log"; then
    echo "portico logged errors:" >&2
    cat "$work/portico.log" >&2
fi
