"""taskinfo: which container each kind of notebook gets, safe volume expansion, Spark wiring,
labels."""

import json
import shlex

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mesosspawner.mesos.resources import (
    parse_resources,
    ranges_of,
    resources_from_json,
    scalar,
)
from mesosspawner.placement import Placement
from mesosspawner.taskinfo import (
    PLAIN_START_SCRIPT,
    SparkSettings,
    TaskSpec,
    build_task_info,
    expand_volumes,
    labels_for,
    spark_ports_needed,
)

TOKEN = "s3cr3t-t0ken-value-1234567890"
ENV = {"JUPYTERHUB_API_TOKEN": TOKEN, "JUPYTERHUB_USER": "alice", "PATH": "/usr/bin"}
ENV_URL = "http://hub.lab:40123/env/" + "k" * 43


def placement(resources="cpus:1;mem:1024;ports:[31000-31000]", ports=(31000,), role="*"):
    return Placement(
        request_key="k",
        offer_id="o1",
        agent_id="agent-1",
        hostname="plain-1",
        ip="10.0.0.7",
        allocation_role=role,
        resources=tuple(parse_resources(resources)),
        ports=ports,
    )


def spec(**kw):
    base = dict(
        task_id="jupyter.hub.alice..n1",
        name="jupyter-alice",
        argv=("jupyterhub-singleuser", "--port=31000"),
        env=ENV,
        labels=labels_for("hub", "alice", ""),
        env_file_uris=(ENV_URL,),
    )
    base.update(kw)
    return TaskSpec(**base)


def env_of(task):
    return {v["name"]: v["value"] for v in task["command"]["environment"]["variables"]}


# ---------------------------------------------------------------------------- containers


def test_cpu_notebook_uses_docker_with_uid_gid_user_parameter():
    t = build_task_info(spec(image="lab/notebook:1", uid=1001, gid=100), placement())
    assert t["container"]["type"] == "DOCKER"
    docker = t["container"]["docker"]
    assert docker["image"] == "lab/notebook:1"
    assert docker["network"] == "HOST"
    assert {"key": "user", "value": "1001:100"} in docker["parameters"]
    assert "user" not in t["command"]  # the Docker containerizer never gets command.user
    # Docker appends value + arguments to the entrypoint: no repeated program name.
    assert t["command"]["value"] == "jupyterhub-singleuser"
    assert t["command"]["arguments"] == ["--port=31000"]
    assert t["command"]["shell"] is False


def test_gpu_notebook_uses_the_mesos_containerizer_with_a_docker_image():
    p = placement("cpus:1;mem:1024;gpus:1;ports:[31000-31000]")
    t = build_task_info(
        spec(image="lab/gpu:1", containerizer="mesos", user="alice", uid=1001, gid=100), p
    )
    assert t["container"]["type"] == "MESOS"
    assert t["container"]["mesos"]["image"]["type"] == "DOCKER"
    assert t["container"]["mesos"]["image"]["docker"]["name"] == "lab/gpu:1"
    # The image's entrypoint (docker-stacks start script) starts as root, maps NB_UID/NB_GID
    # and drops root: "alice" need not exist in the image. No value: Mesos then runs the
    # entrypoint with the arguments appended, as Docker does.
    assert t["command"]["user"] == "root"
    assert "value" not in t["command"]
    assert t["command"]["arguments"] == ["jupyterhub-singleuser", "--port=31000"]
    assert scalar(resources_from_json(t["resources"]), "gpus") == 1


def test_mesos_image_task_can_run_as_a_user_that_exists_in_the_image():
    p = placement("cpus:1;mem:1024;gpus:1;ports:[31000-31000]")
    kw = dict(image="lab/gpu:1", containerizer="mesos", user="alice", uid=1001, gid=100)
    t = build_task_info(spec(entrypoint_drops_root=False, **kw), p)
    assert t["command"]["user"] == "alice"
    assert "value" not in t["command"]


