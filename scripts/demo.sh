#!/usr/bin/env bash
# Start the demo (localmesos + JupyterHub); arguments go to mesosspawner-demo.
set -euo pipefail

cd "$(dirname "$0")/.."
bash scripts/setup.sh --no-test
exec mesosspawner-demo "$@"
