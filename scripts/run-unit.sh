#!/bin/sh
# Run each C unit-test program; print a summary; fail if any failed.
set -u
fail=0
total=0
for t in "$@"; do
    total=$((total + 1))
    out=$("$t" 2>&1)
    rc=$?
    n=$(printf '%s\n' "$out" | grep -c '^ok ')
    if [ $rc -ne 0 ]; then
        fail=$((fail + 1))
        printf '%s\n' "$out" | grep -E '^(not ok|#)|ERROR|runtime error' | head -40
        echo "FAIL $t (exit $rc)"
    else
        echo "ok   $t ($n checks)"
    fi
done
echo "unit: $((total - fail))/$total programs passed"
[ $fail -eq 0 ]