def test_root_entrypoint_needs_a_non_root_uid_to_drop_to():
    p = placement("cpus:1;mem:1024;gpus:1;ports:[31000-31000]")
    for uid in (None, 0):
        with pytest.raises(ValueError, match="uid"):
            build_task_info(spec(image="lab/gpu:1", containerizer="mesos", uid=uid, gid=0), p)


def test_cpu_only_tasks_see_no_gpu_and_gpu_tasks_are_left_to_mesos():
    cpu = env_of(build_task_info(spec(image="lab/nb:1"), placement()))
    assert cpu["NVIDIA_VISIBLE_DEVICES"] == "void"
    plain = env_of(build_task_info(spec(), placement()))
    assert plain["NVIDIA_VISIBLE_DEVICES"] == "void"
    gpu = build_task_info(
        spec(image="lab/nb:1", containerizer="mesos", uid=1001),
        placement("cpus:1;mem:1024;gpus:1;ports:[31000-31000]"),
    )
    assert "NVIDIA_VISIBLE_DEVICES" not in env_of(gpu)
    assert "CUDA_VISIBLE_DEVICES" not in env_of(gpu)


def test_gpus_with_docker_containerizer_are_refused():
    p = placement("cpus:1;mem:1024;gpus:1;ports:[31000-31000]")
    with pytest.raises(ValueError, match="no GPU support"):
        build_task_info(spec(image="lab/gpu:1"), p)


def test_no_image_is_a_plain_command_task():
    t = build_task_info(spec(user="alice", env_file_delivery=False), placement())
    assert "container" not in t
    assert t["command"]["user"] == "alice"
    assert t["command"]["value"] == "jupyterhub-singleuser"
    assert t["command"]["arguments"][0] == "jupyterhub-singleuser"


def test_task_info_core_fields():
    t = build_task_info(spec(kill_grace_seconds=2.5), placement())
    assert t["task_id"] == {"value": "jupyter.hub.alice..n1"}
    assert t["agent_id"] == {"value": "agent-1"}
    assert t["name"] == "jupyter-alice"
    assert t["kill_policy"] == {"grace_period": {"nanoseconds": 2_500_000_000}}
    assert env_of(t)["JUPYTERHUB_USER"] == "alice"
    res = t["resources"]
    assert all(r["allocation_info"] == {"role": "*"} for r in res)
    assert all(r["role"] == "*" for r in res)
    refined = build_task_info(
        spec(),
        placement("cpus(spark):1;mem:1024;ports:[31000-31000]", role="spark"),
        refinement=True,
    )
    cpus = next(r for r in refined["resources"] if r["name"] == "cpus")
    assert cpus["reservations"] == [{"type": "STATIC", "role": "spark"}]
    assert "role" not in cpus


def test_bridge_network_maps_the_allocated_host_port():
    t = build_task_info(spec(image="nb", network_mode="bridge", container_port=8888), placement())
    docker = t["container"]["docker"]
    assert docker["network"] == "BRIDGE"
    assert docker["port_mappings"] == [
        {"host_port": 31000, "container_port": 8888, "protocol": "tcp"}
    ]


@pytest.mark.parametrize(
    "kw, words",
    [
        (dict(network_mode="bridge"), "bridge"),
        (dict(image="x", containerizer="mesos", network_mode="bridge"), "bridge"),
        (dict(containerizer="rkt", image="x"), "containerizer"),
        (dict(network_mode="overlay"), "network_mode"),
        (dict(argv=()), "argv"),
        (dict(task_id="has space"), "task ids"),
        (dict(env={"A": 1}), "string"),
        (dict(image="x", uid=1, docker_parameters=(("user", "0:0"),)), "conflicts"),
    ],
)
def test_specs_mesos_would_refuse_are_rejected(kw, words):
    with pytest.raises(ValueError, match=words):
        build_task_info(spec(**kw), placement())


def test_force_pull_and_docker_parameters():
    t = build_task_info(
        spec(image="nb", force_pull_image=True, docker_parameters=(("shm-size", "1g"),)),
        placement(),
    )
    assert t["container"]["docker"]["force_pull_image"] is True
    assert t["container"]["docker"]["parameters"] == [{"key": "shm-size", "value": "1g"}]
    t = build_task_info(
        spec(image="nb", containerizer="mesos", uid=1001, force_pull_image=True), placement()
    )
    assert t["container"]["mesos"]["image"]["cached"] is False


