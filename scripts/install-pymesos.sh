#!/usr/bin/env bash
# Install pymesos as a test peer (DESIGN §3). pymesos 0.3.15 depends on http-parser 0.9.0, whose
# shipped C file no longer compiles on CPython >= 3.11: regenerate it with Cython 3 and build that;
# if the C build still fails, pymesos falls back to http-parser's pure-Python parser.
set -euo pipefail

PYTHON=${PYTHON:-python3}
export PIP_ROOT_USER_ACTION=ignore
log() { printf 'install-pymesos: %s\n' "$*"; }

if "$PYTHON" - <<'PY' 2>/dev/null; then
import pymesos, http_parser.http  # noqa: F401
PY
    log "pymesos and http_parser already importable"
    exit 0
fi

pip_install() { "$PYTHON" -m pip install --disable-pip-version-check --no-input -q "$@"; }

pip_install --no-deps pymesos==0.3.15 six addict kazoo

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

if ! "$PYTHON" -c 'import http_parser.http' 2>/dev/null; then
    "$PYTHON" -m pip download --disable-pip-version-check -q --no-deps --no-binary :all: \
        -d "$work" http-parser==0.9.0
    tar -xzf "$work"/http-parser-0.9.0.tar.gz -C "$work"
    src="$work/http-parser-0.9.0"
    # Leftovers from the author's machine (a macOS .so, .pyc files) must not be installed.
    rm -rf "$src"/http_parser/__pycache__ "$src"/http_parser/*.so "$src"/http_parser/parser.c
    # setup.py reads its version through `imp`, which Python 3.12 removed.
    "$PYTHON" - "$src/setup.py" <<'PY'
import sys
path = sys.argv[1]
text = open(path).read()
shim = (
    "import importlib.util\n"
    "def load_source(name, path):\n"
    "    spec = importlib.util.spec_from_file_location(name, path)\n"
    "    module = importlib.util.module_from_spec(spec)\n"
    "    spec.loader.exec_module(module)\n"
    "    return module\n"
)
open(path, "w").write(text.replace("from imp import load_source\n", shim))
PY
    built=0
    if "$PYTHON" -m cython --version >/dev/null 2>&1 || pip_install 'cython>=3'; then
        if (cd "$src" && "$PYTHON" -m cython -3 http_parser/parser.pyx 2>"$work/cython.log") \
            && pip_install "$src" 2>"$work/build.log"; then
            built=1
            log "http-parser 0.9.0 built with a Cython 3 parser.c"
        fi
    fi
    if [ "$built" = 0 ]; then
        log "C build of http-parser failed (see below); installing its pure-Python modules"
        tail -n 5 "$work"/cython.log "$work"/build.log 2>/dev/null || true
        site=$("$PYTHON" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
        rm -rf "$site/http_parser"
        mkdir -p "$site/http_parser"
        cp "$src"/http_parser/*.py "$site/http_parser/"
    fi
fi

# pymesos must import and construct a scheduler driver, or the peer tests would be fiction.
"$PYTHON" - <<'PY'
import pymesos
from pymesos import MesosSchedulerDriver, Scheduler
import http_parser.http

try:
    import http_parser.parser  # noqa: F401
    kind = "C parser"
except ImportError:
    kind = "pure-Python parser"
driver = MesosSchedulerDriver(Scheduler(), {"user": "nobody", "name": "probe"}, "127.0.0.1:1")
assert driver.framework["failover_timeout"] == 100, driver.framework
print(f"install-pymesos: pymesos {pymesos.__VERSION__} ready ({kind})")
PY
