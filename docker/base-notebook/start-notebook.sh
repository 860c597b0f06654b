#!/bin/bash
# Entry point of the lab's notebook images (docker-stacks conventions).
#
# Started as root (Mesos containerizer, or Docker without a `user` parameter):
#   makes the container user NB_USER with NB_UID and primary group NB_GID (renaming the image's
#   default user jovyan, creating the group if needed), gives it its home, then drops root with
#   setpriv and execs the command ("$@", default jupyterhub-singleuser).
#   Files written to mounted volumes are therefore owned by NB_UID:NB_GID on the host.
# Started as a non-root uid (Docker `user` parameter "UID:GID", as the Mesos Docker
#   containerizer is told to pass): nothing to switch; HOME is made writable (the user's home if
#   it can write there, else /tmp/home-UID) and the command is exec'ed. No NSS wrapper: `id -un`
#   may print no name for a uid the image does not know; tools that need a passwd entry get one
#   only when /etc/passwd is writable.
# Root is never kept for the notebook unless ALLOW_ROOT=yes and NB_UID=0; dropping it also sets
# no_new_privs, so no setuid binary in the image can take it back.
#
# Secrets (the API token, ...) are not in the task's environment, which Mesos shows to anyone who
# can read the agent: MesosSpawner has the fetcher put them in a one-time env file in the sandbox
# and names it in MESOSSPAWNER_ENV_FILE. This script exports its NAME=VALUE lines and deletes the
# file first thing, before anything else runs; a missing or undeletable file stops the start.
#
# Variables: NB_USER (jovyan), NB_UID (1000), NB_GID (100), NB_GROUP (name for a new NB_GID
# group, default NB_USER), CHOWN_HOME=yes (chown the home recursively, not only its top),
# ALLOW_ROOT=yes (permit NB_UID=0), NOTEBOOK_VENV (/opt/notebook, put first on PATH).
set -euo pipefail

log() { echo "start-notebook: $*" >&2; }

load_env_file() {
    local name="${MESOSSPAWNER_ENV_FILE}" file line var
    case "${name}" in
        "" | */* | . | ..) log "MESOSSPAWNER_ENV_FILE=${name} must be a file name in the sandbox"; exit 64 ;;
    esac
    file="${MESOS_SANDBOX:-${PWD}}/${name}"
    if [ ! -f "${file}" ]; then
        log "the one-time env file ${file} is missing, so the notebook would start without its API token"
        exit 66
    fi
    while IFS= read -r line || [ -n "${line}" ]; do
        case "${line}" in
            [A-Za-z_]*=*) ;;
            *) log "${file}: a line is not NAME=VALUE"; exit 65 ;;
        esac
        var="${line%%=*}"
        case "${var}" in
            *[!A-Za-z0-9_]*) log "${file}: a bad variable name"; exit 65 ;;
        esac
        export "${var}=${line#*=}"
    done <"${file}"
    if ! rm -f -- "${file}" || [ -e "${file}" ]; then
        log "cannot delete ${file}: the sandbox must be writable by uid $(id -u)"
        exit 73
    fi
    unset MESOSSPAWNER_ENV_FILE
}

if [ -n "${MESOSSPAWNER_ENV_FILE:-}" ]; then
    load_env_file
fi

if [ "$#" -eq 0 ]; then
    set -- jupyterhub-singleuser
fi

# The notebook venv first on PATH, so kernels and `pip install --user` use it.
NOTEBOOK_VENV="${NOTEBOOK_VENV:-/opt/notebook}"
if [ -d "${NOTEBOOK_VENV}/bin" ]; then
    export PATH="${NOTEBOOK_VENV}/bin:${PATH}"
fi

NB_USER="${NB_USER:-jovyan}"
NB_UID="${NB_UID:-1000}"
NB_GID="${NB_GID:-100}"
NB_GROUP="${NB_GROUP:-${NB_USER}}"

case "${NB_UID}${NB_GID}" in
    *[!0-9]*) log "NB_UID=${NB_UID} and NB_GID=${NB_GID} must be numeric ids"; exit 64 ;;
esac

if [ "$(id -u)" -ne 0 ]; then
    uid="$(id -u)"
    if ! getent passwd "${uid}" >/dev/null && [ -w /etc/passwd ]; then
        echo "${NB_USER}:x:${uid}:$(id -g):${NB_USER}:/home/${NB_USER}:/bin/bash" >>/etc/passwd
    fi
    home="${HOME:-/}"
    if [ ! -w "${home}" ] || [ "${home}" = "/" ]; then
        if [ -d "/home/${NB_USER}" ] && [ -w "/home/${NB_USER}" ]; then
            home="/home/${NB_USER}"
        else
            home="/tmp/home-${uid}"
            mkdir -p "${home}"
        fi
    fi
    export HOME="${home}"
    cd "${HOME}"
    log "running as uid ${uid} gid $(id -g) with HOME=${HOME}"
    exec "$@"
fi

if [ "${NB_UID}" -eq 0 ] && [ "${ALLOW_ROOT:-no}" != "yes" ]; then
    log "refusing to run the notebook as root (NB_UID=0); set ALLOW_ROOT=yes to permit it"
    exit 64
fi

# The group: reuse one that already has NB_GID, else create it.
if ! getent group "${NB_GID}" >/dev/null; then
    if getent group "${NB_GROUP}" >/dev/null; then
        NB_GROUP="${NB_GROUP}-${NB_GID}"
    fi
    groupadd --gid "${NB_GID}" "${NB_GROUP}"
fi

# The user: rename jovyan, or change an existing NB_USER, or create it.
home="/home/${NB_USER}"
if [ "${NB_UID}" -ne 0 ]; then
    if [ "${NB_USER}" != jovyan ] && id jovyan >/dev/null 2>&1 && ! id "${NB_USER}" >/dev/null 2>&1; then
        log "renaming jovyan to ${NB_USER}"
        usermod --login "${NB_USER}" --home "${home}" --move-home jovyan
    fi
    # Another account may already hold NB_UID (e.g. a system user): reuse that uid, not the name.
    owner="$(getent passwd "${NB_UID}" | cut -d: -f1 || true)"
    if id "${NB_USER}" >/dev/null 2>&1; then
        if [ -n "${owner}" ] && [ "${owner}" != "${NB_USER}" ]; then
            log "uid ${NB_UID} already belongs to ${owner}; using it as ${NB_USER}"
            usermod --non-unique --uid "${NB_UID}" --gid "${NB_GID}" "${NB_USER}"
        else
            usermod --uid "${NB_UID}" --gid "${NB_GID}" "${NB_USER}"
        fi
    else
        useradd --no-create-home --non-unique --shell /bin/bash --home-dir "${home}" \
            --uid "${NB_UID}" --gid "${NB_GID}" "${NB_USER}"
    fi
    mkdir -p "${home}"
    if [ "${CHOWN_HOME:-no}" = yes ]; then
        chown -R "${NB_UID}:${NB_GID}" "${home}"
    else
        chown "${NB_UID}:${NB_GID}" "${home}"
    fi
else
    home=/root
fi

export HOME="${home}" USER="${NB_USER}" LOGNAME="${NB_USER}" SHELL=/bin/bash
cd "${HOME}"
if [ "${NB_UID}" -eq 0 ]; then
    log "ALLOW_ROOT=yes: running the notebook as root"
    exec "$@"
fi
log "running as ${NB_USER} (uid ${NB_UID} gid ${NB_GID})"
exec setpriv --reuid="${NB_UID}" --regid="${NB_GID}" --init-groups --no-new-privs -- "$@"
