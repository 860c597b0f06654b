# Sourced by setup.sh, demo.sh and test.sh: `choose_python` sets PYTHON to the one interpreter
# the project is installed into and runs with, whatever the Python layout:
#   - $PYTHON when set, else `python3` on PATH (a venv's, a pyenv shim, the system's);
#   - resolved to the real executable (sys.executable): a pyenv shim costs a fraction of a
#     second a call, and pip run through the real one installs where that Python imports from;
#   - an "externally managed" Python (Debian's own python3, PEP 668: pip refuses to install
#     into it) is not installed into: PYTHON is then the checkout's .venv/bin/python, which
#     setup.sh makes from it (BASE_PYTHON).
# It needs Python 3.11 or newer, and says so.

choose_python() {
    local base=${PYTHON:-python3} info new_enough managed version exe
    if [ "$base" = "$PWD/.venv/bin/python" ] && [ ! -x "$base" ]; then
        base=${BASE_PYTHON:-python3} # chosen by a caller; setup.sh makes the .venv from it
    fi
    if ! command -v "$base" >/dev/null 2>&1 && [ ! -x "$base" ]; then
        echo "python: $base not found: install Python 3.11 or newer" \
            "(Debian: apt-get install python3 python3-venv)" >&2
        return 1
    fi
    info=$("$base" -c 'import os, sys, sysconfig
stdlib = sysconfig.get_path("stdlib")
managed = sys.prefix == sys.base_prefix and os.path.exists(os.path.join(stdlib, "EXTERNALLY-MANAGED"))
print(int(sys.version_info >= (3, 11)), int(managed), "%d.%d" % sys.version_info[:2], sys.executable)') ||
        { echo "python: $base does not run" >&2; return 1; }
    read -r new_enough managed version exe <<<"$info"
    if [ "$new_enough" != 1 ]; then
        echo "python: $exe is Python $version; mesosspawner needs 3.11 or newer" \
            "(set PYTHON=/path/to/python3.11)" >&2
        return 1
    fi
    BASE_PYTHON=$exe
    if [ "$managed" = 1 ]; then
        exe=$PWD/.venv/bin/python
    fi
    PYTHON=$exe
    export PYTHON BASE_PYTHON
}