# ---------------------------------------------------------------------------- labels


def test_labels_name_hub_user_server_and_never_a_token():
    t = build_task_info(spec(image="nb"), placement())
    labels = {lab["key"]: lab["value"] for lab in t["labels"]["labels"]}
    assert labels == {
        "jupyterhub.hub": "hub",
        "jupyterhub.user": "alice",
        "jupyterhub.server": "",
        "jupyterhub.managed-by": "mesosspawner",
    }
    assert TOKEN not in repr(t["labels"])


@pytest.mark.parametrize(
    "where",
    [
        dict(labels={"oops": TOKEN}),
        dict(name=f"jupyter {TOKEN}"),
        dict(argv=("jupyterhub-singleuser", f"--token={TOKEN}")),
        dict(image="nb", uid=1001, docker_parameters=(("label", f"t={TOKEN}"),)),
        dict(volumes=({"host_path": f"/srv/{TOKEN}", "container_path": "/w", "mode": "RW"},)),
    ],
)
def test_a_secret_value_in_a_public_field_is_refused(where):
    with pytest.raises(ValueError, match="JUPYTERHUB_API_TOKEN"):
        build_task_info(spec(**where), placement())
    # ... even when secrets are let into the environment (env_file_delivery off).
    with pytest.raises(ValueError, match="JUPYTERHUB_API_TOKEN"):
        build_task_info(spec(env_file_delivery=False, **where), placement())


def test_labels_escape_user_and_server():
    labels = labels_for("hub", "Eve/../root", "my server")
    assert labels["jupyterhub.user"] == "x---45ve-2f-2e-2e-2froot"
    assert labels["jupyterhub.server"] == "x--my-20server"
    # Safe names stay as they are (KubeSpawner 7's "safe" scheme).
    assert labels_for("hub", "alice", "exp-1")["jupyterhub.server"] == "exp-1"


# ---------------------------------------------------------------------------- volumes


def expand(host_path, username="alice", servername="", container_path="/home/jovyan/work", **kw):
    vols = [{"host_path": host_path, "container_path": container_path, **kw}]
    return expand_volumes(vols, username=username, uid=1001, gid=100, servername=servername)


def test_volume_expansion():
    [v] = expand("/data/homes/{username}/{uid}-{gid}", mode="ro")
    assert v == {
        "host_path": "/data/homes/alice/1001-100",
        "container_path": "/home/jovyan/work",
        "mode": "RO",
    }
    [v] = expand("/data/{username}/{servername}", servername="gpu")
    assert v["host_path"] == "/data/alice/gpu"
    [v] = expand("/data/{username}/{servername}")  # default server: trailing slash normalised
    assert v["host_path"] == "/data/alice"
    [v] = expand("/scratch/static")
    assert v["host_path"] == "/scratch/static" and v["mode"] == "RW"


@pytest.mark.parametrize(
    "username, expected",
    [
        ("../../etc", "/data/%2e%2e%2f%2e%2e%2fetc"),
        ("a/b", "/data/a%2fb"),
        ("{foo}", "/data/%7bfoo%7d"),
        ("..", "/data/%2e%2e"),
        ("/root", "/data/%2froot"),
        ("a b;rm -rf", "/data/a%20b%3brm%20%2drf"),
        ("-rf", "/data/%2drf"),
        ("mss-alice", "/data/mss-alice"),  # ordinary names stay as the lab's storage has them
        ("j.doe_2", "/data/j.doe_2"),
    ],
)
def test_usernames_become_exactly_one_path_component(username, expected):
    [v] = expand("/data/{username}", username=username)
    assert v["host_path"] == expected


