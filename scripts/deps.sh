#!/bin/sh
# Install the Debian packages Portico needs to build, test, benchmark and run
# its demo.  A no-op when every package is already present.  Needs root (or
# sudo) only when something is missing.
#
#   scripts/deps.sh            build + run
#   scripts/deps.sh test       + test tools (clang, pytest, curl, ...)
#   scripts/deps.sh bench      + nginx, haproxy, wrk
set -eu

BUILD_PKGS="gcc make pkg-config libyaml-dev libpcre2-dev libjansson-dev libssl-dev libc-ares-dev zlib1g-dev python3"
TEST_PKGS="clang libclang-rt-14-dev python3-pytest python3-requests python3-websockets curl openssl procps dnsmasq-base"
BENCH_PKGS="nginx-light haproxy wrk nghttp2-client curl procps"

pkgs=$BUILD_PKGS
for want in "$@"; do
    case $want in
    test) pkgs="$pkgs $TEST_PKGS" ;;
    bench) pkgs="$pkgs $BENCH_PKGS" ;;
    run) ;;
    *) echo "deps.sh: unknown set '$want' (test, bench, run)" >&2; exit 2 ;;
    esac
done

missing=""
for p in $pkgs; do
    status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
    case $status in
    *"install ok installed"*) ;;
    *) missing="$missing $p" ;;
    esac
done
[ -z "$missing" ] && exit 0

echo "deps.sh: installing:$missing" >&2
SUDO=""
if [ "$(id -u)" != 0 ]; then
    command -v sudo >/dev/null 2>&1 || { echo "deps.sh: need root to install:$missing" >&2; exit 1; }
    SUDO=sudo
fi
# Keep dpkg from starting packaged services (nginx, haproxy, redis) on install.
policy=/usr/sbin/policy-rc.d
made_policy=0
if [ ! -e $policy ]; then
    printf '#!/bin/sh\nexit 101\n' | $SUDO tee $policy >/dev/null
    $SUDO chmod 755 $policy
    made_policy=1
fi
rc=0
$SUDO apt-get update -qq || rc=$?
# shellcheck disable=SC2086
[ $rc = 0 ] && { DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null || rc=$?; }
[ $made_policy = 1 ] && $SUDO rm -f $policy
exit $rc
