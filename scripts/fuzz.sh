#!/bin/sh
# scripts/fuzz.sh replay NAME...   run every committed corpus input once
# scripts/fuzz.sh run NAME...      fuzz each target for FUZZ_SECONDS (default 60),
#                                  growing tests/fuzz/corpus/NAME
set -u
mode=$1
shift
bin=build/fuzz/bin
fail=0
for n in "$@"; do
    corpus=tests/fuzz/corpus/$n
    dict=tests/fuzz/$n.dict
    mkdir -p "$corpus"
    dictarg=""
    [ -f "$dict" ] && dictarg="-dict=$dict"
    case $mode in
    replay)
        # libFuzzer runs each file given on the command line once.
        files=$(find "$corpus" -type f | head -5000)
        if [ -z "$files" ]; then
            echo "FAIL fuzz $n: empty corpus" && fail=1 && continue
        fi
        # shellcheck disable=SC2086
        if "$bin/$n" $files >"build/fuzz/$n.replay.log" 2>&1; then
            echo "ok   fuzz replay $n ($(echo "$files" | wc -l) inputs)"
        else
            echo "FAIL fuzz replay $n"; tail -30 "build/fuzz/$n.replay.log"; fail=1
        fi
        ;;
    run)
        tmp=$(mktemp -d)
        # shellcheck disable=SC2086
        if "$bin/$n" $dictarg -max_total_time="${FUZZ_SECONDS:-60}" -print_final_stats=1 \
            -artifact_prefix=tests/fuzz/ "$tmp" "$corpus" >"build/fuzz/$n.run.log" 2>&1; then
            # keep the corpus small: merge new finds into the committed corpus
            "$bin/$n" -merge=1 -use_counters=0 "$corpus" "$tmp" >/dev/null 2>&1
            echo "ok   fuzz $n: $(grep -E '^stat::number_of_executed_units' "build/fuzz/$n.run.log" | awk '{print $2}') runs, no crash"
        else
            echo "FAIL fuzz $n"; tail -40 "build/fuzz/$n.run.log"; fail=1
        fi
        rm -rf "$tmp"
        ;;
    *) echo "usage: fuzz.sh replay|run NAME..." >&2; exit 2 ;;
    esac
done
exit $fail
