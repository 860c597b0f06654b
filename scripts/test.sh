#!/usr/bin/env bash
# The project's test command (README "Running the tests", and what CI runs): install what the
# tests need, then run pytest with any arguments passed through.
#   bash scripts/test.sh                       the whole suite
#   bash scripts/test.sh tests/localmesos -x   a part of it
#   TEST_WORKERS=1 bash scripts/test.sh ...    one process (no pytest-xdist)
set -uo pipefail

cd "$(dirname "$0")/.."
. scripts/python.sh
choose_python || exit 1

bash scripts/setup.sh || { echo "test: set-up failed" >&2; exit 1; }

# -rfEs: the summary lists failures, errors and every skip with its reason (no silent tier);
# --durations=25: the 25 slowest tests, so a slow one is seen the day it appears.
# (-p no:benchmark: a pytest-benchmark installed on the machine only warns under xdist.)
args=(-rfEs --durations=25 -p no:benchmark)
# The tests mostly wait on processes (hubs, notebooks, masters, timeouts), so several run at
# once even on 2 cores: pytest-xdist workers, and the tests sharing a module's hub or cluster
# kept on one worker (--dist loadgroup; tests/conftest.py groups them).
workers=${TEST_WORKERS:-6}
case " $* " in *" -n "* | *" -n="* | *" -p no:xdist "*) workers=1 ;; esac
if [ "$workers" -gt 1 ] && "$PYTHON" -c "import xdist" 2>/dev/null; then
    args+=(-n "$workers" --dist loadgroup)
fi
"$PYTHON" -m pytest "${args[@]}" "$@"
status=$?
if [ "$status" = 5 ]; then
    echo "test: pytest collected no tests; treating that as a failure" >&2
    exit 1
fi
exit "$status"
