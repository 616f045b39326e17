#!/usr/bin/env bash
# The whole suite N times in a row (default 5) while one core is kept busy, to show that
# the tests hold on a loaded machine. Usage: tests/under_load.sh [N] [pytest arguments...]
# Flakes are fixed in the test (wait on conditions, generous timeouts), never by retrying.
set -uo pipefail
cd "$(dirname "$0")/.."
runs=${1:-5}
shift $(($# > 0 ? 1 : 0))
python=${PYTHON:-.venv/bin/python}

"$python" -c 'while True: pass' &
busy=$!
trap 'kill "$busy" 2>/dev/null; wait "$busy" 2>/dev/null' EXIT
trap 'exit 130' INT TERM

passed=0
began=$SECONDS
for run in $(seq 1 "$runs"); do
    started=$SECONDS
    if "$python" -m pytest -q -p no:cacheprovider "$@"; then
        passed=$((passed + 1))
        result=passed
    else
        result=FAILED
    fi
    echo "under load: run $run/$runs $result in $((SECONDS - started)) s"
done
echo "under load: $passed/$runs runs passed in $((SECONDS - began)) s (busy process $busy)"
[ "$passed" -eq "$runs" ]
