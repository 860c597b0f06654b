#!/usr/bin/env bash
# The project's test command (README "Running the tests", and what CI runs): install what the
# tests need, then run pytest with any arguments passed through.
#   bash scripts/test.sh                       the whole suite
#   bash scripts/test.sh tests/localmesos -x   a part of it
set -uo pipefail

cd "$(dirname "$0")/.."
. scripts/python.sh
choose_python || exit 1

bash scripts/setup.sh || { echo "test: set-up failed" >&2; exit 1; }

# -rfEs: the summary lists failures, errors and every skip with its reason (no silent tier).
"$PYTHON" -m pytest -rfEs "$@"
status=$?
if [ "$status" = 5 ]; then
    echo "test: pytest collected no tests; treating that as a failure" >&2
    exit 1
fi
exit "$status"