@pytest.mark.parametrize(
    "template, words",
    [
        ("/data/{foo}", r"\{foo\} is not allowed"),
        ("/data/{username.__class__}", "not allowed"),
        ("/data/{uid:>10}", "not allowed"),
        ("/data/{username!r}", "not allowed"),
        ("/data/{}", "not allowed"),
        ("/data/{username", "brace"),
        ("data/{username}", "absolute"),
        ("/data/../etc/{username}", r"'\.\.'"),
        ("/srv/{servername}", "not below"),  # default server would mount all of /srv
        ("/data/{username}:/etc", "':'"),
        (42, "absolute"),
    ],
)
def test_bad_volume_templates_are_rejected_naming_the_volume(template, words):
    with pytest.raises(ValueError, match=words) as e:
        expand(template)
    assert "volume 0" in str(e.value)


def test_bad_volume_entries():
    with pytest.raises(ValueError, match="mode"):
        expand("/data/{username}", mode="rwx")
    with pytest.raises(ValueError, match="unknown key"):
        expand("/data/{username}", options="x")
    with pytest.raises(ValueError, match="container_path"):
        expand_volumes([{"host_path": "/x"}], username="a", uid=1, gid=1, servername="")
    with pytest.raises(ValueError, match="no uid"):
        expand_volumes(
            [{"host_path": "/x/{uid}", "container_path": "/y"}],
            username="a",
            uid=None,
            gid=None,
            servername="",
        )


@given(st.text(min_size=1), st.text())
def test_expanded_paths_stay_below_their_base(username, servername):
    vols = [
        {"host_path": "/data/users/{username}", "container_path": "/home/{username}"},
        {"host_path": "/data/srv/{username}/{servername}", "container_path": "/work"},
    ]
    out = expand_volumes(vols, username=username, uid=1, gid=2, servername=servername)
    assert out[0]["host_path"].startswith("/data/users/")
    assert out[0]["host_path"].count("/") == 3
    assert out[1]["host_path"].startswith("/data/srv/")
    assert ".." not in out[1]["host_path"].split("/")


def test_volumes_in_the_task():
    vols = expand("/data/{username}")
    t = build_task_info(spec(image="nb", volumes=vols), placement())
    assert t["container"]["volumes"] == [
        {"container_path": "/home/jovyan/work", "host_path": "/data/alice", "mode": "RW"}
    ]
    plain = build_task_info(spec(volumes=vols), placement())
    assert plain["container"] == {"type": "MESOS", "volumes": t["container"]["volumes"]}


# ---------------------------------------------------------------------------- Spark


SPARK = SparkSettings(
    master="mesos://zk://127.0.0.1:2181/mesos",
    executor_image="lab/spark-executor:3.5.1",
    role="spark",
    conf={"spark.executor.memory": "2g"},
    user="alice",
    mesos_native_library="/opt/mesos-1.11.0/lib/libmesos-java.so",
)


def spark_placement():
    return placement(
        "cpus(spark):1;mem(spark):1024;ports(spark):[33000-33004]",
        ports=(33000, 33001, 33002, 33003, 33004),
        role="spark",
    )


def spark_conf_of(env):
    args = shlex.split(env["PYSPARK_SUBMIT_ARGS"])
    return args, dict(a.split("=", 1) for a in args[1::2] if "=" in a)


def test_spark_ports_needed():
    assert spark_ports_needed(SPARK) == 4  # driver, block manager, libprocess, UI
    assert spark_ports_needed(None) == 0


