#!/usr/bin/env bash
# The demo shop: three small JSON services and Portico in front of them.
#
#   examples/shop/run.sh BIN        BIN = the portico binary (`make run` passes build/portico)
#
# Starts users (9101), orders (9102), products (9103) and `BIN run -c
# examples/shop/portico.yaml` (gateway on :8080, admin on 127.0.0.1:9901),
# waits until all of them accept connections, prints commands to try, and on
# Ctrl-C or SIGTERM stops everything it started (by PID) and exits 0.
# PYTHON=... picks the interpreter for the services (standard library only).
set -u

here=$(cd "$(dirname "$0")" && pwd)
bin=${1:-}
if [ -z "$bin" ]; then
    echo "usage: $0 PORTICO_BINARY" >&2
    exit 2
fi
case $bin in /*) ;; *) bin=$PWD/$bin ;; esac
if [ ! -x "$bin" ]; then
    echo "run.sh: $bin is not an executable; build it first (make)" >&2
    exit 2
fi
if [ -n "${PYTHON:-}" ]; then
    py=$PYTHON
elif [ -x /usr/bin/python3 ]; then
    py=/usr/bin/python3
else
    py=python3
fi

ports="9101 9102 9103 8080 9901"
names=(users orders products)
pids=()

port_open() {
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

cleanup() {
    trap - INT TERM
    for pid in "${pids[@]}"; do
        kill -TERM "$pid" 2>/dev/null
    done
    for pid in "${pids[@]}"; do
        wait "$pid" 2>/dev/null
    done
}

on_signal() {
    echo
    echo "run.sh: stopping the shop"
    cleanup
    exit 0
}

fail() {
    echo "run.sh: $*" >&2
    cleanup
    exit 1
}

for p in $ports; do
    if port_open "$p"; then
        echo "run.sh: port $p is already in use; stop whatever listens there first" >&2
        exit 1
    fi
done

trap on_signal INT TERM

for name in "${names[@]}"; do
    "$py" "$here/$name.py" &
    pids+=($!)
done
"$bin" run -c "$here/portico.yaml" &
gw=$!
pids+=($gw)

# Wait until every process accepts connections (15 s at most).
deadline=$((SECONDS + 15))
for p in 9101 9102 9103 8080; do
    until port_open "$p"; do
        for pid in "${pids[@]}"; do
            kill -0 "$pid" 2>/dev/null || fail "a process (pid $pid) exited during start-up"
        done
        [ $SECONDS -lt $deadline ] || fail "port $p did not open within 15 s"
        sleep 0.1
    done
done

cat <<'MSG'

The shop is up: users :9101, orders :9102, products :9103, Portico on :8080
(admin on 127.0.0.1:9901).  Try:

  curl -s localhost:8080/api/users
  curl -s localhost:8080/api/users/1
  curl -s localhost:8080/api/orders/1
  curl -s localhost:8080/api/orders/1/details  # order + customer + products in one answer
  curl -s 'localhost:8080/api/products?ids=1,2'
  curl -si localhost:8080/api/products/1 | grep X-Cache   # MISS, then HIT (cache plugin)
  curl -si localhost:8080/api/recommendations            # service down: fallback, X-Fallback: true
  curl -s localhost:9901/services/products/health        # active health checks (admin API)
  curl -s -X POST localhost:8080/api/users -d '{"name": "Edsger Dijkstra", "email": "ewd@example.com"}'
  curl -s -X POST localhost:8080/api/orders -d '{"customer_id": 2, "product_ids": [2, 4]}'
  curl -si localhost:8080/api/nothing          # a 404 from the gateway, as problem+json

Ctrl-C stops everything.
MSG

# Run until a signal arrives or one of the processes dies.
while :; do
    wait -n
    # A Ctrl-C reaches the whole process group: the gateway may exit on it
    # before this shell runs its trap.  Give the trap the first word.
    sleep 0.5
    for pid in "${pids[@]}"; do
        kill -0 "$pid" 2>/dev/null || fail "a process (pid $pid) exited; stopping the rest"
    done
done
