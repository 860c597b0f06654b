# Example JupyterHub configuration for MesosSpawner.
#
#   Production: set MESOS_MASTER (http://master:5050, a comma list, or zk://zk1:2181,zk2:2181/mesos)
#   and NOTEBOOK_REGISTRY (the lab's registry, e.g. registry.lab.example:443), then
#   `jupyterhub -f jupyterhub_config.py`.
#   Demo: `bash scripts/demo.sh` (mesosspawner/demo.py) starts localmesos and sets the
#   MESOSSPAWNER_* variables read below, so notebooks run as plain command tasks on localmesos's
#   agents.
import os

c = get_config()  # noqa: F821 -- provided by JupyterHub when it loads this file

demo = os.environ.get("MESOSSPAWNER_DEMO") == "1"
master = os.environ.get("MESOS_MASTER", "http://127.0.0.1:5050")
registry = os.environ.get("NOTEBOOK_REGISTRY", "registry.lab.example:443")

# --- the hub -------------------------------------------------------------------------------
c.JupyterHub.spawner_class = "mesos"
c.JupyterHub.bind_url = os.environ.get("JUPYTERHUB_BIND_URL", "http://127.0.0.1:8000")
# The hub API must be reachable from the Mesos agents; in production bind it to a routable IP
# (e.g. c.JupyterHub.hub_ip = "0.0.0.0" and hub_connect_ip = the hub host's address).
c.JupyterHub.hub_bind_url = os.environ.get("JUPYTERHUB_HUB_BIND_URL", "http://127.0.0.1:8081")
# Notebooks are Mesos tasks: they outlive a hub restart (the framework re-subscribes with the
# same id, persisted next to the database), so the hub must not stop them when it exits.
c.JupyterHub.cleanup_servers = False
c.JupyterHub.allow_named_servers = True
# Limits per person: at most 3 named servers, and their GPUs together at most 2 (a spawn over
# it is refused, saying how many GPUs the person's other servers hold).
c.JupyterHub.named_server_limit_per_user = 3
c.MesosSpawner.max_gpus_per_user = 2

if demo:
    c.JupyterHub.authenticator_class = "dummy"  # any user name, any password
    c.Authenticator.allow_all = True
    c.Authenticator.admin_users = {os.environ.get("MESOSSPAWNER_DEMO_ADMIN", "admin")}
    c.JupyterHub.db_url = os.environ.get("MESOSSPAWNER_DEMO_DB", "sqlite:///jupyterhub.sqlite")
    if os.environ.get("MESOSSPAWNER_DEMO_PROXY_API_URL"):
        c.ConfigurableHTTPProxy.api_url = os.environ["MESOSSPAWNER_DEMO_PROXY_API_URL"]
    # Ctrl-C ends the demo: its notebooks stop with it (a real hub keeps them, see above).
    c.JupyterHub.cleanup_servers = True

# --- where notebooks run ------------------------------------------------------------------------
c.MesosSpawner.mesos_master = master
c.MesosSpawner.framework_name = "jupyterhub"
# The hub's Mesos principal; its secret in a file (mode 0600), never in this file. On a real
# cluster the masters authenticate frameworks and operators and have ACLs: docs/admin-guide.md,
# "Hardening a real cluster". check_config(c), at the end, refuses to start the hub otherwise.
c.MesosSpawner.principal = os.environ.get("MESOS_PRINCIPAL", "jupyterhub")
c.MesosSpawner.secret_file = os.environ.get("MESOS_SECRET_FILE", "/etc/jupyterhub/mesos-secret")
# Weeks: the master keeps every notebook alive while the hub is down for an upgrade.
c.MesosSpawner.failover_timeout = 4 * 7 * 24 * 3600
c.MesosSpawner.start_timeout = 300
c.MesosSpawner.cpu_limit = 1
c.MesosSpawner.mem_limit = "2G"
# Files written to shared storage belong to the user: notebooks run as the user's uid/gid,
# looked up from the system user of the same name unless uid/gid are set (int or callable).
c.MesosSpawner.volumes = [
    {"host_path": "/srv/home/{username}", "container_path": "/home/jovyan/work", "mode": "RW"},
]

