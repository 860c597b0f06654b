#!/usr/bin/env bash
# Start the demo (localmesos + JupyterHub on http://127.0.0.1:8000); arguments go to
# mesosspawner-demo (--help lists them). It runs in the foreground: Ctrl-C stops everything.
set -euo pipefail

cd "$(dirname "$0")/.."
# The interpreter setup.sh installs into (a pyenv shim or a venv's python is resolved to the
# real one), run as `python -m`: no console-script shim needs to exist on PATH.
PYTHON=$("${PYTHON:-python3}" -c 'import sys; print(sys.executable)')
PYTHON=$PYTHON bash scripts/setup.sh --no-test
exec "$PYTHON" -m mesosspawner.demo "$@"
