"""The lab's images built for real on the debootstrap base, pushed to the loopback registry."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import docker
import pytest

from mesosspawner.images import cli, lab
from mesosspawner.images.registry import registry_digest

DOCKER_DIR = Path(__file__).resolve().parents[2] / "docker"
pytestmark = pytest.mark.timeout(1800)


def test_notebook_image_is_in_the_registry_and_pulls_back(
    pulled_notebook_image, registry, docker_client
):
    repo, tag = lab.split_ref(pulled_notebook_image)
    digest = registry_digest(registry, repo.split("/", 1)[1], tag)
    assert digest and digest.startswith("sha256:")
    local_id = docker_client.images.get(pulled_notebook_image).id
    # By digest: the same image comes back (the tag stays: other tests may be using it).
    pulled = docker_client.images.pull(f"{repo}@{digest}")
    assert pulled.id == local_id
    assert f"{repo}@{digest}" in pulled.attrs["RepoDigests"]


def run_notebook(client, image, command, **kwargs) -> tuple[int, str]:
    container = client.containers.create(image, command=command, **kwargs)
    try:
        container.start()
        code = container.wait(timeout=300)["StatusCode"]
        return code, container.logs(stdout=True, stderr=True).decode()
    finally:
        container.remove(force=True)


def test_start_script_maps_the_container_user_to_nb_uid_and_drops_root(
    pulled_notebook_image, docker_client, tmp_path
):
    tmp_path.chmod(0o777)  # a shared directory: what counts is who owns what alice writes
    code, out = run_notebook(
        docker_client,
        pulled_notebook_image,
        [
            "sh",
            "-c",
            'set -e; id; echo "HOME=$HOME"; touch /work/by-alice; jupyterhub-singleuser --version',
        ],
        environment={"NB_USER": "alice", "NB_UID": "4242", "NB_GID": "4343"},
        volumes={str(tmp_path): {"bind": "/work", "mode": "rw"}},
    )
    assert code == 0, out
    assert "uid=4242(alice) gid=4343(alice) groups=4343(alice)" in out
    assert "HOME=/home/alice" in out
    assert out.strip().splitlines()[-1].startswith("6.")  # jupyterhub-singleuser of JupyterHub 6
    made = (tmp_path / "by-alice").stat()
    assert (made.st_uid, made.st_gid) == (4242, 4343)


def test_start_script_under_a_docker_user_parameter_needs_no_root(
    pulled_notebook_image, docker_client
):
    code, out = run_notebook(
        docker_client,
        pulled_notebook_image,
        ["sh", "-c", 'id -u; id -g; touch "$HOME/x" && echo "writable $HOME"'],
        user="4242:100",
    )
    assert code == 0, out
    lines = [line for line in out.splitlines() if not line.startswith("start-notebook:")]
    assert lines[:2] == ["4242", "100"]
    assert lines[2].startswith("writable /")


def test_start_script_refuses_root_unless_allowed(pulled_notebook_image, docker_client):
    code, out = run_notebook(
        docker_client, pulled_notebook_image, ["id", "-u"], environment={"NB_UID": "0"}
    )
    assert code == 64 and "refusing to run the notebook as root" in out


def run_cli(capsys, *argv) -> dict[str, dict]:
    assert cli.main([*argv, "--json"]) == 0, capsys.readouterr().err
    return {r["name"]: r for r in json.loads(capsys.readouterr().out)}


def test_unchanged_context_builds_and_pushes_nothing_and_a_changed_dockerfile_only_its_image(
    docker_dir_copy, notebook_image, registry, base_image, docker_client, capsys
):
    argv = [
        "--docker-dir", str(docker_dir_copy), "--registry", registry, "--push",
        "--only", "gpu-notebook", "--build-arg", f"BASE_IMAGE={base_image}",
    ]  # fmt: skip
    first = run_cli(capsys, *argv)
    assert first["base-notebook"]["ref"] == notebook_image  # same context as the fixture's build
    assert not first["base-notebook"]["built"] and not first["base-notebook"]["pushed"]
    assert first["gpu-notebook"]["digest"].startswith("sha256:")

    second = run_cli(capsys, *argv)
    assert [(r["built"], r["pushed"]) for r in second.values()] == [(False, False)] * 2
    assert {n: r["pinned"] for n, r in second.items()} == {n: r["pinned"] for n, r in first.items()}

    dockerfile = docker_dir_copy / "gpu-notebook" / "Dockerfile"
    dockerfile.write_text(dockerfile.read_text() + f"# revision {uuid.uuid4().hex}\n")
    third = run_cli(capsys, *argv)
    try:
        assert (third["base-notebook"]["built"], third["base-notebook"]["pushed"]) == (False, False)
        assert third["base-notebook"]["ref"] == first["base-notebook"]["ref"]
        gpu = third["gpu-notebook"]
        assert gpu["built"] and gpu["pushed"]
        assert gpu["ref"] != first["gpu-notebook"]["ref"]
        repo, tag = lab.split_ref(gpu["ref"])
        assert registry_digest(registry, repo.split("/", 1)[1], tag) == gpu["digest"]
    finally:
        for ref in (third["gpu-notebook"]["ref"], lab.image_ref(None, "gpu-notebook",
                    third["gpu-notebook"]["content_hash"])):  # fmt: skip
            try:
                docker_client.images.remove(ref)
            except docker.errors.ImageNotFound:
                pass


def test_cli_prints_pinned_references(notebook_image, registry, base_image, capsys):
    argv = ["--docker-dir", str(DOCKER_DIR), "--registry", registry, "--only", "base-notebook"]
    assert cli.main([*argv, "--build-arg", f"BASE_IMAGE={base_image}"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines == [f"base-notebook {notebook_image}@{lines[0].split('@', 1)[1]}"]
    assert lines[0].split("@", 1)[1].startswith("sha256:")


def test_spark_notebook_image_has_pyspark_3_5_and_java_17(
    notebook_image, registry, base_image, docker_client
):
    results = lab.build_and_push(
        docker_client,
        DOCKER_DIR,
        registry,
        only=["spark-notebook"],
        build_args={"BASE_IMAGE": base_image},
        push=True,
    )
    spark = results["spark-notebook"]
    assert results["base-notebook"].ref == notebook_image and spark.digest
    code, out = run_notebook(
        docker_client,
        spark.ref,
        ["sh", "-c", "python -c 'import pyspark; print(pyspark.__version__)'; java -version"],
    )
    assert code == 0, out
    assert "\n3.5." in f"\n{out}" and 'version "17' in out


def test_hub_image_runs_jupyterhub_6_with_the_mesos_spawner(hub_image, docker_client):
    script = (
        "from importlib.metadata import entry_points, version; "
        "print(version('jupyterhub')); "
        "print([e.value for e in entry_points(group='jupyterhub.spawners') if e.name == 'mesos'])"
    )
    code, out = run_notebook(
        docker_client,
        hub_image,
        ["sh", "-c", f'python -c "{script}" && configurable-http-proxy --version'],
        network_mode="none",
    )
    assert code == 0, out
    assert out.startswith("6.") and "['mesosspawner:MesosSpawner']" in out