if demo:
    # The demo runs localmesos, which authenticates nothing: any local process could register a
    # framework or tear the demo's down. That is fine on one machine for a try-out, never for a
    # lab, so only the demo allows it (the start check still logs what is open).
    c.MesosSpawner.principal = None
    c.MesosSpawner.secret_file = None
    c.MesosSpawner.allow_insecure_cluster = True
    # localmesos runs notebooks as local processes: no image, the demo's notebook environment.
    # As root, each person gets a Unix account of their own on their first spawn (demo-<name>,
    # home /home/demo-<name>: mesosspawner/demo_users.py); as an ordinary user, notebooks run as
    # that user with a home per person in the demo's temporary directory.
    from mesosspawner.demo_users import home_hook

    notebook_cmd = os.environ.get("MESOSSPAWNER_NOTEBOOK_CMD", "jupyterhub-singleuser")
    c.MesosSpawner.image = None
    # Start in the person's home (JUPYTERHUB_ROOT_DIR = notebook_dir): JupyterLab's terminals
    # open in the notebook's working directory, which would otherwise be the Mesos sandbox.
    c.MesosSpawner.cmd = ["/bin/sh", "-c", 'cd "$JUPYTERHUB_ROOT_DIR" && exec "$0" "$@"']
    c.MesosSpawner.cmd.append(notebook_cmd)
    # The notebook environment's tools first; nothing of the hub's Python (PYTHONPATH, venv).
    c.MesosSpawner.env_keep = ["LANG", "LC_ALL"]
    c.MesosSpawner.environment = {
        "PATH": f"{os.path.dirname(notebook_cmd)}:/usr/local/bin:/usr/bin:/bin",
    }
    accounts = os.environ.get("MESOSSPAWNER_DEMO_ACCOUNTS") == "1"
    if not accounts:
        c.MesosSpawner.system_user = os.environ.get("MESOSSPAWNER_DEMO_USER") or None
        if os.environ.get("MESOSSPAWNER_DEMO_UID"):
            c.MesosSpawner.uid = int(os.environ["MESOSSPAWNER_DEMO_UID"])
            c.MesosSpawner.gid = int(os.environ["MESOSSPAWNER_DEMO_GID"])
            # Notebooks run as you, whatever your uid (min_uid keeps system accounts out).
            c.MesosSpawner.min_uid = min(1000, c.MesosSpawner.uid)
    c.MesosSpawner.pre_spawn_hook = home_hook(
        accounts=accounts,
        homes=os.environ.get("MESOSSPAWNER_DEMO_HOME", "/tmp/mesosspawner-demo"),
    )
    c.MesosSpawner.volumes = []
    c.MesosSpawner.ip = "127.0.0.1"
    c.MesosSpawner.mem_limit = "256M"
    c.MesosSpawner.cpu_limit = 0.5
    c.MesosSpawner.kill_grace_seconds = 5
    c.MesosSpawner.http_timeout = 120  # a first JupyterLab start on a busy laptop
    c.MesosSpawner.orphan_grace_seconds = 60
else:
    c.MesosSpawner.image = f"{registry}/mesosspawner/base-notebook:latest"
    c.MesosSpawner.containerizer = "docker"
    c.MesosSpawner.network_mode = "host"

# --- profiles: what users pick at login ---------------------------------------------------
# The Spark profile: the notebook runs on a Spark machine (role "spark") and holds the Spark
# driver; `SparkSession.builder.getOrCreate()` with no arguments registers it with Mesos and runs
# its executors as Mesos tasks in the spark-executor image, as the notebook's user (docs/spark.md).
if demo:
    # localmesos cannot run Spark's executors: Spark 3.5 talks to Mesos through libmesos (the v0
    # scheduler driver), which localmesos does not implement. So the demo says so and runs Spark
    # in local mode inside the notebook (pip install --user pyspark==3.5.9 and Java 17 needed).
    spark_profile = {
        "display_name": "Spark notebook (demo: Spark in local mode)",
        "slug": "spark",
        "description": "Placed like a Spark notebook (a Spark machine, role spark, its driver "
        "ports reserved), but Spark runs in local mode inside the notebook: localmesos cannot "
        "run Spark executors. Real Spark on Mesos: docs/spark.md.",
        "mesosspawner_override": {"role": "spark", "spark_master": "local[2]"},
    }
