#!/usr/bin/env bash
# Install everything the demo and the tests need. Idempotent and quick on a warm machine: each
# step checks first and only then installs.
#   bash scripts/setup.sh            everything (tests included)
#   bash scripts/setup.sh --no-test  only what the demo needs
set -euo pipefail

cd "$(dirname "$0")/.."
# The one interpreter setup, demo and tests use (scripts/python.sh: $PYTHON or python3, a venv,
# pyenv or the system's; an externally managed system Python gets the checkout's .venv).
. scripts/python.sh
choose_python || exit 1
export PIP_ROOT_USER_ACTION=ignore PIP_DISABLE_PIP_VERSION_CHECK=1
with_tests=1
[ "${1:-}" = "--no-test" ] && with_tests=0

log() { printf 'setup: %s\n' "$*"; }
start=$SECONDS

# Two set-ups at once (parallel test sessions) would race inside apt and pip.
exec 9>"${TMPDIR:-/tmp}/mesosspawner-setup-$(id -u).lock" # per user: /tmp is shared
command -v flock >/dev/null 2>&1 && flock 9

# --- Debian packages (root only) --------------------------------------------------------------
debs=(zookeeper docker.io debootstrap docker-registry docker-compose python3-venv chromium)
[ "$with_tests" = 1 ] || debs=(zookeeper python3-venv)
command -v npm >/dev/null 2>&1 || debs+=(npm)
missing=()
for pkg in "${debs[@]}"; do
    dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
done
if [ "${#missing[@]}" -gt 0 ]; then
    if [ "$(id -u)" = 0 ]; then
        log "apt-get install ${missing[*]}"
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq
        apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    else
        log "not root: cannot install ${missing[*]}"
        log "tests needing them will skip (zookeeper: ZooKeeper/failover tests;" \
            "docker.io, debootstrap, docker-registry, docker-compose: Docker tests;" \
            "chromium: browser tests)"
    fi
fi

# --- configurable-http-proxy (JupyterHub's proxy) ---------------------------------------------
if ! command -v configurable-http-proxy >/dev/null 2>&1; then
    if command -v npm >/dev/null 2>&1; then
        log "npm install -g configurable-http-proxy"
        npm install -g --silent configurable-http-proxy >/dev/null
    else
        log "npm missing: configurable-http-proxy not installed (the demo and hub tests need it)"
    fi
fi

# --- Python packages ------------------------------------------------------------------------
if [ "$PYTHON" != "$BASE_PYTHON" ] && [ ! -x "$PYTHON" ]; then
    log "$BASE_PYTHON is the system's (pip may not install into it): making .venv from it"
    "$BASE_PYTHON" -m venv .venv || {
        log "could not make .venv: install python3-venv (apt-get install python3-venv, as root)," \
            "or run with PYTHON=/path/to/another/python3"
        exit 1
    }
fi
# Install only when something this checkout needs is missing or different (a fresh machine, a
# changed setup.cfg, an editable install whose checkout is gone): scripts/install_check.py says
# which. An install of another checkout is kept: the demo and the tests run this checkout's code
# (PYTHONPATH), so a temporary clone never re-points the machine's install at itself.
extras=$([ "$with_tests" = 1 ] && echo "[test]" || echo "")
check=(scripts/install_check.py --also jupyter_server)
[ "$with_tests" = 1 ] && check+=(--extra test)
if ! why=$("$PYTHON" "${check[@]}"); then
    log "pip install -e .$extras jupyter_server into $PYTHON ($why)"
    "$PYTHON" -m pip install -q -e ".$extras" jupyter_server
    # Under pyenv the new commands (hadolint, ruff, jupyterhub) are on PATH only once its shims are.
    if command -v pyenv > /dev/null; then pyenv rehash; fi
fi

if [ "$with_tests" = 1 ]; then
    PYTHON=$PYTHON bash scripts/install-pymesos.sh
    # Real Mesos 1.11.0 for the real-Mesos tier: from MESOS_HOME/MESOS_BUNDLE/MESOS_SRC, or the
    # bundle in the shared folder beside this checkout when there is one.
    default_bundle=$(cd .. && pwd)/shared/real-mesos
    if [ -z "${MESOS_HOME:-}${MESOS_BUNDLE:-}${MESOS_SRC:-}" ] && [ -d "$default_bundle" ]; then
        export MESOS_BUNDLE=$default_bundle
    fi
    if [ -n "${MESOS_HOME:-}${MESOS_BUNDLE:-}${MESOS_SRC:-}" ]; then
        # A bundle that is there but does not install is a broken set-up, not a reason to skip.
        if ! PYTHON=$PYTHON bash scripts/install-mesos.sh >/dev/null; then
            log "real Mesos could not be installed from ${MESOS_HOME:-${MESOS_BUNDLE:-$MESOS_SRC}}"
            exit 1
        fi
    else
        log "no Mesos bundle (MESOS_BUNDLE/MESOS_SRC/MESOS_HOME): the real-Mesos tier will skip"
    fi
fi

log "done in $((SECONDS - start)) s"