def test_spark_environment():
    p = spark_placement()
    t = build_task_info(spec(image="lab/spark-nb", spark=SPARK, uid=1001, gid=100), p)
    env = env_of(t)
    assert env["SPARK_MASTER"] == env["MASTER"] == SPARK.master
    args, conf = spark_conf_of(env)
    assert args[-1] == "pyspark-shell"
    assert shlex.split(env["SPARK_OPTS"]) == args[:-1]
    assert args[:2] == ["--master", SPARK.master]
    assert conf["spark.mesos.executor.docker.image"] == "lab/spark-executor:3.5.1"
    assert conf["spark.mesos.role"] == "spark"
    assert conf["spark.driver.host"] == "10.0.0.7"
    assert conf["spark.executor.memory"] == "2g"
    assert conf["spark.port.maxRetries"] == "0"
    # Executors run as the notebook's uid:gid, named by SPARK_USER.
    assert conf["spark.mesos.executor.docker.parameters"] == "user=1001:100"
    assert env["SPARK_USER"] == conf["spark.executorEnv.SPARK_USER"] == "alice"
    assert conf["spark.shuffle.readHostLocalDisk"] == "false"
    # The framework is named for the notebook; its executors carry the notebook's task id.
    assert conf["spark.app.name"] == "jupyter.hub.alice..n1"
    assert conf["spark.mesos.task.labels"] == "mesosspawner.notebook:jupyter.hub.alice..n1"
    ports = [
        int(conf["spark.driver.port"]),
        int(conf["spark.driver.blockManager.port"]),
        int(env["MESOSSPAWNER_DRIVER_LIBPROCESS_PORT"]),
        int(conf["spark.ui.port"]),
    ]
    assert len(set(ports + [p.ports[0]])) == 5
    held = ranges_of(resources_from_json(t["resources"]), "ports")
    assert all(any(b <= x <= e for b, e in held) for x in ports)
    assert env["JUPYTERHUB_USER"] == "alice"  # JupyterHub's env is kept
    labels = {lab["key"]: lab["value"] for lab in t["labels"]["labels"]}
    assert labels["mesosspawner.spark-driver"] == f"10.0.0.7:{ports[2]}"
    # The agents' Mesos libraries, read-only, where the image's MESOS_NATIVE_JAVA_LIBRARY looks.
    assert {
        "container_path": "/opt/mesos/lib",
        "host_path": "/opt/mesos-1.11.0/lib",
        "mode": "RO",
    } in t["container"]["volumes"]
    assert env["MESOS_NATIVE_JAVA_LIBRARY"] == "/opt/mesos/lib/libmesos-java.so"


def test_spark_libprocess_address_reaches_the_driver_only():
    """LIBPROCESS_PORT in a task's environment is inherited by Mesos's own executor, which
    binds it first: the task carries it under another name for the image's spark-env.sh."""
    env = env_of(build_task_info(spec(image="lab/spark-nb", spark=SPARK), spark_placement()))
    assert not any(k.startswith("LIBPROCESS_") for k in env)
    assert env["MESOSSPAWNER_DRIVER_LIBPROCESS_IP"] == "10.0.0.7"
    assert "spark.blockManager.port" not in spark_conf_of(env)[1]


def test_spark_plain_notebook_loads_mesos_from_the_agents_directory():
    t = build_task_info(spec(spark=SPARK), spark_placement())
    env = env_of(t)
    assert env["MESOS_NATIVE_JAVA_LIBRARY"] == "/opt/mesos-1.11.0/lib/libmesos-java.so"
    assert "container" not in t  # no image: nothing to mount


def test_spark_bridge_network_advertises_the_host_ports():
    t = build_task_info(
        spec(image="lab/spark-nb", network_mode="bridge", spark=SPARK), spark_placement()
    )
    env = env_of(t)
    maps = t["container"]["docker"]["port_mappings"]
    assert [(m["host_port"], m["container_port"]) for m in maps[1:]] == [
        (33001, 33001),
        (33002, 33002),
        (33003, 33003),
        (33004, 33004),
    ]
    assert env["MESOSSPAWNER_DRIVER_LIBPROCESS_IP"] == "0.0.0.0"
    assert env["MESOSSPAWNER_DRIVER_LIBPROCESS_ADVERTISE_IP"] == "10.0.0.7"
    assert spark_conf_of(env)[1]["spark.driver.bindAddress"] == "0.0.0.0"


def test_spark_values_are_shell_quoted():
    s = SparkSettings(master="mesos://m:5050", conf={"spark.executorEnv.X": "it's $(rm -rf /)"})
    env = env_of(build_task_info(spec(spark=s), spark_placement()))
    args = shlex.split(env["PYSPARK_SUBMIT_ARGS"])
    assert "spark.executorEnv.X=it's $(rm -rf /)" in args


