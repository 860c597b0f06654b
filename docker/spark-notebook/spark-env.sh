# Sourced by Spark's launch scripts (bin/load-spark-env.sh, via SPARK_CONF_DIR) just before a
# Spark JVM starts: the driver in a notebook, and the executors Mesos runs from the
# spark-executor image.

# The driver's libprocess (Mesos's scheduler driver inside the JVM) takes the address and port
# MesosSpawner reserved in the notebook's offer. Only here, for the JVM: in the task's
# environment Mesos's own executor would inherit LIBPROCESS_PORT and bind the port first.
for var in IP PORT ADVERTISE_IP ADVERTISE_PORT; do
    eval "value=\${MESOSSPAWNER_DRIVER_LIBPROCESS_${var}:-}"
    if [ -n "${value}" ]; then
        export "LIBPROCESS_${var}=${value}"
    fi
done
unset var value

# Spark keeps its scratch files (block manager, shuffle) in MESOS_SANDBOX when it is set. An
# executor's sandbox belongs to the notebook's user; the notebook's own sandbox belongs to the
# hub's framework user, so the driver, which cannot write there, uses its container's /tmp.
if [ -n "${MESOS_SANDBOX:-}" ] && [ ! -w "${MESOS_SANDBOX}" ] && [ -z "${SPARK_LOCAL_DIRS:-}" ]; then
    export SPARK_LOCAL_DIRS="${TMPDIR:-/tmp}"
fi

# Docker runs notebooks and executors as the person's uid, which this image's /etc/passwd does
# not know; Java then has no user name or home ("?") and Hadoop's login fails. nss_wrapper
# gives the JVM (and the Python workers it starts) a passwd entry without a writable /etc/passwd.
if ! getent passwd "$(id -u)" >/dev/null 2>&1; then
    nss_lib=$(ls /usr/lib/*-linux-gnu/libnss_wrapper.so 2>/dev/null | head -n 1)
    nss_dir=$(mktemp -d "${TMPDIR:-/tmp}/spark-nss-XXXXXX" 2>/dev/null || true)
    if [ -n "${nss_lib}" ] && [ -n "${nss_dir}" ]; then
        nss_name=${SPARK_USER:-spark}
        case "${nss_name}" in *[!A-Za-z0-9._-]*|'') nss_name=spark ;; esac
        nss_home=${HOME:-/tmp}
        if [ ! -w "${nss_home}" ]; then nss_home=${MESOS_SANDBOX:-/tmp}; fi
        { cat /etc/passwd; echo "${nss_name}:x:$(id -u):$(id -g):${nss_name}:${nss_home}:/bin/sh"; } \
            >"${nss_dir}/passwd"
        cp /etc/group "${nss_dir}/group"
        if ! getent group "$(id -g)" >/dev/null 2>&1; then
            echo "${nss_name}:x:$(id -g):" >>"${nss_dir}/group"
        fi
        export LD_PRELOAD="${nss_lib}${LD_PRELOAD:+ ${LD_PRELOAD}}"
        export NSS_WRAPPER_PASSWD="${nss_dir}/passwd" NSS_WRAPPER_GROUP="${nss_dir}/group"
        export HOME="${nss_home}"
    fi
    unset nss_lib nss_dir nss_name nss_home
fi
