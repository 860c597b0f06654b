#!/usr/bin/env bash
# Start the demo: localmesos and JupyterHub on http://127.0.0.1:8000, in the foreground; Ctrl-C
# stops everything. Arguments go to the demo (`bash scripts/demo.sh --help` lists them);
# `--remove` deletes what the demo made outside this checkout (see the README).
set -euo pipefail

cd "$(dirname "$0")/.."
# The interpreter setup.sh installs into (scripts/python.sh), run as `python -m`: no
# console-script shim needs to exist on PATH.
. scripts/python.sh
choose_python || exit 1
case " $* " in
    *" --remove "* | *" --help "* | *" -h "*) ;; # nothing to install for these
    *) bash scripts/setup.sh --no-test ;;
esac
exec "$PYTHON" -m mesosspawner.demo "$@"