def test_spark_needs_its_ports():
    with pytest.raises(ValueError, match="needs 5 ports"):
        build_task_info(spec(spark=SPARK), placement())


@pytest.mark.parametrize(
    "conf, match",
    [
        ({"--jars x": "y"}, "spark_conf key '--jars x'"),
        ({"spark.driver.port": "1"}, "sets it from the notebook's Mesos offer"),
        ({"spark.blockManager.port": "1"}, "applies to executors too"),
        ({"spark.mesos.secret": "x"}, "spark_secret"),
    ],
)
def test_spark_conf_keys_are_checked(conf, match):
    bad = SparkSettings(master="mesos://m:5050", conf=conf)
    with pytest.raises(ValueError, match=match):
        build_task_info(spec(spark=bad), spark_placement())


def test_spark_secret_never_goes_into_the_task_info():
    env = dict(ENV, SPARK_MESOS_SECRET="spark-s3cr3t-value")
    with pytest.raises(ValueError, match="Spark secret would be in the TaskInfo"):
        build_task_info(spec(env=env, spark=SPARK, env_file_delivery=False), spark_placement())
    for kind in (dict(image="lab/spark-nb"), {}):
        t = build_task_info(spec(env=env, spark=SPARK, **kind), spark_placement())
        assert "spark-s3cr3t-value" not in str(t)


@given(st.text(alphabet="/.{}abcusernameidgv:!", max_size=40), st.text(max_size=20))
def test_any_template_either_fails_clearly_or_gives_a_clean_absolute_path(template, username):
    vols = [{"host_path": template, "container_path": "/work"}]
    try:
        [v] = expand_volumes(vols, username=username or "u", uid=5, gid=6, servername="")
    except ValueError as e:
        assert "volume 0" in str(e)
        return
    path = v["host_path"]
    assert path.startswith("/") and not path.startswith("//")
    assert ".." not in path.split("/")
    if "{{" not in template and "}}" not in template:
        assert "{" not in path and "}" not in path  # every placeholder was expanded or refused


ENV_URI = {
    "value": ENV_URL,
    "output_file": ".mesosspawner.env",
    "extract": False,
    "cache": False,
    "executable": False,
}
GPU = "cpus:1;mem:1024;gpus:1;ports:[31000-31000]"
KINDS = {
    "docker": dict(image="lab/nb:1", user="alice", uid=1001, gid=100),
    "mesos-image": dict(image="lab/gpu:1", containerizer="mesos", user="alice", uid=1001),
    "mesos-image-as-user": dict(
        image="lab/gpu:1",
        containerizer="mesos",
        user="alice",
        uid=1001,
        entrypoint_drops_root=False,
    ),
    "plain": dict(user="alice"),
}


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_secrets_of_every_kind_of_task_travel_only_in_the_fetched_env_file(kind):
    p = placement(GPU) if kind.startswith("mesos") else placement()
    env = ENV | {"DB_PASS": "db-password-1", "GITHUB_PAT": "ghp_0123456789abcdef"}
    task = build_task_info(spec(env=env, **KINDS[kind]), p)
    text = json.dumps(task)
    for value in (TOKEN, "db-password-1", "ghp_0123456789abcdef"):
        assert value not in text  # not in the environment, arguments, labels, container
    env_of_task = env_of(task)
    assert env_of_task["JUPYTERHUB_USER"] == "alice"  # plain variables stay
    assert env_of_task["MESOSSPAWNER_ENV_FILE"] == ".mesosspawner.env"
    assert task["command"]["uris"] == [ENV_URI]
    params = (task.get("container") or {}).get("docker", {}).get("parameters", [])
    assert not [p for p in params if p["key"] in ("env", "env-file")]  # no docker run -e
    # The sandbox (and the fetched file) belong to whoever deletes the file: the person, or
    # root for an image whose start script drops root.
    assert task["command"]["user"] == ("root" if kind == "mesos-image" else "alice")