else:
    spark_profile = {
        "display_name": "Spark notebook",
        "slug": "spark",
        "description": "Runs beside the Spark cluster: SparkSession.builder.getOrCreate() runs "
        "its executors on the cluster (up to 4 cores).",
        "mesosspawner_override": {
            "role": "spark",
            "cpu_limit": 1,
            "mem_limit": "4G",  # the Spark driver lives in the notebook
            "image": os.environ.get(
                "SPARK_NOTEBOOK_IMAGE", f"{registry}/mesosspawner/spark-notebook:latest"
            ),
            "spark_master": os.environ.get(
                "SPARK_MASTER", f"mesos://{master.removeprefix('http://')}"
            ),
            "spark_role": "spark",
            # Pin it by digest: mesosspawner-images prints REF@sha256:... for each image.
            "spark_executor_image": os.environ.get(
                "SPARK_EXECUTOR_IMAGE", f"{registry}/mesosspawner/spark-executor:latest"
            ),
            # Executors only on the Spark machines (their agents' --attributes), at most 4 cores.
            "spark_executor_constraints": "spark_cluster:prod",
            "spark_cores_max": 4,
            # Mesos's JNI library on the agents, mounted read-only into the notebook.
            "spark_mesos_native_library": os.environ.get(
                "SPARK_MESOS_NATIVE_LIBRARY", "/opt/mesos-1.11.0/lib/libmesos-java.so"
            ),
            "spark_conf": {"spark.executor.memory": "2g", "spark.executor.cores": "1"},
        },
    }
c.MesosSpawner.profile_list = [
    {
        "display_name": "CPU notebook",
        "slug": "cpu",
        "description": "A general-purpose notebook on a CPU machine.",
        "default": True,
    },
    {
        "display_name": "GPU notebook (deep learning)",
        "slug": "gpu",
        "description": "One whole GPU on a GPU machine.",
        "mesosspawner_override": {
            "gpus": 1,
            # The demo's GPU agent has 2 GPUs and as few as 2 cpus: 1 cpu each lets both run.
            "cpu_limit": 1 if demo else 2,
            # GPU tasks use the Mesos containerizer: Docker's has no GPU support.
            **({} if demo else {"image": f"{registry}/mesosspawner/gpu-notebook:latest"}),
        },
        "profile_options": {
            "gpus": {
                "display_name": "GPUs",
                "choices": {
                    "1": {
                        "display_name": "1 GPU",
                        "default": True,
                        "mesosspawner_override": {"gpus": 1},
                    },
                    "2": {"display_name": "2 GPUs", "mesosspawner_override": {"gpus": 2}},
                },
            }
        },
    },
    spark_profile,
]

# --- the images service: registry browser and "build my image" -----------------------------
# Its page is /services/images/ (hub OAuth login). People build their own notebook images on the
# lab's bases (their uid/gid baked in), pushed to REGISTRY/mesosspawner-users/<user>/<base>, and
# get them as the "My images" profile, pinned by digest. Needs a Docker engine on the hub host.
# Limits (build time, image size, queue, apt on/off): docs/user-images.md.
if not demo:
    from mesosspawner.images.service.hubconfig import register_images_service

    register_images_service(
        c,
        registry=registry,
        bases={
            name: f"{registry}/mesosspawner/{name}:{os.environ.get('NOTEBOOK_IMAGE_TAG', 'latest')}"
            for name in ("base-notebook", "gpu-notebook", "spark-notebook")
        },
        port=int(os.environ.get("MESOSSPAWNER_IMAGES_PORT", "10101")),
        # The registry's login for the service (a Docker config.json, mode 0600): the registry
        # should refuse anonymous pushes; agents pull with their own (mesos-agent --docker_config).
        docker_config=os.environ.get("MESOSSPAWNER_REGISTRY_LOGIN") or None,
        extra_args=["--build-timeout", "900", "--max-image-size", "8G", "--build-memory", "4G"],
    )

# --- last: check the MesosSpawner settings now, so a typo stops the hub instead of every spawn,
# and check the Mesos cluster: one that lets notebooks take it over stops the hub, naming the
# flags to set (allow_insecure_cluster = True to start anyway).
from mesosspawner import check_config  # noqa: E402

check_config(c)