def test_a_plain_task_runs_its_argv_through_the_fixed_start_script():
    task = build_task_info(spec(user="alice"), placement())
    assert task["command"]["shell"] is False
    assert task["command"]["value"] == "/bin/sh"
    assert task["command"]["arguments"] == [
        "/bin/sh",
        "-c",
        PLAIN_START_SCRIPT,
        "mesosspawner-env",
        "jupyterhub-singleuser",
        "--port=31000",
    ]
    # Nothing of the person's is in the script: the notebook's argv are positional arguments.
    hostile = ("jupyterhub-singleuser", "--notebook-dir=/x'; rm -rf / #$(id)")
    task = build_task_info(spec(user="alice", argv=hostile), placement())
    assert task["command"]["arguments"][2] == PLAIN_START_SCRIPT
    assert task["command"]["arguments"][4:] == list(hostile)


def test_without_a_prepared_env_file_a_secret_is_refused_not_sent():
    with pytest.raises(ValueError, match="JUPYTERHUB_API_TOKEN would be in the TaskInfo"):
        build_task_info(spec(env_file_uris=()), placement())
    # Nothing secret: no env file needed, nothing wrapped.
    plain = build_task_info(spec(env={"PATH": "/bin"}, env_file_uris=()), placement())
    assert "uris" not in plain["command"] and plain["command"]["value"] == "jupyterhub-singleuser"


def test_env_file_delivery_off_puts_secrets_in_the_task_info():
    task = build_task_info(spec(env_file_delivery=False, image="lab/nb:1", uid=1), placement())
    assert env_of(task)["JUPYTERHUB_API_TOKEN"] == TOKEN
    assert "uris" not in task["command"]


def test_a_variable_set_from_the_offer_named_like_a_secret_is_refused():
    from mesosspawner.taskinfo import ServiceURL

    url = ServiceURL("http", "0.0.0.0", "/user/alice/")
    with pytest.raises(ValueError, match="JUPYTERHUB_SERVICE_URL is named like a secret"):
        build_task_info(spec(service_url=url, secret_env=("*_URL",)), placement())


def test_each_launch_attempt_gets_its_own_env_file_url_and_task_id():
    """A one-time URL answers once: a relaunch (the agent gave up after fetching it) must
    not be handed a URL already used, nor the failed attempt's task id (MESOS-2198)."""
    urls = tuple(f"http://hub.lab:40123/env/{c * 43}" for c in "abc")
    nb = spec(image="lab/nb:1", uid=1001, gid=100, env_file_uris=urls)
    launches = [build_task_info(nb, placement(), attempt=n) for n in range(5)]
    assert [t["command"]["uris"][0]["value"] for t in launches] == [*urls, urls[-1], urls[-1]]
    ids = [t["task_id"]["value"] for t in launches]
    assert ids[0] == "jupyter.hub.alice..n1" and ids[1] == "jupyter.hub.alice..n1.1"
    assert len(set(ids)) == 5


def test_the_secret_rule_default_and_configured():
    from mesosspawner.taskinfo import DEFAULT_SECRET_ENV, is_secret, secrets_in_env_file

    secret = [
        "JUPYTERHUB_API_TOKEN", "JPY_API_TOKEN", "AWS_SECRET_ACCESS_KEY", "DB_PASSWORD",
        "DB_PASS", "MYSQL_PASSWD", "DATABASE_URL", "ANALYTICS_DATABASE_URL", "GITHUB_PAT",
        "SENTRY_DSN", "OPENAI_API_KEY", "HF_TOKEN", "SPARK_MESOS_SECRET", "db_pass",
        "GOOGLE_APPLICATION_CREDENTIALS", "MY_APIKEY",
    ]  # fmt: skip
    plain = [
        "PATH", "HOME", "JUPYTERHUB_USER", "JUPYTERHUB_API_URL", "JUPYTERHUB_SERVICE_URL",
        "JUPYTERHUB_SSL_KEYFILE", "NB_UID", "SPARK_OPTS", "MESOSSPAWNER_ENV_FILE", "LANG",
    ]  # fmt: skip
    assert [n for n in secret if not is_secret(n)] == []
    assert [n for n in plain if is_secret(n)] == []
    assert is_secret("LAB_DB", ("LAB_DB",)) and not is_secret("LAB_DB")
    env = {"A": "1", "JUPYTERHUB_API_TOKEN": "t", "LAB_DB": "x"}
    assert secrets_in_env_file(env, (*DEFAULT_SECRET_ENV, "lab_*")) == (
        {"A": "1"},
        {"JUPYTERHUB_API_TOKEN": "t", "LAB_DB": "x"},
    )
    assert secrets_in_env_file(env, enabled=False) == (env, {})


def test_the_notebook_port_comes_from_the_placement():
    from mesosspawner.taskinfo import ServiceURL

    url = ServiceURL("http", "0.0.0.0", "/user/alice/")
    env = ENV | {"JUPYTERHUB_SERVICE_URL": "http://0.0.0.0:0/user/alice/"}
    host = build_task_info(spec(env=env, service_url=url), placement(ports=(31000,)))
    assert env_of(host)["JUPYTERHUB_SERVICE_URL"] == "http://0.0.0.0:31000/user/alice/"
    bridge = build_task_info(
        spec(env=env, service_url=url, image="nb", network_mode="bridge", container_port=8888),
        placement(),
    )
    assert env_of(bridge)["JUPYTERHUB_SERVICE_URL"] == "http://0.0.0.0:8888/user/alice/"
    v6 = ServiceURL("https", "::", "/user/bob/")
    assert v6.at(31001) == "https://[::]:31001/user/bob/"
    # Without a service_url (the admin set the variable) the environment is left alone.
    assert env_of(build_task_info(spec(env=env), placement()))["JUPYTERHUB_SERVICE_URL"] == (
        "http://0.0.0.0:0/user/alice/"
    )


def test_env_file_format_and_refusals():
    from mesosspawner.taskinfo import docker_env_file

    assert docker_env_file({"B_TOKEN": "2 = two", "A_KEY": "1"}) == "A_KEY=1\nB_TOKEN=2 = two\n"
    with pytest.raises(ValueError, match="newline"):
        docker_env_file({"X_TOKEN": "a\nb"})


# ---------------------------------------------------------------------------- identity policy


def test_gpu_notebooks_get_the_mesos_containerizer():
    from mesosspawner.taskinfo import containerizer_for

    assert containerizer_for("docker", 0) == "docker"
    assert containerizer_for("docker", 1) == "mesos"
    assert containerizer_for("mesos", 0) == "mesos"


def test_command_user_only_when_the_hub_can_switch_or_an_image_runs():
    from mesosspawner.taskinfo import command_user

    assert command_user("alice", image=None, hub_is_root=False) is None
    assert command_user("alice", image=None, hub_is_root=True) == "alice"
    assert command_user("alice", image="nb:1", hub_is_root=False) == "alice"


def test_identity_env_for_plain_tasks_is_a_login():
    from mesosspawner.taskinfo import identity_env

    plain = dict(image=None, allow_root=False)
    assert identity_env("alice", 1000, 1000, **plain, home="/home/alice", shell="") == {
        "HOME": "/home/alice",
        "USER": "alice",
        "SHELL": "/bin/sh",
    }
    assert identity_env("ghost", None, None, **plain) == {"USER": "ghost"}  # no passwd entry
    assert identity_env(None, None, None, **plain) == {}


def test_identity_env_for_images_follows_docker_stacks():
    from mesosspawner.taskinfo import identity_env

    assert identity_env("alice", 1000, 100, image="nb:1", allow_root=False) == {
        "NB_USER": "alice",
        "NB_UID": "1000",
        "NB_GID": "100",
    }
    # A name the start script could not create is left out; the ids still map the user.
    assert identity_env("Alice Smith", 1000, None, image="nb:1", allow_root=False) == {
        "NB_UID": "1000"
    }
    root = identity_env("root", 0, 0, image="nb:1", allow_root=True)
    assert root["ALLOW_ROOT"] == "yes"
    assert "ALLOW_ROOT" not in identity_env("root", 0, 0, image="nb:1", allow_root=False)
